//! The entity registry's data as the API and the store see it: a stored entity and its record body, the views,
//! writes and patches of the API, Cedar's entities JSON format, and the writer rules of the constitution applied
//! to one change.

use acgs_auth::Principal;
use acgs_engine::{Constitution, EntityInput, EntityRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The governance-record kind of registered entities.
pub const ENTITY: &str = "entity";

/// A record's state while the entity is registered.
pub const REGISTERED: &str = "registered";

/// A record's state once the entity was deleted (the record stays, so its revisions continue if it comes back).
pub const DELETED: &str = "deleted";

/// The governance-record kind of changes held for approval.
pub const ENTITY_CHANGE: &str = "entity_change";

/// A held change, in the order of its states: waiting, then approved (and applied) or rejected.
pub const PENDING: &str = "pending";
/// See [`PENDING`].
pub const APPROVED: &str = "approved";
/// See [`PENDING`].
pub const REJECTED: &str = "rejected";

/// A change of the registry held until a second principal approves it (a writer rule with `needs_approval`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldChange {
    /// The change's id.
    pub id: String,
    /// `pending`, `approved` (and applied) or `rejected`.
    pub state: String,
    /// The entity's type.
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// The entity's revision the change was proposed against (0: it was not registered); approving it after the
    /// entity changed is refused.
    pub base_revision: i64,
    /// The entity as the change would leave it (`null`: deleted).
    #[schema(value_type = Option<Object>)]
    pub after: Option<EntityInput>,
    /// Who proposed it.
    pub proposed_by: String,
    /// When (µs since the Unix epoch).
    pub proposed_at_us: i64,
    /// Who approved or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_us: Option<i64>,
}

/// The key of an entity: its record id, `Type::"id"` (the id as a JSON string).
pub fn key(entity_type: &str, id: &str) -> String {
    format!("{entity_type}::{}", Value::from(id))
}

/// One registered entity as stored: the entity and its record's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntity {
    /// The entity: type, id, attributes (Cedar's JSON value format), parents.
    pub entity: EntityInput,
    /// 1 when first registered; each change adds one (deletion too).
    pub revision: i64,
    /// When first registered (µs since the Unix epoch).
    pub created_at_us: i64,
    /// When last changed (µs).
    pub updated_at_us: i64,
    /// Who changed it last (`user:<name>`, `api_key:<id>`, `cli:<name>`).
    pub updated_by: String,
}

/// The body of an entity's record.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EntityBody {
    pub(crate) entity: EntityInput,
    pub(crate) updated_by: String,
}

/// A registered entity as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntityView {
    /// Entity type, e.g. `Agent`.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Entity id.
    pub id: String,
    /// Attribute values (Cedar's JSON value format: `{"__entity": {...}}` for references).
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// Parent entities (roles, teams, groups).
    pub parents: Vec<EntityRef>,
    /// 1 when first registered; each change adds one. Send it in `If-Match` to change only this revision.
    pub revision: i64,
    /// When first registered (µs since the Unix epoch).
    pub created_at_us: i64,
    /// When last changed (µs).
    pub updated_at_us: i64,
    /// Who changed it last.
    pub updated_by: String,
}

impl From<&StoredEntity> for EntityView {
    fn from(stored: &StoredEntity) -> Self {
        Self {
            entity_type: stored.entity.entity_type.clone(),
            id: stored.entity.id.clone(),
            attributes: stored.entity.attributes.clone(),
            parents: stored.entity.parents.clone(),
            revision: stored.revision,
            created_at_us: stored.created_at_us,
            updated_at_us: stored.updated_at_us,
            updated_by: stored.updated_by.clone(),
        }
    }
}

/// The facts of an entity, as `PUT /v1/entities/{type}/{id}` replaces them.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityFacts {
    /// Attribute values (every required attribute of the type).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// Parent entities.
    #[serde(default)]
    pub parents: Vec<EntityRef>,
}

/// A change of some facts, as `PATCH /v1/entities/{type}/{id}` applies it (JSON merge patch, RFC 7396, on
/// `{attributes, parents}`): each attribute given replaces the stored one, `null` removes it; `parents`, when
/// given, replaces the parents.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityPatch {
    /// Attributes to set (`null`: remove).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    /// The new parents, replacing the stored ones.
    #[serde(default)]
    pub parents: Option<Vec<EntityRef>>,
}

impl EntityPatch {
    /// `entity` with the patch applied.
    pub fn apply(&self, entity: &EntityInput) -> EntityInput {
        let mut patched = entity.clone();
        for (name, value) in self.attributes.iter().flatten() {
            if value.is_null() {
                patched.attributes.remove(name);
            } else {
                patched.attributes.insert(name.clone(), value.clone());
            }
        }
        if let Some(parents) = &self.parents {
            patched.parents.clone_from(parents);
        }
        patched
    }
}

/// One entity in Cedar's entities JSON format: `{"uid": {"type", "id"}, "attrs": {...}, "parents": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CedarEntity {
    /// The entity's type and id.
    pub uid: EntityRef,
    /// Attribute values.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attrs: Map<String, Value>,
    /// Parent entities.
    #[serde(default)]
    pub parents: Vec<EntityRef>,
}

