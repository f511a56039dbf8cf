//! Formal verification over HTTP: `POST /v1/verify` starts a job on a constitution (its TOML text, or an
//! amendment's) and answers 202 at once; `GET /v1/verify/{id}` shows its progress and, when done, the report with
//! per-check timings and counterexamples, and the change analysis against the constitution in force.

use std::sync::Arc;

use acgs_engine::Constitution;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::state::AppState;
use crate::verification::VerificationJob;

/// What to verify: a constitution, or the one an amendment proposes (exactly one of the two).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// A constitution's TOML text.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4194304)]
    pub constitution: Option<String>,
    /// An amendment's id.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub amendment_id: Option<String>,
}

/// Start verifying a constitution.
#[utoipa::path(
    post, path = "/v1/verify", tag = "governance", request_body = VerifyRequest,
    responses(
        (status = 202, description = "Started; poll GET /v1/verify/{id}", body = VerificationJob),
        (status = 400, description = "Neither or both of `constitution` and `amendment_id`", body = Problem),
        (status = 404, description = "No such amendment", body = Problem),
        (status = 422, description = "The constitution does not validate (every problem listed)", body = Problem),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<VerifyRequest>,
) -> Result<(StatusCode, Json<VerificationJob>), ApiError> {
    let (name, source) = match (body.constitution, body.amendment_id) {
        (Some(text), None) => ("constitution".to_owned(), text),
        (None, Some(id)) => {
            let amendment = state.governance.amendment(&id).await?;
            (format!("amendment {id}"), amendment.source)
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of `constitution` (TOML text) and `amendment_id`".into(),
            ));
        }
    };
    let candidate = tokio::task::spawn_blocking(move || Constitution::compile(&name, &source))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let job = state.verification.start(
        uuid::Uuid::now_v7().to_string(),
        Arc::new(candidate),
        state.active.constitution(),
    );
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// A verification job: progress, then the report.
#[utoipa::path(
    get, path = "/v1/verify/{id}", tag = "governance",
    responses((status = 200, body = VerificationJob), (status = 404, body = Problem))
)]
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<VerificationJob>, ApiError> {
    state
        .verification
        .job(&id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no verification job `{id}`")))
}
