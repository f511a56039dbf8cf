//! The PostgreSQL backend, for deployments with several stateless replicas sharing one database.

mod nodes;
mod sequencer;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};

use acgs_audit::{Frontier, NodeId, NodeMap};

use crate::event::PendingEvent;
use crate::index::{DecisionRow, IndexRow};
use crate::{
    AuditEntry, DecisionQuery, DecisionRecord, DecisionStore, PruneOutcome, StoreError, StoreOptions, StoredCheckpoint,
    push_list_query,
};
use sequencer::{append_after, append_events, begin_sequencing};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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

    /// Append one security event to the audit log, in its own transaction under the sequencer lock.
    pub(crate) async fn append_security_event(&self, event: &crate::SecurityEvent) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with(begin_sequencing()).await?;
        let (entries, frontier) =
            append_events(&mut tx, &[PendingEvent::Security(event)], self.take_frontier()).await?;
        tx.commit().await?;
        self.keep_frontier(frontier);
        entries
            .first()
            .map(|e| e.seq)
            .ok_or_else(|| StoreError::Corrupt("an appended event got no sequence number".into()))
    }
}

#[async_trait]
impl DecisionStore for PostgresStore {
    async fn append(&self, records: &mut [DecisionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // One sequencer at a time, across every replica: gap-free sequence numbers and one tree.
        let events: Vec<PendingEvent<'_>> = records.iter().map(PendingEvent::Decision).collect();
        // From where this replica's last commit left the log's end: one round trip, which commits.
        let appended = match self.take_frontier() {
            Some(frontier) => append_after(&self.pool, &events, frontier).await?,
            None => None,
        };
        // Otherwise (another replica appended since, or this is the first append) read the tree's right edge.
        let (entries, frontier) = match appended {
            Some(appended) => appended,
            None => {
                let mut tx = self.pool.begin_with(begin_sequencing()).await?;
                let appended = append_events(&mut tx, &events, None).await?;
                tx.commit().await?;
                appended
            }
        };
        self.keep_frontier(frontier);
        for (r, e) in records.iter_mut().zip(entries) {
            r.seq = e.seq;
        }
        Ok(())
    }

    async fn get(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        sqlx::query_as::<_, DecisionRow>(&crate::sql::numbered(&crate::index::select_decision_by_id()))
            .bind(decision_id)
            .fetch_optional(&self.pool)
            .await?
            .map(DecisionRow::checked)
            .transpose()
    }

    async fn list(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new(crate::index::select_decisions());
        push_list_query(&mut qb, query);
        let rows: Vec<DecisionRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(DecisionRow::checked).collect()
    }

    async fn decision_index(&self, after_seq: i64, limit: u32) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows: Vec<IndexRow> = sqlx::query_as(&crate::sql::numbered(&crate::index::select_index_rows()))
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(DecisionRecord::from).collect())
    }

    async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_log")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn audit_entries(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<(i64, String, i64, Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT seq, kind, recorded_at_us, leaf_hash, event FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(crate::entry_from_row).collect()
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<NodeMap, StoreError> {
        let mut conn = self.pool.acquire().await?;
        nodes::select_nodes(&mut conn, ids).await
    }

    async fn add_checkpoint(&self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root, signed_at_us, note) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(c.tree_size)
        .bind(c.root.as_slice())
        .bind(c.signed_at_us)
        .bind(&c.note)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn checkpoints(&self, after_size: i64, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows: Vec<(i64, Vec<u8>, i64, String)> = sqlx::query_as(
            "SELECT tree_size, root, signed_at_us, note FROM audit_checkpoints WHERE tree_size > $1 \
             ORDER BY tree_size LIMIT $2",
        )
        .bind(after_size)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(crate::checkpoint_from_row).collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<(i64, Vec<u8>, i64, String)> = sqlx::query_as(
            "SELECT tree_size, root, signed_at_us, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(crate::checkpoint_from_row).transpose()
    }

    async fn prune(&self, older_than_us: i64, now_us: i64) -> Result<Option<PruneOutcome>, StoreError> {
        let mut tx = self.pool.begin_with(begin_sequencing()).await?;
        let (through_seq, already): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE((SELECT seq - 1 FROM audit_log WHERE recorded_at_us >= $1 ORDER BY seq LIMIT 1), \
                             (SELECT COALESCE(MAX(seq), 0) FROM audit_log)), \
                    (SELECT COUNT(*) FROM audit_log WHERE event IS NULL)",
        )
        .bind(older_than_us)
        .fetch_one(&mut *tx)
        .await?;
        if through_seq <= already {
            return Ok(None);
        }
        let pruned = sqlx::query("UPDATE audit_log SET event = NULL WHERE seq <= $1 AND event IS NOT NULL")
            .bind(through_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM decisions WHERE seq <= $1")
            .bind(through_seq)
            .execute(&mut *tx)
            .await?;
        let record = PendingEvent::Pruned {
            through_seq,
            older_than_us,
            recorded_at_us: now_us,
        };
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
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        let mut probe = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO audit_log (seq, kind, recorded_at_us, leaf_hash, event) \
             VALUES (-1, 'readiness.probe', 0, decode(repeat('00', 32), 'hex'), NULL)",
        )
        .execute(&mut *probe)
        .await?;
        sqlx::query(
            "INSERT INTO decisions (seq, decision_id, recorded_at_us, principal_type, principal_id, action, \
             resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, \
             constitution_version, evaluated_in_us) \
             VALUES (-1, 'readiness.probe', 0, '', '', '', '', '', 'deny', 'deny', false, '', '', 0)",
        )
        .execute(&mut *probe)
        .await?;
        probe.rollback().await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
