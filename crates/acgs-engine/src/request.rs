//! Decision requests as callers send them (JSON or TOML). `shapes` checks them against the schema and converts
//! them into Cedar values.
//!
//! Attribute values are plain JSON: strings, integers, booleans, arrays (Cedar sets) and objects (Cedar
//! records). An entity reference is written `{"__entity": {"type": "User", "id": "alice"}}` and an extension
//! value `{"__extn": {"fn": "decimal", "arg": "0.75"}}` (also `ip`, `datetime`, `duration`), as in Cedar's
//! own JSON format. Floats and `null` are rejected: Cedar has neither.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Deepest nesting of records and sets accepted in attribute values.
pub const MAX_VALUE_DEPTH: usize = 16;

/// Most entities a request may supply in `entities` (besides its principal and resource). Their hierarchy is
/// closed transitively per request, in time linear in the size of the closed hierarchy, which
/// [`MAX_HIERARCHY_DEPTH`] and [`MAX_ANCESTOR_LINKS`] bound.
pub const MAX_REQUEST_ENTITIES: usize = 1000;

/// Most levels of parents above any entity of a request: the longest chain of parent links from an entity (the
/// principal, the resource or one of `entities`) up through its ancestors. A parent that is referenced but not
/// supplied counts as one level. Deeper hierarchies are refused with [`RequestError::Entities`].
///
/// Role, team and group hierarchies are a handful of levels deep; 32 leaves ample room for them while refusing
/// the long chains whose closure is quadratic (a chain of n entities has n(n-1)/2 ancestor links).
///
/// [`RequestError::Entities`]: crate::RequestError::Entities
pub const MAX_HIERARCHY_DEPTH: usize = 32;

/// Most ancestor links the closed hierarchy of a request may hold: the sum, over the request's entities
/// (principal, resource and `entities`), of the number of ancestors each has, direct parents and indirect ones.
/// Cedar stores every entity's full ancestor set, so this is the size of the hierarchy a decision must build;
/// larger ones are refused with [`RequestError::Entities`].
///
/// 50,000 admits 1,000 entities with 50 ancestors each, and keeps a decision's hierarchy work to milliseconds
/// where a chain of 1,000 roles (about 500,000 links) took a large fraction of a second (`benches/hierarchy.rs`;
/// the figures are in `docs/performance.md`).
///
/// [`RequestError::Entities`]: crate::RequestError::Entities
pub const MAX_ANCESTOR_LINKS: usize = 50_000;

/// "May this principal perform this action on this resource?", with optional context and content.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
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

// Read from JSON objects only (serde's derive would also read an array of the fields in order).
crate::json::serde_object_only!(DecisionRequest);
crate::json::serde_object_only!(EntityInput);
crate::json::serde_object_only!(EntityRef);

/// An entity: its type, id, attributes and parents.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
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
#[serde(remote = "Self", deny_unknown_fields)]
pub struct EntityRef {
    /// Entity type name.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Entity id.
    pub id: String,
}
