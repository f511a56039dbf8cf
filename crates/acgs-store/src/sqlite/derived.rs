//! The SQLite backend's derived data: the decision-index rows and the Merkle tree nodes above the leaves. Both
//! follow from the `audit_log` rows alone, so the group-commit writer keeps them in memory instead of writing
//! them inside every commit. Once they have waited [`DERIVED_WRITE_INTERVAL`], the writer writes them in a
//! transaction of their own the next time it has no decisions queued; if it never has a free moment, the first
//! decision commit after [`DERIVED_WRITE_DEADLINE`] carries them. Whatever is missing after a crash, or was
//! appended by another process, is derived again from the log itself.
//!
//! Why their own transaction, when the writer is idle: written inside a decision commit, they made that commit
//! slower, and every decision queued behind it waited; written apart, they delay no decision
//! (`acgs_sqlite_derived_write_seconds` shows what they cost; the measurements are in `docs/performance-history.md`).
//!
//! Why keep them in memory at all: the index and tree-node pages are most of the pages a small commit touches,
//! each written to the write-ahead log in full and flushed. Written once per interval, those pages are shared by
//! every decision of the interval, so a commit writes fewer pages and the server spends less CPU per decision.
//!
//! `audit_derived.through_seq` says how far the derived data reaches: every event up to it has its
//! decision-index row and the tree nodes it completed. Readers in this process write what is pending before
//! they read ([`crate::SqliteStore`]); opening the store derives the rest from the log.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use acgs_audit::{AuditEvent, Frontier, Hash, NodeId};
use rusqlite::{Connection, params};

use super::nodes::{node_position, stored_nodes};
use crate::event::{IndexedDecision, NewEvent, PreparedBatch};
use crate::tree::{frontier_from, hash_from};
use crate::{DecisionRecord, StoreError};

/// How long decision-index rows and tree nodes wait in memory before the writer, when it has no decisions
/// queued, writes them in a transaction of their own.
pub(crate) const DERIVED_WRITE_INTERVAL: Duration = Duration::from_millis(5);

/// How long they may wait before a decision commit writes them with its own events (a writer that is never
/// idle still writes them).
pub(crate) const DERIVED_WRITE_DEADLINE: Duration = Duration::from_millis(50);

/// How many events may wait (bounds the memory held and the work one commit takes on).
const MAX_PENDING_EVENTS: i64 = 4096;

/// Events read per query when deriving from the log.
const DERIVE_CHUNK: i64 = 1024;

const INSERT_NODE: &str = "INSERT INTO audit_nodes (position, hash) VALUES (?1, ?2)";
const INSERT_DECISION: &str = "INSERT INTO decisions (seq, decision_id, recorded_at_us, principal_type, \
     principal_id, action, resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, \
     constitution_version, evaluated_in_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// Derived data of committed events not yet written: it covers events `first_seq..=through_seq`.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    first_seq: i64,
    through_seq: i64,
    nodes: Vec<(NodeId, Hash)>,
    /// Decision-index rows (records without their bodies).
    decisions: Vec<DecisionRecord>,
    /// The pending rows' decision ids, to refuse a duplicate before it is committed.
    decision_ids: HashSet<String>,
    /// When the oldest pending event was committed.
    since: Option<Instant>,
}

impl Pending {
    /// Inside the write transaction on `conn`, before committing `events`: refuse them if the decision index
    /// could not take their rows later (a decision id already used; outcomes are typed), as its constraints
    /// would have refused the commit had the rows been written with it.
    pub(crate) fn check(&self, conn: &Connection, events: &[NewEvent]) -> Result<(), StoreError> {
        let mut exists = conn.prepare_cached("SELECT 1 FROM decisions WHERE decision_id = ?1")?;
        let mut batch_ids = HashSet::with_capacity(events.len());
        let decisions = events.iter().filter_map(|e| match &e.event {
            AuditEvent::Decision { decision, .. } => Some(decision),
            _ => None,
        });
        for r in decisions {
            if !batch_ids.insert(r.decision_id.as_str())
                || self.decision_ids.contains(&r.decision_id)
                || exists.exists(params![r.decision_id])?
            {
                return Err(StoreError::Conflict(format!(
                    "decision id `{}` is already in the log",
                    r.decision_id
                )));
            }
        }
        Ok(())
    }

