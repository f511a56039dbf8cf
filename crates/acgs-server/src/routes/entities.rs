//! The entity registry over HTTP: `GET /v1/entities` (a page, filtered), `GET`/`PUT`/`PATCH`/`DELETE
//! /v1/entities/{type}/{id}` (with `ETag` / `If-Match` on the revision), `POST /v1/entities/import` and `GET
//! /v1/entities/export` (JSON Lines or Cedar's entities JSON format).

use acgs_auth::Principal;
use acgs_engine::EntityInput;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use crate::entity_service::{
    CedarEntity, EntityFacts, EntityPage, EntityPatch, EntityQuery, EntityView, HeldChange, ImportSummary,
    ImportedEntity, StoredEntity, Writer, Written,
};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;

/// Which entities to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this entity type.
    #[serde(rename = "type")]
    pub entity_type: Option<String>,
    /// Only entities with this direct parent (with `parent_id`), e.g. `Role`.
    pub parent_type: Option<String>,
    /// The parent's id.
    pub parent_id: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// At most this many [default: 100, at most 1000].
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The format of an export.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One entity per line, as `GET /v1/entities` shows them (without the record's metadata).
    #[default]
    Jsonl,
    /// Cedar's entities JSON format: one array of `{uid, attrs, parents}`.
    Cedar,
}

/// What to export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only this entity type.
    #[serde(rename = "type")]
    pub entity_type: Option<String>,
    /// `jsonl` (default) or `cedar`.
    pub format: Option<ExportFormat>,
}

/// Entities to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Each in ACGS's form (`{type, id, attributes, parents}`) or Cedar's (`{uid, attrs, parents}`); at most
    /// 10,000.
    #[schema(max_items = 10000)]
    pub entities: Vec<ImportedEntity>,
}

/// List registered entities, by key (`Type::"id"`).
#[utoipa::path(
    get, path = "/v1/entities", tag = "entities", params(ListQuery),
    responses((status = 200, body = EntityPage), (status = 400, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<EntityPage>, ApiError> {
    let parent = match (query.parent_type, query.parent_id) {
        (Some(t), Some(id)) => Some((t, id)),
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "give both `parent_type` and `parent_id`, or neither".into(),
            ));
        }
    };
    if query.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::BadRequest("`limit` is 1 to 1000".into()));
    }
    Ok(Json(state.entities.list(&EntityQuery {
        entity_type: query.entity_type,
        parent,
        after: query.after,
        limit: query.limit.map(|l| l as usize),
    })))
}

