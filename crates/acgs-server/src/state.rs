//! Shared state of the HTTP server: the engine, the decision log, the authentication service and the settings.

use std::sync::Arc;

use acgs_auth::AuthService;
use acgs_engine::Engine;
use acgs_store::{Checkpointer, DecisionLog};

/// Largest number of requests in one `POST /v1/decisions/batch`.
pub const MAX_BATCH_REQUESTS: usize = 1000;

/// Default largest request body, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Server settings that handlers need.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Shadow mode: decisions are computed and logged, but the effective decision is always `allow`.
    pub shadow: bool,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Sign a checkpoint at least this often while the log grows.
    pub checkpoint_interval: std::time::Duration,
    /// Sign a checkpoint as soon as this many entries were added since the last one.
    pub checkpoint_entries: i64,
    /// Serve `/metrics` without authentication (for a scraper on a trusted network).
    pub public_metrics: bool,
    /// The connection cap and the deadlines for slow or idle clients.
    pub connections: crate::connection::ConnectionLimits,
}

/// Default time between checkpoints while the log grows.
pub const DEFAULT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Default number of new entries that triggers a checkpoint.
pub const DEFAULT_CHECKPOINT_ENTRIES: i64 = 1000;

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            shadow: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            checkpoint_entries: DEFAULT_CHECKPOINT_ENTRIES,
            public_metrics: false,
            connections: crate::connection::ConnectionLimits::default(),
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine with the active constitution.
    pub engine: Arc<Engine>,
    /// The durable decision log.
    pub log: DecisionLog,
    /// Signs checkpoints of the audit log with the log key.
    pub checkpointer: Checkpointer,
    /// Who may use the API.
    pub auth: Arc<AuthService>,
    /// Settings.
    pub settings: Arc<ServerSettings>,
    /// Prometheus renderer.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Slots for heavy decisions (large hierarchies, long content), which run on the blocking pool: half the CPUs
    /// (at least one), so that heavy requests, however many arrive, leave CPU time to the others.
    pub heavy_decisions: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// Build the state; installs the process-wide Prometheus recorder on first use.
    pub fn new(
        engine: Arc<Engine>,
        log: DecisionLog,
        key: acgs_audit::LogKey,
        auth: Arc<AuthService>,
        settings: ServerSettings,
    ) -> Self {
        Self {
            engine,
            checkpointer: Checkpointer::new(log.store().clone(), key),
            auth,
            log,
            settings: Arc::new(settings),
            metrics: crate::telemetry::prometheus_handle(),
            heavy_decisions: Arc::new(tokio::sync::Semaphore::new(
                (std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) / 2).max(1),
            )),
        }
    }
}
