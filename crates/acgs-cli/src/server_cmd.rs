//! `acgs up` and `acgs serve`: load the constitution, open the decision log, serve HTTP until SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use acgs_engine::{Constitution, Engine};
use acgs_server::{AppState, ServerSettings};
use acgs_store::{DecisionLog, LogConfig, StoreOptions};
use anyhow::{Context, Result};

use crate::config::{FileConfig, LogFormat, ServerConfig, ServerFlags};

/// `acgs up`: embedded defaults, overridable by the same flags as `serve`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    flags: ServerFlags,
}

/// `acgs serve`: config file, environment and flags.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML config file (see docs/operations.md); flags and ACGS_* environment variables override it.
    #[arg(long, short = 'c', env = "ACGS_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: ServerFlags,
}

pub fn up(args: UpArgs) -> Result<ExitCode> {
    let config = ServerConfig::resolve(args.flags, FileConfig::default())?;
    run(config)
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    let file = match &args.config {
        Some(path) => FileConfig::read(path)?,
        None => FileConfig::default(),
    };
    run(ServerConfig::resolve(args.flags, file)?)
}

fn init_tracing(config: &ServerConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Load the configured constitution (or the embedded example); refuses an invalid one.
pub fn load_constitution(path: Option<&std::path::Path>) -> Result<Constitution> {
    match path {
        Some(path) => Ok(Constitution::load(path)?),
        None => Ok(Constitution::from_toml(
            crate::EXAMPLE_CONSTITUTION_NAME,
            crate::EXAMPLE_CONSTITUTION,
        )?),
    }
}

fn run(config: ServerConfig) -> Result<ExitCode> {
    // Whatever the server creates (the data directory, the database and its WAL, the key files) is private
    // to the user it runs as; `acgs security audit` reports anything wider.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    init_tracing(&config);
    let (key, created) = acgs_audit::LogKey::load_or_create(&config.audit_key, config.audit_log_name.as_deref())
        .context("refusing to start: the audit log key is unusable")?;
    if created {
        tracing::info!(path = %config.audit_key.display(), key = %key.verifier_key(), "created the audit log key");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.workers > 0 {
        builder.worker_threads(config.workers);
    }
    let runtime = builder.enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let store = acgs_store::open(
            &config.database_url,
            &StoreOptions {
                sqlite_sync: config.sqlite_sync,
                max_connections: 0,
            },
        )
        .await
        .with_context(|| format!("cannot open the decision log at `{}`", redact(&config.database_url)))?;
        // The key must be the one that signed this log: a different key would sign checkpoints nobody can verify
        // against the log's published key.
        if let Some(latest) = store.latest_checkpoint().await.context("cannot read the audit log")? {
            let verifier = acgs_audit::VerifierKey::parse(&key.verifier_key())?;
            if let Err(e) = verifier.verify_checkpoint(&latest.note) {
                anyhow::bail!(
                    "refusing to start: the audit key `{}` did not sign this log's latest checkpoint (size {}): {e}; \
                     restore the log's key file (see docs/operations.md)",
                    config.audit_key.display(),
                    latest.tree_size
                );
            }
        }
        let (constitution, in_force) = crate::constitution_versions::to_run(
            &*store,
            config.constitution.as_deref(),
            chrono::Utc::now().timestamp_micros(),
        )
        .await
        .context("refusing to start")?;
        let backend = store.backend();
        if !config.auth_master_key.exists() && !store.signing_keys().await?.is_empty() {
            anyhow::bail!(
                "refusing to start: there is no authentication master key at `{}`, but the database holds signing \
                 keys sealed under one. Restore the key file from its backup, or, if it is lost, run \
                 `acgs auth replace-master-key` (every session ends)",
                config.auth_master_key.display()
            );
        }
        let (master, created) = acgs_auth::MasterKey::load_or_create(&config.auth_master_key)
            .context("refusing to start: the authentication master key is unusable")?;
        if created {
            tracing::info!(path = %config.auth_master_key.display(), "created the authentication master key");
        }
        let auth = acgs_auth::AuthService::new(store.clone(), master, config.auth.clone(), acgs_auth::system_clock())
            .await
            .context("refusing to start: cannot load the credentials")?;
        let admin_password = std::env::var("ACGS_BOOTSTRAP_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        // The example's tour agent: the first start's agent key decides for it only.
        let example = constitution.source_name() == crate::EXAMPLE_CONSTITUTION_NAME;
        let tour_agent = example.then(|| acgs_store::EntityName {
            entity_type: "Agent".into(),
            id: TOUR_AGENT.into(),
        });
        let bootstrap = auth
            .bootstrap(admin_password.clone(), tour_agent)
            .await
            .context("refusing to start: cannot create the first credentials")?;
        let log = DecisionLog::start(
            store.clone(),
            LogConfig {
                max_batch: config.log_max_batch,
                queue_capacity: config.log_queue,
            },
        );
        let hash = constitution.hash();
        let name = constitution.metadata().name.clone();
        let version = constitution.metadata().version.clone();
        let source = constitution.source_name().to_owned();
        let governance = constitution.governance().cloned();
        let warnings: Vec<String> = constitution.warnings().iter().map(ToString::to_string).collect();
        let engine = Arc::new(Engine::new(Arc::new(constitution)));
        let verifier_key = key.verifier_key();
        let state = AppState::new(
            (engine, in_force.number),
            store,
            log,
            key,
            Arc::new(auth),
            ServerSettings {
                shadow: config.shadow,
                max_body_bytes: config.max_body_bytes,
                checkpoint_interval: config.checkpoint_interval,
                checkpoint_entries: config.checkpoint_entries as i64,
                public_metrics: config.public_metrics,
                connections: fit_connections_to_open_file_limit(config.connections),
            },
        );
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            %addr, constitution = %source, version = %version, hash = %hash, storage = backend,
            shadow = config.shadow, "ACGS started"
        );
        println!("ACGS is running at http://{addr}");
        println!(
            "  constitution: {name} v{version} ({source}), version {} in force since {}",
            in_force.number,
            crate::decisions_cmd::time(in_force.version.activated_at_us)
        );
        println!("  constitutional hash: {hash} (short {})", hash.short());
        println!(
            "  decision log: {backend} {}{}",
            redact(&config.database_url),
            if config.shadow {
                "  [shadow mode: every decision answered as allow]"
            } else {
                ""
            }
        );
        println!("  audit log key: {verifier_key}");
        for warning in &warnings {
            tracing::warn!(%warning, "Cedar's validator warns about the constitution in force");
            println!("  warning: {warning}");
        }
        match state.verification.solver() {
            Ok(solver) => println!("  formal verification: {solver} (docs/verification.md)"),
            Err(e) => {
                tracing::warn!(error = %e, "formal verification is unavailable: the amendment gate stays closed");
                println!("  formal verification UNAVAILABLE, the amendment gate stays closed: {e}");
            }
        }
        let registered = state
            .entities
            .load()
            .await
            .map_err(|e| anyhow::anyhow!("refusing to start: cannot read the entity registry: {e}"))?;
        if registered == 0 && example && bootstrap.admin.is_some() {
            let seeded = seed_example_entities(&state.entities).await?;
            println!("  entity registry: registered the example's {seeded} agents, users and roles (docs/entities.md)");
        } else {
            println!("  entity registry: {registered} entities (docs/entities.md)");
        }
        print_bootstrap(&bootstrap, admin_password.is_some(), addr);
        let existing: Vec<String> = state.auth.users().await?.into_iter().map(|u| u.username).collect();
        print_governance(governance.as_ref(), &existing);
        acgs_server::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("ACGS stopped; decision log flushed");
        Ok(ExitCode::SUCCESS)
    })
}

