//! Server configuration, layered: built-in defaults < config file (TOML) < environment < flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use acgs_store::SqliteSync;
use anyhow::{Context, Result};
use serde::Deserialize;

/// Settings shared by `acgs up` and `acgs serve`, as flags with environment fallbacks.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerFlags {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ACGS_LISTEN")]
    pub listen: Option<String>,
    /// Directory for the embedded database and other state [default: ./acgs-data].
    #[arg(long, env = "ACGS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://... [default: sqlite://DATA_DIR/acgs.db].
    #[arg(long, env = "ACGS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Constitution file (TOML) [default: the embedded example constitution].
    #[arg(long, env = "ACGS_CONSTITUTION")]
    pub constitution: Option<PathBuf>,
    /// Shadow mode: compute and log decisions, but answer `allow` (the response says what would have happened).
    #[arg(long, env = "ACGS_SHADOW", num_args = 0..=1, default_missing_value = "true")]
    pub shadow: Option<bool>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "ACGS_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// SQLite durability: `full` (fsync every commit) or `normal` (survives process crashes only) [default: full].
    #[arg(long, env = "ACGS_SQLITE_SYNC")]
    pub sqlite_sync: Option<SqliteSync>,
    /// Most decisions committed in one group commit [default: 1024].
    #[arg(long, env = "ACGS_LOG_MAX_BATCH")]
    pub log_max_batch: Option<usize>,
    /// Decisions that may wait for the log writer before requests get 503 [default: 16384].
    #[arg(long, env = "ACGS_LOG_QUEUE")]
    pub log_queue: Option<usize>,
    /// HTTP worker threads; 0 = one per CPU [default: 0].
    #[arg(long, env = "ACGS_WORKERS")]
    pub workers: Option<usize>,
    /// Log output: `text` or `json` [default: text].
    #[arg(long, env = "ACGS_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `acgs_server=debug` [default: info; RUST_LOG also works].
    #[arg(long, env = "ACGS_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// The audit log's Ed25519 signing key file, created (mode 0600) on first start
    /// [default: DATA_DIR/audit-log.key].
    #[arg(long, env = "ACGS_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
    /// Name (checkpoint origin) for a newly created audit key [default: `acgs.local/audit/KEY_ID`].
    #[arg(long, env = "ACGS_AUDIT_LOG_NAME")]
    pub audit_log_name: Option<String>,
    /// Sign a checkpoint at least this often (seconds) while the audit log grows [default: 10].
    #[arg(long, env = "ACGS_CHECKPOINT_INTERVAL_SECS")]
    pub checkpoint_interval_secs: Option<u64>,
    /// Sign a checkpoint as soon as this many entries were added since the last [default: 1000].
    #[arg(long, env = "ACGS_CHECKPOINT_ENTRIES")]
    pub checkpoint_entries: Option<u64>,
    /// The master key file that encrypts the access-token signing keys, created (mode 0600) on first start
    /// [default: DATA_DIR/auth-master.key].
    #[arg(long, env = "ACGS_AUTH_MASTER_KEY")]
    pub auth_master_key: Option<PathBuf>,
    /// Serve /metrics without authentication (for a Prometheus scraper on a trusted network) [default: false].
    #[arg(long, env = "ACGS_PUBLIC_METRICS", num_args = 0..=1, default_missing_value = "true")]
    pub public_metrics: Option<bool>,
    /// Access-token lifetime in seconds [default: 900].
    #[arg(long, env = "ACGS_ACCESS_TOKEN_TTL_SECS")]
    pub access_token_ttl_secs: Option<u64>,
    /// Refresh-token lifetime in seconds [default: 86400].
    #[arg(long, env = "ACGS_REFRESH_TOKEN_TTL_SECS")]
    pub refresh_token_ttl_secs: Option<u64>,
    /// A login session ends this many seconds after the login, however often it is refreshed [default: 604800].
    #[arg(long, env = "ACGS_SESSION_MAX_AGE_SECS")]
    pub session_max_age_secs: Option<u64>,
    /// Failed logins for one username within the lockout window that lock it [default: 5].
    #[arg(long, env = "ACGS_LOCKOUT_THRESHOLD")]
    pub lockout_threshold: Option<u32>,
    /// The window failed logins are counted in, in seconds [default: 900].
    #[arg(long, env = "ACGS_LOCKOUT_WINDOW_SECS")]
    pub lockout_window_secs: Option<u64>,
    /// How long a lockout lasts, in seconds [default: 900].
    #[arg(long, env = "ACGS_LOCKOUT_DURATION_SECS")]
    pub lockout_duration_secs: Option<u64>,
    /// Failed logins from one source address within the window after which it gets 429 [default: 20].
    #[arg(long, env = "ACGS_LOGIN_SOURCE_THRESHOLD")]
    pub login_source_threshold: Option<u32>,
    /// How often, in seconds, the server reloads API keys and signing keys from the database: changes made
    /// by `acgs auth …` or another replica (a revoked key, a new signing key) take effect within this time
    /// [default: 10].
    #[arg(long, env = "ACGS_AUTH_RELOAD_SECS")]
    pub auth_reload_secs: Option<u64>,
    /// Most HTTP connections open at once; further ones wait to be accepted [default: 4096, lowered to fit
    /// the process's open-file limit].
    #[arg(long, env = "ACGS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a complete request head, from connecting or from the first byte of a
    /// later request; then the connection is closed [default: 10].
    #[arg(long, env = "ACGS_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request body, from the end of its head; then 408 [default: 30].
    #[arg(long, env = "ACGS_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Seconds a keep-alive connection may sit idle between requests before it is closed [default: 75].
    #[arg(long, env = "ACGS_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The config file: the same settings as the flags, in TOML, all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    constitution: Option<PathBuf>,
    shadow: Option<bool>,
    max_body_bytes: Option<usize>,
    sqlite_sync: Option<SqliteSync>,
    log_max_batch: Option<usize>,
    log_queue: Option<usize>,
    workers: Option<usize>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    audit_key: Option<PathBuf>,
    audit_log_name: Option<String>,
    checkpoint_interval_secs: Option<u64>,
    checkpoint_entries: Option<u64>,
    auth_master_key: Option<PathBuf>,
    public_metrics: Option<bool>,
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
    session_max_age_secs: Option<u64>,
    lockout_threshold: Option<u32>,
    lockout_window_secs: Option<u64>,
    lockout_duration_secs: Option<u64>,
    login_source_threshold: Option<u32>,
    auth_reload_secs: Option<u64>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
}

