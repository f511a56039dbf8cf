//! The amendment gate's check of the entity registry: a constitution may not be put in force while registered
//! entities do not conform to its schema (decisions could not use them: a request naming one would be refused).

use std::sync::Arc;

use acgs_engine::{Constitution, Registry};
use acgs_governance::{ProofCheck, ProofOutcome};
use serde_json::json;

use crate::active::ActiveConstitution;

/// Most nonconforming entities the report lists.
const LISTED: usize = 100;

/// The gate check `entity_registry`: every registered entity conforms to the candidate constitution's schema.
pub struct RegistryConformance {
    active: Arc<ActiveConstitution>,
}

impl RegistryConformance {
    /// The check of the entities registered with `active`.
    pub fn new(active: Arc<ActiveConstitution>) -> Self {
        Self { active }
    }
}

impl ProofCheck for RegistryConformance {
    fn name(&self) -> &str {
        "entity_registry"
    }

    fn check(&self, candidate: &Constitution, _active: &Constitution) -> ProofOutcome {
        let directory = self.active.directory();
        let (registry, refused) = Registry::compile(candidate, directory.values().map(|e| &e.entity));
        let nonconforming: Vec<_> = refused
            .iter()
            .take(LISTED)
            .map(|r| {
                json!({
                    "type": r.entity.entity_type,
                    "id": r.entity.id,
                    "error": r.error.to_string(),
                })
            })
            .collect();
        let report = json!({
            "registered": directory.len(),
            "conforming": registry.len(),
            "nonconforming": nonconforming,
        });
        ProofOutcome {
            passed: refused.is_empty(),
            detail: match refused.first() {
                None => format!("all {} registered entities conform to the schema", directory.len()),
                Some(first) => format!(
                    "{} of {} registered entities do not conform to the schema (first: {}::{:?}: {}); change them \
                     before this constitution is put in force",
                    refused.len(),
                    directory.len(),
                    first.entity.entity_type,
                    first.entity.id,
                    first.error
                ),
            },
            report: Some(report),
        }
    }
}
