//! PostgreSQL's sequencer: appending events to the log under a transaction-scoped advisory lock, so that every
//! replica sharing the database extends one gap-free sequence and one tree (with `acgs_append_batch`, one round
//! trip when the log still ends where this replica's last commit left it).

use acgs_audit::Frontier;
use sqlx::{PgConnection, Postgres};

use super::nodes::select_nodes;
use crate::StoreError;
use crate::event::{IndexedDecision, NewEntry, NewEvent, PreparedBatch, prepare_batch};
use crate::queries::LAST_SEQ;
use crate::sql::Dialect;
use crate::tree::frontier_from;

/// Append a batch (entries, tree nodes, decision-index rows, one array per column) under the sequencer lock if
/// the log still ends at the expected size; returns whether it did (migration 0004). Outside a transaction this is
/// one round trip that commits; inside one that already holds the lock, it takes the lock again at no cost.
const APPEND_BATCH: &str = "SELECT acgs_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
     $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)";

/// Append `events` inside the open transaction `conn`, which holds the sequencer lock. `cached` is the tree's
/// right edge as this process last committed it, used if the log still ends there; otherwise the edge is read
/// from the stored nodes. Returns the new entries and the right edge after them.
pub(crate) async fn append_events(
    conn: &mut PgConnection,
    events: &[NewEvent],
    cached: Option<Frontier>,
) -> Result<(Vec<NewEntry>, Frontier), StoreError> {
    if let Some(frontier) = cached
        && let Some(appended) = append_after(&mut *conn, events, frontier).await?
    {
        return Ok(appended);
    }
    let size: i64 = sqlx::query_scalar(Postgres::sql(&LAST_SEQ))
        .fetch_one(&mut *conn)
        .await?;
    let ids = Frontier::ids(size as u64);
    let stored = select_nodes(&mut *conn, &ids).await?;
    let frontier = frontier_from(size, &ids, &stored)?;
    append_after(&mut *conn, events, frontier)
        .await?
        .ok_or_else(|| StoreError::Corrupt("the audit log grew while this writer held the sequencer lock".into()))
}

/// Append `events` after `frontier`, the tree's right edge where the caller expects the log to end, with
/// [`APPEND_BATCH`]. Returns the new entries and the right edge after them, or `None` (and appends nothing) if
/// the log no longer ends there.
pub(crate) async fn append_after<'c, E>(
    conn: E,
    events: &[NewEvent],
    mut frontier: Frontier,
) -> Result<Option<(Vec<NewEntry>, Frontier)>, StoreError>
where
    E: sqlx::PgExecutor<'c>,
{
    let size = frontier.size() as i64;
    let PreparedBatch {
        entries,
        nodes,
        decisions,
    } = prepare_batch(&mut frontier, events)?;
    let text = |f: for<'d> fn(&'d IndexedDecision<'_>) -> &'d str| decisions.iter().map(f).collect::<Vec<&str>>();
    let int = |f: fn(&IndexedDecision<'_>) -> i64| decisions.iter().map(f).collect::<Vec<i64>>();
    let appended: bool = sqlx::query_scalar(APPEND_BATCH)
        .bind(SEQUENCER_LOCK)
        .bind(size)
        .bind(entries.iter().map(|e| e.seq).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.kind).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.recorded_at_us).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.leaf_hash.to_vec()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.event.as_str()).collect::<Vec<_>>())
        .bind(nodes.iter().map(|(id, _)| i16::from(id.level)).collect::<Vec<_>>())
        .bind(nodes.iter().map(|(id, _)| id.index as i64).collect::<Vec<_>>())
        .bind(nodes.iter().map(|(_, h)| h.to_vec()).collect::<Vec<_>>())
        .bind(int(|d| d.seq))
        .bind(text(|d| &d.decision.decision_id))
        .bind(int(|d| d.recorded_at_us))
        .bind(text(|d| &d.decision.principal.entity_type))
        .bind(text(|d| &d.decision.principal.id))
        .bind(text(|d| &d.decision.action))
        .bind(text(|d| &d.decision.resource.entity_type))
        .bind(text(|d| &d.decision.resource.id))
        .bind(text(|d| d.decision.outcome.as_str()))
        .bind(text(|d| d.decision.effective_outcome.as_str()))
        .bind(decisions.iter().map(|d| d.decision.shadow).collect::<Vec<bool>>())
        .bind(text(|d| d.constitutional_hash))
        .bind(text(|d| &d.decision.constitution_version))
        .bind(int(|d| d.decision.evaluated_in_us))
        .fetch_one(conn)
        .await?;
    Ok(appended.then_some((entries, frontier)))
}

/// Advisory lock key serialising sequence assignment across replicas ("ACGS-SEQ" in ASCII).
const SEQUENCER_LOCK: i64 = 0x4143_4753_2d53_4551;

/// The statement that opens an appending transaction: `BEGIN` and the sequencer lock, in one round trip (two
/// statements of one simple query; the lock is granted before any later statement takes its snapshot).
pub(crate) fn begin_sequencing() -> String {
    format!("BEGIN; SELECT pg_advisory_xact_lock({SEQUENCER_LOCK})")
}
