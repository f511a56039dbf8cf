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

/// The example constitution with every fact sent by the caller, as before the entity registry and the counters:
/// the baseline their cost is measured against. The counters' record `usage` becomes an ordinary context record
/// `tallies` that the requests send (0 where a test states no value), so both decide the same requests alike.
fn example_with_caller_facts() -> String {
    let mut doc: toml::Table = toml::from_str(EXAMPLE).expect("example parses");
    doc.remove("entities");
    let counters = doc.remove("counters").expect("the example has counters");
    for test in doc["tests"].as_array_mut().expect("tests") {
        let request = test["request"].as_table_mut().expect("a request");
        let action = request["action"].as_str().expect("an action").to_owned();
        for counter in counters.as_array().expect("counters") {
            let counted = counter["actions"]
                .as_array()
                .expect("actions")
                .iter()
                .any(|a| a.as_str() == Some(&action));
            if counted {
                let context = request
                    .entry("context")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .expect("a context");
                let usage = context
                    .entry("usage")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .expect("a usage record");
                let name = counter["name"].as_str().expect("a name").to_owned();
                usage.entry(name).or_insert(toml::Value::Integer(0));
            }
        }
    }
    toml::to_string(&doc)
        .expect("example serialises")
        .replace("usage", "tallies")
}

/// The engine on the example constitution with the caller sending every fact, and its requests without and with
/// 1 KB of content.
pub fn example() -> (Engine, Vec<DecisionRequest>, Vec<DecisionRequest>) {
    let text = example_with_caller_facts();
    let constitution = Constitution::from_toml("example", &text).expect("example is valid");
    let doc: ConstitutionDocument = toml::from_str(&text).expect("example parses");
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
/// holding the facts its test states and [`REGISTERED_AGENTS`] other agents (a few registries in all: as many as
/// the tests' facts need to not contradict each other), and the counters' values its test states.
pub fn example_registry() -> (Engine, Vec<(DecisionRequest, Arc<Registry>, acgs_engine::Usage)>) {
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
    // A server holds one registry. The tests state different facts about some entities (an agent at risk 10 in
    // one, 85 in another), so they are put in as few registries as hold their facts without contradiction.
    let mut worlds: Vec<(Registry, std::collections::HashMap<String, EntityInput>)> = Vec::new();
    let mut requests = Vec::new();
    for t in &doc.tests {
        let (request, facts, usage) =
            acgs_engine::fixture_parts(&constitution, &t.request).expect("the test's facts conform");
        let facts: Vec<EntityInput> = facts.iter().map(|e| e.input().clone()).collect();
        let key = |e: &EntityInput| format!("{}::{}", e.entity_type, e.id);
        let fits = |known: &std::collections::HashMap<String, EntityInput>| {
            facts.iter().all(|e| known.get(&key(e)).is_none_or(|k| k == e))
        };
        let world = match worlds.iter().position(|(_, known)| fits(known)) {
            Some(i) => i,
            None => {
                worlds.push((base.clone(), std::collections::HashMap::new()));
                worlds.len() - 1
            }
        };
        let (registry, known) = &mut worlds[world];
        for entity in facts {
            registry.insert(Registry::check(&constitution, &entity).expect("conforms"));
            known.insert(key(&entity), entity);
        }
        requests.push((request, world, usage));
    }
    let worlds: Vec<Arc<Registry>> = worlds.into_iter().map(|(r, _)| Arc::new(r)).collect();
    let requests = requests
        .into_iter()
        .map(|(request, world, usage)| (request, worlds[world].clone(), usage))
        .collect();
    (Engine::new(Arc::new(constitution)), requests)
}

/// Constitution text, for the load benchmark.
pub fn example_text() -> &'static str {
    EXAMPLE
}
