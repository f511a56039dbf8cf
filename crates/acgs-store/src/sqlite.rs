//! The embedded SQLite backend (default): one file under the data directory, WAL journal.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite};

use crate::{
    COLUMNS, DecisionQuery, DecisionRecord, DecisionStore, StoreError, StoreOptions, push_insert, push_list_query,
};

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
    pool: SqlitePool,
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
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl DecisionStore for SqliteStore {
    async fn append(&self, records: &mut [DecisionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        // IMMEDIATE takes the write lock up front, so reading MAX(seq) and inserting are atomic.
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let result = async {
            let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM decisions")
                .fetch_one(&mut *conn)
                .await?;
            for (i, r) in records.iter_mut().enumerate() {
                r.seq = last + 1 + i as i64;
            }
            // SQLite limits bound parameters per statement; 15 columns x 2000 rows stays below 32766.
            for chunk in records.chunks(2000) {
                let mut qb = QueryBuilder::<Sqlite>::new("");
                push_insert(&mut qb, chunk);
                qb.build().execute(&mut *conn).await?;
            }
            Ok::<(), sqlx::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(e.into())
            }
        }
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
