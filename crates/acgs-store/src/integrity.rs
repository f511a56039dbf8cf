//! Log operations over any [`DecisionStore`]: tree roots and proofs from stored nodes, signing checkpoints,
//! and recomputing the whole log to verify it.

use std::sync::Arc;

use acgs_audit::{Hash, LogKey, LogVerifier, SubtreeSource, VerifierKey, VerifyFailure, VerifyReport, nodes_needed};
use tokio::sync::Mutex;

use crate::{DecisionRecord, DecisionStore, ENTRY_PAGE, IndexMismatch, IntegrityError, StoreError, StoredCheckpoint};

/// Run a tree computation over the stored nodes it needs (fetched in one query).
async fn over_stored_nodes<T>(
    store: &dyn DecisionStore,
    computation: impl Fn(&dyn SubtreeSource) -> Result<T, acgs_audit::ProofError>,
) -> Result<T, IntegrityError> {
    let ids = nodes_needed(&computation);
    let nodes = store.tree_nodes(&ids).await?;
    Ok(computation(&nodes)?)
}

/// Check that `size` does not exceed the stored tree.
async fn check_size(store: &dyn DecisionStore, size: u64) -> Result<(), IntegrityError> {
    let stored = store.last_seq().await? as u64;
    if size > stored {
        return Err(acgs_audit::ProofError::SizeBeyondLog { size, log_size: stored }.into());
    }
    Ok(())
}

/// Root of the tree of the first `size` entries.
pub async fn tree_root(store: &dyn DecisionStore, size: u64) -> Result<Hash, IntegrityError> {
    check_size(store, size).await?;
    if size == 0 {
        return Ok(acgs_audit::empty_root());
    }
    over_stored_nodes(store, |s| s.subtree_root(0, size)).await
}

/// Inclusion proof for entry `seq` in the tree of the first `size` entries.
pub async fn inclusion_proof(store: &dyn DecisionStore, seq: u64, size: u64) -> Result<Vec<Hash>, IntegrityError> {
    check_size(store, size).await?;
    let index = seq
        .checked_sub(1)
        .ok_or(acgs_audit::ProofError::IndexOutOfRange { index: 0, size })?;
    over_stored_nodes(store, |s| acgs_audit::inclusion_proof(s, index, size)).await
}

/// Consistency proof from the tree of the first `from` entries to the tree of the first `to`.
pub async fn consistency_proof(store: &dyn DecisionStore, from: u64, to: u64) -> Result<Vec<Hash>, IntegrityError> {
    check_size(store, to).await?;
    over_stored_nodes(store, |s| acgs_audit::consistency_proof(s, from, to)).await
}

/// Signs checkpoints of the stored log with the log key; one signer at a time per process.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    store: Arc<dyn DecisionStore>,
    key: Arc<LogKey>,
    signing: Arc<Mutex<()>>,
}

impl Checkpointer {
    /// A checkpointer for `store` signing with `key`.
    pub fn new(store: Arc<dyn DecisionStore>, key: LogKey) -> Self {
        Self {
            store,
            key: Arc::new(key),
            signing: Arc::new(Mutex::new(())),
        }
    }

    /// The log key.
    pub fn key(&self) -> &LogKey {
        &self.key
    }

    /// The latest checkpoint, signing one for the current tree first if the latest does not cover it.
    pub async fn checkpoint_now(&self) -> Result<StoredCheckpoint, IntegrityError> {
        let _one_signer = self.signing.lock().await;
        let size = self.store.last_seq().await?;
        if let Some(latest) = self.store.latest_checkpoint().await?
            && latest.tree_size >= size
        {
            return Ok(latest);
        }
        let root = tree_root(&*self.store, size as u64).await?;
        let checkpoint = StoredCheckpoint {
            tree_size: size,
            root,
            signed_at_us: now_us(),
            note: self.key.sign_checkpoint(size as u64, root),
        };
        self.store.add_checkpoint(&checkpoint).await?;
        metrics::counter!("acgs_audit_checkpoints_total").increment(1);
        metrics::gauge!("acgs_audit_checkpoint_size").set(size as f64);
        Ok(checkpoint)
    }

    /// A checkpoint covering entry `seq`: the latest one if it does, otherwise a new one.
    pub async fn checkpoint_covering(&self, seq: i64) -> Result<StoredCheckpoint, IntegrityError> {
        if let Some(latest) = self.store.latest_checkpoint().await?
            && latest.tree_size >= seq
        {
            return Ok(latest);
        }
        self.checkpoint_now().await
    }

