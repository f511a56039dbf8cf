//! Logins, token refresh, logout, the caller's identity and password; users, API keys and signing keys for
//! administrators and operators; the public signing keys (JWKS).

use acgs_auth::{
    ApiKeyView, Principal, PrincipalKind, Role, RotateAllReport, Tokens, UserChanges, UserView, parse_roles,
};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::state::AppState;

/// Username and password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A refresh token to exchange.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh (each works once).
    pub refresh_token: String,
}

/// The caller's identity.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// Username or API key id.
    pub id: String,
    /// The API key's name (API keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The session (users only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Every permission the roles grant.
    pub permissions: Vec<String>,
}

/// A password change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new password: at least 12 characters, at most 1024 bytes (UTF-8).
    #[schema(min_length = 12)]
    pub new_password: String,
}

/// A new user.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Username: 1 to 64 letters, digits, `.`, `_`, `-`, `@`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]+$")]
    pub username: String,
    /// Roles (at least one).
    #[schema(value_type = Vec<Role>, min_items = 1)]
    pub roles: Vec<String>,
    /// Password (at least 12 characters, at most 1024 bytes); one is generated (and returned once) if absent
    /// or `null`.
    #[serde(default)]
    #[schema(min_length = 12)]
    pub password: Option<String>,
}

/// A created user, with the generated password if there was one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    /// The user.
    pub user: UserView,
    /// The generated password, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Changes to a user: at least one of its members (none may be `null`). (`minProperties: 1` is set by
/// `crate::openapi`: utoipa 5.5 writes `min_properties` as `maxProperties`.)
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New roles (at least one).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<Role>, min_items = 1, nullable = false)]
    pub roles: Option<Vec<String>>,
    /// Disable (ends the user's sessions) or enable.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
    /// A new password (ends the user's sessions): at least 12 characters, at most 1024 bytes.
    #[serde(default, deserialize_with = "present")]
    #[schema(min_length = 12, nullable = false)]
    pub password: Option<String>,
    /// The registry entity this person is (e.g. `{"type": "User", "id": "maria"}`), or `null` to unbind.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BoundEntity>)]
    pub entity: Option<Option<BoundEntity>>,
}

/// An optional whole number, also spelled as a float (`30.0`): JSON Schema (and so OpenAPI 3.1) counts `30.0` as
/// an integer, and serde's integers do not.
fn whole_number<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected a whole number from 0 to {}, got {number}", u32::MAX)))
}

/// An optional member that, when present, must not be `null` (absent is `None`, by `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A new API key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What it is for: 1 to 200 characters, not all white space.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// Roles, at least one (agents get `agent`).
    #[schema(value_type = Vec<Role>, min_items = 1)]
    pub roles: Vec<String>,
    /// Days until it expires (1 to 36500); never if absent or `null`.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 36500)]
    pub expires_in_days: Option<u32>,
    /// The principal entity the key decides for (an agent's key: it may ask decisions for this principal only).
    #[serde(default)]
    pub entity: Option<BoundEntity>,
}

/// The registry entity an account or key is bound to (docs/entities.md).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundEntity {
    /// Entity type, e.g. `Agent` or `User`.
    #[serde(rename = "type")]
    #[schema(min_length = 1, pattern = "\\S")]
    pub entity_type: String,
    /// Entity id.
    pub id: String,
}

impl From<BoundEntity> for acgs_store::EntityName {
    fn from(e: BoundEntity) -> Self {
        Self {
            entity_type: e.entity_type,
            id: e.id,
        }
    }
}

/// The longest lifetime of an API key, in days (100 years; the OpenAPI document says the same).
const MAX_API_KEY_DAYS: u32 = 36500;

/// A created API key with its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// The whole key: send it as `Authorization: Bearer <key>`. Only its SHA-256 is kept.
    pub key: String,
    /// The key's record.
    pub api_key: ApiKeyView,
}

/// Incident response options.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateAllRequest {
    /// Also revoke every API key.
    #[serde(default)]
    pub revoke_api_keys: bool,
}

/// The new signing key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    /// Its `kid`.
    pub kid: String,
}

/// Log in: an access token (JWT) and a refresh token.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth", security(()), request_body = LoginRequest,
    responses(
        (status = 200, body = Tokens),
        (status = 401, description = "Wrong username or password, or the account is locked", body = Problem),
        (status = 429, description = "Too many failed logins from this address", body = Problem),
    )
)]
pub async fn login(State(state): State<AppState>, request: Request) -> Result<Json<Tokens>, ApiError> {
    let source = crate::access::source_of(&request);
    let JsonBody(body) = JsonBody::<LoginRequest>::from_request(request, &state).await?;
    Ok(Json(state.auth.login(&body.username, &body.password, &source).await?))
}

/// Exchange a refresh token for new tokens (the old refresh token stops working; presenting it again revokes
/// the session).
#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "auth", security(()), request_body = RefreshRequest,
    responses((status = 200, body = Tokens), (status = 401, body = Problem))
)]
pub async fn refresh(State(state): State<AppState>, request: Request) -> Result<Json<Tokens>, ApiError> {
    let source = crate::access::source_of(&request);
    let JsonBody(body) = JsonBody::<RefreshRequest>::from_request(request, &state).await?;
    Ok(Json(state.auth.refresh(&body.refresh_token, &source).await?))
}

