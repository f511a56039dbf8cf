//! What a run records: per-phase counts and the latency histogram, merged across threads; the `--latency-log`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use acgs_engine::Outcome;
use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::client::Completion;
use super::schedule::{Phase, SchedulerStats, phase_index};

/// Lowest latency the histogram tracks, in microseconds.
pub(super) const HISTOGRAM_LOW_US: u64 = 1;
/// Highest latency the histogram tracks at least, in microseconds (60 s; raised to twice the timeout if larger).
pub(super) const HISTOGRAM_HIGH_US: u64 = 60_000_000;
/// Significant figures kept by the histogram.
pub(super) const HISTOGRAM_SIGFIG: u8 = 3;

/// Counts for one phase.
#[derive(Debug, Default, Clone, Serialize)]
pub(super) struct PhaseCounts {
    pub(super) sent: u64,
    pub(super) ok: u64,
    pub(super) http_errors: BTreeMap<u16, u64>,
    pub(super) transport_errors: u64,
    pub(super) timeouts: u64,
    pub(super) bad_responses: u64,
    pub(super) dropped: u64,
    pub(super) outcomes: OutcomeCounts,
}

impl PhaseCounts {
    fn completed(&self) -> u64 {
        self.ok + self.http_errors.values().sum::<u64>() + self.transport_errors + self.bad_responses
    }

    pub(super) fn unfinished(&self) -> u64 {
        self.sent.saturating_sub(self.completed())
    }

    /// Failed requests: HTTP errors, transport errors (timeouts included), unreadable bodies, unfinished.
    pub(super) fn errors(&self) -> u64 {
        self.http_errors.values().sum::<u64>() + self.transport_errors + self.bad_responses + self.unfinished()
    }

    fn add(&mut self, other: &PhaseCounts) {
        self.sent += other.sent;
        self.ok += other.ok;
        for (status, n) in &other.http_errors {
            *self.http_errors.entry(*status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.timeouts += other.timeouts;
        self.bad_responses += other.bad_responses;
        self.dropped += other.dropped;
        self.outcomes.allow += other.outcomes.allow;
        self.outcomes.deny += other.outcomes.deny;
        self.outcomes.escalate += other.outcomes.escalate;
    }
}

/// Decisions of the 200 responses.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct OutcomeCounts {
    pub(super) allow: u64,
    pub(super) deny: u64,
    pub(super) escalate: u64,
}

/// Everything recorded during a run (by one client thread, or merged).
pub(super) struct Collected {
    pub(super) phases: [PhaseCounts; 2],
    /// Latency of the measured window's 200 responses, µs from the intended send time.
    pub(super) histogram: Histogram<u64>,
    /// 200 responses that completed inside the measured window, whatever their phase.
    pub(super) ok_in_window: u64,
    pub(super) not_sent: u64,
    pub(super) max_lag: Duration,
    /// HTTP connections the client opened, warm-up included.
    pub(super) connections_opened: u64,
    pub(super) first_error: Option<String>,
    /// Measured requests as (due time from the window's start, latency, HTTP status or 0), if kept.
    pub(super) samples: Vec<(Duration, Duration, u16)>,
}

impl Collected {
    pub(super) fn new(histogram: Histogram<u64>) -> Self {
        Self {
            phases: [PhaseCounts::default(), PhaseCounts::default()],
            histogram,
            ok_in_window: 0,
            not_sent: 0,
            max_lag: Duration::ZERO,
            connections_opened: 0,
            first_error: None,
            samples: Vec::new(),
        }
    }

    pub(super) fn apply(&mut self, stats: SchedulerStats) {
        for (counts, (sent, dropped)) in self.phases.iter_mut().zip(stats.sent.into_iter().zip(stats.dropped)) {
            counts.sent = sent;
            counts.dropped = dropped;
        }
        self.not_sent = stats.not_sent;
        self.max_lag = stats.max_lag;
    }

    /// Add another thread's records.
    pub(super) fn merge(&mut self, other: Collected) -> anyhow::Result<()> {
        for (mine, theirs) in self.phases.iter_mut().zip(&other.phases) {
            mine.add(theirs);
        }
        self.histogram
            .add(&other.histogram)
            .map_err(|e| anyhow::anyhow!("merging latency histograms: {e:?}"))?;
        self.ok_in_window += other.ok_in_window;
        self.not_sent += other.not_sent;
        self.max_lag = self.max_lag.max(other.max_lag);
        self.connections_opened += other.connections_opened;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.samples.extend(other.samples);
        Ok(())
    }

    pub(super) fn record(
        &mut self,
        phase: Phase,
        intended: Instant,
        completed: Instant,
        completion: Completion,
        window_start: Instant,
        window_end: Instant,
    ) {
        let counts = &mut self.phases[phase_index(phase)];
        match completion {
            Completion::Ok(outcome) => {
                counts.ok += 1;
                match outcome {
                    Outcome::Allow => counts.outcomes.allow += 1,
                    Outcome::Deny => counts.outcomes.deny += 1,
                    Outcome::Escalate => counts.outcomes.escalate += 1,
                }
                if completed >= window_start && completed < window_end {
                    self.ok_in_window += 1;
                }
                if phase == Phase::Measured {
                    let latency = completed.saturating_duration_since(intended);
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    self.histogram.saturating_record(us.max(HISTOGRAM_LOW_US));
                }
            }
            Completion::BadBody => {
                counts.bad_responses += 1;
                self.first_error
                    .get_or_insert_with(|| "HTTP 200 without a readable `decision` field".to_owned());
            }
            Completion::Http { status, detail } => {
                *counts.http_errors.entry(status).or_default() += 1;
                self.first_error
                    .get_or_insert_with(|| format!("HTTP {status}: {detail}"));
            }
            Completion::Transport { timeout, message } => {
                counts.transport_errors += 1;
                if timeout {
                    counts.timeouts += 1;
                }
                self.first_error.get_or_insert(message);
            }
        }
    }
}

/// `--latency-log`: one CSV line per measured request, in due-time order.
pub(super) fn write_latency_log(
    path: &std::path::Path,
    samples: &mut [(Duration, Duration, u16)],
) -> anyhow::Result<()> {
    samples.sort_unstable_by_key(|s| s.0);
    let mut out = String::with_capacity(samples.len() * 24 + 32);
    out.push_str("due_us,latency_us,status\n");
    for (due, latency, status) in samples.iter() {
        let _ = writeln!(out, "{},{},{status}", due.as_micros(), latency.as_micros());
    }
    std::fs::write(path, out).with_context(|| format!("writing the latency log {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_requests_are_errors() {
        let counts = PhaseCounts {
            sent: 10,
            ok: 7,
            transport_errors: 1,
            ..PhaseCounts::default()
        };
        assert_eq!(counts.unfinished(), 2);
        assert_eq!(counts.errors(), 3);
    }
}
