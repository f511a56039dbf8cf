//! Governance over HTTP: amendments (`/v1/amendments…`), the emergency halt (`/v1/emergency…`) and the constitution
//! versions (`/v1/constitution/versions…`). Every step is taken as the signed-in user (an API key cannot govern);
//! the governance service checks that user against the constitution's council, guardians and emergency set.

use acgs_auth::{Principal, PrincipalKind};
use acgs_governance::amendment::{Amendment, AmendmentState};
use acgs_governance::{Choice, ConstitutionDiff, EmergencyAction};
use acgs_store::ConstitutionVersion;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::governance_service::{DraftInput, EmergencyStatus};
use crate::state::AppState;

/// The username of a signed-in user; an API key is refused.
pub(crate) fn user_of(principal: &Principal) -> Result<&str, ApiError> {
    match &principal.kind {
        PrincipalKind::User { username, .. } => Ok(username),
        PrincipalKind::ApiKey { id, .. } => Err(ApiError::Forbidden(format!(
            "governance steps are taken by users signed in with their own credentials (`acgs login`), not by API \
             keys (this request used key `{id}`)"
        ))),
    }
}

/// A new amendment: a full proposed constitution, or an earlier version to restore.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum NewAmendment {
    /// A full proposed constitution.
    Constitution(ProposedConstitution),
    /// An earlier version to put back in force (a rollback).
    Restore(RestoredVersion),
}

/// An amendment proposing a full constitution.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposedConstitution {
    /// Short title.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub title: String,
    /// Why.
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    pub rationale: String,
    /// The full proposed constitution (TOML).
    pub constitution: String,
}

/// An amendment restoring an earlier version.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoredVersion {
    /// Short title.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub title: String,
    /// Why.
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    pub rationale: String,
    /// The number of the earlier constitution version to restore.
    #[schema(minimum = 1)]
    pub restore_version: i64,
}

/// Which amendments to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AmendmentQuery {
    /// Only amendments in this state.
    pub state: Option<AmendmentState>,
    /// At most this many [default: 100]; more than 1000 is taken as 1000.
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub limit: Option<u32>,
    /// Only amendments drafted before this time (µs): the `created_at_us` of the last one of the previous page.
    pub before: Option<i64>,
}

/// A vote.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    /// `for`, `against` or `abstain`.
    pub choice: Choice,
    /// Why (optional).
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub reason: String,
}

/// A reason for a step that needs one (a veto, a halt, a resume, a transfer approval).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why.
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    pub reason: String,
}

/// An optional reason (a cancellation).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionalReason {
    /// Why.
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub reason: String,
}

/// A stored constitution version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    /// 1 for the first; each activation adds one. The highest is in force.
    pub number: i64,
    /// Whether it is the version in force.
    pub in_force: bool,
    /// Its constitutional hash.
    pub hash: String,
    /// Its version label.
    pub version_label: String,
    /// Its name.
    pub name: String,
    /// Where it came from (a file, the embedded example, `amendment <id>`).
    pub source_name: String,
    /// When it was put in force (RFC 3339).
    pub activated_at: String,
    /// Who put it in force.
    pub activated_by: String,
    /// Why (for an amendment: its id and title).
    pub reason: String,
    /// The full TOML source (only for a single version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn version_view(v: ConstitutionVersion, in_force: i64, with_source: bool) -> VersionView {
    VersionView {
        number: v.number,
        in_force: v.number == in_force,
        hash: v.version.hash,
        version_label: v.version.version_label,
        name: v.version.name,
        source_name: v.version.source_name,
        activated_at: chrono::DateTime::from_timestamp_micros(v.version.activated_at_us)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default(),
        activated_by: v.version.activated_by,
        reason: v.version.reason,
        source: with_source.then_some(v.version.source),
    }
}

