//! Helpers shared by the storage test suites: sample records and fresh SQLite files / PostgreSQL schemas.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use acgs_store::{DecisionRecord, DecisionStore, StoreOptions};

pub fn record(n: usize, outcome: &str) -> DecisionRecord {
    DecisionRecord {
        seq: 0,
        decision_id: format!("dec-{n:06}"),
        recorded_at_us: 1_700_000_000_000_000 + n as i64,
        principal_type: "Agent".into(),
        principal_id: format!("agent-{}", n % 3),
        action: if n.is_multiple_of(2) {
            "read_data".into()
        } else {
            "invoke_tool".into()
        },
        resource_type: "Tool".into(),
        resource_id: "search".into(),
        outcome: outcome.into(),
        effective_outcome: outcome.into(),
        shadow: false,
        constitutional_hash: "ab".repeat(32),
        constitution_version: "1.0.0".into(),
        evaluated_in_us: 17,
        body: format!(r#"{{"n":{n},"text":"naïve ✓ 'quoted' \"x\""}}"#),
    }
}

pub async fn sqlite_store() -> (Arc<dyn DecisionStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/nested/acgs.db", dir.path().display());
    let store = acgs_store::open(&url, &StoreOptions::default())
        .await
        .expect("open sqlite");
    (store, dir)
}

pub async fn postgres_store() -> (Arc<dyn DecisionStore>, ()) {
    let url = acgs_test_postgres_url();
    (
        acgs_store::open(&url, &StoreOptions::default())
            .await
            .expect("open postgres"),
        (),
    )
}

/// A URL for a fresh, empty schema on the test PostgreSQL server.
pub fn acgs_test_postgres_url() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let base =
        std::env::var("ACGS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!(
        "acgs_store_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            % 1_000_000
    );
    let status = std::process::Command::new("psql")
        .args([base.as_str(), "-q", "-c", &format!("CREATE SCHEMA {schema}")])
        .status()
        .expect("psql runs");
    assert!(status.success(), "cannot create schema on {base}");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}
