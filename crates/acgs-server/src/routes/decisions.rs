//! `POST /v1/decisions`, `POST /v1/decisions/batch`, and reading decisions back from the log.

use std::time::Instant;

use acgs_auth::Principal;
use acgs_engine::{Decision, DecisionRequest, Detection, EvaluationError, Outcome, Reason};
use acgs_store::{DecisionQuery, DecisionRecord};
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::state::{AppState, MAX_BATCH_REQUESTS};

/// The answer to "may I do this?".
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionResponse {
    /// What the caller must do: `allow`, `deny` or `escalate` (always `allow` in shadow mode).
    pub decision: Outcome,
    /// Unique id of this decision (UUID v7); the key of its audit log entry.
    pub decision_id: String,
    /// Full constitutional hash of the constitution that decided.
    pub constitutional_hash: String,
    /// Version label of that constitution.
    pub constitution_version: String,
    /// The deciding policies and the principles they implement.
    pub reasons: Vec<Reason>,
    /// Detector findings on `content` (kind and byte span; never the matched text).
    pub detections: Vec<Detection>,
    /// Policy evaluation errors (their presence makes the decision `deny`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<EvaluationError>,
    /// One sentence explaining the decision.
    pub explanation: String,
    /// Audit log sequence number of the durable record of this decision.
    pub audit_seq: i64,
    /// Engine time for this decision in microseconds (detectors and policy evaluation).
    pub evaluated_in_us: u64,
    /// Shadow mode only: what the constitution decided (the effective `decision` is `allow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_decision: Option<Outcome>,
}

/// A batch of decision requests.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 1000 requests.
    #[schema(min_items = 1, max_items = 1000)]
    pub requests: Vec<DecisionRequest>,
}

/// One result of a batch: a decision or the problem with that request.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BatchItem {
    /// The request was decided.
    Decided(Box<DecisionResponse>),
    /// The request was malformed or could not be logged.
    Failed {
        /// The problem.
        error: Problem,
    },
}

/// Results of a batch, in request order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    /// One item per request.
    pub results: Vec<BatchItem>,
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
}

/// A request bigger than this many entities (besides principal and resource) is decided off the async workers.
const HEAVY_ENTITIES: usize = 64;

/// A request whose `content` is longer than this is decided off the async workers.
const HEAVY_CONTENT_BYTES: usize = 16 * 1024;

/// Whether deciding `request` may take long enough (milliseconds: a large entity hierarchy, a long content scan)
/// that it should not hold an async worker thread, which would delay every other request on it.
fn is_heavy(request: &DecisionRequest) -> bool {
    request.entities.len() > HEAVY_ENTITIES || request.content.as_ref().is_some_and(|c| c.len() > HEAVY_CONTENT_BYTES)
}

/// A decision and the audit record that logs it, before it is logged.
struct Decided {
    decision: Decision,
    record: DecisionRecord,
    effective: Outcome,
}

/// Decide, log durably (with the caller), then answer. A heavy request is decided on the blocking pool, at most
/// [`AppState::heavy_decisions`] at a time, so that it holds no async worker and heavy requests queue behind each
/// other rather than ahead of light ones.
async fn decide_and_log(
    state: &AppState,
    caller: &str,
    request: &DecisionRequest,
) -> Result<DecisionResponse, ApiError> {
    let decided = if is_heavy(request) {
        let _slot = state
            .heavy_decisions
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("the server is shutting down".into()))?;
        metrics::counter!("acgs_decisions_offloaded_total").increment(1);
        let (state, caller, request) = (state.clone(), caller.to_owned(), request.clone());
        tokio::task::spawn_blocking(move || decide(&state, &caller, &request))
            .await
            .map_err(|e| ApiError::Internal(format!("a decision task failed: {e}")))??
    } else {
        decide(state, caller, request)?
    };
    let Decided {
        decision,
        record,
        effective,
    } = decided;
    let (decision_id, constitutional_hash, constitution_version) = (
        record.decision_id.clone(),
        record.constitutional_hash.clone(),
        record.constitution_version.clone(),
    );
    let (shadow, evaluated_in_us) = (record.shadow, record.evaluated_in_us as u64);
    let audit_seq = state.log.append(record).await?;

    let mode = if shadow { "shadow" } else { "enforce" };
    metrics::counter!("acgs_decisions_total", "outcome" => decision.outcome.as_str(), "mode" => mode).increment(1);
    for reason in &decision.reasons {
        metrics::counter!(
            "acgs_decisions_by_principle_total",
            "principle" => reason.principle_id.clone(),
            "outcome" => decision.outcome.as_str()
        )
        .increment(1);
    }
    Ok(DecisionResponse {
        decision: effective,
        decision_id,
        constitutional_hash,
        constitution_version,
        reasons: decision.reasons,
        detections: decision.detections,
        errors: decision.errors,
        explanation: decision.explanation,
        audit_seq,
        evaluated_in_us,
        shadow_decision: shadow.then_some(decision.outcome),
    })
}