/// Draft an amendment.
#[utoipa::path(
    post, path = "/v1/amendments", tag = "governance", request_body = NewAmendment,
    responses(
        (status = 201, description = "Drafted", body = Amendment),
        (status = 400, description = "Malformed, or the proposed constitution does not validate", body = Problem),
        (status = 403, description = "Not a user", body = Problem),
        (status = 404, description = "No such version to restore", body = Problem),
        (status = 409, description = "The constitution in force has no [governance], or changed meanwhile", body = Problem),
    )
)]
pub async fn draft(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<NewAmendment>,
) -> Result<(StatusCode, Json<Amendment>), ApiError> {
    let user = user_of(&principal)?;
    let input = match body {
        NewAmendment::Constitution(p) => DraftInput {
            title: p.title,
            rationale: p.rationale,
            constitution: Some(p.constitution),
            restore_version: None,
        },
        NewAmendment::Restore(r) => DraftInput {
            title: r.title,
            rationale: r.rationale,
            constitution: None,
            restore_version: Some(r.restore_version),
        },
    };
    let amendment = state.governance.draft(user, input).await?;
    Ok((StatusCode::CREATED, Json(amendment)))
}

/// List amendments, newest first.
#[utoipa::path(
    get, path = "/v1/amendments", tag = "governance", params(AmendmentQuery),
    responses((status = 200, body = Vec<Amendment>), (status = 400, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<AmendmentQuery>,
) -> Result<Json<Vec<Amendment>>, ApiError> {
    let amendments = state
        .governance
        .amendments(query.state, query.limit.unwrap_or(0), query.before)
        .await?;
    Ok(Json(amendments))
}

/// One amendment: its state, ballot, votes, vetoes, gate reports and history.
#[utoipa::path(
    get, path = "/v1/amendments/{id}", tag = "governance",
    responses((status = 200, body = Amendment), (status = 404, body = Problem))
)]
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Amendment>, ApiError> {
    Ok(Json(state.governance.amendment(&id).await?))
}

/// What the amendment changes, section by section, and the two hashes.
#[utoipa::path(
    get, path = "/v1/amendments/{id}/diff", tag = "governance",
    responses((status = 200, body = ConstitutionDiff), (status = 404, body = Problem))
)]
pub async fn diff(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ConstitutionDiff>, ApiError> {
    Ok(Json(state.governance.diff(&id).await?))
}

/// Open the vote (the proposer; the verification gate must pass).
#[utoipa::path(
    post, path = "/v1/amendments/{id}/open", tag = "governance",
    responses(
        (status = 200, body = Amendment),
        (status = 403, body = Problem),
        (status = 409, description = "Not a draft, or stale", body = Problem),
        (status = 422, description = "The verification gate failed; its report is kept", body = Problem),
    )
)]
pub async fn open(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Amendment>, ApiError> {
    Ok(Json(state.governance.open(user_of(&principal)?, &id).await?))
}

/// Cast or change a vote (council members; the weight comes from the register).
#[utoipa::path(
    post, path = "/v1/amendments/{id}/votes", tag = "governance", request_body = VoteRequest,
    responses(
        (status = 200, body = Amendment),
        (status = 403, description = "No seat on the council", body = Problem),
        (status = 409, description = "Not voting", body = Problem),
    )
)]
pub async fn vote(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<VoteRequest>,
) -> Result<Json<Amendment>, ApiError> {
    let user = user_of(&principal)?;
    Ok(Json(state.governance.vote(user, &id, body.choice, &body.reason).await?))
}

/// Withdraw an amendment (its proposer, while draft or voting).
#[utoipa::path(
    post, path = "/v1/amendments/{id}/cancel", tag = "governance", request_body = OptionalReason,
    responses((status = 200, body = Amendment), (status = 403, body = Problem), (status = 409, body = Problem))
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<OptionalReason>,
) -> Result<Json<Amendment>, ApiError> {
    let user = user_of(&principal)?;
    Ok(Json(state.governance.cancel(user, &id, &body.reason).await?))
}

