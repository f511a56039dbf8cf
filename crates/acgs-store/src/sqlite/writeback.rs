//! Paced write-back of the pages a WAL checkpoint copied into the database file: which 4 KiB blocks of the
//! file a checkpoint dirtied (read from the write-ahead log's frame headers), and starting their write-back to
//! the disk a few runs of adjacent blocks at a time, with a pause between, before the checkpointer's flush.
//!
//! Why: a checkpoint pass copies a few hundred pages scattered over the database file into the page cache, and
//! its flush then sends them to the disk at once. The commits' own flushes of the write-ahead log queue behind
//! that burst; started a few at a time first, the same pages leave a commit-like flush nearly as fast as it is
//! alone (modelled with `scripts/probes/disk-flush-tail.py`; the measurements are in `docs/performance-history.md`).
//!
//! Starting the write-back uses `posix_fadvise(POSIX_FADV_DONTNEED)`, which on Linux starts writing the range's
//! dirty pages back without waiting for them, then drops the range's clean pages from the page cache; the
//! pages just copied are dirty or being written, so they stay. (`sync_file_range(2)` would also wait for each
//! step, but has no safe binding.) Nothing here is needed for durability: the checkpointer flushes the file
//! afterwards in any case. So a failure to read the log or to give the advice only loses the pacing.

use std::fs::File;
use std::num::NonZeroU64;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The size of the blocks the write-back is counted in (the page cache's and ext4's).
const BLOCK: u64 = 4096;

/// Runs of adjacent blocks whose write-back starts together.
const RUNS_PER_STEP: usize = 8;

/// Pause after each step.
const STEP_PAUSE: Duration = Duration::from_micros(500);

/// The write-ahead log's header and each frame's header (the SQLite file format, "WAL File Format").
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

/// Frames read from the log at a time.
const FRAMES_PER_READ: u64 = 64;

/// A run of adjacent 4 KiB blocks of the database file: the first block's index and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    first: u64,
    blocks: u64,
}

/// Which pages of the write-ahead log earlier passes already wrote back.
#[derive(Debug)]
pub(crate) struct CopiedPages {
    wal_path: PathBuf,
    /// The salts of the log's header when `frames` was counted; they change when the log starts over.
    salt: Option<[u8; 8]>,
    /// Frames of that log whose pages were already written back.
    frames: u64,
    /// Frames read from the log, kept between calls.
    buf: Vec<u8>,
}

impl CopiedPages {
    /// For the database file at `db_path` (its log is `<db_path>-wal`).
    pub(crate) fn new(db_path: &Path) -> Self {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        Self {
            wal_path: PathBuf::from(wal),
            salt: None,
            frames: 0,
            buf: Vec::new(),
        }
    }

    /// The runs of blocks of the database file holding the pages in the log's frames from the last call's
    /// `backfilled` (or from the log's start, if it started over since) up to `backfilled`, the frames a
    /// checkpoint has now copied. In file order.
    pub(crate) fn since_last(&mut self, backfilled: i64) -> std::io::Result<Vec<Run>> {
        // Opened each time: SQLite deletes the log when its last connection closes, and the next creates another.
        let wal = File::open(&self.wal_path)?;
        let mut header = [0u8; WAL_HEADER as usize];
        wal.read_exact_at(&mut header, 0)?;
        let page_size = match be_u32(&header[8..12]) {
            1 => 65_536,
            n => u64::from(n),
        };
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&header[16..24]);
        let to = u64::try_from(backfilled).unwrap_or(0);
        let from = if self.salt == Some(salt) {
            self.frames.min(to)
        } else {
            0
        };
        self.salt = Some(salt);
        self.frames = to;

        let frame_size = FRAME_HEADER + page_size;
        let mut blocks = Vec::new();
        self.buf
            .resize(usize::try_from(FRAMES_PER_READ * frame_size).unwrap_or(usize::MAX), 0);
        let buf = &mut self.buf;
        let mut frame = from;
        'frames: while frame < to {
            let n = FRAMES_PER_READ.min(to - frame);
            let bytes = &mut buf[..(n * frame_size) as usize];
            wal.read_exact_at(bytes, WAL_HEADER + frame * frame_size)?;
            for header in bytes.chunks_exact(frame_size as usize) {
                // A frame with other salts belongs to an earlier log: the valid frames end here.
                if header[8..16] != salt {
                    break 'frames;
                }
                let page = u64::from(be_u32(&header[0..4]));
                if page > 0 {
                    blocks.push((page - 1) * page_size / BLOCK);
                }
            }
            frame += n;
        }
        blocks.sort_unstable();
        blocks.dedup();
        Ok(runs(&blocks))
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(word)
}

