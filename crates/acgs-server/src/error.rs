//! The one place where errors become HTTP responses: RFC 9457 problem documents (`application/problem+json`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A problem document, the JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI identifying the problem type (`urn:acgs:problem:<slug>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// Further members specific to the problem type.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// An error a handler returns; converted into a problem response in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or does not match the schema (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than allowed (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client did not send the body in time (408); the connection is closed.
    #[error("{0}")]
    RequestTimeout(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// No credentials, or credentials that authenticate nobody (401 + `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// A user or key with that name exists (409).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` names another revision than the stored one (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// Too many failed logins from this address (429 + Retry-After).
    #[error("{message}")]
    TooManyRequests {
        /// What to tell the caller.
        message: String,
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// The caller expects another constitution (409).
    #[error("constitutional hash mismatch: request expects `{expected}`, active constitution is `{active}`")]
    HashMismatch {
        /// The hash the caller sent.
        expected: String,
        /// The active constitution's full hash.
        active: String,
        /// The active constitution's short hash.
        active_short: String,
    },
    /// The request is understood but its content fails a check the server runs on it: an amendment's
    /// constitution failed the verification gate (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The decision log cannot take more work right now (503 + Retry-After).
    #[error("the decision log is overloaded; retry shortly")]
    Overloaded,
    /// A dependency (storage) is unavailable (503); no decision is answered without being logged.
    #[error("{0}")]
    Unavailable(String),
    /// The stored log or its decision index fails an integrity check (500): someone changed the database. The
    /// detail (which row, which column) is returned, since the caller may read that decision's event anyway.
    #[error("{0}")]
    Integrity(String),
    /// A bug or unexpected failure (500); details are logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request-timeout", "Request timeout"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            ),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests")
            }
            ApiError::HashMismatch { .. } => (
                StatusCode::CONFLICT,
                "constitutional-hash-mismatch",
                "Constitutional hash mismatch",
            ),
            ApiError::Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "verification-gate-failed",
                "Verification gate failed",
            ),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Overloaded"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            ApiError::Integrity(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "integrity-failure",
                "Audit log integrity failure",
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let mut extra = Map::new();
        let detail = match self {
            ApiError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                "an internal error occurred; it has been logged".to_owned()
            }
            ApiError::HashMismatch {
                expected,
                active,
                active_short,
            } => {
                extra.insert("expected_hash".into(), Value::from(expected.clone()));
                extra.insert("active_hash".into(), Value::from(active.clone()));
                extra.insert("active_hash_short".into(), Value::from(active_short.clone()));
                self.to_string()
            }
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("urn:acgs:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            extra,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Overloaded | ApiError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TooManyRequests { retry_after_s, .. } => {
                if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"acgs\""),
                );
            }
            // The rest of the body may still be on its way: close instead of reading it.
            ApiError::RequestTimeout(_) | ApiError::PayloadTooLarge(_) => {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("expected `Content-Type: application/json`".into())
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge("request body exceeds the configured limit".into())
            }
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!("malformed JSON: {}", source_text(&e))),
            JsonRejection::JsonDataError(e) => ApiError::BadRequest(format!("invalid request: {}", source_text(&e))),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

/// The innermost error message (serde's, with line and column) rather than axum's generic prefix.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut current: &dyn std::error::Error = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

impl From<crate::decision_service::DecisionError> for ApiError {
    fn from(e: crate::decision_service::DecisionError) -> Self {
        use crate::decision_service::DecisionError;
        match e {
            DecisionError::Request(e) => e.into(),
            DecisionError::Log(e) => e.into(),
            DecisionError::ShuttingDown | DecisionError::Usage(_) => ApiError::Unavailable(e.to_string()),
            DecisionError::Internal(message) => ApiError::Internal(message),
        }
    }
}

impl From<acgs_engine::RequestError> for ApiError {
    fn from(e: acgs_engine::RequestError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<acgs_auth::AuthError> for ApiError {
    fn from(e: acgs_auth::AuthError) -> Self {
        use acgs_auth::AuthError;
        match e {
            // Why a credential failed is logged, not told: the caller learns only that it did.
            AuthError::Unauthenticated(reason) => {
                tracing::info!(%reason, "authentication failed");
                ApiError::Unauthorized("authentication failed: send a valid API key or access token".into())
            }
            AuthError::InvalidCredentials => ApiError::Unauthorized("invalid username or password".into()),
            AuthError::Locked { until_us } => ApiError::Unauthorized(format!(
                "account locked after too many failed logins until {}",
                chrono::DateTime::from_timestamp_micros(until_us)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            )),
            AuthError::Throttled { retry_after_s } => ApiError::TooManyRequests {
                message: format!("too many failed logins from this address; retry after {retry_after_s} s"),
                retry_after_s,
            },
            e @ AuthError::Forbidden { .. } => ApiError::Forbidden(e.to_string()),
            AuthError::Invalid(message) => ApiError::BadRequest(message),
            AuthError::Conflict(message) => ApiError::Conflict(message),
            AuthError::NotFound(message) => ApiError::NotFound(message),
            AuthError::Store(e) => ApiError::Unavailable(format!("credential store unavailable: {e}")),
            e @ (AuthError::KeyFile(_) | AuthError::Internal(_)) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<acgs_store::LogError> for ApiError {
    fn from(e: acgs_store::LogError) -> Self {
        match e {
            acgs_store::LogError::Overloaded => ApiError::Overloaded,
            other => ApiError::Unavailable(format!("decision not answered because it could not be logged: {other}")),
        }
    }
}

impl From<acgs_store::StoreError> for ApiError {
    fn from(e: acgs_store::StoreError) -> Self {
        match e {
            // Not a passing outage: a decision index that disagrees with the signed log is an incident.
            acgs_store::StoreError::IndexMismatch(mismatch) => ApiError::Integrity(mismatch.to_string()),
            other => ApiError::Unavailable(format!("storage unavailable: {other}")),
        }
    }
}

impl From<acgs_governance::GovernanceError> for ApiError {
    fn from(e: acgs_governance::GovernanceError) -> Self {
        use acgs_governance::GovernanceError;
        match e {
            GovernanceError::Conflict(message) => ApiError::Conflict(message),
            GovernanceError::NotAuthorized(message) => ApiError::Forbidden(message),
            GovernanceError::Invalid(message) => ApiError::BadRequest(message),
            GovernanceError::GateFailed(message) => ApiError::Unprocessable(message),
            e @ GovernanceError::Ungoverned => ApiError::Conflict(e.to_string()),
        }
    }
}

impl From<crate::entity_service::EntityError> for ApiError {
    fn from(e: crate::entity_service::EntityError) -> Self {
        use crate::entity_service::EntityError;
        match e {
            EntityError::Invalid(message) => ApiError::BadRequest(message),
            EntityError::Forbidden(message) => ApiError::Forbidden(message),
            EntityError::NotFound(message) => ApiError::NotFound(message),
            EntityError::PreconditionFailed(message) => ApiError::PreconditionFailed(message),
            EntityError::Conflict(message) => ApiError::Conflict(message),
            EntityError::Store(e) => e.into(),
            EntityError::Internal(message) => ApiError::Internal(message),
        }
    }
}

impl From<crate::governance_service::ServiceError> for ApiError {
    fn from(e: crate::governance_service::ServiceError) -> Self {
        use crate::governance_service::ServiceError;
        match e {
            ServiceError::Rule(e) => e.into(),
            ServiceError::NotFound(message) => ApiError::NotFound(message),
            ServiceError::Store(e) => e.into(),
            ServiceError::Internal(message) => ApiError::Internal(message),
        }
    }
}
