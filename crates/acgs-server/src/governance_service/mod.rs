//! The governance service: amendments (draft, open, vote, veto, cancel, execute), the emergency halt and the
//! constitution versions, for the authenticated user the handlers pass in. Each step loads the governed object,
//! lets time take its steps first (a vote whose period is over closes, a queued amendment past its grace period
//! expires, an amendment drafted against a version no longer in force goes stale), applies the rules of
//! `acgs-governance`, and commits the new state with one audit event per step in one transaction
//! (`GovernanceStore::commit_governance`); a concurrent change of the same object makes the commit fail and the
//! step is tried again on the new state. Executing an amendment puts its constitution in force in that same
//! transaction, marks every other open amendment stale, and swaps the engine ([`ActiveConstitution`]).
//!
//! Time and ids are injected ([`Clock`], [`IdSource`]) so that timelocks and deadlines are tested without waiting.

mod amendments;
mod appeals;
mod emergency;
mod transfers;

use std::sync::Arc;

use acgs_audit::event::GovernanceEvent;
use acgs_engine::{Constitution, Engine};
use acgs_governance::amendment::Amendment;
use acgs_governance::{EmergencyState, GovernanceError, ProofCheck, Step, TransferState};
use acgs_store::{ConstitutionVersion, GovernanceRecord, NewEvent, RecordQuery, RecordWrite, Store, StoreError};

pub use appeals::{AppealInput, RulingInput};
use serde::Serialize;

use crate::active::ActiveConstitution;
use crate::decision_service::{Clock, IdSource};
use crate::halt::HaltSwitch;

/// The record kind of amendments.
pub const AMENDMENT: &str = "amendment";
/// The record kind of the emergency state.
pub const EMERGENCY: &str = "emergency";
/// The id of the one emergency record.
pub const HALT: &str = "halt";
/// The record kind of appeals.
pub const APPEAL: &str = "appeal";
/// The record kind of authority transfers.
pub const TRANSFER: &str = "transfer";

/// How often a step is tried again when the object changed under it.
const ATTEMPTS: usize = 5;

/// Why a governance request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The rules refused it (409, 403, 400 or 422 by kind).
    #[error(transparent)]
    Rule(#[from] GovernanceError),
    /// No such amendment or version (404).
    #[error("{0}")]
    NotFound(String),
    /// Storage failed (503).
    #[error(transparent)]
    Store(StoreError),
    /// A bug: a stored body that does not read back, a failed task (500).
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => Self::Rule(GovernanceError::Conflict(message)),
            other => Self::Store(other),
        }
    }
}

/// What a drafter sends.
#[derive(Debug, Clone)]
pub struct DraftInput {
    /// Short title.
    pub title: String,
    /// Why.
    pub rationale: String,
    /// The full proposed constitution (TOML); or
    pub constitution: Option<String>,
    /// the number of an earlier version to restore (a rollback).
    pub restore_version: Option<i64>,
}

/// The emergency state and the rules it runs by.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EmergencyStatus {
    /// Halted, since when, why, by whom, and the motion collecting approvals.
    pub state: EmergencyState,
    /// How many approvals a halt or resume needs.
    pub threshold: u32,
    /// Who may approve.
    pub members: Vec<String>,
    /// How long a motion collects approvals (seconds).
    pub approval_window_secs: u64,
}

/// Governs the constitution. Cheap to clone.
#[derive(Clone)]
pub struct GovernanceService {
    store: Arc<dyn Store>,
    active: Arc<ActiveConstitution>,
    halt: Arc<HaltSwitch>,
    clock: Clock,
    ids: IdSource,
    proofs: Arc<Vec<Arc<dyn ProofCheck>>>,
}

impl std::fmt::Debug for GovernanceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernanceService")
            .field("active", &self.active)
            .field("halt", &self.halt)
            .finish_non_exhaustive()
    }
}

/// The audit events of `steps` taken by the object `subject` at `now_us`.
fn events(subject: &str, steps: Vec<Step>, now_us: i64) -> Vec<NewEvent> {
    steps
        .into_iter()
        .map(|s| {
            NewEvent::governance(
                GovernanceEvent {
                    action: s.action,
                    subject: subject.to_owned(),
                    actor: s.actor,
                    from_state: s.from_state,
                    to_state: s.to_state,
                    detail: s.detail,
                },
                now_us,
            )
        })
        .collect()
}

