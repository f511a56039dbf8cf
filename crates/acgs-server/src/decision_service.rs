//! The decision service: decide a request under the constitution in force, record it durably in the audit log,
//! apply shadow mode and count it. HTTP handlers (and anything else that decides on the server's behalf) call it;
//! it knows nothing of HTTP. Time and decision ids come from an injected [`Clock`] and [`IdSource`], so what it
//! logs is reproducible in tests.
//!
//! A heavy request (a large entity hierarchy, long content) is decided on the blocking pool, at most
//! [`DecisionService::new`]'s `heavy_slots` at a time, so that it never holds a thread that serves other requests.
//!
//! While the emergency set has halted the system ([`HaltSwitch`]), every request is denied without being
//! evaluated (also in shadow mode: a halt fails closed), with the reason `emergency_halt`, and recorded like any
//! other decision.

use std::sync::Arc;
use std::time::Instant;

use acgs_engine::{
    Decision, DecisionRequest, Detection, Engine, EvaluationError, Outcome, Reason, RequestError, Usage,
};
use acgs_store::{DecisionLog, DecisionRecord, LogError, UsageStore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::active::{ActiveConstitution, InForce};
use crate::halt::HaltSwitch;

/// The reason a decision carries when the system was halted: no policy was evaluated.
pub const EMERGENCY_HALT: &str = "emergency_halt";

/// Microseconds since the Unix epoch, for a decision's `recorded_at`.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A new decision id for each decision.
pub type IdSource = Arc<dyn Fn() -> String + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_micros())
}

/// UUID v7 ids: unique, and ordered by time.
pub fn uuid_v7_ids() -> IdSource {
    Arc::new(|| uuid::Uuid::now_v7().to_string())
}

/// A request with more entities than this (besides principal and resource) is decided off the async workers.
const HEAVY_ENTITIES: usize = 64;

/// A request whose `content` is longer than this is decided off the async workers.
const HEAVY_CONTENT_BYTES: usize = 16 * 1024;

/// Why a decision was not made or not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// The request does not fit the constitution's schema (or is otherwise malformed).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The decision could not be recorded, so it is not answered.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The counters' usage could not be read or recorded, so nothing was decided (fail closed).
    #[error("the usage counters are unavailable, so nothing was decided: {0}")]
    Usage(acgs_store::StoreError),
    /// A bug: the audit record could not be encoded, or a decision task failed.
    #[error("{0}")]
    Internal(String),
}

/// A decision, durably recorded.
#[derive(Debug, Clone)]
pub struct RecordedDecision {
    /// The engine's decision (the real outcome, also in shadow mode).
    pub decision: Decision,
    /// What the caller must do: the outcome, or `allow` in shadow mode.
    pub effective: Outcome,
    /// Whether shadow mode was on.
    pub shadow: bool,
    /// The decision's id.
    pub decision_id: String,
    /// Full hash of the constitution that decided.
    pub constitutional_hash: String,
    /// Its version label.
    pub constitution_version: String,
    /// The audit log sequence number of its record.
    pub audit_seq: i64,
    /// Engine time in microseconds.
    pub evaluated_in_us: u64,
    /// Why the decision was made without the policies ([`EMERGENCY_HALT`]), if it was.
    pub system_reason: Option<&'static str>,
}

/// Decides and records. Cheap to clone.
#[derive(Clone)]
pub struct DecisionService {
    active: Arc<ActiveConstitution>,
    halt: Arc<HaltSwitch>,
    log: DecisionLog,
    usage: Arc<dyn UsageStore>,
    shadow: bool,
    heavy: Arc<Semaphore>,
    clock: Clock,
    ids: IdSource,
}

impl std::fmt::Debug for DecisionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionService")
            .field("active", &self.active)
            .field("shadow", &self.shadow)
            .field("heavy_slots", &self.heavy.available_permits())
            .finish_non_exhaustive()
    }
}

