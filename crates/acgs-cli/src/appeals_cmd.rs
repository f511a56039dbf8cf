//! `acgs appeals …`: appeals of logged decisions on a running server. Whoever asked for a decision, the owner its
//! request named, or an operator files an appeal with a statement: an agent with its API key (`--url` and
//! `--api-key` or `ACGS_API_KEY`: agents are API keys, not users), a person as the logged-in user (`acgs login`).
//! One of the constitution's reviewers, logged in, rules `uphold`, `overturn` or `refer` with a reason, optionally
//! naming the outcome the constitution should give and drafting the amendment that adds it as a test case. `list`
//! and `show` read them. Text output by default; `--json` prints the server's JSON.

use std::process::ExitCode;

use acgs_engine::Outcome;
use acgs_governance::{Appeal, AppealState, RulingKind};
use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::amendments_cmd::{clip, columns, now_us, print_json, relative};
use crate::decisions_cmd::time;
use crate::session::{ApiClient, api_key_or_env, http_client, json_of, parse_server_url, send_with_key};
use reqwest::Method;

fn parse_state(word: &str) -> Result<AppealState, String> {
    word.parse()
}

fn parse_ruling(word: &str) -> Result<RulingKind, String> {
    match word {
        "uphold" => Ok(RulingKind::Uphold),
        "overturn" => Ok(RulingKind::Overturn),
        "refer" => Ok(RulingKind::Refer),
        other => Err(format!(
            "`{other}` is not a ruling (expected uphold, overturn or refer)"
        )),
    }
}