    /// Sign a checkpoint whenever `every_entries` entries were added since the last one, and at least every
    /// `interval` if any were; runs until the task is dropped.
    pub async fn run(self, interval: std::time::Duration, every_entries: i64) {
        let poll = interval.min(std::time::Duration::from_secs(1));
        let mut since_last = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(poll).await;
            let due = async {
                let size = self.store.last_seq().await?;
                let covered = self.store.latest_checkpoint().await?.map_or(0, |c| c.tree_size);
                Ok::<bool, StoreError>(
                    size > covered && (size - covered >= every_entries || since_last.elapsed() >= interval),
                )
            };
            match due.await {
                Ok(true) => match self.checkpoint_now().await {
                    Ok(_) => since_last = tokio::time::Instant::now(),
                    Err(e) => tracing::error!(error = %e, "cannot sign a checkpoint"),
                },
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the audit log for checkpointing"),
            }
        }
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Recompute the stored log and check it against every stored checkpoint signed by `key`: signatures, roots
/// (the signed one and the stored copy), and consistency proofs built from the stored tree nodes between
/// consecutive checkpoints; and check every row of the decision index against the event at its sequence number,
/// and that every decision event has a row. Stops at the first problem of the log itself (an
/// `IntegrityError::Verify` naming its sequence number or checkpoint); if the log verifies, reports the first
/// index row, in sequence order, that disagrees with it (an `IntegrityError::Index` naming the sequence number,
/// decision and column).
pub async fn verify_store(store: &dyn DecisionStore, key: &VerifierKey) -> Result<VerifyReport, IntegrityError> {
    let mut verifier = LogVerifier::new(key.clone());
    // Snapshot the log while the server may keep appending: checkpoints signed before the snapshot bound what
    // must be present (one beyond the stored entries means truncation); later entries and checkpoints are left
    // for the next run.
    let checkpoint_limit = store.latest_checkpoint().await?.map_or(0, |c| c.tree_size);
    let size = store.last_seq().await?;
    let mut checkpoints = CheckpointPages::default();
    // The index is checked against events the log vouches for: its first problem is reported only if the log
    // itself verifies (an event rewritten with its leaf hash is the log's failure, not the index's).
    let mut index = IndexPages::default();
    let mut index_problem = None;
    let mut signed: Vec<(u64, Hash)> = Vec::new();
    let mut next = 1i64;
    while next <= size {
        let entries = store.audit_entries(next, ENTRY_PAGE).await?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            break;
        };
        // The verifier needs each checkpoint before the entry that completes its size.
        for e in entries.iter().filter(|e| e.seq <= size) {
            while let Some(c) = checkpoints.next_up_to(store, e.seq).await? {
                add_checkpoint(&mut verifier, &mut signed, key, c)?;
            }
            verifier.entry(e.seq as u64, &e.leaf_hash, e.event.as_deref())?;
            if index_problem.is_none() {
                index_problem = match index.row_at(store, e.seq).await? {
                    Ok(row) => crate::index::check_entry(e, row.as_ref()).err(),
                    Err(orphan) => Some(orphan),
                };
            }
        }
        next = last + 1;
    }
    // Checkpoints beyond the stored entries: the log was truncated (the verifier reports it).
    while let Some(c) = checkpoints.next_up_to(store, checkpoint_limit.max(size)).await? {
        add_checkpoint(&mut verifier, &mut signed, key, c)?;
    }
    let report = verifier.finish()?;
    // The stored nodes serve proofs: check that they prove each checkpoint consistent with the previous one.
    for pair in signed.windows(2) {
        let [(from, from_root), (to, to_root)] = [pair[0], pair[1]];
        let proof = consistency_proof(store, from, to).await;
        let ok = proof.is_ok_and(|p| acgs_audit::verify_consistency(from, to, &from_root, &to_root, &p).is_ok());
        if !ok {
            return Err(VerifyFailure::Malformed {
                seq: from + 1,
                reason: format!("stored tree nodes do not prove checkpoint {to} consistent with checkpoint {from}"),
            }
            .into());
        }
    }
    if let Some(problem) = index_problem {
        return Err(IntegrityError::Index(problem));
    }
    if let Err(problem) = index.rows_beyond(store, size).await? {
        return Err(IntegrityError::Index(problem));
    }
    Ok(report)
}

