//! `acgs bench`, the open-loop HTTP load generator for `POST /v1/decisions`: its options and its entry point.
//!
//! The load comes at a fixed arrival rate; latency is measured from each request's intended send time.
//!
//! Method (in full in `docs/load-generator.md`):
//! - **Request mix.** Every `tests[].request` of a constitution (the embedded example by default) is serialised to
//!   JSON once, before the run, as a caller sends it (registry entities by type and id); each is sent once to
//!   keep those the server decides (a request naming an entity it has not registered is left out); each arrival
//!   picks one uniformly at random from a seeded RNG, so runs are repeatable and client-side serialisation is
//!   never measured.
//! - **Open loop.** Request `i` is due at `start + i / rate`. Each client thread's scheduler sleeps until each of
//!   its due times and starts the send without waiting for earlier responses, so a slow server faces the same
//!   arrival rate as a fast one. Arrivals that would exceed `--max-in-flight` are counted as `dropped`; the
//!   scheduler never waits.
//! - **Latency** is `completion − intended send time` (the full response body read), recorded in microseconds in an
//!   HDR histogram. Measuring from the intended time avoids coordinated omission. The scheduler's timer is a
//!   `timerfd`, woken within the kernel's timer slack of each due time (Tokio's own timer would send requests in
//!   millisecond bursts); any delay in sending counts in the latency, so the numbers are never optimistic.
//! - **Phases.** Warm-up arrivals (the first `warmup × rate`) are sent but not recorded. The histogram and the
//!   `sent`/`ok`/error counts cover arrivals whose intended time falls in the measured window; the achieved rate is
//!   the number of 200 responses that *completed* inside the measured window divided by its length.
//! - **Bounded.** The run ends after `warmup + duration`, plus at most the client timeout for stragglers.
//!
//! Files: `mix.rs` builds the request mix, `schedule.rs` drives the arrivals at their due times on the client
//! threads, `client.rs` sends them over HTTP/1.1 connections, `record.rs` counts what came back, and `report.rs`
//! turns that into the text or JSON report.

mod client;
mod mix;
mod record;
mod report;
mod schedule;

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Uri;
use hyper::header::HeaderValue;

use anyhow::{Context, ensure};

use client::{RunConfig, Target, check_credentials, check_ready, decidable_mix};
use mix::load_mix;
use record::write_latency_log;
use report::{Report, ReportContext};
use schedule::{Plan, run_threads};

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
    /// API key sent with every request: a gateway's (role `gateway`), since the mix names many principals.
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
    let timeout = Duration::from_millis(args.timeout_ms);

    // Readiness (and the address to connect to) first, on a throwaway runtime.
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let (server, target, mix, left_out) = setup.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        let server = check_ready(&client, &ready_url, &base).await?;
        check_credentials(&client, &base, args.api_key.as_deref()).await?;
        let (mix, left_out) = decidable_mix(&client, &base, args.api_key.as_deref(), mix).await?;
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
        anyhow::Ok((server, target, mix, left_out))
    })?;
    drop(setup);
    let mix_len = mix.len();
    if left_out > 0 && !args.json {
        eprintln!(
            "acgs bench: {left_out} requests of the mix name entities {base} does not have registered; the run sends \
             the other {mix_len}"
        );
    }
    // Shared buffers: every send clones a reference to its body, never the bytes.
    let bodies: Arc<[Bytes]> = mix.into_iter().map(Bytes::from).collect();
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
