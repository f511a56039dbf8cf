//! Differential test of the decision path against Cedar's own, schema-validating path.
//!
//! The engine checks requests against the schema itself and evaluates precompiled policy conditions with Cedar's
//! evaluator (see `src/shapes.rs` and `src/decision.rs`). Here every test request of the example constitution and
//! of a constitution using more of the schema language (enumerated types, extension types, sets of entities,
//! nested records, a role hierarchy) is mutated in many ways — attributes dropped, retyped or added, entity types
//! swapped, parents of allowed and forbidden types, duplicates, cycles — and each variant goes through both the
//! engine and Cedar's public API with schema validation (`Entities::from_json_value`, `Context::from_json_value`,
//! `Request::new` with the schema, `Authorizer::is_authorized`). Both must accept or both refuse, and accepted
//! requests must get the same outcome, deciding policies and failing policies.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::str::FromStr;

use acgs_engine::{Constitution, DecisionRequest, Detection, DetectionCategory, Detectors, Engine, Outcome};
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityId, EntityTypeName, EntityUid, Policy, PolicyId,
    PolicySet, Request,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/constitution.toml");

/// A constitution exercising the schema features the example does not use.
const RICH: &str = r#"
[constitution]
name = "Schema coverage"
version = "1"

[schema]
cedar = '''
type Detections = { pii: Bool, pii_kinds: Set<String>, secrets: Bool, secret_kinds: Set<String>, prompt_injection: Bool };
type Limits = { max_cents: Long, currencies: Set<String>, window?: { hours: Long, strict?: Bool } };
entity Region enum ["eu", "us"];
entity Role in [Role];
entity Group in [Group, Role];
entity User in [Group, Role] { suspended: Bool, region: Region, delegates?: Set<User>, limits?: Limits };
entity Device { address: ipaddr, trust: decimal, enrolled: datetime, max_session: duration, owner: User };
entity Vault { region: Region, tags: Set<String>, guardians: Set<User> };
action read appliesTo { principal: [User], resource: [Vault], context: { detections: Detections, device: Device, when?: datetime } };
action approve appliesTo { principal: [User], resource: [Vault, User], context: { detections: Detections, limits: Limits, reason?: String } };
'''

[[principles]]
id = "P-1"
title = "Data stays in region"
text = "Users read vaults of their own region from trusted devices."
category = "privacy"
priority = 1
severity = "high"

[[policies]]
id = "read-own-region"
principle = "P-1"
cedar = '''
permit (principal in Role::"reader", action == Action::"read", resource)
when { principal.region == resource.region && context.device.trust.greaterThanOrEqual(decimal("0.5")) };
'''

[[policies]]
id = "no-suspended"
principle = "P-1"
cedar = '''
forbid (principal, action, resource) when { principal.suspended };
'''

[[policies]]
id = "guardians-escalate"
principle = "P-1"
cedar = '''
@escalate("guardian approval")
forbid (principal, action == Action::"read", resource is Vault)
when { resource.tags.contains("sealed") && !(resource.guardians.contains(principal)) };
'''

[[policies]]
id = "internal-devices"
principle = "P-1"
cedar = '''
forbid (principal, action == Action::"read", resource)
when { !context.device.address.isInRange(ip("10.0.0.0/8")) };
'''

[[policies]]
id = "device-owner"
principle = "P-1"
cedar = '''
forbid (principal, action == Action::"read", resource)
when {
  context.device.owner != principal &&
  !(context.device.owner has delegates && context.device.owner.delegates.contains(principal))
};
'''

[[policies]]
id = "approve-within-limits"
principle = "P-1"
cedar = '''
permit (principal in Group::"approvers", action == Action::"approve", resource)
when {
  context.limits.max_cents <= 100000 && context.limits.currencies.contains("EUR") &&
  (if context.limits has window then context.limits.window.hours <= 24 else true)
};
'''

[[policies]]
id = "strict-window-escalates"
principle = "P-1"
cedar = '''
@escalate("strict window")
forbid (principal, action == Action::"approve", resource)
when { context.limits has window && context.limits.window has strict && context.limits.window.strict };
'''
"#;

