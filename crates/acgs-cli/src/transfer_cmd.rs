//! `acgs emergency transfer|transfer-approve|accept|transfers|transfer-show`: authority transfers on a running
//! server, as the logged-in user (`acgs login`). A member of the current emergency set proposes new authorities
//! (a new emergency set, guardian set or list of appeal reviewers), M members of that set approve, and the
//! transfer takes effect only once the new authorities accept it (M of each new set; a majority of a new reviewer
//! list) within the approval window: it then becomes a new constitution version. Text output by default: state,
//! reason, the new sets, the base version, approvals and what each new set still needs, when it lapses, and the
//! version it became; `--json` prints the server's JSON.

use acgs_engine::governance::AuthoritySet;
use acgs_governance::{Transfer, TransferState, TransferTarget};
use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::amendments_cmd::{clip, columns, now_us, print_json, relative};
use crate::decisions_cmd::time;
use crate::session::ApiClient;

#[derive(Debug, clap::Subcommand)]
pub enum TransferCommand {
    /// Propose new authorities as a member of the current emergency set (your approval is the first of M): a new
    /// emergency set, guardian set or list of appeal reviewers; they take over once they accept.
    #[command(group(
        clap::ArgGroup::new("authorities")
            .required(true)
            .multiple(true)
            .args(["emergency", "guardians", "reviewers"])
    ))]
    Transfer {
        /// How many of the new emergency set must approve a halt or resume (M).
        #[arg(long, value_name = "M", requires = "emergency")]
        emergency_threshold: Option<u32>,
        /// The new emergency set's members.
        #[arg(
            long,
            value_name = "MEMBER,...",
            value_delimiter = ',',
            requires = "emergency_threshold"
        )]
        emergency: Option<Vec<String>>,
        /// How many of the new guardian set must approve a veto (M).
        #[arg(long, value_name = "M", requires = "guardians")]
        guardians_threshold: Option<u32>,
        /// The new guardian set's members.
        #[arg(
            long,
            value_name = "MEMBER,...",
            value_delimiter = ',',
            requires = "guardians_threshold"
        )]
        guardians: Option<Vec<String>>,
        /// The new appeal reviewers (a majority of them must accept).
        #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
        reviewers: Option<Vec<String>>,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a proposed authority transfer as a member of the current emergency set (M of them carry it).
    TransferApprove {
        /// The transfer's id.
        id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept an approved authority transfer as one of its new authorities; the last acceptance needed puts the
    /// constitution with the new authorities in force.
    Accept {
        /// The transfer's id.
        id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// List authority transfers, newest first: id, state, new authorities, approvals, acceptances.
    Transfers {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one authority transfer: state, reason, new sets, base version, approvals, acceptances, lapse time.
    TransferShow {
        /// The transfer's id.
        id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: TransferCommand) -> Result<std::process::ExitCode> {
    let mut client = ApiClient::from_session_file()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(execute(&mut client, cmd))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn execute(client: &mut ApiClient, cmd: TransferCommand) -> Result<()> {
    use TransferCommand as C;
    let me = client.session().username.clone();
    match cmd {
        C::Transfer {
            emergency_threshold,
            emergency,
            guardians_threshold,
            guardians,
            reviewers,
            reason,
            json,
        } => {
            let mut body = json!({"reason": reason});
            if let Some(members) = emergency {
                body["emergency"] = authority(emergency_threshold, members);
            }
            if let Some(members) = guardians {
                body["guardians"] = authority(guardians_threshold, members);
            }
            if let Some(reviewers) = reviewers {
                body["appeal_reviewers"] = reviewers.into();
            }
            let answer = client.post(&["v1", "emergency", "transfers"], &body).await?;
            if json {
                return print_json(&answer);
            }
            let t = transfer(answer)?;
            let threshold = threshold_for(client, std::slice::from_ref(&t)).await?;
            println!(
                "proposed authority transfer {}: {}; against constitution version {}",
                t.id,
                targets(&t.target).join("; "),
                t.base.number
            );
            println!("{}", state_line(&t, threshold, now_us()));
        }
        C::TransferApprove { id, reason, json } => {
            let answer = client
                .post(
                    &["v1", "emergency", "transfers", &id, "approve"],
                    &json!({"reason": reason}),
                )
                .await?;
            if json {
                return print_json(&answer);
            }
            let t = transfer(answer)?;
            let threshold = threshold_for(client, std::slice::from_ref(&t)).await?;
            println!("{me} approved; {}", state_line(&t, threshold, now_us()));
        }
        C::Accept { id, json } => {
            let answer = client
                .post(&["v1", "emergency", "transfers", &id, "accept"], &Value::Null)
                .await?;
            if json {
                return print_json(&answer);
            }
            let t = transfer(answer)?;
            println!("{me} accepted; {}", state_line(&t, None, now_us()));
        }
        C::Transfers { json } => {
            let answer = client.get(&["v1", "emergency", "transfers"], &[]).await?;
            if json {
                return print_json(&answer);
            }
            let list: Vec<Transfer> =
                serde_json::from_value(answer).context("the server's list of authority transfers is not understood")?;
            let threshold = threshold_for(client, &list).await?;
            print!("{}", table(&list, threshold, now_us()));
        }
        C::TransferShow { id, json } => {
            let answer = client.get(&["v1", "emergency", "transfers", &id], &[]).await?;
            if json {
                return print_json(&answer);
            }
            let t = transfer(answer)?;
            let threshold = threshold_for(client, std::slice::from_ref(&t)).await?;
            print!("{}", details(&t, threshold, now_us()));
        }
    }
    Ok(())
}

/// A new set as the server reads it (clap requires each set's threshold with its members).
fn authority(threshold: Option<u32>, members: Vec<String>) -> Value {
    json!({"threshold": threshold.unwrap_or_default(), "members": members})
}

fn transfer(value: Value) -> Result<Transfer> {
    serde_json::from_value(value).context("the server's authority transfer is not understood")
}

/// The current emergency set's threshold, when a transfer in `list` is still collecting its approvals (a transfer
/// past that stage carried with exactly M approvals, so it needs no look-up).
async fn threshold_for(client: &mut ApiClient, list: &[Transfer]) -> Result<Option<u32>> {
    if !list.iter().any(|t| t.state == TransferState::Proposed) {
        return Ok(None);
    }
    let status = client.get(&["v1", "emergency"], &[]).await?;
    let threshold = status
        .get("threshold")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .with_context(|| format!("the server's emergency status names no threshold: {status}"))?;
    Ok(Some(threshold))
}

/// `a, b, c (any 2 of 3)`.
fn set(s: &AuthoritySet) -> String {
    format!("{} (any {} of {})", s.members.join(", "), s.threshold, s.members.len())
}

/// The new authorities, one entry each: `emergency set a, b, c (any 2 of 3)`.
fn targets(target: &TransferTarget) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &target.emergency {
        out.push(format!("emergency set {}", set(s)));
    }
    if let Some(s) = &target.guardians {
        out.push(format!("guardians {}", set(s)));
    }
    if let Some(reviewers) = &target.appeal_reviewers {
        out.push(format!("appeal reviewers {}", reviewers.join(", ")));
    }
    out
}

/// The current emergency set's approvals: `1 of 2 (sre-on-call)` while collecting, `2 (a, b): carried` after.
fn approvals(t: &Transfer, threshold: Option<u32>) -> String {
    let who: Vec<&str> = t.proposal.approvals.keys().map(String::as_str).collect();
    let count = match (t.state, threshold) {
        (TransferState::Proposed, Some(m)) => format!("{} of {m}", who.len()),
        _ => who.len().to_string(),
    };
    let carried = match t.state {
        TransferState::Accepting | TransferState::Completed => ": carried",
        _ => "",
    };
    format!("{count} ({}){carried}", who.join(", "))
}

/// Each new set's acceptances and what it still needs: `emergency: 1 of 2 (new-oncall); needs 1 more of
/// security-on-call, sre-on-call`.
fn acceptances(t: &Transfer) -> Vec<String> {
    t.target
        .acceptors()
        .into_iter()
        .map(|(name, s)| {
            let (done, waiting): (Vec<&String>, Vec<&String>) =
                s.members.iter().partition(|m| t.acceptances.contains_key(*m));
            let count = u32::try_from(done.len()).unwrap_or(u32::MAX);
            let who = if done.is_empty() {
                "none yet".to_owned()
            } else {
                join(&done)
            };
            let needs = if count >= s.threshold {
                "accepted".to_owned()
            } else {
                format!("needs {} more of {}", s.threshold - count, join(&waiting))
            };
            format!("{name}: {count} of {} ({who}); {needs}", s.threshold)
        })
        .collect()
}

fn join(names: &[&String]) -> String {
    names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
}

/// `transfer <id> is now <state>: <what that means>`.
fn state_line(t: &Transfer, threshold: Option<u32>, now: i64) -> String {
    let lapse = format!("{} ({})", time(t.lapses_at_us), relative(t.lapses_at_us, now));
    let suffix = match t.state {
        TransferState::Proposed => format!(
            ": approvals of the emergency set {}; lapses at {lapse}",
            approvals(t, threshold)
        ),
        TransferState::Accepting => format!(
            ": waiting for the new authorities to accept ({}); lapses at {lapse}",
            acceptances(t).join("; ")
        ),
        TransferState::Completed => t
            .completed_as_version
            .map(|n| format!(": in force as constitution version {n}"))
            .unwrap_or_default(),
        TransferState::Lapsed => format!(": nothing changed (its window ended at {})", time(t.lapses_at_us)),
        TransferState::Stale => format!(
            ": another constitution version was put in force since version {}; nothing changed, propose it again",
            t.base.number
        ),
    };
    format!("transfer {} is now {}{suffix}", t.id, t.state)
}

/// The list as a table: id, state, new authorities, approvals, acceptances, lapse time or version.
fn table(list: &[Transfer], threshold: Option<u32>, now: i64) -> String {
    if list.is_empty() {
        return "no authority transfers\n".to_owned();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            let sets: Vec<&str> = t.target.acceptors().into_iter().map(|(name, _)| name).collect();
            let accepted: Vec<String> = t
                .target
                .acceptors()
                .into_iter()
                .map(|(name, s)| {
                    let count = s.members.iter().filter(|m| t.acceptances.contains_key(*m)).count();
                    format!("{name} {count}/{}", s.threshold)
                })
                .collect();
            let until = match (t.state, t.completed_as_version) {
                (_, Some(n)) => format!("version {n}"),
                (TransferState::Proposed | TransferState::Accepting, _) => {
                    format!("lapses {}", relative(t.lapses_at_us, now))
                }
                _ => "-".to_owned(),
            };
            vec![
                t.id.clone(),
                t.state.to_string(),
                sets.join(", "),
                approvals(t, threshold),
                accepted.join(", "),
                until,
                clip(&t.reason, 40),
            ]
        })
        .collect();
    columns(
        &["ID", "STATE", "NEW", "APPROVALS", "ACCEPTANCES", "UNTIL", "REASON"],
        &rows,
    )
}

/// Everything about one transfer.
fn details(t: &Transfer, threshold: Option<u32>, now: i64) -> String {
    let at = |us: i64| format!("{} ({})", time(us), relative(us, now));
    let mut out = format!("authority transfer {}\n", t.id);
    let mut line = |label: &str, value: String| out.push_str(&format!("  {:<18}{value}\n", format!("{label}:")));
    line("state", t.state.to_string());
    line("reason", t.reason.clone());
    line("proposed", at(t.created_at_us));
    line("base", format!("version {}, hash {}", t.base.number, t.base.hash));
    line("proposed hash", t.proposed_hash.clone());
    if let Some(s) = &t.target.emergency {
        line("new emergency", set(s));
    }
    if let Some(s) = &t.target.guardians {
        line("new guardians", set(s));
    }
    if let Some(reviewers) = &t.target.appeal_reviewers {
        line(
            "new reviewers",
            format!("{} (a majority accepts)", reviewers.join(", ")),
        );
    }
    line("approvals", approvals(t, threshold));
    match t.state {
        TransferState::Proposed | TransferState::Accepting => line("lapses at", at(t.lapses_at_us)),
        TransferState::Lapsed => line("lapsed at", at(t.lapses_at_us)),
        TransferState::Completed | TransferState::Stale => {}
    }
    if let Some(n) = t.completed_as_version {
        line("completed as", format!("constitution version {n}"));
    }
    out.push_str("approved by (current emergency set):\n");
    for (who, approval) in &t.proposal.approvals {
        out.push_str(&format!("  {who} at {}: {}\n", time(approval.at_us), approval.reason));
    }
    out.push_str("acceptances (new authorities):\n");
    for set in acceptances(t) {
        out.push_str(&format!("  {set}\n"));
    }
    for (who, acceptance) in &t.acceptances {
        out.push_str(&format!("  {who} accepted at {}\n", time(acceptance.at_us)));
    }
    out.push_str(&format!("{}\n", state_line(t, threshold, now)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposed() -> Transfer {
        serde_json::from_value(json!({
            "id": "t1", "state": "proposed", "reason": "rota change",
            "target": {"emergency": {"threshold": 2, "members": ["a", "b", "c"]}, "appeal_reviewers": ["r1", "r2"]},
            "base": {"number": 1, "hash": "h1"}, "source": "", "proposed_hash": "h2",
            "created_at_us": 0, "lapses_at_us": 86_400_000_000i64,
            "proposal": {"opened_at_us": 0, "approvals": {"a": {"at_us": 0, "reason": "rota change"}}}
        }))
        .unwrap()
    }

    #[test]
    fn a_proposed_transfer_counts_approvals_against_the_current_threshold() {
        let t = proposed();
        let line = state_line(&t, Some(2), 0);
        assert_eq!(
            line,
            "transfer t1 is now proposed: approvals of the emergency set 1 of 2 (a); lapses at \
             1970-01-02T00:00:00.000Z (in 1d 0h)"
        );
        assert_eq!(
            targets(&t.target),
            ["emergency set a, b, c (any 2 of 3)", "appeal reviewers r1, r2"]
        );
    }

    #[test]
    fn acceptances_say_what_each_new_set_still_needs() {
        let mut t = proposed();
        t.state = TransferState::Accepting;
        t.acceptances.insert(
            "b".into(),
            acgs_governance::motion::Approval {
                at_us: 1,
                reason: String::new(),
            },
        );
        assert_eq!(
            acceptances(&t),
            [
                "emergency: 1 of 2 (b); needs 1 more of a, c",
                "appeal_reviewers: 0 of 2 (none yet); needs 2 more of r1, r2"
            ]
        );
        assert_eq!(approvals(&t, None), "1 (a): carried");
        t.state = TransferState::Completed;
        t.completed_as_version = Some(2);
        let text = details(&t, None, 0);
        assert!(
            text.contains("completed as:     constitution version 2")
                && text.ends_with("transfer t1 is now completed: in force as constitution version 2\n"),
            "{text}"
        );
        let listed = table(&[t], None, 0);
        assert!(
            listed.contains("version 2") && listed.contains("emergency 1/2"),
            "{listed}"
        );
    }
}
