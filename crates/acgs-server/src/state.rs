//! Shared state of the HTTP server: the constitution in force, the decision and governance services, the decision
//! log, the authentication service and the settings.

use std::sync::Arc;

use acgs_auth::AuthService;
use acgs_engine::Engine;
use acgs_store::{Checkpointer, DecisionLog, Store};

use crate::active::ActiveConstitution;
use crate::decision_service::{Clock, DecisionService, IdSource, system_clock, uuid_v7_ids};
use crate::entity_service::{EntityService, RegistryConformance};
use crate::governance_service::GovernanceService;
use crate::halt::HaltSwitch;

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
    /// The constitution in force.
    pub active: Arc<ActiveConstitution>,
    /// Decides and records decisions.
    pub decisions: DecisionService,
    /// Amendments, votes, the emergency halt and the constitution versions.
    pub governance: GovernanceService,
    /// The entity registry.
    pub entities: EntityService,
    /// The formal verifier: the amendment gate's proofs and verification jobs.
    pub verification: crate::verification::VerificationService,
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
}

impl AppState {
    /// Build the state, with `engine` (compiled from the stored version `version`) in force, governed through
    /// `store`, the system clock and UUID v7 ids; installs the process-wide Prometheus recorder on first use.
    /// The emergency state starts as not halted: [`GovernanceService::refresh`] reads the stored one (`serve`
    /// does before it accepts a connection).
    pub fn new(
        (engine, version): (Arc<Engine>, i64),
        store: Arc<dyn Store>,
        log: DecisionLog,
        key: acgs_audit::LogKey,
        auth: Arc<AuthService>,
        settings: ServerSettings,
    ) -> Self {
        let active = Arc::new(ActiveConstitution::new(engine, version));
        let halt = Arc::new(HaltSwitch::default());
        let (clock, ids) = (system_clock(), uuid_v7_ids());
        let verification = crate::verification::VerificationService::new(acgs_verify::SolverConfig::from_env());
        let proofs: Vec<Arc<dyn acgs_governance::ProofCheck>> = vec![
            verification.gate_check(),
            Arc::new(RegistryConformance::new(active.clone())),
        ];
        Self {
            decisions: decision_service(&active, &halt, &log, &store, &settings, (clock.clone(), ids.clone())),
            entities: EntityService::new(store.clone(), active.clone(), clock.clone()),
            governance: GovernanceService::new(store, active.clone(), halt, clock, ids, proofs),
            verification,
            active,
            checkpointer: Checkpointer::new(log.store().clone(), key),
            auth,
            log,
            settings: Arc::new(settings),
            metrics: crate::telemetry::prometheus_handle(),
        }
    }

    /// The same state with decisions and governance steps timed by `clock` and named by `ids` (for
    /// reproducible tests, and timelocks tested without waiting).
    pub fn with_clock_and_ids(mut self, clock: Clock, ids: IdSource) -> Self {
        self.decisions = self.decisions.with_clock_and_ids(clock.clone(), ids.clone());
        self.entities = self.entities.with_clock(clock.clone());
        self.governance = self.governance.with_clock_and_ids(clock, ids);
        self
    }
}

/// The decision service: heavy decisions (large hierarchies, long content) run on the blocking pool, on half the
/// CPUs (at least one), so that heavy requests, however many arrive, leave CPU time to the others.
fn decision_service(
    active: &Arc<ActiveConstitution>,
    halt: &Arc<HaltSwitch>,
    log: &DecisionLog,
    store: &Arc<dyn Store>,
    settings: &ServerSettings,
    (clock, ids): (Clock, IdSource),
) -> DecisionService {
    let heavy_slots = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) / 2;
    // The counters' usage lives beside the log it is counted from.
    let usage: Arc<dyn acgs_store::UsageStore> = store.clone();
    DecisionService::new(
        active.clone(),
        halt.clone(),
        log.clone(),
        usage,
        settings.shadow,
        heavy_slots,
        clock,
        ids,
    )
}