/// Requests for the rich constitution (the mutations start from these).
fn rich_requests() -> Vec<Value> {
    let device = |owner: &str, trust: &str, address: &str| json!({"__entity": {"type": "Device", "id": format!("{owner}-{trust}-{address}")}});
    let device_entity = |owner: &str, trust: &str, address: &str| {
        json!({"type": "Device", "id": format!("{owner}-{trust}-{address}"), "attributes": {
            "address": {"__extn": {"fn": "ip", "arg": address}},
            "trust": {"__extn": {"fn": "decimal", "arg": trust}},
            "enrolled": {"__extn": {"fn": "datetime", "arg": "2026-01-15"}},
            "max_session": {"__extn": {"fn": "duration", "arg": "8h"}},
            "owner": {"__entity": {"type": "User", "id": owner}}}})
    };
    let user = |id: &str, parents: Value, suspended: bool| {
        json!({"type": "User", "id": id, "parents": parents, "attributes": {
            "suspended": suspended, "region": {"__entity": {"type": "Region", "id": "eu"}},
            "delegates": [{"__entity": {"type": "User", "id": "bob"}}],
            "limits": {"max_cents": 500, "currencies": ["EUR"], "window": {"hours": 2}}}})
    };
    let vault = |tags: Value| {
        json!({"type": "Vault", "id": "v1", "attributes": {
            "region": {"__entity": {"type": "Region", "id": "eu"}}, "tags": tags,
            "guardians": [{"__entity": {"type": "User", "id": "carol"}}]}})
    };
    let reader = json!([{"type": "Group", "id": "staff"}]);
    let staff = json!({"type": "Group", "id": "staff", "parents": [{"type": "Role", "id": "reader"}]});
    vec![
        json!({"principal": user("alice", reader.clone(), false), "action": "read", "resource": vault(json!([])),
            "context": {"device": device("alice", "0.9", "10.1.2.3")},
            "entities": [staff.clone(), device_entity("alice", "0.9", "10.1.2.3")]}),
        json!({"principal": user("alice", reader.clone(), false), "action": "read", "resource": vault(json!(["sealed"])),
            "context": {"device": device("alice", "0.9", "10.1.2.3"), "when": {"__extn": {"fn": "datetime", "arg": "2026-11-29T10:00:00Z"}}},
            "entities": [staff.clone(), device_entity("alice", "0.9", "10.1.2.3")]}),
        json!({"principal": user("bob", reader.clone(), false), "action": "read", "resource": vault(json!([])),
            "context": {"device": device("alice", "0.4", "192.168.0.1")},
            "entities": [staff.clone(), device_entity("alice", "0.4", "192.168.0.1"), user("alice", json!([]), false)]}),
        json!({"principal": user("dave", json!([{"type": "Group", "id": "approvers"}]), false), "action": "approve",
            "resource": user("erin", json!([]), false),
            "context": {"limits": {"max_cents": 900, "currencies": ["EUR", "USD"], "window": {"hours": 4, "strict": true}}}}),
        json!({"principal": user("dave", json!([{"type": "Group", "id": "approvers"}]), true), "action": "approve",
            "resource": vault(json!(["x"])), "context": {"limits": {"max_cents": 900, "currencies": ["EUR"]}, "reason": "audit"}}),
    ]
}

/// Both decision paths for one constitution.
struct Paths {
    constitution: std::sync::Arc<Constitution>,
    engine: Engine,
    all: PolicySet,
    permits: PolicySet,
    detectors: Detectors,
    entity_types: Vec<String>,
}

/// What a path made of a request: refused, or an outcome with its deciding and failing policies.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Refused,
    Decided {
        outcome: Outcome,
        reasons: BTreeSet<String>,
        errors: BTreeSet<String>,
    },
}

impl Paths {
    fn new(constitution: Constitution) -> Self {
        let constitution = std::sync::Arc::new(constitution);
        let mut all = PolicySet::new();
        let mut permits = PolicySet::new();
        for info in constitution.policies() {
            let policy = Policy::parse(Some(PolicyId::new(&info.id)), &info.cedar).unwrap();
            if info.effect == acgs_engine::PolicyEffect::Permit {
                permits.add(policy.clone()).unwrap();
            }
            all.add(policy).unwrap();
        }
        let entity_types = constitution.schema().entity_types().map(ToString::to_string).collect();
        Self {
            engine: Engine::new(constitution.clone()),
            constitution,
            all,
            permits,
            detectors: Detectors::new(),
            entity_types,
        }
    }

