//! The constitution in force: the engine compiled from the active constitution version, that version's number in
//! the history, and the entity registry compiled for it, swapped atomically together when another version is
//! activated or a registered entity changes. A request loads it once and uses that one engine and registry
//! throughout, so it is decided, logged and answered under a single constitution even if a new version is
//! activated meanwhile.
//!
//! The registered entities as stored (the directory) are kept here too, so that activating a constitution compiles
//! every one of them for it, also those the previous one could not hold. Activations and entity changes are
//! ordered by one lock; decisions never take it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use acgs_engine::{Constitution, Engine, Registry};
use arc_swap::ArcSwap;

use crate::entity_service::StoredEntity;

/// The registered entities by key (`Type::"id"`), as stored.
pub type Directory = BTreeMap<String, Arc<StoredEntity>>;

/// An engine, the number of the constitution version it was compiled from, and the registry compiled for it.
#[derive(Debug)]
pub struct InForce {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The version's number in the history (`GET /v1/constitution/versions`; 0 in tests that record none).
    pub number: i64,
    /// The registered entities, compiled for the engine's constitution.
    pub registry: Arc<Registry>,
}

/// The engine of the active constitution. Cheap to share (`Arc`); loading is one atomic read.
#[derive(Debug)]
pub struct ActiveConstitution {
    in_force: ArcSwap<InForce>,
    directory: Mutex<Directory>,
}

impl ActiveConstitution {
    /// Start with `engine`, compiled from version `number`, in force, and no registered entities.
    pub fn new(engine: Arc<Engine>, number: i64) -> Self {
        Self {
            in_force: ArcSwap::from_pointee(InForce {
                engine,
                number,
                registry: Arc::default(),
            }),
            directory: Mutex::default(),
        }
    }

    /// The registered entities as stored, locked: hold the guard briefly (entity writes and activations wait).
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        // A panic while holding the lock leaves a consistent map (every change is one insert or remove).
        self.directory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Apply changes to the directory (`None`: the entity was deleted) and put the registry compiled for the
    /// constitution in force with them in force. An entity that does not conform to that constitution's schema
    /// (it changed since the write was checked) stays in the directory but out of the registry.
    pub fn change_entities(&self, changes: Vec<(String, Option<Arc<StoredEntity>>)>) {
        let mut directory = self.directory();
        let current = self.in_force.load_full();
        let mut registry = Registry::clone(&current.registry);
        for (key, entity) in changes {
            if let Some(old) = directory.remove(&key) {
                registry.remove(&old.entity.entity_type, &old.entity.id);
            }
            if let Some(entity) = entity {
                match Registry::check(current.engine.constitution(), &entity.entity) {
                    Ok(checked) => {
                        registry.insert(checked);
                    }
                    Err(e) => {
                        tracing::warn!(entity = %key, error = %e, "a registered entity does not conform to the constitution in force; decisions cannot use it")
                    }
                }
                directory.insert(key, entity);
            }
        }
        self.in_force.store(Arc::new(InForce {
            engine: current.engine.clone(),
            number: current.number,
            registry: Arc::new(registry),
        }));
    }

    /// Replace the whole directory (at start, and after notices of other replicas' changes may have been missed)
    /// and compile it for the constitution in force.
    pub fn replace_entities(&self, entities: Directory) {
        let mut directory = self.directory();
        *directory = entities;
        let current = self.in_force.load_full();
        let registry = compile(current.engine.constitution(), &directory);
        self.in_force.store(Arc::new(InForce {
            engine: current.engine.clone(),
            number: current.number,
            registry: Arc::new(registry),
        }));
    }

    /// The registry in force now.
    pub fn registry(&self) -> Arc<Registry> {
        self.in_force.load().registry.clone()
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

    /// Put `engine`, compiled from version `number`, in force with the registered entities compiled for it, for
    /// every request that starts from now on; requests in flight finish under the engine they loaded. Returns the
    /// engine it replaced.
    pub fn activate(&self, engine: Arc<Engine>, number: i64) -> Arc<Engine> {
        let directory = self.directory();
        let registry = Arc::new(compile(engine.constitution(), &directory));
        self.in_force
            .swap(Arc::new(InForce {
                engine,
                number,
                registry,
            }))
            .engine
            .clone()
    }
}

/// The registry of `directory` under `constitution`; entities that do not conform to it are left out (and
/// logged): a request naming one is refused as unregistered.
fn compile(constitution: &Constitution, directory: &Directory) -> Registry {
    let (registry, refused) = Registry::compile(constitution, directory.values().map(|e| &e.entity));
    for r in &refused {
        tracing::warn!(
            entity = %format!("{}::{:?}", r.entity.entity_type, r.entity.id),
            error = %r.error,
            "a registered entity does not conform to the constitution in force; decisions cannot use it"
        );
    }
    registry
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
