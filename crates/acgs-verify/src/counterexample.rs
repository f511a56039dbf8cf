//! Turning the solver's counterexamples into decision requests and replaying them through the decision engine.
//!
//! The solver's model is a Cedar request (principal, action, resource, context) and the entities it mentions.
//! It becomes a `POST /v1/decisions` body: the principal and resource with their attributes and ancestors, every
//! other non-action entity in `entities`, and the context — except `detections`, which the engine fills itself:
//! its findings become `content` built from [`DetectionKind::example`] texts, which the detectors find exactly.

use std::collections::BTreeSet;

use acgs_engine::{
    Constitution, DETECTIONS_ATTRIBUTE, DecisionRequest, DetectionKind, Detectors, EXAMPLE_SEPARATOR, EntityInput,
    EntityRef, Outcome,
};
use cedar_policy::EntityUid;
use cedar_policy_symcc::Env;
use serde_json::{Map, Value};

use crate::VerifyError;
use crate::report::Example;

/// The decision request for a solver model.
pub(crate) fn to_request(env: &Env) -> Result<DecisionRequest, VerifyError> {
    let request = &env.request;
    let (Some(principal), Some(action), Some(resource)) = (request.principal(), request.action(), request.resource())
    else {
        return Err(VerifyError::Counterexample(
            "the model's request is not concrete".into(),
        ));
    };
    let mut context = match request.context() {
        Some(ctx) => match ctx
            .to_json_value()
            .map_err(|e| VerifyError::Counterexample(e.to_string()))?
        {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    let content = context.remove(DETECTIONS_ATTRIBUTE).and_then(|d| content_for(&d));

    let entities = env
        .entities
        .to_json_value()
        .map_err(|e| VerifyError::Counterexample(e.to_string()))?;
    let mut inputs: Vec<EntityInput> = Vec::new();
    if let Value::Array(list) = entities {
        for item in list {
            if let Some(input) = entity_input(&item) {
                if input.entity_type == "Action" || input.entity_type.ends_with("::Action") {
                    continue;
                }
                inputs.push(input);
            }
        }
    }
    let take = |uid: &EntityUid, inputs: &mut Vec<EntityInput>| -> EntityInput {
        let (ty, id) = (uid.type_name().to_string(), uid.id().unescaped().to_owned());
        match inputs.iter().position(|e| e.entity_type == ty && e.id == id) {
            Some(i) => inputs.remove(i),
            None => EntityInput {
                entity_type: ty,
                id,
                attributes: Map::new(),
                parents: Vec::new(),
            },
        }
    };
    let principal_input = take(principal, &mut inputs);
    let resource_input = if resource == principal {
        principal_input.clone()
    } else {
        take(resource, &mut inputs)
    };
    inputs.sort_by(|a, b| (&a.entity_type, &a.id).cmp(&(&b.entity_type, &b.id)));
    Ok(DecisionRequest {
        principal: principal_input,
        action: action_name(action),
        resource: resource_input,
        context,
        content,
        entities: inputs,
    })
}

/// `Action::"x"` → `x` (the engine accepts either; the bare id reads better), namespaced actions in full.
fn action_name(action: &EntityUid) -> String {
    let ty = action.type_name().to_string();
    if ty == "Action" {
        action.id().unescaped().to_owned()
    } else {
        action.to_string()
    }
}

/// An entity of Cedar's entity JSON (`uid`, `attrs`, `parents`) as a request entity.
fn entity_input(item: &Value) -> Option<EntityInput> {
    let uid = entity_ref(item.get("uid")?)?;
    let attributes = match item.get("attrs") {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let mut parents: Vec<EntityRef> = item
        .get("parents")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(entity_ref).collect())
        .unwrap_or_default();
    parents.sort_by(|a, b| (&a.entity_type, &a.id).cmp(&(&b.entity_type, &b.id)));
    Some(EntityInput {
        entity_type: uid.entity_type,
        id: uid.id,
        attributes,
        parents,
    })
}

/// `{"type": T, "id": I}` or `{"__entity": {...}}`.
fn entity_ref(v: &Value) -> Option<EntityRef> {
    let v = v.get("__entity").unwrap_or(v);
    Some(EntityRef {
        entity_type: v.get("type")?.as_str()?.to_owned(),
        id: v.get("id")?.as_str()?.to_owned(),
    })
}

/// Content in which the detectors find exactly the model's findings (`None` when it has none).
fn content_for(detections: &Value) -> Option<String> {
    let mut kinds: BTreeSet<DetectionKind> = BTreeSet::new();
    for field in ["pii_kinds", "secret_kinds"] {
        for name in detections.get(field).and_then(Value::as_array).into_iter().flatten() {
            if let Some(kind) = DetectionKind::ALL.iter().find(|k| Some(k.as_str()) == name.as_str()) {
                kinds.insert(*kind);
            }
        }
    }
    if detections.get("prompt_injection").and_then(Value::as_bool) == Some(true) {
        kinds.insert(DetectionKind::PromptInjection);
    }
    if kinds.is_empty() {
        return None;
    }
    let parts: Vec<&str> = kinds.iter().map(|k| k.example()).collect();
    Some(parts.join(EXAMPLE_SEPARATOR))
}

/// Decide `request` under `constitution` and describe it as an example.
pub(crate) fn replay(
    constitution: &Constitution,
    detectors: &Detectors,
    request: DecisionRequest,
    shows: String,
) -> Result<Example, VerifyError> {
    let decision = acgs_engine::decide_fixture(constitution, detectors, &request)
        .map_err(|e| VerifyError::Counterexample(format!("the decision engine refuses the solver's request: {e}")))?;
    Ok(Example {
        shows,
        policies: decision.policy_ids(),
        outcome: decision.outcome,
        request,
        old_outcome: None,
    })
}

/// The outcome `request` gets under `constitution` (for the old side of a change report).
pub(crate) fn outcome_under(
    constitution: &Constitution,
    detectors: &Detectors,
    request: &DecisionRequest,
) -> Option<Outcome> {
    acgs_engine::decide_fixture(constitution, detectors, request)
        .ok()
        .map(|d| d.outcome)
}
