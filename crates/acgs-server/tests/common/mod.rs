//! The HTTP test harness shared by the server's test suites: an app on a real store with a real
//! authentication service, and requests sent in-process through the router.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use acgs_auth::{AuthService, AuthSettings, MasterKey, Role};
use acgs_engine::{Constitution, Engine};
use acgs_server::{AppState, ServerSettings, app};
use acgs_store::{DecisionLog, LogConfig, Store, StoreOptions};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/constitution.toml");

pub struct TestServer {
    pub state: AppState,
    pub store: Arc<dyn Store>,
    /// An API key holding every role: what the functional tests send unless they send something else.
    pub key: String,
    pub dir: tempfile::TempDir,
}

pub async fn server(settings: ServerSettings) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/acgs.db", dir.path().display());
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    server_on(store, settings, dir).await
}

/// The example constitution with every entity type's facts sent by the caller (its `[entities]` tables left
/// out): what the suites that test other things than the registry run, so that their requests carry their facts.
/// `tests/entities.rs` runs the example as it is.
pub fn example_source() -> String {
    without_entity_sources(&std::fs::read_to_string(EXAMPLE).unwrap())
}

/// `text` without its `[entities.…]` tables (up to the next table or section comment); the rest as written.
pub fn without_entity_sources(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("[entities.") || t.starts_with("[[entities.") {
            skipping = true;
        } else if t.starts_with('[') || t.starts_with("# ===") {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub async fn server_on(store: Arc<dyn Store>, settings: ServerSettings, dir: tempfile::TempDir) -> TestServer {
    server_with(store, settings, dir, &example_source()).await
}

/// A server on `store` with the constitution `source` (TOML) in force.
pub async fn server_with(
    store: Arc<dyn Store>,
    settings: ServerSettings,
    dir: tempfile::TempDir,
    source: &str,
) -> TestServer {
    let constitution = Constitution::from_toml(EXAMPLE, source).unwrap_or_else(|e| panic!("{e}"));
    let (master, _) = MasterKey::load_or_create(&dir.path().join("auth-master.key")).unwrap();
    let auth = AuthService::new(
        store.clone(),
        master,
        AuthSettings::default(),
        acgs_auth::system_clock(),
    )
    .await
    .unwrap();
    auth.ensure_signing_key().await.unwrap();
    let (_, key) = auth
        .create_api_key("test", "every role", Role::ALL.into_iter().collect(), None)
        .await
        .unwrap();
    let log = DecisionLog::start(store.clone(), LogConfig::default());
    let version = record_version(&*store, &constitution, source).await;
    TestServer {
        state: AppState::new(
            (Arc::new(Engine::new(Arc::new(constitution))), version),
            store.clone(),
            log,
            acgs_audit::LogKey::generate(Some("acgs.test/audit")).unwrap(),
            Arc::new(auth),
            settings,
        ),
        store,
        key,
        dir,
    }
}

/// Record `constitution` as the version in force (as `acgs serve`'s first start does), unless one is; its number.
pub async fn record_version(store: &dyn Store, constitution: &Constitution, source: &str) -> i64 {
    if let Some(active) = store.active_constitution().await.unwrap() {
        return active.number;
    }
    let source = source.to_owned();
    store
        .activate_constitution(
            0,
            &acgs_store::NewConstitutionVersion {
                hash: constitution.hash().to_hex(),
                version_label: constitution.metadata().version.clone(),
                name: constitution.metadata().name.clone(),
                source_name: EXAMPLE.into(),
                source,
                activated_at_us: 1_800_000_000_000_000,
                activated_by: "test".into(),
                reason: "first start".into(),
            },
        )
        .await
        .unwrap()
        .number
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn hash_header(&self) -> &str {
        self.headers
            .get("x-constitutional-hash")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn assert_problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.content_type(), "application/problem+json");
        let body = self.json();
        assert_eq!(body["status"], status.as_u16());
        assert!(body["type"].as_str().unwrap().starts_with("urn:acgs:problem:"));
        assert!(!body["detail"].as_str().unwrap().is_empty());
        body
    }
}

impl TestServer {
    /// Send as the every-role key unless the request carries its own `Authorization`.
    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if !request.headers().contains_key(header::AUTHORIZATION) {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, format!("Bearer {}", self.key).parse().unwrap());
        }
        self.send_raw(request).await
    }

    /// Send exactly this request.
    pub async fn send_raw(&self, request: Request<Body>) -> Reply {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    pub async fn post(&self, uri: &str, body: impl Into<String>) -> Reply {
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.into()))
                .unwrap(),
        )
        .await
    }

    pub fn short_hash(&self) -> String {
        self.state.active.constitution().hash().short()
    }
}

/// The test PostgreSQL server (`ACGS_TEST_POSTGRES_URL`).
pub fn postgres_base() -> String {
    std::env::var("ACGS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Run `sql` on the test PostgreSQL server with psql; the test fails if it fails.
pub fn psql(sql: &str) {
    let status = std::process::Command::new("psql")
        .args([postgres_base().as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .status()
        .expect("psql runs");
    assert!(status.success(), "{sql}");
}

/// A fresh schema on the test PostgreSQL server, named so that `scripts/test.sh` drops it once this test
/// process is gone: its name, and a database URL whose search path is it.
pub fn postgres_schema() -> (String, String) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000);
    let schema = format!(
        "acgs_http_test_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    psql(&format!("CREATE SCHEMA {schema}"));
    let base = postgres_base();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    (schema, url)
}
