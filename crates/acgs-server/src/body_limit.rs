//! A request whose `Content-Length` declares more than the body limit is answered 413 at once, before any of
//! its body is read (and its connection closed), instead of when the limit is crossed while reading.

use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Middleware: 413 for a declared length over `max_body_bytes`.
pub async fn refuse_declared_oversize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.settings.max_body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => ApiError::PayloadTooLarge(format!(
            "the request declares a body of {length} bytes; the limit is {limit}"
        ))
        .into_response(),
        _ => next.run(request).await,
    }
}
