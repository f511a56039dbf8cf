//! Who may call what: every endpoint with the access it requires, in one table ([`ENDPOINTS`]), and the
//! middleware that enforces it. A request without valid credentials is answered 401 (with
//! `WWW-Authenticate: Bearer`); an authenticated caller whose roles lack the permission is answered 403, and that
//! refusal is recorded in the audit log. The caller ([`acgs_auth::Principal`]) is then available to handlers as
//! a request extension.

use std::net::SocketAddr;

use acgs_auth::{Permission, Principal};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// What an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, readiness, the API description, the token-signing public keys, login and refresh).
    Public,
    /// Any authenticated caller, whatever its roles (its own session and password).
    Authenticated,
    /// A caller whose roles grant the permission.
    Permission(Permission),
    /// A signed-in user (not an API key) whose roles grant the permission: governance steps, taken by people
    /// with their own credentials, whom the constitution's council and authority sets name.
    UserPermission(Permission),
    /// `metrics:read`, or anyone when the server is configured with public metrics.
    Metrics,
}

/// One endpoint and its access.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// HTTP method.
    pub method: &'static str,
    /// Route path as registered (`{name}` for path parameters).
    pub path: &'static str,
    /// What it requires.
    pub access: Access,
}

const fn endpoint(method: &'static str, path: &'static str, access: Access) -> Endpoint {
    Endpoint { method, path, access }
}

use Access::{Authenticated, Metrics, Public};
use Permission::*;

const fn needs(permission: Permission) -> Access {
    Access::Permission(permission)
}

const fn user_needs(permission: Permission) -> Access {
    Access::UserPermission(permission)
}

/// Every endpoint of the API and what it requires. The router registers exactly these (a test holds them
/// equal), and the middleware reads nothing else.
pub const ENDPOINTS: &[Endpoint] = &[
    endpoint("POST", "/v1/decisions", needs(DecisionsCreate)),
    endpoint("POST", "/v1/decisions/batch", needs(DecisionsCreate)),
    endpoint("GET", "/v1/decisions", needs(DecisionsRead)),
    endpoint("GET", "/v1/decisions/{decision_id}", needs(DecisionsRead)),
    endpoint("GET", "/v1/decisions/{decision_id}/receipt", needs(DecisionsRead)),
    endpoint("GET", "/v1/audit/key", needs(AuditRead)),
    endpoint("GET", "/v1/audit/checkpoint", needs(AuditRead)),
    endpoint("GET", "/v1/audit/entries/{seq}", needs(AuditRead)),
    endpoint("GET", "/v1/audit/proof/inclusion", needs(AuditRead)),
    endpoint("GET", "/v1/audit/proof/consistency", needs(AuditRead)),
    endpoint("GET", "/v1/constitution", needs(ConstitutionRead)),
    endpoint("GET", "/v1/constitution/principles", needs(ConstitutionRead)),
    endpoint("GET", "/v1/constitution/versions", needs(ConstitutionRead)),
    endpoint("GET", "/v1/constitution/versions/{number}", needs(ConstitutionRead)),
    endpoint("GET", "/v1/amendments", needs(GovernanceRead)),
    endpoint("POST", "/v1/amendments", user_needs(AmendmentsPropose)),
    endpoint("GET", "/v1/amendments/{id}", needs(GovernanceRead)),
    endpoint("GET", "/v1/amendments/{id}/diff", needs(GovernanceRead)),
    endpoint("POST", "/v1/amendments/{id}/open", user_needs(AmendmentsPropose)),
    endpoint("POST", "/v1/amendments/{id}/votes", user_needs(AmendmentsVote)),
    endpoint("POST", "/v1/amendments/{id}/cancel", user_needs(AmendmentsPropose)),
    endpoint("POST", "/v1/amendments/{id}/veto", user_needs(GovernanceAct)),
    endpoint("POST", "/v1/amendments/{id}/execute", user_needs(AmendmentsExecute)),
    endpoint("GET", "/v1/emergency", needs(GovernanceRead)),
    endpoint("GET", "/v1/emergency/transfers", needs(GovernanceRead)),
    endpoint("POST", "/v1/emergency/transfers", user_needs(GovernanceAct)),
    endpoint("GET", "/v1/emergency/transfers/{id}", needs(GovernanceRead)),
    endpoint(
        "POST",
        "/v1/emergency/transfers/{id}/approve",
        user_needs(GovernanceAct),
    ),
    endpoint("POST", "/v1/emergency/transfers/{id}/accept", user_needs(GovernanceAct)),
    endpoint("GET", "/v1/appeals", needs(GovernanceRead)),
    endpoint("POST", "/v1/appeals", needs(AppealsFile)),
    endpoint("GET", "/v1/appeals/{id}", needs(GovernanceRead)),
    endpoint("POST", "/v1/appeals/{id}/rulings", user_needs(AppealsReview)),
    endpoint("GET", "/v1/entities", needs(EntitiesRead)),
    endpoint("POST", "/v1/entities/import", needs(EntitiesWrite)),
    endpoint("GET", "/v1/entities/export", needs(EntitiesRead)),
    endpoint("GET", "/v1/entities/changes", needs(EntitiesRead)),
    endpoint("POST", "/v1/entities/changes/{id}/approve", needs(EntitiesWrite)),
    endpoint("POST", "/v1/entities/changes/{id}/reject", needs(EntitiesWrite)),
    endpoint("GET", "/v1/entities/{type}/{id}", needs(EntitiesRead)),
    endpoint("PUT", "/v1/entities/{type}/{id}", needs(EntitiesWrite)),
    endpoint("PATCH", "/v1/entities/{type}/{id}", needs(EntitiesWrite)),
    endpoint("DELETE", "/v1/entities/{type}/{id}", needs(EntitiesWrite)),
    endpoint("POST", "/v1/verify", needs(AmendmentsPropose)),
    endpoint("GET", "/v1/verify/{id}", needs(GovernanceRead)),
    endpoint("POST", "/v1/emergency/halt", user_needs(GovernanceAct)),
    endpoint("POST", "/v1/emergency/resume", user_needs(GovernanceAct)),
    endpoint("POST", "/v1/auth/login", Public),
    endpoint("POST", "/v1/auth/refresh", Public),
    endpoint("POST", "/v1/auth/logout", Authenticated),
    endpoint("GET", "/v1/auth/me", Authenticated),
    endpoint("POST", "/v1/auth/password", Authenticated),
    endpoint("GET", "/v1/auth/users", needs(UsersManage)),
    endpoint("POST", "/v1/auth/users", needs(UsersManage)),
    endpoint("PATCH", "/v1/auth/users/{username}", needs(UsersManage)),
    endpoint("POST", "/v1/auth/users/{username}/unlock", needs(UsersManage)),
    endpoint("GET", "/v1/auth/api-keys", needs(ApiKeysManage)),
    endpoint("POST", "/v1/auth/api-keys", needs(ApiKeysManage)),
    endpoint("DELETE", "/v1/auth/api-keys/{id}", needs(ApiKeysManage)),
    endpoint("POST", "/v1/auth/signing-keys/rotate", needs(OperationsManage)),
    endpoint("POST", "/v1/auth/rotate-all", needs(OperationsManage)),
    endpoint("GET", "/.well-known/jwks.json", Public),
    endpoint("GET", "/health", Public),
    endpoint("GET", "/ready", Public),
    endpoint("GET", "/metrics", Metrics),
    endpoint("GET", "/openapi.json", Public),
];

