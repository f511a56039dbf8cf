//! The report: latency percentiles from the HDR histogram, the pass/fail verdict, and the text or JSON output.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::client::ServerInfo;
use super::record::{Collected, OutcomeCounts};
use super::schedule::Plan;

/// Share of the target rate below which the run fails.
const MIN_ACHIEVED_SHARE: f64 = 0.95;

/// Latency percentiles of the measured window's 200 responses, in microseconds from the intended send time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct LatencySummary {
    count: u64,
    mean: f64,
    p50: u64,
    p90: u64,
    p99: u64,
    p99_9: u64,
    max: u64,
}

impl LatencySummary {
    /// `None` for an empty histogram.
    fn from_histogram(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| LatencySummary {
            count: h.len(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// Warm-up counts (sent at the target rate, not in the latency numbers).
#[derive(Debug, Clone, Serialize)]
struct WarmupSummary {
    sent: u64,
    ok: u64,
    errors: u64,
    dropped: u64,
}

/// Facts about the run that are not measurements.
pub(super) struct ReportContext {
    pub(super) url: String,
    pub(super) server: ServerInfo,
    pub(super) mix_source: String,
    pub(super) mix_requests: usize,
    pub(super) content_bytes: usize,
    pub(super) plan: Plan,
    pub(super) max_in_flight: usize,
}

/// The request mix as reported.
#[derive(Debug, Clone, Serialize)]
struct MixSummary {
    source: String,
    requests: usize,
    content_bytes: usize,
}

/// The result of a run: printed as text or as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Report {
    url: String,
    constitution_version: Option<String>,
    constitutional_hash: Option<String>,
    request_mix: MixSummary,
    target_rps: u64,
    duration_s: u64,
    warmup_s: u64,
    /// 200 responses completed inside the measured window, per second.
    achieved_rps: f64,
    sent: u64,
    ok: u64,
    errors: u64,
    http_errors: BTreeMap<u16, u64>,
    transport_errors: u64,
    timeouts: u64,
    bad_responses: u64,
    unfinished: u64,
    dropped: u64,
    not_sent: u64,
    max_in_flight: usize,
    outcomes: OutcomeCounts,
    latency_us: Option<LatencySummary>,
    max_send_lag_us: u64,
    /// HTTP connections the client opened, warm-up included.
    connections_opened: u64,
    warmup: WarmupSummary,
    first_error: Option<String>,
    pub(super) passed: bool,
    pub(super) failures: Vec<String>,
}

impl Report {
    pub(super) fn build(ctx: ReportContext, collected: &Collected) -> Report {
        let [warm, measured] = &collected.phases;
        let measured_s = ctx.plan.measured.as_secs_f64();
        let achieved_rps = ((collected.ok_in_window as f64 / measured_s) * 10.0).round() / 10.0;
        let mut report = Report {
            url: ctx.url,
            constitution_version: ctx.server.constitution_version,
            constitutional_hash: ctx.server.constitutional_hash,
            request_mix: MixSummary {
                source: ctx.mix_source,
                requests: ctx.mix_requests,
                content_bytes: ctx.content_bytes,
            },
            target_rps: ctx.plan.rate,
            duration_s: ctx.plan.measured.as_secs(),
            warmup_s: ctx.plan.warmup.as_secs(),
            achieved_rps,
            sent: measured.sent,
            ok: measured.ok,
            errors: measured.errors(),
            http_errors: measured.http_errors.clone(),
            transport_errors: measured.transport_errors,
            timeouts: measured.timeouts,
            bad_responses: measured.bad_responses,
            unfinished: measured.unfinished(),
            dropped: measured.dropped,
            not_sent: collected.not_sent,
            max_in_flight: ctx.max_in_flight,
            outcomes: measured.outcomes,
            latency_us: LatencySummary::from_histogram(&collected.histogram),
            max_send_lag_us: u64::try_from(collected.max_lag.as_micros()).unwrap_or(u64::MAX),
            connections_opened: collected.connections_opened,
            warmup: WarmupSummary {
                sent: warm.sent,
                ok: warm.ok,
                errors: warm.errors(),
                dropped: warm.dropped,
            },
            first_error: collected.first_error.clone(),
            passed: true,
            failures: Vec::new(),
        };
        report.failures = report.evaluate();
        report.passed = report.failures.is_empty();
        report
    }

    /// Why the run failed (empty: it passed).
    fn evaluate(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.errors > 0 {
            failures.push(format!("{} of {} measured requests failed", self.errors, self.sent));
        }
        if self.warmup.errors > 0 {
            failures.push(format!(
                "{} of {} warm-up requests failed",
                self.warmup.errors, self.warmup.sent
            ));
        }
        let dropped = self.dropped + self.warmup.dropped;
        if dropped > 0 {
            failures.push(format!(
                "{dropped} arrivals dropped at the in-flight cap of {}: the server (or this client) could not keep up",
                self.max_in_flight
            ));
        }
        if self.not_sent > 0 {
            failures.push(format!(
                "{} arrivals never sent: the scheduler fell too far behind (client CPU-bound?)",
                self.not_sent
            ));
        }
        let min = self.target_rps as f64 * MIN_ACHIEVED_SHARE;
        if self.achieved_rps < min {
            failures.push(format!(
                "achieved {:.1} req/s is below {:.0} % of the target {} req/s",
                self.achieved_rps,
                MIN_ACHIEVED_SHARE * 100.0,
                self.target_rps
            ));
        }
        failures
    }

    pub(super) fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "acgs bench {}", self.url)?;
        if let (Some(version), Some(hash)) = (&self.constitution_version, &self.constitutional_hash) {
            writeln!(out, "  server constitution  {version} (hash {hash})")?;
        }
        let content = if self.request_mix.content_bytes == 0 {
            "content as in the test cases".to_owned()
        } else {
            format!("content = {} bytes of benign prose", self.request_mix.content_bytes)
        };
        writeln!(
            out,
            "  request mix          {} requests from {}, {content}",
            self.request_mix.requests, self.request_mix.source
        )?;
        writeln!(
            out,
            "  target rate          {} req/s for {} s (after {} s warm-up)",
            self.target_rps, self.duration_s, self.warmup_s
        )?;
        writeln!(
            out,
            "  achieved rate        {:.1} req/s (200 responses completed in the measured window)",
            self.achieved_rps
        )?;
        writeln!(out, "  sent                 {}", self.sent)?;
        writeln!(out, "  ok (200)             {}", self.ok)?;
        let http = if self.http_errors.is_empty() {
            "none".to_owned()
        } else {
            self.http_errors
                .iter()
                .map(|(status, n)| format!("{status} x{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            out,
            "  errors               {} (http: {http}; transport: {}, of which timeouts: {}; bad bodies: {}; unfinished: {})",
            self.errors, self.transport_errors, self.timeouts, self.bad_responses, self.unfinished
        )?;
        writeln!(
            out,
            "  dropped              {} (in-flight cap {})",
            self.dropped, self.max_in_flight
        )?;
        writeln!(
            out,
            "  outcomes             allow {}, deny {}, escalate {}",
            self.outcomes.allow, self.outcomes.deny, self.outcomes.escalate
        )?;
        writeln!(
            out,
            "  warm-up              sent {}, ok {}, errors {}, dropped {}",
            self.warmup.sent, self.warmup.ok, self.warmup.errors, self.warmup.dropped
        )?;
        match &self.latency_us {
            None => writeln!(
                out,
                "  latency              n/a (no 200 responses in the measured window)"
            )?,
            Some(l) => {
                writeln!(
                    out,
                    "  latency              from intended send time, {} responses, mean {}",
                    l.count,
                    format_latency(l.mean.round() as u64)
                )?;
                for (label, value) in [
                    ("p50", l.p50),
                    ("p90", l.p90),
                    ("p99", l.p99),
                    ("p99.9", l.p99_9),
                    ("max", l.max),
                ] {
                    writeln!(out, "    {label:<7}{}", format_latency(value))?;
                }
            }
        }
        writeln!(out, "  max send lag         {}", format_latency(self.max_send_lag_us))?;
        writeln!(out, "  connections opened   {}", self.connections_opened)?;
        if let Some(e) = &self.first_error {
            writeln!(out, "  first error          {e}")?;
        }
        if self.passed {
            writeln!(out, "result: PASS")?;
        } else {
            writeln!(out, "result: FAIL")?;
            for failure in &self.failures {
                writeln!(out, "  - {failure}")?;
            }
        }
        Ok(())
    }
}

/// `"   1234 µs    1.234 ms"`: microseconds and milliseconds, right-aligned for a column.
fn format_latency(us: u64) -> String {
    format!("{us:>9} µs {:>10.3} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use anyhow::Context;

    use super::*;
    use crate::bench::record::{HISTOGRAM_HIGH_US, HISTOGRAM_LOW_US, HISTOGRAM_SIGFIG, PhaseCounts};

    #[test]
    fn latency_formatting() {
        assert_eq!(format_latency(1234), "     1234 µs      1.234 ms");
        assert_eq!(format_latency(0), "        0 µs      0.000 ms");
        assert_eq!(format_latency(60_000_000), " 60000000 µs  60000.000 ms");
    }

    fn collected_with(latencies_us: &[u64], ok_in_window: u64) -> anyhow::Result<Collected> {
        let mut histogram = Histogram::<u64>::new_with_bounds(HISTOGRAM_LOW_US, HISTOGRAM_HIGH_US, HISTOGRAM_SIGFIG)?;
        for &us in latencies_us {
            histogram.record(us)?;
        }
        let n = latencies_us.len() as u64;
        let measured = PhaseCounts {
            sent: n,
            ok: n,
            outcomes: OutcomeCounts {
                allow: n,
                deny: 0,
                escalate: 0,
            },
            ..PhaseCounts::default()
        };
        Ok(Collected {
            phases: [PhaseCounts::default(), measured],
            histogram,
            ok_in_window,
            not_sent: 0,
            max_lag: Duration::from_micros(800),
            connections_opened: 0,
            first_error: None,
            samples: Vec::new(),
        })
    }

    fn context(rate: u64, duration: u64) -> anyhow::Result<ReportContext> {
        Ok(ReportContext {
            url: "http://127.0.0.1:8080".into(),
            server: ServerInfo::default(),
            mix_source: "test".into(),
            mix_requests: 3,
            content_bytes: 0,
            plan: Plan::new(rate, 1, duration)?,
            max_in_flight: 100,
        })
    }

    #[test]
    fn report_percentiles_and_pass() -> anyhow::Result<()> {
        let latencies: Vec<u64> = (1..=1000).collect();
        let report = Report::build(context(100, 10)?, &collected_with(&latencies, 1000)?);
        let l = report.latency_us.context("latency")?;
        assert_eq!(l.count, 1000);
        assert_eq!(l.p50, 500);
        assert_eq!(l.p90, 900);
        assert_eq!(l.p99, 990);
        assert_eq!(l.p99_9, 999);
        assert_eq!(l.max, 1000);
        assert_eq!(report.achieved_rps, 100.0);
        assert!(report.passed, "{:?}", report.failures);
        let text = report.render_text();
        assert!(text.contains("p99.9        999 µs      0.999 ms"), "{text}");
        assert!(text.contains("result: PASS"), "{text}");
        let json = serde_json::to_value(&report)?;
        assert_eq!(json["latency_us"]["p99_9"], 999);
        assert_eq!(json["achieved_rps"], 100.0);
        Ok(())
    }

    #[test]
    fn report_fails_on_low_rate_errors_and_drops() -> anyhow::Result<()> {
        let mut collected = collected_with(&[100, 200], 900)?;
        collected.phases[1].http_errors.insert(503, 2);
        collected.phases[1].sent += 2;
        collected.phases[1].dropped = 5;
        let report = Report::build(context(100, 10)?, &collected);
        assert!(!report.passed);
        assert_eq!(report.errors, 2);
        assert_eq!(report.failures.len(), 3, "{:?}", report.failures);
        assert!(report.failures.iter().any(|f| f.contains("below 95 %")));
        assert!(report.failures.iter().any(|f| f.contains("dropped")));
        let text = report.render_text();
        assert!(text.contains("503 x2"), "{text}");
        assert!(text.contains("result: FAIL"), "{text}");
        let json = serde_json::to_value(&report)?;
        assert_eq!(json["http_errors"]["503"], 2);
        Ok(())
    }
}
