//! `acgs emergency …`: the emergency halt on a running server, as the logged-in user (`acgs login`): approve a
//! halt or a resume as a member of the constitution's emergency set (M approvals within the window carry it),
//! and show whether the system is halted, since when, why, by whom, and the motion collecting approvals. The
//! authority transfers (`acgs emergency transfer`, `accept`, …) live in [`crate::transfer_cmd`].

use std::process::ExitCode;

use acgs_governance::EmergencyState;
use acgs_governance::emergency::PendingMotion;
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::json;

use crate::amendments_cmd::{relative, span};
use crate::decisions_cmd::time;
use crate::session::ApiClient;

#[derive(Debug, clap::Subcommand)]
pub enum EmergencyCommand {
    /// Approve halting the system (every decision is denied once M members of the emergency set approve).
    Halt {
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve lifting the halt (M members of the emergency set).
    Resume {
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Whether the system is halted, since when and why, the motion collecting approvals, and the members.
    Status {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Authority transfers: transfer, transfer-approve, accept, transfers, transfer-show.
    #[command(flatten)]
    Transfer(crate::transfer_cmd::TransferCommand),
}

/// `GET /v1/emergency` and the answer to a halt or resume.
#[derive(Debug, Deserialize)]
struct EmergencyStatus {
    state: EmergencyState,
    threshold: u32,
    members: Vec<String>,
    approval_window_secs: u64,
}

pub fn run(cmd: EmergencyCommand) -> Result<ExitCode> {
    // A halt or resume: the action and its reason; the status: none.
    let (step, json) = match cmd {
        EmergencyCommand::Halt { reason, json } => (Some(("halt", reason)), json),
        EmergencyCommand::Resume { reason, json } => (Some(("resume", reason)), json),
        EmergencyCommand::Status { json } => (None, json),
        EmergencyCommand::Transfer(cmd) => return crate::transfer_cmd::run(cmd),
    };
    let mut client = ApiClient::from_session_file()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let action = step.as_ref().map(|(action, _)| *action);
    let answer = runtime.block_on(async {
        match &step {
            Some((action, reason)) => {
                client
                    .post(&["v1", "emergency", action], &json!({"reason": reason}))
                    .await
            }
            None => client.get(&["v1", "emergency"], &[]).await,
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let status: EmergencyStatus = serde_json::from_value::<EmergencyStatus>(answer.clone())
        .with_context(|| format!("the server's emergency status is not understood: {answer}"))?;
    let now = chrono::Utc::now().timestamp_micros();
    match action {
        Some(action) => println!("{}", after_step(&status, action, &client.session().username, now)),
        None => print!("{}", describe(&status, now)),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line after an approval: carried (the new state) or still collecting.
fn after_step(status: &EmergencyStatus, action: &str, me: &str, now: i64) -> String {
    let s = &status.state;
    // A carried halt leaves the system halted; a carried resume, running.
    let carried = (action == "halt") == s.halted;
    if carried {
        let since = s.since_us.map(time).unwrap_or_default();
        let reason = if s.reason.is_empty() {
            String::new()
        } else {
            format!(" (reason: {})", s.reason)
        };
        return format!(
            "the system is now {}: since {since}, by {}{reason}",
            s.state_name(),
            s.decided_by.join(", ")
        );
    }
    let motion = s
        .pending
        .as_ref()
        .map(|p| motion(p, status.threshold, now))
        .unwrap_or_default();
    format!(
        "{me} approved the {action}; the system is still {}: {motion}",
        s.state_name()
    )
}

/// `halt: 1 of 2 approvals (sre-on-call); lapses at … (in 23h 59m)`.
fn motion(p: &PendingMotion, threshold: u32, now: i64) -> String {
    let who: Vec<&str> = p.motion.approvals.keys().map(String::as_str).collect();
    let lapse = if now < p.lapses_at_us { "lapses" } else { "lapsed" };
    format!(
        "{}: {} of {threshold} approvals ({}); {lapse} at {} ({})",
        p.action.as_str(),
        who.len(),
        who.join(", "),
        time(p.lapses_at_us),
        relative(p.lapses_at_us, now)
    )
}

/// The full status.
fn describe(status: &EmergencyStatus, now: i64) -> String {
    let s = &status.state;
    let mut out = format!("the system is {}\n", if s.halted { "HALTED" } else { "running" });
    let mut line = |label: &str, value: String| {
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        };
        out.push_str(&format!("  {label:<12}{value}\n"));
    };
    match s.since_us {
        Some(us) => line("since", format!("{} ({})", time(us), relative(us, now))),
        None => line("since", "never halted".to_owned()),
    }
    if s.halted {
        line("reason", s.reason.clone());
    }
    if !s.decided_by.is_empty() {
        line("decided by", s.decided_by.join(", "));
    }
    match &s.pending {
        Some(p) => {
            line("motion", motion(p, status.threshold, now));
            for (who, approval) in &p.motion.approvals {
                line("", format!("{who} at {}: {}", time(approval.at_us), approval.reason));
            }
        }
        None => line("motion", "none".to_owned()),
    }
    line(
        "members",
        format!(
            "{} (any {} of {}; approvals count for {})",
            status.members.join(", "),
            status.threshold,
            status.members.len(),
            span(status.approval_window_secs)
        ),
    );
    out
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn status(body: Value) -> EmergencyStatus {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn an_approval_that_does_not_carry_says_how_many_are_still_needed() {
        let s = status(json!({
            "state": {"halted": false, "decided_by": [], "pending": {
                "action": "halt", "reason": "r", "lapses_at_us": 86_400_000_000i64,
                "motion": {"opened_at_us": 0, "approvals": {"sre-on-call": {"at_us": 0, "reason": "r"}}}}},
            "threshold": 2, "members": ["a", "b", "c"], "approval_window_secs": 86_400
        }));
        let line = after_step(&s, "halt", "sre-on-call", 0);
        assert!(
            line.contains("still running") && line.contains("1 of 2 approvals"),
            "{line}"
        );
        let text = describe(&s, 0);
        assert!(
            text.contains("running") && text.contains("any 2 of 3; approvals count for 1d"),
            "{text}"
        );
    }

    #[test]
    fn a_carried_halt_names_who_decided() {
        let s = status(json!({
            "state": {"halted": true, "since_us": 5, "reason": "leak", "decided_by": ["a", "b"]},
            "threshold": 2, "members": ["a", "b", "c"], "approval_window_secs": 60
        }));
        let line = after_step(&s, "halt", "b", 10);
        assert!(
            line.starts_with("the system is now halted") && line.contains("by a, b"),
            "{line}"
        );
    }
}