impl From<CedarEntity> for EntityInput {
    fn from(e: CedarEntity) -> Self {
        Self {
            entity_type: e.uid.entity_type,
            id: e.uid.id,
            attributes: e.attrs,
            parents: e.parents,
        }
    }
}

impl From<&EntityInput> for CedarEntity {
    fn from(e: &EntityInput) -> Self {
        Self {
            uid: EntityRef {
                entity_type: e.entity_type.clone(),
                id: e.id.clone(),
            },
            attrs: e.attributes.clone(),
            parents: e.parents.clone(),
        }
    }
}

/// An entity to import: in ACGS's form (`{"type", "id", "attributes", "parents"}`) or Cedar's.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ImportedEntity {
    /// ACGS's form, as `GET /v1/entities` shows entities (without the record's metadata).
    Acgs(EntityInput),
    /// Cedar's entities JSON format.
    Cedar(CedarEntity),
}

impl From<ImportedEntity> for EntityInput {
    fn from(e: ImportedEntity) -> Self {
        match e {
            ImportedEntity::Acgs(e) => e,
            ImportedEntity::Cedar(e) => e.into(),
        }
    }
}

/// SHA-256 of an entity's canonical JSON (type, id, attributes, parents), as audit events name its before and
/// after.
pub fn entity_sha256(entity: &EntityInput) -> String {
    let value = serde_json::to_value(entity).unwrap_or(Value::Null);
    hex::encode(Sha256::digest(acgs_audit::canonical_json(&value).as_bytes()))
}

/// The attributes whose values differ between `before` and `after`, sorted.
pub fn changed_attributes(before: Option<&EntityInput>, after: Option<&EntityInput>) -> Vec<String> {
    let empty = Map::new();
    let (b, a) = (
        before.map_or(&empty, |e| &e.attributes),
        after.map_or(&empty, |e| &e.attributes),
    );
    let mut names: Vec<String> = b
        .keys()
        .chain(a.keys())
        .filter(|name| b.get(*name) != a.get(*name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether the parents differ (as sets).
pub fn parents_changed(before: Option<&EntityInput>, after: Option<&EntityInput>) -> bool {
    let set = |e: Option<&EntityInput>| -> std::collections::BTreeSet<(String, String)> {
        e.map(|e| {
            e.parents
                .iter()
                .map(|p| (p.entity_type.clone(), p.id.clone()))
                .collect()
        })
        .unwrap_or_default()
    };
    set(before) != set(after)
}

/// Whether a change the writer rules allow takes effect at once or waits for a second principal's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Some rule allows it outright.
    Now,
    /// Only rules marked `needs_approval` allow it: it is held until another principal approves it.
    AfterApproval,
}

/// Check the constitution's writer rules for `entity_type` against a change by `principal` from `before` to
/// `after` (`None`: the entity does not exist / is deleted). A rule of a role the principal holds allows it when
/// it names no attributes (anything), or when the entity exists before and after, its parents stay and only the
/// attributes it names change. The refusal says what the principal's roles may change.
pub fn authorize_write(
    constitution: &Constitution,
    principal: &Principal,
    entity_type: &str,
    before: Option<&EntityInput>,
    after: Option<&EntityInput>,
) -> Result<Allowed, String> {
    let rules = constitution.entity_writers(entity_type);
    let held: Vec<_> = rules
        .iter()
        .filter(|rule| principal.roles.iter().any(|role| role.as_str() == rule.role))
        .collect();
    let changed = changed_attributes(before, after);
    let allowing: Vec<_> = held
        .iter()
        .filter(|rule| match &rule.attributes {
            None => true,
            Some(names) => {
                before.is_some()
                    && after.is_some()
                    && !parents_changed(before, after)
                    && changed.iter().all(|c| names.contains(c))
            }
        })
        .collect();
    if allowing.iter().any(|rule| !rule.needs_approval) {
        return Ok(Allowed::Now);
    }
    if !allowing.is_empty() {
        return Ok(Allowed::AfterApproval);
    }
    let may: Vec<String> = held
        .iter()
        .filter_map(|rule| rule.attributes.as_ref())
        .flatten()
        .cloned()
        .collect();
    let writers: Vec<&str> = rules.iter().map(|rule| rule.role.as_str()).collect();
    Err(if may.is_empty() {
        format!(
            "the constitution lets only the role(s) {} change `{entity_type}` entities",
            writers.join(", ")
        )
    } else {
        format!(
            "your role(s) may change only the attribute(s) {} of existing `{entity_type}` entities (this change \
             touches {})",
            may.join(", "),
            describe_change(before, after, &changed)
        )
    })
}

fn describe_change(before: Option<&EntityInput>, after: Option<&EntityInput>, changed: &[String]) -> String {
    match (before, after) {
        (None, _) => "a new entity".to_owned(),
        (_, None) => "its deletion".to_owned(),
        _ => {
            let mut parts: Vec<String> = changed.iter().map(|c| format!("`{c}`")).collect();
            if parents_changed(before, after) {
                parts.push("the parents".to_owned());
            }
            parts.join(", ")
        }
    }
}
