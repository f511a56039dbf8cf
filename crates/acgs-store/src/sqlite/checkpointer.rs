//! The SQLite backend's background WAL checkpointer: it moves committed pages from the write-ahead log into the
//! database file in small steps, each flushed at once, so that the disk never receives a large burst of
//! database writes that the commits' flushes would queue behind.
//!
//! Every [`PASS_INTERVAL`] while decisions are being committed, a pass:
//! 1. opens a read transaction on a second connection, the *guard*, which keeps SQLite from starting the log
//!    over (a writer reuses the log from its start only when no reader holds a snapshot in it);
//! 2. checkpoints (PASSIVE: it never blocks the writer) up to the guard's snapshot, on a connection that
//!    leaves flushing to this module (`synchronous=OFF` for the checkpoint only; with `sqlite_sync = normal`
//!    it flushes the log first, as SQLite's own checkpoint does, since commits then do not);
//! 3. starts writing the copied pages back to the disk a few runs of blocks at a time, pausing between steps
//!    for at most a pass interval in all ([`super::writeback`]), so that they do not reach the disk as one
//!    burst that the commits' flushes of the log would queue behind (so a pass under load takes up to about
//!    a pass interval longer, and the next starts [`PASS_INTERVAL`] after it ends);
//! 4. flushes the database file (`fdatasync`), and only then
//! 5. ends the guard's read transaction.
//!
//! So the log is never reused while pages copied from it are not yet on disk: a copied page is either flushed
//! or still in the log, which is SQLite's own rule for checkpoints. What changes is the size of each step: a
//! pass copies the pages of the last [`PASS_INTERVAL`] of commits (a few hundred pages under load) and flushes
//! them at once. SQLite's own arrangement is different: a checkpoint flushes the database file only when it
//! reaches the end of the log, which under steady load it never does, so the copied pages went to the disk in
//! bursts (the kernel's writeback, or the flush of the writer's catch-up), and the commits' flushes queued
//! behind them. The measurements that chose this design and its interval are in `docs/performance-history.md`.
//!
//! Because the copier does not flush, it must never be the connection that checkpoints on closing (the last
//! connection to close checkpoints the whole log and deletes it): both connections are opened with
//! checkpoint-on-close off.
//!
//! If the flush fails, whether the copied pages reached the disk is unknown (the kernel may have dropped them),
//! and SQLite already counts them as copied. The checkpointer then keeps the guard's read transaction open for
//! as long as the process lives, so the log, which still holds those pages, is neither reused nor checkpointed
//! and deleted on closing; records the failure in `flush_failed` (the store then refuses every write: decisions
//! are answered 503, fail closed); and stops. Restarting the server copies the log into the database file
//! again.
//!
//! When nothing was committed since a pass that reached the end of the log (`PRAGMA data_version` on the
//! guard), a pass does nothing and the interval backs off to [`IDLE_INTERVAL`]. When the log is nevertheless
//! longer than [`WAL_CATCH_UP_FRAMES`] (commits arrive so steadily that no pass ever reaches its end, which is
//! what lets SQLite start it over), the checkpointer raises `wal_long` and the group-commit writer catches up
//! between two commits (see [`super`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::config::DbConfig;

use super::durability::{FlushFailure, SqliteSync};
use super::writeback::{self, CopiedPages};

/// Time between two passes while commits arrive.
pub(crate) const PASS_INTERVAL: Duration = Duration::from_millis(10);

/// Longest time between two passes when nothing is committed (the interval doubles from [`PASS_INTERVAL`] up
/// to this after every pass with nothing to do).
pub(crate) const IDLE_INTERVAL: Duration = Duration::from_millis(80);

/// WAL length (pages) above which the group-commit writer is asked to catch the checkpoint up (and so let the
/// log start over).
pub(crate) const WAL_CATCH_UP_FRAMES: i64 = 32_768;

/// Start the checkpointer thread on the database file at `path`. It runs at a lower CPU priority (nice +10),
/// and stops when `stop`'s sender is dropped (with the store).
pub(crate) fn spawn(
    path: PathBuf,
    sync: SqliteSync,
    wal_long: Arc<AtomicBool>,
    flush_failed: FlushFailure,
    stop: std::sync::mpsc::Receiver<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("acgs-wal-checkpointer".into())
        .spawn(move || {
            if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
                tracing::debug!(error = %e, "cannot lower the WAL checkpointer's priority");
            }
            let mut checkpointer = match Checkpointer::open(&path, sync) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the WAL checkpointer; the write-ahead log is \
                        checkpointed only when it reaches its safety limit");
                    return;
                }
            };
            let mut interval = PASS_INTERVAL;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
                match checkpointer.pass() {
                    Ok(Pass::Idle) => interval = (interval * 2).min(IDLE_INTERVAL),
                    Ok(Pass::Copied { frames }) => {
                        interval = PASS_INTERVAL;
                        if frames > WAL_CATCH_UP_FRAMES {
                            wal_long.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(PassError::Flush(e)) => {
                        tracing::error!(error = %e, "flushing checkpointed pages to the database file failed; \
                            writes are refused until the server restarts");
                        metrics::counter!("acgs_sqlite_flush_failures_total").increment(1);
                        let _ = flush_failed.set(e.to_string());
                        // Keep the guard, with its read transaction and its lock on the database file, for as long
                        // as the process lives: while it is open no connection can reuse the log, nor checkpoint
                        // it on closing and then delete it (the closing checkpoint's flush could succeed on pages
                        // the kernel dropped after the failure).
                        std::mem::forget(checkpointer);
                        return;
                    }
                    Err(e) => {
                        interval = IDLE_INTERVAL;
                        tracing::warn!(error = %e, "WAL checkpoint pass failed; retrying");
                    }
                }
            }
        })
        .map(|_| ())
}