/// Decide `request` and build the audit record that logs it (synchronous: the CPU part of a decision).
fn decide(state: &AppState, caller: &str, request: &DecisionRequest) -> Result<Decided, ApiError> {
    let started = Instant::now();
    let decision: Decision = state.engine.decide(request)?;
    let evaluated_in_us = started.elapsed().as_micros() as u64;
    metrics::histogram!("acgs_decision_evaluation_seconds").record(started.elapsed().as_secs_f64());

    let constitution = state.engine.constitution();
    let shadow = state.settings.shadow;
    let effective = if shadow { Outcome::Allow } else { decision.outcome };
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
    };
    // Canonical JSON: the body becomes part of the decision's audit leaf, which must not depend on key order.
    let body = acgs_audit::to_canonical_json(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let record = DecisionRecord {
        seq: 0,
        decision_id: uuid::Uuid::now_v7().to_string(),
        recorded_at_us: chrono::Utc::now().timestamp_micros(),
        principal_type: request.principal.entity_type.clone(),
        principal_id: request.principal.id.clone(),
        action: request.action.clone(),
        resource_type: request.resource.entity_type.clone(),
        resource_id: request.resource.id.clone(),
        outcome: decision.outcome.as_str().to_owned(),
        effective_outcome: effective.as_str().to_owned(),
        shadow,
        constitutional_hash: constitution.hash().to_hex(),
        constitution_version: constitution.metadata().version.clone(),
        evaluated_in_us: evaluated_in_us as i64,
        body,
    };
    Ok(Decided {
        decision,
        record,
        effective,
    })
}

/// Decide one action.
#[utoipa::path(
    post, path = "/v1/decisions", tag = "decisions", security(("bearer" = [])),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "Decided and durably logged", body = DecisionResponse),
        (status = 400, description = "Malformed request", body = Problem),
        (status = 409, description = "Constitutional hash mismatch", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 503, description = "Decision log unavailable or overloaded; nothing was decided", body = Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(request): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionResponse>, ApiError> {
    Ok(Json(decide_and_log(&state, &principal.label(), &request).await?))
}

/// Decide up to 1000 actions; each result is a decision or the problem with that request.
#[utoipa::path(
    post, path = "/v1/decisions/batch", tag = "decisions",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Per-request results in order", body = BatchResponse),
        (status = 400, description = "Malformed batch or more than 1000 requests", body = Problem),
    )
)]
pub async fn create_batch(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(batch): JsonBody<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    if batch.requests.is_empty() {
        return Err(ApiError::BadRequest("`requests` must not be empty".into()));
    }
    if batch.requests.len() > MAX_BATCH_REQUESTS {
        return Err(ApiError::BadRequest(format!(
            "a batch holds at most {MAX_BATCH_REQUESTS} requests, got {}",
            batch.requests.len()
        )));
    }
    // All items are queued together so they share group commits. Each decision first takes a unit of the task's
    // cooperative budget, so a large batch gives its worker thread back to other requests every ~128 decisions
    // instead of deciding them all in one go.
    let caller = principal.label();
    let results = futures::future::join_all(batch.requests.iter().map(|r| async {
        tokio::task::consume_budget().await;
        decide_and_log(&state, &caller, r).await
    }))
    .await;
    Ok(Json(BatchResponse {
        results: results
            .into_iter()
            .map(|r| match r {
                Ok(d) => BatchItem::Decided(Box::new(d)),
                Err(e) => BatchItem::Failed { error: e.problem() },
            })
            .collect(),
    }))
}

