//! Amendments: draft, open, vote, cancel, veto, execute, and the steps time takes (votes closing, amendments
//! expiring or going stale).

use std::sync::Arc;

use acgs_engine::Constitution;
use acgs_engine::Engine;
use acgs_governance::amendment::{Amendment, AmendmentState, DraftRequest, VersionRef};
use acgs_governance::{Choice, ConstitutionDiff, GovernanceError, Step, run_gate};
use acgs_store::{GovernanceCommit, GovernanceRecord, NewConstitutionVersion, RecordQuery, RecordWrite, StoreError};

use super::{
    AMENDMENT, ATTEMPTS, DraftInput, GovernanceService, ServiceError, blocking, compile_unchecked, events,
    gate_verdict, record_write, subject,
};

/// A constitution to put in force, and how it came about.
pub(super) struct Activation<'a> {
    /// Who: `user:<name>`.
    pub(super) actor: String,
    /// The constitution, compiled and through the gate.
    pub(super) candidate: &'a Constitution,
    /// Its TOML.
    pub(super) source: &'a str,
    /// The version's source name, e.g. `amendment <id>`.
    pub(super) source_name: String,
    /// The version's reason: the amendment's title, the transfer's history.
    pub(super) reason: String,
    /// The governed object it comes from: kind and id.
    pub(super) origin: (&'static str, &'a str),
}

impl GovernanceService {
    /// Draft an amendment as `user`.
    pub async fn draft(&self, user: &str, input: DraftInput) -> Result<Amendment, ServiceError> {
        let (amendment, commit) = self.prepare_draft(user, input).await?;
        self.commit_or_refresh(&commit).await?;
        Ok(amendment)
    }

    /// A drafted amendment and the commit that records it (not yet committed: an appeal's ruling commits it with
    /// its own change).
    pub(super) async fn prepare_draft(
        &self,
        user: &str,
        input: DraftInput,
    ) -> Result<(Amendment, GovernanceCommit), ServiceError> {
        let (in_force, _rules) = self.rules()?;
        let (source, restores) = match (input.constitution, input.restore_version) {
            (Some(text), None) => (text, None),
            (None, Some(number)) => {
                let version = self.version(number).await?;
                if number == in_force.number {
                    return Err(GovernanceError::Invalid(format!("version {number} is the one in force")).into());
                }
                (version.version.source, Some(number))
            }
            _ => {
                return Err(GovernanceError::Invalid(
                    "send either `constitution` (the full proposed TOML) or `restore_version`".into(),
                )
                .into());
            }
        };
        let id = (self.ids)();
        let candidate = compile_unchecked(format!("amendment {id}"), source.clone()).await?;
        let active = in_force.engine.constitution().clone();
        let now = self.now();
        let base = VersionRef {
            number: in_force.number,
            hash: active.hash().to_hex(),
        };
        let (amendment, step) = Amendment::draft(
            DraftRequest {
                id,
                title: input.title,
                rationale: input.rationale,
                proposer: user.to_owned(),
                source,
                restores_version: restores,
            },
            base,
            &active,
            &candidate,
            now,
        )?;
        let commit = GovernanceCommit {
            writes: vec![record_write(&amendment, None, now)?],
            expect_active: Some(in_force.number),
            activation: None,
            events: events(&subject(&amendment), vec![step], now),
        };
        Ok((amendment, commit))
    }

    /// One amendment, with the steps time has taken applied (and recorded).
    pub async fn amendment(&self, id: &str) -> Result<Amendment, ServiceError> {
        self.step(id, |_, _| Ok(Vec::new())).await
    }

    /// Amendments, newest first, optionally only those in `state`.
    pub async fn amendments(
        &self,
        state: Option<AmendmentState>,
        limit: u32,
        before_created_at_us: Option<i64>,
    ) -> Result<Vec<Amendment>, ServiceError> {
        let listed = self
            .list_records(
                AMENDMENT,
                state.map(AmendmentState::as_str),
                limit,
                before_created_at_us,
            )
            .await?;
        Ok(listed.into_iter().map(|(_, amendment)| amendment).collect())
    }

    /// The difference between the version an amendment was drafted against and its proposed constitution.
    pub async fn diff(&self, id: &str) -> Result<ConstitutionDiff, ServiceError> {
        let amendment = self.amendment(id).await?;
        let base = self.version(amendment.base.number).await?;
        let old = compile_unchecked(base.version.source_name.clone(), base.version.source).await?;
        let new = compile_unchecked(format!("amendment {id}"), amendment.source).await?;
        Ok(ConstitutionDiff::between(&old, &new))
    }

