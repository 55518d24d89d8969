//! [`RoundRobinProxy`]: an HTTP/1.1 reverse proxy on a loopback port in front of several
//! `shoal` replicas, spreading requests the way a Kubernetes Service spreads connections over
//! ready pods, only harder: every request goes to the next replica.
//!
//! - Every request (POST, GET, DELETE, each reconnection) goes to the next backend in
//!   round-robin order, and never to the one that served the previous request while another
//!   is eligible. So a session's requests, and a stream and its resumption, land on different
//!   replicas.
//! - A backend is eligible while its admin `/readyz` answers 200; each is probed every
//!   [`PROBE_INTERVAL`].
//! - A request whose TCP connect fails (refused, timed out) goes to the next backend: nothing
//!   was sent, so the retry is safe. Any other failure is answered `502`.
//! - Bodies are streamed both ways, frame by frame: an SSE event reaches the client as soon
//!   as the backend writes it. Both sides set `TCP_NODELAY`. Hop-by-hop headers are dropped.
//! - Every answered request is logged ([`RoundRobinProxy::served`]), so a test can assert
//!   where each of its requests landed.
//! - Optionally, fixed headers are added to every forwarded request that lacks them
//!   ([`RoundRobinProxy::bind_with_headers`], `rr-proxy --header`/`--header-env`): an
//!   `Authorization: Bearer …` for clients that cannot send one, such as the conformance suite.
//!   Their values are never logged.
//! - Optionally, Prometheus metrics are served at `GET /metrics` on a separate listener
//!   ([`RoundRobinProxy::serve_metrics`], `rr-proxy --metrics-listen`), labelled by backend
//!   name (`host:port` for `rr-proxy`):
//!   - `rr_proxy_requests_total{backend,status}` (counter): requests answered with a backend's
//!     response, by status class `1xx`…`5xx`; `status="error"` counts requests whose
//!     exchange failed after the connect (answered `502` by the proxy).
//!   - `rr_proxy_connect_failures_total{backend}` (counter): connects that failed, each
//!     retried on the next backend.
//!   - `rr_proxy_backend_ready{backend}` (gauge): 1 while the backend is eligible (its last
//!     `/readyz` probe answered 200 and no connect failed since), else 0.
//!
//! ```no_run
//! # async fn example() {
//! use shoal_testkit::proxy::{Backend, RoundRobinProxy};
//!
//! let proxy = RoundRobinProxy::start(vec![
//!     Backend::new("a", "http://127.0.0.1:8081/mcp", "http://127.0.0.1:9091"),
//!     Backend::new("b", "http://127.0.0.1:8082/mcp", "http://127.0.0.1:9092"),
//! ])
//! .await;
//! let url = proxy.url(); // http://127.0.0.1:<port>/mcp
//! # let _ = url;
//! # }
//! ```
//!
//! About 620 lines: the accept loop, the forwarding and the backend choice share the proxy's state;
//! backends and their probes, header rules and the request log are submodules.

use std::convert::Infallible;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

mod backend;
mod headers;
mod metrics;

pub use backend::Backend;
use headers::{add_missing, remove_hop_by_hop};
pub use headers::{header_pair, parse_header};
use metrics::serve_metrics;

/// The pause between two `/readyz` probes of one backend.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// How long one `/readyz` probe may take before the backend counts as not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a TCP connect to a backend may take before the next backend is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long [`RoundRobinProxy::start`] waits for the first probe of every backend.
const FIRST_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The body of every response the proxy sends.
type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// One request the proxy answered with a backend's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// When the backend was picked: 0 for the proxy's first pick, counting connects that
    /// failed. [`RoundRobinProxy::served`] is in this order.
    pub pick: u64,
    /// The position of the backend in the list the proxy was started with.
    pub backend: usize,
    /// The backend's name.
    pub name: String,
    /// The request's method.
    pub method: Method,
    /// The request's path and query.
    pub path: String,
    /// The backend's response status.
    pub status: StatusCode,
    /// Backends tried before this one whose connect failed.
    pub refused: Vec<usize>,
}

