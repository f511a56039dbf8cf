//! The entity registry as decisions read it: the stored entities (agents, users, roles, …), each checked against
//! the schema and converted into Cedar values once, when it is written, and the resolution of a request's
//! entities against it.
//!
//! For an entity type the constitution's `[entities]` section gives `source = "registry"`, only the registry's
//! facts count: a request names such an entity by type and id, sending no parents and no attributes but the
//! type's `request_attributes`, and the entity must be registered. Any entity the request's entities reach
//! (through their parents and entity-valued attributes, transitively) that the request does not supply itself is
//! taken from the registry when it is there, whatever its type's source: a role's parent roles, an agent's
//! owner.
//!
//! A [`Registry`] is a plain value (a map of `Arc`s, cheap to clone); the server keeps the one in force beside
//! the engine and replaces it on every write.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use cedar_policy_core::ast::{Eid, EntityType, EntityUID, Literal, Value, ValueKind};

use crate::constitution::Constitution;
use crate::error::RequestError;
use crate::request::{DecisionRequest, EntityInput, MAX_REQUEST_ENTITIES};
use crate::shapes::CheckedEntity;

/// One registered entity: as written, and checked and converted for the constitution it was compiled for.
#[derive(Debug)]
pub struct RegisteredEntity {
    input: EntityInput,
    checked: CheckedEntity,
    /// The entities it names: its parents and the entity references in its attributes.
    references: Vec<EntityUID>,
}

impl RegisteredEntity {
    /// The entity as written (type, id, attributes in Cedar's JSON value format, parents).
    pub fn input(&self) -> &EntityInput {
        &self.input
    }
}

/// The registered entities, compiled for one constitution. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entities: HashMap<EntityUID, Arc<RegisteredEntity>>,
}

/// An entity the registry could not hold under a constitution, and why.
#[derive(Debug)]
pub struct Unregistrable {
    /// The entity as written.
    pub entity: EntityInput,
    /// Why it does not conform to the constitution's schema.
    pub error: RequestError,
}

impl Registry {
    /// Check `input` against `constitution`'s schema as the registry would hold it: a declared, non-action
    /// type, its attributes and parents as the schema declares them.
    pub fn check(constitution: &Constitution, input: &EntityInput) -> Result<RegisteredEntity, RequestError> {
        if input.entity_type == "Action" || input.entity_type.ends_with("::Action") {
            return Err(RequestError::Registry(
                "action entities come from the schema and cannot be registered".into(),
            ));
        }
        let checked = constitution.shapes.entity(input, "entity")?;
        let references = references_of(&checked);
        Ok(RegisteredEntity {
            input: input.clone(),
            checked,
            references,
        })
    }

    /// The registry of `entities` under `constitution`, with the entities that do not conform to its schema left
    /// out and returned.
    pub fn compile<'a>(
        constitution: &Constitution,
        entities: impl IntoIterator<Item = &'a EntityInput>,
    ) -> (Self, Vec<Unregistrable>) {
        let mut registry = Self::default();
        let mut refused = Vec::new();
        for input in entities {
            match Self::check(constitution, input) {
                Ok(entity) => {
                    registry.entities.insert(entity.checked.uid.clone(), Arc::new(entity));
                }
                Err(error) => refused.push(Unregistrable {
                    entity: input.clone(),
                    error,
                }),
            }
        }
        (registry, refused)
    }

    /// This registry's entities compiled for another constitution (after an amendment), with those that do not
    /// conform to its schema left out and returned.
    pub fn recompile(&self, constitution: &Constitution) -> (Self, Vec<Unregistrable>) {
        Self::compile(constitution, self.entities.values().map(|e| &e.input))
    }

    /// Add or replace an entity checked by [`Registry::check`]; returns the one it replaced.
    pub fn insert(&mut self, entity: RegisteredEntity) -> Option<Arc<RegisteredEntity>> {
        self.entities.insert(entity.checked.uid.clone(), Arc::new(entity))
    }

    /// Remove an entity; returns it if it was registered.
    pub fn remove(&mut self, entity_type: &str, id: &str) -> Option<Arc<RegisteredEntity>> {
        self.entities.remove(&uid(entity_type, id)?)
    }

    /// The registered entity of `entity_type` with `id`.
    pub fn get(&self, entity_type: &str, id: &str) -> Option<&Arc<RegisteredEntity>> {
        self.entities.get(&uid(entity_type, id)?)
    }

    /// Number of registered entities.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every registered entity, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RegisteredEntity>> {
        self.entities.values()
    }

    fn lookup(&self, uid: &EntityUID) -> Option<&RegisteredEntity> {
        self.entities.get(uid).map(Arc::as_ref)
    }
}

/// The uid of `entity_type` and `id`, if the type name is well formed.
fn uid(entity_type: &str, id: &str) -> Option<EntityUID> {
    let entity_type = EntityType::from_normalized_str(entity_type).ok()?;
    Some(EntityUID::from_components(entity_type, Eid::new(id), None))
}

/// The entities an entity names: its parents, then the entity references anywhere in its attribute values.
fn references_of(entity: &CheckedEntity) -> Vec<EntityUID> {
    let mut out: Vec<EntityUID> = entity.parents.iter().cloned().collect();
    for value in entity.attributes.values() {
        references_in(value, &mut out);
    }
    out
}

/// The entity references anywhere in `value` (through sets and records), appended to `out`.
fn references_in(value: &Value, out: &mut Vec<EntityUID>) {
    match value.value_kind() {
        ValueKind::Lit(Literal::EntityUID(uid)) => out.push(uid.as_ref().clone()),
        ValueKind::Lit(_) | ValueKind::ExtensionValue(_) => {}
        ValueKind::Set(set) => set.iter().for_each(|v| references_in(v, out)),
        ValueKind::Record(record) => record.values().for_each(|v| references_in(v, out)),
    }
}

