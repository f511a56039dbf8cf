//! An amendment and its state machine. An amendment is a full proposed constitution with a title and
//! rationale, drafted against the version in force:
//!
//! ```text
//! draft ──open──▶ voting ──(period over, or decided early)──▶ succeeded ──▶ queued ──execute──▶ executed
//!   │               ├──▶ defeated                                             ├──▶ expired (grace period over)
//!   │               ├──▶ vetoed (M guardians)      ◀──────────────────────────┤
//!   ├──cancel──▶ cancelled ◀──cancel──┘                                        │
//!   └── any open state ──▶ stale (another version was put in force) ◀─────────┘
//! ```
//!
//! Every method checks that its step is legal in the current state and returns the [`Step`]s it took (each
//! becomes an audit event); time comes in as `now_us`, never from a clock here.

use std::collections::BTreeMap;
use std::fmt;

use acgs_engine::Constitution;
use acgs_engine::governance::{CouncilSeat, Governance};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Step;
use crate::error::GovernanceError;
use crate::gate::GateReport;
use crate::motion::{Motion, secs_to_us};
use crate::tally::{Choice, Tally, VoteRules, outcome};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest rationale, reason or statement, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// Where an amendment is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmendmentState {
    /// Being prepared; the proposer may still cancel it or open the vote.
    Draft,
    /// Open for votes.
    Voting,
    /// The vote passed (queued at once).
    Succeeded,
    /// The vote failed.
    Defeated,
    /// Stopped by the guardians.
    Vetoed,
    /// Withdrawn by its proposer.
    Cancelled,
    /// Not executed within the grace period.
    Expired,
    /// Waiting for its timelock; executable from `executable_at_us` until `expires_at_us`.
    Queued,
    /// In force (as the version `executed_as_version`).
    Executed,
    /// Another version was put in force after it was drafted; it must be redrafted.
    Stale,
}

impl AmendmentState {
    /// Every state.
    pub const ALL: [AmendmentState; 10] = [
        Self::Draft,
        Self::Voting,
        Self::Succeeded,
        Self::Defeated,
        Self::Vetoed,
        Self::Cancelled,
        Self::Expired,
        Self::Queued,
        Self::Executed,
        Self::Stale,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Voting => "voting",
            Self::Succeeded => "succeeded",
            Self::Defeated => "defeated",
            Self::Vetoed => "vetoed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Queued => "queued",
            Self::Executed => "executed",
            Self::Stale => "stale",
        }
    }

    /// Whether the amendment can still come into force (draft, voting, succeeded, queued).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Draft | Self::Voting | Self::Succeeded | Self::Queued)
    }
}

impl fmt::Display for AmendmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AmendmentState {
    type Err = String;
    fn from_str(word: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == word)
            .ok_or_else(|| format!("`{word}` is not an amendment state"))
    }
}

/// A constitution version, by number and hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRef {
    /// The version's number in the history.
    pub number: i64,
    /// Its constitutional hash.
    pub hash: String,
}

/// One step of the amendment's life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The state before (none for the draft itself).
    pub from: Option<AmendmentState>,
    /// The state after.
    pub to: AmendmentState,
    /// When (µs since the Unix epoch).
    pub at_us: i64,
    /// Who: `user:<name>` or `clock`.
    pub actor: String,
}

/// A council member's vote.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// For, against or abstain.
    pub choice: Choice,
    /// The member's weight from the register (never from the voter).
    pub weight: u64,
    /// Why, in the member's words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When it was cast (or last changed).
    pub at_us: i64,
}

/// The vote of an amendment, fixed when it opened: the rules, the register and the deadline.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    /// Quorum, threshold and early close.
    pub rules: VoteRules,
    /// The council register when the vote opened.
    pub council: Vec<CouncilSeat>,
    /// When voting closes (µs).
    pub ends_at_us: i64,
    /// The timelock after passing (seconds).
    pub timelock_secs: u64,
    /// The grace period after the timelock (seconds).
    pub grace_period_secs: u64,
    /// Votes by member.
    pub votes: BTreeMap<String, Vote>,
    /// The weight cast each way.
    pub tally: Tally,
}

