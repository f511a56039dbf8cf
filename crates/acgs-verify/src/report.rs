//! What a verification run returns: one result per check with its verdict, severity, timing and, where it has
//! one, a concrete request (in the format of `POST /v1/decisions`) that shows it; and the change report between two
//! constitutions.

use acgs_engine::{DecisionRequest, FindingSeverity, Outcome};
use serde::{Deserialize, Serialize};

/// What the solver concluded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Proved for every request the schema allows.
    Holds,
    /// Refuted; the result carries a request that shows it.
    Violated,
    /// The solver could not decide (timeout, resource limit) or the proof needs another check to hold first.
    /// Never treated as holding.
    Unknown,
}

/// Which question a check answers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// One of the constitution's `[[invariants]]`.
    Invariant,
    /// The policy never fails to evaluate (an evaluation error makes the decision `deny`).
    NeverErrors,
    /// The policy applies to at least one request.
    PolicyMatches,
    /// The permit decides at least one request: not every request it applies to is denied by a forbid.
    PermitTakesEffect,
    /// Removing the policy would change at least one decision.
    PolicyNeeded,
    /// Some request for the action can be allowed or escalated.
    ActionReachable,
}

impl CheckKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invariant => "invariant",
            Self::NeverErrors => "never_errors",
            Self::PolicyMatches => "policy_matches",
            Self::PermitTakesEffect => "permit_takes_effect",
            Self::PolicyNeeded => "policy_needed",
            Self::ActionReachable => "action_reachable",
        }
    }
}

/// A concrete request found by the solver, and what the decision engine decides for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// What the request shows, in words.
    pub shows: String,
    /// The request, as a body for `POST /v1/decisions` (detector findings become `content` that produces them).
    pub request: DecisionRequest,
    /// The engine's decision under the constitution checked (for a change report: the new one).
    pub outcome: Outcome,
    /// The policies that decided it, and any that failed to evaluate.
    pub policies: Vec<String>,
    /// For a change report: the decision under the old constitution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_outcome: Option<Outcome>,
}

/// The result of one check.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which question.
    pub check: CheckKind,
    /// What about: an invariant id, a policy id or an action.
    pub subject: String,
    /// The solver's verdict.
    pub verdict: Verdict,
    /// What a verdict other than `holds` does in the amendment gate.
    pub severity: FindingSeverity,
    /// The result in words.
    pub detail: String,
    /// A request that shows the violation (or, for a check that holds by example, a witness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Example>,
    /// Time the solver spent on it (µs; 0 when taken from the cache).
    pub took_us: u64,
    /// Taken from an earlier run on the same constitution.
    pub cached: bool,
}

impl CheckResult {
    /// Whether this result fails the gate: not holding, at severity `block`.
    pub fn blocks(&self) -> bool {
        self.verdict != Verdict::Holds && self.severity == FindingSeverity::Block
    }

    /// Whether this result is a warning: not holding, at severity `warn`.
    pub fn warns(&self) -> bool {
        self.verdict != Verdict::Holds && self.severity == FindingSeverity::Warn
    }
}

/// Everything proved about one constitution.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// The full hash of the constitution checked.
    pub constitution_hash: String,
    /// The solver and its version.
    pub solver: String,
    /// No result blocks.
    pub passed: bool,
    /// Results that block (violations, and `unknown` where a proof is required).
    pub blocking: usize,
    /// Results reported as warnings.
    pub warnings: usize,
    /// Every result: invariants, then per policy, then per action.
    pub checks: Vec<CheckResult>,
    /// Wall time of the run (ms).
    pub took_ms: u64,
}

impl VerificationReport {
    /// The results that block, one line each.
    pub fn blocking_lines(&self) -> Vec<String> {
        self.checks.iter().filter(|c| c.blocks()).map(one_line).collect()
    }

    /// The warnings, one line each.
    pub fn warning_lines(&self) -> Vec<String> {
        self.checks.iter().filter(|c| c.warns()).map(one_line).collect()
    }
}

fn one_line(c: &CheckResult) -> String {
    format!("{} {}: {}", c.check.as_str(), c.subject, c.detail)
}

/// How one outcome's set of requests changed for an action.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeChange {
    /// `allow` (requests allowed outright) or `deny` (requests denied; the rest are allowed or escalated).
    pub outcome: String,
    /// The two constitutions give this outcome to exactly the same requests.
    pub verdict: Verdict,
    /// A request the new version gives this outcome and the old does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_new: Option<Example>,
    /// A request the old version gives this outcome and the new does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_old: Option<Example>,
    /// What was found, in words.
    pub detail: String,
}

/// How decisions for one action change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionChange {
    /// The action (`Action::"id"`).
    pub action: String,
    /// `unchanged`, `changed`, `added` (not in the old schema), `removed` (not in the new one) or `unknown`.
    pub status: String,
    /// Allowed requests, then denied requests (escalated ones are the rest: unchanged when both are).
    pub outcomes: Vec<OutcomeChange>,
}

/// What an amendment changes in decisions: what council members read before they vote.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeReport {
    /// Hash of the constitution compared against (the one in force).
    pub old_hash: String,
    /// Hash of the proposed constitution.
    pub new_hash: String,
    /// Every action decides every request the same way under both.
    pub equivalent: bool,
    /// Per action (of either schema), sorted.
    pub actions: Vec<ActionChange>,
    /// Wall time (ms).
    pub took_ms: u64,
}
