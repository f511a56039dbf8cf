//! HTTP/1 connections: the accept loop with a cap on open connections, the deadlines that close a connection
//! whose client is slow to send a request head or that sits idle between requests, the body deadline handed to
//! the extractors, and graceful shutdown.
//!
//! Each connection is in one of three phases. It opens *awaiting a head*: the request line and headers must be
//! complete within [`ConnectionLimits::header_timeout`]. While a request is handled it is *busy* and has no
//! connection deadline (reading the body has its own, [`BodyDeadline`], enforced where the body is read, which
//! answers 408). After the response it is *idle*: if no byte of a next request arrives within
//! [`ConnectionLimits::idle_timeout`] it is closed; once one does, the head deadline applies again. A deadline
//! that passes closes the socket (there is no request to answer). At most [`ConnectionLimits::max_connections`]
//! are open at once; the next is accepted only when one closes, and waits in the kernel's backlog meanwhile.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// Default most connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default time a client has to send a complete request head.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a request body, counted from the end of its head.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a keep-alive connection may sit idle between requests. Longer than the 60 s idle timeout that
/// load balancers commonly use, so that the balancer, not ACGS, closes an idle connection it pools.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default time in-flight requests get to finish at shutdown before their connections are closed.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How many connections may be open and how long a client may take: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// From the connection's start, or from the first byte of a later request, until its head is complete.
    pub header_timeout: Duration,
    /// From the end of a request's head until its body has been read (enforced by the JSON extractor: 408).
    pub body_timeout: Duration,
    /// From the end of a response until the first byte of the next request.
    pub idle_timeout: Duration,
    /// At shutdown, how long in-flight requests may take before their connections are closed.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// When the body of this request must have been read: a request extension set when its head was complete.
/// Absent on requests that did not come through [`serve_connections`] (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyDeadline(pub Instant);

/// Accept connections on `listener` and serve `router` on each until `shutdown` completes; then stop accepting,
/// let idle connections close and in-flight requests finish (for at most `limits.shutdown_grace`).
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    // No timer is set, so hyper's own header timeout (which would also end idle connections) stays off: the
    // deadlines are this module's.
    http.keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.map_err(io::Error::other)?,
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors or memory: wait, as axum's own loop does, instead of spinning.
                tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            http: http.clone(),
            router: router.clone(),
            limits,
            peer,
        };
        let stopped = stopped.clone();
        tokio::spawn(async move {
            metrics::gauge!("acgs_http_connections_open").increment(1.0);
            connection.run(stream, stopped).await;
            metrics::gauge!("acgs_http_connections_open").decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = limits.shutdown_grace.as_secs_f64(),
            "requests still in flight after the shutdown grace period; closing their connections"
        );
    }
    Ok(())
}

/// Errors of one connection attempt that say nothing about the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection and what serving it needs.
struct Connection {
    http: hyper::server::conn::http1::Builder,
    router: Router,
    limits: ConnectionLimits,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stopped: watch::Receiver<bool>) {
        let phase = Arc::new(PhaseClock::new(self.limits));
        let io = TokioIo::new(DeadlineIo::new(stream, phase.clone()));
        let (router, peer, body_timeout) = (self.router, self.peer, self.limits.body_timeout);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let head_done = Instant::now();
            phase.request_started();
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(BodyDeadline(head_done + body_timeout));
            let (router, phase) = (router.clone(), phase.clone());
            async move {
                let response = router.oneshot(request).await;
                phase.response_sent();
                response
            }
        });
        let connection = self.http.serve_connection(io, service);
        tokio::pin!(connection);
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = stop => {
                // Shutdown: an idle connection closes now, a busy one after its response.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
        }
    }
}

/// Where a connection is in its request cycle, and the deadline that phase has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head, which must be complete by the deadline.
    AwaitingHead(Instant),
    /// A request is being handled: no connection deadline.
    Busy,
    /// Between requests: the next must begin by the deadline.
    Idle(Instant),
}

/// The phase of one connection, moved on by its reads (a first byte after idling) and by its service (a head
/// complete, a response produced).
#[derive(Debug)]
struct PhaseClock {
    state: Mutex<PhaseState>,
    limits: ConnectionLimits,
}

#[derive(Debug)]
struct PhaseState {
    phase: Phase,
    /// The task last told that a read is pending: woken when the phase gains a deadline, since hyper does not
    /// read again (and so would not arm the timer) until the socket has data.
    reader: Option<Waker>,
}

impl PhaseClock {
    fn new(limits: ConnectionLimits) -> Self {
        Self {
            state: Mutex::new(PhaseState {
                phase: Phase::AwaitingHead(Instant::now() + limits.header_timeout),
                reader: None,
            }),
            limits,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PhaseState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current phase; `waker` is woken when it changes to one with a deadline.
    fn phase_for(&self, waker: &Waker) -> Phase {
        let mut state = self.state();
        if !state.reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.reader = Some(waker.clone());
        }
        state.phase
    }

    fn bytes_arrived(&self) {
        let mut state = self.state();
        if let Phase::Idle(_) = state.phase {
            state.phase = Phase::AwaitingHead(Instant::now() + self.limits.header_timeout);
        }
    }

    fn request_started(&self) {
        self.state().phase = Phase::Busy;
    }

    fn response_sent(&self) {
        let mut state = self.state();
        state.phase = Phase::Idle(Instant::now() + self.limits.idle_timeout);
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }
}

/// The connection's socket, failing a read with `TimedOut` once the phase's deadline has passed (hyper then
/// closes the connection), and sending a problem document in place of hyper's empty answer to a request it
/// could not parse (`parse_errors`).
struct DeadlineIo {
    inner: TcpStream,
    phase: Arc<PhaseClock>,
    timer: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
    /// The response being sent instead of hyper's own error response, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl DeadlineIo {
    fn new(inner: TcpStream, phase: Arc<PhaseClock>) -> Self {
        Self {
            inner,
            phase,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed_for: None,
            replacement: None,
        }
    }

    /// Write what is left of the replacement response, if one is being sent.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((bytes, written)) = &mut self.replacement else {
            return Poll::Ready(Ok(()));
        };
        while *written < bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Whether `first` (the start of what hyper writes) is hyper's own error response; if so the replacement is
    /// started and what hyper writes from now on is dropped (its error response has no body, and it closes).
    fn intercepts(&mut self, first: &[u8]) -> bool {
        if self.replacement.is_none()
            && let Some(replacement) = crate::parse_errors::replacement_for(first)
        {
            self.replacement = Some((replacement, 0));
        }
        self.replacement.is_some()
    }

    /// `Ready(error)` if the current phase's deadline has passed; otherwise the timer is set to wake this task
    /// at the deadline.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let (deadline, what) = match self.phase.phase_for(cx.waker()) {
            Phase::Busy => return Poll::Pending,
            Phase::AwaitingHead(at) => (at, "header"),
            Phase::Idle(at) => (at, "idle"),
        };
        if self.armed_for != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed_for = Some(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                metrics::counter!("acgs_http_connection_timeouts_total", "phase" => what).increment(1);
                Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client exceeded the {what} timeout"),
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for DeadlineIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.phase.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx).map(Err),
        }
    }
}

impl AsyncWrite for DeadlineIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.intercepts(buf) {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.poll_replacement(cx).map_ok(|()| buf.len())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        if !this.intercepts(first) {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        let total = bufs.iter().map(|b| b.len()).sum();
        this.poll_replacement(cx).map_ok(|()| total)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