fn internal(what: &str) -> impl FnOnce(serde_json::Error) -> ServiceError + '_ {
    move |e| ServiceError::Internal(format!("{what}: {e}"))
}

/// A governed object as the store keeps it: a record of its kind, with its id, state and creation time.
trait Governed: serde::Serialize {
    /// The record kind.
    const KIND: &'static str;
    /// Its id within the kind.
    fn id(&self) -> &str;
    /// Its state's name.
    fn state(&self) -> &'static str;
    /// When it was created (µs).
    fn created_at_us(&self) -> i64;
}

impl Governed for Amendment {
    const KIND: &'static str = AMENDMENT;
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

/// The write that stores `object` over `stored` (`None`: a new record; a replacement keeps its creation time).
fn record_write<T: Governed>(
    object: &T,
    stored: Option<&GovernanceRecord>,
    now_us: i64,
) -> Result<RecordWrite, ServiceError> {
    let expected = stored.map_or(0, |r| r.revision);
    Ok(RecordWrite {
        record: GovernanceRecord {
            kind: T::KIND.into(),
            id: object.id().into(),
            revision: expected + 1,
            state: object.state().into(),
            created_at_us: stored.map_or(object.created_at_us(), |r| r.created_at_us),
            updated_at_us: now_us,
            body: serde_json::to_string(object)
                .map_err(|e| ServiceError::Internal(format!("encoding a {}: {e}", T::KIND)))?,
        },
        expected_revision: expected,
    })
}

fn subject(amendment: &Amendment) -> String {
    format!("{AMENDMENT}/{}", amendment.id)
}

impl GovernanceService {
    /// A service over `store`, acting on `active` and `halt`, with `proofs` as the verification gate's further
    /// checks.
    pub fn new(
        store: Arc<dyn Store>,
        active: Arc<ActiveConstitution>,
        halt: Arc<HaltSwitch>,
        clock: Clock,
        ids: IdSource,
        proofs: Vec<Arc<dyn ProofCheck>>,
    ) -> Self {
        Self {
            store,
            active,
            halt,
            clock,
            ids,
            proofs: Arc::new(proofs),
        }
    }

    /// The same service timed by `clock` and naming amendments with `ids`.
    pub fn with_clock_and_ids(mut self, clock: Clock, ids: IdSource) -> Self {
        self.clock = clock;
        self.ids = ids;
        self
    }