    fn engine(&self, request: &DecisionRequest) -> Verdict {
        match self.engine.decide(request) {
            Err(_) => Verdict::Refused,
            Ok(d) => Verdict::Decided {
                outcome: d.outcome,
                reasons: d.reasons.iter().map(|r| r.policy_id.clone()).collect(),
                errors: d.errors.iter().map(|e| e.policy_id.clone()).collect(),
            },
        }
    }

    /// Cedar's own path: schema-based JSON parsing of entities and context, schema-validated request.
    fn cedar(&self, request: &DecisionRequest) -> Verdict {
        self.try_cedar(request).unwrap_or(Verdict::Refused)
    }

    fn try_cedar(&self, request: &DecisionRequest) -> Option<Verdict> {
        let schema = self.constitution.schema();
        if request.context.contains_key("detections") {
            return None;
        }
        let uid = |t: &str, id: &str| -> Option<EntityUid> {
            Some(EntityUid::from_type_name_and_id(
                EntityTypeName::from_str(t).ok()?,
                EntityId::new(id),
            ))
        };
        let action = schema.actions().find(|a| a.id().unescaped() == request.action)?.clone();
        let principal = uid(&request.principal.entity_type, &request.principal.id)?;
        let resource = uid(&request.resource.entity_type, &request.resource.id)?;
        let entity_json = |e: &acgs_engine::EntityInput| {
            json!({"uid": {"type": e.entity_type, "id": e.id}, "attrs": e.attributes,
                "parents": e.parents.iter().map(|p| json!({"type": p.entity_type, "id": p.id})).collect::<Vec<_>>()})
        };
        let mut entities = vec![entity_json(&request.principal)];
        if resource != principal {
            entities.push(entity_json(&request.resource));
        }
        entities.extend(request.entities.iter().map(entity_json));
        let entities = Entities::from_json_value(Value::Array(entities), Some(schema)).ok()?;
        let detections = request
            .content
            .as_deref()
            .map(|text| self.detectors.scan(text))
            .unwrap_or_default();
        let mut context = request.context.clone();
        context.insert("detections".into(), detections_json(&detections));
        let context = Context::from_json_value(Value::Object(context), Some((schema, &action))).ok()?;
        let cedar_request = Request::new(principal, action, resource, context, Some(schema)).ok()?;

        let authorizer = Authorizer::new();
        let response = authorizer.is_authorized(&cedar_request, &self.all, &entities);
        let errors: BTreeSet<String> = response
            .diagnostics()
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(pe) => pe.policy_id().to_string(),
            })
            .collect();
        let reasons: BTreeSet<String> = response.diagnostics().reason().map(ToString::to_string).collect();
        let escalation = |id: &String| self.constitution.policies().any(|p| &p.id == id && p.escalation);
        let decided = |outcome, reasons| {
            Some(Verdict::Decided {
                outcome,
                reasons,
                errors: errors.clone(),
            })
        };
        if !errors.is_empty() {
            let forbids = reasons
                .into_iter()
                .filter(|id| {
                    self.constitution
                        .policies()
                        .any(|p| &p.id == id && p.effect == acgs_engine::PolicyEffect::Forbid)
                })
                .collect();
            return decided(Outcome::Deny, forbids);
        }
        match response.decision() {
            CedarDecision::Allow => decided(Outcome::Allow, reasons),
            CedarDecision::Deny if !reasons.is_empty() && reasons.iter().all(escalation) => {
                let permits = authorizer.is_authorized(&cedar_request, &self.permits, &entities);
                if permits.decision() == CedarDecision::Allow {
                    let mut all = reasons;
                    all.extend(permits.diagnostics().reason().map(ToString::to_string));
                    decided(Outcome::Escalate, all)
                } else {
                    decided(Outcome::Deny, reasons)
                }
            }
            CedarDecision::Deny => decided(
                Outcome::Deny,
                reasons.into_iter().filter(|id| !escalation(id)).collect(),
            ),
        }
    }

    /// Run one request (as JSON) through both paths; `None` when it is not even a well-formed request.
    fn compare(&self, json: &Value) -> Option<(Verdict, Verdict)> {
        let request: DecisionRequest = serde_json::from_value(json.clone()).ok()?;
        Some((self.engine(&request), self.cedar(&request)))
    }
}