impl FileConfig {
    /// Read a TOML config file; paths in it are relative to the file's directory.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config `{}`", path.display()))?;
        let mut config: FileConfig =
            toml::from_str(&text).with_context(|| format!("invalid config `{}`", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.data_dir,
            &mut config.constitution,
            &mut config.audit_key,
            &mut config.auth_master_key,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }
}

/// File name of the audit key inside the data directory.
pub const AUDIT_KEY_FILE: &str = "audit-log.key";

/// File name of the authentication master key inside the data directory.
pub const AUTH_MASTER_KEY_FILE: &str = "auth-master.key";

/// Fully resolved server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Constitution file, or `None` for the embedded example.
    pub constitution: Option<PathBuf>,
    /// Shadow mode.
    pub shadow: bool,
    /// Body limit.
    pub max_body_bytes: usize,
    /// SQLite durability.
    pub sqlite_sync: SqliteSync,
    /// Group-commit batch size.
    pub log_max_batch: usize,
    /// Log writer queue capacity.
    pub log_queue: usize,
    /// HTTP worker threads (0 = one per CPU).
    pub workers: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Audit log signing key file.
    pub audit_key: PathBuf,
    /// Name for a newly created audit key.
    pub audit_log_name: Option<String>,
    /// Longest time between checkpoints while the log grows.
    pub checkpoint_interval: std::time::Duration,
    /// New entries that trigger a checkpoint.
    pub checkpoint_entries: u64,
    /// The master key file of the access-token signing keys.
    pub auth_master_key: PathBuf,
    /// Serve /metrics without authentication.
    pub public_metrics: bool,
    /// Token lifetimes, lockout policy and cache refresh of the authentication service.
    pub auth: acgs_auth::AuthSettings,
    /// The HTTP connection cap and client deadlines.
    pub connections: acgs_server::connection::ConnectionLimits,
}

