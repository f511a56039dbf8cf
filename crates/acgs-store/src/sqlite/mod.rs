//! The embedded SQLite backend (default): one file under the data directory, WAL journal. Reads go through a
//! sqlx pool; every write goes through the one writing connection, the [`Appender`]. The tree nodes and
//! decision-index rows of the group-commit writer's batches follow a few milliseconds behind their events
//! ([`derived`]): the reads that use them write what is pending first, and opening derives what a crash
//! left out.
//!
//! Commits only append to the write-ahead log. The background checkpointer ([`checkpointer`]) moves
//! committed pages into the database file every 10 ms, each step flushed at once, without blocking the writer.
//! When commits arrive so steadily that its passes never reach the log's end (SQLite reuses the log from its
//! start only after one has), the log grows; past [`checkpointer::WAL_CATCH_UP_FRAMES`] pages the
//! group-commit writer, right after its next commit and with nothing else writing, checkpoints the few pages
//! committed since the last pass, and the commit after that starts the log over.
//! (SQLite's default, a checkpoint of everything inside whichever commit passes 1,000 pages, stalled the
//! decisions waiting on that commit for milliseconds several times a second under load.)

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use acgs_audit::{NodeId, NodeMap};

mod appender;
mod checkpointer;
mod derived;
mod durability;
mod governance;
mod nodes;
mod writeback;

pub use durability::SqliteSync;

use crate::queries::LogReads;
use crate::{
    AuditEntry, BlockingAppend, DecisionQuery, DecisionRecord, DecisionStore, NewEvent, PruneOutcome, StoreError,
    StoreOptions, StoredCheckpoint,
};
use appender::Appender;
use durability::{FlushFailure, flush_failure};

/// WAL length (pages) at which the writing connection checkpoints inside a commit whatever else happens (only
/// reached if the background checkpointer or the group-commit writer is not running).
const WAL_SAFETY_FRAMES: i64 = 262_144;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Decision store in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (list, get, count, proofs) and the credential tables' writes.
    pub(crate) pool: SqlitePool,
    /// The one connection that writes (SQLite has a single writer anyway).
    appender: Arc<Mutex<Appender>>,
    /// The background checkpointer found the write-ahead log long: the writer should catch up and rewind it.
    wal_long: Arc<AtomicBool>,
    /// Why flushing the database file failed, once it has (every write is then refused; `ping` fails).
    flush_failed: FlushFailure,
    /// The directory holding the database, its write-ahead log and shared memory file.
    directory: std::path::PathBuf,
    /// Dropped with the last clone, which stops the background WAL checkpointer.
    _stop_wal_checkpointer: Arc<std::sync::mpsc::Sender<()>>,
    /// The counter keys held by this process's usage sessions (`crate::usage`).
    pub(crate) usage_locks: crate::usage::KeyLocks,
}

/// Free space a write probe requires on the database's filesystem: room for a few large batches in the
/// write-ahead log and for the checkpoint to copy them into the database file.
pub const PROBE_MIN_FREE_BYTES: u64 = 4 << 20;

impl SqliteStore {
    /// Open (creating the file and its directory if needed) and migrate.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.sqlite_sync {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Small pages: a commit writes each page it touched to the write-ahead log in full, and a decision
            // touches about ten (the event, the tree node, the index rows): 1 KiB pages write about a third
            // of the bytes 4 KiB pages do (applies when the database is created).
            .page_size(1024);
        let path = connect.get_filename().to_path_buf();
        let directory = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => dir.to_path_buf(),
            None => std::path::PathBuf::from("."),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let max = if options.max_connections == 0 {
            4
        } else {
            options.max_connections
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await?;
        let sync = options.sqlite_sync;
        let wal_long = Arc::new(AtomicBool::new(false));
        let flush_failed = FlushFailure::default();
        let (stop_wal_checkpointer, stop) = std::sync::mpsc::channel();
        checkpointer::spawn(
            path.clone(),
            options.sqlite_sync,
            Arc::clone(&wal_long),
            Arc::clone(&flush_failed),
            stop,
        )
        .map_err(|e| StoreError::Encode(format!("starting the WAL checkpointer: {e}")))?;
        let appender_flush_failed = Arc::clone(&flush_failed);
        // Derive what a crash left underived (tree nodes, decision-index rows; see [`derived`]).
        let appender = tokio::task::spawn_blocking(move || {
            let mut appender = Appender::open(&path, sync, WAL_SAFETY_FRAMES, appender_flush_failed)?;
            appender.catch_up_from_log()?;
            Ok::<_, StoreError>(appender)
        })
        .await
        .map_err(|e| StoreError::Encode(format!("opening the writing connection: {e}")))??;
        Ok(Self {
            pool,
            appender: Arc::new(Mutex::new(appender)),
            wal_long,
            flush_failed,
            directory,
            _stop_wal_checkpointer: Arc::new(stop_wal_checkpointer),
            usage_locks: crate::usage::KeyLocks::default(),
        })
    }