fn detections_json(detections: &[Detection]) -> Value {
    let kinds = |category: DetectionCategory| -> BTreeSet<&str> {
        detections
            .iter()
            .filter(|d| d.category == category)
            .map(|d| d.kind.as_str())
            .collect()
    };
    let pii = kinds(DetectionCategory::Pii);
    let secrets = kinds(DetectionCategory::Secret);
    json!({
        "pii": !pii.is_empty(), "pii_kinds": pii, "secrets": !secrets.is_empty(), "secret_kinds": secrets,
        "prompt_injection": detections.iter().any(|d| d.category == DetectionCategory::PromptInjection),
    })
}

/// Values of every kind a request can carry, valid and invalid, to put where an attribute was.
fn replacement_values(entity_types: &[String]) -> Vec<Value> {
    let mut values = vec![
        json!(true),
        json!(0),
        json!(-7),
        json!(i64::MAX),
        json!("text"),
        json!("eu"),
        json!([]),
        json!([1, 2]),
        json!(["EUR"]),
        json!([true]),
        json!({}),
        json!({"hours": 3}),
        json!({"max_cents": 1, "currencies": []}),
        json!(1.5),
        json!(null),
        json!({"__extn": {"fn": "decimal", "arg": "0.75"}}),
        json!({"__extn": {"fn": "decimal", "arg": "not a number"}}),
        json!({"__extn": {"fn": "ip", "arg": "10.0.0.1"}}),
        json!({"__extn": {"fn": "datetime", "arg": "2026-02-30"}}),
        json!({"__extn": {"fn": "duration", "arg": "2h"}}),
        json!({"__entity": {"type": "Nope", "id": "x"}}),
    ];
    for t in entity_types {
        values.push(json!({"__entity": {"type": t, "id": "eu"}}));
        values.push(json!([{"__entity": {"type": t, "id": "other"}}]));
    }
    values
}

