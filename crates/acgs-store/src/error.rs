//! Storage errors.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not understood.
    #[error("unsupported database url `{0}` (expected sqlite://PATH or postgres://...)")]
    UnsupportedUrl(String),
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite's writing connection reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A record with the same unique key exists.
    #[error("{0}")]
    Conflict(String),
    /// A record the decision index cannot hold (e.g. an outcome other than allow, deny or escalate).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A batch could not be encoded for the database.
    #[error("cannot encode a batch: {0}")]
    Encode(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The stored tree does not fit together (a node the next append needs is missing).
    #[error("audit log tree is inconsistent: {0}")]
    Corrupt(String),
    /// Pages copied into the SQLite database file could not be flushed to disk. Whether they reached the disk is
    /// unknown (after a failed flush the kernel may drop them), so the store refuses writes until the server is
    /// restarted: opening the database again copies them from the write-ahead log, which still holds them.
    #[error("the database file could not be flushed to disk ({0}); writes are refused until the server restarts")]
    FlushFailed(String),
    /// The decision index disagrees with the signed audit event it indexes: someone changed the database. Reads
    /// fail closed rather than show a decision the audit log does not hold.
    #[error(transparent)]
    IndexMismatch(#[from] IndexMismatch),
    /// Could not create the data directory.
    #[error("cannot create data directory `{path}`: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database's filesystem has too little free space for a write.
    #[error("the filesystem of `{path}` has {free} bytes free; writes need at least {needed}")]
    StorageFull {
        /// The database's directory.
        path: String,
        /// Bytes free for an unprivileged writer.
        free: u64,
        /// Bytes required.
        needed: u64,
    },
    /// The database's filesystem could not be inspected.
    #[error("cannot read the free space of `{path}`: {source}")]
    Filesystem {
        /// The database's directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A database error as a [`StoreError`], with unique-key violations as [`StoreError::Conflict`] (`what` names
/// the record, e.g. "user `alice`").
pub(crate) fn conflict_or(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!("{what} exists already")),
        _ => StoreError::Database(e),
    }
}

/// Why appending to the decision log failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The writer queue is full: the server is overloaded (maps to 503 with Retry-After).
    #[error("decision log queue is full")]
    Overloaded,
    /// The log is shutting down or its writer stopped.
    #[error("decision log is closed")]
    Closed,
    /// The batch containing this record could not be committed.
    #[error("decision log write failed: {0}")]
    WriteFailed(String),
}

/// Why a log operation over the store (proof, checkpoint, verification) failed.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request does not fit the log (e.g. a size larger than the tree).
    #[error(transparent)]
    Proof(#[from] acgs_audit::ProofError),
    /// The log failed verification.
    #[error("verification failed: {0}")]
    Verify(#[from] acgs_audit::VerifyFailure),
    /// The log verified up to here, but the decision index disagrees with it.
    #[error("verification failed: {0}")]
    Index(IndexMismatch),
}

/// A row of the decision index (or its absence) that disagrees with the audit event at its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decision index does not match its audit event at seq {seq} (decision `{decision_id}`): {problem}")]
pub struct IndexMismatch {
    /// The sequence number of the index row or of the event.
    pub seq: i64,
    /// The decision id, from the index row (from the event when there is no row).
    pub decision_id: String,
    /// What disagrees.
    pub problem: IndexProblem,
}

/// How an index row disagrees with its event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexProblem {
    /// A column holds another value than the event.
    #[error("column `{column}` holds `{indexed}`, the event `{logged}`")]
    Column {
        /// The column's name.
        column: &'static str,
        /// Its value in the index.
        indexed: String,
        /// The value in the event.
        logged: String,
    },
    /// No audit log entry has the row's sequence number.
    #[error("no audit event has that sequence number")]
    NoEvent,
    /// The event's body was pruned, but its index row was kept (a prune removes both).
    #[error("the event was pruned but its index row was kept")]
    Pruned,
    /// The event's bytes do not hash to the entry's stored leaf hash: the event was changed.
    #[error("the event does not hash to its leaf hash")]
    EventModified,
    /// The event is not a decision event (or cannot be read as one).
    #[error("the event is not a decision: {0}")]
    NotADecision(String),
    /// The event is a decision but the index has no row for it.
    #[error("the decision has no index row")]
    NoIndexRow,
}