    /// Write the tree nodes and decision-index rows the group-commit writer still holds, so that a read sees
    /// every decision committed before it.
    async fn write_pending(&self) -> Result<(), StoreError> {
        self.write(Appender::write_pending).await
    }

    /// Run `write` on the writing connection on a blocking-pool thread.
    async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Appender) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let appender = Arc::clone(&self.appender);
        tokio::task::spawn_blocking(move || write(&mut lock(&appender)))
            .await
            .map_err(|e| StoreError::Encode(format!("the write did not complete: {e}")))?
    }
}

/// The group-commit writer's way into the writing connection.
struct LogWriter {
    appender: Arc<Mutex<Appender>>,
    /// Set by the background checkpointer when the write-ahead log should be rewound.
    wal_long: Arc<AtomicBool>,
}

impl BlockingAppend for LogWriter {
    fn append_events(&mut self, events: &[NewEvent]) -> Result<i64, StoreError> {
        lock(&self.appender).append(events)
    }

    /// Write the derived data once it has waited long enough, in a transaction of its own, so that no decision
    /// commit has to carry it.
    fn idle(&mut self) {
        if let Err(e) = lock(&self.appender).write_pending_if_due() {
            tracing::warn!(error = %e, "writing the pending tree nodes and decision-index rows failed");
        }
    }

    /// Write the derived data still pending before the writer stops (a restart would derive it otherwise).
    fn finish(&mut self) {
        if let Err(e) = lock(&self.appender).write_pending() {
            tracing::warn!(error = %e, "writing the pending tree nodes and decision-index rows failed");
        }
    }

    /// Catch the checkpoint up from the writing connection when the log has grown long: no commit can come in
    /// between, so it reaches the end and the next commit starts the log over.
    fn after_commit(&mut self) {
        if self.wal_long.swap(false, Ordering::Relaxed) {
            let started = std::time::Instant::now();
            match lock(&self.appender).checkpoint_wal() {
                Ok(()) => {
                    metrics::histogram!("acgs_sqlite_wal_catch_up_seconds").record(started.elapsed().as_secs_f64())
                }
                Err(e) => tracing::warn!(error = %e, "WAL catch-up checkpoint failed"),
            }
        }
    }
}

