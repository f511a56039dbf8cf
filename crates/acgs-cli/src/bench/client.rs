//! The HTTP client: readiness and credential checks, keep-alive connections, each request's send and answer.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use acgs_engine::Outcome;
use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

use super::record::Collected;
use super::schedule::{Phase, Plan};

/// Timeout of the readiness probe before the run.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Characters of an error response's body kept for the report.
const ERROR_DETAIL_CHARS: usize = 300;

/// Everything a client thread needs.
pub(super) struct RunConfig {
    pub(super) plan: Plan,
    pub(super) target: Target,
    pub(super) bodies: Arc<[Bytes]>,
    pub(super) max_in_flight: usize,
    /// Most connections per client thread; 0: no limit.
    pub(super) connections: usize,
    pub(super) timeout: Duration,
    pub(super) seed: u64,
    /// Client threads; thread `k` sends the arrivals `i` with `i % threads == k`.
    pub(super) threads: usize,
    /// Keep every measured request's due time, latency and status (for `--latency-log`).
    pub(super) keep_samples: bool,
}

/// Where the decisions go.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) address: SocketAddr,
    /// `Host` header value.
    pub(super) host: HeaderValue,
    /// `POST` path of the decision endpoint.
    pub(super) path: Uri,
    /// `Authorization` header value, if any.
    pub(super) authorization: Option<HeaderValue>,
}

/// What `/ready` said about the server.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct ServerInfo {
    pub(super) constitution_version: Option<String>,
    pub(super) constitutional_hash: Option<String>,
}

/// `GET {base}/ready`; an error unless it answers 200.
pub(super) async fn check_ready(
    client: &reqwest::Client,
    ready_url: &reqwest::Url,
    base: &str,
) -> anyhow::Result<ServerInfo> {
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
pub(super) enum Completion {
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

/// Before any load: the server must accept the credentials for `POST /v1/decisions`. An empty JSON object
/// passes authentication and authorization and is then refused as an invalid request, so nothing is decided
/// or logged; a 401 or 403 means every request of the run would be refused.
pub(super) async fn check_credentials(
    client: &reqwest::Client,
    base: &str,
    api_key: Option<&str>,
) -> anyhow::Result<()> {
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

/// The bodies of `mix` the server decides: each is sent once before the run (those decisions are logged like any
/// other), and the ones refused as malformed — naming an entity the registry does not hold — are left out of the
/// run; how many were. A refused credential, or a key that may not decide for a principal of the mix, ends it.
pub(super) async fn decidable_mix(
    client: &reqwest::Client,
    base: &str,
    api_key: Option<&str>,
    mix: Vec<Vec<u8>>,
) -> anyhow::Result<(Vec<Vec<u8>>, usize)> {
    let mut kept = Vec::with_capacity(mix.len());
    let mut left_out = 0;
    for body in mix {
        let mut probe = client
            .post(format!("{base}/v1/decisions"))
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(key) = api_key {
            probe = probe.bearer_auth(key);
        }
        let response = probe.send().await.with_context(|| format!("{base} is not reachable"))?;
        match response.status().as_u16() {
            200 => kept.push(body),
            400 => left_out += 1,
            403 => bail!(
                "the API key may not ask decisions for every principal of the mix (use a gateway's key, role \
                 `gateway`): {}",
                response.text().await.unwrap_or_default()
            ),
            status => bail!(
                "{base} answered {status} to a request of the mix: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    ensure!(
        !kept.is_empty(),
        "{base} refused every request of the mix: none names only registered entities (register them with \
         `acgs entities import`)"
    );
    Ok((kept, left_out))
}

/// One client thread's state: its idle keep-alive connections and what it has recorded. Everything lives on one
/// thread (a current-thread runtime with a `LocalSet`), so sends, responses and the timer never wake another
/// thread.
pub(super) struct Client {
    pub(super) config: Arc<RunConfig>,
    pub(super) idle: RefCell<Vec<SendRequest<Full<Bytes>>>>,
    /// Connections open (idle or in use).
    pub(super) open: Cell<usize>,
    /// Connections opened since the start.
    pub(super) opened: Cell<u64>,
    /// A connection became idle or was closed (for requests waiting under `--connections`).
    pub(super) connection_freed: Notify,
    pub(super) in_flight: Cell<usize>,
    pub(super) all_done: Notify,
    pub(super) collected: RefCell<Collected>,
    pub(super) window_start: Instant,
    pub(super) window_end: Instant,
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
    pub(super) async fn send(self: Rc<Self>, body: Bytes, phase: Phase, intended: Instant) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
