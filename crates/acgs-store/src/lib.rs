//! The durable, tamper-evident audit log of ACGS: one storage trait with SQLite and PostgreSQL backends that
//! keep every event as a leaf of an RFC 6962 Merkle tree (with its tree nodes, signed checkpoints and a
//! queryable decision index), the group-commit writer that makes every answered decision durable before the
//! answer is sent, and the log operations built on the trait (proofs, checkpointing, verification).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use acgs_store::{DecisionLog, LogConfig, open};
//! let store = open("sqlite:///var/lib/acgs/acgs.db", &Default::default()).await?;
//! let log = DecisionLog::start(store.clone(), LogConfig::default());
//! // log.append(record).await? returns the record's audit sequence number once it is committed.
//! log.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The server depends only on [`DecisionStore`]; [`open`] picks the backend from the URL once.
#![deny(missing_docs)]

mod auth;
mod constitutions;
mod error;
mod event;
mod index;
mod integrity;
mod log;
mod postgres;
mod record;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use acgs_audit::{NodeId, NodeMap};
pub use auth::{
    ApiKeyRecord, AuthStore, FailureCount, RefreshOutcome, RefreshTokenRecord, SecurityEvent, SessionRecord,
    SigningKeyRecord, UserRecord,
};
pub use constitutions::{ConstitutionStore, ConstitutionVersion, NewConstitutionVersion};
pub use error::{IndexMismatch, IndexProblem, IntegrityError, LogError, StoreError};
pub use event::{AuditEntry, DECISION_EVENT_KIND, SECURITY_EVENT_KIND};
pub use integrity::{Checkpointer, consistency_proof, inclusion_proof, tree_root, verify_store};
pub use log::{DecisionLog, LogConfig};
pub use postgres::PostgresStore;
pub use record::{DEFAULT_LIST_LIMIT, DecisionQuery, DecisionRecord, MAX_LIST_LIMIT, PruneOutcome, StoredCheckpoint};
pub use sqlite::{PROBE_MIN_FREE_BYTES, SqliteStore, SqliteSync};

