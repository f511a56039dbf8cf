//! The SQLite backend's one writing connection: it appends events (leaves, tree nodes, decision-index rows),
//! prunes, and keeps signed checkpoints, each in one `BEGIN IMMEDIATE` transaction. Events of every kind are
//! appended through [`Appender::append`] (the group-commit writer's batches and the store's `append_events`) and
//! leave their tree nodes and index rows to a later commit ([`super::derived`]); a prune, and a write that
//! appends its events in its own transaction ([`Appender::write_and_append`], a governance commit), first bring
//! that derived data up to the log's end and then write their own with their events.
//!
//! It is a synchronous rusqlite connection, used by whichever thread holds it: the group-commit writer's own
//! thread for decisions ([`crate::DecisionLog`]), a blocking-pool thread for the store's async methods. sqlx
//! (which the store uses for reads and migrations) runs every SQLite connection on a worker thread of its own
//! and hands each statement to it and back; on the commit path those two thread switches per round trip cost
//! more than the statements themselves.

use std::path::Path;
use std::time::Duration;

use acgs_audit::Frontier;
use rusqlite::{Connection, TransactionBehavior, params};

use super::derived::{self, Pending};
use super::durability::{FlushFailure, SqliteSync, flush_failure};
use super::nodes::stored_nodes;
use crate::event::{NewEvent, PreparedBatch, prepare_batch};
use crate::queries::{INSERT_CHECKPOINT, LAST_SEQ, PRUNE_EVENTS, PRUNE_INDEX, PRUNE_THROUGH};
use crate::tree::frontier_from;
use crate::{PruneOutcome, StoreError, StoredCheckpoint};

/// How long a write waits for another process's write lock (e.g. `acgs audit prune`) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const INSERT_ENTRY: &str =
    "INSERT INTO audit_log (seq, kind, recorded_at_us, leaf_hash, event) VALUES (?1, ?2, ?3, ?4, ?5)";

/// The writing connection and what it knows about the log's end.
#[derive(Debug)]
pub(crate) struct Appender {
    conn: Connection,
    flush_failed: FlushFailure,
    /// The tree's right edge after this connection's last committed append; reused when the log has not grown
    /// since (another process may append too, e.g. a prune).
    frontier: Option<Frontier>,
    /// Tree nodes and decision-index rows of committed decisions, not yet written.
    pending: Pending,
}

