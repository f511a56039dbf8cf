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
        Access::Permission(p) => Some(p),
    };
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
    if let Some(permission) = permission
        && let Err(e) = state.auth.authorize(&principal, permission)
    {
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
                Some(format!("needs {permission}")),
            )
            .await
        {
            return ApiError::from(record).into_response();
        }
        return ApiError::from(e).into_response();
    }
    request.extensions_mut().insert::<Principal>(principal);
    next.run(request).await
}
