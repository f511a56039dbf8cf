//! The entity registry in decisions: for a `registry` type only the registered facts count, a request that asserts
//! them is refused, unregistered entities are refused, and registered entities the request reaches (parent roles,
//! an owner) join the decision.
// Tests fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use acgs_engine::{
    Constitution, Decision, DecisionRequest, Engine, EntityInput, EntitySource, Outcome, ProblemKind, Registry,
    RequestError,
};
use serde_json::json;

const CONSTITUTION: &str = r#"
[constitution]
name = "registry test"
version = "1"

[schema]
cedar = '''
entity Role in [Role];
entity User { suspended: Bool };
entity Agent in [Role] { risk_score: Long, owner?: User, region?: String };
entity Tool { tier: Long };
action use appliesTo { principal: [Agent], resource: [Tool], context: { region?: String } };
'''

[entities.Agent]
source = "registry"
request_attributes = ["region"]

[[entities.Agent.writers]]
role = "operator"

[[entities.Agent.writers]]
role = "monitor"
attributes = ["risk_score"]

[entities.Role]
source = "registry"

[entities.User]
source = "registry"

[[principles]]
id = "P-1"
title = "t"
text = "t"
category = "c"
priority = 1
severity = "high"

[[policies]]
id = "operators-use-tools"
principle = "P-1"
cedar = 'permit (principal in Role::"operator", action, resource) when { principal.risk_score < 50 };'

[[policies]]
id = "suspended-owner"
principle = "P-1"
cedar = 'forbid (principal, action, resource) when { principal has owner && principal.owner.suspended };'

[[policies]]
id = "eu-only"
principle = "P-1"
cedar = 'forbid (principal, action, resource) when { principal has region && principal.region != "eu" };'

[[tests]]
name = "a registered operator uses a tool"
expect = "allow"
[tests.request]
action = "use"
principal = { type = "Agent", id = "bot", parents = [{ type = "Role", id = "operator" }], attributes = { risk_score = 10 } }
resource = { type = "Tool", id = "t", attributes = { tier = 1 } }
"#;

fn engine(text: &str) -> Engine {
    Engine::new(Arc::new(
        Constitution::from_toml("registry.toml", text).unwrap_or_else(|e| panic!("{e}")),
    ))
}

fn entity(value: serde_json::Value) -> EntityInput {
    serde_json::from_value(value).unwrap()
}

/// Agents `bot` (an operator through `Role::"senior"`, owned by `ann`), `risky` (risk 90) and `orphan` (owned
/// by the suspended `bob`).
fn registry(engine: &Engine) -> Registry {
    let entities = [
        json!({"type": "Role", "id": "senior", "parents": [{"type": "Role", "id": "operator"}]}),
        json!({"type": "User", "id": "ann", "attributes": {"suspended": false}}),
        json!({"type": "User", "id": "bob", "attributes": {"suspended": true}}),
        json!({"type": "Agent", "id": "bot", "parents": [{"type": "Role", "id": "senior"}],
               "attributes": {"risk_score": 10, "owner": {"__entity": {"type": "User", "id": "ann"}}}}),
        json!({"type": "Agent", "id": "risky", "parents": [{"type": "Role", "id": "operator"}],
               "attributes": {"risk_score": 90}}),
        json!({"type": "Agent", "id": "orphan", "parents": [{"type": "Role", "id": "operator"}],
               "attributes": {"risk_score": 10, "owner": {"__entity": {"type": "User", "id": "bob"}}}}),
    ]
    .map(entity);
    let (registry, refused) = Registry::compile(engine.constitution(), &entities);
    assert!(refused.is_empty(), "{refused:?}");
    registry
}

fn request(principal: serde_json::Value) -> DecisionRequest {
    serde_json::from_value(json!({
        "principal": principal,
        "action": "use",
        "resource": {"type": "Tool", "id": "t", "attributes": {"tier": 1}},
    }))
    .unwrap()
}

fn decide(engine: &Engine, registry: &Registry, principal: serde_json::Value) -> Result<Decision, RequestError> {
    engine.decide_with(&request(principal), registry, &Default::default())
}

#[test]
fn registered_facts_decide_reaching_parent_roles_and_owners() {
    let engine = engine(CONSTITUTION);
    let registry = registry(&engine);
    let bot = decide(&engine, &registry, json!({"type": "Agent", "id": "bot"})).unwrap();
    assert_eq!(bot.outcome, Outcome::Allow, "{bot:?}");
    let risky = decide(&engine, &registry, json!({"type": "Agent", "id": "risky"})).unwrap();
    assert_eq!(risky.outcome, Outcome::Deny);
    let orphan = decide(&engine, &registry, json!({"type": "Agent", "id": "orphan"})).unwrap();
    assert_eq!(orphan.outcome, Outcome::Deny);
    assert_eq!(orphan.policy_ids(), ["suspended-owner"]);
}