impl DecisionService {
    /// A service deciding under `active` unless `halt` is set, recording in `log`, keeping the counters' usage in
    /// `usage`; `heavy_slots` heavy decisions may run at once.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        active: Arc<ActiveConstitution>,
        halt: Arc<HaltSwitch>,
        log: DecisionLog,
        usage: Arc<dyn UsageStore>,
        shadow: bool,
        heavy_slots: usize,
        clock: Clock,
        ids: IdSource,
    ) -> Self {
        Self {
            active,
            halt,
            log,
            usage,
            shadow,
            heavy: Arc::new(Semaphore::new(heavy_slots.max(1))),
            clock,
            ids,
        }
    }

    /// The same service timed by `clock` and naming decisions by `ids`.
    pub fn with_clock_and_ids(mut self, clock: Clock, ids: IdSource) -> Self {
        self.clock = clock;
        self.ids = ids;
        self
    }

    /// The constitution in force.
    pub fn active(&self) -> &Arc<ActiveConstitution> {
        &self.active
    }

    /// Decide `request` for `caller` (`api_key:<id>` or `user:<name>`) under the constitution in force, and
    /// record it; answered only once the record is durable.
    pub async fn decide(&self, caller: &str, request: &DecisionRequest) -> Result<RecordedDecision, DecisionError> {
        let in_force = self.active.in_force();
        let counters = in_force.engine.constitution().counters_for(&request.action).to_vec();
        let unrecorded = if self.halt.is_halted() {
            self.deny_halted(&in_force.engine, caller, request)?
        } else if !counters.is_empty() {
            self.decide_counted(in_force, &counters, caller, request).await?
        } else {
            self.evaluate(in_force, caller, request, Usage::new()).await?
        };
        let Unrecorded {
            decision,
            record,
            effective,
            halted,
        } = unrecorded;
        let recorded = RecordedDecision {
            effective,
            shadow: record.shadow,
            decision_id: record.decision_id.clone(),
            constitutional_hash: record.constitutional_hash.clone(),
            constitution_version: record.constitution_version.clone(),
            evaluated_in_us: record.evaluated_in_us as u64,
            audit_seq: 0,
            system_reason: halted.then_some(EMERGENCY_HALT),
            decision,
        };
        let audit_seq = self.log.append(record).await?;
        count(&recorded);
        Ok(RecordedDecision { audit_seq, ..recorded })
    }

    /// Decide `request` for an action whose policies read counters: with the request's counter keys held, read
    /// their totals over their windows at the injected clock's now, decide, record the usage if allowed, and make
    /// it durable before the keys are let go. Two decisions on one key are thus ordered, and each sees the other's
    /// usage. Fails closed: without the counters, nothing is decided.
    async fn decide_counted(
        &self,
        in_force: Arc<InForce>,
        counters: &[Arc<acgs_engine::Counter>],
        caller: &str,
        request: &DecisionRequest,
    ) -> Result<Unrecorded, DecisionError> {
        let keys: Vec<String> = counters.iter().map(|c| c.key(request)).collect();
        let mut session = self.usage.usage_session(&keys).await.map_err(DecisionError::Usage)?;
        let now = (self.clock)();
        let mut usage = Usage::new();
        for (counter, key) in counters.iter().zip(&keys) {
            let total = session
                .total(key, now.saturating_sub(counter.window_us))
                .await
                .map_err(DecisionError::Usage)?;
            usage.insert(counter.name.clone(), total);
        }
        let unrecorded = self.evaluate(in_force, caller, request, usage).await?;
        if unrecorded.decision.outcome == Outcome::Allow {
            for (counter, key) in counters.iter().zip(&keys) {
                session
                    .record(key, now, counter.amount(request), now.saturating_sub(counter.window_us))
                    .await
                    .map_err(DecisionError::Usage)?;
            }
        }
        session.finish().await.map_err(DecisionError::Usage)?;
        Ok(unrecorded)
    }

    /// Decide `request` with the engine and registry in force and the counters' `usage`: in place, or, for a heavy
    /// request, on the blocking pool.
    async fn evaluate(
        &self,
        in_force: Arc<InForce>,
        caller: &str,
        request: &DecisionRequest,
        usage: Usage,
    ) -> Result<Unrecorded, DecisionError> {
        if !is_heavy(request) {
            return self.decide_now(&in_force, caller, request, &usage);
        }
        let _slot = self.heavy.acquire().await.map_err(|_| DecisionError::ShuttingDown)?;
        metrics::counter!("acgs_decisions_offloaded_total").increment(1);
        let (service, caller, request) = (self.clone(), caller.to_owned(), request.clone());
        tokio::task::spawn_blocking(move || service.decide_now(&in_force, &caller, &request, &usage))
            .await
            .map_err(|e| DecisionError::Internal(format!("a decision task failed: {e}")))?
    }

    /// Decide `request` with the engine and registry in force and the counters' `usage`, and build its audit
    /// record (synchronous: the CPU part of a decision).
    fn decide_now(
        &self,
        in_force: &InForce,
        caller: &str,
        request: &DecisionRequest,
        usage: &Usage,
    ) -> Result<Unrecorded, DecisionError> {
        let engine = &in_force.engine;
        let started = Instant::now();
        let decision: Decision = engine.decide_with(request, &in_force.registry, usage)?;
        let evaluated_in_us = started.elapsed().as_micros() as u64;
        metrics::histogram!("acgs_decision_evaluation_seconds").record(started.elapsed().as_secs_f64());
        let evaluated = Evaluated {
            decision,
            evaluated_in_us,
            usage,
        };
        self.unrecorded(engine, caller, request, evaluated, None)
    }

    /// The denial of `request` while the system is halted: nothing is evaluated, and shadow mode does not apply.
    fn deny_halted(
        &self,
        engine: &Engine,
        caller: &str,
        request: &DecisionRequest,
    ) -> Result<Unrecorded, DecisionError> {
        let state = self.halt.state();
        let since = state
            .since_us
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let decision = Decision {
            outcome: Outcome::Deny,
            reasons: Vec::new(),
            errors: Vec::new(),
            detections: Vec::new(),
            explanation: format!(
                "Denied: ACGS is halted by its emergency set since {since} ({}); every action is denied until the \
                 emergency set resumes it.",
                state.reason
            ),
        };
        let halt = HaltNote {
            since_us: state.since_us.unwrap_or_default(),
            reason: &state.reason,
        };
        let evaluated = Evaluated {
            decision,
            evaluated_in_us: 0,
            usage: &Usage::new(),
        };
        self.unrecorded(engine, caller, request, evaluated, Some(halt))
    }

    /// The audit record of `decision` on `request`, under `engine`'s constitution.
    fn unrecorded(
        &self,
        engine: &Engine,
        caller: &str,
        request: &DecisionRequest,
        evaluated: Evaluated<'_>,
        halt: Option<HaltNote<'_>>,
    ) -> Result<Unrecorded, DecisionError> {
        let Evaluated {
            decision,
            evaluated_in_us,
            usage,
        } = evaluated;
        let constitution = engine.constitution();
        let halted = halt.is_some();
        let effective = if self.shadow && !halted {
            Outcome::Allow
        } else {
            decision.outcome
        };
        let body = LoggedBody {
            caller,
            request: LoggedRequest {
                principal: &request.principal,
                action: &request.action,
                resource: &request.resource,
                context: &request.context,
                entities: &request.entities,
                content: request.content.as_ref().map(|c| ContentDigest {
                    sha256: hex::encode(Sha256::digest(c.as_bytes())),
                    bytes: c.len(),
                }),
            },
            reasons: &decision.reasons,
            detections: &decision.detections,
            errors: &decision.errors,
            explanation: &decision.explanation,
            usage: (!usage.is_empty()).then_some(usage),
            system_reason: halted.then_some(EMERGENCY_HALT),
            halt,
        };
        // Canonical JSON: the body becomes part of the decision's audit leaf, which must not depend on key order.
        let body = acgs_audit::to_canonical_json(&body).map_err(|e| DecisionError::Internal(e.to_string()))?;
        let record = DecisionRecord {
            seq: 0,
            decision_id: (self.ids)(),
            recorded_at_us: (self.clock)(),
            principal_type: request.principal.entity_type.clone(),
            principal_id: request.principal.id.clone(),
            action: request.action.clone(),
            resource_type: request.resource.entity_type.clone(),
            resource_id: request.resource.id.clone(),
            outcome: decision.outcome.as_str().to_owned(),
            effective_outcome: effective.as_str().to_owned(),
            shadow: self.shadow && !halted,
            constitutional_hash: constitution.hash().to_hex(),
            constitution_version: constitution.metadata().version.clone(),
            evaluated_in_us: evaluated_in_us as i64,
            body,
        };
        Ok(Unrecorded {
            decision,
            record,
            effective,
            halted,
        })
    }
}

