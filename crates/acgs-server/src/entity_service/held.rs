//! Changes of the registry held for approval: a change that only a writer rule marked `needs_approval` allows (a
//! role grant, say) is stored as a pending change instead of being applied; another principal whose rules allow
//! the same change approves it — it is then applied, in the same transaction — or rejects it. Four eyes: the
//! proposer cannot approve its own change, and a change is approved only against the entity it was proposed for
//! (if the entity changed meanwhile, the approval is refused and the change must be proposed again).

use acgs_audit::event::GovernanceEvent;
use acgs_auth::Principal;
use acgs_store::{GovernanceCommit, GovernanceRecord, NewEvent, RecordQuery, RecordWrite};
use serde_json::json;

use super::model::{APPROVED, ENTITY_CHANGE, HeldChange, PENDING, REJECTED};
use super::{Change, EntityError, EntityService, Writer, authorize_write, entity_sha256, key};

impl EntityService {
    /// Store `change` as held for approval, with its audit event.
    pub(super) async fn hold(&self, writer: Writer<'_>, change: Change) -> Result<HeldChange, EntityError> {
        let now = (self.clock)();
        let (entity_type, entity_id) = match change.after.as_ref().or(change.before.as_ref()) {
            Some(e) => (e.entity_type.clone(), e.id.clone()),
            None => {
                return Err(EntityError::Internal(format!(
                    "holding `{}`, which changes nothing",
                    change.key
                )));
            }
        };
        let held = HeldChange {
            id: uuid::Uuid::now_v7().to_string(),
            state: PENDING.into(),
            entity_type,
            entity_id,
            base_revision: if change.before.is_some() {
                change.stored_revision
            } else {
                0
            },
            after: change.after.clone(),
            proposed_by: writer.label(),
            proposed_at_us: now,
            decided_by: None,
            decided_at_us: None,
        };
        let write = record_write(&held, 1, now, now)?;
        let event = event(
            "entity.change_proposed",
            &held,
            None,
            json!({
                "entity": change.key,
                "base_revision": held.base_revision,
                "before_sha256": change.before.as_ref().map(entity_sha256),
                "after_sha256": held.after.as_ref().map(entity_sha256),
            }),
            now,
        );
        self.store
            .commit_governance(&GovernanceCommit::records(vec![write], vec![event]))
            .await?;
        Ok(held)
    }

    /// The held changes (in `state`, if given), newest first.
    pub async fn held_changes(&self, state: Option<&str>, limit: u32) -> Result<Vec<HeldChange>, EntityError> {
        let records = self
            .store
            .governance_records(&RecordQuery {
                kind: ENTITY_CHANGE.into(),
                state: state.map(str::to_owned),
                limit,
                before_created_at_us: None,
            })
            .await?;
        records.iter().map(read).collect()
    }

    /// Approve a held change as `approver` (not its proposer; its rules must allow the change) and apply it, in
    /// one transaction with both audit events.
    pub async fn approve(&self, approver: &Principal, change_id: &str) -> Result<HeldChange, EntityError> {
        let _writing = self.writing.lock().await;
        let (record, mut held) = self.pending(change_id).await?;
        let label = approver.label();
        if label == held.proposed_by {
            return Err(EntityError::Forbidden(
                "a held change is approved by another principal than the one that proposed it".into(),
            ));
        }
        let mut change = self.current(&held.entity_type, &held.entity_id).await?;
        let registered_revision = if change.before.is_some() {
            change.stored_revision
        } else {
            0
        };
        if registered_revision != held.base_revision {
            return Err(EntityError::Conflict(format!(
                "`{}` changed since this change was proposed (revision {registered_revision}, proposed against {}); \
                 reject it and propose it again",
                change.key, held.base_revision
            )));
        }
        let constitution = self.active.constitution();
        if let Some(after) = &held.after {
            acgs_engine::Registry::check(&constitution, after).map_err(|e| EntityError::Invalid(e.to_string()))?;
        }
        authorize_write(
            &constitution,
            approver,
            &held.entity_type,
            change.before.as_ref(),
            held.after.as_ref(),
        )
        .map_err(EntityError::Forbidden)?;
        let now = (self.clock)();
        held.state = APPROVED.into();
        held.decided_by = Some(label);
        held.decided_at_us = Some(now);
        let write = record_write(&held, record.revision + 1, record.created_at_us, now)?;
        let event = event(
            "entity.change_approved",
            &held,
            Some(PENDING),
            json!({ "entity": change.key }),
            now,
        );
        change.after = held.after.clone();
        self.commit(Writer::Principal(approver), vec![change], vec![write], vec![event])
            .await?;
        Ok(held)
    }

