//! The ACGS HTTP API (axum): decisions, the active constitution, the tamper-evident audit log (checkpoints,
//! proofs, receipts), health, metrics and OpenAPI.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a listener, signing checkpoints in the
//! background, until a shutdown signal, then drains the decision log and signs a final checkpoint. Every response carries `X-Constitutional-Hash`; every error is
//! an `application/problem+json` document ([`ApiError`]).
#![deny(missing_docs)]

pub mod access;
pub mod active;
mod body_limit;
pub mod connection;
pub mod decision_service;
pub mod entity_service;
mod error;
mod extract;
pub mod governance_service;
pub mod halt;
pub mod openapi;
mod parse_errors;
mod pin;
pub mod principal_binding;
pub mod routes;
mod state;
mod telemetry;
pub mod verification;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post};
use tokio::net::TcpListener;

pub use error::{ApiError, Problem};
pub use openapi::ApiDoc;
pub use state::{
    AppState, DEFAULT_CHECKPOINT_ENTRIES, DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_MAX_BODY_BYTES, MAX_BATCH_REQUESTS,
    ServerSettings,
};
pub use telemetry::{HASH_HEADER, prometheus_handle};

/// The router with every route, the hash/metrics middleware, body limit and JSON 404/405/panic handling.
pub fn app(state: AppState) -> Router {
    let max_body = state.settings.max_body_bytes;
    Router::new()
        .route(
            "/v1/decisions",
            post(routes::decisions::create).get(routes::decisions::list),
        )
        .route("/v1/decisions/batch", post(routes::decisions::create_batch))
        .route("/v1/decisions/{decision_id}", get(routes::decisions::show))
        .route("/v1/decisions/{decision_id}/receipt", get(routes::audit::receipt))
        .route("/v1/audit/key", get(routes::audit::key))
        .route("/v1/audit/checkpoint", get(routes::audit::checkpoint))
        .route("/v1/audit/entries/{seq}", get(routes::audit::entry))
        .route("/v1/audit/proof/inclusion", get(routes::audit::inclusion))
        .route("/v1/audit/proof/consistency", get(routes::audit::consistency))
        .route("/v1/constitution", get(routes::constitution::show))
        .route("/v1/constitution/principles", get(routes::constitution::principles))
        .route("/v1/constitution/versions", get(routes::governance::versions))
        .route("/v1/constitution/versions/{number}", get(routes::governance::version))
        .route(
            "/v1/amendments",
            get(routes::governance::list).post(routes::governance::draft),
        )
        .route("/v1/amendments/{id}", get(routes::governance::show))
        .route("/v1/amendments/{id}/diff", get(routes::governance::diff))
        .route("/v1/amendments/{id}/open", post(routes::governance::open))
        .route("/v1/amendments/{id}/votes", post(routes::governance::vote))
        .route("/v1/amendments/{id}/cancel", post(routes::governance::cancel))
        .route("/v1/amendments/{id}/veto", post(routes::governance::veto))
        .route("/v1/amendments/{id}/execute", post(routes::governance::execute))
        .route("/v1/emergency", get(routes::governance::emergency_status))
        .route(
            "/v1/emergency/transfers",
            get(routes::transfers::list).post(routes::transfers::propose),
        )
        .route("/v1/emergency/transfers/{id}", get(routes::transfers::show))
        .route("/v1/emergency/transfers/{id}/approve", post(routes::transfers::approve))
        .route("/v1/emergency/transfers/{id}/accept", post(routes::transfers::accept))
        .route("/v1/appeals", get(routes::appeals::list).post(routes::appeals::file))
        .route("/v1/appeals/{id}", get(routes::appeals::show))
        .route("/v1/appeals/{id}/rulings", post(routes::appeals::rule))
        .route("/v1/entities", get(routes::entities::list))
        .route("/v1/entities/import", post(routes::entities::import))
        .route("/v1/entities/export", get(routes::entities::export))
        .route("/v1/entities/changes", get(routes::entities::held_changes))
        .route(
            "/v1/entities/changes/{id}/approve",
            post(routes::entities::approve_change),
        )
        .route(
            "/v1/entities/changes/{id}/reject",
            post(routes::entities::reject_change),
        )
        .route(
            "/v1/entities/{type}/{id}",
            get(routes::entities::show)
                .put(routes::entities::put)
                .patch(routes::entities::patch)
                .delete(routes::entities::delete),
        )
        .route("/v1/verify", post(routes::verify::start))
        .route("/v1/verify/{id}", get(routes::verify::show))
        .route("/v1/emergency/halt", post(routes::governance::halt))
        .route("/v1/emergency/resume", post(routes::governance::resume))
        .route("/health", get(routes::system::health))
        .route("/ready", get(routes::system::ready))
        .route("/metrics", get(routes::system::metrics))
        .route("/openapi.json", get(routes::system::openapi))
        .route("/v1/auth/login", post(routes::auth::login))
        .route("/v1/auth/refresh", post(routes::auth::refresh))
        .route("/v1/auth/logout", post(routes::auth::logout))
        .route("/v1/auth/me", get(routes::auth::me))
        .route("/v1/auth/password", post(routes::auth::change_password))
        .route(
            "/v1/auth/users",
            get(routes::auth::users).post(routes::auth::create_user),
        )
        .route("/v1/auth/users/{username}", patch(routes::auth::update_user))
        .route("/v1/auth/users/{username}/unlock", post(routes::auth::unlock_user))
        .route(
            "/v1/auth/api-keys",
            get(routes::auth::api_keys).post(routes::auth::create_api_key),
        )
        .route("/v1/auth/api-keys/{id}", delete(routes::auth::revoke_api_key))
        .route("/v1/auth/signing-keys/rotate", post(routes::auth::rotate_signing_key))
        .route("/v1/auth/rotate-all", post(routes::auth::rotate_all))
        .route("/.well-known/jwks.json", get(routes::auth::jwks))
        // Innermost first, on the routes only: the constitution pin (so an unknown route is 404, not 409).
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), pin::check))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Then authentication and authorization by the access table (before the pin: an unauthenticated caller
        // is told 401 whatever it pins), panics become a 500 problem that still passes through the metrics
        // layer, and a declared body over the limit is refused before anything else reads it.
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::enforce))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body_limit::refuse_declared_oversize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::measure_and_stamp,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for `{}`", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let problem = Problem {
        problem_type: "urn:acgs:problem:method-not-allowed".into(),
        title: "Method not allowed".into(),
        status: 405,
        detail: format!("`{method}` is not allowed on `{}`", uri.path()),
        extra: Default::default(),
    };
    let mut response = (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(problem)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::Internal("handler panicked".into()).into_response()
}

