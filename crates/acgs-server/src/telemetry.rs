//! Prometheus metrics: the recorder, its histogram buckets, and the HTTP middleware that measures
//! every request and stamps the constitutional hash on every response.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Header carrying the (short) constitutional hash on every response and, optionally, on requests.
pub const HASH_HEADER: &str = "x-constitutional-hash";

const LATENCY_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The process-wide Prometheus handle (installed once; later calls return the same handle).
pub fn prometheus_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("acgs_audit_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0],
                    )
                });
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program); then ours
            // only renders what it records, which is nothing, and the embedder's is used instead.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok();
            handle
        })
        .clone()
}

/// Middleware: measure the request; stamp `X-Constitutional-Hash` on the response (the pin a request may send
/// is checked in `pin`).
pub async fn measure_and_stamp(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let hash = state.active.constitution().hash();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let mut response = next.run(request).await;

    if let Ok(value) = HeaderValue::from_str(&hash.short()) {
        response.headers_mut().insert(HASH_HEADER, value);
    }
    let status = response.status().as_u16().to_string();
    metrics::histogram!("acgs_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("acgs_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}