    /// Reject a held change as `reviewer` (its proposer withdrawing it, or a principal whose rules allow it).
    pub async fn reject(&self, reviewer: &Principal, change_id: &str) -> Result<HeldChange, EntityError> {
        let _writing = self.writing.lock().await;
        let (record, mut held) = self.pending(change_id).await?;
        let label = reviewer.label();
        if label != held.proposed_by {
            let current = self.current(&held.entity_type, &held.entity_id).await?;
            authorize_write(
                &self.active.constitution(),
                reviewer,
                &held.entity_type,
                current.before.as_ref(),
                held.after.as_ref(),
            )
            .map_err(EntityError::Forbidden)?;
        }
        let now = (self.clock)();
        held.state = REJECTED.into();
        held.decided_by = Some(label);
        held.decided_at_us = Some(now);
        let write = record_write(&held, record.revision + 1, record.created_at_us, now)?;
        let event = event(
            "entity.change_rejected",
            &held,
            Some(PENDING),
            json!({ "entity": key(&held.entity_type, &held.entity_id) }),
            now,
        );
        self.store
            .commit_governance(&GovernanceCommit::records(vec![write], vec![event]))
            .await?;
        Ok(held)
    }

    /// The stored record of a held change that is still pending.
    async fn pending(&self, change_id: &str) -> Result<(GovernanceRecord, HeldChange), EntityError> {
        let record = self
            .store
            .governance_record(ENTITY_CHANGE, change_id)
            .await?
            .ok_or_else(|| EntityError::NotFound(format!("no held change `{change_id}`")))?;
        let held = read(&record)?;
        if held.state != PENDING {
            return Err(EntityError::Conflict(format!(
                "held change `{change_id}` is {}, not pending",
                held.state
            )));
        }
        Ok((record, held))
    }
}

/// A held change's record as it is to be written at `revision`.
fn record_write(held: &HeldChange, revision: i64, created_at_us: i64, now: i64) -> Result<RecordWrite, EntityError> {
    let body = serde_json::to_string(held).map_err(|e| EntityError::Internal(format!("encoding a change: {e}")))?;
    Ok(RecordWrite {
        record: GovernanceRecord {
            kind: ENTITY_CHANGE.into(),
            id: held.id.clone(),
            revision,
            state: held.state.clone(),
            created_at_us,
            updated_at_us: now,
            body,
        },
        expected_revision: revision - 1,
    })
}

fn read(record: &GovernanceRecord) -> Result<HeldChange, EntityError> {
    serde_json::from_str(&record.body)
        .map_err(|e| EntityError::Internal(format!("held change `{}` does not read back: {e}", record.id)))
}

fn event(action: &str, held: &HeldChange, from: Option<&str>, detail: serde_json::Value, now: i64) -> NewEvent {
    NewEvent::governance(
        GovernanceEvent {
            action: action.into(),
            subject: format!("entity_change/{}", held.id),
            actor: held.decided_by.clone().unwrap_or_else(|| held.proposed_by.clone()),
            from_state: from.map(str::to_owned),
            to_state: Some(held.state.clone()),
            detail,
        },
        now,
    )
}
