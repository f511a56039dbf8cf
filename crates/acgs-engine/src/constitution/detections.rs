//! Which actions' contexts declare the `detections` attribute the engine fills, read from the Cedar schema
//! (common types resolved), and whether each declaration has the engine's record type.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{EntityUid, SchemaFragment};
use serde_json::Value;

use super::DETECTIONS_ATTRIBUTE;

/// For each action (by its full uid text), whether its context declares `detections` with the
/// engine's record type. Errors when a declaration has the wrong type.
pub(super) fn detections_declarations(schema_text: &str) -> Result<HashMap<String, bool>, String> {
    let (fragment, _) = SchemaFragment::from_cedarschema_str(schema_text).map_err(|e| e.to_string())?;
    let json = fragment.to_json_value().map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    let Some(namespaces) = json.as_object() else {
        return Ok(out);
    };
    for (ns, body) in namespaces {
        let common = body.get("commonTypes").and_then(Value::as_object);
        let resolve = |ty: &Value| -> Option<Value> { resolve_type(ty, common, 0) };
        let Some(actions) = body.get("actions").and_then(Value::as_object) else {
            continue;
        };
        for (name, action) in actions {
            let uid_text = if ns.is_empty() {
                format!("Action::{}", Value::String(name.clone()))
            } else {
                format!("{ns}::Action::{}", Value::String(name.clone()))
            };
            let declared = action
                .get("appliesTo")
                .and_then(|a| a.get("context"))
                .and_then(&resolve)
                .and_then(|ctx| ctx.get("attributes").cloned())
                .and_then(|attrs| attrs.get(DETECTIONS_ATTRIBUTE).cloned());
            let wants = match declared {
                None => false,
                Some(attr) => {
                    let ty = resolve(&attr).unwrap_or(Value::Null);
                    if !is_detections_type(&ty, common) {
                        return Err(format!(
                            "action `{name}`: context attribute `detections` must have type \
                             {{ pii: Bool, pii_kinds: Set<String>, secrets: Bool, secret_kinds: Set<String>, prompt_injection: Bool }}"
                        ));
                    }
                    true
                }
            };
            let uid = EntityUid::from_str(&uid_text)
                .map(|u| u.to_string())
                .unwrap_or(uid_text);
            out.insert(uid, wants);
        }
    }
    Ok(out)
}

/// Follow common-type references (bounded depth) to a concrete JSON schema type.
fn resolve_type(ty: &Value, common: Option<&serde_json::Map<String, Value>>, depth: usize) -> Option<Value> {
    if depth > 8 {
        return None;
    }
    let type_name = ty.get("type")?.as_str()?;
    let reference = match type_name {
        "EntityOrCommon" => ty.get("name")?.as_str()?,
        "Record" | "Set" | "Long" | "String" | "Boolean" | "Entity" | "Extension" => return Some(ty.clone()),
        other => other,
    };
    match reference {
        "Bool" | "Boolean" => Some(serde_json::json!({"type": "Boolean"})),
        "String" => Some(serde_json::json!({"type": "String"})),
        "Long" => Some(serde_json::json!({"type": "Long"})),
        name => {
            let target = common?.get(name)?;
            resolve_type(target, common, depth + 1)
        }
    }
}

fn is_detections_type(ty: &Value, common: Option<&serde_json::Map<String, Value>>) -> bool {
    let Some(attrs) = ty.get("attributes").and_then(Value::as_object) else {
        return false;
    };
    let kind = |name: &str| attrs.get(name).and_then(|t| resolve_type(t, common, 0));
    let is_bool = |name: &str| kind(name).and_then(|t| t.get("type").cloned()) == Some(Value::from("Boolean"));
    let is_string_set = |name: &str| {
        kind(name).is_some_and(|t| {
            t.get("type") == Some(&Value::from("Set"))
                && t.get("element")
                    .and_then(|e| resolve_type(e, common, 0))
                    .and_then(|e| e.get("type").cloned())
                    == Some(Value::from("String"))
        })
    };
    attrs.len() == 5
        && is_bool("pii")
        && is_string_set("pii_kinds")
        && is_bool("secrets")
        && is_string_set("secret_kinds")
        && is_bool("prompt_injection")
}
