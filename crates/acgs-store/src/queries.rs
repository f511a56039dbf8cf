//! The decision log's SQL that both backends run, each statement written once (`?` placeholders, see
//! [`crate::sql`]), and the reads whose statement and row mapping are the same on both: [`LogReads`], implemented
//! once for the connection pool of either backend.
//!
//! What stays with each backend: its appends, the tree-node reads (the two lay `audit_nodes` out differently),
//! and what it must do around a shared read (SQLite first writes the derived data it holds in memory).

use sqlx::{Arguments, Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::index::{DecisionRow, IndexRow};
use crate::sql::{Dialect, Sql};
use crate::tree::hash_from;
use crate::{AuditEntry, DecisionQuery, DecisionRecord, StoreError, StoredCheckpoint};

/// The number of events in the log, i.e. its last sequence number and the tree size (0 when empty).
pub(crate) static LAST_SEQ: Sql = Sql::new("SELECT COALESCE(MAX(seq), 0) FROM audit_log");

/// The number of indexed decisions.
static COUNT_DECISIONS: Sql = Sql::new("SELECT COUNT(*) FROM decisions");

/// Audit entries with `seq >= ?`, ascending, at most `?`.
static AUDIT_ENTRIES: Sql =
    Sql::new("SELECT seq, kind, recorded_at_us, leaf_hash, event FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?");

/// Checkpoints with `tree_size > ?`, ascending, at most `?`.
static CHECKPOINTS: Sql = Sql::new(
    "SELECT tree_size, root, signed_at_us, note FROM audit_checkpoints WHERE tree_size > ? \
     ORDER BY tree_size LIMIT ?",
);

/// The checkpoint with the largest tree size.
static LATEST_CHECKPOINT: Sql =
    Sql::new("SELECT tree_size, root, signed_at_us, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1");

/// Keep a signed checkpoint `(tree_size, root, signed_at_us, note)`; a second one for the same size is ignored.
pub(crate) static INSERT_CHECKPOINT: Sql = Sql::new(
    "INSERT INTO audit_checkpoints (tree_size, root, signed_at_us, note) VALUES (?, ?, ?, ?) \
     ON CONFLICT (tree_size) DO NOTHING",
);

/// For a prune before `?` (µs): the last sequence number of the longest prefix of the log recorded before it,
/// and how many events were pruned already.
pub(crate) static PRUNE_THROUGH: Sql = Sql::new(
    "SELECT COALESCE((SELECT seq - 1 FROM audit_log WHERE recorded_at_us >= ? ORDER BY seq LIMIT 1), \
                     (SELECT COALESCE(MAX(seq), 0) FROM audit_log)), \
            (SELECT COUNT(*) FROM audit_log WHERE event IS NULL)",
);

/// Remove the bodies of the events with `seq <= ?`, keeping their leaf hashes.
pub(crate) static PRUNE_EVENTS: Sql =
    Sql::new("UPDATE audit_log SET event = NULL WHERE seq <= ? AND event IS NOT NULL");

/// Remove the decision-index rows with `seq <= ?`.
pub(crate) static PRUNE_INDEX: Sql = Sql::new("DELETE FROM decisions WHERE seq <= ?");

/// An audit-log row a write probe inserts (and rolls back), with a leaf hash `?` of 32 bytes.
static PROBE_ENTRY: Sql = Sql::new(
    "INSERT INTO audit_log (seq, kind, recorded_at_us, leaf_hash, event) VALUES (-1, 'readiness.probe', 0, ?, NULL)",
);

/// The index columns, as `FROM decisions d` names them.
macro_rules! index_columns {
    () => {
        "d.seq, d.decision_id, d.recorded_at_us, d.principal_type, d.principal_id, d.action, d.resource_type, \
         d.resource_id, d.outcome, d.effective_outcome, d.shadow, d.constitutional_hash, d.constitution_version, \
         d.evaluated_in_us"
    };
}

/// The decisions a read returns: each index row with the leaf hash and event of its audit log entry (one join,
/// `NULL`s when there is no such entry), as [`DecisionRow`] reads them. Filters name the index's columns as
/// `d.<column>`.
macro_rules! select_decisions {
    () => {
        concat!(
            "SELECT ",
            index_columns!(),
            ", a.leaf_hash, a.event FROM decisions d LEFT JOIN audit_log a ON a.seq = d.seq"
        )
    };
}

/// One decision by id.
static DECISION_BY_ID: Sql = Sql::new(concat!(select_decisions!(), " WHERE d.decision_id = ?"));

/// Index rows alone, as stored, with `seq > ?`, ascending, at most `?`.
static INDEX_ROWS: Sql = Sql::new(concat!(
    "SELECT ",
    index_columns!(),
    " FROM decisions d WHERE d.seq > ? ORDER BY d.seq LIMIT ?"
));

/// An `audit_log` row: `(seq, kind, recorded_at_us, leaf_hash, event)`.
type EntryRow = (i64, String, i64, Vec<u8>, Option<String>);

/// An `audit_checkpoints` row: `(tree_size, root, signed_at_us, note)`.
type CheckpointRow = (i64, Vec<u8>, i64, String);

/// The reads of [`crate::DecisionStore`] whose statement and row mapping are the same on both backends, on the
/// store's connection pool. Each backend's `DecisionStore` method calls the one of the same job, after whatever
/// that backend must do first.
pub(crate) trait LogReads {
    /// See [`crate::DecisionStore::count`].
    async fn count_decisions(&self) -> Result<i64, StoreError>;
    /// See [`crate::DecisionStore::last_seq`].
    async fn last_seq(&self) -> Result<i64, StoreError>;
    /// See [`crate::DecisionStore::audit_entries`].
    async fn audit_entries(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    /// See [`crate::DecisionStore::checkpoints`].
    async fn checkpoints(&self, after_size: i64, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError>;
    /// See [`crate::DecisionStore::latest_checkpoint`].
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// See [`crate::DecisionStore::get`].
    async fn decision(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError>;
    /// See [`crate::DecisionStore::list`].
    async fn decisions(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError>;
    /// See [`crate::DecisionStore::decision_index`].
    async fn index_rows(&self, after_seq: i64, limit: u32) -> Result<Vec<DecisionRecord>, StoreError>;
    /// Check that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Insert a probe row into the audit log, then run the statements `also`, in a transaction that is rolled back.
    async fn probe_write(&self, also: &[&'static str]) -> Result<(), StoreError>;
}

impl<DB> LogReads for Pool<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
    String: for<'q> Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
    EntryRow: for<'r> FromRow<'r, DB::Row>,
    CheckpointRow: for<'r> FromRow<'r, DB::Row>,
    DecisionRow: for<'r> FromRow<'r, DB::Row>,
    IndexRow: for<'r> FromRow<'r, DB::Row>,
{
    async fn count_decisions(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(DB::sql(&COUNT_DECISIONS)).fetch_one(self).await?)
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(DB::sql(&LAST_SEQ)).fetch_one(self).await?)
    }

    async fn audit_entries(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<EntryRow> = sqlx::query_as(DB::sql(&AUDIT_ENTRIES))
            .bind(from_seq)
            .bind(i64::from(limit))
            .fetch_all(self)
            .await?;
        rows.into_iter().map(entry_from_row).collect()
    }

    async fn checkpoints(&self, after_size: i64, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows: Vec<CheckpointRow> = sqlx::query_as(DB::sql(&CHECKPOINTS))
            .bind(after_size)
            .bind(i64::from(limit))
            .fetch_all(self)
            .await?;
        rows.into_iter().map(checkpoint_from_row).collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<CheckpointRow> = sqlx::query_as(DB::sql(&LATEST_CHECKPOINT)).fetch_optional(self).await?;
        row.map(checkpoint_from_row).transpose()
    }

    async fn decision(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        sqlx::query_as::<_, DecisionRow>(DB::sql(&DECISION_BY_ID))
            .bind(decision_id)
            .fetch_optional(self)
            .await?
            .map(DecisionRow::checked)
            .transpose()
    }

    async fn decisions(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        let (sql, arguments) = list_query::<DB>(query)?;
        let rows: Vec<DecisionRow> = sqlx::query_as_with(&sql, arguments).fetch_all(self).await?;
        rows.into_iter().map(DecisionRow::checked).collect()
    }

    async fn index_rows(&self, after_seq: i64, limit: u32) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows: Vec<IndexRow> = sqlx::query_as(DB::sql(&INDEX_ROWS))
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(self)
            .await?;
        Ok(rows.into_iter().map(DecisionRecord::from).collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self).await?;
        Ok(())
    }

    async fn probe_write(&self, also: &[&'static str]) -> Result<(), StoreError> {
        let mut probe = self.begin().await?;
        sqlx::query(DB::sql(&PROBE_ENTRY))
            .bind([0u8; 32].as_slice())
            .execute(&mut *probe)
            .await?;
        for sql in also {
            sqlx::query(sql).execute(&mut *probe).await?;
        }
        probe.rollback().await?;
        Ok(())
    }
}

/// The statement and arguments of a list query: [`select_decisions!`] with the query's filters, newest first,
/// at most its limit (each placeholder as `DB` spells it).
fn list_query<'q, DB>(query: &DecisionQuery) -> Result<(String, DB::Arguments<'q>), StoreError>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    let mut sql = String::from(concat!(select_decisions!(), " WHERE 1 = 1"));
    let mut arguments = DB::Arguments::default();
    let text_filters = [
        ("outcome", &query.outcome),
        ("principal_type", &query.principal_type),
        ("principal_id", &query.principal_id),
        ("action", &query.action),
    ];
    for (column, value) in text_filters {
        if let Some(v) = value {
            sql.push_str(&format!(" AND d.{column} = "));
            bind(&mut sql, &mut arguments, v.clone())?;
        }
    }
    if let Some(before) = query.before_seq {
        sql.push_str(" AND d.seq < ");
        bind(&mut sql, &mut arguments, before)?;
    }
    if let Some(since) = query.since_us {
        sql.push_str(" AND d.recorded_at_us >= ");
        bind(&mut sql, &mut arguments, since)?;
    }
    sql.push_str(" ORDER BY d.seq DESC LIMIT ");
    bind(&mut sql, &mut arguments, query.effective_limit())?;
    Ok((sql, arguments))
}

/// Add `value` to `arguments` and its placeholder to `sql`.
fn bind<'q, A, T>(sql: &mut String, arguments: &mut A, value: T) -> Result<(), StoreError>
where
    A: Arguments<'q>,
    T: 'q + Encode<'q, A::Database> + Type<A::Database>,
{
    arguments.add(value).map_err(|e| StoreError::Encode(e.to_string()))?;
    arguments
        .format_placeholder(sql)
        .map_err(|e| StoreError::Encode(e.to_string()))
}

/// An `audit_log` row as an entry.
fn entry_from_row(row: EntryRow) -> Result<AuditEntry, StoreError> {
    let (seq, kind, recorded_at_us, leaf_hash, event) = row;
    Ok(AuditEntry {
        seq,
        kind,
        recorded_at_us,
        leaf_hash: hash_from(&leaf_hash, "a leaf hash")?,
        event,
    })
}

/// An `audit_checkpoints` row as a checkpoint.
fn checkpoint_from_row(row: CheckpointRow) -> Result<StoredCheckpoint, StoreError> {
    let (tree_size, root, signed_at_us, note) = row;
    Ok(StoredCheckpoint {
        tree_size,
        root: hash_from(&root, "a checkpoint root")?,
        signed_at_us,
        note,
    })
}
