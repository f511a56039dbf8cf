//! The audit log's integrity on SQLite and PostgreSQL: the stored tree equals the RFC 6962 tree of its events,
//! proofs from stored nodes verify, checkpoints are signed and kept, pruning keeps proofs working, and every
//! kind of tampering with the stored log makes verification fail naming the sequence number.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use acgs_audit::{LogKey, VerifierKey, VerifyFailure, leaf_hash};
use acgs_store::{
    Checkpointer, DecisionQuery, DecisionStore, IndexMismatch, IndexProblem, IntegrityError, StoreError, StoreOptions,
};
use common::{acgs_test_postgres_url, record};

/// A store plus a raw connection to tamper with it.
struct Db {
    store: Arc<dyn DecisionStore>,
    url: String,
    raw: Raw,
    _dir: Option<tempfile::TempDir>,
}

enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/acgs.db", dir.path().display());
        let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
        let raw = Raw::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
        Self {
            store,
            url,
            raw,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Self {
        let url = acgs_test_postgres_url();
        let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
        let raw = Raw::Postgres(sqlx::PgPool::connect(&url).await.unwrap());
        Self {
            store,
            url,
            raw,
            _dir: None,
        }
    }

    /// Run SQL directly, as someone with database access would.
    async fn tamper(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
            Raw::Postgres(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        }
    }

    /// Hex literal for a blob, in the backend's syntax.
    fn blob(&self, bytes: &[u8]) -> String {
        match self.raw {
            Raw::Sqlite(_) => format!("X'{}'", hex::encode(bytes)),
            Raw::Postgres(_) => format!("'\\x{}'::bytea", hex::encode(bytes)),
        }
    }

    /// Condition selecting tree node (level, idx) in `audit_nodes`: SQLite keys nodes by the order an
    /// append-only tree completes them (`((idx + 1) << level) * 64 + level`), PostgreSQL by (level, idx).
    fn tree_node(&self, level: u64, idx: u64) -> String {
        match self.raw {
            Raw::Sqlite(_) => format!("position = {}", ((idx + 1) << level) * 64 + level),
            Raw::Postgres(_) => format!("level = {level} AND idx = {idx}"),
        }
    }
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// 20 decisions in batches of 5, 7 and 8, with a checkpoint after each batch (sizes 5, 12, 20). All are `allow`
/// but decision `dec-000010` (seq 11), which is `escalate`.
async fn seeded(db: &Db) -> (Checkpointer, VerifierKey) {
    let key = LogKey::generate(Some("acgs.test/audit")).unwrap();
    let verifier = VerifierKey::parse(&key.verifier_key()).unwrap();
    let checkpointer = Checkpointer::new(db.store.clone(), key);
    let mut n = 0;
    for batch in [5, 7, 8] {
        let mut records: Vec<_> = (n..n + batch)
            .map(|i| record(i, if i == 10 { "escalate" } else { "allow" }))
            .collect();
        n += batch;
        db.store.append(&mut records).await.unwrap();
        checkpointer.checkpoint_now().await.unwrap();
    }
    (checkpointer, verifier)
}

async fn failure(db: &Db, key: &VerifierKey) -> VerifyFailure {
    match acgs_store::verify_store(&*db.store, key).await {
        Err(IntegrityError::Verify(f)) => f,
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

/// The first index problem verification reports.
async fn index_failure(db: &Db, key: &VerifierKey) -> IndexMismatch {
    match acgs_store::verify_store(&*db.store, key).await {
        Err(IntegrityError::Index(m)) => m,
        other => panic!("expected a decision-index failure, got {other:?}"),
    }
}

/// The index problem a read fails with.
fn read_failure<T: std::fmt::Debug>(read: Result<T, StoreError>) -> IndexMismatch {
    match read {
        Err(StoreError::IndexMismatch(m)) => m,
        other => panic!("expected the read to refuse a tampered index, got {other:?}"),
    }
}

async fn stored_tree_is_the_rfc6962_tree_of_its_events(db: Db) {
    let (checkpointer, key) = seeded(&db).await;
    let entries = db.store.audit_entries(1, 1000).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    let leaves: Vec<_> = entries
        .iter()
        .map(|e| {
            let event = e.event.as_deref().unwrap();
            assert_eq!(leaf_hash(event.as_bytes()), e.leaf_hash);
            let value: serde_json::Value = serde_json::from_str(event).unwrap();
            assert_eq!(value["seq"], e.seq);
            assert_eq!(value["kind"], "decision");
            assert_eq!(value["constitutional_hash"], "ab".repeat(32));
            e.leaf_hash
        })
        .collect();
    for size in 0..=20u64 {
        let root = acgs_audit::root(&leaves[..size as usize]);
        assert_eq!(
            acgs_store::tree_root(&*db.store, size).await.unwrap(),
            root,
            "size {size}"
        );
        for seq in 1..=size {
            let proof = acgs_store::inclusion_proof(&*db.store, seq, size).await.unwrap();
            acgs_audit::verify_inclusion(&leaves[seq as usize - 1], seq - 1, size, &proof, &root).unwrap();
        }
        for from in 0..=size {
            let proof = acgs_store::consistency_proof(&*db.store, from, size).await.unwrap();
            let old = acgs_audit::root(&leaves[..from as usize]);
            acgs_audit::verify_consistency(from, size, &old, &root, &proof).unwrap();
        }
    }
    // Proofs about a tree larger than the log are refused, not invented.
    assert!(acgs_store::tree_root(&*db.store, 21).await.is_err());
    assert!(acgs_store::inclusion_proof(&*db.store, 0, 5).await.is_err());
    // Every checkpoint is kept and signed by the log key.
    let checkpoints = db.store.checkpoints(-1, 100).await.unwrap();
    assert_eq!(
        checkpoints.iter().map(|c| c.tree_size).collect::<Vec<_>>(),
        vec![5, 12, 20]
    );
    for c in &checkpoints {
        let signed = key.verify_checkpoint(&c.note).unwrap();
        assert_eq!((signed.size, signed.root), (c.tree_size as u64, c.root));
    }
    // No new entries: the latest checkpoint is reused.
    assert_eq!(checkpointer.checkpoint_now().await.unwrap().tree_size, 20);
    let report = acgs_store::verify_store(&*db.store, &key).await.unwrap();
    assert_eq!((report.entries, report.checkpoints, report.pruned), (20, 3, 0));
}

/// Two writers on one database (two replicas, or the server and `acgs audit prune`), each remembering the
/// tree's right edge from its own last commit, take turns appending, then append at once: every append must
/// notice the other's and extend the one tree, not its own stale copy.
async fn writers_taking_turns_extend_one_tree(db: Db) {
    let other: Arc<dyn DecisionStore> = acgs_store::open(&db.url, &StoreOptions::default()).await.unwrap();
    let key = LogKey::generate(Some("acgs.test/audit")).unwrap();
    let verifier = VerifierKey::parse(&key.verifier_key()).unwrap();
    let checkpointer = Checkpointer::new(db.store.clone(), key);
    let mut n = 0;
    for (writer, batch) in [
        (&db.store, 3),
        (&other, 2),
        (&db.store, 1),
        (&db.store, 4),
        (&other, 5),
        (&db.store, 2),
    ] {
        let mut records: Vec<_> = (n..n + batch).map(|i| record(i, "deny")).collect();
        n += batch;
        writer.append(&mut records).await.unwrap();
        // SQLite's writer keeps a batch's tree nodes in memory for a few milliseconds; a read through it writes
        // them, so that the other store's checkpointer finds them.
        assert_eq!(writer.count().await.unwrap(), n as i64);
        checkpointer.checkpoint_now().await.unwrap();
    }
    // Then both at once, from several tasks each: the sequencer serialises them.
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let writer = if t % 2 == 0 { db.store.clone() } else { other.clone() };
            let first = n + t * 3;
            tokio::spawn(async move {
                let mut records: Vec<_> = (first..first + 3).map(|i| record(i, "allow")).collect();
                writer.append(&mut records).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    n += 48;
    for store in [&db.store, &other] {
        assert_eq!(store.count().await.unwrap(), n as i64);
    }
    checkpointer.checkpoint_now().await.unwrap();
    let entries = db.store.audit_entries(1, 1000).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=n as i64).collect::<Vec<_>>()
    );
    let leaves: Vec<_> = entries.iter().map(|e| e.leaf_hash).collect();
    for size in 1..=n as u64 {
        let root = acgs_audit::root(&leaves[..size as usize]);
        for store in [&db.store, &other] {
            assert_eq!(
                acgs_store::tree_root(&**store, size).await.unwrap(),
                root,
                "size {size}"
            );
        }
    }
    let report = acgs_store::verify_store(&*other, &verifier).await.unwrap();
    assert_eq!((report.entries, report.checkpoints), (n as u64, 7));
}

async fn pruning_keeps_checkpoints_and_proofs_verifiable(db: Db) {
    let (checkpointer, key) = seeded(&db).await;
    // record(n) is recorded at 1_700_000_000_000_000 + n: prune the first 8 (n = 0..8).
    let outcome = db
        .store
        .prune(1_700_000_000_000_008, 1_800_000_000_000_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (outcome.through_seq, outcome.events_pruned, outcome.record_seq),
        (8, 8, 21)
    );
    assert!(
        db.store
            .prune(1_700_000_000_000_008, 1_800_000_000_000_001)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store.get("dec-000003").await.unwrap().is_none(),
        "pruned decisions leave the index"
    );
    assert_eq!(db.store.get("dec-000009").await.unwrap().unwrap().seq, 10);
    let entries = db.store.audit_entries(1, 100).await.unwrap();
    assert!(entries[..8].iter().all(|e| e.event.is_none()));
    let last = entries.last().unwrap();
    assert_eq!(last.kind, "audit.pruned");
    // Old checkpoints still verify, a new one covers the prune record, proofs still work.
    let latest = checkpointer.checkpoint_now().await.unwrap();
    assert_eq!(latest.tree_size, 21);
    let report = acgs_store::verify_store(&*db.store, &key).await.unwrap();
    assert_eq!((report.entries, report.checkpoints, report.pruned), (21, 4, 8));
    let proof = acgs_store::inclusion_proof(&*db.store, 10, 21).await.unwrap();
    acgs_audit::verify_inclusion(&entries[9].leaf_hash, 9, 21, &proof, &latest.root).unwrap();
    // Removing a body the prune record does not cover is caught.
    db.tamper("UPDATE audit_log SET event = NULL WHERE seq = 9").await;
    assert_eq!(failure(&db, &key).await, VerifyFailure::Removed { seq: 9 });
}

async fn modified_event_is_named(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper(r#"UPDATE audit_log SET event = replace(event, '"allow"', '"deny"') WHERE seq = 7"#)
        .await;
    assert_eq!(failure(&db, &key).await, VerifyFailure::Modified { seq: 7 });
}

async fn deleted_entry_is_named(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper("DELETE FROM audit_log WHERE seq = 6").await;
    assert_eq!(
        failure(&db, &key).await,
        VerifyFailure::Missing { expected: 6, found: 7 }
    );
}

async fn reordered_entries_are_named(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper("UPDATE audit_log SET seq = -1 WHERE seq = 3").await;
    db.tamper("UPDATE audit_log SET seq = 3 WHERE seq = 4").await;
    db.tamper("UPDATE audit_log SET seq = 4 WHERE seq = -1").await;
    assert_eq!(failure(&db, &key).await, VerifyFailure::Moved { seq: 3, claimed: 4 });
}

async fn forged_checkpoint_signature_is_named(db: Db) {
    let (_, key) = seeded(&db).await;
    let stored = db.store.checkpoints(5, 1).await.unwrap().remove(0);
    // A note for the same tree head, signed by someone else under the log's name.
    let forger = LogKey::generate(Some("acgs.test/audit")).unwrap();
    let forged = forger.sign_checkpoint(12, stored.root);
    db.tamper(&format!(
        "UPDATE audit_checkpoints SET note = {} WHERE tree_size = 12",
        sql_text(&forged)
    ))
    .await;
    assert!(matches!(
        failure(&db, &key).await,
        VerifyFailure::BadSignature { size: 12, .. }
    ));
}

async fn rewritten_event_with_its_leaf_hash_fails_its_checkpoint(db: Db) {
    let (_, key) = seeded(&db).await;
    let entry = db.store.audit_entries(9, 1).await.unwrap().remove(0);
    let forged = entry.event.unwrap().replace("\"allow\"", "\"deny\"");
    db.tamper(&format!(
        "UPDATE audit_log SET event = {}, leaf_hash = {} WHERE seq = 9",
        sql_text(&forged),
        db.blob(&leaf_hash(forged.as_bytes()))
    ))
    .await;
    assert_eq!(
        failure(&db, &key).await,
        VerifyFailure::RootMismatch { from: 6, size: 12 }
    );
}

async fn truncated_log_is_detected(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper("DELETE FROM audit_log WHERE seq > 17").await;
    assert_eq!(
        failure(&db, &key).await,
        VerifyFailure::Truncated {
            first_missing: 18,
            size: 20
        }
    );
}

async fn corrupted_tree_node_is_detected(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper(&format!(
        "UPDATE audit_nodes SET hash = {} WHERE {}",
        db.blob(&[7; 32]),
        db.tree_node(2, 2)
    ))
    .await;
    assert!(matches!(
        failure(&db, &key).await,
        VerifyFailure::Malformed { seq: 6, .. }
    ));
}

async fn checkpoints_are_signed_in_the_background_as_the_log_grows(db: Db) {
    let key = LogKey::generate(Some("acgs.test/audit")).unwrap();
    let verifier = VerifierKey::parse(&key.verifier_key()).unwrap();
    let checkpointer = Checkpointer::new(db.store.clone(), key);
    let task = tokio::spawn(checkpointer.run(std::time::Duration::from_millis(100), 1000));
    let mut records: Vec<_> = (0..7).map(|i| record(i, "deny")).collect();
    db.store.append(&mut records).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let latest = loop {
        if let Some(c) = db.store.latest_checkpoint().await.unwrap()
            && c.tree_size == 7
        {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint was signed for the new entries"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    task.abort();
    assert_eq!(verifier.verify_checkpoint(&latest.note).unwrap().size, 7);
    assert_eq!(
        acgs_store::verify_store(&*db.store, &verifier)
            .await
            .unwrap()
            .checkpoints,
        1
    );
}

/// The defect this guards against: the index said `allow` while the signed event said `escalate`, verification
/// passed, and every read showed `allow`.
async fn forged_index_outcome_is_named_and_never_shown(db: Db) {
    let (_, key) = seeded(&db).await;
    assert_eq!(db.store.get("dec-000010").await.unwrap().unwrap().outcome, "escalate");
    db.tamper("UPDATE decisions SET outcome = 'allow', effective_outcome = 'allow' WHERE seq = 11")
        .await;
    let forged = IndexMismatch {
        seq: 11,
        decision_id: "dec-000010".into(),
        problem: IndexProblem::Column {
            column: "outcome",
            indexed: "allow".into(),
            logged: "escalate".into(),
        },
    };
    assert_eq!(index_failure(&db, &key).await, forged);
    assert_eq!(
        forged.to_string(),
        "decision index does not match its audit event at seq 11 (decision `dec-000010`): column `outcome` holds \
         `allow`, the event `escalate`"
    );
    // Reads fail closed rather than show the forged outcome: by id, in a list, and filtered by the forged value.
    assert_eq!(read_failure(db.store.get("dec-000010").await), forged);
    assert_eq!(read_failure(db.store.list(&DecisionQuery::default()).await), forged);
    let allowed = DecisionQuery {
        outcome: Some("allow".into()),
        ..Default::default()
    };
    assert_eq!(read_failure(db.store.list(&allowed).await), forged);
    // Rows that agree with their events are still read.
    let older = DecisionQuery {
        before_seq: Some(11),
        ..Default::default()
    };
    assert_eq!(db.store.list(&older).await.unwrap().len(), 10);
    assert_eq!(db.store.get("dec-000009").await.unwrap().unwrap().seq, 10);
}

async fn deleted_index_row_is_named(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper("DELETE FROM decisions WHERE seq = 11").await;
    assert_eq!(
        index_failure(&db, &key).await,
        IndexMismatch {
            seq: 11,
            decision_id: "dec-000010".into(),
            problem: IndexProblem::NoIndexRow,
        }
    );
}

async fn index_row_without_an_event_is_named(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper(
        "INSERT INTO decisions (seq, decision_id, recorded_at_us, principal_type, principal_id, action, \
         resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, constitution_version, \
         evaluated_in_us) SELECT 25, 'dec-forged', recorded_at_us, principal_type, principal_id, action, \
         resource_type, resource_id, 'allow', 'allow', shadow, constitutional_hash, constitution_version, \
         evaluated_in_us FROM decisions WHERE seq = 11",
    )
    .await;
    let invented = IndexMismatch {
        seq: 25,
        decision_id: "dec-forged".into(),
        problem: IndexProblem::NoEvent,
    };
    assert_eq!(index_failure(&db, &key).await, invented);
    assert_eq!(read_failure(db.store.get("dec-forged").await), invented);
    assert_eq!(read_failure(db.store.list(&DecisionQuery::default()).await), invented);
}

/// An event edited in place (its leaf hash left alone) is refused by reads too, not only by verification.
async fn edited_event_is_refused_on_read(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper(r#"UPDATE audit_log SET event = replace(event, '"escalate"', '"allow"') WHERE seq = 11"#)
        .await;
    assert_eq!(failure(&db, &key).await, VerifyFailure::Modified { seq: 11 });
    assert_eq!(
        read_failure(db.store.get("dec-000010").await).problem,
        IndexProblem::EventModified
    );
}

/// The root stored next to a checkpoint's note (which readers are shown) no longer matches the root the note
/// signs: the failure names the checkpoint, not an entry.
async fn altered_checkpoint_root_names_the_checkpoint(db: Db) {
    let (_, key) = seeded(&db).await;
    db.tamper(&format!(
        "UPDATE audit_checkpoints SET root = {} WHERE tree_size = 12",
        db.blob(&[7; 32])
    ))
    .await;
    let failure = failure(&db, &key).await;
    assert_eq!(failure, VerifyFailure::StoredRootMismatch { size: 12 });
    assert_eq!(
        failure.to_string(),
        "checkpoint at size 12: its stored root does not match its signed root"
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Db::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Db::postgres().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    stored_tree_is_the_rfc6962_tree_of_its_events,
    writers_taking_turns_extend_one_tree,
    pruning_keeps_checkpoints_and_proofs_verifiable,
    modified_event_is_named,
    deleted_entry_is_named,
    reordered_entries_are_named,
    forged_checkpoint_signature_is_named,
    rewritten_event_with_its_leaf_hash_fails_its_checkpoint,
    truncated_log_is_detected,
    corrupted_tree_node_is_detected,
    checkpoints_are_signed_in_the_background_as_the_log_grows,
    forged_index_outcome_is_named_and_never_shown,
    deleted_index_row_is_named,
    index_row_without_an_event_is_named,
    edited_event_is_refused_on_read,
    altered_checkpoint_root_names_the_checkpoint,
);
