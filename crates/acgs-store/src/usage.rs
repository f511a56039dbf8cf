//! Usage the constitution's counters read: per counter key (a counter and a principal or resource), the amounts
//! of the allowed decisions at their times. A decision that reads counters runs inside a [`UsageSession`] holding
//! its keys: it reads the totals over the windows, is decided, records its usage if allowed, and finishes (the
//! usage durable) before the next decision on those keys starts, so two decisions can never both pass a limit
//! that only one of them fits.
//!
//! The keys are held by the session: on PostgreSQL by transaction-scoped advisory locks, so that replicas
//! sharing the database are ordered too; on SQLite (one server per file) by locks in this process. The SQL both
//! run is written once here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::StoreError;
use crate::sql::{Dialect, Sql};

/// The total of key `?` after time `?` (`SUM` of a PostgreSQL `BIGINT` is a `NUMERIC`: cast back).
static TOTAL: Sql =
    Sql::new("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM usage_events WHERE key = ? AND at_us > ?");

/// Record `(key, at_us, amount)`.
static RECORD: Sql = Sql::new("INSERT INTO usage_events (key, at_us, amount) VALUES (?, ?, ?)");

/// Forget key `?`'s usage at or before time `?` (outside every window that reads it).
static FORGET: Sql = Sql::new("DELETE FROM usage_events WHERE key = ? AND at_us <= ?");

/// The advisory-lock class of usage keys (`ACGU`); the key's hash is the lock's second half.
const USAGE_LOCK_CLASS: i32 = 0x4143_4755;

/// Where counters' usage is kept.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Hold `keys` (any order; each at most once) until the returned session finishes or is dropped, waiting for
    /// any other session holding one of them.
    async fn usage_session(&self, keys: &[String]) -> Result<Box<dyn UsageSession>, StoreError>;
}

/// One decision's use of the counters: totals read and usage recorded while its keys are held.
#[async_trait]
pub trait UsageSession: Send {
    /// The total amount recorded for `key` after `since_us`.
    async fn total(&mut self, key: &str, since_us: i64) -> Result<i64, StoreError>;
    /// Record `amount` for `key` at `at_us`, and forget what is at or before `forget_us` (outside the window).
    async fn record(&mut self, key: &str, at_us: i64, amount: i64, forget_us: i64) -> Result<(), StoreError>;
    /// Make what was recorded durable and let the keys go. Dropping a session instead records nothing.
    async fn finish(self: Box<Self>) -> Result<(), StoreError>;
}

/// Sorted and deduplicated: sessions take their keys in one order, so two never wait for each other.
fn ordered(keys: &[String]) -> Vec<String> {
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    keys
}

/// The per-key locks of one process (SQLite's sessions).
#[derive(Debug, Default, Clone)]
pub(crate) struct KeyLocks {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl KeyLocks {
    /// Wait for and hold every one of `keys` (sorted).
    async fn hold(&self, keys: &[String]) -> Vec<(String, tokio::sync::OwnedMutexGuard<()>)> {
        let mut held = Vec::with_capacity(keys.len());
        for key in keys {
            let lock = {
                let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                locks.entry(key.clone()).or_default().clone()
            };
            held.push((key.clone(), lock.lock_owned().await));
        }
        held
    }

    /// Forget the locks nobody holds or waits for.
    fn release(&self, held: Vec<(String, tokio::sync::OwnedMutexGuard<()>)>) {
        let keys: Vec<String> = held.iter().map(|(k, _)| k.clone()).collect();
        drop(held);
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in keys {
            if locks.get(&key).is_some_and(|l| Arc::strong_count(l) == 1) {
                locks.remove(&key);
            }
        }
    }
}

/// A session on SQLite: the keys held in this process, the reads and writes in one transaction of the pool.
struct SqliteSession {
    locks: KeyLocks,
    held: Vec<(String, tokio::sync::OwnedMutexGuard<()>)>,
    pool: sqlx::SqlitePool,
    writes: Vec<(String, i64, i64, i64)>,
}

#[async_trait]
impl UsageSession for SqliteSession {
    async fn total(&mut self, key: &str, since_us: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(Sqlite::sql(&TOTAL))
            .bind(key)
            .bind(since_us)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn record(&mut self, key: &str, at_us: i64, amount: i64, forget_us: i64) -> Result<(), StoreError> {
        self.writes.push((key.to_owned(), at_us, amount, forget_us));
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        if !self.writes.is_empty() {
            // One write transaction for the decision's usage (taking SQLite's write lock at its first statement).
            let mut tx = self.pool.begin().await?;
            for (key, at_us, amount, forget_us) in &self.writes {
                sqlx::query(Sqlite::sql(&FORGET))
                    .bind(key)
                    .bind(forget_us)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(Sqlite::sql(&RECORD))
                    .bind(key)
                    .bind(at_us)
                    .bind(amount)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        let held = std::mem::take(&mut self.held);
        self.locks.release(held);
        Ok(())
    }
}

impl Drop for SqliteSession {
    fn drop(&mut self) {
        if !self.held.is_empty() {
            self.locks.release(std::mem::take(&mut self.held));
        }
    }
}

#[async_trait]
impl UsageStore for crate::SqliteStore {
    async fn usage_session(&self, keys: &[String]) -> Result<Box<dyn UsageSession>, StoreError> {
        let locks = self.usage_locks.clone();
        let held = locks.hold(&ordered(keys)).await;
        Ok(Box::new(SqliteSession {
            locks,
            held,
            pool: self.pool.clone(),
            writes: Vec::new(),
        }))
    }
}

/// A session on PostgreSQL: one transaction holding an advisory lock per key, taken in key order.
struct PostgresSession {
    tx: Transaction<'static, Postgres>,
}

#[async_trait]
impl UsageSession for PostgresSession {
    async fn total(&mut self, key: &str, since_us: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(Postgres::sql(&TOTAL))
            .bind(key)
            .bind(since_us)
            .fetch_one(&mut *self.tx)
            .await?)
    }

    async fn record(&mut self, key: &str, at_us: i64, amount: i64, forget_us: i64) -> Result<(), StoreError> {
        sqlx::query(Postgres::sql(&FORGET))
            .bind(key)
            .bind(forget_us)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(Postgres::sql(&RECORD))
            .bind(key)
            .bind(at_us)
            .bind(amount)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl UsageStore for crate::PostgresStore {
    async fn usage_session(&self, keys: &[String]) -> Result<Box<dyn UsageSession>, StoreError> {
        let mut tx = self.pool.begin().await?;
        for key in ordered(keys) {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(USAGE_LOCK_CLASS)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        Ok(Box::new(PostgresSession { tx }))
    }
}
