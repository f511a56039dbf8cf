//! The constitution pin: a request may name, in `X-Constitutional-Hash`, the constitution it was written for
//! (full hash or a prefix of at least 16 hex digits). It runs after routing and authentication, so an unknown
//! route is still 404 and an unauthenticated caller still 401; then a pin on another constitution is 409, and a
//! pin sent more than once (which one would count?) is 400.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::HASH_HEADER;

/// Middleware: answer 400 for more than one pin and 409 for a pin on another constitution.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut pins = request.headers().get_all(HASH_HEADER).iter();
    let pin = match (pins.next(), pins.next()) {
        (None, _) => return next.run(request).await,
        (Some(_), Some(_)) => {
            return ApiError::BadRequest("send `X-Constitutional-Hash` at most once".into()).into_response();
        }
        (Some(pin), None) => pin,
    };
    let hash = state.active.constitution().hash();
    let sent = pin.to_str().unwrap_or("");
    if hash.matches(sent) {
        return next.run(request).await;
    }
    metrics::counter!("acgs_constitutional_hash_mismatches_total").increment(1);
    ApiError::HashMismatch {
        expected: sent.to_owned(),
        active: hash.to_hex(),
        active_short: hash.short(),
    }
    .into_response()
}
