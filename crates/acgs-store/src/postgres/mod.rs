//! The PostgreSQL backend, for deployments with several stateless replicas sharing one database: the
//! [`PostgresStore`] and its [`DecisionStore`]. Appends (decisions, security events, the prune record,
//! governance commits' events) go through the [`sequencer`]; the reads are the shared ones of [`crate::queries`].

mod governance;
mod nodes;
mod sequencer;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};

use acgs_audit::{Frontier, NodeId, NodeMap};

use crate::event::NewEvent;
use crate::queries::{INSERT_CHECKPOINT, LogReads, PRUNE_EVENTS, PRUNE_INDEX, PRUNE_THROUGH};
use crate::sql::Dialect;
use crate::{
    AuditEntry, DecisionQuery, DecisionRecord, DecisionStore, PruneOutcome, StoreError, StoreOptions, StoredCheckpoint,
};
use sequencer::{append_after, append_events, begin_sequencing};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The decision-index row a write probe inserts besides the audit-log row (and rolls back): on PostgreSQL a
/// decision commit writes both.
const PROBE_DECISION: &str = "INSERT INTO decisions (seq, decision_id, recorded_at_us, principal_type, principal_id, \
     action, resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, \
     constitution_version, evaluated_in_us) \
     VALUES (-1, 'readiness.probe', 0, '', '', '', '', '', 'deny', 'deny', false, '', '', 0)";

/// Decision store in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    /// The tree's right edge after this process's last committed append, taken by the next append (which
    /// checks, under the sequencer lock, that the log still ends there) and put back by its commit.
    frontier: Arc<Mutex<Option<Frontier>>>,
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
        Ok(Self {
            pool,
            frontier: Arc::default(),
        })
    }

    /// The right edge the last commit left, if no other append has taken it.
    fn take_frontier(&self) -> Option<Frontier> {
        self.frontier.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Keep the right edge a commit left, for the next append.
    fn keep_frontier(&self, frontier: Frontier) {
        *self.frontier.lock().unwrap_or_else(|e| e.into_inner()) = Some(frontier);
    }
}

#[async_trait]
impl DecisionStore for PostgresStore {
    async fn append_events(&self, events: &[NewEvent]) -> Result<i64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        // One sequencer at a time, across every replica: gap-free sequence numbers and one tree.
        // From where this replica's last commit left the log's end: one round trip, which commits.
        let appended = match self.take_frontier() {
            Some(frontier) => append_after(&self.pool, events, frontier).await?,
            None => None,
        };
        // Otherwise (another replica appended since, or this is the first append) read the tree's right edge.
        let (entries, frontier) = match appended {
            Some(appended) => appended,
            None => {
                let mut tx = self.pool.begin_with(begin_sequencing()).await?;
                let appended = append_events(&mut tx, events, None).await?;
                tx.commit().await?;
                appended
            }
        };
        self.keep_frontier(frontier);
        entries
            .first()
            .map(|e| e.seq)
            .ok_or_else(|| StoreError::Corrupt("an appended event got no sequence number".into()))
    }

    async fn get(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        self.pool.decision(decision_id).await
    }

    async fn list(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        self.pool.decisions(query).await
    }

    async fn decision_index(&self, after_seq: i64, limit: u32) -> Result<Vec<DecisionRecord>, StoreError> {
        self.pool.index_rows(after_seq, limit).await
    }

    async fn count(&self) -> Result<i64, StoreError> {
        self.pool.count_decisions().await
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        self.pool.last_seq().await
    }

    async fn audit_entries(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.pool.audit_entries(from_seq, limit).await
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<NodeMap, StoreError> {
        let mut conn = self.pool.acquire().await?;
        nodes::select_nodes(&mut conn, ids).await
    }

    async fn add_checkpoint(&self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        sqlx::query(Postgres::sql(&INSERT_CHECKPOINT))
            .bind(c.tree_size)
            .bind(c.root.as_slice())
            .bind(c.signed_at_us)
            .bind(&c.note)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn checkpoints(&self, after_size: i64, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.pool.checkpoints(after_size, limit).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.pool.latest_checkpoint().await
    }

    async fn prune(&self, older_than_us: i64, now_us: i64) -> Result<Option<PruneOutcome>, StoreError> {
        let mut tx = self.pool.begin_with(begin_sequencing()).await?;
        let (through_seq, already): (i64, i64) = sqlx::query_as(Postgres::sql(&PRUNE_THROUGH))
            .bind(older_than_us)
            .fetch_one(&mut *tx)
            .await?;
        if through_seq <= already {
            return Ok(None);
        }
        let pruned = sqlx::query(Postgres::sql(&PRUNE_EVENTS))
            .bind(through_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(Postgres::sql(&PRUNE_INDEX))
            .bind(through_seq)
            .execute(&mut *tx)
            .await?;
        let record = NewEvent::pruned(through_seq, older_than_us, now_us);
        let (entries, frontier) = append_events(&mut tx, std::slice::from_ref(&record), self.take_frontier()).await?;
        tx.commit().await?;
        self.keep_frontier(frontier);
        Ok(Some(PruneOutcome {
            through_seq,
            events_pruned: pruned as i64,
            record_seq: entries[0].seq,
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.ping().await
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        self.pool.probe_write(&[PROBE_DECISION]).await
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
