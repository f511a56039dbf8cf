//! Liveness, readiness, Prometheus metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::OpenApi;

use crate::state::AppState;

/// Liveness answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
    /// Server version.
    pub version: &'static str,
    /// Whether the emergency set has halted the system (every decision is then denied).
    pub halted: bool,
}

/// Readiness answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Storage backend (`sqlite` / `postgres`).
    pub storage: &'static str,
    /// Whether storage answered.
    pub storage_ok: bool,
    /// Storage error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
    /// Whether a decision can be durably recorded now: false after a failed commit until a commit or a write
    /// probe succeeds.
    pub writable: bool,
    /// Why decisions cannot be recorded, if they cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_error: Option<String>,
    /// Loaded constitution version.
    pub constitution_version: String,
    /// Loaded constitution short hash.
    pub constitutional_hash: String,
    /// Shadow mode on/off.
    pub shadow: bool,
    /// Whether the emergency set has halted the system: decisions are still answered (and logged), every one
    /// `deny`, so a halted server stays ready.
    pub halted: bool,
    /// Since when (RFC 3339), while halted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted_since: Option<String>,
    /// Why, while halted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halt_reason: Option<String>,
    /// The formal verifier's solver (`cvc5 1.0.3`), when it can run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver: Option<String>,
    /// Why the formal verifier cannot run (the amendment gate then stays closed); decisions are unaffected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver_error: Option<String>,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/health", tag = "system", security(()), responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        halted: state.governance.halt().is_halted(),
    })
}

/// Readiness: storage reachable and a decision can be durably recorded now (503 otherwise, e.g. while the disk
/// is full: see `DecisionLog::writable`).
#[utoipa::path(get, path = "/ready", tag = "system", security(()), responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let store = state.log.store();
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), store.ping()).await;
    let storage_error = match ping {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("storage did not answer within 2 s".to_owned()),
    };
    let write_error = state.log.writable().await.err();
    let ready = storage_error.is_none() && write_error.is_none();
    let constitution = state.active.constitution();
    let halt = state.governance.halt().state();
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        storage: store.backend(),
        storage_ok: storage_error.is_none(),
        storage_error,
        writable: write_error.is_none(),
        write_error,
        constitution_version: constitution.metadata().version.clone(),
        constitutional_hash: constitution.hash().short(),
        shadow: state.settings.shadow,
        halted: halt.halted,
        halted_since: halt
            .since_us
            .filter(|_| halt.halted)
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        halt_reason: halt.halted.then(|| halt.reason.clone()),
        solver: state.verification.solver().ok(),
        solver_error: state.verification.solver().err(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "system", security(()), responses((status = 200, description = "OpenAPI document", body = Object)))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::ApiDoc::openapi())
}
