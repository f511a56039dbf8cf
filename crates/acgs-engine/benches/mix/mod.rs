//! The request mix both decision benchmarks use: the example constitution's test-case requests, plain and
//! with about 1 KB of benign business prose as `content`.

// Benchmarks fail loudly on unexpected values.
#![allow(clippy::expect_used, dead_code)]

use std::sync::Arc;

use acgs_engine::{Constitution, ConstitutionDocument, DecisionRequest, Engine, EntityInput, Registry};

const EXAMPLE: &str = include_str!("../../../../examples/constitution.toml");

/// About 1 KB of ordinary business prose (no PII or secrets): the common case for `content`.
pub const PROSE_1KB: &str = include_str!("prose_1kb.txt");

/// Registered agents besides the ones the requests name, so that lookups are in a registry of realistic size.
pub const REGISTERED_AGENTS: usize = 10_000;

/// The example constitution with every entity type's facts sent by the caller, as before the entity registry:
/// the baseline the registry's cost is measured against.
fn example_with_caller_facts() -> String {
    let mut doc: toml::Table = toml::from_str(EXAMPLE).expect("example parses");
    doc.remove("entities");
    toml::to_string(&doc).expect("example serialises")
}

/// The engine on the example constitution with the caller sending every fact, and its requests without and with
/// 1 KB of content.
pub fn example() -> (Engine, Vec<DecisionRequest>, Vec<DecisionRequest>) {
    let constitution = Constitution::from_toml("example", &example_with_caller_facts()).expect("example is valid");
    let doc: ConstitutionDocument = toml::from_str(EXAMPLE).expect("example parses");
    let plain: Vec<DecisionRequest> = doc.tests.into_iter().map(|t| t.request).collect();
    let with_content = plain
        .iter()
        .cloned()
        .map(|mut r| {
            r.content = Some(PROSE_1KB.to_owned());
            r
        })
        .collect();
    (Engine::new(Arc::new(constitution)), plain, with_content)
}

/// The engine on the example constitution as it is (agents, users and roles from the registry, counters kept by
/// ACGS), and its requests as callers send them (naming those entities by type and id), each with the registry
/// holding the facts its test states and [`REGISTERED_AGENTS`] other agents, and the counters' values its test
/// states.
pub fn example_registry() -> (Engine, Vec<(DecisionRequest, Registry, acgs_engine::Usage)>) {
    let constitution = Constitution::from_toml("example", EXAMPLE).expect("example is valid");
    let doc: ConstitutionDocument = toml::from_str(EXAMPLE).expect("example parses");
    let others: Vec<EntityInput> = (0..REGISTERED_AGENTS)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "type": "Agent", "id": format!("fleet-agent-{i}"),
                "parents": [{"type": "Role", "id": "assistant"}],
                "attributes": {"trust_level": 2, "risk_score": i % 100, "suspended": false},
            }))
            .expect("agent")
        })
        .collect();
    let (base, refused) = Registry::compile(&constitution, &others);
    assert!(refused.is_empty());
    let requests = doc
        .tests
        .iter()
        .map(|t| {
            let (request, facts, usage) =
                acgs_engine::fixture_parts(&constitution, &t.request).expect("the test's facts conform");
            let mut registry = base.clone();
            for entity in facts.iter() {
                registry.insert(Registry::check(&constitution, entity.input()).expect("conforms"));
            }
            (request, registry, usage)
        })
        .collect();
    (Engine::new(Arc::new(constitution)), requests)
}

/// Constitution text, for the load benchmark.
pub fn example_text() -> &'static str {
    EXAMPLE
}