/// A decision and the audit record that logs it, before it is logged.
struct Unrecorded {
    decision: Decision,
    record: DecisionRecord,
    effective: Outcome,
    /// Denied because the system was halted.
    halted: bool,
}

/// What a decision made during a halt records about it.
#[derive(Debug, Serialize)]
struct HaltNote<'a> {
    /// Since when the system is halted (µs).
    since_us: i64,
    /// Why.
    reason: &'a str,
}

/// Whether deciding `request` may take long enough (milliseconds: a large entity hierarchy, a long content scan)
/// that it should not hold an async worker thread, which would delay every other request on it.
fn is_heavy(request: &DecisionRequest) -> bool {
    request.entities.len() > HEAVY_ENTITIES || request.content.as_ref().is_some_and(|c| c.len() > HEAVY_CONTENT_BYTES)
}

/// The decision counters of `/metrics`.
fn count(recorded: &RecordedDecision) {
    let outcome = recorded.decision.outcome.as_str();
    let mode = if recorded.shadow { "shadow" } else { "enforce" };
    metrics::counter!("acgs_decisions_total", "outcome" => outcome, "mode" => mode).increment(1);
    for reason in &recorded.decision.reasons {
        metrics::counter!(
            "acgs_decisions_by_principle_total",
            "principle" => reason.principle_id.clone(),
            "outcome" => outcome
        )
        .increment(1);
    }
}