/// The writing connection; a panic while it was held leaves nothing half-done (SQLite rolled the open
/// transaction back), so a poisoned lock is taken over.
fn lock(appender: &Mutex<Appender>) -> std::sync::MutexGuard<'_, Appender> {
    appender.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl DecisionStore for SqliteStore {
    async fn append_events(&self, events: &[NewEvent]) -> Result<i64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let events = events.to_vec();
        self.write(move |appender| appender.append(&events)).await
    }

    fn blocking_appender(&self) -> Option<Box<dyn BlockingAppend>> {
        Some(Box::new(LogWriter {
            appender: Arc::clone(&self.appender),
            wal_long: Arc::clone(&self.wal_long),
        }))
    }

    async fn get(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        self.write_pending().await?;
        self.pool.decision(decision_id).await
    }

    async fn list(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        self.write_pending().await?;
        self.pool.decisions(query).await
    }

    async fn decision_index(&self, after_seq: i64, limit: u32) -> Result<Vec<DecisionRecord>, StoreError> {
        // Rows this process or another (a running server) still holds in memory: derive them from the log.
        self.write(Appender::catch_up_from_log).await?;
        self.pool.index_rows(after_seq, limit).await
    }

    async fn count(&self) -> Result<i64, StoreError> {
        self.write_pending().await?;
        self.pool.count_decisions().await
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        self.pool.last_seq().await
    }

    async fn audit_entries(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.pool.audit_entries(from_seq, limit).await
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<NodeMap, StoreError> {
        self.write_pending().await?;
        let mut conn = self.pool.acquire().await?;
        nodes::select_nodes(&mut conn, ids).await
    }

    async fn add_checkpoint(&self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        let c = c.clone();
        self.write(move |appender| appender.add_checkpoint(&c)).await
    }

    async fn checkpoints(&self, after_size: i64, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.pool.checkpoints(after_size, limit).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.pool.latest_checkpoint().await
    }

    async fn prune(&self, older_than_us: i64, now_us: i64) -> Result<Option<PruneOutcome>, StoreError> {
        self.write(move |appender| appender.prune(older_than_us, now_us)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        flush_failure(&self.flush_failed)?;
        self.pool.ping().await
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        flush_failure(&self.flush_failed)?;
        let stats = rustix::fs::statvfs(&self.directory).map_err(|e| StoreError::Filesystem {
            path: self.directory.display().to_string(),
            source: e.into(),
        })?;
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        if free < PROBE_MIN_FREE_BYTES {
            return Err(StoreError::StorageFull {
                path: self.directory.display().to_string(),
                free,
                needed: PROBE_MIN_FREE_BYTES,
            });
        }
        // A decision commit writes only its audit-log rows (the index rows follow, see `derived`): they alone are probed.
        self.pool.probe_write(&[]).await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DecisionRecord {
        DecisionRecord {
            seq: 0,
            decision_id: "dec-1".into(),
            recorded_at_us: 1_700_000_000_000_000,
            principal_type: "Agent".into(),
            principal_id: "agent-1".into(),
            action: "read_data".into(),
            resource_type: "Tool".into(),
            resource_id: "search".into(),
            outcome: "allow".into(),
            effective_outcome: "allow".into(),
            shadow: false,
            constitutional_hash: "ab".repeat(32),
            constitution_version: "1.0.0".into(),
            evaluated_in_us: 17,
            body: "{}".into(),
        }
    }

    /// After the checkpointer failed to flush the database file, nothing more is written (decisions, security
    /// events, checkpoints) and the store reports itself unready; what was written before stays readable.
    #[tokio::test]
    async fn a_failed_flush_of_the_database_file_refuses_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/acgs.db", dir.path().display());
        let store = SqliteStore::open(&url, &StoreOptions::default()).await.unwrap();
        let mut first = [record()];
        store.append(&mut first).await.unwrap();
        store.ping().await.unwrap();
        // Reading writes the pending decision-index row, which a failed flush would leave unwritten.
        assert!(store.get("dec-1").await.unwrap().is_some());

        store
            .flush_failed
            .set("Input/output error (os error 5)".into())
            .unwrap();

        let refused = |e: StoreError| matches!(e, StoreError::FlushFailed(ref why) if why.contains("os error 5"));
        let mut second = [DecisionRecord {
            decision_id: "dec-2".into(),
            ..record()
        }];
        assert!(refused(store.append(&mut second).await.unwrap_err()));
        let mut writer = store.blocking_appender().unwrap();
        assert!(refused(writer.append(&mut second).unwrap_err()));
        let event = crate::SecurityEvent {
            event: "login.failed".into(),
            actor: Some("admin".into()),
            subject: None,
            source: Some("127.0.0.1".into()),
            detail: None,
        };
        assert!(refused(
            store
                .append_events(&[crate::NewEvent::security(event, 1)])
                .await
                .unwrap_err()
        ));
        assert!(refused(store.ping().await.unwrap_err()));
        assert_eq!(
            store.last_seq().await.unwrap(),
            1,
            "nothing was appended after the failure"
        );
        assert!(store.get("dec-1").await.unwrap().is_some());
    }

    /// A decision-index row at seq ?3 with decision id ?1 and outcome ?2, written directly.
    const INSERT_OUTCOME: &str = "INSERT INTO decisions (seq, decision_id, recorded_at_us, principal_type, \
         principal_id, action, resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, \
         constitution_version, evaluated_in_us) VALUES (?3, ?1, 1, 'Agent', 'a', 'read_data', 'Tool', 't', ?2, \
         'allow', 0, 'h', 'v', 1)";

    /// A database written before migration 0004 (the decision index's outcome checks as `IN` lists) opens with
    /// its decisions, readable by id, principal and outcome, and the rebuilt table still refuses an outcome
    /// that is not one of the three.
    #[tokio::test]
    async fn a_database_from_before_the_decision_check_rebuild_keeps_its_decisions() {
        let dir = tempfile::tempdir().unwrap();
        let old_migrations = dir.path().join("migrations");
        std::fs::create_dir(&old_migrations).unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.as_str() < "0004" {
                std::fs::copy(&path, old_migrations.join(name)).unwrap();
            }
        }
        let url = format!("sqlite://{}/acgs.db", dir.path().display());
        {
            let pool = SqlitePoolOptions::new()
                .connect_with(SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true))
                .await
                .unwrap();
            sqlx::migrate::Migrator::new(old_migrations.as_path())
                .await
                .unwrap()
                .run(&pool)
                .await
                .unwrap();
            let old_check: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'decisions'")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert!(old_check.contains("outcome IN ("), "{old_check}");
            // A decision as the old version logged it: its event, and its index row (the derived data reaches it).
            let old = DecisionRecord {
                seq: 1,
                decision_id: "old-1".into(),
                recorded_at_us: 1,
                principal_id: "a".into(),
                resource_id: "t".into(),
                outcome: "escalate".into(),
                constitutional_hash: "h".into(),
                constitution_version: "v".into(),
                evaluated_in_us: 1,
                ..record()
            };
            let entry = crate::NewEvent::decision(old).unwrap().entry_at(1).unwrap();
            sqlx::query(
                "INSERT INTO audit_log (seq, kind, recorded_at_us, leaf_hash, event) VALUES (1, 'decision', 1, ?1, ?2)",
            )
            .bind(entry.leaf_hash.as_slice())
            .bind(&entry.event)
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                &INSERT_OUTCOME
                    .replace("?1", "'old-1'")
                    .replace("?2", "'escalate'")
                    .replace("?3", "1"),
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query("UPDATE audit_derived SET through_seq = 1")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let store = SqliteStore::open(&url, &StoreOptions::default()).await.unwrap();
        let mut records: Vec<DecisionRecord> = ["allow", "deny", "escalate"]
            .iter()
            .enumerate()
            .map(|(i, outcome)| DecisionRecord {
                decision_id: format!("dec-{i}"),
                outcome: (*outcome).into(),
                ..record()
            })
            .collect();
        store.append(&mut records).await.unwrap();
        drop(store);

        // Re-open: the rows written through the new table are all there and queryable by each index.
        let store = SqliteStore::open(&url, &StoreOptions::default()).await.unwrap();
        assert_eq!(store.get("dec-1").await.unwrap().unwrap().outcome, "deny");
        let by_outcome = store
            .list(&crate::DecisionQuery {
                outcome: Some("escalate".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut escalated: Vec<&str> = by_outcome.iter().map(|r| r.decision_id.as_str()).collect();
        escalated.sort_unstable();
        assert_eq!(escalated, ["dec-2", "old-1"]);
        assert_eq!(store.get("old-1").await.unwrap().unwrap().seq, 1);
        let refused = sqlx::query(
            &INSERT_OUTCOME
                .replace("?1", "'x'")
                .replace("?2", "'maybe'")
                .replace("?3", "1000"),
        )
        .execute(&store.pool)
        .await;
        assert!(
            refused.is_err(),
            "an outcome outside allow/deny/escalate must be refused"
        );
    }
}