impl ServerConfig {
    /// Layer flags (which already include environment values) over the file over defaults.
    pub fn resolve(flags: ServerFlags, file: FileConfig) -> Result<Self> {
        let defaults_auth = acgs_auth::AuthSettings::default();
        let secs = |name: &str, flag: Option<u64>, file: Option<u64>, default: std::time::Duration| {
            let value = flag.or(file).map_or(default, std::time::Duration::from_secs);
            anyhow::ensure!(!value.is_zero(), "`{name}` must be at least 1 second");
            Ok(value)
        };
        let count = |name: &str, flag: Option<u32>, file: Option<u32>, default: u32| {
            let value = flag.or(file).unwrap_or(default);
            anyhow::ensure!(value > 0, "`{name}` must be at least 1");
            Ok(value)
        };
        let auth = acgs_auth::AuthSettings {
            access_token_ttl: secs(
                "access_token_ttl_secs",
                flags.access_token_ttl_secs,
                file.access_token_ttl_secs,
                defaults_auth.access_token_ttl,
            )?,
            refresh_token_ttl: secs(
                "refresh_token_ttl_secs",
                flags.refresh_token_ttl_secs,
                file.refresh_token_ttl_secs,
                defaults_auth.refresh_token_ttl,
            )?,
            session_max_age: secs(
                "session_max_age_secs",
                flags.session_max_age_secs,
                file.session_max_age_secs,
                defaults_auth.session_max_age,
            )?,
            lockout_threshold: count(
                "lockout_threshold",
                flags.lockout_threshold,
                file.lockout_threshold,
                defaults_auth.lockout_threshold,
            )?,
            lockout_window: secs(
                "lockout_window_secs",
                flags.lockout_window_secs,
                file.lockout_window_secs,
                defaults_auth.lockout_window,
            )?,
            lockout_duration: secs(
                "lockout_duration_secs",
                flags.lockout_duration_secs,
                file.lockout_duration_secs,
                defaults_auth.lockout_duration,
            )?,
            source_threshold: count(
                "login_source_threshold",
                flags.login_source_threshold,
                file.login_source_threshold,
                defaults_auth.source_threshold,
            )?,
            cache_refresh: secs(
                "auth_reload_secs",
                flags.auth_reload_secs,
                file.auth_reload_secs,
                defaults_auth.cache_refresh,
            )?,
            ..defaults_auth
        };
        let listen_text = flags.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text
            .parse()
            .with_context(|| format!("invalid listen address `{listen_text}` (expected IP:PORT)"))?;
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("acgs-data"));
        let database_url = flags
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("acgs.db").display()));
        let defaults = acgs_store::LogConfig::default();
        let connection_defaults = acgs_server::connection::ConnectionLimits::default();
        let max_connections = flags
            .max_connections
            .or(file.max_connections)
            .unwrap_or(connection_defaults.max_connections);
        anyhow::ensure!(max_connections > 0, "`max_connections` must be at least 1");
        let connections = acgs_server::connection::ConnectionLimits {
            max_connections,
            header_timeout: secs(
                "header_timeout_secs",
                flags.header_timeout_secs,
                file.header_timeout_secs,
                connection_defaults.header_timeout,
            )?,
            body_timeout: secs(
                "body_timeout_secs",
                flags.body_timeout_secs,
                file.body_timeout_secs,
                connection_defaults.body_timeout,
            )?,
            idle_timeout: secs(
                "idle_timeout_secs",
                flags.idle_timeout_secs,
                file.idle_timeout_secs,
                connection_defaults.idle_timeout,
            )?,
            ..connection_defaults
        };
        Ok(Self {
            listen,
            database_url,
            constitution: flags.constitution.or(file.constitution),
            shadow: flags.shadow.or(file.shadow).unwrap_or(false),
            max_body_bytes: flags
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(acgs_server::DEFAULT_MAX_BODY_BYTES),
            sqlite_sync: flags.sqlite_sync.or(file.sqlite_sync).unwrap_or_default(),
            log_max_batch: flags.log_max_batch.or(file.log_max_batch).unwrap_or(defaults.max_batch),
            log_queue: flags.log_queue.or(file.log_queue).unwrap_or(defaults.queue_capacity),
            workers: flags.workers.or(file.workers).unwrap_or(0),
            log_format: flags.log_format.or(file.log_format).unwrap_or_default(),
            log_level: flags.log_level.or(file.log_level).unwrap_or_else(|| "info".into()),
            audit_key: flags
                .audit_key
                .or(file.audit_key)
                .unwrap_or_else(|| data_dir.join(AUDIT_KEY_FILE)),
            audit_log_name: flags.audit_log_name.or(file.audit_log_name),
            checkpoint_interval: std::time::Duration::from_secs(
                flags
                    .checkpoint_interval_secs
                    .or(file.checkpoint_interval_secs)
                    .unwrap_or(acgs_server::DEFAULT_CHECKPOINT_INTERVAL.as_secs())
                    .max(1),
            ),
            checkpoint_entries: flags
                .checkpoint_entries
                .or(file.checkpoint_entries)
                .unwrap_or(acgs_server::DEFAULT_CHECKPOINT_ENTRIES as u64)
                .max(1),
            auth_master_key: flags
                .auth_master_key
                .or(file.auth_master_key)
                .unwrap_or_else(|| data_dir.join(AUTH_MASTER_KEY_FILE)),
            public_metrics: flags.public_metrics.or(file.public_metrics).unwrap_or(false),
            auth,
            connections,
            data_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beats_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            shadow = true
            data_dir = "/srv/acgs"
            log_format = "json"
        "#,
        )
        .unwrap();
        let flags = ServerFlags {
            listen: Some("0.0.0.0:7000".into()),
            ..Default::default()
        };
        let config = ServerConfig::resolve(flags, file).unwrap();
        assert_eq!(config.listen, "0.0.0.0:7000".parse().unwrap());
        assert!(config.shadow);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.database_url, "sqlite:///srv/acgs/acgs.db");
        let defaults = ServerConfig::resolve(ServerFlags::default(), FileConfig::default()).unwrap();
        assert_eq!(defaults.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(!defaults.shadow);
        assert_eq!(defaults.sqlite_sync, SqliteSync::Full);
    }

    #[test]
    fn unknown_config_keys_and_bad_addresses_are_errors() {
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
        let flags = ServerFlags {
            listen: Some("localhost".into()),
            ..Default::default()
        };
        let err = ServerConfig::resolve(flags, FileConfig::default()).unwrap_err();
        assert!(err.to_string().contains("invalid listen address"), "{err}");
    }
}