    /// Open the vote (the proposer; the gate must pass: otherwise its report is kept and the answer is
    /// [`GovernanceError::GateFailed`]).
    pub async fn open(&self, user: &str, id: &str) -> Result<Amendment, ServiceError> {
        let (in_force, rules) = self.rules()?;
        let source = self.amendment(id).await?.source;
        let active = in_force.engine.constitution().clone();
        let proofs = self.proofs.clone();
        let now = self.now();
        let name = format!("amendment {id}");
        let (gate, _) = blocking(move || run_gate("open", &name, &source, &active, &proofs, now)).await?;
        let amendment = self.step(id, |a, now| a.open(user, &rules, gate.clone(), now)).await?;
        gate_verdict(amendment)
    }

    /// Cast or change `user`'s vote.
    pub async fn vote(&self, user: &str, id: &str, choice: Choice, reason: &str) -> Result<Amendment, ServiceError> {
        self.step(id, |a, now| a.vote(user, choice, reason, now)).await
    }

    /// Withdraw an amendment (its proposer).
    pub async fn cancel(&self, user: &str, id: &str, reason: &str) -> Result<Amendment, ServiceError> {
        self.step(id, |a, now| a.cancel(user, reason, now)).await
    }

    /// A guardian's veto approval.
    pub async fn veto(&self, user: &str, id: &str, reason: &str) -> Result<Amendment, ServiceError> {
        let (_, rules) = self.rules()?;
        self.step(id, |a, now| a.veto(user, reason, &rules, now)).await
    }

