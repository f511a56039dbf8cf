//! Emergency authority transfers over HTTP: `GET`/`POST /v1/emergency/transfers`, `GET
//! /v1/emergency/transfers/{id}`, `POST /v1/emergency/transfers/{id}/approve` (the current emergency set) and
//! `POST /v1/emergency/transfers/{id}/accept` (the new authorities).

use acgs_auth::Principal;
use acgs_engine::governance::AuthoritySet;
use acgs_governance::transfer::{Transfer, TransferTarget};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;

use super::governance::{ReasonRequest, user_of};
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::state::AppState;

/// New authorities, and why.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    /// A new emergency set.
    #[serde(default)]
    pub emergency: Option<AuthoritySet>,
    /// A new guardian set.
    #[serde(default)]
    pub guardians: Option<AuthoritySet>,
    /// A new list of appeal reviewers.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 64)]
    pub appeal_reviewers: Option<Vec<String>>,
    /// Why.
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    pub reason: String,
}

/// Propose new authorities (a member of the current emergency set: the first of its M approvals).
#[utoipa::path(
    post, path = "/v1/emergency/transfers", tag = "governance", request_body = NewTransfer,
    responses(
        (status = 201, body = Transfer),
        (status = 400, description = "No new authority, or the resulting constitution does not validate", body = Problem),
        (status = 403, description = "Not in the current emergency set", body = Problem),
    )
)]
pub async fn propose(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<NewTransfer>,
) -> Result<(StatusCode, Json<Transfer>), ApiError> {
    let user = user_of(&principal)?;
    let target = TransferTarget {
        guardians: body.guardians,
        emergency: body.emergency,
        appeal_reviewers: body.appeal_reviewers,
    };
    let transfer = state.governance.propose_transfer(user, target, &body.reason).await?;
    Ok((StatusCode::CREATED, Json(transfer)))
}

/// Every authority transfer, newest first.
#[utoipa::path(get, path = "/v1/emergency/transfers", tag = "governance", responses((status = 200, body = Vec<Transfer>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Transfer>>, ApiError> {
    Ok(Json(state.governance.transfers(None, 0).await?))
}

/// One authority transfer.
#[utoipa::path(
    get, path = "/v1/emergency/transfers/{id}", tag = "governance",
    responses((status = 200, body = Transfer), (status = 404, body = Problem))
)]
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Transfer>, ApiError> {
    Ok(Json(state.governance.transfer(&id).await?))
}

/// A further approval by a member of the current emergency set.
#[utoipa::path(
    post, path = "/v1/emergency/transfers/{id}/approve", tag = "governance", request_body = ReasonRequest,
    responses((status = 200, body = Transfer), (status = 403, body = Problem), (status = 409, body = Problem))
)]
pub async fn approve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> Result<Json<Transfer>, ApiError> {
    let user = user_of(&principal)?;
    Ok(Json(state.governance.approve_transfer(user, &id, &body.reason).await?))
}

/// A new authority's acceptance; the last one needed puts the constitution with the new authorities in force.
#[utoipa::path(
    post, path = "/v1/emergency/transfers/{id}/accept", tag = "governance",
    responses(
        (status = 200, body = Transfer),
        (status = 403, description = "Not among the new authorities", body = Problem),
        (status = 409, description = "Not accepting: not yet approved, lapsed, stale or completed", body = Problem),
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Transfer>, ApiError> {
    Ok(Json(state.governance.accept_transfer(user_of(&principal)?, &id).await?))
}
