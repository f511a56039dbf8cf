//! The group-commit writer: callers hand over a record and wait until it is committed; one writer commits
//! whatever has queued up since its last commit in a single transaction.
//!
//! While one batch commits, the next one accumulates, so the cost of a commit (an fsync on SQLite with
//! `synchronous=FULL`) is shared by every decision in the batch. A caller is answered only after its
//! record is durable; if the batch fails, every caller in it gets an error (and the server answers 503
//! instead of a decision: nothing is answered that is not logged).
//!
//! The writer is a thread of its own when the store can commit synchronously (SQLite): under load it goes
//! from one commit straight to the next batch without ever sleeping, so no thread has to be woken per batch.
//! Otherwise (PostgreSQL) it is an async task on the caller's runtime.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::{DecisionRecord, DecisionStore, LogError, NewEvent};

/// Times the writer yields to let more records arrive before it commits a batch.
const GATHER_YIELDS: usize = 8;

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    /// Most records committed in one transaction.
    pub max_batch: usize,
    /// Records that may wait for the writer before appends are refused as overload.
    pub queue_capacity: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue_capacity: 16 * 1024,
        }
    }
}

#[expect(
    clippy::large_enum_variant,
    reason = "Append is the message on the hot path; boxing it would add an allocation per decision"
)]
enum Message {
    Append {
        event: NewEvent,
        done: oneshot::Sender<Result<i64, LogError>>,
    },
    /// Commit everything queued before this message, acknowledge, and stop.
    Shutdown(oneshot::Sender<()>),
}

/// Least time between two write probes while the last commit has failed.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Longest a write probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether decisions can be recorded, as the last commit (or, after a failed one, the last probe) found.
#[derive(Debug, Default)]
struct WriteHealth {
    /// Why the last commit failed; `None` once a commit or a probe succeeds.
    failure: Mutex<Option<String>>,
    /// When the last probe ran and what it found.
    probed: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl WriteHealth {
    fn commit_result<T>(&self, result: &Result<T, crate::StoreError>) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(_) => *failure = None,
            Err(e) => *failure = Some(e.to_string()),
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Handle to the group-commit writer. Cloneable; [`DecisionLog::shutdown`] drains it.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<Message>,
    store: Arc<dyn DecisionStore>,
    health: Arc<WriteHealth>,
}

impl DecisionLog {
    /// Start the writer: a thread of its own if the store offers a [`crate::BlockingAppend`], otherwise a task
    /// on the current Tokio runtime.
    pub fn start(store: Arc<dyn DecisionStore>, config: LogConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let max_batch = config.max_batch.max(1);
        let health = Arc::new(WriteHealth::default());
        let writer_health = Arc::clone(&health);
        match store.blocking_appender() {
            Some(appender) => {
                let spawned = std::thread::Builder::new()
                    .name("acgs-log-writer".into())
                    .spawn(move || run_blocking_writer(appender, rx, max_batch, &writer_health));
                if let Err(e) = spawned {
                    // Without a writer every append fails with `Closed` (the receiver is gone): fail closed.
                    tracing::error!(error = %e, "cannot start the decision log writer thread");
                }
            }
            None => {
                tokio::spawn(run_writer(store.clone(), rx, max_batch, writer_health));
            }
        }
        Self { tx, store, health }
    }