/// End the caller's session.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Session ended"), (status = 400, body = Problem), (status = 401, body = Problem))
)]
pub async fn logout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .logout(&principal, &crate::access::source_of(&request))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is, and what it may do.
#[utoipa::path(
    get, path = "/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem))
)]
pub async fn me(Extension(principal): Extension<Principal>) -> Json<Me> {
    let mut permissions: Vec<String> = principal
        .roles
        .iter()
        .flat_map(|r: Role| r.permissions().iter().map(|p| p.as_str().to_owned()))
        .collect();
    permissions.sort();
    permissions.dedup();
    let roles = principal.roles.names();
    Json(match principal.kind {
        PrincipalKind::User {
            username, session_id, ..
        } => Me {
            kind: "user",
            id: username,
            name: None,
            session_id: Some(session_id),
            roles,
            permissions,
        },
        PrincipalKind::ApiKey { id, name } => Me {
            kind: "api_key",
            id,
            name: Some(name),
            session_id: None,
            roles,
            permissions,
        },
    })
}

/// Change one's own password; every session of the user ends (log in again).
#[utoipa::path(
    post, path = "/v1/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 204, description = "Changed"), (status = 400, body = Problem), (status = 401, body = Problem))
)]
pub async fn change_password(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let source = crate::access::source_of(&request);
    let JsonBody(body) = JsonBody::<PasswordChange>::from_request(request, &state).await?;
    state
        .auth
        .change_password(&principal, &body.current_password, &body.new_password, &source)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every user.
#[utoipa::path(
    get, path = "/v1/auth/users", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<UserView>), (status = 401, body = Problem), (status = 403, body = Problem))
)]
pub async fn users(State(state): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(state.auth.users().await?))
}

/// Create a user.
#[utoipa::path(
    post, path = "/v1/auth/users", tag = "auth", security(("bearer" = [])), request_body = NewUser,
    responses(
        (status = 201, body = CreatedUser), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "A user with that name exists", body = Problem),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let roles = parse_roles(&body.roles)?;
    let (user, password) = state
        .auth
        .create_user(&principal.label(), &body.username, body.password, roles)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { user, password })).into_response())
}

/// Change a user's roles, disable or enable it, or reset its password.
#[utoipa::path(
    patch, path = "/v1/auth/users/{username}", tag = "auth", security(("bearer" = [])), request_body = UserPatch,
    params(("username" = String, Path, description = "Username")),
    responses(
        (status = 200, body = UserView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Disabling, or removing `admin` from, the last active administrator", body = Problem),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    let changes = UserChanges {
        roles: body.roles.as_deref().map(parse_roles).transpose()?,
        disabled: body.disabled,
        password: body.password,
        entity: body.entity.map(|e| e.map(acgs_store::EntityName::from)),
    };
    Ok(Json(
        state.auth.update_user(&principal.label(), &username, changes).await?,
    ))
}

/// Lift a lockout.
#[utoipa::path(
    post, path = "/v1/auth/users/{username}/unlock", tag = "auth", security(("bearer" = [])),
    params(("username" = String, Path, description = "Username")),
    responses((status = 204, description = "Unlocked"), (status = 401, body = Problem), (status = 403, body = Problem))
)]
pub async fn unlock_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.unlock(&principal.label(), &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every API key (never their secrets).
#[utoipa::path(
    get, path = "/v1/auth/api-keys", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKeyView>), (status = 401, body = Problem), (status = 403, body = Problem))
)]
pub async fn api_keys(State(state): State<AppState>) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    Ok(Json(state.auth.api_keys().await?))
}

/// Create an API key; the key is in this response only.
#[utoipa::path(
    post, path = "/v1/auth/api-keys", tag = "auth", security(("bearer" = [])), request_body = NewApiKey,
    responses(
        (status = 201, body = CreatedApiKey), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
    )
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<NewApiKey>,
) -> Result<Response, ApiError> {
    let roles = parse_roles(&body.roles)?;
    let expires_at_us = match body.expires_in_days {
        None => None,
        Some(days @ 1..=MAX_API_KEY_DAYS) => Some(state.auth.now_us() + i64::from(days) * 24 * 3600 * 1_000_000),
        Some(days) => {
            return Err(ApiError::BadRequest(format!(
                "`expires_in_days` is 1 to {MAX_API_KEY_DAYS}, got {days}"
            )));
        }
    };
    let entity = body.entity.map(acgs_store::EntityName::from);
    let (api_key, key) = state
        .auth
        .create_api_key_for(&principal.label(), &body.name, roles, expires_at_us, entity)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key, api_key })).into_response())
}

/// Revoke an API key.
#[utoipa::path(
    delete, path = "/v1/auth/api-keys/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (its visible prefix)")),
    responses(
        (status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    )
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.revoke_api_key(&principal.label(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make a new signing key; the previous one verifies for the longest access-token lifetime.
#[utoipa::path(
    post, path = "/v1/auth/signing-keys/rotate", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = RotatedKey), (status = 401, body = Problem), (status = 403, body = Problem))
)]
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<RotatedKey>, ApiError> {
    Ok(Json(RotatedKey {
        kid: state.auth.rotate_signing_key(&principal.label()).await?,
    }))
}

/// Incident response: revoke every session (and optionally every API key) and replace the signing key,
/// retiring all earlier keys at once.
#[utoipa::path(
    post, path = "/v1/auth/rotate-all", tag = "auth", security(("bearer" = [])), request_body = RotateAllRequest,
    responses((status = 200, body = RotateAllReport), (status = 401, body = Problem), (status = 403, body = Problem))
)]
pub async fn rotate_all(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<RotateAllRequest>,
) -> Result<Json<RotateAllReport>, ApiError> {
    Ok(Json(
        state.auth.rotate_all(&principal.label(), body.revoke_api_keys).await?,
    ))
}

/// The public keys that verify access tokens (JSON Web Key Set).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()), responses((status = 200, description = "JWKS", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.auth.jwks())
}