/// File descriptors kept free for everything but client connections: the database, its log, key files, the
/// listener, PostgreSQL connections.
const RESERVED_FILE_DESCRIPTORS: u64 = 256;

/// Raise the process's soft open-file limit (up to the hard limit) so that the connection cap fits in it; if it
/// cannot be raised that far, lower the cap (with a warning), so that client connections can never take the
/// descriptors the decision log needs.
fn fit_connections_to_open_file_limit(
    mut limits: acgs_server::connection::ConnectionLimits,
) -> acgs_server::connection::ConnectionLimits {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let wanted = limits.max_connections as u64 + RESERVED_FILE_DESCRIPTORS;
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    if soft >= wanted {
        return limits;
    }
    let hard = current.maximum.unwrap_or(u64::MAX);
    let raised = wanted.min(hard);
    let available = match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(raised),
            maximum: current.maximum,
        },
    ) {
        Ok(()) => raised,
        Err(_) => soft,
    };
    if available < wanted {
        let fitted = available.saturating_sub(RESERVED_FILE_DESCRIPTORS).max(1) as usize;
        tracing::warn!(
            configured = limits.max_connections,
            fitted,
            open_file_limit = available,
            "the open-file limit is too low for the connection cap; lowering the cap (raise `ulimit -n`)"
        );
        limits.max_connections = fitted;
    }
    limits
}

