//! The embedded SQLite backend (default): one file under the data directory, WAL journal.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite};

use acgs_audit::{Frontier, NodeId, NodeMap};
use sqlx::SqliteConnection;

use crate::event::{NewEntry, PendingEvent, prepare_batch};
use crate::record::DecisionRow;
use crate::{
    AuditEntry, DecisionQuery, DecisionRecord, DecisionStore, PruneOutcome, SELECT_DECISIONS, StoreError, StoreOptions,
    StoredCheckpoint, frontier_from, node_map, push_list_query,
};

/// Insert audit entries given as a JSON array of `[seq, kind, recorded_at_us, hex leaf hash, event]`.
const INSERT_ENTRIES: &str = "INSERT INTO audit_log (seq, kind, recorded_at_us, leaf_hash, event) \
     SELECT value ->> 0, value ->> 1, value ->> 2, unhex(value ->> 3), value ->> 4 FROM json_each(?1)";

/// Insert tree nodes given as a JSON array of `[level, idx, hex hash]`.
const INSERT_NODES: &str = "INSERT INTO audit_nodes (level, idx, hash) \
     SELECT value ->> 0, value ->> 1, unhex(value ->> 2) FROM json_each(?1)";

/// Insert decision-index rows given as a JSON array of row arrays (see [`index_row`]).
const INSERT_DECISIONS: &str = "INSERT INTO decisions (seq, decision_id, recorded_at_us, principal_type, \
     principal_id, action, resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, \
     constitution_version, evaluated_in_us) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
     value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12, value ->> 13 \
     FROM json_each(?1)";

/// One batch in one round trip: entries (`?1`), tree nodes (`?2`) and decision-index rows (`?3`), each a JSON
/// array as for the statements above (an empty array inserts nothing).
static INSERT_BATCH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}; {}; {}",
        INSERT_ENTRIES,
        INSERT_NODES.replace("?1", "?2"),
        INSERT_DECISIONS.replace("?1", "?3")
    )
});

/// Stored tree nodes named by a JSON array of `[level, idx]` (level 0 from the leaf hashes).
const SELECT_NODES: &str = "SELECT 0 AS level, a.seq - 1 AS idx, a.leaf_hash AS hash \
     FROM json_each(?1) j JOIN audit_log a ON a.seq = (j.value ->> 1) + 1 WHERE j.value ->> 0 = 0 \
     UNION ALL SELECT n.level, n.idx, n.hash \
     FROM json_each(?1) j JOIN audit_nodes n ON n.level = j.value ->> 0 AND n.idx = j.value ->> 1";

/// One decision-index row for [`INSERT_DECISIONS`], columns in its order.
fn index_row(r: &DecisionRecord, seq: i64) -> serde_json::Value {
    serde_json::json!([
        seq,
        r.decision_id,
        r.recorded_at_us,
        r.principal_type,
        r.principal_id,
        r.action,
        r.resource_type,
        r.resource_id,
        r.outcome,
        r.effective_outcome,
        i64::from(r.shadow),
        r.constitutional_hash,
        r.constitution_version,
        r.evaluated_in_us,
    ])
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Encode(e.to_string()))
}

/// The stored nodes among `ids`.
async fn select_nodes(conn: &mut SqliteConnection, ids: &[NodeId]) -> Result<NodeMap, StoreError> {
    let wanted = to_json(&ids.iter().map(|id| (id.level, id.index)).collect::<Vec<_>>())?;
    let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(SELECT_NODES).bind(wanted).fetch_all(conn).await?;
    node_map(rows)
}

/// Append `events` at the end of the log inside the open transaction `conn`, which holds the write lock:
/// leaves, completed tree nodes and decision-index rows. `cached` is the tree's right edge as this process last
/// committed it; it is used when the log has not grown since (another process, e.g. a prune, may append too).
/// Returns the new entries and the right edge after them.
async fn append_events(
    conn: &mut SqliteConnection,
    events: &[PendingEvent<'_>],
    cached: Option<Frontier>,
) -> Result<(Vec<NewEntry>, Frontier), StoreError> {
    let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_log")
        .fetch_one(&mut *conn)
        .await?;
    let mut frontier = match cached {
        Some(f) if f.size() == size as u64 => f,
        _ => {
            let ids = Frontier::ids(size as u64);
            let stored = select_nodes(&mut *conn, &ids).await?;
            frontier_from(size, &ids, &stored)?
        }
    };
    let batch = prepare_batch(&mut frontier, events);
    let rows: Vec<_> = batch
        .entries
        .iter()
        .map(|e| (e.seq, e.kind, e.recorded_at_us, hex::encode(e.leaf_hash), &e.event))
        .collect();
    let nodes: Vec<_> = batch
        .nodes
        .iter()
        .map(|(id, hash)| (id.level, id.index, hex::encode(hash)))
        .collect();
    let decisions: Vec<serde_json::Value> = batch.decisions.iter().map(|(r, seq)| index_row(r, *seq)).collect();
    sqlx::query(&INSERT_BATCH)
        .bind(to_json(&rows)?)
        .bind(to_json(&nodes)?)
        .bind(to_json(&decisions)?)
        .execute(&mut *conn)
        .await?;
    Ok((batch.entries, frontier))
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSync {
    /// `synchronous=FULL`: every commit is fsynced; survives power loss and OS crashes.
    #[default]
    Full,
    /// `synchronous=NORMAL` (WAL): survives a crash of the process (kill -9) but not of the machine.
    Normal,
}

impl std::fmt::Display for SqliteSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Full => "full",
            Self::Normal => "normal",
        })
    }
}

