//! The constitution in force: the engine compiled from the active constitution version, and that version's number
//! in the history, swapped atomically together when another version is activated. A request loads it once and
//! uses that one engine throughout, so it is decided, logged and answered under a single constitution even if a
//! new version is activated meanwhile.

use std::sync::Arc;

use acgs_engine::{Constitution, Engine};
use arc_swap::ArcSwap;

/// An engine and the number of the constitution version it was compiled from.
#[derive(Debug)]
pub struct InForce {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The version's number in the history (`GET /v1/constitution/versions`; 0 in tests that record none).
    pub number: i64,
}

/// The engine of the active constitution. Cheap to share (`Arc`); loading is one atomic read.
#[derive(Debug)]
pub struct ActiveConstitution {
    in_force: ArcSwap<InForce>,
}

impl ActiveConstitution {
    /// Start with `engine`, compiled from version `number`, in force.
    pub fn new(engine: Arc<Engine>, number: i64) -> Self {
        Self {
            in_force: ArcSwap::from_pointee(InForce { engine, number }),
        }
    }

    /// The engine in force now. Hold the returned `Arc` for the whole request.
    pub fn engine(&self) -> Arc<Engine> {
        self.in_force.load().engine.clone()
    }

    /// The engine and version number in force now, read together.
    pub fn in_force(&self) -> Arc<InForce> {
        self.in_force.load_full()
    }

    /// The number of the version in force.
    pub fn number(&self) -> i64 {
        self.in_force.load().number
    }

    /// The constitution in force now (for reading it; a decision uses [`ActiveConstitution::engine`]).
    pub fn constitution(&self) -> Arc<Constitution> {
        self.in_force.load().engine.constitution().clone()
    }

    /// Put `engine`, compiled from version `number`, in force for every request that starts from now on;
    /// requests in flight finish under the engine they loaded. Returns the engine it replaced.
    pub fn activate(&self, engine: Arc<Engine>, number: i64) -> Arc<Engine> {
        self.in_force.swap(Arc::new(InForce { engine, number })).engine.clone()
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
        let active = ActiveConstitution::new(engine("1.0.0"), 1);
        let in_flight = active.engine();
        let replaced = active.activate(engine("2.0.0"), 2);
        assert_eq!(active.number(), 2);
        assert_eq!(replaced.constitution().metadata().version, "1.0.0");
        assert_eq!(in_flight.constitution().metadata().version, "1.0.0");
        assert_eq!(active.engine().constitution().metadata().version, "2.0.0");
        assert_ne!(in_flight.constitution().hash(), active.engine().constitution().hash());
    }
}
