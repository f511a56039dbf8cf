//! The constitution versions on both backends: recorded in order, the newest in force, a concurrent activation
//! refused rather than lost, and kept across reopening.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use acgs_store::{NewConstitutionVersion, Store, StoreError, StoreOptions};

fn version(label: &str, reason: &str) -> NewConstitutionVersion {
    NewConstitutionVersion {
        hash: format!("{:0>64}", label.replace('.', "")),
        version_label: label.into(),
        name: "Test constitution".into(),
        source_name: format!("constitution-{label}.toml"),
        source: format!("[metadata]\nversion = \"{label}\"\n# naïve ✓\n"),
        activated_at_us: 1_800_000_000_000_000,
        activated_by: "cli:tester".into(),
        reason: reason.into(),
    }
}

async fn versions_are_kept_in_order_and_the_newest_is_in_force(url: String) {
    let store: Arc<dyn Store> = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    assert_eq!(store.active_constitution().await.unwrap(), None);
    let first = store
        .activate_constitution(0, &version("1.0.0", "first start"))
        .await
        .unwrap();
    assert_eq!(first.number, 1);
    let second = store
        .activate_constitution(1, &version("1.1.0", "amendment 7"))
        .await
        .unwrap();
    assert_eq!(second.number, 2);
    let active = store.active_constitution().await.unwrap().unwrap();
    assert_eq!(active, second);
    assert_eq!(active.version.source, "[metadata]\nversion = \"1.1.0\"\n# naïve ✓\n");
    // An activation based on a version no longer in force is refused, not stored over the newer one.
    match store.activate_constitution(1, &version("1.0.1", "stale")).await {
        Err(StoreError::Conflict(message)) => assert!(message.contains("no longer"), "{message}"),
        other => panic!("a stale activation was accepted: {other:?}"),
    }
    let all = store.constitution_versions().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|v| (v.number, v.version.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "first start"), (2, "amendment 7")]
    );
    drop(store);
    let reopened: Arc<dyn Store> = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    assert_eq!(reopened.active_constitution().await.unwrap().unwrap().number, 2);
}

async fn concurrent_activations_put_exactly_one_in_force(url: String) {
    let store: Arc<dyn Store> = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    store
        .activate_constitution(0, &version("1.0.0", "first start"))
        .await
        .unwrap();
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .activate_constitution(1, &version(&format!("2.0.{i}"), "race"))
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for attempt in attempts {
        results.push(attempt.await.unwrap());
    }
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert_eq!(store.constitution_versions().await.unwrap().len(), 2);
}

mod sqlite {
    fn url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}/acgs.db", dir.path().display())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versions_are_kept_in_order_and_the_newest_is_in_force() {
        let dir = tempfile::tempdir().unwrap();
        super::versions_are_kept_in_order_and_the_newest_is_in_force(url(&dir)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_activations_put_exactly_one_in_force() {
        let dir = tempfile::tempdir().unwrap();
        super::concurrent_activations_put_exactly_one_in_force(url(&dir)).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versions_are_kept_in_order_and_the_newest_is_in_force() {
        super::versions_are_kept_in_order_and_the_newest_is_in_force(super::common::acgs_test_postgres_url()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_activations_put_exactly_one_in_force() {
        super::concurrent_activations_put_exactly_one_in_force(super::common::acgs_test_postgres_url()).await;
    }
}