/// The entities of `request`, checked and converted, with the registry's facts where the constitution says they
/// come from the registry, and the registered entities that they or the `context` reach and that the request does
/// not supply (an approval's approver, an agent's owner, a role's parent roles).
pub(crate) fn request_entities(
    constitution: &Constitution,
    registry: &Registry,
    request: &DecisionRequest,
    (principal, resource): (&EntityUID, &EntityUID),
    context: &std::collections::BTreeMap<smol_str::SmolStr, Value>,
) -> Result<Vec<CheckedEntity>, RequestError> {
    let shapes = &constitution.shapes;
    let mut checked = Vec::with_capacity(2 + request.entities.len());
    checked.push(supplied(
        constitution,
        registry,
        &request.principal,
        principal,
        "principal",
    )?);
    if resource != principal {
        checked.push(supplied(
            constitution,
            registry,
            &request.resource,
            resource,
            "resource",
        )?);
    }
    for (i, e) in request.entities.iter().enumerate() {
        let field = format!("entities[{i}]");
        if e.entity_type == "Action" || e.entity_type.ends_with("::Action") {
            return Err(RequestError::Entities(format!(
                "{field}: action entities come from the schema and cannot be supplied"
            )));
        }
        let uid = shapes.uid(&e.entity_type, &e.id, &field)?;
        checked.push(supplied(constitution, registry, e, &uid, &field)?);
    }
    if registry.is_empty() {
        return Ok(checked);
    }
    // Pull in the registered entities the supplied ones reach, breadth first.
    let mut present: HashSet<EntityUID> = checked.iter().map(|e| e.uid.clone()).collect();
    let mut queue: VecDeque<EntityUID> = checked.iter().flat_map(references_of).collect();
    let mut in_context = Vec::new();
    for value in context.values() {
        references_in(value, &mut in_context);
    }
    queue.extend(in_context);
    let mut pulled = 0usize;
    while let Some(uid) = queue.pop_front() {
        if present.contains(&uid) {
            continue;
        }
        let Some(entity) = registry.lookup(&uid) else {
            continue;
        };
        pulled += 1;
        if pulled > MAX_REQUEST_ENTITIES {
            return Err(RequestError::Registry(format!(
                "the request's entities reach more than {MAX_REQUEST_ENTITIES} registered entities"
            )));
        }
        present.insert(uid);
        queue.extend(entity.references.iter().cloned());
        checked.push(entity.checked.clone());
    }
    Ok(checked)
}

/// One entity the request supplies (principal, resource or one of `entities`), checked: as sent for a `caller`
/// type; for a `registry` type, the registered entity with the request attributes the caller may send.
fn supplied(
    constitution: &Constitution,
    registry: &Registry,
    input: &EntityInput,
    uid: &EntityUID,
    field: &str,
) -> Result<CheckedEntity, RequestError> {
    let Some(rule) = constitution.entity_sources.registry_rule(uid.entity_type()) else {
        return constitution.shapes.entity(input, field);
    };
    if !input.parents.is_empty() {
        return Err(RequestError::Registry(format!(
            "{field}: the parents of `{uid}` come from the entity registry; a request names it by type and id only"
        )));
    }
    if let Some(name) = input
        .attributes
        .keys()
        .find(|name| !rule.request_attributes.contains(name.as_str()))
    {
        return Err(RequestError::Registry(format!(
            "{field}: attribute `{name}` of `{uid}` comes from the entity registry; a request may not send it{}",
            allowed_list(&rule.request_attributes)
        )));
    }
    let registered = registry.lookup(uid).ok_or_else(|| {
        RequestError::Registry(format!(
            "{field}: `{uid}` is not registered; the facts about a `{}` come from the entity registry",
            uid.entity_type()
        ))
    })?;
    let mut entity = registered.checked.clone();
    for (name, value) in &input.attributes {
        let (name, value) = constitution.shapes.attribute(uid.entity_type(), name, value, field)?;
        entity.attributes.insert(name, value);
    }
    Ok(entity)
}

fn allowed_list(names: &HashSet<smol_str::SmolStr>) -> String {
    if names.is_empty() {
        return String::new();
    }
    let mut names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    names.sort_unstable();
    format!(" (it may send {})", names.join(", "))
}

/// A request written with every fact in it (a constitution's test case, a verifier's counterexample) split into
/// what a caller would send and what the registry would hold: the entities of `registry` types move to a
/// registry, and the request names them by type and id (keeping their request attributes).
pub fn split_registry_facts(
    constitution: &Constitution,
    request: &DecisionRequest,
) -> Result<(DecisionRequest, Registry), RequestError> {
    let mut registry = Registry::default();
    if constitution.entity_sources.registry.is_empty() {
        return Ok((request.clone(), registry));
    }
    let is_registry = |input: &EntityInput| -> Option<&crate::constitution::RegistryRule> {
        let uid = uid(&input.entity_type, &input.id)?;
        constitution.entity_sources.registry_rule(uid.entity_type())
    };
    let mut split = request.clone();
    for input in [&mut split.principal, &mut split.resource] {
        if let Some(rule) = is_registry(input) {
            registry.insert(Registry::check(constitution, input)?);
            input.parents.clear();
            input
                .attributes
                .retain(|name, _| rule.request_attributes.contains(name.as_str()));
        }
    }
    let mut entities = Vec::with_capacity(split.entities.len());
    for input in std::mem::take(&mut split.entities) {
        if is_registry(&input).is_some() {
            registry.insert(Registry::check(constitution, &input)?);
        } else {
            entities.push(input);
        }
    }
    split.entities = entities;
    Ok((split, registry))
}
