//! Decision requests as callers send them (JSON or TOML), and their conversion into Cedar values.
//!
//! Attribute values are plain JSON: strings, integers, booleans, arrays (Cedar sets) and objects (Cedar
//! records). An entity reference is written `{"__entity": {"type": "User", "id": "alice"}}` and an extension
//! value `{"__extn": {"fn": "decimal", "arg": "0.75"}}` (also `ip`, `datetime`, `duration`), as in Cedar's
//! own JSON format. Floats and `null` are rejected: Cedar has neither.

use std::collections::{HashMap, HashSet};

use cedar_policy::{EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RequestError;

/// Deepest nesting of records and sets accepted in attribute values.
pub const MAX_VALUE_DEPTH: usize = 16;

/// "May this principal perform this action on this resource?", with optional context and content.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Who acts (an agent, a user, a service).
    pub principal: EntityInput,
    /// The action's id, e.g. `transfer_funds` (the Cedar entity `Action::"transfer_funds"`).
    pub action: String,
    /// What is acted upon.
    pub resource: EntityInput,
    /// Context attributes (must match the action's context type in the schema, minus `detections`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub context: Map<String, Value>,
    /// Text to scan with the detectors (a prompt, a tool argument, a model output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Further entities the policies may need (e.g. the owner of a resource, role hierarchy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntityInput>,
}

/// An entity: its type, id, attributes and parents.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityInput {
    /// Entity type name, e.g. `Agent` or `Acme::Agent`.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Entity id.
    pub id: String,
    /// Attribute values.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attributes: Map<String, Value>,
    /// Parent entities (roles, teams, groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<EntityRef>,
}

/// A reference to an entity by type and id.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    /// Entity type name.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Entity id.
    pub id: String,
}

impl EntityRef {
    /// Build the Cedar uid, `field` naming where it came from for error messages.
    pub(crate) fn to_uid(&self, types: &EntityTypes, field: &str) -> Result<EntityUid, RequestError> {
        entity_uid(types, &self.entity_type, &self.id, field)
    }
}

/// The entity types a schema declares, by name, parsed once (parsing a Cedar name is dear).
pub(crate) type EntityTypes = HashMap<String, EntityTypeName>;

/// Build a Cedar entity uid from a declared type name and an id.
pub(crate) fn entity_uid(
    types: &EntityTypes,
    type_name: &str,
    id: &str,
    field: &str,
) -> Result<EntityUid, RequestError> {
    let ty = types.get(type_name).ok_or_else(|| RequestError::InvalidEntityType {
        field: field.to_owned(),
        type_name: type_name.to_owned(),
    })?;
    Ok(EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id)))
}

impl EntityInput {
    /// The entity's uid.
    pub(crate) fn uid(&self, types: &EntityTypes, field: &str) -> Result<EntityUid, RequestError> {
        entity_uid(types, &self.entity_type, &self.id, field)
    }

    /// Convert into a Cedar entity.
    pub(crate) fn to_entity(&self, types: &EntityTypes, field: &str) -> Result<cedar_policy::Entity, RequestError> {
        let uid = self.uid(types, field)?;
        let mut attrs = HashMap::with_capacity(self.attributes.len());
        let attributes = ValuePath::Field(&ValuePath::Root(field), "attributes");
        for (name, value) in &self.attributes {
            attrs.insert(
                name.clone(),
                json_to_expr(types, value, ValuePath::Field(&attributes, name), 0)?,
            );
        }
        let mut parents = HashSet::with_capacity(self.parents.len());
        for (i, p) in self.parents.iter().enumerate() {
            parents.insert(p.to_uid(types, &format!("{field}.parents[{i}]"))?);
        }
        cedar_policy::Entity::new(uid, attrs, parents).map_err(|e| RequestError::InvalidValue {
            path: field.to_owned(),
            message: e.to_string(),
        })
    }
}

/// Where a value sits in the request, rendered only when an error needs it (no allocation otherwise).
#[derive(Clone, Copy)]
pub(crate) enum ValuePath<'a> {
    /// A top-level name such as `context` or `principal.attributes`.
    Root(&'a str),
    /// A named field below a path.
    Field(&'a ValuePath<'a>, &'a str),
    /// An element of a set below a path.
    Index(&'a ValuePath<'a>, usize),
}

impl std::fmt::Display for ValuePath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValuePath::Root(name) => f.write_str(name),
            ValuePath::Field(parent, name) => write!(f, "{parent}.{name}"),
            ValuePath::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Convert a JSON value into a Cedar restricted expression.
pub(crate) fn json_to_expr(
    types: &EntityTypes,
    value: &Value,
    path: ValuePath<'_>,
    depth: usize,
) -> Result<RestrictedExpression, RequestError> {
    let invalid = |message: String| RequestError::InvalidValue {
        path: path.to_string(),
        message,
    };
    if depth > MAX_VALUE_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_VALUE_DEPTH} levels")));
    }
    Ok(match value {
        Value::Null => {
            return Err(invalid(
                "`null` is not a Cedar value; omit the attribute instead".into(),
            ));
        }
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => RestrictedExpression::new_long(i),
            None => {
                return Err(invalid(format!(
                    "`{n}` is not a 64-bit integer; Cedar has no floats (use integer minor units or a decimal extension value)"
                )));
            }
        },
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(json_to_expr(types, item, ValuePath::Index(&path, i), depth + 1)?);
            }
            RestrictedExpression::new_set(out)
        }
        Value::Object(map) => {
            if let Some(entity) = map.get("__entity") {
                if map.len() != 1 {
                    return Err(invalid("`__entity` must be the only key of its object".into()));
                }
                let r: EntityRef = serde_json::from_value(entity.clone())
                    .map_err(|e| invalid(format!("bad `__entity` reference: {e}")))?;
                RestrictedExpression::new_entity_uid(r.to_uid(types, &path.to_string())?)
            } else if let Some(extn) = map.get("__extn") {
                if map.len() != 1 {
                    return Err(invalid("`__extn` must be the only key of its object".into()));
                }
                extension_value(extn).map_err(invalid)?
            } else {
                let mut fields = Vec::with_capacity(map.len());
                for (k, v) in map {
                    fields.push((
                        k.clone(),
                        json_to_expr(types, v, ValuePath::Field(&path, k), depth + 1)?,
                    ));
                }
                RestrictedExpression::new_record(fields).map_err(|e| invalid(e.to_string()))?
            }
        }
    })
}

fn extension_value(extn: &Value) -> Result<RestrictedExpression, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Extn {
        #[serde(rename = "fn")]
        function: String,
        arg: String,
    }
    let e: Extn = serde_json::from_value(extn.clone()).map_err(|e| format!("bad `__extn` value: {e}"))?;
    match e.function.as_str() {
        "decimal" => Ok(RestrictedExpression::new_decimal(e.arg)),
        "ip" | "ipaddr" => Ok(RestrictedExpression::new_ip(e.arg)),
        "datetime" => Ok(RestrictedExpression::new_datetime(e.arg)),
        "duration" => Ok(RestrictedExpression::new_duration(e.arg)),
        other => Err(format!(
            "unknown extension function `{other}` (expected decimal, ip, datetime or duration)"
        )),
    }
}