fn ruling_name(ruling: RulingKind) -> &'static str {
    match ruling {
        RulingKind::Uphold => "uphold",
        RulingKind::Overturn => "overturn",
        RulingKind::Refer => "refer",
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum AppealsCommand {
    /// Appeal a decision: as the agent that asked for it (`--url` with its API key), or as the logged-in user
    /// (the owner its request named, or an operator).
    File {
        /// The decision's id.
        decision_id: String,
        /// Why the decision is wrong (required).
        #[arg(long)]
        statement: String,
        /// File with an API key at this server (e.g. http://127.0.0.1:8080) instead of the session.
        #[arg(long)]
        url: Option<String>,
        /// The API key for --url [default: $ACGS_API_KEY].
        #[arg(long, requires = "url")]
        api_key: Option<String>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// List appeals, newest first: id, state, decision, request, appellant, deadline.
    List {
        /// Only appeals in this state (filed, upheld, overturned, referred, expired).
        #[arg(long, value_parser = parse_state)]
        state: Option<AppealState>,
        /// At most this many (the server's default: 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one appeal: appellant, the decision and its request, statement, state, deadline, ruling, history.
    Show {
        /// The appeal's id.
        id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rule on an appeal as one of the constitution's reviewers: uphold, overturn or refer (to the council).
    Rule {
        /// The appeal's id.
        id: String,
        /// uphold, overturn or refer.
        #[arg(value_parser = parse_ruling)]
        ruling: RulingKind,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// The outcome the constitution should give the request (allow, deny or escalate; overturn or refer).
        #[arg(long, value_name = "OUTCOME")]
        expect: Option<Outcome>,
        /// Draft an amendment adding the request as a test case expecting --expect.
        #[arg(long, requires = "expect")]
        draft_amendment: bool,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: AppealsCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Filing with an API key needs no session.
    if let AppealsCommand::File {
        decision_id,
        statement,
        url: Some(url),
        api_key,
        json,
    } = cmd
    {
        let key = api_key_or_env(api_key, "--url files the appeal with an API key")?;
        let body = json!({"decision_id": decision_id, "statement": statement});
        let answer = runtime.block_on(file_with_key(&url, &key, &body))?;
        filed(answer, json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut client = ApiClient::from_session_file()?;
    runtime.block_on(execute(&mut client, cmd))?;
    Ok(ExitCode::SUCCESS)
}

/// `POST /v1/appeals` with `key` as the bearer token.
async fn file_with_key(url: &str, key: &str, body: &Value) -> Result<Value> {
    let base = parse_server_url(url)?;
    let response = send_with_key(
        &http_client()?,
        &base,
        key,
        Method::POST,
        &["v1", "appeals"],
        &[],
        Some(body),
    )
    .await?;
    json_of(response).await
}

async fn execute(client: &mut ApiClient, cmd: AppealsCommand) -> Result<()> {
    use AppealsCommand as C;
    match cmd {
        C::File {
            decision_id,
            statement,
            json,
            ..
        } => {
            let body = json!({"decision_id": decision_id, "statement": statement});
            let answer = client.post(&["v1", "appeals"], &body).await?;
            filed(answer, json)?;
        }
        C::List { state, limit, json } => {
            let query = crate::session::list_query(state.map(|s| s.as_str()), limit);
            let answer = client.get(&["v1", "appeals"], &query).await?;
            if json {
                return print_json(&answer);
            }
            let list: Vec<Appeal> =
                serde_json::from_value(answer).context("the server's list of appeals is not understood")?;
            print!("{}", table(&list, now_us()));
        }
        C::Show { id, json } => {
            let answer = client.get(&["v1", "appeals", &id], &[]).await?;
            if json {
                return print_json(&answer);
            }
            print!("{}", details(&appeal(answer)?, now_us()));
        }
        C::Rule {
            id,
            ruling,
            reason,
            expect,
            draft_amendment,
            json,
        } => {
            let mut body = json!({"ruling": ruling, "reason": reason, "draft_amendment": draft_amendment});
            if let Some(outcome) = expect {
                body["expected_outcome"] = outcome.as_str().into();
            }
            let answer = client.post(&["v1", "appeals", &id, "rulings"], &body).await?;
            if json {
                return print_json(&answer);
            }
            let a = appeal(answer)?;
            println!(
                "{} ruled {}; {}",
                client.session().username,
                ruling_name(ruling),
                state_line(&a, now_us())
            );
        }
    }
    Ok(())
}

fn appeal(value: Value) -> Result<Appeal> {
    serde_json::from_value(value).context("the server's appeal is not understood")
}

/// After filing: the server's JSON, or what was appealed and the new appeal's state.
fn filed(answer: Value, json: bool) -> Result<()> {
    if json {
        return print_json(&answer);
    }
    let a = appeal(answer)?;
    let d = &a.decision;
    println!(
        "filed appeal {} of decision {} (seq {}, {}: {}) as {}",
        a.id,
        d.decision_id,
        d.seq,
        d.outcome,
        request_line(&d.request),
        a.appellant
    );
    println!("{}", state_line(&a, now_us()));
    Ok(())
}

/// `Agent::helpdesk-bot invoke_tool Tool::web-search`, from a logged request.
fn request_line(request: &Value) -> String {
    let entity = |key: &str| {
        let e = &request[key];
        match (e["type"].as_str(), e["id"].as_str()) {
            (Some(kind), Some(id)) => format!("{kind}::{id}"),
            _ => "?".to_owned(),
        }
    };
    format!(
        "{} {} {}",
        entity("principal"),
        request["action"].as_str().unwrap_or("?"),
        entity("resource")
    )
}

/// "drafted amendment ID: read it with `acgs amendments show ID`", when the ruling drafted one.
fn amendment_hint(a: &Appeal) -> Option<String> {
    let id = a.ruling.as_ref()?.amendment.as_ref()?;
    Some(format!(
        "drafted amendment {id}: read it with `acgs amendments show {id}`"
    ))
}

/// `appeal <id> is now <state>: <what that means>`.
fn state_line(a: &Appeal, now: i64) -> String {
    let outcome = a.decision.outcome;
    let expected = a
        .ruling
        .as_ref()
        .and_then(|r| r.expected_outcome)
        .map(|o| format!("; the constitution should {o}"))
        .unwrap_or_default();
    let mut suffix = match a.state {
        AppealState::Filed => format!(
            ": a reviewer rules by {} ({})",
            time(a.deadline_us),
            relative(a.deadline_us, now)
        ),
        AppealState::Upheld => format!(": the decision ({outcome}) stands"),
        AppealState::Overturned => {
            format!(": the decision ({outcome}) was wrong{expected} (the logged decision is kept as it was)")
        }
        AppealState::Referred => format!(": referred to the council{expected}"),
        AppealState::Expired => format!(
            ": nobody ruled by {}; the decision ({outcome}) stands",
            time(a.deadline_us)
        ),
    };
    if let Some(hint) = amendment_hint(a) {
        suffix.push_str(&format!("; {hint}"));
    }
    format!("appeal {} is now {}{suffix}", a.id, a.state)
}

/// The list as a table: id, state, outcome, request, appellant, deadline.
fn table(list: &[Appeal], now: i64) -> String {
    if list.is_empty() {
        return "no appeals\n".to_owned();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let deadline = if a.state == AppealState::Filed {
                relative(a.deadline_us, now)
            } else {
                "-".to_owned()
            };
            vec![
                a.id.clone(),
                a.state.to_string(),
                a.decision.outcome.to_string(),
                clip(&request_line(&a.decision.request), 60),
                a.appellant.clone(),
                deadline,
            ]
        })
        .collect();
    columns(&["ID", "STATE", "OUTCOME", "REQUEST", "APPELLANT", "DEADLINE"], &rows)
}

/// Everything about one appeal.
fn details(a: &Appeal, now: i64) -> String {
    let at = |us: i64| format!("{} ({})", time(us), relative(us, now));
    let mut out = format!("appeal {}\n", a.id);
    let line = |out: &mut String, label: &str, value: String| {
        out.push_str(&format!("  {:<18}{value}\n", format!("{label}:")));
    };
    line(&mut out, "state", a.state.to_string());
    line(&mut out, "appellant", a.appellant.clone());
    line(&mut out, "filed", at(a.filed_at_us));
    line(&mut out, "deadline", at(a.deadline_us));
    let d = &a.decision;
    out.push_str("decision:\n");
    line(&mut out, "id", d.decision_id.clone());
    line(&mut out, "seq", d.seq.to_string());
    line(&mut out, "outcome", d.outcome.to_string());
    line(&mut out, "request", request_line(&d.request));
    line(&mut out, "constitution", format!("hash {}", d.constitutional_hash));
    out.push_str("statement:\n");
    for l in a.statement.lines() {
        out.push_str(&format!("  {l}\n"));
    }
    match &a.ruling {
        None => out.push_str("ruling: none yet\n"),
        Some(r) => {
            out.push_str("ruling:\n");
            line(&mut out, "reviewer", r.reviewer.clone());
            line(&mut out, "ruling", ruling_name(r.ruling).to_owned());
            line(&mut out, "at", time(r.at_us));
            line(&mut out, "reason", r.reason.clone());
            if let Some(o) = r.expected_outcome {
                line(&mut out, "expected outcome", o.to_string());
            }
            if let Some(id) = &r.amendment {
                line(
                    &mut out,
                    "amendment",
                    format!("{id} (read it with `acgs amendments show {id}`)"),
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn overturned() -> Appeal {
        serde_json::from_value(json!({
            "id": "ap1", "appellant": "api_key:k1", "statement": "finance approved it", "state": "overturned",
            "decision": {"decision_id": "d1", "seq": 7, "outcome": "deny", "constitutional_hash": "h",
                "request": {"action": "invoke_tool", "principal": {"type": "Agent", "id": "bot"},
                    "resource": {"type": "Tool", "id": "web-search"}}},
            "filed_at_us": 0, "deadline_us": 432_000_000_000i64,
            "ruling": {"reviewer": "internal-audit", "ruling": "overturn", "reason": "wrong", "at_us": 1,
                "expected_outcome": "allow", "amendment": "am1"},
            "history": [{"from": null, "to": "filed", "at_us": 0, "actor": "api_key:k1"},
                {"from": "filed", "to": "overturned", "at_us": 1, "actor": "user:internal-audit"}]
        }))
        .unwrap()
    }

    #[test]
    fn a_ruling_names_the_expected_outcome_and_the_drafted_amendment() {
        let a = overturned();
        assert_eq!(
            state_line(&a, 0),
            "appeal ap1 is now overturned: the decision (deny) was wrong; the constitution should allow (the \
             logged decision is kept as it was); drafted amendment am1: read it with `acgs amendments show am1`"
        );
        let text = details(&a, 0);
        for needle in [
            "request:          Agent::bot invoke_tool Tool::web-search",
            "expected outcome: allow",
            "amendment:        am1 (read it with `acgs amendments show am1`)",
            "-> filed  by api_key:k1",
        ] {
            assert!(text.contains(needle), "no `{needle}` in:\n{text}");
        }
        assert!(
            table(&[a], 0)
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("ap1  overturned  deny")
        );
    }

    #[test]
    fn rulings_and_states_parse_from_their_words() {
        assert_eq!(parse_ruling("refer"), Ok(RulingKind::Refer));
        assert!(parse_ruling("quash").unwrap_err().contains("uphold, overturn or refer"));
        assert!(parse_state("pending").is_err());
    }
}