    /// Add the derived data of `batch`, just committed after everything pending.
    pub(crate) fn add(&mut self, batch: &PreparedBatch<'_>) {
        let (Some(first), Some(last)) = (batch.entries.first(), batch.entries.last()) else {
            return;
        };
        if self.since.is_none() {
            self.first_seq = first.seq;
            self.since = Some(Instant::now());
        } else if first.seq != self.through_seq + 1 {
            // Another writer appended in between: what is held no longer covers a range, so the next write
            // derives from the log instead (and comes due at once).
            self.first_seq = i64::MIN;
        }
        self.through_seq = last.seq;
        self.nodes.extend_from_slice(&batch.nodes);
        self.decisions
            .extend(batch.decisions.iter().map(IndexedDecision::record));
        self.decision_ids
            .extend(batch.decisions.iter().map(|d| d.decision.decision_id.clone()));
    }

    /// Whether nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.since.is_none()
    }

    /// Whether an idle writer should write what is pending.
    pub(crate) fn is_due(&self) -> bool {
        self.has_waited(DERIVED_WRITE_INTERVAL)
    }

    /// Whether the next decision commit must write what is pending.
    pub(crate) fn is_overdue(&self) -> bool {
        self.has_waited(DERIVED_WRITE_DEADLINE)
    }

    fn has_waited(&self, wait: Duration) -> bool {
        self.since.is_some_and(|since| {
            since.elapsed() >= wait || self.through_seq.saturating_sub(self.first_seq) >= MAX_PENDING_EVENTS
        })
    }
}

/// How far the derived data reaches.
fn derived_through(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT through_seq FROM audit_derived")?
        .query_row([], |row| row.get(0))?)
}

fn set_derived_through(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE audit_derived SET through_seq = ?1")?
        .execute(params![seq])?;
    Ok(())
}

/// Inside a write transaction on `conn`, whose log ends at `log_size`: bring the derived data up to that end,
/// from `pending` when it covers exactly what is missing, otherwise from the log. Once the transaction commits,
/// `pending` has been written (or was not needed) and the caller forgets it.
pub(crate) fn catch_up(conn: &Connection, pending: &Pending, log_size: i64) -> Result<(), StoreError> {
    let through = derived_through(conn)?;
    if through >= log_size {
        return Ok(());
    }
    if !pending.is_empty() && pending.first_seq == through + 1 && pending.through_seq == log_size {
        write(conn, &pending.nodes, &pending.decisions, log_size)
    } else {
        derive_from_log(conn, through, log_size)
    }
}

/// Write tree nodes and decision-index rows, and record that the derived data now reaches `through_seq`.
fn write(
    conn: &Connection,
    nodes: &[(NodeId, Hash)],
    decisions: &[DecisionRecord],
    through_seq: i64,
) -> Result<(), StoreError> {
    let mut insert_node = conn.prepare_cached(INSERT_NODE)?;
    for (id, hash) in nodes {
        insert_node.execute(params![node_position(*id)?, hash.as_slice()])?;
    }
    let mut insert_decision = conn.prepare_cached(INSERT_DECISION)?;
    for r in decisions {
        insert_decision.execute(params![
            r.seq,
            r.decision_id,
            r.recorded_at_us,
            r.principal_type,
            r.principal_id,
            r.action,
            r.resource_type,
            r.resource_id,
            r.outcome,
            r.effective_outcome,
            r.shadow,
            r.constitutional_hash,
            r.constitution_version,
            r.evaluated_in_us,
        ])?;
    }
    set_derived_through(conn, through_seq)
}

/// The derived data of a batch as written in the same transaction as its events.
pub(crate) fn write_batch(conn: &Connection, batch: &PreparedBatch<'_>) -> Result<(), StoreError> {
    let Some(last) = batch.entries.last() else {
        return Ok(());
    };
    let decisions: Vec<DecisionRecord> = batch.decisions.iter().map(IndexedDecision::record).collect();
    write(conn, &batch.nodes, &decisions, last.seq)
}

