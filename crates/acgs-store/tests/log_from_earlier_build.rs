//! A database written by the build before the typed audit events (commit ea1dbae, 2026-12-07: three security
//! events at the first start, two decisions, a failed login and a refused request, a prune of those seven, two
//! decisions, one with a secret in its content, two more security events, and a decision in shadow mode) opens
//! with today's store: its log verifies against its signed checkpoints, its decisions read back as their events
//! hold them, and it goes on growing under the same tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acgs_audit::VerifierKey;
use acgs_store::{DecisionQuery, DecisionRecord, DecisionStore, SqliteStore, StoreOptions, verify_store};

/// The log's public key, as `acgs audit key` printed it for the fixture's data directory.
const VERIFIER_KEY: &str = "acgs.local/audit/61af7148+f9f221fd+AWGvcUgs9uCOhIO4JnXbIiLVatr5wY/2XzqGQeabTVtt";

async fn open_fixture() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/log-before-typed-events.db");
    std::fs::copy(fixture, dir.path().join("acgs.db")).unwrap();
    let url = format!("sqlite://{}/acgs.db", dir.path().display());
    (SqliteStore::open(&url, &StoreOptions::default()).await.unwrap(), dir)
}

#[tokio::test]
async fn a_log_written_before_the_typed_events_verifies_reads_and_grows() {
    let (store, _dir) = open_fixture().await;
    let key = VerifierKey::parse(VERIFIER_KEY).unwrap();
    let report = verify_store(&store, &key).await.unwrap();
    assert_eq!((report.entries, report.pruned, report.checkpoints), (14, 7, 4));

    let decisions = store.list(&DecisionQuery::default()).await.unwrap();
    let seqs: Vec<i64> = decisions.iter().map(|d| d.seq).collect();
    assert_eq!(
        seqs,
        [14, 11, 10, 9],
        "the decisions left after the prune, newest first"
    );
    let shadow = &decisions[0];
    assert!(shadow.shadow);
    assert_eq!(
        (shadow.outcome.as_str(), shadow.effective_outcome.as_str()),
        ("escalate", "allow")
    );
    let secret = store.get(&decisions[1].decision_id).await.unwrap().unwrap();
    let body: serde_json::Value = serde_json::from_str(&secret.body).unwrap();
    assert_eq!(body["detections"][0]["kind"], "cloud_access_key");
    assert!(
        !secret.body.contains("AKIA"),
        "the content is stored as its digest only"
    );
    let entries = store.audit_entries(1, 100).await.unwrap();
    assert_eq!(entries[11].kind, "security");
    assert!(entries[11].event.as_deref().unwrap().contains("login.failed"));

    // Today's build appends after the old entries, under the same tree.
    let mut next = [DecisionRecord {
        decision_id: "after-the-upgrade".into(),
        body: "{}".into(),
        outcome: "allow".into(),
        effective_outcome: "allow".into(),
        ..shadow.clone()
    }];
    store.append(&mut next).await.unwrap();
    assert_eq!(next[0].seq, 15);
    let report = verify_store(&store, &key).await.unwrap();
    assert_eq!(report.entries, 15);
    assert_eq!(store.get("after-the-upgrade").await.unwrap().unwrap().seq, 15);
}