    /// Execute a queued amendment past its timelock: the gate runs again; on success its constitution is put in
    /// force (the next version), every other open amendment goes stale, and the engine is swapped.
    pub async fn execute(&self, user: &str, id: &str) -> Result<Amendment, ServiceError> {
        for _ in 0..ATTEMPTS {
            if self.halt.is_halted() {
                return Err(GovernanceError::Conflict(
                    "the system is halted by its emergency set: no amendment executes until it resumes".into(),
                )
                .into());
            }
            let (in_force, _) = self.rules()?;
            let (stored, mut amendment) = self.load(id).await?;
            let now = self.now();
            let mut steps = self.settle(&mut amendment, &in_force, now);
            if let Err(e) = amendment.check_executable(now) {
                self.commit_steps(&stored, &amendment, steps, now).await?;
                return Err(e.into());
            }
            let active = in_force.engine.constitution().clone();
            let (proofs, source, name) = (self.proofs.clone(), amendment.source.clone(), format!("amendment {id}"));
            let (gate, validated) =
                blocking(move || run_gate("execute", &name, &source, &active, &proofs, now)).await?;
            let number = in_force.number + 1;
            steps.extend(amendment.execute(user, gate, number, now)?);
            let Some(candidate) = validated.filter(|_| amendment.state == AmendmentState::Executed) else {
                self.commit_steps(&stored, &amendment, steps, now).await?;
                return gate_verdict(amendment);
            };
            let writes = vec![record_write(&amendment, Some(&stored), now)?];
            let activation = Activation {
                actor: format!("user:{user}"),
                candidate: &candidate,
                source: &amendment.source,
                source_name: format!("amendment {}", amendment.id),
                reason: format!("amendment {}: {}", amendment.id, amendment.title),
                origin: ("amendment", &amendment.id),
            };
            let commit = self
                .activation_commit(
                    &in_force,
                    activation,
                    writes,
                    events(&subject(&amendment), steps, now),
                    now,
                )
                .await?;
            match self.store.commit_governance(&commit).await {
                Ok(_) => {
                    self.active.activate(Arc::new(Engine::new(candidate)), number);
                    tracing::info!(amendment = %amendment.id, version = number, "amendment executed");
                    return Ok(amendment);
                }
                // Another step changed this or another open amendment, or another version came into force: read
                // again (the next round finds this amendment stale if the version in force changed).
                Err(StoreError::Conflict(_)) => self.refresh().await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GovernanceError::Conflict(format!(
            "amendment `{id}` kept changing while it was executed; try again"
        ))
        .into())
    }

    /// Take the steps time has taken on every open amendment.
    pub(super) async fn settle_amendments(&self) -> Result<usize, ServiceError> {
        let Ok((in_force, _)) = self.rules() else {
            return Ok(0);
        };
        let now = self.now();
        let mut settled = 0;
        for (record, mut amendment) in self.open_amendments().await? {
            let steps = self.settle(&mut amendment, &in_force, now);
            if steps.is_empty() {
                continue;
            }
            match self.commit_steps(&record, &amendment, steps, now).await {
                Ok(()) => settled += 1,
                Err(ServiceError::Rule(GovernanceError::Conflict(_))) => {} // changed meanwhile; next round
                Err(e) => return Err(e),
            }
        }
        Ok(settled)
    }

    /// The commit that puts `activation` in force as the next version after `in_force`, with `writes` and
    /// `events`: plus the `constitution.activated` event and every other open amendment marked stale.
    pub(super) async fn activation_commit(
        &self,
        in_force: &crate::active::InForce,
        activation: Activation<'_>,
        mut writes: Vec<RecordWrite>,
        mut all_events: Vec<acgs_store::NewEvent>,
        now: i64,
    ) -> Result<GovernanceCommit, ServiceError> {
        let number = in_force.number + 1;
        let hash = activation.candidate.hash().to_hex();
        let (origin_kind, origin_id) = activation.origin;
        all_events.extend(events(
            &format!("constitution/{number}"),
            vec![
                Step::new("constitution.activated", &activation.actor, None, None).detail(serde_json::json!({
                    "hash": hash,
                    "version_label": activation.candidate.metadata().version,
                    "previous_version": in_force.number,
                    origin_kind: origin_id,
                    "reason": activation.reason,
                })),
            ],
            now,
        ));
        let activated = VersionRef {
            number,
            hash: hash.clone(),
        };
        for (record, mut other) in self.open_amendments().await? {
            if origin_kind == AMENDMENT && other.id == origin_id {
                continue;
            }
            if let Some(step) = other.mark_stale("clock", &activated, now) {
                writes.push(record_write(&other, Some(&record), now)?);
                all_events.extend(events(&subject(&other), vec![step], now));
            }
        }
        Ok(GovernanceCommit {
            writes,
            expect_active: Some(in_force.number),
            activation: Some(NewConstitutionVersion {
                hash,
                version_label: activation.candidate.metadata().version.clone(),
                name: activation.candidate.metadata().name.clone(),
                source_name: activation.source_name,
                source: activation.source.to_owned(),
                activated_at_us: now,
                activated_by: activation.actor,
                reason: activation.reason,
            }),
            events: all_events,
        })
    }

    /// Open amendments (draft, voting, queued) with their records.
    async fn open_amendments(&self) -> Result<Vec<(GovernanceRecord, Amendment)>, ServiceError> {
        let mut open = Vec::new();
        for state in [AmendmentState::Draft, AmendmentState::Voting, AmendmentState::Queued] {
            open.extend(
                self.list_records(AMENDMENT, Some(state.as_str()), RecordQuery::MAX_LIMIT, None)
                    .await?,
            );
        }
        Ok(open)
    }

    /// The steps time has taken on `amendment` by `now`, and staleness against the version in force.
    fn settle(&self, amendment: &mut Amendment, in_force: &crate::active::InForce, now: i64) -> Vec<Step> {
        let mut steps = amendment.settle(now);
        if amendment.state.is_open() && amendment.base.number != in_force.number {
            let active = VersionRef {
                number: in_force.number,
                hash: in_force.engine.constitution().hash().to_hex(),
            };
            steps.extend(amendment.mark_stale("clock", &active, now));
        }
        steps
    }

    async fn load(&self, id: &str) -> Result<(GovernanceRecord, Amendment), ServiceError> {
        self.load_record(AMENDMENT, id, "amendment").await
    }

    /// Load, settle, apply `op`, commit; again on a concurrent change. Steps time took are committed even when
    /// `op` is refused (the refusal then says why, e.g. that the vote has closed).
    async fn step(
        &self,
        id: &str,
        op: impl Fn(&mut Amendment, i64) -> Result<Vec<Step>, GovernanceError>,
    ) -> Result<Amendment, ServiceError> {
        for _ in 0..ATTEMPTS {
            let in_force = self.active.in_force();
            let (stored, mut amendment) = self.load(id).await?;
            let now = self.now();
            let mut steps = self.settle(&mut amendment, &in_force, now);
            // A stale amendment refuses every step by its state (a read still shows it).
            let failed = match op(&mut amendment, now) {
                Ok(more) => {
                    steps.extend(more);
                    None
                }
                Err(e) => Some(e),
            };
            if steps.is_empty() {
                return match failed {
                    Some(e) => Err(e.into()),
                    None => Ok(amendment),
                };
            }
            match self.commit_steps(&stored, &amendment, steps, now).await {
                Ok(()) => {
                    return match failed {
                        Some(e) => Err(e.into()),
                        None => Ok(amendment),
                    };
                }
                Err(ServiceError::Rule(GovernanceError::Conflict(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(GovernanceError::Conflict(format!("amendment `{id}` kept changing; try again")).into())
    }

    async fn commit_steps(
        &self,
        stored: &GovernanceRecord,
        amendment: &Amendment,
        steps: Vec<Step>,
        now: i64,
    ) -> Result<(), ServiceError> {
        if steps.is_empty() {
            return Ok(());
        }
        let commit = GovernanceCommit::records(
            vec![record_write(amendment, Some(stored), now)?],
            events(&subject(amendment), steps, now),
        );
        self.store.commit_governance(&commit).await?;
        Ok(())
    }

    /// Commit; if the version in force changed meanwhile, catch up with it and say so.
    pub(super) async fn commit_or_refresh(&self, commit: &GovernanceCommit) -> Result<(), ServiceError> {
        match self.store.commit_governance(commit).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(message)) => {
                self.refresh().await?;
                Err(GovernanceError::Conflict(format!("{message}; the server has caught up, try again")).into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