/// What a pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Nothing committed since the last pass reached the end of the log.
    Idle,
    /// Checkpointed (and flushed) what it could; `frames` is the log's length.
    Copied { frames: i64 },
}

#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("flushing the database file: {0}")]
    Flush(std::io::Error),
    #[error("opening the database file: {0}")]
    Open(std::io::Error),
}

/// The checkpointer's two connections and the database file.
struct Checkpointer {
    /// Runs the checkpoints; its own flushes are off (this module flushes).
    copier: Connection,
    /// Holds a read transaction during a pass so that the log is not reused before the flush.
    guard: Connection,
    /// The database file, to flush.
    db_file: std::fs::File,
    /// `PRAGMA data_version` on the guard after the last pass.
    data_version: Option<i64>,
    /// The last pass copied everything in the log.
    caught_up: bool,
    /// Which of the log's pages earlier passes wrote back.
    copied: CopiedPages,
}

impl Checkpointer {
    fn open(path: &Path, sync: SqliteSync) -> Result<Self, PassError> {
        let copier = Connection::open(path)?;
        // Full: every commit flushed the log before it became visible, so a checkpoint need not flush it again;
        // normal: commits do not flush the log, so the checkpoint must, before it copies (as SQLite's does).
        copier.pragma_update(
            None,
            "synchronous",
            match sync {
                SqliteSync::Full => "OFF",
                SqliteSync::Normal => "NORMAL",
            },
        )?;
        let guard = Connection::open(path)?;
        // The last connection to close checkpoints the whole log and deletes it; done from the copier, that
        // checkpoint would not flush. Neither of these connections does it (the writer's or a reader's does,
        // with flushing, or the next start recovers from the log).
        copier.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        guard.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        let db_file = std::fs::File::open(path).map_err(PassError::Open)?;
        Ok(Self {
            copier,
            guard,
            db_file,
            data_version: None,
            caught_up: false,
            copied: CopiedPages::new(path),
        })
    }

    fn pass(&mut self) -> Result<Pass, PassError> {
        if !self.guard.is_autocommit() {
            // A previous pass failed before ending the guard's read transaction (not after a failed flush:
            // that stops the checkpointer). Nothing was copied unflushed, so ending it is safe.
            self.guard.execute_batch("ROLLBACK")?;
        }
        let data_version: i64 = self.guard.query_row("PRAGMA data_version", [], |row| row.get(0))?;
        if self.caught_up && self.data_version == Some(data_version) {
            return Ok(Pass::Idle);
        }
        let started = Instant::now();
        self.guard.execute_batch("BEGIN")?;
        let (frames, backfilled) = self.copy_and_flush()?;
        self.guard.execute_batch("COMMIT")?;
        self.data_version = Some(data_version);
        self.caught_up = backfilled >= frames;
        metrics::histogram!("acgs_sqlite_wal_checkpoint_seconds").record(started.elapsed().as_secs_f64());
        metrics::gauge!("acgs_sqlite_wal_frames").set(frames as f64);
        metrics::gauge!("acgs_sqlite_wal_frames_behind").set((frames - backfilled).max(0) as f64);
        Ok(Pass::Copied { frames })
    }

