//! The entity service: the registry of agents, users, roles and the other entities the constitution's policies
//! read, for the authenticated principal the handlers pass in. Every write is checked against the schema of the
//! constitution in force and its writer rules, committed as a versioned record (kind `entity`) with its audit
//! event in one transaction, and then put in force for decisions ([`ActiveConstitution::change_entities`]).
//!
//! The registry is read from memory: loaded at start ([`EntityService::load`]), changed by this process's writes
//! and, where replicas share PostgreSQL, by the other replicas' writes as their notices arrive
//! ([`EntityService::follow_other_replicas`]).

mod gate;
mod held;
mod model;

use std::sync::Arc;

use acgs_audit::event::GovernanceEvent;
use acgs_auth::Principal;
use acgs_engine::{EntityInput, Registry};
use acgs_store::{
    GovernanceCommit, GovernanceRecord, NewEvent, RecordChange, RecordWrite, SecurityEvent, Store, StoreError,
};
use serde_json::json;

pub use gate::RegistryConformance;
use model::EntityBody;
pub use model::{
    APPROVED, Allowed, CedarEntity, DELETED, ENTITY, ENTITY_CHANGE, EntityFacts, EntityPatch, EntityView, HeldChange,
    ImportedEntity, PENDING, REGISTERED, REJECTED, StoredEntity, authorize_write, changed_attributes, entity_sha256,
    key, parents_changed,
};

use crate::active::{ActiveConstitution, Directory};
use crate::decision_service::Clock;

/// How often a write is tried again when another replica changed the same entity meanwhile.
const ATTEMPTS: usize = 5;

/// Most entities one import commits.
pub const MAX_IMPORT: usize = 10_000;

/// Records read per page while loading.
const PAGE: u32 = 1000;

/// Why an entity request failed.
#[derive(Debug, thiserror::Error)]
pub enum EntityError {
    /// The entity does not conform to the schema, or the request is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// The constitution's writer rules do not let the caller make this change (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such registered entity (404).
    #[error("{0}")]
    NotFound(String),
    /// `If-Match` names another revision than the stored one (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// Another writer kept changing it (409).
    #[error("{0}")]
    Conflict(String),
    /// Storage failed (503).
    #[error(transparent)]
    Store(StoreError),
    /// A stored record that does not read back (500).
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for EntityError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => Self::Conflict(message),
            other => Self::Store(other),
        }
    }
}

/// Which registered entities to list, by key (`Type::"id"`).
#[derive(Debug, Clone, Default)]
pub struct EntityQuery {
    /// Only this type.
    pub entity_type: Option<String>,
    /// Only entities with this direct parent (type and id).
    pub parent: Option<(String, String)>,
    /// Only entities whose key sorts after this one (the `next` of the previous page).
    pub after: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// A page of entities and the cursor of the next one.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct EntityPage {
    /// The entities, by key.
    pub entities: Vec<EntityView>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Entities registered that were not.
    pub created: usize,
    /// Registered entities whose facts changed.
    pub updated: usize,
    /// Entities already registered with exactly these facts (nothing written).
    pub unchanged: usize,
}

/// What a write did.
#[derive(Debug, Clone)]
pub enum Written {
    /// The entity is registered with the new facts.
    Applied {
        /// The entity as registered now.
        entity: Arc<StoredEntity>,
        /// It was not registered before.
        created: bool,
    },
    /// The entity was deleted.
    Deleted,
    /// The writer rules hold the change until another principal approves it.
    Held(Box<HeldChange>),
}

/// What one entity's write left: applied (the entity registered now, `None`: deleted, and whether it is new), or
/// held for approval.
enum WriteOutcome {
    Applied(Option<Arc<StoredEntity>>, bool),
    Held(Box<HeldChange>),
}

/// The entity registry. Cheap to clone.
#[derive(Clone)]
pub struct EntityService {
    store: Arc<dyn Store>,
    active: Arc<ActiveConstitution>,
    clock: Clock,
    /// One write at a time in this process (another replica's is caught by the records' compare-and-set).
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for EntityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityService").finish_non_exhaustive()
    }
}