/// The access `method` on `path` requires; `None` for a route or method the API does not have.
pub fn access_for(method: &str, path: &str) -> Option<Access> {
    ENDPOINTS
        .iter()
        .find(|e| e.method == method && e.path == path)
        .map(|e| e.access)
}

/// The caller's address as seen by the server (the TCP peer), or `unknown` in in-process tests.
pub fn source_of(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// The middleware: authenticate and authorize every request by the table.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // No route (404) or a known route with another method (405): the router answers.
    let Some(access) = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| access_for(request.method().as_str(), path.as_str()))
    else {
        return next.run(request).await;
    };
    let permission = match access {
        Access::Public => return next.run(request).await,
        Access::Metrics if state.settings.public_metrics => return next.run(request).await,
        Access::Metrics => Some(Permission::MetricsRead),
        Access::Authenticated => None,
        Access::Permission(p) | Access::UserPermission(p) => Some(p),
    };
    let users_only = matches!(access, Access::UserPermission(_));
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match state.auth.authenticate(header).await {
        Ok(principal) => principal,
        Err(e) => {
            metrics::counter!("acgs_auth_unauthenticated_total").increment(1);
            return ApiError::from(e).into_response();
        }
    };
    let refused = match permission {
        Some(permission) if users_only && !matches!(principal.kind, acgs_auth::PrincipalKind::User { .. }) => Some((
            permission,
            ApiError::Forbidden(format!(
                "`{}` needs a signed-in user: governance steps are taken by people with their own credentials \
                     (`acgs login`), not by API keys",
                request.uri().path()
            )),
            format!("needs {permission} as a signed-in user, not an API key"),
        )),
        Some(permission) => state
            .auth
            .authorize(&principal, permission)
            .err()
            .map(|e| (permission, ApiError::from(e), format!("needs {permission}"))),
        None => None,
    };
    if let Some((permission, refusal, why)) = refused {
        metrics::counter!("acgs_auth_forbidden_total", "permission" => permission.as_str()).increment(1);
        let path = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str);
        let route = format!("{} {path}", request.method());
        let source = source_of(&request);
        if let Err(record) = state
            .auth
            .record(
                "permission.denied",
                Some(&principal.label()),
                Some(&route),
                Some(&source),
                Some(why),
            )
            .await
        {
            return ApiError::from(record).into_response();
        }
        return refusal.into_response();
    }
    request.extensions_mut().insert::<Principal>(principal);
    next.run(request).await
}