#[test]
fn a_request_asserting_registry_facts_is_refused() {
    let engine = engine(CONSTITUTION);
    let registry = registry(&engine);
    let lying = decide(
        &engine,
        &registry,
        json!({"type": "Agent", "id": "risky", "attributes": {"risk_score": 1}}),
    );
    let Err(RequestError::Registry(message)) = lying else {
        panic!("{lying:?}")
    };
    assert!(
        message.contains("risk_score") && message.contains("region"),
        "{message}"
    );
    let parents = decide(
        &engine,
        &registry,
        json!({"type": "Agent", "id": "risky", "parents": [{"type": "Role", "id": "admin"}]}),
    );
    assert!(matches!(parents, Err(RequestError::Registry(_))), "{parents:?}");
    // Supplying a registry-sourced entity among `entities` is the same claim.
    let mut with_owner = request(json!({"type": "Agent", "id": "orphan"}));
    with_owner.entities.push(entity(
        json!({"type": "User", "id": "bob", "attributes": {"suspended": false}}),
    ));
    let owner = engine.decide_with(&with_owner, &registry, &Default::default());
    assert!(matches!(owner, Err(RequestError::Registry(_))), "{owner:?}");
}

#[test]
fn an_unregistered_entity_is_refused() {
    let engine = engine(CONSTITUTION);
    let registry = registry(&engine);
    let unknown = decide(&engine, &registry, json!({"type": "Agent", "id": "stranger"}));
    let Err(RequestError::Registry(message)) = unknown else {
        panic!("{unknown:?}")
    };
    assert!(message.contains("not registered"), "{message}");
}

#[test]
fn request_attributes_are_facts_of_the_request() {
    let engine = engine(CONSTITUTION);
    let registry = registry(&engine);
    let eu = decide(
        &engine,
        &registry,
        json!({"type": "Agent", "id": "bot", "attributes": {"region": "eu"}}),
    )
    .unwrap();
    assert_eq!(eu.outcome, Outcome::Allow);
    let us = decide(
        &engine,
        &registry,
        json!({"type": "Agent", "id": "bot", "attributes": {"region": "us"}}),
    )
    .unwrap();
    assert_eq!(us.outcome, Outcome::Deny);
    let mistyped = decide(
        &engine,
        &registry,
        json!({"type": "Agent", "id": "bot", "attributes": {"region": 7}}),
    );
    assert!(matches!(mistyped, Err(RequestError::Entities(_))), "{mistyped:?}");
}

#[test]
fn a_registry_write_is_checked_against_the_schema() {
    let engine = engine(CONSTITUTION);
    let constitution = engine.constitution();
    let missing = Registry::check(constitution, &entity(json!({"type": "Agent", "id": "a"})));
    assert!(matches!(missing, Err(RequestError::Entities(_))), "{missing:?}");
    let bad_parent = Registry::check(
        constitution,
        &entity(json!({"type": "Agent", "id": "a", "attributes": {"risk_score": 1},
                       "parents": [{"type": "Tool", "id": "t"}]})),
    );
    assert!(matches!(bad_parent, Err(RequestError::Entities(_))), "{bad_parent:?}");
    let action = Registry::check(constitution, &entity(json!({"type": "Action", "id": "use"})));
    assert!(matches!(action, Err(RequestError::Registry(_))), "{action:?}");
    assert_eq!(constitution.entity_source("Agent"), EntitySource::Registry);
    assert_eq!(constitution.entity_source("Tool"), EntitySource::Caller);
    assert_eq!(constitution.registry_types(), ["Agent", "Role", "User"]);
    let writers = constitution.entity_writers("Agent");
    assert_eq!(writers.len(), 2);
    assert_eq!(writers[1].attributes.as_deref(), Some(&["risk_score".to_owned()][..]));
    assert_eq!(
        constitution.entity_writers("Role"),
        acgs_engine::EntityWriter::default_rules()
    );
}

#[test]
fn test_cases_state_the_registry_facts_they_rely_on() {
    // The constitution's own test sends the agent's facts: they stand for the registry, so it loads and passes.
    let engine = engine(CONSTITUTION);
    assert_eq!(engine.constitution().tests().len(), 1);
}

#[test]
fn the_entities_section_is_checked_against_the_schema() {
    for (section, expected) in [
        (
            "[entities.Robot]\nsource = \"registry\"",
            "`Robot` is not an entity type",
        ),
        (
            "[entities.Tool]\nsource = \"registry\"\nrequest_attributes = [\"colour\"]",
            "request attribute `colour`",
        ),
        (
            "[entities.Tool]\nsource = \"caller\"\nrequest_attributes = [\"tier\"]",
            "applies to `source = \"registry\"` only",
        ),
        (
            "[entities.Tool]\nsource = \"caller\"\n[[entities.Tool.writers]]\nrole = \"monitor\"\nattributes = [\"colour\"]",
            "writer `monitor`: `colour`",
        ),
    ] {
        let text = CONSTITUTION.replace("[entities.User]", &format!("{section}\n\n[entities.User]"));
        let err = Constitution::from_toml("bad.toml", &text).unwrap_err();
        let problems = err.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.kind == ProblemKind::EntitySources && p.message.contains(expected) && p.line.is_some()),
            "{err}"
        );
    }
}

#[test]
fn the_entities_section_is_part_of_the_hash() {
    let with = engine(CONSTITUTION);
    let reordered = CONSTITUTION.replace(
        "request_attributes = [\"region\"]",
        "request_attributes = [\"region\", \"region\"]",
    );
    assert_eq!(with.constitution().hash(), engine(&reordered).constitution().hash());
    let caller = CONSTITUTION.replace(
        "[entities.User]\nsource = \"registry\"",
        "[entities.User]\nsource = \"caller\"",
    );
    assert_ne!(with.constitution().hash(), engine(&caller).constitution().hash());
}