/// How often the server reads the governance state other replicas may have changed and takes the steps time
/// has taken (votes closing, amendments expiring).
pub const GOVERNANCE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Serve `state` on `listener` (with the connection cap and deadlines of [`ServerSettings::connections`]) until
/// `shutdown` completes: stop accepting, finish in-flight requests,
/// commit everything queued in the decision log, then sign a checkpoint covering it. Checkpoints are signed
/// in the background meanwhile (see [`ServerSettings::checkpoint_interval`]).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let log = state.log.clone();
    let checkpointer = state.checkpointer.clone();
    let periodic = tokio::spawn(
        checkpointer
            .clone()
            .run(state.settings.checkpoint_interval, state.settings.checkpoint_entries),
    );
    let auth = state.auth.clone();
    let (stop_upkeep, mut upkeep_stopped) = tokio::sync::watch::channel(false);
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(auth.settings().cache_refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = upkeep_stopped.wait_for(|stop| *stop) => break,
            }
            // Never cancelled midway: a database transaction dropped while it is being opened can leave its
            // connection holding SQLite's write lock, which the final checkpoint would then wait for.
            if let Err(e) = auth.maintain().await {
                tracing::warn!(error = %e, "credential upkeep failed; retrying");
            }
        }
    });
    // The stored governance state first (a halt survives restarts: no decision is answered before it is known),
    // then periodically: votes close and amendments expire near their time, and what another replica changed
    // (a version put in force, a halt) is picked up.
    let governance = state.governance.clone();
    if let Err(e) = governance.refresh().await {
        return Err(std::io::Error::other(format!("cannot read the governance state: {e}")));
    }
    // The entity registry before the first decision: decisions read it from memory. Other replicas' writes are
    // followed from before the load, so that none falls between the two.
    if let Err(e) = state.entities.follow_other_replicas().await {
        return Err(std::io::Error::other(format!("cannot follow the entity registry: {e}")));
    }
    match state.entities.load().await {
        Ok(count) => tracing::info!(entities = count, "entity registry loaded"),
        Err(e) => return Err(std::io::Error::other(format!("cannot read the entity registry: {e}"))),
    }
    let (stop_governance, mut governance_stopped) = tokio::sync::watch::channel(false);
    let governance_upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(GOVERNANCE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = governance_stopped.wait_for(|stop| *stop) => break,
            }
            if let Err(e) = governance.refresh().await {
                tracing::warn!(error = %e, "reading the governance state failed; retrying");
            }
            if let Err(e) = governance.settle_due().await {
                tracing::warn!(error = %e, "settling due governance steps failed; retrying");
            }
        }
    });
    let limits = state.settings.connections;
    let result = connection::serve_connections(listener, app(state), limits, shutdown).await;
    log.shutdown().await;
    periodic.abort();
    let _ = stop_upkeep.send(true);
    let _ = upkeep.await;
    let _ = stop_governance.send(true);
    let _ = governance_upkeep.await;
    match checkpointer.checkpoint_now().await {
        Ok(c) => tracing::info!(tree_size = c.tree_size, "final checkpoint signed"),
        Err(e) => tracing::error!(error = %e, "cannot sign the final checkpoint"),
    }
    result
}