/// What the log keeps of a request: everything but the raw content, which may hold personal data or
/// secrets; of the content only its SHA-256 and length are kept.
#[derive(Debug, Serialize)]
struct LoggedRequest<'a> {
    principal: &'a acgs_engine::EntityInput,
    action: &'a str,
    resource: &'a acgs_engine::EntityInput,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    context: &'a serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    entities: &'a [acgs_engine::EntityInput],
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<ContentDigest>,
}

#[derive(Debug, Serialize)]
struct ContentDigest {
    sha256: String,
    bytes: usize,
}

/// What the engine did for one request: its decision, its time and the counters' values it read.
struct Evaluated<'u> {
    decision: Decision,
    evaluated_in_us: u64,
    usage: &'u Usage,
}

/// The JSON body stored with each decision record.
#[derive(Debug, Serialize)]
struct LoggedBody<'a> {
    /// Who asked: `api_key:<id>` or `user:<name>`.
    caller: &'a str,
    request: LoggedRequest<'a>,
    reasons: &'a [Reason],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    detections: &'a [Detection],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [EvaluationError],
    explanation: &'a str,
    /// The counters' values the policies read in `context.usage` (left out when the action reads none).
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Usage>,
    /// [`EMERGENCY_HALT`] when no policy was evaluated (left out otherwise, so earlier bodies are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    system_reason: Option<&'static str>,
    /// The halt in force, for a decision made during one.
    #[serde(skip_serializing_if = "Option::is_none")]
    halt: Option<HaltNote<'a>>,
}
