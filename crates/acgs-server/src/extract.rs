//! Request extractors whose rejections are our JSON problem documents.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `axum::Json`, but malformed, mistyped, unknown-field and oversized bodies are answered with a
/// problem document (400 / 413 / 415) instead of axum's plain-text rejection.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_plain_json(req.headers()) {
            // Other media types (`application/json; charset=…`, `…+json`, none): axum's extractor decides.
            let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
            return Ok(Self(value));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(JsonRejection::from)?;
        // serde_json directly: the same grammar and checks as axum's extractor, without tracking the path of
        // every field, which only an error needs. On an error, axum's extractor parses again to name the field.
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Self(value)),
            Err(_) => {
                let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
                Ok(Self(value))
            }
        }
    }
}

/// Whether the request says exactly `Content-Type: application/json`, as nearly every client does.
fn is_plain_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"))
}

/// Like `axum::extract::Query`, but bad parameters are answered with a 400 problem document.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {}", e.body_text())))?;
        Ok(Self(value))
    }
}
