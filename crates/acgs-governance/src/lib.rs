//! The governance rules of ACGS as pure code: amendments and their state machine ([`amendment`]), weighted
//! votes ([`tally`]), M-of-N approvals within a window ([`motion`]), the emergency halt ([`emergency`]), appeals
//! of decisions ([`appeal`]), authority transfers ([`transfer`]), the
//! verification gate ([`gate`]) and readable diffs between constitutions ([`diff`]). Nothing here does I/O or
//! reads a clock: the governance service (`acgs-server`) loads a governed object, calls a step with the time and
//! the authenticated user, and stores the result with the [`Step`]s it returns as audit events, in one
//! transaction. The meaning follows the Quantumagi program's rules (`programs/quantumagi/src/rules.rs`);
//! `docs/governance.md` says where the two differ.
#![deny(missing_docs)]

pub mod amendment;
pub mod appeal;
pub mod diff;
pub mod emergency;
pub mod error;
pub mod gate;
pub mod motion;
pub mod tally;
pub mod transfer;

pub use amendment::{Amendment, AmendmentState, DraftRequest, VersionRef};
pub use appeal::{Appeal, AppealState, AppealedDecision, RulingKind};
pub use diff::ConstitutionDiff;
pub use emergency::{EmergencyAction, EmergencyState};
pub use error::GovernanceError;
pub use gate::{GateCheck, GateReport, ProofCheck, ProofOutcome, run_gate};
pub use tally::{Choice, Tally, VoteRules};
pub use transfer::{Transfer, TransferState, TransferTarget};

/// One step a governed object took: what becomes its audit event (`acgs_audit::event::GovernanceEvent`, with
/// the object as subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What happened, e.g. `amendment.voted`.
    pub action: String,
    /// Who: `user:<name>` or `clock`.
    pub actor: String,
    /// The state before, if the object has one.
    pub from_state: Option<String>,
    /// The state after.
    pub to_state: Option<String>,
    /// The step's own data.
    pub detail: serde_json::Value,
}

impl Step {
    /// A step without detail.
    pub fn new(action: &str, actor: &str, from: Option<&str>, to: Option<&str>) -> Self {
        Self {
            action: action.to_owned(),
            actor: actor.to_owned(),
            from_state: from.map(str::to_owned),
            to_state: to.map(str::to_owned),
            detail: serde_json::Value::Null,
        }
    }

    /// The step with `detail`.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}
