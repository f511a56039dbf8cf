//! `POST /v1/decisions`, `POST /v1/decisions/batch`, and reading decisions back from the log.

use acgs_auth::Principal;
use acgs_engine::{DecisionRequest, Detection, EvaluationError, Outcome, Reason};
use acgs_store::{DecisionQuery, DecisionRecord};
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::decision_service::RecordedDecision;
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
    /// Set when no policy decided: `emergency_halt` while the emergency set has halted the system (the
    /// decision is then `deny`, also in shadow mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_reason: Option<String>,
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

impl From<RecordedDecision> for DecisionResponse {
    fn from(recorded: RecordedDecision) -> Self {
        let RecordedDecision {
            decision,
            effective,
            shadow,
            decision_id,
            constitutional_hash,
            constitution_version,
            audit_seq,
            evaluated_in_us,
            system_reason,
        } = recorded;
        Self {
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
            system_reason: system_reason.map(str::to_owned),
        }
    }
}

/// Decide and record through the decision service, answered as a [`DecisionResponse`].
async fn decide_and_log(
    state: &AppState,
    caller: &str,
    request: &DecisionRequest,
) -> Result<DecisionResponse, ApiError> {
    Ok(state.decisions.decide(caller, request).await?.into())
}

/// Decide one action.
#[utoipa::path(
    post, path = "/v1/decisions", tag = "decisions", security(("bearer" = [])),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "Decided and durably logged", body = DecisionResponse),
        (status = 400, description = "Malformed request", body = Problem),
        (status = 403, description = "The credential may not ask decisions for this principal", body = Problem),
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
    refuse_other_principals(&state, &principal, std::slice::from_ref(&request)).await?;
    Ok(Json(decide_and_log(&state, &principal.label(), &request).await?))
}

/// 403 (recorded as the security event `principal.mismatch`) when `caller` may not ask a decision for the
/// principal of one of `requests` ([`crate::principal_binding`]); nothing is decided then.
async fn refuse_other_principals(
    state: &AppState,
    caller: &Principal,
    requests: &[DecisionRequest],
) -> Result<(), ApiError> {
    for (i, request) in requests.iter().enumerate() {
        let Err(why) = crate::principal_binding::may_decide_for(caller, &request.principal) else {
            continue;
        };
        metrics::counter!("acgs_auth_forbidden_total", "permission" => "decisions:on_behalf").increment(1);
        let subject = format!("{}::{:?}", request.principal.entity_type, request.principal.id);
        state
            .auth
            .record(
                "principal.mismatch",
                Some(&caller.label()),
                Some(&subject),
                None,
                Some(why.clone()),
            )
            .await?;
        return Err(ApiError::Forbidden(if requests.len() > 1 {
            format!("requests[{i}]: {why}")
        } else {
            why
        }));
    }
    Ok(())
}

/// Decide up to 1000 actions; each result is a decision or the problem with that request.
#[utoipa::path(
    post, path = "/v1/decisions/batch", tag = "decisions",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Per-request results in order", body = BatchResponse),
        (status = 400, description = "Malformed batch or more than 1000 requests", body = Problem),
        (status = 403, description = "The credential may not ask decisions for one of the principals", body = Problem),
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
    refuse_other_principals(&state, &principal, &batch.requests).await?;
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