/// A guardian's veto approval (M of the guardians veto an amendment that is voting or queued).
#[utoipa::path(
    post, path = "/v1/amendments/{id}/veto", tag = "governance", request_body = ReasonRequest,
    responses((status = 200, body = Amendment), (status = 403, body = Problem), (status = 409, body = Problem))
)]
pub async fn veto(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> Result<Json<Amendment>, ApiError> {
    let user = user_of(&principal)?;
    Ok(Json(state.governance.veto(user, &id, &body.reason).await?))
}

/// Execute a queued amendment whose timelock has passed: its constitution is put in force.
#[utoipa::path(
    post, path = "/v1/amendments/{id}/execute", tag = "governance",
    responses(
        (status = 200, body = Amendment),
        (status = 409, description = "Not queued, in its timelock, stale, or the system is halted", body = Problem),
        (status = 422, description = "The verification gate failed; its report is kept", body = Problem),
    )
)]
pub async fn execute(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Amendment>, ApiError> {
    Ok(Json(state.governance.execute(user_of(&principal)?, &id).await?))
}

/// Whether the system is halted, since when and why, and the motion collecting approvals.
#[utoipa::path(
    get, path = "/v1/emergency", tag = "governance",
    responses((status = 200, body = EmergencyStatus), (status = 409, body = Problem))
)]
pub async fn emergency_status(State(state): State<AppState>) -> Result<Json<EmergencyStatus>, ApiError> {
    Ok(Json(state.governance.emergency_status().await?))
}

/// One emergency-set member's approval of a halt (M of them halt the system: every decision is denied).
#[utoipa::path(
    post, path = "/v1/emergency/halt", tag = "governance", request_body = ReasonRequest,
    responses((status = 200, body = EmergencyStatus), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem))
)]
pub async fn halt(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> Result<Json<EmergencyStatus>, ApiError> {
    emergency(&state, &principal, EmergencyAction::Halt, &body.reason).await
}

/// One emergency-set member's approval of a resume (M of them lift the halt).
#[utoipa::path(
    post, path = "/v1/emergency/resume", tag = "governance", request_body = ReasonRequest,
    responses((status = 200, body = EmergencyStatus), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem))
)]
pub async fn resume(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> Result<Json<EmergencyStatus>, ApiError> {
    emergency(&state, &principal, EmergencyAction::Resume, &body.reason).await
}

/// `principal`'s approval of `action`.
async fn emergency(
    state: &AppState,
    principal: &Principal,
    action: EmergencyAction,
    reason: &str,
) -> Result<Json<EmergencyStatus>, ApiError> {
    let user = user_of(principal)?;
    Ok(Json(state.governance.emergency(user, action, reason).await?))
}

/// Every constitution version, oldest first.
#[utoipa::path(
    get, path = "/v1/constitution/versions", tag = "constitution",
    responses((status = 200, body = Vec<VersionView>))
)]
pub async fn versions(State(state): State<AppState>) -> Result<Json<Vec<VersionView>>, ApiError> {
    let in_force = state.active.number();
    let versions = state.governance.versions().await?;
    Ok(Json(
        versions.into_iter().map(|v| version_view(v, in_force, false)).collect(),
    ))
}

/// One constitution version with its full source.
#[utoipa::path(
    get, path = "/v1/constitution/versions/{number}", tag = "constitution",
    params(("number" = u64, Path, minimum = 1, maximum = 9223372036854775807_u64, description = "The version's number")),
    responses((status = 200, body = VersionView), (status = 400, body = Problem), (status = 404, body = Problem))
)]
pub async fn version(State(state): State<AppState>, Path(number): Path<String>) -> Result<Json<VersionView>, ApiError> {
    let number: i64 = number
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::BadRequest(format!("`{number}` is not a version number (1 or more)")))?;
    let version = state.governance.version(number).await?;
    Ok(Json(version_view(version, state.active.number(), true)))
}