    /// The halt state the decision service acts on.
    pub fn halt(&self) -> &Arc<HaltSwitch> {
        &self.halt
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The rules of the constitution in force, or [`GovernanceError::Ungoverned`].
    fn rules(&self) -> Result<(Arc<crate::active::InForce>, acgs_engine::governance::Governance), ServiceError> {
        let in_force = self.active.in_force();
        let rules = in_force
            .engine
            .constitution()
            .governance()
            .cloned()
            .ok_or(GovernanceError::Ungoverned)?;
        Ok((in_force, rules))
    }

    /// Take the steps time has taken on every open amendment, appeal and transfer (run periodically, so that votes
    /// close and amendments, appeals and transfers expire, lapse or go stale near their time even when nobody looks
    /// at them). Returns how many objects moved.
    pub async fn settle_due(&self) -> Result<usize, ServiceError> {
        let mut moved = self.settle_amendments().await?;
        let now = self.now();
        for appeal in self
            .appeals(Some(acgs_governance::AppealState::Filed), RecordQuery::MAX_LIMIT, None)
            .await?
        {
            if now >= appeal.deadline_us {
                self.appeal(&appeal.id).await?;
                moved += 1;
            }
        }
        for state in [TransferState::Proposed, TransferState::Accepting] {
            for transfer in self.transfers(Some(state), RecordQuery::MAX_LIMIT).await? {
                if now >= transfer.lapses_at_us || transfer.base.number != self.active.number() {
                    self.transfer(&transfer.id).await?;
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }

    /// The stored object `kind`/`id` with its record, or 404 naming it as `what`.
    async fn load_record<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
        what: &str,
    ) -> Result<(GovernanceRecord, T), ServiceError> {
        let record = self
            .store
            .governance_record(kind, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no {what} `{id}`")))?;
        let body = serde_json::from_str(&record.body)
            .map_err(|e| ServiceError::Internal(format!("reading the {what} `{id}`: {e}")))?;
        Ok((record, body))
    }

    /// The stored objects of `kind`, newest first, optionally only those in `state`, with their records.
    async fn list_records<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        state: Option<&str>,
        limit: u32,
        before_created_at_us: Option<i64>,
    ) -> Result<Vec<(GovernanceRecord, T)>, ServiceError> {
        let records = self
            .store
            .governance_records(&RecordQuery {
                kind: kind.into(),
                state: state.map(str::to_owned),
                limit,
                before_created_at_us,
            })
            .await?;
        records
            .into_iter()
            .map(|r| {
                let body = serde_json::from_str(&r.body)
                    .map_err(|e| ServiceError::Internal(format!("reading the {kind} `{}`: {e}", r.id)))?;
                Ok((r, body))
            })
            .collect()
    }

    /// Read the stored state other replicas may have changed: the version in force (compiled and swapped in if it
    /// is not the one running) and the emergency state. Run at start and periodically.
    pub async fn refresh(&self) -> Result<(), ServiceError> {
        if let Some(stored) = self.store.active_constitution().await?
            && stored.number != self.active.number()
        {
            let engine = compile_version(&stored).await?;
            self.active.activate(engine, stored.number);
            tracing::info!(version = stored.number, hash = %stored.version.hash, "constitution version put in force");
        }
        let state = self.emergency_record().await?.map(|(s, _)| s).unwrap_or_default();
        if *self.halt.state() != state {
            self.halt.set(state);
        }
        Ok(())
    }

    // ---- versions ---------------------------------------------------------------------------------------------

    /// Every constitution version, oldest first.
    pub async fn versions(&self) -> Result<Vec<ConstitutionVersion>, ServiceError> {
        Ok(self.store.constitution_versions().await?)
    }

    /// Version `number`.
    pub async fn version(&self, number: i64) -> Result<ConstitutionVersion, ServiceError> {
        self.versions()
            .await?
            .into_iter()
            .find(|v| v.number == number)
            .ok_or_else(|| ServiceError::NotFound(format!("no constitution version {number}")))
    }
}

/// The amendment, or [`GovernanceError::GateFailed`] with the failed checks when its last gate report failed.
fn gate_verdict(amendment: Amendment) -> Result<Amendment, ServiceError> {
    match amendment.gate_reports.last() {
        Some(report) if !report.passed => Err(gate_verdict_of(
            &format!("amendment `{}` (the report is kept with it)", amendment.id),
            report,
        )
        .into()),
        _ => Ok(amendment),
    }
}

/// The refusal of `what`, whose gate `report` failed.
fn gate_verdict_of(what: &str, report: &acgs_governance::GateReport) -> GovernanceError {
    GovernanceError::GateFailed(format!(
        "{what} failed the verification gate ({}):\n{}",
        report.stage,
        report.failures()
    ))
}

/// Run CPU work (compiling, testing) on the blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Internal(format!("a governance task failed: {e}")))
}

/// Compile a constitution without running its tests (the gate runs them); invalid → 400 with every problem.
async fn compile_unchecked(name: String, source: String) -> Result<Constitution, ServiceError> {
    blocking(move || Constitution::compile(&name, &source))
        .await?
        .map_err(|e| GovernanceError::Invalid(e.to_string()).into())
}

/// The engine of a stored version, checked against its recorded hash.
async fn compile_version(stored: &ConstitutionVersion) -> Result<Arc<Engine>, ServiceError> {
    let (name, source, hash, number) = (
        stored.version.source_name.clone(),
        stored.version.source.clone(),
        stored.version.hash.clone(),
        stored.number,
    );
    blocking(move || {
        let constitution = Constitution::from_toml(&name, &source)
            .map_err(|e| ServiceError::Internal(format!("stored constitution version {number} does not load: {e}")))?;
        if constitution.hash().to_hex() != hash {
            return Err(ServiceError::Internal(format!(
                "stored constitution version {number} hashes to {}, not its recorded {hash}",
                constitution.hash()
            )));
        }
        Ok(Arc::new(Engine::new(Arc::new(constitution))))
    })
    .await?
}