impl Appender {
    /// Open the writing connection on a migrated database file. `autocheckpoint_frames`: the log length (pages)
    /// at which a commit also checkpoints the write-ahead log (see [`super`]).
    pub(crate) fn open(
        path: &Path,
        sync: SqliteSync,
        autocheckpoint_frames: i64,
        flush_failed: FlushFailure,
    ) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                SqliteSync::Full => "FULL",
                SqliteSync::Normal => "NORMAL",
            },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "wal_autocheckpoint", autocheckpoint_frames)?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(Self {
            conn,
            flush_failed,
            frontier: None,
            pending: Pending::default(),
        })
    }

    /// Commit `events` (see [`crate::DecisionStore::append_events`]); returns the first one's sequence number.
    /// Their tree nodes and decision-index rows wait in memory ([`super::derived`]).
    pub(crate) fn append(&mut self, events: &[NewEvent]) -> Result<i64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        flush_failure(&self.flush_failed)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.pending.check(&tx, events)?;
        // What is pending is forgotten only once a commit wrote it; a failed transaction leaves it as it was.
        let size = log_size(&tx)?;
        let wrote_pending = self.pending.is_overdue();
        if wrote_pending {
            derived::catch_up(&tx, &self.pending, size)?;
        }
        let (batch, frontier) = append_events(&tx, events, size, self.frontier.take(), &self.pending)?;
        tx.commit()?;
        self.frontier = Some(frontier);
        if wrote_pending {
            self.pending = Pending::default();
        }
        self.pending.add(&batch);
        // The batch's sequence numbers follow the log's end without a gap.
        Ok(size + 1)
    }

    /// Write the derived data still pending (tree nodes, decision-index rows), so that readers see every
    /// committed decision; a no-op when nothing is pending. After a failed flush nothing is written any more
    /// (the reads that call this still see what was written before; a restart derives the rest).
    pub(crate) fn write_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() || self.flush_failed.get().is_some() {
            return Ok(());
        }
        self.catch_up_from_log()
    }

    /// Write the derived data if it has waited long enough ([`derived::DERIVED_WRITE_INTERVAL`]); the
    /// group-commit writer calls this when it has no decisions queued.
    pub(crate) fn write_pending_if_due(&mut self) -> Result<(), StoreError> {
        if !self.pending.is_due() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.write_pending()?;
        metrics::histogram!("acgs_sqlite_derived_write_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Bring the derived data up to the log's end: from what is pending, or from the log itself (after a crash,
    /// or for what another process appended).
    pub(crate) fn catch_up_from_log(&mut self) -> Result<(), StoreError> {
        flush_failure(&self.flush_failed)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        derived::catch_up(&tx, &self.pending, log_size(&tx)?)?;
        tx.commit()?;
        self.pending = Pending::default();
        Ok(())
    }

    /// See [`crate::DecisionStore::prune`].
    pub(crate) fn prune(&mut self, older_than_us: i64, now_us: i64) -> Result<Option<PruneOutcome>, StoreError> {
        flush_failure(&self.flush_failed)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        derived::catch_up(&tx, &self.pending, log_size(&tx)?)?;
        let (through_seq, already): (i64, i64) = tx.query_row(PRUNE_THROUGH.text(), params![older_than_us], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        if through_seq <= already {
            return Ok(None);
        }
        let pruned = tx.execute(PRUNE_EVENTS.text(), params![through_seq])?;
        tx.execute(PRUNE_INDEX.text(), params![through_seq])?;
        let record = NewEvent::pruned(through_seq, older_than_us, now_us);
        let (batch, frontier) =
            append_with_derived(&tx, std::slice::from_ref(&record), self.frontier.take(), &self.pending)?;
        tx.commit()?;
        self.frontier = Some(frontier);
        self.pending = Pending::default();
        Ok(Some(PruneOutcome {
            through_seq,
            events_pruned: pruned as i64,
            record_seq: batch.entries[0].seq,
        }))
    }

    /// In one transaction: run `write` (whose error rolls everything back), then append `events` after it with
    /// their derived data, as a prune appends its record. Returns what `write` returned and the first event's
    /// sequence number (0 when there are none).
    pub(crate) fn write_and_append<T>(
        &mut self,
        events: &[NewEvent],
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<(T, i64), StoreError> {
        flush_failure(&self.flush_failed)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.pending.check(&tx, events)?;
        let written = write(&tx)?;
        if events.is_empty() {
            tx.commit()?;
            return Ok((written, 0));
        }
        let (batch, frontier) = append_with_derived(&tx, events, self.frontier.take(), &self.pending)?;
        let first_seq = batch
            .entries
            .first()
            .map(|e| e.seq)
            .ok_or_else(|| StoreError::Corrupt("an appended event got no sequence number".into()))?;
        tx.commit()?;
        self.frontier = Some(frontier);
        self.pending = Pending::default();
        Ok((written, first_seq))
    }

    /// A passive checkpoint of the write-ahead log from this connection.
    pub(crate) fn checkpoint_wal(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(StoreError::from)
    }

    /// Keep a signed checkpoint (a second one for the same size is ignored).
    pub(crate) fn add_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        flush_failure(&self.flush_failed)?;
        self.conn.prepare_cached(INSERT_CHECKPOINT.text())?.execute(params![
            c.tree_size,
            c.root.as_slice(),
            c.signed_at_us,
            c.note
        ])?;
        Ok(())
    }
}

/// Append `events` inside the open transaction `tx` with their derived data, after bringing the derived data
/// of earlier events up to date.
fn append_with_derived<'a>(
    tx: &Connection,
    events: &'a [NewEvent],
    cached: Option<Frontier>,
    pending: &Pending,
) -> Result<(PreparedBatch<'a>, Frontier), StoreError> {
    let size = log_size(tx)?;
    derived::catch_up(tx, pending, size)?;
    let (batch, frontier) = append_events(tx, events, size, cached, pending)?;
    derived::write_batch(tx, &batch)?;
    Ok((batch, frontier))
}

/// The number of events in the log (its last sequence number).
fn log_size(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.prepare_cached(LAST_SEQ.text())?.query_row([], |row| row.get(0))?)
}

/// Append `events` (their leaves) at the end of the log, which holds `size` events, inside the open transaction
/// `conn`, which holds the write lock. `cached` is the tree's right edge as this connection last committed it,
/// used if the log still ends there; otherwise the edge is read from the stored nodes, after bringing them up to
/// the log's end (from `pending` or the log). Returns the batch, whose tree nodes and decision-index rows the
/// caller writes now or later, and the right edge after it.
fn append_events<'a>(
    conn: &Connection,
    events: &'a [NewEvent],
    size: i64,
    cached: Option<Frontier>,
    pending: &Pending,
) -> Result<(PreparedBatch<'a>, Frontier), StoreError> {
    let mut frontier = match cached {
        Some(f) if f.size() == size as u64 => f,
        _ => {
            derived::catch_up(conn, pending, size)?;
            let ids = Frontier::ids(size as u64);
            let stored = stored_nodes(conn, &ids)?;
            frontier_from(size, &ids, &stored)?
        }
    };
    let batch = prepare_batch(&mut frontier, events)?;
    let mut insert_entry = conn.prepare_cached(INSERT_ENTRY)?;
    for e in &batch.entries {
        insert_entry.execute(params![
            e.seq,
            e.kind,
            e.recorded_at_us,
            e.leaf_hash.as_slice(),
            e.event
        ])?;
    }
    Ok((batch, frontier))
}
