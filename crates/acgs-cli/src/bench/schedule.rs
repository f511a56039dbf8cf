//! The open-loop arrival schedule: the plan, the high-resolution timer, and the client threads that keep to it.

use std::cell::{Cell, RefCell};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create, timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use anyhow::{Context, ensure};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::client::{Client, RunConfig};
use super::record::{Collected, HISTOGRAM_HIGH_US, HISTOGRAM_LOW_US, HISTOGRAM_SIGFIG};

/// Slack added to the run's hard deadlines (scheduler catch-up, channel drain).
const GRACE: Duration = Duration::from_secs(2);

/// Offset of arrival `i` from the start of the run: `i / rate` seconds, to the nanosecond, without drift.
fn due_offset(i: u64, rate: u64) -> Duration {
    let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Which part of the run an arrival belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Sent at the target rate but not recorded.
    Warmup,
    /// Recorded.
    Measured,
}

/// The arrival schedule: how many requests, and which of them are warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) rate: u64,
    warmup_requests: u64,
    total_requests: u64,
    pub(super) warmup: Duration,
    pub(super) measured: Duration,
}

impl Plan {
    pub(super) fn new(rate: u64, warmup_s: u64, duration_s: u64) -> anyhow::Result<Self> {
        ensure!(rate > 0, "--rate must be at least 1 request per second");
        ensure!(duration_s > 0, "--duration must be at least 1 second");
        let too_many = || anyhow::anyhow!("--rate × (--warmup + --duration) is too large");
        let warmup_requests = rate.checked_mul(warmup_s).ok_or_else(too_many)?;
        let measured_requests = rate.checked_mul(duration_s).ok_or_else(too_many)?;
        let total_requests = warmup_requests.checked_add(measured_requests).ok_or_else(too_many)?;
        Ok(Plan {
            rate,
            warmup_requests,
            total_requests,
            warmup: Duration::from_secs(warmup_s),
            measured: Duration::from_secs(duration_s),
        })
    }

    /// Phase of arrival `i` (`i / rate < warmup` exactly when `i < warmup × rate`).
    fn phase(&self, i: u64) -> Phase {
        if i < self.warmup_requests {
            Phase::Warmup
        } else {
            Phase::Measured
        }
    }

    /// Length of the whole schedule (warm-up and measured).
    fn length(&self) -> Duration {
        self.warmup + self.measured
    }
}

pub(super) fn phase_index(phase: Phase) -> usize {
    match phase {
        Phase::Warmup => 0,
        Phase::Measured => 1,
    }
}

