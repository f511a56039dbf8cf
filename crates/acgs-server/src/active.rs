//! The constitution in force: the engine compiled from the active constitution version, swapped atomically when
//! another version is activated. A request loads it once and uses that one engine throughout, so it is decided,
//! logged and answered under a single constitution even if a new version is activated meanwhile.

use std::sync::Arc;

use acgs_engine::{Constitution, Engine};
use arc_swap::ArcSwap;

/// The engine of the active constitution. Cheap to share (`Arc`); loading is one atomic read.
#[derive(Debug)]
pub struct ActiveConstitution {
    engine: ArcSwap<Engine>,
}

impl ActiveConstitution {
    /// Start with `engine` in force.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine: ArcSwap::new(engine),
        }
    }

    /// The engine in force now. Hold the returned `Arc` for the whole request.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// The constitution in force now (for reading it; a decision uses [`ActiveConstitution::engine`]).
    pub fn constitution(&self) -> Arc<Constitution> {
        self.engine.load().constitution().clone()
    }

    /// Put `engine` in force for every request that starts from now on; requests in flight finish under the
    /// engine they loaded. Returns the engine it replaced.
    pub fn activate(&self, engine: Arc<Engine>) -> Arc<Engine> {
        self.engine.swap(engine)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use acgs_engine::{Constitution, Engine};

    use super::ActiveConstitution;

    fn engine(version: &str) -> Arc<Engine> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/constitution.toml");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
        let text = text.replacen("version = \"1.0.0\"", &format!("version = \"{version}\""), 1);
        let constitution = Constitution::from_toml("example", &text).unwrap_or_else(|e| panic!("{e}"));
        Arc::new(Engine::new(Arc::new(constitution)))
    }

    #[test]
    fn activation_swaps_for_new_loads_and_keeps_loaded_ones() {
        let active = ActiveConstitution::new(engine("1.0.0"));
        let in_flight = active.engine();
        let replaced = active.activate(engine("2.0.0"));
        assert_eq!(replaced.constitution().metadata().version, "1.0.0");
        assert_eq!(in_flight.constitution().metadata().version, "1.0.0");
        assert_eq!(active.engine().constitution().metadata().version, "2.0.0");
        assert_ne!(in_flight.constitution().hash(), active.engine().constitution().hash());
    }
}
