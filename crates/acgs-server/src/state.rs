//! Shared state of the HTTP server: the engine, the decision log and the settings.

use std::sync::Arc;

use acgs_engine::Engine;
use acgs_store::DecisionLog;

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
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            shadow: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
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
    /// Settings.
    pub settings: Arc<ServerSettings>,
    /// Prometheus renderer.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl AppState {
    /// Build the state; installs the process-wide Prometheus recorder on first use.
    pub fn new(engine: Arc<Engine>, log: DecisionLog, settings: ServerSettings) -> Self {
        Self {
            engine,
            log,
            settings: Arc::new(settings),
            metrics: crate::telemetry::prometheus_handle(),
        }
    }
}