/// A one-shot high-resolution timer: a Linux `timerfd` on `CLOCK_MONOTONIC` in Tokio's reactor. Tokio's own
/// timer has millisecond granularity, which would send requests in bursts at each tick and charge them up to a
/// millisecond of waiting; this one wakes within the kernel's timer slack (about 50 µs) of each due time.
struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    fn new() -> anyhow::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .context("creating a timerfd for the arrival schedule")?;
        #[expect(
            deprecated,
            reason = "Tokio 1.54 deprecated the safe constructors because a generic `T` may not own its descriptor; \
                      here the `AsyncFd` owns the `OwnedFd` for its whole life, which is the condition `register` \
                      asks callers to promise with `unsafe`, and this workspace forbids `unsafe`"
        )]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE).context("registering the timerfd")?;
        Ok(Self { fd })
    }

    /// Wait until `due` (at once if it has passed).
    async fn sleep_until(&self, due: Instant) -> anyhow::Result<()> {
        let wait = due.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Ok(());
        }
        let value = Itimerspec {
            it_interval: Timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: Timespec {
                tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(wait.subsec_nanos()),
            },
        };
        timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &value).context("arming the timerfd")?;
        loop {
            let mut guard = self.fd.readable().await.context("waiting for the timerfd")?;
            let mut expirations = [0u8; 8];
            match guard.try_io(|fd| rustix::io::read(fd.get_ref(), &mut expirations).map_err(std::io::Error::from)) {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Ok(Err(e)) => return Err(e).context("reading the timerfd"),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Run client thread `share` of the schedule that starts at `start`: sleep until each of its arrivals is due and
/// start its send without waiting for earlier responses; then wait for the responses until the hard deadline.
async fn drive(config: Arc<RunConfig>, start: Instant, share: usize) -> anyhow::Result<Collected> {
    let high = HISTOGRAM_HIGH_US.max(u64::try_from(config.timeout.as_micros()).unwrap_or(u64::MAX / 4) * 2);
    let histogram = Histogram::<u64>::new_with_bounds(HISTOGRAM_LOW_US, high, HISTOGRAM_SIGFIG)
        .context("creating the latency histogram")?;
    let plan = config.plan;
    let client = Rc::new(Client {
        config: Arc::clone(&config),
        idle: RefCell::new(Vec::new()),
        open: Cell::new(0),
        opened: Cell::new(0),
        connection_freed: Notify::new(),
        in_flight: Cell::new(0),
        all_done: Notify::new(),
        collected: RefCell::new(Collected::new(histogram)),
        window_start: start + plan.warmup,
        window_end: start + plan.warmup + plan.measured,
    });
    let timer = PreciseTimer::new()?;
    let deadline = start + plan.length() + GRACE;
    // Scheduler deadline, then at most one timeout for the last sends, then slack.
    let hard_deadline = deadline + config.timeout + GRACE;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut stats = SchedulerStats::default();
    for i in 0..plan.total_requests {
        // Every thread draws every arrival's request, so the sequence is the seed's whatever the thread count.
        let pick = rng.random_range(0..config.bodies.len());
        if usize::try_from(i % config.threads as u64).unwrap_or(0) != share {
            continue;
        }
        let intended = start + due_offset(i, plan.rate);
        timer.sleep_until(intended).await?;
        let now = Instant::now();
        if now > deadline {
            stats.not_sent = (plan.total_requests - i).div_ceil(config.threads as u64);
            break;
        }
        stats.max_lag = stats.max_lag.max(now.saturating_duration_since(intended));
        let phase = plan.phase(i);
        if client.in_flight.get() >= config.max_in_flight {
            stats.dropped[phase_index(phase)] += 1;
            continue;
        }
        client.in_flight.set(client.in_flight.get() + 1);
        stats.sent[phase_index(phase)] += 1;
        tokio::task::spawn_local(Rc::clone(&client).send(config.bodies[pick].clone(), phase, intended));
    }
    // `all_done` may hold a stale wake-up from a moment the run was idle earlier, hence the loop.
    while client.in_flight.get() > 0 {
        if tokio::time::timeout_at(hard_deadline.into(), client.all_done.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    let mut collected = std::mem::replace(
        &mut *client.collected.borrow_mut(),
        Collected::new(Histogram::new(HISTOGRAM_SIGFIG).context("histogram")?),
    );
    collected.apply(stats);
    collected.connections_opened = client.opened.get();
    Ok(collected)
}

/// The scheduler's own counts.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SchedulerStats {
    pub(super) sent: [u64; 2],
    pub(super) dropped: [u64; 2],
    /// Arrivals never attempted because the scheduler overran its hard deadline.
    pub(super) not_sent: u64,
    pub(super) max_lag: Duration,
}

/// Run every client thread and merge what they recorded.
pub(super) fn run_threads(config: &Arc<RunConfig>) -> anyhow::Result<Collected> {
    // A short lead so every thread has its runtime up before the first arrival is due.
    let start = Instant::now() + Duration::from_millis(50);
    let handles: Vec<_> = (0..config.threads)
        .map(|share| {
            let config = Arc::clone(config);
            std::thread::Builder::new()
                .name(format!("bench-client-{share}"))
                .spawn(move || -> anyhow::Result<Collected> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("building the client runtime")?;
                    let local = tokio::task::LocalSet::new();
                    let collected = local.block_on(&runtime, drive(config, start, share));
                    // Requests still unanswered at the hard deadline are dropped with the runtime.
                    drop(local);
                    collected
                })
                .context("starting a client thread")
        })
        .collect::<anyhow::Result<_>>()?;
    let mut merged: Option<Collected> = None;
    for handle in handles {
        let collected = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        match &mut merged {
            None => merged = Some(collected),
            Some(m) => m.merge(collected)?,
        }
    }
    merged.context("no client thread ran")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_exact_and_does_not_drift() {
        assert_eq!(due_offset(0, 1000), Duration::ZERO);
        assert_eq!(due_offset(1, 1000), Duration::from_millis(1));
        assert_eq!(due_offset(1000, 1000), Duration::from_secs(1));
        // 3 req/s: 1/3 s steps, exact to the nanosecond even far into the run.
        assert_eq!(due_offset(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(due_offset(3_000_000, 3), Duration::from_secs(1_000_000));
        assert_eq!(due_offset(7, 1), Duration::from_secs(7));
        // Monotone.
        let offsets: Vec<_> = (0..10_000).map(|i| due_offset(i, 7_919)).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn plan_splits_warmup_and_measured() -> anyhow::Result<()> {
        let plan = Plan::new(500, 2, 10)?;
        assert_eq!(plan.warmup_requests, 1000);
        assert_eq!(plan.total_requests, 6000);
        assert_eq!(plan.phase(0), Phase::Warmup);
        assert_eq!(plan.phase(999), Phase::Warmup);
        assert_eq!(plan.phase(1000), Phase::Measured);
        // The first measured arrival is due exactly at the end of the warm-up.
        assert_eq!(due_offset(plan.warmup_requests, plan.rate), plan.warmup);
        assert_eq!(plan.length(), Duration::from_secs(12));
        assert_eq!(Plan::new(10, 0, 1)?.phase(0), Phase::Measured);
        assert!(Plan::new(0, 1, 1).is_err());
        assert!(Plan::new(1, 1, 0).is_err());
        assert!(Plan::new(u64::MAX, 2, 2).is_err());
        Ok(())
    }
}