/// Derive the data of events `through + 1 ..= log_size` from their stored leaf hashes and events.
fn derive_from_log(conn: &Connection, through: i64, log_size: i64) -> Result<(), StoreError> {
    let ids = Frontier::ids(through as u64);
    let stored = stored_nodes(conn, &ids)?;
    let mut frontier = frontier_from(through, &ids, &stored)?;
    let mut read = conn.prepare_cached(
        "SELECT seq, kind, leaf_hash, event FROM audit_log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut next = through;
    while next < log_size {
        let mut nodes = Vec::new();
        let mut decisions = Vec::new();
        let chunk_start = next;
        let mut rows = read.query(params![next, log_size, DERIVE_CHUNK])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            if seq != next + 1 {
                return Err(StoreError::Corrupt(format!(
                    "the audit log has no event at seq {}",
                    next + 1
                )));
            }
            let leaf = hash_from(&row.get::<_, Vec<u8>>(2)?, "a leaf hash")?;
            frontier.push(leaf, |id, hash| {
                if id.level > 0 {
                    nodes.push((id, *hash));
                }
            });
            let kind: String = row.get(1)?;
            let event: Option<String> = row.get(3)?;
            // A pruned event (no body) has no index row any more.
            if let (crate::DECISION_EVENT_KIND, Some(event)) = (kind.as_str(), event) {
                decisions.push(crate::event::decision_record(seq, &event).map_err(StoreError::Corrupt)?);
            }
            next = seq;
        }
        drop(rows);
        if next == chunk_start {
            return Err(StoreError::Corrupt(format!(
                "the audit log has no event at seq {}",
                next + 1
            )));
        }
        write(conn, &nodes, &decisions, next)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{DecisionStore, SqliteStore, StoreOptions};

    fn record(n: usize) -> DecisionRecord {
        DecisionRecord {
            decision_id: format!("dec-{n}"),
            recorded_at_us: 1_700_000_000_000_000 + n as i64,
            principal_type: "Agent".into(),
            principal_id: format!("agent-{}", n % 3),
            action: "read_data".into(),
            resource_type: "Tool".into(),
            resource_id: "search \"quoted\" ü".into(),
            outcome: ["allow", "deny", "escalate"][n % 3].into(),
            effective_outcome: if n.is_multiple_of(5) {
                "allow"
            } else {
                ["allow", "deny", "escalate"][n % 3]
            }
            .into(),
            shadow: n.is_multiple_of(5),
            constitutional_hash: "ab".repeat(32),
            constitution_version: "1.0.0".into(),
            evaluated_in_us: n as i64,
            body: format!(r#"{{"n":{n}}}"#),
            ..Default::default()
        }
    }

    async fn open(dir: &Path) -> SqliteStore {
        let url = format!("sqlite://{}/acgs.db", dir.display());
        SqliteStore::open(&url, &StoreOptions::default()).await.unwrap()
    }

    /// `(through_seq, decision-index rows, tree nodes)` as stored, read on a connection of its own (the store's
    /// reads would write what is pending first).
    fn stored(dir: &Path) -> (i64, i64, i64) {
        let conn = Connection::open(dir.join("acgs.db")).unwrap();
        conn.query_row(
            "SELECT (SELECT through_seq FROM audit_derived), (SELECT COUNT(*) FROM decisions), \
             (SELECT COUNT(*) FROM audit_nodes)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap()
    }

    /// The stored tree's root over the first `size` leaves is the root computed from the leaf hashes alone.
    async fn assert_tree_matches_leaves(store: &SqliteStore, size: u64) {
        let mut frontier = Frontier::default();
        for entry in store.audit_entries(1, size as u32).await.unwrap() {
            frontier.push(entry.leaf_hash, |_, _| {});
        }
        assert_eq!(
            crate::tree_root(store, size).await.unwrap(),
            frontier.root(),
            "root of the first {size} leaves"
        );
    }

    /// A database whose tree nodes are keyed by (level, idx), as before migration 0006, opens with every node
    /// under its new key: the stored tree's roots are still those of its leaves, and appends extend it.
    #[tokio::test]
    async fn tree_nodes_keyed_by_level_and_index_are_rekeyed_when_the_database_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        for batch in [0..5, 5..12, 12..21] {
            let mut records: Vec<_> = batch.map(record).collect();
            store.append(&mut records).await.unwrap();
        }
        assert_tree_matches_leaves(&store, 21).await;
        drop(store);
        assert_eq!(
            stored(dir.path()).2,
            21 - 3,
            "21 leaves complete 21 - popcount(21) nodes"
        );

        // The layout of migration 0001, with the migration that rekeys it not yet applied.
        Connection::open(dir.path().join("acgs.db"))
            .unwrap()
            .execute_batch(
                "CREATE TABLE nodes_0001 (level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63), \
                     idx INTEGER NOT NULL, hash BLOB NOT NULL CHECK (length(hash) = 32), \
                     PRIMARY KEY (level, idx)) STRICT, WITHOUT ROWID; \
                 INSERT INTO nodes_0001 \
                     SELECT position & 63, ((position >> 6) >> (position & 63)) - 1, hash FROM audit_nodes; \
                 DROP TABLE audit_nodes; \
                 ALTER TABLE nodes_0001 RENAME TO audit_nodes; \
                 DELETE FROM _sqlx_migrations WHERE version = 6;",
            )
            .unwrap();

        let store = open(dir.path()).await;
        for size in [1, 2, 7, 8, 16, 21] {
            assert_tree_matches_leaves(&store, size).await;
        }
        let mut records: Vec<_> = (21..40).map(record).collect();
        store.append(&mut records).await.unwrap();
        assert_tree_matches_leaves(&store, 40).await;
        drop(store);
        assert_eq!(stored(dir.path()).2, 40 - 2);
    }

    fn security_event(event: &str) -> crate::SecurityEvent {
        crate::SecurityEvent {
            event: event.into(),
            actor: None,
            subject: None,
            source: None,
            detail: None,
        }
    }

    async fn append_one(store: &SqliteStore, n: usize) -> DecisionRecord {
        let mut writer = store.blocking_appender().unwrap();
        let mut batch = [record(n)];
        tokio::task::spawn_blocking(move || {
            writer.append(&mut batch).unwrap();
            batch
        })
        .await
        .unwrap()[0]
            .clone()
    }

    /// A decision's index row and tree nodes wait in memory after its commit; a read writes them first, so it
    /// sees the decision.
    #[tokio::test]
    async fn reads_see_decisions_whose_derived_data_is_still_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let first = append_one(&store, 1).await;
        let second = append_one(&store, 2).await;
        assert_eq!(
            stored(dir.path()).1,
            0,
            "the first commit leaves its index row in memory"
        );

        assert_eq!(store.get("dec-2").await.unwrap(), Some(second.clone()));
        assert_eq!(
            stored(dir.path()),
            (2, 2, 1),
            "the read wrote both rows and the tree node"
        );
        assert_eq!(store.list(&Default::default()).await.unwrap(), vec![second, first]);
        assert_eq!(store.count().await.unwrap(), 2);
    }

    /// A decision commit carries the pending derived data only once it is overdue: before the deadline it
    /// leaves it to the idle writer, after it writes it with its own events.
    #[tokio::test]
    async fn a_commit_after_the_deadline_writes_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let first = Instant::now();
        append_one(&store, 1).await;
        append_one(&store, 2).await;
        tokio::time::sleep(DERIVED_WRITE_INTERVAL + Duration::from_millis(2)).await;
        append_one(&store, 3).await;
        // (On a machine too slow to get here within the deadline, the commit was entitled to write them.)
        if first.elapsed() < DERIVED_WRITE_DEADLINE {
            assert_eq!(
                stored(dir.path()).0,
                0,
                "a commit before the deadline leaves the derived data to the idle writer"
            );
        }
        tokio::time::sleep(DERIVED_WRITE_DEADLINE + Duration::from_millis(2)).await;
        append_one(&store, 4).await;
        let (through, rows, _) = stored(dir.path());
        assert!(
            through >= 3,
            "the fourth commit wrote the rows of the first three (through {through})"
        );
        assert_eq!(rows, through);
    }

    /// The group-commit writer, with no decisions queued after a commit, writes derived data that has waited
    /// the interval in a transaction of its own, without a read or a later commit asking for it.
    #[tokio::test]
    async fn an_idle_writer_writes_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(open(dir.path()).await);
        let log = crate::DecisionLog::start(store.clone(), crate::LogConfig::default());
        log.append(record(1)).await.unwrap();
        tokio::time::sleep(DERIVED_WRITE_INTERVAL + Duration::from_millis(2)).await;
        log.append(record(2)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while stored(dir.path()) != (2, 2, 1) {
            assert!(
                Instant::now() < deadline,
                "the idle writer did not write the derived data: {:?}",
                stored(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        log.shutdown().await;
    }

    /// A crash loses only derived data still in memory; opening the store derives it from the log: the same
    /// index rows (every field read back from the event) and the same tree.
    #[tokio::test]
    async fn derived_data_lost_in_a_crash_is_derived_from_the_log_on_opening() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let mut appended = Vec::new();
        for n in 0..40 {
            appended.push(append_one(&store, n).await);
        }
        store
            .append_events(&[crate::NewEvent::security(security_event("login.failed"), 5)])
            .await
            .unwrap();
        for n in 40..45 {
            appended.push(append_one(&store, n).await);
        }
        // The crash: the store goes away without writing what it holds.
        drop(store);
        let (through, _, _) = stored(dir.path());
        assert!(
            through < 46,
            "the last commits' derived data was only in memory (through {through})"
        );

        let store = open(dir.path()).await;
        assert_eq!(stored(dir.path()).0, 46, "opening derived everything");
        for r in &appended {
            assert_eq!(store.get(&r.decision_id).await.unwrap().as_ref(), Some(r));
        }
        assert_eq!(store.count().await.unwrap(), 45);
        for size in [1, 7, 32, 45, 46] {
            assert_tree_matches_leaves(&store, size).await;
        }
    }

    /// Two writers on one file (e.g. the server and `acgs audit prune`): each derives what the other appended,
    /// and nothing is indexed twice or left out.
    #[tokio::test]
    async fn writers_on_the_same_file_derive_what_the_other_appended() {
        let dir = tempfile::tempdir().unwrap();
        let server = open(dir.path()).await;
        append_one(&server, 1).await;
        append_one(&server, 2).await;
        // Opening derives the server's pending rows from the log; the server then finds them written.
        let other = open(dir.path()).await;
        assert_eq!(stored(dir.path()).0, 2);
        append_one(&server, 3).await;
        append_one(&other, 4).await;
        append_one(&server, 5).await;
        other
            .append_events(&[crate::NewEvent::security(security_event("key.created"), 5)])
            .await
            .unwrap();
        append_one(&server, 7).await;
        assert_eq!(server.count().await.unwrap(), 6);
        assert_eq!(other.count().await.unwrap(), 6);
        assert_eq!(stored(dir.path()).0, 7);
        let ids: Vec<String> = other
            .list(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{}:{}", r.seq, r.decision_id))
            .collect();
        assert_eq!(ids, ["7:dec-7", "5:dec-5", "4:dec-4", "3:dec-3", "2:dec-2", "1:dec-1"]);
        assert_tree_matches_leaves(&server, 7).await;
    }

    /// A prune by another writer (`acgs audit prune` beside the server) while the server holds pending rows:
    /// the pruned decisions leave the index, the rest stay, and the tree still matches its leaves.
    #[tokio::test]
    async fn a_prune_beside_a_writer_with_pending_rows_leaves_a_consistent_index() {
        let dir = tempfile::tempdir().unwrap();
        let server = open(dir.path()).await;
        let pruner = open(dir.path()).await;
        for n in 1..=6 {
            append_one(&server, n).await;
        }
        // Records 1..=3 were recorded before 1_700_000_000_000_004.
        let pruned = pruner
            .prune(1_700_000_000_000_004, 1_800_000_000_000_000)
            .await
            .unwrap()
            .expect("something to prune");
        assert_eq!((pruned.through_seq, pruned.record_seq), (3, 7));
        append_one(&server, 8).await;
        append_one(&server, 9).await;
        let listed: Vec<i64> = server
            .list(&Default::default())
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(listed, [9, 8, 6, 5, 4]);
        assert!(server.get("dec-2").await.unwrap().is_none());
        assert_eq!(stored(dir.path()).0, 9);
        assert_tree_matches_leaves(&server, 9).await;

        // The server's own prune, with rows of the decisions it prunes still pending.
        append_one(&server, 10).await;
        append_one(&server, 11).await;
        let pruned = server
            .prune(1_800_000_000_000_001, 1_900_000_000_000_000)
            .await
            .unwrap()
            .expect("something to prune");
        assert_eq!(pruned.through_seq, 11);
        assert!(server.list(&Default::default()).await.unwrap().is_empty());
        assert_tree_matches_leaves(&server, 12).await;
    }

    /// A decision id already in the log is refused at commit time, also while its index row is in memory.
    #[tokio::test]
    async fn a_decision_id_still_pending_is_refused_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        append_one(&store, 1).await;
        let mut writer = store.blocking_appender().unwrap();
        let refused = tokio::task::spawn_blocking(move || writer.append(&mut [record(1)]))
            .await
            .unwrap();
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
        assert_eq!(store.last_seq().await.unwrap(), 1);
    }
}