/// What a drafter supplies.
#[derive(Debug, Clone)]
pub struct DraftRequest {
    /// The amendment's id (assigned by the caller's id source).
    pub id: String,
    /// Short title.
    pub title: String,
    /// Why.
    pub rationale: String,
    /// The drafting user.
    pub proposer: String,
    /// The full proposed constitution (TOML).
    pub source: String,
    /// The earlier version it restores, for a rollback.
    pub restores_version: Option<i64>,
}

/// An amendment with everything that happened to it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amendment {
    /// Its id.
    pub id: String,
    /// Short title.
    pub title: String,
    /// Why.
    pub rationale: String,
    /// Who drafted it.
    pub proposer: String,
    /// Where it is.
    pub state: AmendmentState,
    /// The version in force it was drafted against.
    pub base: VersionRef,
    /// The hash of the proposed constitution.
    pub proposed_hash: String,
    /// The proposed constitution's version label.
    pub proposed_version_label: String,
    /// The earlier version it restores, for a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores_version: Option<i64>,
    /// Whether it changes `[governance]` (then the higher threshold applies).
    pub changes_governance: bool,
    /// The proposed constitution (TOML).
    pub source: String,
    /// When it was drafted (µs).
    pub created_at_us: i64,
    /// The vote, once opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ballot: Option<Ballot>,
    /// Guardians' veto approvals.
    #[serde(default)]
    pub veto: Motion,
    /// From when it may be executed (µs), once queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable_at_us: Option<i64>,
    /// Until when it may be executed (µs), once queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_us: Option<i64>,
    /// The constitution version it became, once executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_as_version: Option<i64>,
    /// The verification gate's reports (at opening, at execution), newest last.
    #[serde(default)]
    pub gate_reports: Vec<GateReport>,
    /// Every transition, oldest first.
    pub history: Vec<Transition>,
}

fn user_actor(user: &str) -> String {
    format!("user:{user}")
}

fn check_text(what: &str, text: &str, max: usize, required: bool) -> Result<(), GovernanceError> {
    if required && text.trim().is_empty() {
        return Err(GovernanceError::Invalid(format!("{what} must not be empty")));
    }
    if text.chars().count() > max {
        return Err(GovernanceError::Invalid(format!(
            "{what} is longer than {max} characters"
        )));
    }
    Ok(())
}

impl Amendment {
    /// Draft an amendment: `candidate` (compiled from `request.source`) against `active`, the version `base`.
    pub fn draft(
        request: DraftRequest,
        base: VersionRef,
        active: &Constitution,
        candidate: &Constitution,
        now_us: i64,
    ) -> Result<(Self, Step), GovernanceError> {
        check_text("the title", &request.title, MAX_TITLE_CHARS, true)?;
        check_text("the rationale", &request.rationale, MAX_TEXT_CHARS, true)?;
        if candidate.hash() == active.hash() {
            return Err(GovernanceError::Invalid(format!(
                "the proposed constitution is the one in force (hash {}): there is nothing to amend",
                active.hash().short()
            )));
        }
        let changes_governance = candidate.governance() != active.governance();
        let amendment = Self {
            id: request.id,
            title: request.title,
            rationale: request.rationale,
            proposer: request.proposer.clone(),
            state: AmendmentState::Draft,
            base,
            proposed_hash: candidate.hash().to_hex(),
            proposed_version_label: candidate.metadata().version.clone(),
            restores_version: request.restores_version,
            changes_governance,
            source: request.source,
            created_at_us: now_us,
            ballot: None,
            veto: Motion::default(),
            executable_at_us: None,
            expires_at_us: None,
            executed_as_version: None,
            gate_reports: Vec::new(),
            history: vec![Transition {
                from: None,
                to: AmendmentState::Draft,
                at_us: now_us,
                actor: user_actor(&request.proposer),
            }],
        };
        let step = Step::new("amendment.drafted", &user_actor(&request.proposer), None, Some("draft")).detail(json!({
            "title": amendment.title,
            "base_version": amendment.base.number,
            "base_hash": amendment.base.hash,
            "proposed_hash": amendment.proposed_hash,
            "changes_governance": changes_governance,
            "restores_version": amendment.restores_version,
        }));
        Ok((amendment, step))
    }