/// Every object of attribute values in a request (entity attributes, the context, and records nested in them),
/// as JSON pointers.
fn attribute_objects(request: &Value) -> Vec<String> {
    fn walk(value: &Value, pointer: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) if !map.contains_key("__entity") && !map.contains_key("__extn") => {
                out.push(pointer.clone());
                for (k, v) in map {
                    walk(v, format!("{pointer}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{pointer}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for root in ["/principal/attributes", "/resource/attributes", "/context"] {
        walk(request.pointer(root).unwrap_or(&Value::Null), root.to_owned(), &mut out);
    }
    if let Some(Value::Array(entities)) = request.get("entities") {
        for i in 0..entities.len() {
            let root = format!("/entities/{i}/attributes");
            walk(request.pointer(&root).unwrap_or(&Value::Null), root, &mut out);
        }
    }
    out
}

/// All single mutations of a request.
fn mutations(request: &Value, entity_types: &[String]) -> Vec<Value> {
    let values = replacement_values(entity_types);
    let mut out = Vec::new();
    let objects = attribute_objects(request);
    for pointer in &objects {
        let Some(Value::Object(map)) = request.pointer(pointer) else {
            continue;
        };
        // An undeclared attribute.
        let mut m = request.clone();
        m.pointer_mut(pointer).unwrap()["zz_undeclared"] = json!(1);
        out.push(m);
        for key in map.keys() {
            // Drop it.
            let mut m = request.clone();
            m.pointer_mut(pointer).unwrap().as_object_mut().unwrap().remove(key);
            out.push(m);
            // Give it a value of every kind.
            for v in &values {
                let mut m = request.clone();
                m.pointer_mut(pointer).unwrap()[key] = v.clone();
                out.push(m);
            }
        }
    }
    // Swap entity types and ids; add parents of every type; duplicate and cyclic entities.
    for role in ["principal", "resource"] {
        for t in entity_types {
            let mut m = request.clone();
            m[role]["type"] = json!(t);
            out.push(m);
            let mut m = request.clone();
            let parents = m[role].as_object_mut().unwrap().entry("parents").or_insert(json!([]));
            parents.as_array_mut().unwrap().push(json!({"type": t, "id": "eu"}));
            out.push(m);
        }
        let mut m = request.clone();
        m[role]["id"] = json!("asia");
        out.push(m);
        let mut m = request.clone();
        let copy = m[role].clone();
        m.as_object_mut()
            .unwrap()
            .entry("entities")
            .or_insert(json!([]))
            .as_array_mut()
            .unwrap()
            .push(copy);
        out.push(m);
    }
    for t in entity_types {
        let mut m = request.clone();
        let principal_ref = json!({"type": m["principal"]["type"], "id": m["principal"]["id"]});
        let ring = [
            json!({"type": t, "id": "ring-a", "parents": [{"type": t, "id": "ring-b"}]}),
            json!({"type": t, "id": "ring-b", "parents": [{"type": t, "id": "ring-a"}]}),
            json!({"type": t, "id": "ring-c", "parents": [principal_ref]}),
        ];
        let entities = m
            .as_object_mut()
            .unwrap()
            .entry("entities")
            .or_insert(json!([]))
            .as_array_mut()
            .unwrap();
        entities.extend(ring);
        out.push(m);
    }
    out
}

fn check(paths: &Paths, requests: &[Value], seed: u64, random_rounds: usize) -> (usize, usize) {
    let mut compared = 0;
    let mut accepted = 0;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut run = |json: &Value| {
        if let Some((engine, cedar)) = paths.compare(json) {
            assert_eq!(
                engine,
                cedar,
                "engine and Cedar disagree on\n{}",
                serde_json::to_string_pretty(json).unwrap()
            );
            compared += 1;
            accepted += usize::from(engine != Verdict::Refused);
        }
    };
    for request in requests {
        run(request);
        let singles = mutations(request, &paths.entity_types);
        for m in &singles {
            run(m);
        }
        // Random double mutations: a mutation of a mutation.
        for _ in 0..random_rounds {
            let first = &singles[rng.random_range(0..singles.len())];
            let seconds = mutations(first, &paths.entity_types);
            run(&seconds[rng.random_range(0..seconds.len())]);
        }
    }
    (compared, accepted)
}

/// The example constitution with every fact sent by the caller: the conversion compared here is the one of facts
/// a request sends (registry facts are converted by the same code when they are written). The counters' record
/// `usage`, which ACGS fills, becomes an ordinary context record `tallies` the requests send.
fn example_with_caller_facts() -> Constitution {
    let mut doc: toml::Table = toml::from_str(&std::fs::read_to_string(EXAMPLE).unwrap()).unwrap();
    doc.remove("entities");
    // A test that states no counter's value means 0 (as in `decide_fixture`); here the request sends it.
    let counters = doc.remove("counters").unwrap();
    for test in doc["tests"].as_array_mut().unwrap() {
        let request = test["request"].as_table_mut().unwrap();
        let action = request["action"].as_str().unwrap().to_owned();
        for counter in counters.as_array().unwrap() {
            if counter["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a.as_str() == Some(&action))
            {
                let context = request
                    .entry("context")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .unwrap();
                let usage = context
                    .entry("usage")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .unwrap();
                let name = counter["name"].as_str().unwrap().to_owned();
                usage.entry(name).or_insert(toml::Value::Integer(0));
            }
        }
    }
    let text = toml::to_string(&doc).unwrap().replace("usage", "tallies");
    Constitution::from_toml("example.toml", &text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn example_constitution_matches_cedar_on_mutated_requests() {
    let constitution = example_with_caller_facts();
    let requests: Vec<Value> = constitution
        .tests()
        .iter()
        .map(|t| serde_json::to_value(&t.request).unwrap())
        .collect();
    let paths = Paths::new(constitution);
    let (compared, accepted) = check(&paths, &requests, 7, 10);
    println!("{compared} requests compared, {accepted} accepted by both");
    assert!(compared > 10_000, "{compared}");
    assert!(
        accepted > 500,
        "too few accepted variants ({accepted}) to compare decisions"
    );
}

#[test]
fn rich_schema_matches_cedar_on_mutated_requests() {
    let constitution = Constitution::compile("rich.toml", RICH).unwrap_or_else(|e| panic!("{e}"));
    let paths = Paths::new(constitution);
    let requests = rich_requests();
    // The starting requests cover every outcome.
    let outcomes: BTreeSet<String> = requests
        .iter()
        .filter_map(|r| match paths.compare(r) {
            Some((Verdict::Decided { outcome, .. }, _)) => Some(outcome.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    let (compared, accepted) = check(&paths, &requests, 11, 200);
    println!("{compared} requests compared, {accepted} accepted by both");
    assert!(compared > 3_000, "{compared}");
    assert!(accepted > 100, "{accepted}");
}
