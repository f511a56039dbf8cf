//! Appeals of decisions over HTTP: `GET`/`POST /v1/appeals`, `GET /v1/appeals/{id}`, `POST /v1/appeals/{id}/rulings`.
//! Filing needs standing (checked by the governance service); ruling needs a signed-in reviewer whom the
//! constitution names.

use acgs_auth::Principal;
use acgs_engine::Outcome;
use acgs_governance::appeal::{Appeal, AppealState, RulingKind};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;

use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::governance_service::{AppealInput, RulingInput};
use crate::state::AppState;

/// A new appeal.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppeal {
    /// The decision appealed.
    pub decision_id: String,
    /// Why it is wrong.
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    pub statement: String,
}

/// A reviewer's ruling.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRuling {
    /// `uphold`, `overturn` or `refer` (to the council).
    pub ruling: RulingKind,
    /// Why.
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    pub reason: String,
    /// For overturn or refer: the outcome the constitution should give the request.
    #[serde(default)]
    pub expected_outcome: Option<Outcome>,
    /// Draft an amendment adding the request as a test case expecting `expected_outcome`.
    #[serde(default)]
    pub draft_amendment: bool,
}

/// Which appeals to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AppealQuery {
    /// Only appeals in this state.
    pub state: Option<AppealState>,
    /// At most this many [default: 100]; more than 1000 is taken as 1000.
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub limit: Option<u32>,
    /// Only appeals filed before this time (µs): the `filed_at_us` of the last one of the previous page.
    pub before: Option<i64>,
}

/// Appeal a decision.
#[utoipa::path(
    post, path = "/v1/appeals", tag = "governance", request_body = NewAppeal,
    responses(
        (status = 201, description = "Filed", body = Appeal),
        (status = 403, description = "No standing: not the caller that asked, the owner, or an operator", body = Problem),
        (status = 404, description = "No such decision", body = Problem),
    )
)]
pub async fn file(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<NewAppeal>,
) -> Result<(StatusCode, Json<Appeal>), ApiError> {
    let appeal = state
        .governance
        .file_appeal(
            &principal,
            AppealInput {
                decision_id: body.decision_id,
                statement: body.statement,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(appeal)))
}

/// List appeals, newest first.
#[utoipa::path(
    get, path = "/v1/appeals", tag = "governance", params(AppealQuery),
    responses((status = 200, body = Vec<Appeal>), (status = 400, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<AppealQuery>,
) -> Result<Json<Vec<Appeal>>, ApiError> {
    Ok(Json(
        state
            .governance
            .appeals(query.state, query.limit.unwrap_or(0), query.before)
            .await?,
    ))
}

/// One appeal, with its ruling and history.
#[utoipa::path(
    get, path = "/v1/appeals/{id}", tag = "governance",
    responses((status = 200, body = Appeal), (status = 404, body = Problem))
)]
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Appeal>, ApiError> {
    Ok(Json(state.governance.appeal(&id).await?))
}

/// Rule on an appeal (a reviewer the constitution names; not the appellant; before the deadline).
#[utoipa::path(
    post, path = "/v1/appeals/{id}/rulings", tag = "governance", request_body = NewRuling,
    responses(
        (status = 200, body = Appeal),
        (status = 403, description = "Not a reviewer, or the appellant", body = Problem),
        (status = 409, description = "Already ruled on, or expired", body = Problem),
    )
)]
pub async fn rule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewRuling>,
) -> Result<Json<Appeal>, ApiError> {
    let reviewer = super::governance::user_of(&principal)?;
    let appeal = state
        .governance
        .rule(
            reviewer,
            &id,
            RulingInput {
                ruling: body.ruling,
                reason: body.reason,
                expected_outcome: body.expected_outcome,
                draft_amendment: body.draft_amendment,
            },
        )
        .await?;
    Ok(Json(appeal))
}
