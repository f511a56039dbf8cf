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
//!
//! Layout: each backend in a folder of its own (`sqlite/`, `postgres/`) holding only what differs between them
//! (how they append, how they keep tree nodes, SQLite's writing connection and checkpointer); the SQL both run is
//! written once outside them (`sql.rs`, `queries.rs`, `auth/sql.rs`, `constitutions.rs`, `governance.rs`). The
//! backends use the shared modules, never each other.
#![deny(missing_docs)]

mod auth;
mod constitutions;
mod error;
mod event;
mod governance;
mod index;
mod integrity;
mod log;
mod postgres;
mod queries;
mod record;
mod sql;
mod sqlite;
mod tree;
mod usage;

use std::sync::Arc;

use async_trait::async_trait;

/// An entity named by type and id (what an account or API key is bound to).
pub use acgs_audit::event::EntityName;
use acgs_audit::{NodeId, NodeMap};
pub use auth::{
    ApiKeyRecord, AuthStore, FailureCount, RefreshOutcome, RefreshTokenRecord, SecurityEvent, SessionRecord,
    SigningKeyRecord, UserRecord,
};
pub use constitutions::{ConstitutionStore, ConstitutionVersion, NewConstitutionVersion};
pub use error::{IndexMismatch, IndexProblem, IntegrityError, LogError, StoreError};
pub use event::{AuditEntry, DECISION_EVENT_KIND, NewEvent, SECURITY_EVENT_KIND};
pub use governance::{
    GovernanceCommit, GovernanceCommitted, GovernanceRecord, GovernanceStore, RecordChange, RecordQuery, RecordWatch,
    RecordWrite,
};
pub use integrity::{Checkpointer, consistency_proof, inclusion_proof, tree_root, verify_store};
pub use log::{DecisionLog, LogConfig};
pub use postgres::PostgresStore;
pub use record::{DEFAULT_LIST_LIMIT, DecisionQuery, DecisionRecord, MAX_LIST_LIMIT, PruneOutcome, StoredCheckpoint};
pub use sqlite::{PROBE_MIN_FREE_BYTES, SqliteStore, SqliteSync};
pub use usage::{UsageSession, UsageStore};

/// Storage of the audit log and its decision index. Implemented by [`SqliteStore`] and [`PostgresStore`];
/// both pass the same conformance suite (`tests/store_conformance.rs`).
#[async_trait]
pub trait DecisionStore: Send + Sync + std::fmt::Debug {
    /// Commit `events` in one transaction at the end of the log: each gets the next gap-free sequence number,
    /// becomes a leaf of the tree (written by `acgs_audit::leaf_json`; with the tree nodes it completes) and, if
    /// it is a decision, a row of the decision index. Either all are stored or none. Returns the sequence number
    /// of the first (the others follow it; 0 when `events` is empty). Every kind of event is appended here: the
    /// group-commit writer's decisions, security events, and the kinds later capabilities add.
    async fn append_events(&self, events: &[NewEvent]) -> Result<i64, StoreError>;
    /// Commit `records` as decision events with [`DecisionStore::append_events`], writing each one's sequence
    /// number into it.
    async fn append(&self, records: &mut [DecisionRecord]) -> Result<(), StoreError> {
        let first = self.append_events(&decision_events(records)?).await?;
        number(records, first);
        Ok(())
    }
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

/// Commits batches of events like [`DecisionStore::append_events`], blocking the calling thread (the
/// group-commit writer's own thread).
pub trait BlockingAppend: Send {
    /// Commit `events` in one transaction; returns the first one's sequence number (0 when there are none).
    fn append_events(&mut self, events: &[NewEvent]) -> Result<i64, StoreError>;
    /// Commit `records` as decision events; each gets its sequence number.
    fn append(&mut self, records: &mut [DecisionRecord]) -> Result<(), StoreError> {
        let first = self.append_events(&decision_events(records)?)?;
        number(records, first);
        Ok(())
    }
    /// Housekeeping after a batch was committed and its callers answered (SQLite: rewinding the write-ahead log).
    fn after_commit(&mut self) {}
    /// No decisions are queued after a commit: time for work that can wait (SQLite: writing the derived data
    /// it holds in memory).
    fn idle(&mut self) {}
    /// Before the writer stops (SQLite: writing the derived data it still holds).
    fn finish(&mut self) {}
}

/// `records` as the decision events to append.
fn decision_events(records: &[DecisionRecord]) -> Result<Vec<NewEvent>, StoreError> {
    records.iter().cloned().map(NewEvent::decision).collect()
}

/// Give `records`, appended as consecutive events from `first` on, their sequence numbers.
fn number(records: &mut [DecisionRecord], first: i64) {
    for (seq, record) in (first..).zip(records.iter_mut()) {
        record.seq = seq;
    }
}

/// Everything ACGS keeps: the audit log with its decision index ([`DecisionStore`]), who may use the API
/// ([`AuthStore`]), the constitution versions ([`ConstitutionStore`]) and the governed objects
/// ([`GovernanceStore`]) and the counters' usage ([`UsageStore`]). Both backends implement it; an `Arc<dyn Store>` coerces to each trait object.
pub trait Store: DecisionStore + AuthStore + ConstitutionStore + GovernanceStore + UsageStore {}

impl<T: DecisionStore + AuthStore + ConstitutionStore + GovernanceStore + UsageStore + ?Sized> Store for T {}

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
