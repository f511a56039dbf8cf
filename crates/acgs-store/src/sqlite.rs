//! The embedded SQLite backend (default): one file under the data directory, WAL journal.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite};

use crate::{COLUMNS, DecisionQuery, DecisionRecord, DecisionStore, StoreError, StoreOptions, push_list_query};

/// Insert a batch given as a JSON array of row arrays (see [`row_json`]), in array order.
const INSERT_FROM_JSON: &str = "INSERT INTO decisions (decision_id, recorded_at_us, principal_type, principal_id, \
     action, resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, \
     constitution_version, evaluated_in_us, body) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
     value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12, value ->> 13 \
     FROM json_each(?1) ORDER BY key";

/// One row for [`INSERT_FROM_JSON`], columns in its order.
fn row_json(r: &DecisionRecord) -> serde_json::Value {
    serde_json::json!([
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
        r.body,
    ])
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
        Ok(Self { pool, writer })
    }
}

#[async_trait]
impl DecisionStore for SqliteStore {
    async fn append(&self, records: &mut [DecisionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // The batch travels as one JSON array bound to one constant statement: one round trip to the
        // database thread and one cached prepared statement whatever the batch size (a multi-row VALUES
        // list would be a new statement to prepare for every batch size).
        //
        // `seq` is the table's INTEGER PRIMARY KEY, i.e. the rowid: SQLite gives each inserted row
        // MAX(rowid) + 1 under the write lock, so the single INSERT assigns a contiguous, gap-free range
        // in array order and is atomic on its own.
        let rows = serde_json::to_string(&records.iter().map(row_json).collect::<Vec<_>>())
            .map_err(|e| StoreError::Encode(e.to_string()))?;
        let last_rowid = sqlx::query(INSERT_FROM_JSON)
            .bind(rows)
            .execute(&self.writer)
            .await?
            .last_insert_rowid();
        let first = last_rowid - records.len() as i64 + 1;
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = first + i as i64;
        }
        Ok(())
    }

    async fn get(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM decisions WHERE decision_id = ?"))
                .bind(decision_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM decisions"));
        push_list_query(&mut qb, query);
        Ok(qb.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM decisions")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
