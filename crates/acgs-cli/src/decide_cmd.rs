//! `acgs decide`: one decision, in-process against a constitution file or via a running server.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use acgs_engine::{DecisionRequest, Engine};
use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The request as JSON text, `@FILE`, or `-` for standard input.
    #[arg(long, short = 'r')]
    request: String,
    /// Decide in-process against this constitution file (default: the embedded example).
    #[arg(long, conflicts_with = "url")]
    constitution: Option<PathBuf>,
    /// Ask a running server instead, e.g. http://127.0.0.1:8080 (the decision is then logged).
    #[arg(long)]
    url: Option<String>,
    /// API key (role `agent`) for --url.
    #[arg(long, env = "ACGS_API_KEY", hide_env_values = true, requires = "url")]
    api_key: Option<String>,
}

fn read_request(spec: &str) -> Result<String> {
    if spec == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        Ok(s)
    } else if let Some(path) = spec.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("cannot read `{path}`"))
    } else {
        Ok(spec.to_owned())
    }
}

pub fn run(args: DecideArgs) -> Result<ExitCode> {
    let text = read_request(&args.request)?;
    let request: DecisionRequest = serde_json::from_str(&text).context("invalid decision request")?;
    // As the server does: a key given twice in one object is refused rather than read as its last value.
    acgs_engine::reject_duplicate_keys(text.as_bytes()).context("invalid decision request")?;
    match args.url {
        Some(url) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut post = reqwest::Client::new()
                    .post(format!("{}/v1/decisions", url.trim_end_matches('/')))
                    .json(&request);
                if let Some(key) = &args.api_key {
                    post = post.bearer_auth(key);
                }
                let response = post.send().await.with_context(|| format!("cannot reach {url}"))?;
                let status = response.status();
                let body: serde_json::Value = response.json().await.context("server sent no JSON")?;
                println!("{}", serde_json::to_string_pretty(&body)?);
                if !status.is_success() {
                    bail!("server answered {status}");
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        None => {
            let constitution = crate::server_cmd::load_constitution(args.constitution.as_deref())?;
            let hash = constitution.hash();
            let version = constitution.metadata().version.clone();
            let engine = Engine::new(Arc::new(constitution));
            // Offline there is no registry: the facts the request states stand for it (docs/entities.md).
            let decision = acgs_engine::decide_fixture(engine.constitution(), engine.detectors(), &request)?;
            let mut value = serde_json::to_value(&decision)?;
            if let Some(obj) = value.as_object_mut() {
                obj.insert("constitutional_hash".into(), hash.to_hex().into());
                obj.insert("constitution_version".into(), version.into());
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