impl FromStr for SqliteSync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            other => Err(format!("unknown sqlite sync mode `{other}` (expected full or normal)")),
        }
    }
}

/// Decision store in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (list, get, count).
    pool: SqlitePool,
    /// The one connection that writes: SQLite has a single writer anyway, and keeping every write on one
    /// connection keeps its page cache valid (a connection whose cache another connection's commit
    /// invalidated must re-read its pages).
    writer: SqlitePool,
    /// The tree's right edge after this process's last committed append (saves reading it back per batch).
    frontier: std::sync::Arc<std::sync::Mutex<Option<Frontier>>>,
}

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
            .foreign_keys(true);
        if let Some(dir) = connect.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
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
        let writer = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .connect_with(connect.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            writer,
            frontier: Default::default(),
        })
    }
}

impl SqliteStore {
    fn cached_frontier(&self) -> Option<Frontier> {
        self.frontier.lock().ok().and_then(|f| f.clone())
    }

    fn remember_frontier(&self, frontier: Frontier) {
        if let Ok(mut cached) = self.frontier.lock() {
            *cached = Some(frontier);
        }
    }
}

#[async_trait]
impl DecisionStore for SqliteStore {
    async fn append(&self, records: &mut [DecisionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // BEGIN IMMEDIATE takes the write lock first, so reading the tree size and frontier and appending
        // after them is one atomic step even if another process (e.g. `acgs audit prune`) writes too.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let events: Vec<PendingEvent<'_>> = records.iter().map(PendingEvent::Decision).collect();
        let (entries, frontier) = append_events(&mut tx, &events, self.cached_frontier()).await?;
        tx.commit().await?;
        self.remember_frontier(frontier);
        for (r, e) in records.iter_mut().zip(entries) {
            r.seq = e.seq;
        }
        Ok(())
    }

    async fn get(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        Ok(
            sqlx::query_as::<_, DecisionRow>(&format!("{SELECT_DECISIONS} WHERE decision_id = ?"))
                .bind(decision_id)
                .fetch_optional(&self.pool)
                .await?
                .map(DecisionRecord::from),
        )
    }

    async fn list(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(SELECT_DECISIONS);
        push_list_query(&mut qb, query);
        let rows: Vec<DecisionRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(DecisionRecord::from).collect())
    }

    async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_log")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn audit_entries(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<(i64, String, i64, Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT seq, kind, recorded_at_us, leaf_hash, event FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(from_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(crate::entry_from_row).collect()
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<NodeMap, StoreError> {
        let mut conn = self.pool.acquire().await?;
        select_nodes(&mut conn, ids).await
    }

    async fn add_checkpoint(&self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root, signed_at_us, note) VALUES (?, ?, ?, ?) \
             ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(c.tree_size)
        .bind(c.root.as_slice())
        .bind(c.signed_at_us)
        .bind(&c.note)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn checkpoints(&self, after_size: i64, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows: Vec<(i64, Vec<u8>, i64, String)> = sqlx::query_as(
            "SELECT tree_size, root, signed_at_us, note FROM audit_checkpoints WHERE tree_size > ? \
             ORDER BY tree_size LIMIT ?",
        )
        .bind(after_size)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(crate::checkpoint_from_row).collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<(i64, Vec<u8>, i64, String)> = sqlx::query_as(
            "SELECT tree_size, root, signed_at_us, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(crate::checkpoint_from_row).transpose()
    }

    async fn prune(&self, older_than_us: i64, now_us: i64) -> Result<Option<PruneOutcome>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let (through_seq, already): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE((SELECT MIN(seq) - 1 FROM audit_log WHERE recorded_at_us >= ?1), \
                             (SELECT COALESCE(MAX(seq), 0) FROM audit_log)), \
                    (SELECT COUNT(*) FROM audit_log WHERE event IS NULL)",
        )
        .bind(older_than_us)
        .fetch_one(&mut *tx)
        .await?;
        if through_seq <= already {
            return Ok(None);
        }
        let pruned = sqlx::query("UPDATE audit_log SET event = NULL WHERE seq <= ? AND event IS NOT NULL")
            .bind(through_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM decisions WHERE seq <= ?")
            .bind(through_seq)
            .execute(&mut *tx)
            .await?;
        let record = PendingEvent::Pruned {
            through_seq,
            older_than_us,
            recorded_at_us: now_us,
        };
        let (entries, frontier) = append_events(&mut tx, std::slice::from_ref(&record), self.cached_frontier()).await?;
        tx.commit().await?;
        self.remember_frontier(frontier);
        Ok(Some(PruneOutcome {
            through_seq,
            events_pruned: pruned as i64,
            record_seq: entries[0].seq,
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
