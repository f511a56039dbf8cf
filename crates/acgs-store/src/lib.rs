//! The durable decision log of ACGS: one storage trait, SQLite and PostgreSQL backends, and the
//! group-commit writer that makes every answered decision durable before the answer is sent.
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

mod error;
mod log;
mod postgres;
mod record;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use error::{LogError, StoreError};
pub use log::{DecisionLog, LogConfig};
pub use postgres::PostgresStore;
pub use record::{DEFAULT_LIST_LIMIT, DecisionQuery, DecisionRecord, MAX_LIST_LIMIT};
pub use sqlite::{SqliteStore, SqliteSync};

/// Storage of decision records. Implemented by [`SqliteStore`] and [`PostgresStore`]; both pass the
/// same conformance suite (`tests/store_conformance.rs`).
#[async_trait]
pub trait DecisionStore: Send + Sync + std::fmt::Debug {
    /// Commit `records` in one transaction, assigning each the next gap-free sequence number (written
    /// into the records). Either all are stored or none.
    async fn append(&self, records: &mut [DecisionRecord]) -> Result<(), StoreError>;
    /// One decision by id.
    async fn get(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError>;
    /// Decisions matching `query`, newest first.
    async fn list(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError>;
    /// Number of stored decisions.
    async fn count(&self) -> Result<i64, StoreError>;
    /// Highest assigned sequence number (0 when empty).
    async fn last_seq(&self) -> Result<i64, StoreError>;
    /// Check that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
}

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
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn DecisionStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Columns of the `decisions` table in insertion order (shared by both backends).
pub(crate) const COLUMNS: &str = "seq, decision_id, recorded_at_us, principal_type, principal_id, action, \
     resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, \
     constitution_version, evaluated_in_us, body";

/// Push the WHERE clause and ORDER/LIMIT of a list query (shared SQL, backend-specific binds).
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
            qb.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    }
    if let Some(before) = query.before_seq {
        qb.push(" AND seq < ").push_bind(before);
    }
    if let Some(since) = query.since_us {
        qb.push(" AND recorded_at_us >= ").push_bind(since);
    }
    qb.push(" ORDER BY seq DESC LIMIT ").push_bind(query.effective_limit());
}
