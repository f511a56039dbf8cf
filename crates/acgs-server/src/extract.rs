//! Request extractors whose rejections are our JSON problem documents.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::connection::BodyDeadline;
use crate::error::ApiError;

/// Like `axum::Json`, but malformed, mistyped, unknown-field, duplicate-key and oversized bodies are answered
/// with a problem document (400 / 413 / 415) instead of axum's plain-text rejection, and a body that does not
/// arrive by the request's [`BodyDeadline`] with 408.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected `Content-Type: application/json`".into(),
            ));
        }
        let deadline = req.extensions().get::<BodyDeadline>().copied();
        let read = Bytes::from_request(req, state);
        let bytes = match deadline {
            Some(BodyDeadline(at)) => tokio::time::timeout_at(at, read).await.map_err(|_| {
                metrics::counter!("acgs_http_body_timeouts_total").increment(1);
                ApiError::RequestTimeout("the request body did not arrive within the body timeout".into())
            })?,
            None => read.await,
        }
        .map_err(JsonRejection::from)?;
        // Every request body of the API is an object (as the OpenAPI document says); serde would also read a
        // struct from an array, taking `[true]` for `{"revoke_api_keys": true}` and `[]` for `{}`.
        if bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) != Some(&b'{') {
            return Err(ApiError::BadRequest("the body must be a JSON object".into()));
        }
        // serde_json directly: the same grammar and checks as axum's extractor, without tracking the path of
        // every field, which only an error needs. On an error, axum's extractor parses again to name the field.
        let value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(_) => axum::Json::<T>::from_bytes(&bytes)?.0,
        };
        // A repeated key deep inside (serde keeps the last one, another parser may keep the first) is refused.
        acgs_engine::reject_duplicate_keys(&bytes).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
        Ok(Self(value))
    }
}

/// Whether the request's media type is JSON: `application/json` (with any parameters) or `application/*+json`,
/// as axum's own extractor accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    match essence.split_once('/') {
        Some((kind, subtype)) if kind.eq_ignore_ascii_case("application") => {
            subtype.eq_ignore_ascii_case("json")
                || subtype
                    .len()
                    .checked_sub(5)
                    .filter(|&at| at > 0)
                    .and_then(|at| subtype.get(at..))
                    .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
        }
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};

    use super::is_json;

    fn with(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers
    }

    #[test]
    fn json_media_types_are_recognised() {
        for json in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/problem+json",
            "application/merge-patch+JSON",
        ] {
            assert!(is_json(&with(json)), "{json}");
        }
        for other in [
            "text/plain",
            "application/+json",
            "application/jsonx",
            "text/json",
            "json",
            "",
        ] {
            assert!(!is_json(&with(other)), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