/// A round-robin reverse proxy on `127.0.0.1`, stopped on drop.
pub struct RoundRobinProxy {
    addr: SocketAddr,
    path: String,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    backends: Vec<BackendState>,
    client: Client<HttpConnector, SlotBody>,
    /// The backend that got the last request, and how many picks were made.
    picks: Mutex<Picks>,
    log: Mutex<Vec<Served>>,
    /// Print one line per request to stderr.
    trace: bool,
    /// Added to every forwarded request that has no header of that name.
    inject: HeaderMap,
}

#[derive(Default)]
struct Picks {
    last: Option<usize>,
    count: u64,
}

struct BackendState {
    backend: Backend,
    ready: AtomicBool,
    probes: AtomicU64,
    /// Answered requests by [`STATUS_CLASSES`].
    requests: [AtomicU64; STATUS_CLASSES.len()],
    connect_failures: AtomicU64,
}

/// The `status` label values of `rr_proxy_requests_total`: a response's status class, or
/// `error` for an exchange that failed after the connect.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];
/// The index of `error` in [`STATUS_CLASSES`].
const STATUS_ERROR: usize = 5;

// === impl RoundRobinProxy ===

impl fmt::Debug for RoundRobinProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundRobinProxy")
            .field("addr", &self.addr)
            .field(
                "backends",
                &self
                    .shared
                    .backends
                    .iter()
                    .map(|b| &b.backend.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl RoundRobinProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `backends`, once each has been probed once.
    ///
    /// # Panics
    ///
    /// When there is no backend or no loopback port can be bound.
    pub async fn start(backends: Vec<Backend>) -> Self {
        Self::bind((Ipv4Addr::LOCALHOST, 0).into(), backends, false)
            .await
            .expect("binding the proxy to a loopback port")
    }

    /// Starts a proxy on `addr` in front of `backends`, once each has been probed once.
    /// With `trace`, each answered request is printed to stderr.
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound.
    ///
    /// # Panics
    ///
    /// When there is no backend.
    pub async fn bind(
        addr: SocketAddr,
        backends: Vec<Backend>,
        trace: bool,
    ) -> std::io::Result<Self> {
        Self::bind_with_headers(addr, backends, trace, HeaderMap::new()).await
    }

    /// As [`RoundRobinProxy::bind`], and every forwarded request that has no header of a name
    /// in `inject` gets that header (all its values) added; a request that has one keeps its
    /// own. The values are marked sensitive and never logged.
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound.
    ///
    /// # Panics
    ///
    /// When there is no backend.
    pub async fn bind_with_headers(
        addr: SocketAddr,
        backends: Vec<Backend>,
        trace: bool,
        mut inject: HeaderMap,
    ) -> std::io::Result<Self> {
        for value in inject.values_mut() {
            value.set_sensitive(true);
        }
        assert!(!backends.is_empty(), "a proxy needs at least one backend");
        let path = backends[0].mcp.path().to_owned();
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let shared = Arc::new(Shared {
            backends: backends
                .into_iter()
                .map(|backend| BackendState {
                    backend,
                    ready: AtomicBool::new(false),
                    probes: AtomicU64::new(0),
                    requests: Default::default(),
                    connect_failures: AtomicU64::new(0),
                })
                .collect(),
            client,
            picks: Mutex::new(Picks::default()),
            log: Mutex::new(Vec::new()),
            trace,
            inject,
        });

        let mut tasks = Vec::new();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(PROBE_TIMEOUT));
        let probe_client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);
        for index in 0..shared.backends.len() {
            tasks.push(tokio::spawn(probe_loop(
                shared.clone(),
                probe_client.clone(),
                index,
            )));
        }
        let mut proxy = RoundRobinProxy {
            addr,
            path,
            shared,
            tasks,
        };
        // Connections that come before every backend was probed wait in the backlog, rather
        // than being refused for want of a ready backend.
        let deadline = tokio::time::Instant::now() + FIRST_PROBE_TIMEOUT;
        while tokio::time::Instant::now() < deadline
            && proxy
                .shared
                .backends
                .iter()
                .any(|b| b.probes.load(Ordering::SeqCst) == 0)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let serving = tokio::spawn(serve(listener, proxy.shared.clone()));
        proxy.tasks.push(serving);
        Ok(proxy)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The MCP endpoint through the proxy: `http://127.0.0.1:<port>` and the first backend's
    /// path (`/mcp`).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// The backends, in the order the proxy was started with.
    pub fn backends(&self) -> Vec<Backend> {
        self.shared
            .backends
            .iter()
            .map(|b| b.backend.clone())
            .collect()
    }

    /// Whether backend `index`'s last probe (or connect) succeeded.
    pub fn is_ready(&self, index: usize) -> bool {
        self.shared.backends[index].ready.load(Ordering::SeqCst)
    }

    /// Waits until backend `index` is seen as `ready` (or not), up to `timeout`.
    ///
    /// # Panics
    ///
    /// When it is not within `timeout`.
    pub async fn wait_ready(&self, index: usize, ready: bool, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.is_ready(index) != ready {
            assert!(
                tokio::time::Instant::now() < deadline,
                "backend {index} ({}) was not seen {} within {timeout:?}",
                self.shared.backends[index].backend.name,
                if ready { "ready" } else { "not ready" },
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every request answered so far, in the order their backends were picked.
    pub fn served(&self) -> Vec<Served> {
        let mut served = lock(&self.shared.log).clone();
        served.sort_by_key(|s| s.pick);
        served
    }

    /// Every request answered so far, in the order their backends were picked; clears the
    /// log.
    pub fn take_served(&self) -> Vec<Served> {
        let mut served = std::mem::take(&mut *lock(&self.shared.log));
        served.sort_by_key(|s| s.pick);
        served
    }

    /// Serves the proxy's metrics in the Prometheus text format at `GET /metrics` on `addr`
    /// (see the module docs) until the proxy is dropped; returns the bound address.
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound.
    pub async fn serve_metrics(&mut self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        self.tasks
            .push(tokio::spawn(serve_metrics(listener, self.shared.clone())));
        Ok(addr)
    }

    /// The metrics in the Prometheus text format, as `GET /metrics` answers them.
    pub fn metrics(&self) -> String {
        self.shared.render_metrics()
    }

    /// Runs until the process gets Ctrl-C (or SIGTERM on Unix): for the `rr-proxy` binary.
    pub async fn run_until_signal(self) {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = terminate => {}
        }
    }
}

impl Drop for RoundRobinProxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Probes backend `index` every [`PROBE_INTERVAL`], forever.
async fn probe_loop(
    shared: Arc<Shared>,
    client: Client<HttpConnector, Empty<Bytes>>,
    index: usize,
) {
    let state = &shared.backends[index];
    let uri = state.backend.readyz();
    loop {
        let probe = client.get(uri.clone());
        let ready = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, probe).await,
            Ok(Ok(response)) if response.status() == StatusCode::OK
        );
        state.ready.store(ready, Ordering::SeqCst);
        state.probes.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// Accepts connections until the task is aborted; aborting it drops every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| handle(shared.clone(), request));
                        // A client that goes away mid-request is not the proxy's problem.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of file descriptors, say: back off a little.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Forwards one request to the next eligible backend, and to the next one after that while
/// connects fail.
async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (mut parts, body) = request.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    add_missing(&mut parts.headers, &shared.inject);
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    let slot = Arc::new(Mutex::new(Some(body)));
    let mut refused = Vec::new();
    loop {
        let Some((index, pick)) = shared.pick(&refused) else {
            let reason = if refused.is_empty() {
                "no ready backend"
            } else {
                "no backend accepted the connection"
            };
            return Ok(plain(StatusCode::SERVICE_UNAVAILABLE, reason));
        };
        if lock(&slot).is_none() {
            // Unreachable: a connect failed, so nothing read the body.
            return Ok(plain(
                StatusCode::BAD_GATEWAY,
                "the request body was consumed",
            ));
        }
        let backend = &shared.backends[index].backend;
        let mut forward = Request::new(SlotBody {
            slot: slot.clone(),
            taken: None,
        });
        *forward.method_mut() = parts.method.clone();
        *forward.uri_mut() = backend.target(parts.uri.path_and_query());
        *forward.headers_mut() = parts.headers.clone();
        match shared.client.request(forward).await {
            Ok(response) => {
                let (mut head, body) = response.into_parts();
                remove_hop_by_hop(&mut head.headers);
                let class = usize::from(head.status.as_u16() / 100)
                    .saturating_sub(1)
                    .min(STATUS_ERROR - 1);
                shared.backends[index].requests[class].fetch_add(1, Ordering::Relaxed);
                shared.record(Served {
                    pick,
                    backend: index,
                    name: backend.name.clone(),
                    method: parts.method.clone(),
                    path,
                    status: head.status,
                    refused,
                });
                return Ok(Response::from_parts(head, body.boxed()));
            }
            Err(error) if error.is_connect() => {
                // Nothing was sent: mark it down until its next probe and try the next one.
                shared.backends[index].ready.store(false, Ordering::SeqCst);
                shared.backends[index]
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                refused.push(index);
            }
            Err(error) => {
                shared.backends[index].requests[STATUS_ERROR].fetch_add(1, Ordering::Relaxed);
                if shared.trace {
                    eprintln!(
                        "rr-proxy: {} {path} -> {}: {error:?}",
                        parts.method, backend.name
                    );
                }
                return Ok(plain(
                    StatusCode::BAD_GATEWAY,
                    &format!("backend {} failed: {error}", backend.name),
                ));
            }
        }
    }
}

// === impl Shared ===

impl Shared {
    /// The next ready backend after the last one, not in `refused`; the last one again only
    /// when no other is eligible.
    /// Returns the backend and the pick's number.
    fn pick(&self, refused: &[usize]) -> Option<(usize, u64)> {
        let mut picks = lock(&self.picks);
        let last = picks.last;
        let n = self.backends.len();
        let eligible =
            |i: usize| self.backends[i].ready.load(Ordering::SeqCst) && !refused.contains(&i);
        let start = last.map_or(0, |l| l + 1);
        let choice = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| Some(i) != last && eligible(i))
            .or_else(|| last.filter(|&l| eligible(l)))?;
        let pick = picks.count;
        picks.last = Some(choice);
        picks.count += 1;
        Some((choice, pick))
    }

    fn record(&self, served: Served) {
        if self.trace {
            eprintln!(
                "rr-proxy: #{} {} {} -> {} {}",
                served.pick,
                served.method,
                served.path,
                served.name,
                served.status.as_u16()
            );
        }
        lock(&self.log).push(served);
    }
}

fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(format!("rr-proxy: {text}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A request body that a failed attempt hands back: it takes the client's body out of the
/// shared slot only when first polled, so an attempt whose connect failed leaves it there for
/// the next backend.
struct SlotBody {
    slot: Arc<Mutex<Option<Incoming>>>,
    taken: Option<Incoming>,
}

impl Body for SlotBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if this.taken.is_none() {
            this.taken = lock(&this.slot).take();
        }
        match this.taken.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.taken {
            Some(body) => body.is_end_stream(),
            None => lock(&self.slot).as_ref().is_none_or(Body::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.taken {
            Some(body) => body.size_hint(),
            None => lock(&self.slot)
                .as_ref()
                .map_or_else(|| SizeHint::with_exact(0), Body::size_hint),
        }
    }
}

#[cfg(test)]
mod tests;