/// Storage of the audit log and its decision index. Implemented by [`SqliteStore`] and [`PostgresStore`];
/// both pass the same conformance suite (`tests/store_conformance.rs`).
#[async_trait]
pub trait DecisionStore: Send + Sync + std::fmt::Debug {
    /// Commit `records` in one transaction as decision events: each gets the next gap-free sequence number
    /// (written into the records), becomes a leaf of the tree (with the tree nodes it completes) and a row of
    /// the decision index. Either all are stored or none.
    async fn append(&self, records: &mut [DecisionRecord]) -> Result<(), StoreError>;
    /// One decision by id, as its audit event holds it. Fails with [`StoreError::IndexMismatch`] when the index
    /// row disagrees with its event (or the event no longer hashes to its leaf hash).
    async fn get(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError>;
    /// Decisions matching `query`, newest first, as their audit events hold them. The filters are evaluated over
    /// the index; any returned row that disagrees with its event fails the whole read with
    /// [`StoreError::IndexMismatch`].
    async fn list(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError>;
    /// Rows of the decision index as stored, not checked against their events: those with `seq > after_seq`,
    /// ascending, at most `limit`, without bodies. For [`verify_store`], which checks them; readers use
    /// [`DecisionStore::get`] and [`DecisionStore::list`]. Every decision event in the log when the call starts
    /// has its row by then (SQLite first writes the rows another process may still hold in memory).
    async fn decision_index(&self, after_seq: i64, limit: u32) -> Result<Vec<DecisionRecord>, StoreError>;
    /// Number of stored decisions.
    async fn count(&self) -> Result<i64, StoreError>;
    /// Highest assigned audit sequence number, i.e. the tree size (0 when empty).
    async fn last_seq(&self) -> Result<i64, StoreError>;
    /// Audit entries with `seq >= from_seq`, ascending, at most `limit`.
    async fn audit_entries(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    /// The stored tree nodes among `ids` (level 0 = leaf hashes); absent ones are left out.
    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<NodeMap, StoreError>;
    /// Keep a signed checkpoint (a second one for the same size is ignored).
    async fn add_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;
    /// Checkpoints with `tree_size > after_size`, ascending, at most `limit`.
    async fn checkpoints(&self, after_size: i64, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError>;
    /// The checkpoint with the largest tree size.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// Remove the bodies of events recorded before `older_than_us` (the longest such prefix of the log) and
    /// their decision-index rows, keeping leaf hashes and tree nodes, and append an `audit.pruned` record; all
    /// in one transaction. `None` when there was nothing to prune.
    async fn prune(&self, older_than_us: i64, now_us: i64) -> Result<Option<PruneOutcome>, StoreError>;
    /// Check that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Check that an event could be appended now, without appending one: insert a row into the audit log
    /// (PostgreSQL: and the decision index) in a transaction that is rolled back; SQLite also requires
    /// [`PROBE_MIN_FREE_BYTES`] free on the database's filesystem (a rolled-back insert need not reach the
    /// disk). Used for readiness after a commit failed.
    async fn probe_write(&self) -> Result<(), StoreError>;
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// A synchronous way to commit batches, for stores whose writes are cheapest from a thread of their own
    /// (SQLite: its one writing connection). [`DecisionLog`] then runs its writer on such a thread; otherwise
    /// (PostgreSQL) it runs as an async task calling [`DecisionStore::append`].
    fn blocking_appender(&self) -> Option<Box<dyn BlockingAppend>> {
        None
    }
}

/// Commits batches of decision records like [`DecisionStore::append`], blocking the calling thread (the
/// group-commit writer's own thread).
pub trait BlockingAppend: Send {
    /// Commit `records` in one transaction; each gets its sequence number.
    fn append(&mut self, records: &mut [DecisionRecord]) -> Result<(), StoreError>;
    /// Housekeeping after a batch was committed and its callers answered (SQLite: rewinding the write-ahead log).
    fn after_commit(&mut self) {}
    /// No decisions are queued after a commit: time for work that can wait (SQLite: writing the derived data
    /// it holds in memory).
    fn idle(&mut self) {}
    /// Before the writer stops (SQLite: writing the derived data it still holds).
    fn finish(&mut self) {}
}

/// Everything ACGS keeps: the audit log with its decision index ([`DecisionStore`]), who may use the API
/// ([`AuthStore`]) and the constitution versions ([`ConstitutionStore`]). Both backends implement it; an
/// `Arc<dyn Store>` coerces to each trait object.
pub trait Store: DecisionStore + AuthStore + ConstitutionStore {}

impl<T: DecisionStore + AuthStore + ConstitutionStore + ?Sized> Store for T {}

/// Options for opening a store.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// SQLite durability level (ignored for PostgreSQL).
    pub sqlite_sync: SqliteSync,
    /// Maximum pool connections (0 = backend default).
    pub max_connections: u32,
}

/// Open (and migrate) the store named by `url`: `sqlite://PATH` (file created if missing) or
/// `postgres://...` / `postgresql://...`.
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Page size used when reading the log in order.
pub(crate) const ENTRY_PAGE: u32 = 10_000;

/// Push the WHERE clause and ORDER/LIMIT of a list query after `index::select_decisions` (shared SQL,
/// backend-specific binds).
pub(crate) fn push_list_query<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, query: &'a DecisionQuery)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" WHERE 1 = 1");
    let text_filters = [
        ("outcome", &query.outcome),
        ("principal_type", &query.principal_type),
        ("principal_id", &query.principal_id),
        ("action", &query.action),
    ];
    for (column, value) in text_filters {
        if let Some(v) = value {
            qb.push(format!(" AND d.{column} = ")).push_bind(v.clone());
        }
    }
    if let Some(before) = query.before_seq {
        qb.push(" AND d.seq < ").push_bind(before);
    }
    if let Some(since) = query.since_us {
        qb.push(" AND d.recorded_at_us >= ").push_bind(since);
    }
    qb.push(" ORDER BY d.seq DESC LIMIT ")
        .push_bind(query.effective_limit());
}

/// 32 stored bytes as a hash.
pub(crate) fn hash_from(bytes: &[u8], what: &str) -> Result<acgs_audit::Hash, StoreError> {
    acgs_audit::Hash::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

/// Node rows `(level, idx, hash)` as a map.
pub(crate) fn node_map(rows: Vec<(i64, i64, Vec<u8>)>) -> Result<NodeMap, StoreError> {
    let mut nodes = Vec::with_capacity(rows.len());
    for (level, index, hash) in rows {
        let id = NodeId {
            level: u8::try_from(level).map_err(|_| StoreError::Corrupt(format!("node level {level}")))?,
            index: u64::try_from(index).map_err(|_| StoreError::Corrupt(format!("node index {index}")))?,
        };
        nodes.push((id, hash_from(&hash, "a tree node")?));
    }
    Ok(NodeMap::new(nodes))
}

/// The frontier of the stored tree of `size` leaves, whose nodes `ids` were fetched into `stored`.
pub(crate) fn frontier_from(size: i64, ids: &[NodeId], stored: &NodeMap) -> Result<acgs_audit::Frontier, StoreError> {
    use acgs_audit::SubtreeSource as _;
    let hashes = ids
        .iter()
        .map(|id| stored.subtree_root(id.index << id.level, (id.index + 1) << id.level))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    acgs_audit::Frontier::from_hashes(size as u64, &hashes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An `audit_log` row as an entry.
pub(crate) fn entry_from_row(row: (i64, String, i64, Vec<u8>, Option<String>)) -> Result<AuditEntry, StoreError> {
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
pub(crate) fn checkpoint_from_row(row: (i64, Vec<u8>, i64, String)) -> Result<StoredCheckpoint, StoreError> {
    let (tree_size, root, signed_at_us, note) = row;
    Ok(StoredCheckpoint {
        tree_size,
        root: hash_from(&root, "a checkpoint root")?,
        signed_at_us,
        note,
    })
}
