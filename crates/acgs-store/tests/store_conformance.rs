//! One conformance suite for the decision store, run against SQLite and PostgreSQL.
//!
//! PostgreSQL: `ACGS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); every test
//! gets its own schema so tests run in parallel and leave nothing shared behind.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use acgs_store::{DecisionLog, DecisionQuery, DecisionRecord, DecisionStore, LogConfig, StoreOptions};
use common::{acgs_test_postgres_url, postgres_store, record, sqlite_store};

async fn append_assigns_gap_free_sequence(store: Arc<dyn DecisionStore>) {
    assert_eq!(store.last_seq().await.unwrap(), 0);
    let mut first: Vec<_> = (0..3).map(|n| record(n, "allow")).collect();
    store.append(&mut first).await.unwrap();
    assert_eq!(first.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    let mut second: Vec<_> = (3..5).map(|n| record(n, "deny")).collect();
    store.append(&mut second).await.unwrap();
    assert_eq!(second.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(store.count().await.unwrap(), 5);
    assert_eq!(store.last_seq().await.unwrap(), 5);
    // Stored exactly as given, unicode and quotes included.
    let got = store.get("dec-000001").await.unwrap().expect("present");
    assert_eq!(got, first[1]);
    assert!(store.get("missing").await.unwrap().is_none());
}

async fn failed_batch_stores_nothing(store: Arc<dyn DecisionStore>) {
    let mut ok = vec![record(1, "allow")];
    store.append(&mut ok).await.unwrap();
    // A batch with a duplicate decision id fails as a whole: no half-written batch.
    let mut bad = vec![record(2, "allow"), record(1, "deny")];
    assert!(store.append(&mut bad).await.is_err());
    assert_eq!(store.count().await.unwrap(), 1);
    // An invalid outcome is refused by the schema.
    let mut invalid = vec![record(3, "maybe")];
    assert!(store.append(&mut invalid).await.is_err());
    assert_eq!(store.count().await.unwrap(), 1);
    // The sequence continues without a gap after failures.
    let mut next = vec![record(4, "deny")];
    store.append(&mut next).await.unwrap();
    assert_eq!(next[0].seq, 2);
}

async fn list_filters_and_pages(store: Arc<dyn DecisionStore>) {
    let mut records: Vec<_> = (0..30)
        .map(|n| record(n, if n.is_multiple_of(3) { "deny" } else { "allow" }))
        .collect();
    store.append(&mut records).await.unwrap();
    let all = store
        .list(&DecisionQuery {
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let denies = store
        .list(&DecisionQuery {
            outcome: Some("deny".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denies.len(), 10);
    assert!(denies.iter().all(|r| r.outcome == "deny"));
    let by_principal = store
        .list(&DecisionQuery {
            principal_type: Some("Agent".into()),
            principal_id: Some("agent-1".into()),
            action: Some("invoke_tool".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_principal.len(), 5);
    let page = store
        .list(&DecisionQuery {
            limit: Some(7),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 7);
    let next = store
        .list(&DecisionQuery {
            before_seq: Some(page[6].seq),
            limit: Some(7),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(next[0].seq, page[6].seq - 1);
    let recent = store
        .list(&DecisionQuery {
            since_us: Some(1_700_000_000_000_025),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(recent.len(), 5);
    // The index as stored, ascending after a cursor, without bodies: what verification walks.
    let rows = store.decision_index(10, 5).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![11, 12, 13, 14, 15]);
    assert_eq!(
        rows[0],
        DecisionRecord {
            body: String::new(),
            ..records[10].clone()
        }
    );
}

async fn group_commit_log_commits_concurrent_appends(store: Arc<dyn DecisionStore>) {
    let log = DecisionLog::start(
        store.clone(),
        LogConfig {
            max_batch: 64,
            queue_capacity: 4096,
        },
    );
    let mut tasks = Vec::new();
    for n in 0..500 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(record(n, "allow")).await }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=500).collect::<Vec<i64>>());
    assert_eq!(store.count().await.unwrap(), 500);
    log.shutdown().await;
    assert!(matches!(
        log.append(record(999, "allow")).await,
        Err(acgs_store::LogError::Closed)
    ));
}

async fn log_reports_write_failures_to_every_caller(store: Arc<dyn DecisionStore>) {
    let log = DecisionLog::start(store.clone(), LogConfig::default());
    log.append(record(1, "allow")).await.unwrap();
    // A duplicate id makes the batch fail; its caller learns it and nothing is stored.
    assert!(matches!(
        log.append(record(1, "allow")).await,
        Err(acgs_store::LogError::WriteFailed(_))
    ));
    assert_eq!(store.count().await.unwrap(), 1);
    log.shutdown().await;
}

async fn a_write_probe_stores_nothing_and_clears_a_failed_commit(store: Arc<dyn DecisionStore>) {
    let log = DecisionLog::start(store.clone(), LogConfig::default());
    log.append(record(1, "allow")).await.unwrap();
    assert_eq!(log.writable().await, Ok(()));
    store.probe_write().await.unwrap();
    // A failed commit makes the log unwritable until a probe (or a commit) succeeds; this store is healthy, so
    // the probe run by `writable` succeeds at once.
    assert!(log.append(record(1, "allow")).await.is_err());
    assert_eq!(log.writable().await, Ok(()));
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.last_seq().await.unwrap(), 1);
    assert_eq!(log.append(record(2, "deny")).await.unwrap(), 2);
    log.shutdown().await;
}

async fn large_batches_are_contiguous(store: Arc<dyn DecisionStore>) {
    let mut first = vec![record(0, "allow")];
    store.append(&mut first).await.unwrap();
    // More rows than one statement may carry on either backend.
    let mut big: Vec<_> = (1..=4500).map(|n| record(n, "deny")).collect();
    store.append(&mut big).await.unwrap();
    assert_eq!(big.first().unwrap().seq, 2);
    assert_eq!(big.last().unwrap().seq, 4501);
    assert_eq!(store.count().await.unwrap(), 4501);
    assert_eq!(store.get("dec-004500").await.unwrap().unwrap().seq, 4501);
}

async fn reopening_keeps_the_log(url: String) {
    {
        let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
        let mut r = vec![record(1, "allow"), record(2, "deny")];
        store.append(&mut r).await.unwrap();
    }
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 2);
    let mut r = vec![record(3, "allow")];
    store.append(&mut r).await.unwrap();
    assert_eq!(r[0].seq, 3);
}

/// Two writers on one database (the server and, say, `acgs audit prune` from another process): each keeps its own
/// idea of where the log ends, so each must notice the other's appends and continue after them.
async fn two_writers_interleave_without_gaps(url: String) {
    let a = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let b = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let mut seqs = Vec::new();
    for (round, (store, size)) in [(&a, 3), (&b, 2), (&a, 4), (&a, 1), (&b, 2), (&a, 2)]
        .into_iter()
        .enumerate()
    {
        let mut batch: Vec<_> = (0..size).map(|i| record(round * 10 + i, "allow")).collect();
        store.append(&mut batch).await.unwrap();
        seqs.extend(batch.iter().map(|r| r.seq));
    }
    assert_eq!(seqs, (1..=14).collect::<Vec<i64>>());
    // The tree both wrote is one RFC 6962 tree: a checkpoint over it verifies, leaf by leaf.
    let key = acgs_audit::LogKey::generate(Some("acgs.test/audit")).unwrap();
    let verifier = acgs_audit::VerifierKey::parse(&key.verifier_key()).unwrap();
    acgs_store::Checkpointer::new(a.clone(), key)
        .checkpoint_now()
        .await
        .unwrap();
    let report = acgs_store::verify_store(&*b, &verifier).await.unwrap();
    assert_eq!(report.entries, 14);
}

/// A prune removes the longest prefix of the log recorded before its cut-off, in log order: an entry recorded
/// earlier than the cut-off but after one that is not (decisions are timed when decided, logged when committed,
/// so times can be slightly out of order) stays, as does everything after it.
async fn prune_removes_the_prefix_recorded_before_the_cut_off(store: Arc<dyn DecisionStore>) {
    let base = 1_700_000_000_000_000;
    let mut records: Vec<_> = [1, 2, 5, 3, 6]
        .into_iter()
        .enumerate()
        .map(|(n, at)| DecisionRecord {
            recorded_at_us: base + at,
            ..record(n, "allow")
        })
        .collect();
    store.append(&mut records).await.unwrap();

    let outcome = store
        .prune(base + 4, base + 100)
        .await
        .unwrap()
        .expect("something to prune");
    assert_eq!(
        (outcome.through_seq, outcome.events_pruned, outcome.record_seq),
        (2, 2, 6)
    );
    assert!(store.get("dec-000001").await.unwrap().is_none());
    assert!(
        store.get("dec-000003").await.unwrap().is_some(),
        "an entry after the first one at or past the cut-off is kept, whatever its time"
    );
    assert!(
        store.prune(base + 4, base + 101).await.unwrap().is_none(),
        "nothing more before the cut-off"
    );
    let all = store.prune(base + 7, base + 102).await.unwrap().expect("the rest");
    assert_eq!(
        (all.through_seq, all.events_pruned),
        (5, 3),
        "the other decisions; the first prune's record, recorded after the cut-off, stays"
    );
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _guard) = sqlite_store().await;
                    assert_eq!(store.backend(), "sqlite");
                    super::$name(store).await;
                }
            )*
            #[tokio::test]
            async fn reopening_keeps_the_log() {
                let dir = tempfile::tempdir().unwrap();
                super::reopening_keeps_the_log(format!("sqlite://{}/acgs.db", dir.path().display())).await;
            }
            #[tokio::test]
            async fn two_writers_interleave_without_gaps() {
                let dir = tempfile::tempdir().unwrap();
                super::two_writers_interleave_without_gaps(format!("sqlite://{}/acgs.db", dir.path().display())).await;
            }
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _guard) = postgres_store().await;
                    assert_eq!(store.backend(), "postgres");
                    super::$name(store).await;
                }
            )*
            #[tokio::test]
            async fn reopening_keeps_the_log() {
                super::reopening_keeps_the_log(acgs_test_postgres_url()).await;
            }
            #[tokio::test]
            async fn two_writers_interleave_without_gaps() {
                super::two_writers_interleave_without_gaps(acgs_test_postgres_url()).await;
            }
        }
    };
}

conformance!(
    append_assigns_gap_free_sequence,
    failed_batch_stores_nothing,
    list_filters_and_pages,
    group_commit_log_commits_concurrent_appends,
    log_reports_write_failures_to_every_caller,
    a_write_probe_stores_nothing_and_clears_a_failed_commit,
    large_batches_are_contiguous,
    prune_removes_the_prefix_recorded_before_the_cut_off,
);

#[tokio::test]
async fn unsupported_url_is_a_clear_error() {
    let err = acgs_store::open("mysql://x", &StoreOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unsupported database url"), "{err}");
}
