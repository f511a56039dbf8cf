//! Authority transfers: proposed and approved by the current emergency set, accepted by the new authorities; on
//! completion the constitution with the new authorities becomes the next version, in the same transaction.

use std::sync::Arc;

use acgs_engine::Engine;
use acgs_governance::amendment::VersionRef;
use acgs_governance::transfer::{Transfer, TransferState, TransferTarget, with_authorities};
use acgs_governance::{GovernanceError, Step, run_gate};
use acgs_store::{GovernanceCommit, GovernanceRecord, StoreError};

use super::amendments::Activation;
use super::{
    ATTEMPTS, GovernanceService, ServiceError, TRANSFER, blocking, compile_unchecked, events, gate_verdict_of,
    record_write,
};

impl super::Governed for Transfer {
    const KIND: &'static str = TRANSFER;
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &'static str {
        self.state.as_str()
    }
    fn created_at_us(&self) -> i64 {
        self.created_at_us
    }
}

fn subject(transfer: &Transfer) -> String {
    format!("{TRANSFER}/{}", transfer.id)
}

impl GovernanceService {
    /// Propose new authorities as a member of the current emergency set (the first approval).
    pub async fn propose_transfer(
        &self,
        user: &str,
        target: TransferTarget,
        reason: &str,
    ) -> Result<Transfer, ServiceError> {
        let (in_force, rules) = self.rules()?;
        let current = self.version(in_force.number).await?;
        let source = with_authorities(&current.version.source, &target)?;
        let id = (self.ids)();
        let candidate = compile_unchecked(format!("transfer {id}"), source.clone()).await?;
        let active = in_force.engine.constitution();
        if candidate.hash() == active.hash() {
            return Err(GovernanceError::Invalid("the new authorities are the ones in force".into()).into());
        }
        let base = VersionRef {
            number: in_force.number,
            hash: active.hash().to_hex(),
        };
        let now = self.now();
        let (transfer, steps) = Transfer::propose(
            id,
            user,
            reason,
            target,
            (base, source, candidate.hash().to_hex()),
            &rules,
            now,
        )?;
        let commit = GovernanceCommit {
            writes: vec![record_write(&transfer, None, now)?],
            expect_active: Some(in_force.number),
            activation: None,
            events: events(&subject(&transfer), steps, now),
        };
        self.commit_or_refresh(&commit).await?;
        Ok(transfer)
    }

    async fn load_transfer(&self, id: &str) -> Result<(GovernanceRecord, Transfer), ServiceError> {
        self.load_record(TRANSFER, id, "authority transfer").await
    }

    /// Load, settle, apply `op`, commit; again on a concurrent change.
    async fn transfer_step(
        &self,
        id: &str,
        op: impl Fn(&mut Transfer, i64) -> Result<Vec<Step>, GovernanceError>,
    ) -> Result<Transfer, ServiceError> {
        for _ in 0..ATTEMPTS {
            let (stored, mut transfer) = self.load_transfer(id).await?;
            let now = self.now();
            let mut steps = transfer.settle(self.active.number(), now);
            let failed = match op(&mut transfer, now) {
                Ok(more) => {
                    steps.extend(more);
                    None
                }
                Err(e) => Some(e),
            };
            if !steps.is_empty() {
                let commit = GovernanceCommit::records(
                    vec![record_write(&transfer, Some(&stored), now)?],
                    events(&subject(&transfer), steps, now),
                );
                match self.store.commit_governance(&commit).await {
                    Ok(_) => {}
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            return match failed {
                Some(e) => Err(e.into()),
                None => Ok(transfer),
            };
        }
        Err(GovernanceError::Conflict(format!("transfer `{id}` kept changing; try again")).into())
    }

    /// One transfer (lapsed or stale if time or another version says so, and recorded so).
    pub async fn transfer(&self, id: &str) -> Result<Transfer, ServiceError> {
        self.transfer_step(id, |_, _| Ok(Vec::new())).await
    }

    /// Transfers, newest first, optionally only those in `state`.
    pub async fn transfers(&self, state: Option<TransferState>, limit: u32) -> Result<Vec<Transfer>, ServiceError> {
        let listed = self
            .list_records(TRANSFER, state.map(TransferState::as_str), limit, None)
            .await?;
        Ok(listed.into_iter().map(|(_, transfer)| transfer).collect())
    }

    /// A further approval by a member of the current emergency set.
    pub async fn approve_transfer(&self, user: &str, id: &str, reason: &str) -> Result<Transfer, ServiceError> {
        let (_, rules) = self.rules()?;
        self.transfer_step(id, |t, now| t.approve(user, reason, &rules, now))
            .await
    }

    /// A new authority's acceptance; the last one needed puts the new constitution in force.
    pub async fn accept_transfer(&self, user: &str, id: &str) -> Result<Transfer, ServiceError> {
        for _ in 0..ATTEMPTS {
            let (in_force, _) = self.rules()?;
            let (stored, mut transfer) = self.load_transfer(id).await?;
            let now = self.now();
            let mut steps = transfer.settle(in_force.number, now);
            let number = in_force.number + 1;
            let accepted = if steps.is_empty() {
                transfer.accept(user, number, now)
            } else {
                Err(GovernanceError::Conflict(format!(
                    "transfer `{id}` is {}: nothing changed",
                    transfer.state
                )))
            };
            let accepted = match accepted {
                Ok(more) => more,
                Err(e) => {
                    if !steps.is_empty() {
                        let commit = GovernanceCommit::records(
                            vec![record_write(&transfer, Some(&stored), now)?],
                            events(&subject(&transfer), steps, now),
                        );
                        self.store.commit_governance(&commit).await?;
                    }
                    return Err(e.into());
                }
            };
            steps.extend(accepted);
            let writes = vec![record_write(&transfer, Some(&stored), now)?];
            let step_events = events(&subject(&transfer), steps, now);
            if transfer.state != TransferState::Completed {
                let commit = GovernanceCommit::records(writes, step_events);
                match self.store.commit_governance(&commit).await {
                    Ok(_) => return Ok(transfer),
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let active = in_force.engine.constitution().clone();
            let (proofs, source, name) = (self.proofs.clone(), transfer.source.clone(), format!("transfer {id}"));
            let (gate, validated) =
                blocking(move || run_gate("transfer", &name, &source, &active, &proofs, now)).await?;
            let Some(candidate) = validated else {
                return Err(gate_verdict_of(&format!("transfer `{id}`"), &gate).into());
            };
            let activation = Activation {
                actor: format!("user:{user}"),
                candidate: &candidate,
                source: &transfer.source,
                source_name: format!("authority transfer {id}"),
                reason: transfer.history_note(),
                origin: ("transfer", &transfer.id),
            };
            let commit = self
                .activation_commit(&in_force, activation, writes, step_events, now)
                .await?;
            match self.store.commit_governance(&commit).await {
                Ok(_) => {
                    self.active.activate(Arc::new(Engine::new(candidate)), number);
                    tracing::info!(transfer = %id, version = number, "authority transfer completed");
                    return Ok(transfer);
                }
                Err(StoreError::Conflict(_)) => self.refresh().await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GovernanceError::Conflict(format!("transfer `{id}` kept changing; try again")).into())
    }
}