    fn illegal(&self, step: &str, allowed: &[AmendmentState]) -> GovernanceError {
        let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
        GovernanceError::Conflict(format!(
            "amendment `{}` is {}: it can be {step} only when {}",
            self.id,
            self.state,
            allowed.join(" or ")
        ))
    }

    fn require(&self, step: &str, allowed: &[AmendmentState]) -> Result<(), GovernanceError> {
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(self.illegal(step, allowed))
        }
    }

    fn go(&mut self, to: AmendmentState, actor: &str, now_us: i64, action: &str) -> Step {
        let from = self.state;
        self.state = to;
        self.history.push(Transition {
            from: Some(from),
            to,
            at_us: now_us,
            actor: actor.to_owned(),
        });
        Step::new(action, actor, Some(from.as_str()), Some(to.as_str()))
    }

    /// Open the vote. Only the proposer may, only from draft, and only with a passing gate report (`gate`,
    /// kept either way: a failing report is recorded with a step and the amendment stays a draft).
    pub fn open(
        &mut self,
        user: &str,
        rules: &Governance,
        gate: GateReport,
        now_us: i64,
    ) -> Result<Vec<Step>, GovernanceError> {
        self.require("opened", &[AmendmentState::Draft])?;
        if user != self.proposer {
            return Err(GovernanceError::NotAuthorized(format!(
                "only the proposer (`{}`) may open the vote on amendment `{}`",
                self.proposer, self.id
            )));
        }
        let passed = gate.passed;
        let gate_step = gate_step(&gate, &user_actor(user), self.state);
        self.gate_reports.push(gate);
        if !passed {
            return Ok(vec![gate_step]);
        }
        let threshold_bps = if self.changes_governance {
            rules.governance_threshold_bps
        } else {
            rules.approval_threshold_bps
        };
        let ballot = Ballot {
            rules: VoteRules {
                total_weight: rules.total_weight(),
                quorum_bps: rules.quorum_bps,
                threshold_bps,
                early_close: rules.early_close,
            },
            council: rules.council.clone(),
            ends_at_us: now_us.saturating_add(secs_to_us(rules.voting_period_secs)),
            timelock_secs: rules.timelock_secs,
            grace_period_secs: rules.grace_period_secs,
            votes: BTreeMap::new(),
            tally: Tally::default(),
        };
        let detail = json!({
            "ends_at_us": ballot.ends_at_us,
            "total_weight": ballot.rules.total_weight,
            "quorum_bps": ballot.rules.quorum_bps,
            "threshold_bps": threshold_bps,
            "council": ballot.council,
        });
        self.ballot = Some(ballot);
        let open = self.go(AmendmentState::Voting, &user_actor(user), now_us, "amendment.opened");
        Ok(vec![gate_step, open.detail(detail)])
    }

    /// Cast or change `user`'s vote; the vote may close at once when the outcome can no longer change.
    pub fn vote(
        &mut self,
        user: &str,
        choice: Choice,
        reason: &str,
        now_us: i64,
    ) -> Result<Vec<Step>, GovernanceError> {
        check_text("the reason", reason, MAX_TEXT_CHARS, false)?;
        self.require("voted on", &[AmendmentState::Voting])?;
        let id = self.id.clone();
        let ballot = self
            .ballot
            .as_mut()
            .ok_or_else(|| GovernanceError::Conflict(format!("amendment `{id}` has no ballot")))?;
        if now_us >= ballot.ends_at_us {
            return Err(GovernanceError::Conflict(format!(
                "the vote on amendment `{id}` has closed"
            )));
        }
        let weight = ballot
            .council
            .iter()
            .find(|s| s.user == user)
            .map(|s| u64::from(s.weight))
            .ok_or_else(|| {
                GovernanceError::NotAuthorized(format!(
                    "`{user}` holds no seat on the council that votes on amendment `{id}`"
                ))
            })?;
        let replaced = ballot.votes.insert(
            user.to_owned(),
            Vote {
                choice,
                weight,
                reason: reason.to_owned(),
                at_us: now_us,
            },
        );
        let mut tally = Tally::default();
        for v in ballot.votes.values() {
            tally.add(v.choice, v.weight);
        }
        ballot.tally = tally;
        let decided = outcome(&ballot.tally, &ballot.rules, false);
        let mut steps = vec![
            Step::new("amendment.voted", &user_actor(user), Some("voting"), Some("voting")).detail(json!({
                "choice": choice,
                "weight": weight,
                "reason": reason,
                "replaced": replaced.map(|v| v.choice),
                "tally": tally,
            })),
        ];
        if let Some(passed) = decided {
            steps.extend(self.close(passed, "clock", now_us, true));
        }
        Ok(steps)
    }

    /// Close the vote with its outcome: succeeded and queued at once, or defeated.
    fn close(&mut self, passed: bool, actor: &str, now_us: i64, early: bool) -> Vec<Step> {
        let tally = self.ballot.as_ref().map(|b| b.tally).unwrap_or_default();
        if !passed {
            let step = self.go(AmendmentState::Defeated, actor, now_us, "amendment.defeated");
            return vec![step.detail(json!({"tally": tally, "early": early}))];
        }
        let (timelock, grace) = self
            .ballot
            .as_ref()
            .map(|b| (b.timelock_secs, b.grace_period_secs))
            .unwrap_or_default();
        let succeeded = self
            .go(AmendmentState::Succeeded, actor, now_us, "amendment.succeeded")
            .detail(json!({"tally": tally, "early": early}));
        let executable_at = now_us.saturating_add(secs_to_us(timelock));
        let expires_at = executable_at.saturating_add(secs_to_us(grace));
        self.executable_at_us = Some(executable_at);
        self.expires_at_us = Some(expires_at);
        let queued = self
            .go(AmendmentState::Queued, actor, now_us, "amendment.queued")
            .detail(json!({"executable_at_us": executable_at, "expires_at_us": expires_at}));
        vec![succeeded, queued]
    }

    /// The steps time has taken by `now_us`: a vote whose period is over closes; a queued amendment past its
    /// grace period expires.
    pub fn settle(&mut self, now_us: i64) -> Vec<Step> {
        match self.state {
            AmendmentState::Voting => {
                let Some(ballot) = &self.ballot else { return Vec::new() };
                if now_us < ballot.ends_at_us {
                    return Vec::new();
                }
                let ends = ballot.ends_at_us;
                let passed = outcome(&ballot.tally, &ballot.rules, true).unwrap_or(false);
                self.close(passed, "clock", ends, false)
            }
            AmendmentState::Queued => match self.expires_at_us {
                Some(expires) if now_us >= expires => {
                    vec![self.go(AmendmentState::Expired, "clock", expires, "amendment.expired")]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// A guardian's veto approval; with `threshold` of them within the window the amendment is vetoed.
    pub fn veto(
        &mut self,
        user: &str,
        reason: &str,
        rules: &Governance,
        now_us: i64,
    ) -> Result<Vec<Step>, GovernanceError> {
        check_text("the reason", reason, MAX_TEXT_CHARS, true)?;
        self.require("vetoed", &[AmendmentState::Voting, AmendmentState::Queued])?;
        let approved = self.veto.approve(
            &rules.guardians,
            "guardian",
            user,
            reason,
            now_us,
            rules.approval_window_secs,
        )?;
        let state = self.state.as_str();
        let mut steps = vec![
            Step::new("amendment.veto_approved", &user_actor(user), Some(state), Some(state)).detail(json!({
                "reason": reason,
                "approvals": approved.count,
                "threshold": rules.guardians.threshold,
            })),
        ];
        if approved.carried {
            let approvers: Vec<&String> = self.veto.approvals.keys().collect();
            let detail = json!({"guardians": approvers});
            steps.push(
                self.go(AmendmentState::Vetoed, &user_actor(user), now_us, "amendment.vetoed")
                    .detail(detail),
            );
        }
        Ok(steps)
    }

    /// Withdraw the amendment: only its proposer, only while draft or voting.
    pub fn cancel(&mut self, user: &str, reason: &str, now_us: i64) -> Result<Vec<Step>, GovernanceError> {
        check_text("the reason", reason, MAX_TEXT_CHARS, false)?;
        self.require("cancelled", &[AmendmentState::Draft, AmendmentState::Voting])?;
        if user != self.proposer {
            return Err(GovernanceError::NotAuthorized(format!(
                "only the proposer (`{}`) may cancel amendment `{}`",
                self.proposer, self.id
            )));
        }
        Ok(vec![
            self.go(
                AmendmentState::Cancelled,
                &user_actor(user),
                now_us,
                "amendment.cancelled",
            )
            .detail(json!({"reason": reason})),
        ])
    }

    /// Whether it may be executed at `now_us` (queued and past its timelock); the error says why not.
    pub fn check_executable(&self, now_us: i64) -> Result<(), GovernanceError> {
        self.require("executed", &[AmendmentState::Queued])?;
        match self.executable_at_us {
            Some(at) if now_us >= at => Ok(()),
            Some(at) => Err(GovernanceError::Conflict(format!(
                "amendment `{}` is in its timelock: executable from {} ({} s from now)",
                self.id,
                rfc3339(at),
                (at - now_us).div_euclid(1_000_000) + 1
            ))),
            None => Err(GovernanceError::Conflict(format!(
                "amendment `{}` has no timelock",
                self.id
            ))),
        }
    }

    /// Execute it as version `version` after the gate passed (`gate`, kept either way; a failing report is
    /// recorded with a step and the amendment stays queued).
    pub fn execute(
        &mut self,
        user: &str,
        gate: GateReport,
        version: i64,
        now_us: i64,
    ) -> Result<Vec<Step>, GovernanceError> {
        self.check_executable(now_us)?;
        let passed = gate.passed;
        let gate_step = gate_step(&gate, &user_actor(user), self.state);
        self.gate_reports.push(gate);
        if !passed {
            return Ok(vec![gate_step]);
        }
        self.executed_as_version = Some(version);
        let executed = self
            .go(
                AmendmentState::Executed,
                &user_actor(user),
                now_us,
                "amendment.executed",
            )
            .detail(json!({"version": version, "hash": self.proposed_hash}));
        Ok(vec![gate_step, executed])
    }

    /// Mark it stale because version `active` is in force instead of the one it was drafted against.
    pub fn mark_stale(&mut self, actor: &str, active: &VersionRef, now_us: i64) -> Option<Step> {
        if !self.state.is_open() {
            return None;
        }
        let detail = json!({
            "base_version": self.base.number,
            "active_version": active.number,
            "active_hash": active.hash,
        });
        Some(
            self.go(AmendmentState::Stale, actor, now_us, "amendment.stale")
                .detail(detail),
        )
    }
}

/// `us` (µs since the Unix epoch) as an RFC 3339 time, for messages.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{us} µs"))
}

fn gate_step(gate: &GateReport, actor: &str, state: AmendmentState) -> Step {
    let action = if gate.passed {
        "amendment.gate_passed"
    } else {
        "amendment.gate_failed"
    };
    let checks: Vec<_> = gate
        .checks
        .iter()
        .map(|c| json!({"name": c.name, "passed": c.passed}))
        .collect();
    Step::new(action, actor, Some(state.as_str()), Some(state.as_str())).detail(json!({
        "stage": gate.stage,
        "constitution_hash": gate.constitution_hash,
        "checks": checks,
    }))
}