/// The agent the example's first-start agent key is bound to.
const TOUR_AGENT: &str = "ap-agent";

/// The example's agents, users and roles (`examples/entities.jsonl`), registered on the first start of the
/// example constitution.
const EXAMPLE_ENTITIES: &str = include_str!("../../../examples/entities.jsonl");

/// Register [`EXAMPLE_ENTITIES`] as `bootstrap`; how many.
async fn seed_example_entities(entities: &acgs_server::entity_service::EntityService) -> Result<usize> {
    let list: Vec<acgs_engine::EntityInput> = EXAMPLE_ENTITIES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("the embedded example entities do not read")?;
    let summary = entities
        .import(acgs_server::entity_service::Writer::Host("bootstrap"), list)
        .await
        .map_err(|e| anyhow::anyhow!("cannot register the example entities: {e}"))?;
    Ok(summary.created)
}

/// Show the credentials a first start created; they are never shown again.
fn print_bootstrap(bootstrap: &acgs_auth::Bootstrap, password_from_env: bool, addr: std::net::SocketAddr) {
    if let Some(kid) = &bootstrap.signing_key {
        println!("  created the access-token signing key {kid}");
    }
    match (&bootstrap.admin, &bootstrap.agent_key) {
        (Some((username, password)), Some(agent_key)) => {
            println!();
            println!("  FIRST START: credentials created now and shown only this once:");
            if password_from_env {
                println!("    administrator:  {username} (password from ACGS_BOOTSTRAP_ADMIN_PASSWORD)");
            } else {
                println!("    administrator:  {username} / {password}");
            }
            if let Some(gateway_key) = &bootstrap.gateway_key {
                println!("    gateway API key:  {gateway_key}");
            }
            println!("    agent API key:  {agent_key}");
            println!(
                "  The agent key asks decisions for Agent::\"{TOUR_AGENT}\" only (with the example constitution); the"
            );
            println!("  gateway key, an orchestrator's, for any registered agent (docs/entities.md).");
            println!("  Change the administrator's password (POST /v1/auth/password); `acgs security audit`");
            println!("  reports it until then. Try:");
            println!("    curl -s -H 'Authorization: Bearer {agent_key}' http://{addr}/v1/constitution/principles");
        }
        _ => println!("  sign in: POST http://{addr}/v1/auth/login, or use an API key (`acgs auth api-keys create`)"),
    }
}

/// Who governs the constitution in force, and how to create the users it names that do not exist yet.
fn print_governance(governance: Option<&acgs_engine::governance::Governance>, existing: &[String]) {
    let Some(g) = governance else {
        println!(
            "  governance: the constitution has no [governance] section; only `acgs constitution activate` changes it"
        );
        return;
    };
    println!(
        "  governance: council of {} (total weight {}), guardians {} of {}, emergency set {} of {} (docs/governance.md)",
        g.council.len(),
        g.total_weight(),
        g.guardians.threshold,
        g.guardians.members.len(),
        g.emergency.threshold,
        g.emergency.members.len()
    );
    let missing: Vec<&str> = g
        .named_users()
        .into_iter()
        .filter(|name| !existing.iter().any(|e| e == name))
        .collect();
    if missing.is_empty() {
        return;
    }
    println!("  the constitution names users that do not exist yet; until they do, nobody can vote, veto or halt:");
    for name in missing {
        let role = if g.council_weight(name).is_some() {
            "council"
        } else if g.emergency.contains(name) {
            "operator"
        } else {
            "reviewer"
        };
        println!("    acgs users create {name} --roles {role}");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

/// Hide a password in a database URL.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