/// One registered entity; its revision is the `ETag`.
#[utoipa::path(
    get, path = "/v1/entities/{type}/{id}", tag = "entities",
    params(("type" = String, Path, description = "Entity type"), ("id" = String, Path, description = "Entity id")),
    responses((status = 200, body = EntityView), (status = 404, body = Problem))
)]
pub async fn show(
    State(state): State<AppState>,
    Path((entity_type, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let entity = state.entities.get(&entity_type, &id)?;
    Ok(with_etag(StatusCode::OK, &entity))
}

/// Register an entity, or replace its facts (only at the revision `If-Match` names, when sent). Needs a writer
/// rule of the constitution that lets one of the caller's roles make the change.
#[utoipa::path(
    put, path = "/v1/entities/{type}/{id}", tag = "entities", request_body = EntityFacts,
    params(("type" = String, Path, description = "Entity type"), ("id" = String, Path, description = "Entity id")),
    responses(
        (status = 200, description = "Replaced (or unchanged)", body = EntityView),
        (status = 201, description = "Registered", body = EntityView),
        (status = 202, description = "Held until another principal approves it", body = HeldChange),
        (status = 400, description = "Does not conform to the schema", body = Problem),
        (status = 403, description = "The writer rules do not allow it", body = Problem),
        (status = 412, description = "Not at the revision `If-Match` names", body = Problem),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((entity_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(facts): JsonBody<EntityFacts>,
) -> Result<Response, ApiError> {
    let if_match = if_match(&headers)?;
    let written = state
        .entities
        .put(Writer::Principal(&principal), &entity_type, &id, facts, if_match)
        .await?;
    Ok(answer(written))
}

/// Change some facts of a registered entity (a JSON merge patch on `{attributes, parents}`: an attribute set to
/// `null` is removed; `parents`, when given, replaces them).
#[utoipa::path(
    patch, path = "/v1/entities/{type}/{id}", tag = "entities", request_body = EntityPatch,
    params(("type" = String, Path, description = "Entity type"), ("id" = String, Path, description = "Entity id")),
    responses(
        (status = 200, body = EntityView),
        (status = 202, description = "Held until another principal approves it", body = HeldChange),
        (status = 400, description = "The result does not conform to the schema", body = Problem),
        (status = 403, description = "The writer rules do not allow it", body = Problem),
        (status = 404, description = "Not registered", body = Problem),
        (status = 412, description = "Not at the revision `If-Match` names", body = Problem),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((entity_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<EntityPatch>,
) -> Result<Response, ApiError> {
    let if_match = if_match(&headers)?;
    let written = state
        .entities
        .patch(Writer::Principal(&principal), &entity_type, &id, patch, if_match)
        .await?;
    Ok(answer(written))
}

/// Delete a registered entity (decisions naming it are refused from now on).
#[utoipa::path(
    delete, path = "/v1/entities/{type}/{id}", tag = "entities",
    params(("type" = String, Path, description = "Entity type"), ("id" = String, Path, description = "Entity id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 202, description = "Held until another principal approves it", body = HeldChange),
        (status = 403, description = "The writer rules do not allow it", body = Problem),
        (status = 404, description = "Not registered", body = Problem),
        (status = 412, description = "Not at the revision `If-Match` names", body = Problem),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((entity_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let if_match = if_match(&headers)?;
    let written = state
        .entities
        .delete(Writer::Principal(&principal), &entity_type, &id, if_match)
        .await?;
    Ok(answer(written))
}

/// Which held changes to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HeldQuery {
    /// Only changes in this state: `pending`, `approved` or `rejected`.
    pub state: Option<String>,
    /// At most this many [default: 100, at most 1000].
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub limit: Option<u32>,
}

/// Registry changes held for a second principal's approval (writer rules with `needs_approval`), newest first.
#[utoipa::path(
    get, path = "/v1/entities/changes", tag = "entities", params(HeldQuery),
    responses((status = 200, body = Vec<HeldChange>), (status = 400, body = Problem))
)]
pub async fn held_changes(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<HeldQuery>,
) -> Result<Json<Vec<HeldChange>>, ApiError> {
    Ok(Json(
        state
            .entities
            .held_changes(query.state.as_deref(), query.limit.unwrap_or(0))
            .await?,
    ))
}

/// Approve a held change (not its proposer; the caller's writer rules must allow the change): it is applied.
#[utoipa::path(
    post, path = "/v1/entities/changes/{id}/approve", tag = "entities",
    params(("id" = String, Path, description = "The held change's id")),
    responses(
        (status = 200, description = "Approved and applied", body = HeldChange),
        (status = 403, description = "The proposer, or writer rules that do not allow the change", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "No longer pending, or the entity changed since it was proposed", body = Problem),
    )
)]
pub async fn approve_change(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<HeldChange>, ApiError> {
    Ok(Json(state.entities.approve(&principal, &id).await?))
}

/// Reject a held change (its proposer withdrawing it, or a principal whose writer rules allow the change).
#[utoipa::path(
    post, path = "/v1/entities/changes/{id}/reject", tag = "entities",
    params(("id" = String, Path, description = "The held change's id")),
    responses(
        (status = 200, description = "Rejected", body = HeldChange),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "No longer pending", body = Problem),
    )
)]
pub async fn reject_change(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<HeldChange>, ApiError> {
    Ok(Json(state.entities.reject(&principal, &id).await?))
}

/// The answer to a write: the entity (201 registered, 200 changed) with its revision as `ETag`, 204 deleted, or
/// 202 with the change held for approval.
fn answer(written: Written) -> Response {
    match written {
        Written::Applied { entity, created } => {
            with_etag(if created { StatusCode::CREATED } else { StatusCode::OK }, &entity)
        }
        Written::Deleted => StatusCode::NO_CONTENT.into_response(),
        Written::Held(change) => (StatusCode::ACCEPTED, Json(*change)).into_response(),
    }
}

/// Register many entities in one commit: all of them or, if any does not conform or is not the caller's to write,
/// none.
#[utoipa::path(
    post, path = "/v1/entities/import", tag = "entities", request_body = ImportRequest,
    responses(
        (status = 200, body = ImportSummary),
        (status = 400, description = "An entity does not conform (named by its index)", body = Problem),
        (status = 403, description = "The writer rules do not allow one of them", body = Problem),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<ImportRequest>,
) -> Result<Json<ImportSummary>, ApiError> {
    let entities: Vec<EntityInput> = body.entities.into_iter().map(EntityInput::from).collect();
    Ok(Json(
        state.entities.import(Writer::Principal(&principal), entities).await?,
    ))
}

/// Every registered entity (of one type), as JSON Lines or in Cedar's entities JSON format.
#[utoipa::path(
    get, path = "/v1/entities/export", tag = "entities", params(ExportQuery),
    responses(
        (status = 200, description = "JSON Lines (`format=jsonl`) or Cedar's entities JSON (`format=cedar`)",
         content((String = "application/x-ndjson"), (Vec<CedarEntity> = "application/json"))),
        (status = 400, body = Problem),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ExportQuery>,
) -> Result<Response, ApiError> {
    let entities = state.entities.export(query.entity_type.as_deref());
    let encode = |e: serde_json::Error| ApiError::Internal(format!("encoding entities: {e}"));
    let (content_type, body) = match query.format.unwrap_or_default() {
        ExportFormat::Jsonl => {
            let mut body = String::new();
            for e in &entities {
                body.push_str(&serde_json::to_string(&e.entity).map_err(encode)?);
                body.push('\n');
            }
            ("application/x-ndjson", body)
        }
        ExportFormat::Cedar => {
            let cedar: Vec<CedarEntity> = entities.iter().map(|e| CedarEntity::from(&e.entity)).collect();
            ("application/json", serde_json::to_string(&cedar).map_err(encode)?)
        }
    };
    Ok(([(CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response())
}

/// `If-Match: "3"` (or `3`, or `W/"3"`) as a revision; absent is `None`.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<i64>().ok().filter(|r| *r >= 0).map(Some).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`If-Match` must be an entity's revision (an ETag such as \"3\"), not `{text}`"
        ))
    })
}

fn with_etag(status: StatusCode, entity: &StoredEntity) -> Response {
    let mut response = (status, Json(EntityView::from(entity))).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", entity.revision)) {
        response.headers_mut().insert(ETAG, value);
    }
    response
}