/// Sorted, distinct block indexes as runs of adjacent blocks.
fn runs(blocks: &[u64]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for &block in blocks {
        match runs.last_mut() {
            Some(run) if run.first + run.blocks == block => run.blocks += 1,
            _ => runs.push(Run {
                first: block,
                blocks: 1,
            }),
        }
    }
    runs
}

/// Start the write-back of `runs` of `db_file`, [`RUNS_PER_STEP`] at a time with [`STEP_PAUSE`] after each
/// step, pausing for at most `spread` in all (the rest starts at once). Stops at the first advice the kernel
/// refuses (the rest is then left to the flush).
pub(crate) fn start_paced(db_file: &File, runs: &[Run], spread: Duration) -> std::io::Result<()> {
    let started = Instant::now();
    for step in runs.chunks(RUNS_PER_STEP) {
        for run in step {
            rustix::fs::fadvise(
                db_file,
                run.first * BLOCK,
                NonZeroU64::new(run.blocks * BLOCK),
                rustix::fs::Advice::DontNeed,
            )?;
        }
        if started.elapsed() + STEP_PAUSE <= spread {
            std::thread::sleep(STEP_PAUSE);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn adjacent_blocks_form_one_run() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(
            runs(&[0, 1, 2, 5, 7, 8]),
            vec![
                Run { first: 0, blocks: 3 },
                Run { first: 5, blocks: 1 },
                Run { first: 7, blocks: 2 }
            ]
        );
    }

    fn checkpoint(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(2))
            .unwrap()
    }

    fn blocks(runs: &[Run]) -> Vec<u64> {
        runs.iter().flat_map(|r| r.first..r.first + r.blocks).collect()
    }

    #[test]
    fn the_blocks_are_those_of_the_pages_each_checkpoint_copied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "page_size", 1024).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .unwrap();
        let mut copied = CopiedPages::new(&path);

        // The table's pages: one row per 1 KiB page, so 40 rows fill pages 3 to about 44 (blocks 0 to 10).
        let insert = |rows: usize| {
            for _ in 0..rows {
                conn.execute("INSERT INTO t (body) VALUES (zeroblob(900))", []).unwrap();
            }
        };
        insert(40);
        let backfilled = checkpoint(&conn);
        let pages: u64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0)).unwrap();
        let all_blocks: Vec<u64> = (0..pages.div_ceil(4)).collect();
        assert_eq!(
            blocks(&copied.since_last(backfilled).unwrap()),
            all_blocks,
            "a new file: every block was written"
        );
        assert_eq!(copied.since_last(backfilled).unwrap(), vec![], "nothing new was copied");

        // The next commit starts the log over; its frames are read from the log's start again. Rewriting the
        // last row dirties the last leaf only. A reader holding a snapshot that includes it keeps the log from
        // starting over once more.
        conn.execute("UPDATE t SET body = zeroblob(901) WHERE id = 40", [])
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        reader.query_row("SELECT COUNT(*) FROM t", [], |_| Ok(())).unwrap();
        let backfilled = checkpoint(&conn);
        assert_eq!(backfilled, 1, "the log started over");
        let last_block = (pages - 1) / 4;
        assert_eq!(blocks(&copied.since_last(backfilled).unwrap()), vec![last_block]);

        // The log goes on; only the frames after those already seen count.
        conn.execute("UPDATE t SET body = zeroblob(902) WHERE id = 1", [])
            .unwrap();
        reader.execute_batch("COMMIT").unwrap();
        let continued = checkpoint(&conn);
        assert_eq!(continued, 2, "the log went on");
        assert_eq!(
            blocks(&copied.since_last(continued).unwrap()),
            vec![0],
            "row 1 is in block 0"
        );
    }

    #[test]
    fn write_back_starts_on_a_real_file_and_pauses_within_its_spread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, vec![1u8; 64 * 4096]).unwrap();
        let file = File::open(&path).unwrap();
        let many: Vec<Run> = (0..64).map(|i| Run { first: i, blocks: 1 }).collect();
        let started = Instant::now();
        start_paced(&file, &many, Duration::ZERO).unwrap();
        start_paced(&file, &many, Duration::from_millis(2)).unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(1),
            "the second call paused between its steps"
        );
    }
}