    /// With the guard's read transaction open: checkpoint, then flush the database file. Returns the log's
    /// length and how much of it is now in the database file (pages). On an error the guard stays open.
    fn copy_and_flush(&mut self) -> Result<(i64, i64), PassError> {
        // Any read starts the guard's read transaction at the log's current end.
        self.guard
            .query_row("SELECT COUNT(*) FROM sqlite_schema", [], |_| Ok(()))?;
        let (frames, backfilled): (i64, i64) = self.copier.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(1)?, row.get(2)?))
        })?;
        if backfilled > 0 {
            // Start writing the copied pages back a few at a time, so that the flush finds most of them on
            // their way to the disk instead of sending them all at once ([`writeback`]).
            // Any failure here only loses the pacing: the flush below writes whatever is left.
            let paced = self
                .copied
                .since_last(backfilled)
                .and_then(|runs| writeback::start_paced(&self.db_file, &runs, PASS_INTERVAL));
            if let Err(e) = paced {
                tracing::debug!(error = %e, "cannot start the write-back of the checkpointed pages");
            }
            self.db_file.sync_data().map_err(PassError::Flush)?;
        }
        Ok((frames, backfilled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writing connection as the store opens one (WAL, no automatic checkpoints) on a log with its schema
    /// already in the database file.
    fn writer(path: &Path, sync: SqliteSync) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.pragma_update(
            None,
            "synchronous",
            if sync == SqliteSync::Full { "FULL" } else { "NORMAL" },
        )
        .unwrap();
        conn.execute_batch("CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, event TEXT NOT NULL)")
            .unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        conn
    }

    fn append(conn: &Connection, commits: usize) {
        for _ in 0..commits {
            conn.execute("INSERT INTO audit_log (event) VALUES (?1)", [&"x".repeat(900)])
                .unwrap();
        }
    }

    /// Rows in the database file alone, as a crash that lost the write-ahead log would leave it.
    fn rows_in_database_file(path: &Path) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.db");
        std::fs::copy(path, &copy).unwrap();
        Connection::open(&copy)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM audit_log", [], |row| row.get(0))
            .unwrap()
    }

    /// (log length, pages of it in the database file), as a PASSIVE checkpoint reports them. It may copy pages
    /// itself, which the assertions do not depend on: they are about the log's length.
    fn log_state(path: &Path) -> (i64, i64) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "synchronous", "OFF").unwrap();
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(1)?, row.get(2)?))
        })
        .unwrap()
    }

    #[test]
    fn a_pass_puts_every_commit_into_the_database_file_and_an_idle_pass_does_nothing() {
        for sync in [SqliteSync::Full, SqliteSync::Normal] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log.db");
            let conn = writer(&path, sync);
            let mut checkpointer = Checkpointer::open(&path, sync).unwrap();
            append(&conn, 50);
            assert_eq!(rows_in_database_file(&path), 0, "{sync}: commits start in the log only");

            let Pass::Copied { frames } = checkpointer.pass().unwrap() else {
                panic!("{sync}: a pass after commits must copy");
            };
            assert!(frames >= 50, "{sync}: the log held the 50 commits ({frames} pages)");
            assert_eq!(
                rows_in_database_file(&path),
                50,
                "{sync}: after a pass the file alone has them all"
            );
            assert_eq!(
                checkpointer.pass().unwrap(),
                Pass::Idle,
                "{sync}: nothing new, nothing to do"
            );

            append(&conn, 1);
            assert!(matches!(checkpointer.pass().unwrap(), Pass::Copied { .. }), "{sync}");
            assert_eq!(rows_in_database_file(&path), 51, "{sync}");
        }
    }

    #[test]
    fn the_checkpointers_connections_do_not_checkpoint_on_closing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let wal = dir.path().join("log.db-wal");
        let conn = writer(&path, SqliteSync::Full);
        let mut checkpointer = Checkpointer::open(&path, SqliteSync::Full).unwrap();
        append(&conn, 5);
        checkpointer.pass().unwrap();
        append(&conn, 5);
        drop(conn);
        assert!(wal.exists());
        // Closing last, an ordinary connection would checkpoint the rest (without flushing, as the copier is
        // set up) and delete the log.
        drop(checkpointer);
        assert!(
            wal.exists(),
            "the log was checkpointed and deleted by the checkpointer's connection"
        );
        let reopened = Connection::open(&path).unwrap();
        let rows: i64 = reopened
            .query_row("SELECT COUNT(*) FROM audit_log", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 10, "the next start recovers the rest from the log");
    }

    #[test]
    fn the_log_is_not_started_over_while_the_guard_holds_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let conn = writer(&path, SqliteSync::Full);
        let checkpointer = Checkpointer::open(&path, SqliteSync::Full).unwrap();
        append(&conn, 20);

        // A pass up to its flush: guard open, everything copied.
        checkpointer.guard.execute_batch("BEGIN").unwrap();
        checkpointer
            .guard
            .query_row("SELECT COUNT(*) FROM audit_log", [], |_| Ok(()))
            .unwrap();
        let (frames, backfilled): (i64, i64) = checkpointer
            .copier
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(1)?, row.get(2)?))
            })
            .unwrap();
        assert_eq!(frames, backfilled, "the copy reached the end of the log");

        // A commit now must append after the copied pages, not overwrite them.
        append(&conn, 1);
        let (after, _) = log_state(&path);
        assert!(
            after > frames,
            "the log was started over under the guard ({frames} -> {after} pages)"
        );

        // Once the guard ends (after the flush) and the log is copied again, the next commit starts it over.
        checkpointer.guard.execute_batch("COMMIT").unwrap();
        let (_, copied) = log_state(&path);
        assert_eq!(copied, after);
        append(&conn, 1);
        let (restarted, _) = log_state(&path);
        assert!(restarted < frames, "the log was not started over ({restarted} pages)");
    }
}