/// Who writes to the registry.
#[derive(Debug, Clone, Copy)]
pub enum Writer<'a> {
    /// An authenticated principal: the constitution's writer rules decide what it may change.
    Principal(&'a Principal),
    /// Someone with the server host's files (the first start's seeding, `acgs entities import --data-dir`),
    /// named `bootstrap` or `cli:<login name>` in the audit log: like `acgs users create`, holding the database is
    /// holding the registry.
    Host(&'a str),
}

impl Writer<'_> {
    /// The actor the audit log names.
    pub fn label(&self) -> String {
        match self {
            Writer::Principal(p) => p.label(),
            Writer::Host(name) => (*name).to_owned(),
        }
    }
}

/// One entity's change, ready to commit.
struct Change {
    key: String,
    stored_revision: i64,
    created_at_us: Option<i64>,
    before: Option<EntityInput>,
    after: Option<EntityInput>,
    /// What the writer rules say of it.
    allowed: Allowed,
}

impl EntityService {
    /// A registry stored in `store`, put in force through `active`, timed by `clock`.
    pub fn new(store: Arc<dyn Store>, active: Arc<ActiveConstitution>, clock: Clock) -> Self {
        Self {
            store,
            active,
            clock,
            writing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The same service timed by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Read every registered entity from the store and put them in force; returns how many there are.
    pub async fn load(&self) -> Result<usize, EntityError> {
        let mut directory = Directory::new();
        let mut after = String::new();
        loop {
            let page = self.store.governance_records_by_id(ENTITY, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after.clone_from(&last.id);
            for record in page {
                if let Some(entity) = stored(&record)? {
                    directory.insert(record.id, Arc::new(entity));
                }
            }
        }
        let count = directory.len();
        self.active.replace_entities(directory);
        metrics::gauge!("acgs_registry_entities").set(count as f64);
        Ok(count)
    }

    /// Keep this process's registry up to date with the writes of other processes sharing the database
    /// (PostgreSQL); returns `false` when there are none to follow (SQLite). Runs until the store stops
    /// announcing; a lost connection reloads everything.
    pub async fn follow_other_replicas(&self) -> Result<bool, EntityError> {
        let Some(mut watch) = self.store.watch_records().await? else {
            return Ok(false);
        };
        let service = self.clone();
        tokio::spawn(async move {
            while let Some(change) = watch.recv().await {
                let result = match change {
                    RecordChange::Written { kind, id } if kind == ENTITY => service.reload(&id).await,
                    RecordChange::Written { .. } => Ok(()),
                    RecordChange::Resync => service.load().await.map(|_| ()),
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "could not apply another replica's entity change; reloading");
                    if let Err(e) = service.load().await {
                        tracing::error!(error = %e, "reloading the entity registry failed");
                    }
                }
            }
        });
        Ok(true)
    }

    /// Read one entity's record again and put what it holds in force.
    async fn reload(&self, key: &str) -> Result<(), EntityError> {
        let record = self.store.governance_record(ENTITY, key).await?;
        let entity = match &record {
            Some(record) => stored(record)?.map(Arc::new),
            None => None,
        };
        self.active.change_entities(vec![(key.to_owned(), entity)]);
        Ok(())
    }

    /// The registered entity of `entity_type` with `id`.
    pub fn get(&self, entity_type: &str, id: &str) -> Result<Arc<StoredEntity>, EntityError> {
        self.active
            .directory()
            .get(&key(entity_type, id))
            .cloned()
            .ok_or_else(|| not_registered(entity_type, id))
    }

    /// A page of the registered entities `query` selects, by key.
    pub fn list(&self, query: &EntityQuery) -> EntityPage {
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        let directory = self.active.directory();
        let start = match &query.after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut entities = Vec::with_capacity(limit.min(directory.len()));
        let mut next = None;
        for (key, stored) in directory.range((start, std::ops::Bound::Unbounded)) {
            let e = &stored.entity;
            if query.entity_type.as_ref().is_some_and(|t| *t != e.entity_type) {
                continue;
            }
            if let Some((parent_type, parent_id)) = &query.parent
                && !e
                    .parents
                    .iter()
                    .any(|p| p.entity_type == *parent_type && p.id == *parent_id)
            {
                continue;
            }
            if entities.len() == limit {
                next = Some(key.clone());
                break;
            }
            entities.push(EntityView::from(stored.as_ref()));
        }
        // `next` is the first key not returned; the page cursor is the last one returned.
        if next.is_some() {
            next = entities.last().map(|e| key(&e.entity_type, &e.id));
        }
        EntityPage { entities, next }
    }

    /// Every registered entity (of `entity_type`, if given), by key.
    pub fn export(&self, entity_type: Option<&str>) -> Vec<Arc<StoredEntity>> {
        self.active
            .directory()
            .values()
            .filter(|e| entity_type.is_none_or(|t| t == e.entity.entity_type))
            .cloned()
            .collect()
    }

    /// Register `entity_type`/`id` with `facts`, replacing what is registered (only at revision `if_match`, when
    /// given).
    pub async fn put(
        &self,
        writer: Writer<'_>,
        entity_type: &str,
        id: &str,
        facts: EntityFacts,
        if_match: Option<i64>,
    ) -> Result<Written, EntityError> {
        let after = EntityInput {
            entity_type: entity_type.to_owned(),
            id: id.to_owned(),
            attributes: facts.attributes,
            parents: facts.parents,
        };
        let outcome = self
            .write_one(writer, entity_type, id, if_match, |_| Ok(Some(after.clone())))
            .await?;
        Ok(written(outcome))
    }

    /// Change some facts of a registered entity (only at revision `if_match`, when given).
    pub async fn patch(
        &self,
        writer: Writer<'_>,
        entity_type: &str,
        id: &str,
        patch: EntityPatch,
        if_match: Option<i64>,
    ) -> Result<Written, EntityError> {
        let outcome = self
            .write_one(writer, entity_type, id, if_match, |before| match before {
                Some(before) => Ok(Some(patch.apply(before))),
                None => Err(not_registered(entity_type, id)),
            })
            .await?;
        Ok(written(outcome))
    }

    /// Delete a registered entity (only at revision `if_match`, when given).
    pub async fn delete(
        &self,
        writer: Writer<'_>,
        entity_type: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<Written, EntityError> {
        let outcome = self
            .write_one(writer, entity_type, id, if_match, |before| match before {
                Some(_) => Ok(None),
                None => Err(not_registered(entity_type, id)),
            })
            .await?;
        Ok(written(outcome))
    }

    /// Register every one of `entities` (creating or replacing), all in one commit or none: each must conform to
    /// the schema and be the caller's to write.
    pub async fn import(&self, writer: Writer<'_>, entities: Vec<EntityInput>) -> Result<ImportSummary, EntityError> {
        if entities.len() > MAX_IMPORT {
            return Err(EntityError::Invalid(format!(
                "{} entities in one import; at most {MAX_IMPORT} are accepted (split the file)",
                entities.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, e) in entities.iter().enumerate() {
            if !seen.insert(key(&e.entity_type, &e.id)) {
                return Err(EntityError::Invalid(format!(
                    "entities[{i}]: `{}` appears twice",
                    key(&e.entity_type, &e.id)
                )));
            }
        }
        let _writing = self.writing.lock().await;
        for _ in 0..ATTEMPTS {
            let mut changes = Vec::with_capacity(entities.len());
            let mut summary = ImportSummary::default();
            for (i, after) in entities.iter().enumerate() {
                let current = self.current(&after.entity_type, &after.id).await?;
                let subject = format!("entity/{}", current.key);
                let change = match self.prepare(writer, current, None, Some(after.clone())) {
                    Ok(change) => change,
                    Err(e) => return Err(at_index(i, self.refused(writer, &subject, e).await)),
                };
                match (&change.before, &change.after) {
                    (Some(b), Some(a)) if b == a => summary.unchanged += 1,
                    (Some(_), _) => {
                        summary.updated += 1;
                        changes.push(change);
                    }
                    (None, _) => {
                        summary.created += 1;
                        changes.push(change);
                    }
                }
            }
            if changes.iter().any(|c| c.allowed == Allowed::AfterApproval) {
                return Err(EntityError::Forbidden(
                    "some of these changes need a second principal's approval under the writer rules; an import \
                     holds none: write them one by one"
                        .into(),
                ));
            }
            match self.commit(writer, changes, Vec::new(), Vec::new()).await {
                Ok(_) => return Ok(summary),
                Err(EntityError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(EntityError::Conflict(
            "other writers kept changing these entities; try again".into(),
        ))
    }

    /// One entity's write: `change` gives the entity after it from the one before (`None`: delete).
    async fn write_one(
        &self,
        writer: Writer<'_>,
        entity_type: &str,
        id: &str,
        if_match: Option<i64>,
        change: impl Fn(Option<&EntityInput>) -> Result<Option<EntityInput>, EntityError>,
    ) -> Result<WriteOutcome, EntityError> {
        let _writing = self.writing.lock().await;
        for _ in 0..ATTEMPTS {
            let current = self.current(entity_type, id).await?;
            let after = change(current.before.as_ref())?;
            let subject = format!("entity/{}", current.key);
            let prepared = match self.prepare(writer, current, if_match, after) {
                Ok(prepared) => prepared,
                Err(e) => return Err(self.refused(writer, &subject, e).await),
            };
            if prepared.before == prepared.after {
                return Ok(WriteOutcome::Applied(self.get(entity_type, id).ok(), false));
            }
            if prepared.allowed == Allowed::AfterApproval {
                return self
                    .hold(writer, prepared)
                    .await
                    .map(|held| WriteOutcome::Held(Box::new(held)));
            }
            let created = prepared.before.is_none();
            match self.commit(writer, vec![prepared], Vec::new(), Vec::new()).await {
                Ok(mut written) => return Ok(WriteOutcome::Applied(written.pop().flatten(), created)),
                Err(EntityError::Conflict(message)) if if_match.is_some() => {
                    return Err(EntityError::PreconditionFailed(message));
                }
                Err(EntityError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(EntityError::Conflict(format!(
            "other writers kept changing `{}`; try again",
            key(entity_type, id)
        )))
    }

    /// The stored record of an entity read from the store (the truth across replicas).
    async fn current(&self, entity_type: &str, id: &str) -> Result<Change, EntityError> {
        let key = key(entity_type, id);
        let record = self.store.governance_record(ENTITY, &key).await?;
        let (stored_revision, created_at_us, before) = match &record {
            None => (0, None, None),
            Some(record) => (
                record.revision,
                Some(record.created_at_us),
                stored(record)?.map(|s| s.entity),
            ),
        };
        Ok(Change {
            key,
            stored_revision,
            created_at_us,
            before,
            after: None,
            allowed: Allowed::Now,
        })
    }

    /// The change of one entity from `current` to `after`, checked: `If-Match`, the schema, the writer rules.
    fn prepare(
        &self,
        writer: Writer<'_>,
        mut change: Change,
        if_match: Option<i64>,
        after: Option<EntityInput>,
    ) -> Result<Change, EntityError> {
        let entity_type = after
            .as_ref()
            .or(change.before.as_ref())
            .map(|e| e.entity_type.clone())
            .unwrap_or_default();
        if let Some(expected) = if_match {
            let registered = if change.before.is_some() {
                change.stored_revision
            } else {
                0
            };
            if registered != expected {
                return Err(EntityError::PreconditionFailed(format!(
                    "`{}` is at revision {registered}, not {expected}",
                    change.key
                )));
            }
        }
        let constitution = self.active.constitution();
        if let Some(after) = &after {
            Registry::check(&constitution, after).map_err(|e| EntityError::Invalid(e.to_string()))?;
        }
        if let Writer::Principal(principal) = writer {
            change.allowed = authorize_write(
                &constitution,
                principal,
                &entity_type,
                change.before.as_ref(),
                after.as_ref(),
            )
            .map_err(EntityError::Forbidden)?;
        }
        change.after = after;
        Ok(change)
    }

    /// Record a refused write as a security event (`entity.write_denied`), then return the refusal.
    async fn refused(&self, writer: Writer<'_>, subject: &str, error: EntityError) -> EntityError {
        let EntityError::Forbidden(why) = &error else {
            return error;
        };
        metrics::counter!("acgs_auth_forbidden_total", "permission" => "entities:write").increment(1);
        let event = SecurityEvent {
            event: "entity.write_denied".into(),
            actor: Some(writer.label()),
            subject: Some(subject.to_owned()),
            source: None,
            detail: Some(why.clone()),
        };
        match self.store.record_security_event(&event, (self.clock)()).await {
            Ok(_) => error,
            Err(e) => e.into(),
        }
    }

    /// Commit `changes` with one audit event each, then put them in force; returns the entities written (`None`
    /// for a deletion), in order.
    async fn commit(
        &self,
        writer: Writer<'_>,
        changes: Vec<Change>,
        mut writes: Vec<RecordWrite>,
        mut events: Vec<NewEvent>,
    ) -> Result<Vec<Option<Arc<StoredEntity>>>, EntityError> {
        let now = (self.clock)();
        let actor = writer.label();
        let mut in_force = Vec::with_capacity(changes.len());
        for change in changes {
            let revision = change.stored_revision + 1;
            let created_at_us = change.created_at_us.unwrap_or(now);
            // A deletion's record keeps the entity's type and id, without its facts.
            let (state, body_entity) = match (&change.after, &change.before) {
                (Some(after), _) => (REGISTERED, after.clone()),
                (None, Some(before)) => (
                    DELETED,
                    EntityInput {
                        attributes: Default::default(),
                        parents: Vec::new(),
                        ..before.clone()
                    },
                ),
                (None, None) => {
                    return Err(EntityError::Internal(format!(
                        "deleting `{}`, which is not registered",
                        change.key
                    )));
                }
            };
            let body = serde_json::to_string(&EntityBody {
                entity: body_entity,
                updated_by: actor.clone(),
            })
            .map_err(|e| EntityError::Internal(format!("encoding an entity: {e}")))?;
            writes.push(RecordWrite {
                record: GovernanceRecord {
                    kind: ENTITY.into(),
                    id: change.key.clone(),
                    revision,
                    state: state.into(),
                    created_at_us,
                    updated_at_us: now,
                    body,
                },
                expected_revision: change.stored_revision,
            });
            let (action, from_state) = match (&change.before, &change.after) {
                (None, _) => ("entity.created", None),
                (Some(_), Some(_)) => ("entity.updated", Some(REGISTERED)),
                (Some(_), None) => ("entity.deleted", Some(REGISTERED)),
            };
            events.push(NewEvent::governance(
                GovernanceEvent {
                    action: action.into(),
                    subject: format!("entity/{}", change.key),
                    actor: actor.clone(),
                    from_state: from_state.map(str::to_owned),
                    to_state: Some(state.into()),
                    detail: json!({
                        "revision": revision,
                        "before_sha256": change.before.as_ref().map(entity_sha256),
                        "after_sha256": change.after.as_ref().map(entity_sha256),
                        "changed_attributes": changed_attributes(change.before.as_ref(), change.after.as_ref()),
                        "parents_changed": parents_changed(change.before.as_ref(), change.after.as_ref()),
                    }),
                },
                now,
            ));
            in_force.push((
                change.key,
                change.after.map(|entity| {
                    Arc::new(StoredEntity {
                        entity,
                        revision,
                        created_at_us,
                        updated_at_us: now,
                        updated_by: actor.clone(),
                    })
                }),
            ));
        }
        self.store
            .commit_governance(&GovernanceCommit::records(writes, events))
            .await?;
        let written: Vec<Option<Arc<StoredEntity>>> = in_force.iter().map(|(_, e)| e.clone()).collect();
        for (_, entity) in &in_force {
            metrics::counter!("acgs_registry_writes_total", "kind" => if entity.is_some() { "write" } else { "delete" })
                .increment(1);
        }
        self.active.change_entities(in_force);
        metrics::gauge!("acgs_registry_entities").set(self.active.directory().len() as f64);
        Ok(written)
    }
}

fn not_registered(entity_type: &str, id: &str) -> EntityError {
    EntityError::NotFound(format!("`{}` is not registered", key(entity_type, id)))
}

/// What a write did, from what it left.
fn written(outcome: WriteOutcome) -> Written {
    match outcome {
        WriteOutcome::Held(change) => Written::Held(change),
        WriteOutcome::Applied(Some(entity), created) => Written::Applied { entity, created },
        WriteOutcome::Applied(None, _) => Written::Deleted,
    }
}

/// The entity a record holds, if it is registered (not deleted).
fn stored(record: &GovernanceRecord) -> Result<Option<StoredEntity>, EntityError> {
    if record.state != REGISTERED {
        return Ok(None);
    }
    let body: EntityBody = serde_json::from_str(&record.body)
        .map_err(|e| EntityError::Internal(format!("entity record `{}` does not read back: {e}", record.id)))?;
    Ok(Some(StoredEntity {
        entity: body.entity,
        revision: record.revision,
        created_at_us: record.created_at_us,
        updated_at_us: record.updated_at_us,
        updated_by: body.updated_by,
    }))
}

/// An import's error, naming the entity.
fn at_index(i: usize, e: EntityError) -> EntityError {
    match e {
        EntityError::Invalid(m) => EntityError::Invalid(format!("entities[{i}]: {m}")),
        EntityError::Forbidden(m) => EntityError::Forbidden(format!("entities[{i}]: {m}")),
        other => other,
    }
}