/// Query parameters of `GET /v1/decisions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this outcome (`allow`, `deny`, `escalate`).
    pub outcome: Option<Outcome>,
    /// Only this principal type.
    pub principal_type: Option<String>,
    /// Only this principal id.
    pub principal_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only entries with a sequence number below this (paging).
    pub before_seq: Option<i64>,
    /// Page size [default: 50]; values outside 1 to 1000 are taken as the nearest of the two.
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub limit: Option<u32>,
}

/// A logged decision as returned by the read endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoggedDecision {
    /// Audit sequence number.
    pub seq: i64,
    /// Decision id.
    pub decision_id: String,
    /// RFC 3339 time of the decision.
    pub recorded_at: String,
    /// Constitution's decision.
    pub outcome: String,
    /// What the caller was told.
    pub effective_outcome: String,
    /// Shadow mode at the time.
    pub shadow: bool,
    /// Principal as `Type::id`.
    pub principal: String,
    /// Action id.
    pub action: String,
    /// Resource as `Type::id`.
    pub resource: String,
    /// Full constitutional hash in force.
    pub constitutional_hash: String,
    /// Constitution version in force.
    pub constitution_version: String,
    /// Engine time in µs.
    pub evaluated_in_us: i64,
    /// Request (content redacted), reasons, detections, errors and explanation.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

impl From<DecisionRecord> for LoggedDecision {
    fn from(r: DecisionRecord) -> Self {
        Self {
            seq: r.seq,
            recorded_at: chrono::DateTime::from_timestamp_micros(r.recorded_at_us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .unwrap_or_default(),
            decision_id: r.decision_id,
            outcome: r.outcome,
            effective_outcome: r.effective_outcome,
            shadow: r.shadow,
            principal: format!("{}::{}", r.principal_type, r.principal_id),
            action: r.action,
            resource: format!("{}::{}", r.resource_type, r.resource_id),
            constitutional_hash: r.constitutional_hash,
            constitution_version: r.constitution_version,
            evaluated_in_us: r.evaluated_in_us,
            body: serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// List logged decisions, newest first.
#[utoipa::path(
    get, path = "/v1/decisions", tag = "decisions", params(ListParams),
    responses((status = 200, body = Vec<LoggedDecision>), (status = 400, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Vec<LoggedDecision>>, ApiError> {
    let query = DecisionQuery {
        outcome: params.outcome.map(|o| o.as_str().to_owned()),
        principal_type: params.principal_type,
        principal_id: params.principal_id,
        action: params.action,
        before_seq: params.before_seq,
        since_us: None,
        limit: params.limit,
    };
    let records = state.log.store().list(&query).await?;
    Ok(Json(records.into_iter().map(LoggedDecision::from).collect()))
}

/// One logged decision by id.
#[utoipa::path(
    get, path = "/v1/decisions/{decision_id}", tag = "decisions",
    params(("decision_id" = String, Path, description = "Decision id")),
    responses((status = 200, body = LoggedDecision), (status = 404, body = Problem))
)]
pub async fn show(
    State(state): State<AppState>,
    Path(decision_id): Path<String>,
) -> Result<Json<LoggedDecision>, ApiError> {
    match state.log.store().get(&decision_id).await? {
        Some(r) => Ok(Json(r.into())),
        None => Err(ApiError::NotFound(format!("no decision `{decision_id}` in the log"))),
    }
}
