//! The PostgreSQL backend, for deployments with several stateless replicas sharing one database.

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};

use crate::{COLUMNS, DecisionQuery, DecisionRecord, DecisionStore, StoreError, StoreOptions, push_list_query};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Insert a batch given as one array per column.
const INSERT_FROM_ARRAYS: &str = "INSERT INTO decisions (seq, decision_id, recorded_at_us, principal_type, \
     principal_id, action, resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, \
     constitution_version, evaluated_in_us, body) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
     $8::text[], $9::text[], $10::text[], $11::boolean[], $12::text[], $13::text[], $14::bigint[], $15::text[])";

/// Advisory lock key serialising sequence assignment across replicas ("ACGS-SEQ" in ASCII).
const SEQUENCER_LOCK: i64 = 0x4143_4753_2d53_4551;

/// Decision store in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect and migrate.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let max = if options.max_connections == 0 {
            8
        } else {
            options.max_connections
        };
        let pool = PgPoolOptions::new().max_connections(max).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl DecisionStore for PostgresStore {
    async fn append(&self, records: &mut [DecisionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // One sequencer at a time, across every replica: gap-free sequence numbers.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .execute(&mut *tx)
            .await?;
        let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM decisions")
            .fetch_one(&mut *tx)
            .await?;
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = last + 1 + i as i64;
        }
        // One constant statement whatever the batch size: columns travel as arrays.
        let column = |f: fn(&DecisionRecord) -> &str| records.iter().map(f).collect::<Vec<&str>>();
        sqlx::query(INSERT_FROM_ARRAYS)
            .bind(records.iter().map(|r| r.seq).collect::<Vec<i64>>())
            .bind(column(|r| &r.decision_id))
            .bind(records.iter().map(|r| r.recorded_at_us).collect::<Vec<i64>>())
            .bind(column(|r| &r.principal_type))
            .bind(column(|r| &r.principal_id))
            .bind(column(|r| &r.action))
            .bind(column(|r| &r.resource_type))
            .bind(column(|r| &r.resource_id))
            .bind(column(|r| &r.outcome))
            .bind(column(|r| &r.effective_outcome))
            .bind(records.iter().map(|r| r.shadow).collect::<Vec<bool>>())
            .bind(column(|r| &r.constitutional_hash))
            .bind(column(|r| &r.constitution_version))
            .bind(records.iter().map(|r| r.evaluated_in_us).collect::<Vec<i64>>())
            .bind(column(|r| &r.body))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM decisions WHERE decision_id = $1"))
                .bind(decision_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM decisions"));
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
        "postgres"
    }
}
