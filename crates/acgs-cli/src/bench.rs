//! `acgs bench`: open-loop HTTP load generator for `POST /v1/decisions` (fixed arrival rate, latency measured
//! from each request's intended send time).
//!
//! Method (see also `docs/performance.md`):
//! - **Request mix.** Every `tests[].request` of a constitution (the embedded example by default) is serialised to
//!   JSON once, before the run; each arrival picks one uniformly at random from a seeded RNG, so runs are
//!   repeatable and client-side serialisation is never measured.
//! - **Open loop.** Request `i` is due at `start + i / rate`. One scheduler task sleeps until each due time and
//!   spawns the send without waiting for earlier responses, so a slow server faces the same arrival rate as a fast
//!   one. Arrivals that would exceed `--max-in-flight` are counted as `dropped`; the scheduler never waits.
//! - **Latency** is `completion − intended send time` (the full response body read), recorded in microseconds in an
//!   HDR histogram. Measuring from the intended time avoids coordinated omission. Tokio's timer has 1 ms
//!   granularity, so requests leave in small bursts at each millisecond tick; the burst delay is included in the
//!   latency, which makes the numbers slightly pessimistic (never optimistic).
//! - **Phases.** Warm-up arrivals (the first `warmup × rate`) are sent but not recorded. The histogram and the
//!   `sent`/`ok`/error counts cover arrivals whose intended time falls in the measured window; the achieved rate is
//!   the number of 200 responses that *completed* inside the measured window divided by its length.
//! - **Bounded.** The run ends after `warmup + duration`, plus at most the client timeout for stragglers.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Uri};
use hyper_util::rt::TokioIo;
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create, timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use acgs_engine::{ConstitutionDocument, Outcome};
use anyhow::{Context, bail, ensure};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Options of `acgs bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Target arrival rate, requests per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Measured duration in seconds (after warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Warm-up seconds at the same rate, not recorded.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Constitution whose test-case requests form the request mix (default: the embedded example).
    #[arg(long)]
    pub constitution: Option<PathBuf>,
    /// Add this many bytes of realistic text as `content` to every request (0 = as in the test cases).
    #[arg(long, default_value_t = 0)]
    pub content_bytes: usize,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Safety cap on requests in flight; arrivals beyond it are counted as `dropped` (open loop never waits).
    #[arg(long, default_value_t = 20_000)]
    pub max_in_flight: usize,
    /// Per-request timeout in milliseconds (connect, send and read the whole response).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Seed of the random request-mix choice (same seed, same sequence of requests).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// API key (role `agent`) sent with every request.
    #[arg(long, env = "ACGS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Write every measured request as a CSV line (`due_us,latency_us,status`: its due time from the start of
    /// the measured window, its latency, and its HTTP status or 0 for a transport error) to this file.
    #[arg(long)]
    pub latency_log: Option<PathBuf>,
    /// Client threads, each with its own connections and timer sending every N-th arrival (one is enough for
    /// tens of thousands of requests per second and disturbs the server least).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Most HTTP connections per client thread (0: no limit). With a limit, a request that finds every
    /// connection busy waits for one, and the wait counts in its latency (from its intended send time); without
    /// one, it opens a new connection, so a stall of the server makes the client open many at once.
    #[arg(long, default_value_t = 0)]
    pub connections: usize,
}

/// Lowest latency the histogram tracks, in microseconds.
const HISTOGRAM_LOW_US: u64 = 1;
/// Highest latency the histogram tracks at least, in microseconds (60 s; raised to twice the timeout if larger).
const HISTOGRAM_HIGH_US: u64 = 60_000_000;
/// Significant figures kept by the histogram.
const HISTOGRAM_SIGFIG: u8 = 3;
/// Timeout of the readiness probe before the run.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack added to the run's hard deadlines (scheduler catch-up, channel drain).
const GRACE: Duration = Duration::from_secs(2);
/// Characters of an error response's body kept for the report.
const ERROR_DETAIL_CHARS: usize = 300;
/// Share of the target rate below which the run fails.
const MIN_ACHIEVED_SHARE: f64 = 0.95;

/// Run `acgs bench`: check the server is ready, drive the open-loop schedule, print the report.
///
/// Exits non-zero when any request failed or was dropped, or the achieved rate is below 95 % of the target.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(args.rate, args.warmup, args.duration)?;
    ensure!(args.max_in_flight > 0, "--max-in-flight must be at least 1");
    ensure!(args.timeout_ms > 0, "--timeout-ms must be at least 1");
    ensure!(args.threads > 0, "--threads must be at least 1");
    let base = args.url.trim_end_matches('/').to_owned();
    let ready_url = reqwest::Url::parse(&format!("{base}/ready"))
        .with_context(|| format!("--url `{}` is not a valid base URL", args.url))?;
    ensure!(
        ready_url.scheme() == "http",
        "--url `{}`: acgs bench speaks plain HTTP/1.1 (put it next to the server, not behind TLS)",
        args.url
    );

    let (mix_source, mix_text) = match &args.constitution {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => (
            crate::EXAMPLE_CONSTITUTION_NAME.to_owned(),
            crate::EXAMPLE_CONSTITUTION.to_owned(),
        ),
    };
    let mix = load_mix(&mix_text, args.content_bytes).with_context(|| format!("request mix from {mix_source}"))?;
    let mix_len = mix.len();
    // Shared buffers: every send clones a reference to its body, never the bytes.
    let bodies: Arc<[Bytes]> = mix.into_iter().map(Bytes::from).collect();
    let timeout = Duration::from_millis(args.timeout_ms);

    // Readiness (and the address to connect to) first, on a throwaway runtime.
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let (server, target) = setup.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        let server = check_ready(&client, &ready_url, &base).await?;
        check_credentials(&client, &base, args.api_key.as_deref()).await?;
        let host = ready_url.host_str().context("--url has no host")?.to_owned();
        let port = ready_url.port_or_known_default().context("--url has no port")?;
        let address = tokio::net::lookup_host((host.as_str(), port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let authority = match ready_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let authorization = args
            .api_key
            .as_deref()
            .map(|key| HeaderValue::from_str(&format!("Bearer {key}")))
            .transpose()
            .context("--api-key is not a valid header value")?;
        let target = Target {
            authorization,
            address,
            host: HeaderValue::from_str(&authority).context("--url host is not a valid Host header")?,
            path: Uri::from_str(&format!("{}/v1/decisions", ready_url.path().trim_end_matches("/ready")))
                .context("--url path")?,
        };
        anyhow::Ok((server, target))
    })?;
    drop(setup);
    if !args.json {
        eprintln!(
            "acgs bench: {base} ready; {} req/s for {} s after {} s warm-up ...",
            args.rate, args.duration, args.warmup
        );
    }

    let config = Arc::new(RunConfig {
        plan,
        target,
        bodies,
        max_in_flight: args.max_in_flight,
        connections: args.connections,
        timeout,
        seed: args.seed,
        threads: args.threads,
        keep_samples: args.latency_log.is_some(),
    });
    let mut collected = run_threads(&config)?;
    if let Some(path) = &args.latency_log {
        write_latency_log(path, &mut collected.samples)?;
    }

    let report = Report::build(
        ReportContext {
            url: base,
            server,
            mix_source,
            mix_requests: mix_len,
            content_bytes: args.content_bytes,
            plan,
            max_in_flight: args.max_in_flight,
        },
        &collected,
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialising the report")?
        );
        for failure in &report.failures {
            eprintln!("acgs bench: FAIL: {failure}");
        }
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Request mix
// ---------------------------------------------------------------------------------------------------------------

/// Benign business prose used for `--content-bytes`: no digits, no `@`, no colons, no injection phrases, so the
/// detectors take their realistic common path (scan, find nothing).
const BUSINESS_PROSE: &str = "The quarterly planning review covers the regional sales pipeline, supplier lead \
times and the hiring plan for the support team. Customer retention improved after the onboarding guide was \
rewritten, and the finance group expects operating costs to stay within the approved budget. Please summarise the \
main risks for the steering committee, suggest two options for the warehouse consolidation, and keep the tone \
neutral and factual. The logistics partner confirmed that deliveries to the northern stores will resume next week \
once the new routing schedule is in place. Marketing would like a short comparison of the spring campaign results \
against last year, focusing on conversion and repeat purchases rather than raw traffic. ";

/// Exactly `len` bytes of benign business prose (ASCII, the paragraph repeated as needed).
fn business_prose(len: usize) -> String {
    BUSINESS_PROSE.chars().cycle().take(len).collect()
}

/// JSON bodies of every test-case request of the constitution `toml_text`, in file order. With `content_bytes > 0`
/// each request's `content` is replaced by that many bytes of [`business_prose`].
fn load_mix(toml_text: &str, content_bytes: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let doc: ConstitutionDocument = toml::from_str(toml_text).context("parsing the constitution TOML")?;
    ensure!(
        !doc.tests.is_empty(),
        "the constitution has no [[tests]], so there are no requests to send"
    );
    let content = (content_bytes > 0).then(|| business_prose(content_bytes));
    doc.tests
        .into_iter()
        .map(|test| {
            let mut request = test.request;
            if let Some(content) = &content {
                request.content = Some(content.clone());
            }
            serde_json::to_vec(&request).with_context(|| format!("serialising the request of test `{}`", test.name))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Schedule
// ---------------------------------------------------------------------------------------------------------------

/// Offset of arrival `i` from the start of the run: `i / rate` seconds, to the nanosecond, without drift.
fn due_offset(i: u64, rate: u64) -> Duration {
    let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Which part of the run an arrival belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sent at the target rate but not recorded.
    Warmup,
    /// Recorded.
    Measured,
}

/// The arrival schedule: how many requests, and which of them are warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    rate: u64,
    warmup_requests: u64,
    total_requests: u64,
    warmup: Duration,
    measured: Duration,
}

impl Plan {
    fn new(rate: u64, warmup_s: u64, duration_s: u64) -> anyhow::Result<Self> {
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

// ---------------------------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------------------------

/// Everything a client thread needs.
struct RunConfig {
    plan: Plan,
    target: Target,
    bodies: Arc<[Bytes]>,
    max_in_flight: usize,
    /// Most connections per client thread; 0: no limit.
    connections: usize,
    timeout: Duration,
    seed: u64,
    /// Client threads; thread `k` sends the arrivals `i` with `i % threads == k`.
    threads: usize,
    /// Keep every measured request's due time, latency and status (for `--latency-log`).
    keep_samples: bool,
}

/// Where the decisions go.
#[derive(Debug, Clone)]
struct Target {
    address: SocketAddr,
    /// `Host` header value.
    host: HeaderValue,
    /// `POST` path of the decision endpoint.
    path: Uri,
    /// `Authorization` header value, if any.
    authorization: Option<HeaderValue>,
}

/// What `/ready` said about the server.
#[derive(Debug, Clone, Default, Serialize)]
struct ServerInfo {
    constitution_version: Option<String>,
    constitutional_hash: Option<String>,
}

/// `GET {base}/ready`; an error unless it answers 200.
async fn check_ready(client: &reqwest::Client, ready_url: &reqwest::Url, base: &str) -> anyhow::Result<ServerInfo> {
    let response = client
        .get(ready_url.clone())
        .timeout(READY_TIMEOUT)
        .send()
        .await
        .with_context(|| format!("server at {base} is not reachable (is `acgs up` running there?)"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "server at {base} is not ready: GET /ready answered {status}: {}",
            body.trim()
        );
    }
    let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
    Ok(ServerInfo {
        constitution_version: field("constitution_version"),
        constitutional_hash: field("constitutional_hash"),
    })
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Completion {
    /// HTTP 200 with a decision.
    Ok(Outcome),
    /// HTTP 200 whose body has no readable `decision`.
    BadBody,
    /// Any other HTTP status, with the start of its body.
    Http { status: u16, detail: String },
    /// No HTTP answer: connect, send or read failed, or the timeout expired.
    Transport { timeout: bool, message: String },
}

/// The one field of a decision response the load generator reads.
#[derive(Deserialize)]
struct DecisionOnly {
    decision: Outcome,
}

/// Classify an HTTP answer.
fn classify(status: u16, body: &[u8]) -> Completion {
    if status != 200 {
        let text = String::from_utf8_lossy(body);
        let detail: String = text.trim().chars().take(ERROR_DETAIL_CHARS).collect();
        return Completion::Http { status, detail };
    }
    match serde_json::from_slice::<DecisionOnly>(body) {
        Ok(d) => Completion::Ok(d.decision),
        Err(_) => Completion::BadBody,
    }
}

fn phase_index(phase: Phase) -> usize {
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

/// One client thread's state: its idle keep-alive connections and what it has recorded. Everything lives on one
/// thread (a current-thread runtime with a `LocalSet`), so sends, responses and the timer never wake another
/// thread.
struct Client {
    config: Arc<RunConfig>,
    idle: RefCell<Vec<SendRequest<Full<Bytes>>>>,
    /// Connections open (idle or in use).
    open: Cell<usize>,
    /// Connections opened since the start.
    opened: Cell<u64>,
    /// A connection became idle or was closed (for requests waiting under `--connections`).
    connection_freed: Notify,
    in_flight: Cell<usize>,
    all_done: Notify,
    collected: RefCell<Collected>,
    window_start: Instant,
    window_end: Instant,
}

impl Client {
    /// An idle connection, or a new one if the limit allows, or else the next one that becomes idle.
    async fn connection(&self) -> Result<(SendRequest<Full<Bytes>>, InUse<'_>), String> {
        loop {
            loop {
                let Some(mut sender) = self.idle.borrow_mut().pop() else {
                    break;
                };
                if sender.is_closed() {
                    self.closed();
                    continue;
                }
                if sender.ready().await.is_ok() {
                    return Ok((sender, InUse::new(self)));
                }
                self.closed();
            }
            let limit = self.config.connections;
            if limit == 0 || self.open.get() < limit {
                break;
            }
            self.connection_freed.notified().await;
        }
        self.open.set(self.open.get() + 1);
        self.opened.set(self.opened.get() + 1);
        match self.connect().await {
            Ok(sender) => Ok((sender, InUse::new(self))),
            Err(message) => {
                self.closed();
                Err(message)
            }
        }
    }

    /// A new HTTP/1.1 connection to the target.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(self.config.target.address)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.config.target.address))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("setting TCP_NODELAY: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| error_chain("HTTP handshake", &e))?;
        tokio::task::spawn_local(async move {
            // Ends when the connection closes; a broken connection shows as the failure of its request.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// A connection was dropped: one fewer open, and a waiting request may open another.
    fn closed(&self) {
        self.open.set(self.open.get() - 1);
        self.connection_freed.notify_one();
    }

    /// Send one decision request and read the whole response.
    async fn exchange(&self, body: Bytes) -> Completion {
        let (mut sender, in_use) = match self.connection().await {
            Ok(connection) => connection,
            Err(message) => {
                return Completion::Transport {
                    timeout: false,
                    message,
                };
            }
        };
        let target = &self.config.target;
        let mut request = hyper::Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = target.path.clone();
        request.headers_mut().insert(HOST, target.host.clone());
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(authorization) = &target.authorization {
            request.headers_mut().insert(AUTHORIZATION, authorization.clone());
        }
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(e) => {
                return Completion::Transport {
                    timeout: false,
                    message: error_chain("sending the request", &e),
                };
            }
        };
        let status = response.status().as_u16();
        match response.into_body().collect().await {
            Ok(body) => {
                in_use.give_back(sender);
                classify(status, &body.to_bytes())
            }
            Err(e) => Completion::Transport {
                timeout: false,
                message: error_chain("reading the response", &e),
            },
        }
    }

    /// Send arrival `phase`/`intended` with a timeout, then record it.
    async fn send(self: Rc<Self>, body: Bytes, phase: Phase, intended: Instant) {
        let completion = match tokio::time::timeout(self.config.timeout, self.exchange(body)).await {
            Ok(completion) => completion,
            Err(_) => Completion::Transport {
                timeout: true,
                message: format!("no complete response within {} ms", self.config.timeout.as_millis()),
            },
        };
        let completed = Instant::now();
        let mut collected = self.collected.borrow_mut();
        if self.config.keep_samples && phase == Phase::Measured {
            let status = match &completion {
                Completion::Ok(_) | Completion::BadBody => 200,
                Completion::Http { status, .. } => *status,
                Completion::Transport { .. } => 0,
            };
            collected.samples.push((
                intended.saturating_duration_since(self.window_start),
                completed.saturating_duration_since(intended),
                status,
            ));
        }
        collected.record(
            phase,
            intended,
            completed,
            completion,
            self.window_start,
            self.window_end,
        );
        drop(collected);
        self.in_flight.set(self.in_flight.get() - 1);
        if self.in_flight.get() == 0 {
            self.all_done.notify_one();
        }
    }
}

/// Counts a connection in use by one request as open. Given back after a complete response, the connection
/// joins the idle ones; dropped instead (an error, a timeout dropping the request), it is closed, which frees
/// its place under `--connections`.
struct InUse<'c> {
    client: &'c Client,
    given_back: bool,
}

impl<'c> InUse<'c> {
    fn new(client: &'c Client) -> Self {
        Self {
            client,
            given_back: false,
        }
    }

    /// Put the connection back among the idle ones.
    fn give_back(mut self, sender: SendRequest<Full<Bytes>>) {
        self.client.idle.borrow_mut().push(sender);
        self.client.connection_freed.notify_one();
        self.given_back = true;
    }
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        if !self.given_back {
            self.client.closed();
        }
    }
}

fn error_chain(what: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = format!("{what}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(message, ": {s}");
        source = s.source();
    }
    message
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
struct SchedulerStats {
    sent: [u64; 2],
    dropped: [u64; 2],
    /// Arrivals never attempted because the scheduler overran its hard deadline.
    not_sent: u64,
    max_lag: Duration,
}

/// Counts for one phase.
#[derive(Debug, Default, Clone, Serialize)]
struct PhaseCounts {
    sent: u64,
    ok: u64,
    http_errors: BTreeMap<u16, u64>,
    transport_errors: u64,
    timeouts: u64,
    bad_responses: u64,
    dropped: u64,
    outcomes: OutcomeCounts,
}

impl PhaseCounts {
    fn completed(&self) -> u64 {
        self.ok + self.http_errors.values().sum::<u64>() + self.transport_errors + self.bad_responses
    }

    fn unfinished(&self) -> u64 {
        self.sent.saturating_sub(self.completed())
    }

    /// Failed requests: HTTP errors, transport errors (timeouts included), unreadable bodies, unfinished.
    fn errors(&self) -> u64 {
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
struct OutcomeCounts {
    allow: u64,
    deny: u64,
    escalate: u64,
}

/// Everything recorded during a run (by one client thread, or merged).
struct Collected {
    phases: [PhaseCounts; 2],
    /// Latency of the measured window's 200 responses, µs from the intended send time.
    histogram: Histogram<u64>,
    /// 200 responses that completed inside the measured window, whatever their phase.
    ok_in_window: u64,
    not_sent: u64,
    max_lag: Duration,
    /// HTTP connections the client opened, warm-up included.
    connections_opened: u64,
    first_error: Option<String>,
    /// Measured requests as (due time from the window's start, latency, HTTP status or 0), if kept.
    samples: Vec<(Duration, Duration, u16)>,
}

impl Collected {
    fn new(histogram: Histogram<u64>) -> Self {
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

    fn apply(&mut self, stats: SchedulerStats) {
        for (counts, (sent, dropped)) in self.phases.iter_mut().zip(stats.sent.into_iter().zip(stats.dropped)) {
            counts.sent = sent;
            counts.dropped = dropped;
        }
        self.not_sent = stats.not_sent;
        self.max_lag = stats.max_lag;
    }

    /// Add another thread's records.
    fn merge(&mut self, other: Collected) -> anyhow::Result<()> {
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

    fn record(
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
/// Before any load: the server must accept the credentials for `POST /v1/decisions`. An empty JSON object
/// passes authentication and authorization and is then refused as an invalid request, so nothing is decided
/// or logged; a 401 or 403 means every request of the run would be refused.
async fn check_credentials(client: &reqwest::Client, base: &str, api_key: Option<&str>) -> anyhow::Result<()> {
    let mut probe = client
        .post(format!("{base}/v1/decisions"))
        .header(CONTENT_TYPE, "application/json")
        .body("{}");
    if let Some(key) = api_key {
        probe = probe.bearer_auth(key);
    }
    let response = probe.send().await.with_context(|| format!("{base} is not reachable"))?;
    match response.status().as_u16() {
        401 if api_key.is_none() => bail!("{base} requires an API key: pass --api-key (or set ACGS_API_KEY)"),
        401 => bail!(
            "{base} refused the API key: {}",
            response.text().await.unwrap_or_default()
        ),
        403 => bail!(
            "the API key may not create decisions on {base} (it needs the `agent` role): {}",
            response.text().await.unwrap_or_default()
        ),
        _ => Ok(()),
    }
}

fn write_latency_log(path: &std::path::Path, samples: &mut [(Duration, Duration, u16)]) -> anyhow::Result<()> {
    samples.sort_unstable_by_key(|s| s.0);
    let mut out = String::with_capacity(samples.len() * 24 + 32);
    out.push_str("due_us,latency_us,status\n");
    for (due, latency, status) in samples.iter() {
        let _ = writeln!(out, "{},{},{status}", due.as_micros(), latency.as_micros());
    }
    std::fs::write(path, out).with_context(|| format!("writing the latency log {}", path.display()))
}

/// Run every client thread and merge what they recorded.
fn run_threads(config: &Arc<RunConfig>) -> anyhow::Result<Collected> {
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

// ---------------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------------

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
struct ReportContext {
    url: String,
    server: ServerInfo,
    mix_source: String,
    mix_requests: usize,
    content_bytes: usize,
    plan: Plan,
    max_in_flight: usize,
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
struct Report {
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
    passed: bool,
    failures: Vec<String>,
}

impl Report {
    fn build(ctx: ReportContext, collected: &Collected) -> Report {
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

    fn render_text(&self) -> String {
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

    #[test]
    fn mix_comes_from_the_embedded_constitution() -> anyhow::Result<()> {
        let doc: ConstitutionDocument = toml::from_str(crate::EXAMPLE_CONSTITUTION)?;
        let mix = load_mix(crate::EXAMPLE_CONSTITUTION, 0)?;
        assert_eq!(mix.len(), doc.tests.len());
        assert!(!mix.is_empty());
        for (body, test) in mix.iter().zip(&doc.tests) {
            let back: acgs_engine::DecisionRequest = serde_json::from_slice(body)?;
            assert_eq!(back, test.request);
        }
        Ok(())
    }

    #[test]
    fn content_bytes_replaces_content_everywhere() -> anyhow::Result<()> {
        let mix = load_mix(crate::EXAMPLE_CONSTITUTION, 4096)?;
        for body in &mix {
            let request: acgs_engine::DecisionRequest = serde_json::from_slice(body)?;
            assert_eq!(request.content.as_deref().map(str::len), Some(4096));
        }
        Ok(())
    }

    #[test]
    fn mix_needs_tests() {
        let without_tests = crate::EXAMPLE_CONSTITUTION
            .split("\n[[tests]]")
            .next()
            .unwrap_or_default()
            .to_owned();
        let err = load_mix(&without_tests, 0)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("no [[tests]]"), "{err}");
        assert!(load_mix("not toml [", 0).is_err());
    }

    #[test]
    fn prose_is_exact_length_and_benign() {
        for len in [1, 100, BUSINESS_PROSE.len(), BUSINESS_PROSE.len() * 3 + 17, 65_536] {
            let text = business_prose(len);
            assert_eq!(text.len(), len);
            assert!(text.is_ascii());
        }
        let detectors = acgs_engine::Detectors::new();
        let text = business_prose(64 * 1024);
        let found = detectors.scan(&text);
        assert!(found.is_empty(), "benign prose triggered detectors: {found:?}");
    }

    #[test]
    fn classify_reads_only_the_decision() {
        assert_eq!(
            classify(200, br#"{"decision":"escalate","decision_id":"x","reasons":[]}"#),
            Completion::Ok(Outcome::Escalate)
        );
        assert_eq!(classify(200, br#"{"decision":"deny"}"#), Completion::Ok(Outcome::Deny));
        assert_eq!(classify(200, b"{}"), Completion::BadBody);
        assert_eq!(classify(200, br#"{"decision":"maybe"}"#), Completion::BadBody);
        assert_eq!(
            classify(503, br#" {"error":"overloaded"} "#),
            Completion::Http {
                status: 503,
                detail: r#"{"error":"overloaded"}"#.to_owned()
            }
        );
        let long = "x".repeat(1000);
        assert!(matches!(
            classify(400, long.as_bytes()),
            Completion::Http { status: 400, detail } if detail.len() == ERROR_DETAIL_CHARS
        ));
    }

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
