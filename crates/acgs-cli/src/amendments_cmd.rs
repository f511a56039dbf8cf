//! `acgs amendments …`: amendments to the constitution on a running server, as the logged-in user (`acgs
//! login`): draft one (a full proposed constitution, or an earlier version to restore), list, show and diff them,
//! open the vote, vote, cancel, veto and execute. Text output by default; `--json` prints the server's JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use acgs_governance::amendment::Ballot;
use acgs_governance::{Amendment, AmendmentState, Choice, ConstitutionDiff, Tally};
use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::decisions_cmd::time;
use crate::session::ApiClient;

fn parse_state(word: &str) -> Result<AmendmentState, String> {
    word.parse()
}

fn parse_choice(word: &str) -> Result<Choice, String> {
    word.parse()
}

#[derive(Debug, clap::Subcommand)]
pub enum AmendmentsCommand {
    /// Draft an amendment: a full proposed constitution (FILE), or an earlier version to restore.
    Draft {
        /// The proposed constitution (TOML).
        #[arg(required_unless_present = "restore_version", conflicts_with = "restore_version")]
        file: Option<PathBuf>,
        /// Restore this earlier constitution version instead (a rollback).
        #[arg(long)]
        restore_version: Option<i64>,
        /// Short title.
        #[arg(long)]
        title: String,
        /// Why.
        #[arg(long)]
        rationale: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// List amendments, newest first: id, state, title, proposer and tally.
    List {
        /// Only amendments in this state (draft, voting, succeeded, defeated, vetoed, cancelled, expired, queued,
        /// executed, stale).
        #[arg(long, value_parser = parse_state)]
        state: Option<AmendmentState>,
        /// At most this many (the server's default: 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one amendment: state, versions and hashes, ballot and votes, vetoes, timelock, gate reports, history.
    Show {
        /// The amendment's id.
        id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// What the amendment changes, section by section, with both constitution hashes.
    Diff {
        /// The amendment's id.
        id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open the vote (the proposer; the verification gate must pass).
    Open {
        /// The amendment's id.
        id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cast or change your vote (council members; your weight comes from the council register).
    Vote {
        /// The amendment's id.
        id: String,
        /// for, against or abstain.
        #[arg(value_parser = parse_choice)]
        choice: Choice,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw your amendment (while draft or voting).
    Cancel {
        /// The amendment's id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a veto as a guardian (M of them veto an amendment that is voting or queued).
    Veto {
        /// The amendment's id.
        id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Execute a queued amendment whose timelock has passed: its constitution is put in force.
    Execute {
        /// The amendment's id.
        id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: AmendmentsCommand) -> Result<ExitCode> {
    let mut client = ApiClient::from_session_file()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(execute(&mut client, cmd))?;
    Ok(ExitCode::SUCCESS)
}

async fn execute(client: &mut ApiClient, cmd: AmendmentsCommand) -> Result<()> {
    use AmendmentsCommand as C;
    match cmd {
        C::Draft {
            file,
            restore_version,
            title,
            rationale,
            json,
        } => {
            let mut body = json!({"title": title, "rationale": rationale});
            if let Some(path) = &file {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the proposed constitution `{}`", path.display()))?;
                body["constitution"] = text.into();
            }
            if let Some(number) = restore_version {
                body["restore_version"] = number.into();
            }
            let answer = client.post(&["v1", "amendments"], &body).await?;
            if json {
                return print_json(&answer);
            }
            let a = amendment(answer)?;
            let restores = a
                .restores_version
                .map(|n| format!(", restoring version {n}"))
                .unwrap_or_default();
            println!(
                "drafted amendment {} \"{}\": base version {} (hash {}), proposed hash {} (version label {}){restores}{}",
                a.id,
                a.title,
                a.base.number,
                a.base.hash,
                a.proposed_hash,
                a.proposed_version_label,
                if a.changes_governance {
                    "; it changes [governance]"
                } else {
                    ""
                }
            );
            println!("{}", state_line(&a));
        }
        C::List { state, limit, json } => {
            let query = crate::session::list_query(state.map(|s| s.as_str()), limit);
            let answer = client.get(&["v1", "amendments"], &query).await?;
            if json {
                return print_json(&answer);
            }
            let list: Vec<Amendment> =
                serde_json::from_value(answer).context("the server's list of amendments is not understood")?;
            print!("{}", table(&list));
        }
        C::Show { id, json } => {
            let answer = client.get(&["v1", "amendments", &id], &[]).await?;
            if json {
                return print_json(&answer);
            }
            print!("{}", details(&amendment(answer)?, now_us()));
        }
        C::Diff { id, json } => {
            let answer = client.get(&["v1", "amendments", &id, "diff"], &[]).await?;
            if json {
                return print_json(&answer);
            }
            let diff: ConstitutionDiff =
                serde_json::from_value(answer).context("the server's diff is not understood")?;
            let a = amendment(client.get(&["v1", "amendments", &id], &[]).await?)?;
            println!(
                "amendment {} \"{}\" ({}): base version {} -> proposed version label {}",
                a.id, a.title, a.state, a.base.number, a.proposed_version_label
            );
            println!("{}", diff.to_string().trim_end());
        }
        C::Open { id, json } => {
            let answer = client.post(&["v1", "amendments", &id, "open"], &Value::Null).await?;
            step(answer, json, |_| String::new())?;
        }
        C::Vote {
            id,
            choice,
            reason,
            json,
        } => {
            let body = json!({"choice": choice, "reason": reason});
            let answer = client.post(&["v1", "amendments", &id, "votes"], &body).await?;
            let me = client.session().username.clone();
            step(answer, json, |a| {
                let weight = a
                    .ballot
                    .as_ref()
                    .and_then(|b| b.votes.get(&me))
                    .map(|v| format!(" with weight {}", v.weight))
                    .unwrap_or_default();
                format!("{me} voted {}{weight}; ", choice_name(choice))
            })?;
        }
        C::Cancel { id, reason, json } => {
            let answer = client
                .post(&["v1", "amendments", &id, "cancel"], &json!({"reason": reason}))
                .await?;
            step(answer, json, |_| String::new())?;
        }
        C::Veto { id, reason, json } => {
            let answer = client
                .post(&["v1", "amendments", &id, "veto"], &json!({"reason": reason}))
                .await?;
            step(answer, json, |a| {
                if a.state == AmendmentState::Vetoed {
                    return String::new();
                }
                let who: Vec<&str> = a.veto.approvals.keys().map(String::as_str).collect();
                format!("veto approvals so far: {} ({}); ", who.len(), who.join(", "))
            })?;
        }
        C::Execute { id, json } => {
            let answer = client.post(&["v1", "amendments", &id, "execute"], &Value::Null).await?;
            step(answer, json, |_| String::new())?;
        }
    }
    Ok(())
}

/// The server's JSON, pretty.
pub fn print_json(value: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn amendment(value: Value) -> Result<Amendment> {
    serde_json::from_value(value).context("the server's amendment is not understood")
}

/// After a step: the server's JSON, or one line with `prefix` and the amendment's new state.
fn step(answer: Value, json: bool, prefix: impl FnOnce(&Amendment) -> String) -> Result<()> {
    if json {
        return print_json(&answer);
    }
    let a = amendment(answer)?;
    println!("{}{}", prefix(&a), state_line(&a));
    Ok(())
}

/// Now, in µs since the Unix epoch.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn choice_name(choice: Choice) -> &'static str {
    match choice {
        Choice::For => "for",
        Choice::Against => "against",
        Choice::Abstain => "abstain",
    }
}

/// `amendment <id> is now <state>: <what that means>`.
pub fn state_line(a: &Amendment) -> String {
    let suffix = match a.state {
        AmendmentState::Draft => format!(": open the vote with `acgs amendments open {}`", a.id),
        AmendmentState::Voting => a
            .ballot
            .as_ref()
            .map(|b| format!(": {}; votes close at {}", tally(&b.tally, b), time(b.ends_at_us)))
            .unwrap_or_default(),
        AmendmentState::Queued => format!(
            ": executable from {} until {}",
            opt_time(a.executable_at_us),
            opt_time(a.expires_at_us)
        ),
        AmendmentState::Succeeded | AmendmentState::Defeated => a
            .ballot
            .as_ref()
            .map(|b| format!(": {}", tally(&b.tally, b)))
            .unwrap_or_default(),
        AmendmentState::Vetoed => {
            let who: Vec<&str> = a.veto.approvals.keys().map(String::as_str).collect();
            format!(": vetoed by {}", who.join(", "))
        }
        AmendmentState::Expired => format!(": not executed by {}", opt_time(a.expires_at_us)),
        AmendmentState::Executed => a
            .executed_as_version
            .map(|n| format!(": in force as constitution version {n}"))
            .unwrap_or_default(),
        AmendmentState::Stale => {
            ": another constitution version was put in force since it was drafted; draft it again".to_owned()
        }
        AmendmentState::Cancelled => String::new(),
    };
    format!("amendment {} is now {}{suffix}", a.id, a.state)
}

fn opt_time(us: Option<i64>) -> String {
    us.map(time).unwrap_or_else(|| "-".to_owned())
}

/// `for 3, against 0, abstain 0 of 5`.
fn tally(t: &Tally, b: &Ballot) -> String {
    format!(
        "for {}, against {}, abstain {} of {}",
        t.for_weight, t.against_weight, t.abstain_weight, b.rules.total_weight
    )
}

/// Basis points as a percentage: `5000` → `50%`, `6667` → `66.67%`.
fn percent(bps: u32) -> String {
    if bps.is_multiple_of(100) {
        format!("{}%", bps / 100)
    } else {
        format!("{}.{:02}%", bps / 100, bps % 100)
    }
}

/// Seconds in the largest whole unit: `86400` → `1d`, `5400` → `90m`.
pub fn span(secs: u64) -> String {
    match secs {
        0 => "0s".to_owned(),
        s if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `us` relative to `now_us`, roughly: `in 23h 59m`, `5m ago`.
pub fn relative(us: i64, now_us: i64) -> String {
    let secs = (us - now_us) / 1_000_000;
    let n = secs.unsigned_abs();
    let text = match n {
        0..60 => format!("{n}s"),
        60..3_600 => format!("{}m", n / 60),
        3_600..86_400 => format!("{}h {}m", n / 3_600, n % 3_600 / 60),
        _ => format!("{}d {}h", n / 86_400, n % 86_400 / 3_600),
    };
    if secs == 0 {
        "just now".to_owned()
    } else if secs > 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// At most `max` characters of `text`, with `...` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max.saturating_sub(3)).collect();
        format!("{kept}...")
    }
}

/// The list as a table: id, state, title, proposer, tally.
fn table(list: &[Amendment]) -> String {
    if list.is_empty() {
        return "no amendments\n".to_owned();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.state.to_string(),
                clip(&a.title, 40),
                a.proposer.clone(),
                a.ballot
                    .as_ref()
                    .map(|b| tally(&b.tally, b))
                    .unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    columns(&["ID", "STATE", "TITLE", "PROPOSER", "TALLY"], &rows)
}

/// `header` and `rows` in aligned columns, two spaces apart (the last column unpadded).
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut widths = vec![0usize; header.len()];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Everything about one amendment, for reading before a vote.
fn details(a: &Amendment, now: i64) -> String {
    let at = |us: i64| format!("{} ({})", time(us), relative(us, now));
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("  {:<18}{value}\n", format!("{label}:")));
    line("title", a.title.clone());
    line("state", a.state.to_string());
    line("proposer", a.proposer.clone());
    line("drafted", at(a.created_at_us));
    line("base", format!("version {}, hash {}", a.base.number, a.base.hash));
    line(
        "proposed",
        format!("hash {}, version label {}", a.proposed_hash, a.proposed_version_label),
    );
    if let Some(n) = a.restores_version {
        line("restores", format!("version {n}"));
    }
    line(
        "governance",
        if a.changes_governance {
            "changed (the governance threshold applies)"
        } else {
            "unchanged"
        }
        .to_owned(),
    );
    if let Some(at_us) = a.executable_at_us {
        line("executable from", at(at_us));
    }
    if let Some(at_us) = a.expires_at_us {
        line("expires at", at(at_us));
    }
    if let Some(n) = a.executed_as_version {
        line("executed as", format!("constitution version {n}"));
    }
    let mut out = format!("amendment {}\n{out}", a.id);
    out.push_str("rationale:\n");
    for l in a.rationale.lines() {
        out.push_str(&format!("  {l}\n"));
    }
    match &a.ballot {
        None => out.push_str("ballot: not opened\n"),
        Some(b) => out.push_str(&ballot(b, &at)),
    }
    if a.veto.approvals.is_empty() {
        out.push_str("vetoes: none\n");
    } else {
        out.push_str("vetoes:\n");
        for (who, approval) in &a.veto.approvals {
            out.push_str(&format!("  {who} at {}: {}\n", time(approval.at_us), approval.reason));
        }
    }
    if a.gate_reports.is_empty() {
        out.push_str("gate reports: none\n");
    } else {
        out.push_str("gate reports:\n");
        for r in &a.gate_reports {
            let hash = if r.constitution_hash.is_empty() {
                "did not validate".to_owned()
            } else {
                format!("hash {}", r.constitution_hash)
            };
            out.push_str(&format!(
                "  {} at {}: {} ({hash})\n",
                r.stage,
                time(r.checked_at_us),
                if r.passed { "passed" } else { "FAILED" }
            ));
            for c in &r.checks {
                let took = format!("{:.1} ms", c.took_us as f64 / 1000.0);
                out.push_str(&format!(
                    "    {} {} ({took})\n",
                    if c.passed { "ok    " } else { "FAILED" },
                    c.name
                ));
                for l in c.detail.lines().filter(|l| !l.trim().is_empty()) {
                    out.push_str(&format!("           {l}\n"));
                }
            }
        }
    }
    out.push_str("history:\n");
    for t in &a.history {
        let from = t.from.map_or_else(|| "-".to_owned(), |s| s.to_string());
        out.push_str(&format!("  {}  {from} -> {}  by {}\n", time(t.at_us), t.to, t.actor));
    }
    out
}

/// The ballot: rules, deadline, tally, votes and who has not voted.
fn ballot(b: &Ballot, at: &dyn Fn(i64) -> String) -> String {
    let mut out = String::from("ballot:\n");
    out.push_str(&format!("  deadline:         {}\n", at(b.ends_at_us)));
    out.push_str(&format!(
        "  rules:            quorum {} of weight {}, passes with {} of for + against{}\n",
        percent(b.rules.quorum_bps),
        b.rules.total_weight,
        percent(b.rules.threshold_bps),
        if b.rules.early_close {
            ", closes early once decided"
        } else {
            ""
        }
    ));
    out.push_str(&format!(
        "  timelock:         {} after passing, then executable for {}\n",
        span(b.timelock_secs),
        span(b.grace_period_secs)
    ));
    out.push_str(&format!("  tally:            {}\n", tally(&b.tally, b)));
    if b.votes.is_empty() {
        out.push_str("  votes:            none yet\n");
    } else {
        out.push_str("  votes:\n");
        for (who, v) in &b.votes {
            let reason = if v.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", v.reason)
            };
            out.push_str(&format!(
                "    {who:<28} {:<8} weight {:<3} at {}{reason}\n",
                choice_name(v.choice),
                v.weight,
                time(v.at_us)
            ));
        }
    }
    let waiting: Vec<String> = b
        .council
        .iter()
        .filter(|s| !b.votes.contains_key(&s.user))
        .map(|s| format!("{} ({})", s.user, s.weight))
        .collect();
    if !waiting.is_empty() {
        out.push_str(&format!("  not voted:        {}\n", waiting.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_percentages_and_relative_times_read_naturally() {
        assert_eq!(span(86_400), "1d");
        assert_eq!(span(72 * 3_600), "3d");
        assert_eq!(span(5_400), "90m");
        assert_eq!(span(61), "61s");
        assert_eq!(percent(5_000), "50%");
        assert_eq!(percent(6_667), "66.67%");
        assert_eq!(relative(86_399_000_000, 0), "in 23h 59m");
        assert_eq!(relative(0, 300_000_000), "5m ago");
        assert_eq!(relative(0, 300_000), "just now");
        assert_eq!(clip("abcdef", 5), "ab...");
    }
}