    /// Whether a decision can be recorded now: `Ok` unless the last commit failed. After a failed commit a
    /// write probe ([`DecisionStore::probe_write`], at most one a second) decides, and its success counts as
    /// recovery (as does the next successful commit). The error says why decisions cannot be recorded.
    pub async fn writable(&self) -> Result<(), String> {
        let Some(failure) = self.health.failure() else {
            return Ok(());
        };
        if let Some((at, found)) = &*self.health.probed.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < PROBE_INTERVAL
        {
            return found.clone();
        }
        let found = match tokio::time::timeout(PROBE_TIMEOUT, self.store.probe_write()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "the last commit failed ({failure}); a write probe failed too: {e}"
            )),
            Err(_) => Err(format!(
                "the last commit failed ({failure}); a write probe did not finish within {} s",
                PROBE_TIMEOUT.as_secs()
            )),
        };
        *self.health.probed.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), found.clone()));
        if found.is_ok() {
            tracing::info!("a write probe succeeded after a failed commit: ready again");
            self.health.commit_result(&Ok(()));
        }
        found
    }

    /// The underlying store (for reads).
    pub fn store(&self) -> &Arc<dyn DecisionStore> {
        &self.store
    }

    /// Append one decision and wait until it is committed; returns its sequence number.
    pub async fn append(&self, record: DecisionRecord) -> Result<i64, LogError> {
        // A record the log cannot hold is not recorded, so it must not be answered either: like a failed write.
        let event = NewEvent::decision(record).map_err(|e| LogError::WriteFailed(e.to_string()))?;
        self.append_event(event).await
    }

    /// Append one event of any kind and wait until it is committed (in a batch with whatever else is queued);
    /// returns its sequence number.
    pub async fn append_event(&self, event: NewEvent) -> Result<i64, LogError> {
        let (done, wait) = oneshot::channel();
        self.tx.try_send(Message::Append { event, done }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LogError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => LogError::Closed,
        })?;
        wait.await.map_err(|_| LogError::Closed)?
    }

    /// Commit everything already queued, then stop the writer; later appends fail with
    /// [`LogError::Closed`]. Call after the server has stopped accepting requests.
    pub async fn shutdown(&self) {
        let (ack, wait) = oneshot::channel();
        if self.tx.send(Message::Shutdown(ack)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// What the writer does with one gathered run of messages.
struct Gathered {
    events: Vec<NewEvent>,
    waiters: Vec<oneshot::Sender<Result<i64, LogError>>>,
    /// A shutdown request among them: commit the records before it, then stop.
    shutdown: Option<oneshot::Sender<()>>,
}

impl Gathered {
    /// Split messages into the batch to commit and a shutdown request; appends after a shutdown are refused.
    fn from(messages: &mut Vec<Message>) -> Self {
        let mut gathered = Gathered {
            events: Vec::with_capacity(messages.len()),
            waiters: Vec::with_capacity(messages.len()),
            shutdown: None,
        };
        for message in messages.drain(..) {
            match message {
                Message::Append { event, done } if gathered.shutdown.is_none() => {
                    gathered.events.push(event);
                    gathered.waiters.push(done);
                }
                Message::Append { done, .. } => {
                    let _ = done.send(Err(LogError::Closed));
                }
                Message::Shutdown(ack) => gathered.shutdown = Some(ack),
            }
        }
        gathered
    }
}

/// After a shutdown's batch is committed: refuse whatever is still queued and acknowledge.
fn finish_shutdown(rx: &mut mpsc::Receiver<Message>, ack: oneshot::Sender<()>) {
    rx.close();
    while let Ok(message) = rx.try_recv() {
        match message {
            Message::Append { done, .. } => {
                let _ = done.send(Err(LogError::Closed));
            }
            Message::Shutdown(other) => {
                let _ = other.send(());
            }
        }
    }
    let _ = ack.send(());
}

/// The writer as a thread: block for the first message, take whatever else is queued, commit, repeat.
fn run_blocking_writer(
    mut append: Box<dyn crate::BlockingAppend>,
    mut rx: mpsc::Receiver<Message>,
    max_batch: usize,
    health: &WriteHealth,
) {
    let mut messages: Vec<Message> = Vec::with_capacity(max_batch);
    loop {
        match rx.blocking_recv() {
            Some(message) => messages.push(message),
            None => {
                // Every handle dropped.
                append.finish();
                return;
            }
        }
        while messages.len() < max_batch {
            match rx.try_recv() {
                Ok(message) => messages.push(message),
                Err(_) => break,
            }
        }
        let gathered = Gathered::from(&mut messages);
        if !gathered.events.is_empty() {
            let started = Instant::now();
            let result = append.append_events(&gathered.events);
            health.commit_result(&result);
            report(result, started, gathered.waiters);
            append.after_commit();
            if rx.is_empty() {
                append.idle();
            }
        }
        if let Some(ack) = gathered.shutdown {
            append.finish();
            finish_shutdown(&mut rx, ack);
            return;
        }
    }
}

/// The writer as an async task.
async fn run_writer(
    store: Arc<dyn DecisionStore>,
    mut rx: mpsc::Receiver<Message>,
    max_batch: usize,
    health: Arc<WriteHealth>,
) {
    let mut messages: Vec<Message> = Vec::with_capacity(max_batch);
    loop {
        if rx.recv_many(&mut messages, max_batch).await == 0 {
            return; // every handle dropped
        }
        // Under load, let the handlers that are ready to run enqueue their records before committing:
        // yielding costs nothing when nothing else is runnable (light load adds no latency) and grows
        // the batch when requests are arriving, sharing one commit among more decisions.
        for _ in 0..GATHER_YIELDS {
            if messages.len() >= max_batch {
                break;
            }
            tokio::task::yield_now().await;
            let before = messages.len();
            while messages.len() < max_batch {
                match rx.try_recv() {
                    Ok(message) => messages.push(message),
                    Err(_) => break,
                }
            }
            if messages.len() == before {
                break;
            }
        }
        let gathered = Gathered::from(&mut messages);
        if !gathered.events.is_empty() {
            let started = Instant::now();
            let result = store.append_events(&gathered.events).await;
            health.commit_result(&result);
            report(result, started, gathered.waiters);
        }
        if let Some(ack) = gathered.shutdown {
            finish_shutdown(&mut rx, ack);
            return;
        }
    }
}

/// Record a commit's metrics and answer every caller in its batch.
fn report(
    result: Result<i64, crate::StoreError>,
    started: Instant,
    waiters: Vec<oneshot::Sender<Result<i64, LogError>>>,
) {
    metrics::histogram!("acgs_audit_write_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("acgs_audit_batch_size").record(waiters.len() as f64);
    match result {
        Ok(first) => {
            // The batch's events have consecutive sequence numbers, in the order they were queued.
            for (done, seq) in waiters.into_iter().zip(first..) {
                let _ = done.send(Ok(seq));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, batch = waiters.len(), "audit log batch failed");
            metrics::counter!("acgs_audit_write_failures_total").increment(1);
            let message = e.to_string();
            for done in waiters {
                let _ = done.send(Err(LogError::WriteFailed(message.clone())));
            }
        }
    }
}
