//! The emergency halt: M of the emergency set halt the system, M of them resume it. While halted every decision
//! is `deny` (the decision service checks it) and no amendment executes. One motion at a time, as on chain: while
//! approvals for a halt are being collected, approvals to resume are refused until the window lapses.

use acgs_engine::governance::Governance;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Step;
use crate::amendment::MAX_TEXT_CHARS;
use crate::error::GovernanceError;
use crate::motion::{Motion, secs_to_us};

/// What an emergency motion does.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyAction {
    /// Stop every agent action.
    Halt,
    /// Lift the halt.
    Resume,
}

impl EmergencyAction {
    /// `halt` or `resume`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Halt => "halt",
            Self::Resume => "resume",
        }
    }
}

/// A motion collecting approvals.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMotion {
    /// Halt or resume.
    pub action: EmergencyAction,
    /// Why: the reason of the approval that opened the motion.
    pub reason: String,
    /// The approvals so far.
    pub motion: Motion,
    /// Until when it collects approvals (µs).
    pub lapses_at_us: i64,
}

/// Whether the system is halted, since when and why, and the motion in progress.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyState {
    /// Whether every decision is denied.
    pub halted: bool,
    /// When the system was last halted or resumed (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_us: Option<i64>,
    /// Why it was halted (the reason of the approval that opened the halt motion).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Who carried the last halt or resume.
    #[serde(default)]
    pub decided_by: Vec<String>,
    /// Approvals being collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingMotion>,
}

impl EmergencyState {
    /// `halted` or `running`.
    pub fn state_name(&self) -> &'static str {
        if self.halted { "halted" } else { "running" }
    }

    /// The pending motion, unless its window has lapsed at `now_us`.
    pub fn live_motion(&self, now_us: i64) -> Option<&PendingMotion> {
        self.pending.as_ref().filter(|p| now_us < p.lapses_at_us)
    }

    /// `user`'s approval of `action` at `now_us`; with `threshold` approvals within the window it is carried out.
    pub fn approve(
        &mut self,
        action: EmergencyAction,
        user: &str,
        reason: &str,
        rules: &Governance,
        now_us: i64,
    ) -> Result<Vec<Step>, GovernanceError> {
        if reason.trim().is_empty() {
            return Err(GovernanceError::Invalid("an emergency approval needs a reason".into()));
        }
        if reason.chars().count() > MAX_TEXT_CHARS {
            return Err(GovernanceError::Invalid(format!(
                "the reason is longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        match (action, self.halted) {
            (EmergencyAction::Halt, true) => {
                return Err(GovernanceError::Conflict("the system is already halted".into()));
            }
            (EmergencyAction::Resume, false) => {
                return Err(GovernanceError::Conflict(
                    "the system is not halted: there is nothing to resume".into(),
                ));
            }
            _ => {}
        }
        if let Some(live) = self.live_motion(now_us)
            && live.action != action
        {
            return Err(GovernanceError::Conflict(format!(
                "a {} motion is collecting approvals until {}: approve it or wait until it lapses",
                live.action.as_str(),
                crate::amendment::rfc3339(live.lapses_at_us)
            )));
        }
        let window = rules.approval_window_secs;
        let mut pending = match self
            .pending
            .take()
            .filter(|p| p.action == action && now_us < p.lapses_at_us)
        {
            Some(p) => p,
            None => PendingMotion {
                action,
                reason: reason.to_owned(),
                motion: Motion::default(),
                lapses_at_us: now_us.saturating_add(secs_to_us(window)),
            },
        };
        let previous = pending.clone();
        let approved = match pending
            .motion
            .approve(&rules.emergency, "emergency", user, reason, now_us, window)
        {
            Ok(approved) => approved,
            Err(e) => {
                self.pending = Some(previous);
                return Err(e);
            }
        };
        let state = self.state_name();
        let actor = format!("user:{user}");
        let mut steps = vec![
            Step::new("emergency.approved", &actor, Some(state), Some(state)).detail(json!({
                "action": action,
                "reason": reason,
                "approvals": approved.count,
                "threshold": rules.emergency.threshold,
            })),
        ];
        if !approved.carried {
            self.pending = Some(pending);
            return Ok(steps);
        }
        let approvers: Vec<String> = pending.motion.approvals.keys().cloned().collect();
        self.halted = action == EmergencyAction::Halt;
        self.since_us = Some(now_us);
        self.reason = if self.halted { pending.reason } else { String::new() };
        self.decided_by = approvers.clone();
        self.pending = None;
        let (done, to) = match action {
            EmergencyAction::Halt => ("emergency.halted", "halted"),
            EmergencyAction::Resume => ("emergency.resumed", "running"),
        };
        steps.push(Step::new(done, &actor, Some(state), Some(to)).detail(json!({
            "approvers": approvers,
            "reason": self.reason,
        })));
        Ok(steps)
    }
}
