//! `acgs decisions list|show`: read the durable decision log directly from its database.

use std::path::PathBuf;
use std::process::ExitCode;

use acgs_store::{DecisionQuery, DecisionRecord, StoreOptions};
use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Args)]
pub struct Source {
    /// Data directory of an embedded (SQLite) server [default: ./acgs-data].
    #[arg(long, env = "ACGS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (overrides --data-dir), e.g. postgres://...
    #[arg(long, env = "ACGS_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl Source {
    /// The data directory (default ./acgs-data).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from("acgs-data"))
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum DecisionsCommand {
    /// List decisions, newest first.
    List {
        #[command(flatten)]
        source: Source,
        /// Only `allow`, `deny` or `escalate`.
        #[arg(long)]
        outcome: Option<String>,
        /// Only this principal, as TYPE::ID (e.g. Agent::ap-agent) or TYPE.
        #[arg(long)]
        principal: Option<String>,
        /// Only this action.
        #[arg(long)]
        action: Option<String>,
        /// Only entries before this sequence number.
        #[arg(long)]
        before_seq: Option<i64>,
        /// How many [default: 50, max 1000].
        #[arg(long)]
        limit: Option<u32>,
        /// Print JSON lines (one record per line).
        #[arg(long)]
        json: bool,
    },
    /// Show one decision with its reasons and redacted request.
    Show {
        #[command(flatten)]
        source: Source,
        /// Decision id.
        decision_id: String,
    },
}

fn database_url(source: &Source) -> Result<String> {
    if let Some(url) = &source.database_url {
        return Ok(url.clone());
    }
    let file = source.data_dir().join("acgs.db");
    if !file.exists() {
        bail!(
            "no decision log at `{}` (use --data-dir or --database-url)",
            file.display()
        );
    }
    Ok(format!("sqlite://{}", file.display()))
}

pub fn run(cmd: DecisionsCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match cmd {
            DecisionsCommand::List {
                source,
                outcome,
                principal,
                action,
                before_seq,
                limit,
                json,
            } => {
                if let Some(o) = &outcome
                    && !matches!(o.as_str(), "allow" | "deny" | "escalate")
                {
                    bail!("--outcome must be allow, deny or escalate");
                }
                let (principal_type, principal_id) = match principal.as_deref().map(|p| p.split_once("::")) {
                    Some(Some((t, i))) => (Some(t.to_owned()), Some(i.to_owned())),
                    Some(None) => (principal.clone(), None),
                    None => (None, None),
                };
                let store = open(&source).await?;
                let records = store
                    .list(&DecisionQuery {
                        outcome,
                        principal_type,
                        principal_id,
                        action,
                        before_seq,
                        since_us: None,
                        limit,
                    })
                    .await?;
                for r in &records {
                    if json {
                        println!("{}", serde_json::to_string(r)?);
                    } else {
                        println!("{}", line(r));
                    }
                }
                if !json {
                    eprintln!("{} decision(s)", records.len());
                }
                Ok(ExitCode::SUCCESS)
            }
            DecisionsCommand::Show { source, decision_id } => {
                let store = open(&source).await?;
                match store.get(&decision_id).await? {
                    Some(r) => {
                        let mut value = serde_json::to_value(&r)?;
                        if let Some(obj) = value.as_object_mut() {
                            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                            obj.insert("body".into(), body);
                            obj.insert("recorded_at".into(), time(r.recorded_at_us).into());
                        }
                        println!("{}", serde_json::to_string_pretty(&value)?);
                        Ok(ExitCode::SUCCESS)
                    }
                    None => bail!("no decision `{decision_id}` in the log"),
                }
            }
        }
    })
}

pub async fn open(source: &Source) -> Result<std::sync::Arc<dyn acgs_store::Store>> {
    let url = database_url(source)?;
    acgs_store::open(&url, &StoreOptions::default())
        .await
        .with_context(|| format!("cannot open `{}`", crate::server_cmd::redact(&url)))
}

pub fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn line(r: &DecisionRecord) -> String {
    let shadow = if r.shadow {
        format!(" (shadow: answered {})", r.effective_outcome)
    } else {
        String::new()
    };
    format!(
        "{:>8}  {}  {:<8} {}::{} {} {}::{}  {}  {}{}",
        r.seq,
        time(r.recorded_at_us),
        r.outcome,
        r.principal_type,
        r.principal_id,
        r.action,
        r.resource_type,
        r.resource_id,
        &r.constitutional_hash[..16.min(r.constitutional_hash.len())],
        r.decision_id,
        shadow
    )
}