/// Give a stored checkpoint to the verifier, and keep its signed root for the consistency checks. A stored root
/// that differs from the root its note signs is reported here, naming the checkpoint; a note that does not
/// verify is left to the verifier, which reports it in order.
fn add_checkpoint(
    verifier: &mut LogVerifier,
    signed: &mut Vec<(u64, Hash)>,
    key: &VerifierKey,
    c: StoredCheckpoint,
) -> Result<(), VerifyFailure> {
    let size = c.tree_size as u64;
    if let Ok(note) = key.verify_checkpoint(&c.note)
        && note.size == size
    {
        if note.root != c.root {
            return Err(VerifyFailure::StoredRootMismatch { size });
        }
        signed.push((size, note.root));
    }
    verifier.add_checkpoint(size, c.note);
    Ok(())
}

/// Rows of the decision index read in pages, in ascending `seq`, alongside the entries.
#[derive(Debug)]
struct IndexPages {
    buffered: std::collections::VecDeque<DecisionRecord>,
    after: i64,
    exhausted: bool,
}

impl Default for IndexPages {
    fn default() -> Self {
        Self {
            buffered: Default::default(),
            after: i64::MIN, // rows at impossible sequence numbers too
            exhausted: false,
        }
    }
}

impl IndexPages {
    /// The next page into the buffer; false when there are no more rows.
    async fn fill(&mut self, store: &dyn DecisionStore) -> Result<bool, StoreError> {
        let page = store.decision_index(self.after, ENTRY_PAGE).await?;
        self.exhausted = page.len() < ENTRY_PAGE as usize;
        if let Some(last) = page.last() {
            self.after = last.seq;
        }
        self.buffered.extend(page);
        Ok(!self.buffered.is_empty())
    }

    /// The row at `seq`, if any. Entries are taken in order without gaps from 1, so a row below `seq` still
    /// buffered has no entry.
    async fn row_at(
        &mut self,
        store: &dyn DecisionStore,
        seq: i64,
    ) -> Result<Result<Option<DecisionRecord>, IndexMismatch>, StoreError> {
        if self.buffered.is_empty() && !self.exhausted {
            self.fill(store).await?;
        }
        Ok(match self.buffered.front() {
            Some(row) if row.seq < seq => Err(crate::index::without_event(row)),
            Some(row) if row.seq == seq => Ok(self.buffered.pop_front()),
            _ => Ok(None),
        })
    }

    /// After the entries up to `size`: rows beyond it are decisions appended since the snapshot, unless the log
    /// still has no entry at their sequence number.
    async fn rows_beyond(
        mut self,
        store: &dyn DecisionStore,
        size: i64,
    ) -> Result<Result<(), IndexMismatch>, StoreError> {
        let mut rows = Vec::new();
        loop {
            rows.extend(self.buffered.drain(..));
            if !self.fill(store).await? {
                break;
            }
        }
        let log_end = store.last_seq().await?;
        Ok(match rows.iter().find(|r| r.seq <= size || r.seq > log_end) {
            Some(row) => Err(crate::index::without_event(row)),
            None => Ok(()),
        })
    }
}

/// Stored checkpoints read in pages, in ascending size.
#[derive(Debug)]
struct CheckpointPages {
    buffered: std::collections::VecDeque<StoredCheckpoint>,
    after: i64,
    exhausted: bool,
}

impl Default for CheckpointPages {
    fn default() -> Self {
        Self {
            buffered: Default::default(),
            after: -1, // the empty tree's checkpoint (size 0) too
            exhausted: false,
        }
    }
}

impl CheckpointPages {
    /// The next checkpoint if its size is at most `size`.
    async fn next_up_to(
        &mut self,
        store: &dyn DecisionStore,
        size: i64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        if self.buffered.is_empty() && !self.exhausted {
            let page = store.checkpoints(self.after, ENTRY_PAGE).await?;
            self.exhausted = page.len() < ENTRY_PAGE as usize;
            if let Some(last) = page.last() {
                self.after = last.tree_size;
            }
            self.buffered.extend(page);
        }
        if self.buffered.front().is_some_and(|c| c.tree_size <= size) {
            Ok(self.buffered.pop_front())
        } else {
            Ok(None)
        }
    }
}
