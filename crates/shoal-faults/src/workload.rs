//! [`Workload`]: the steady load a fault scenario holds while it injects faults.
//!
//! Each of `clients` clients, through one URL (the round-robin proxy):
//!
//! - opens a session (`initialize`, `notifications/initialized`);
//! - opens its standalone GET stream, read by a task that records every event and reconnects
//!   with `Last-Event-ID` whenever the stream breaks;
//! - loops: two `count {to, interval_ms}` calls read through their SSE reply (resumed with GET +
//!   `Last-Event-ID` when it breaks, so on another replica), then one numbered `announce`.
//!
//! Every request and every read is bounded. A call refused with 503 is sent again after a
//! backoff; one whose exchange broke before any answer (a 502 from the proxy, a connection
//! error, a timeout) may have run, so it is not sent again: the client moves on to its next
//! call (a new id, a new announce number). Both are counted as retries, never taken for loss.
//! A resumption GET is retried on any of them. A 404 ends the session cleanly (counted) and the
//! client opens another.
//! Everything received goes to the [`Checker`].
//!
//! One file (about 720 lines): one client's loop of calls, streams and resumptions; its retry
//! rules read together, and every step feeds the checker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::checker::{CallId, CallKind, Checker, RetryCause};
use shoal_testkit::SseStream;
use shoal_testkit::client::{
    CLIENT_VERSION, LAST_EVENT_ID, PROTOCOL_VERSION, SESSION_ID, media_type,
};
use shoal_testkit::proxy::Served;

/// Bound on the answer (the status line and headers) to one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A reply stream silent this long is given up and resumed.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a call beyond its own duration: past it, an acknowledged call is "unanswered".
pub const CALL_GRACE: Duration = Duration::from_secs(15);
/// How long [`Workload::stop`] waits for acknowledged announces still on their way.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The query parameter of [`Http::post_modern`] that names a request in the proxy's log.
pub(crate) const TAG_QUERY: &str = "fault";
/// First and largest pause between two attempts of a refused request.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(1000);

/// The shape of the load.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Concurrent clients, each with its own session.
    pub clients: usize,
    /// `count`'s `to` ranges over `1..=count_to_max`.
    pub count_to_max: u64,
    /// `count`'s `interval_ms`.
    pub count_interval_ms: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            clients: 6,
            count_to_max: 8,
            count_interval_ms: 40,
        }
    }
}

/// What the load achieved, for the outcome table.
#[derive(Debug, Clone, Default)]
pub struct LoadFigures {
    /// Concurrent clients.
    pub clients: usize,
    /// Acknowledged calls per second, over the whole run.
    pub requests_per_second: f64,
    /// How long the load ran.
    pub elapsed: Duration,
}

/// A running load; [`Workload::stop`] ends it.
#[derive(Debug)]
pub struct Workload {
    clients: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    checker: Checker,
    config: WorkloadConfig,
    started: Instant,
}

impl Workload {
    /// Starts `config.clients` clients of `url`, recording into `checker`.
    pub fn start(url: &str, checker: &Checker, config: WorkloadConfig) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..config.clients)
            .map(|n| {
                let client = Client {
                    n,
                    http: Http::new(url),
                    checker: checker.clone(),
                    stop: stop.clone(),
                    config: config.clone(),
                };
                tokio::spawn(client.run())
            })
            .collect();
        Workload {
            clients,
            stop,
            checker: checker.clone(),
            config,
            started: Instant::now(),
        }
    }

    /// Stops sending calls, lets every call in flight finish and every acknowledged announce
    /// arrive (bounded by [`CALL_GRACE`] and [`SETTLE_TIMEOUT`]), and returns the figures.
    pub async fn stop(self) -> LoadFigures {
        self.stop.store(true, Ordering::SeqCst);
        let elapsed = self.started.elapsed();
        let bound = CALL_GRACE + SETTLE_TIMEOUT + Duration::from_secs(10);
        for client in self.clients {
            let abort = client.abort_handle();
            match tokio::time::timeout(bound, client).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => self
                    .checker
                    .violation(format!("a load client failed: {error}")),
                Err(_) => {
                    abort.abort();
                    self.checker
                        .violation(format!("a load client did not stop within {bound:?}"));
                }
            }
        }
        let requests = self.checker.report(false).requests;
        LoadFigures {
            clients: self.config.clients,
            requests_per_second: requests as f64 / elapsed.as_secs_f64().max(0.001),
            elapsed,
        }
    }
}

/// The transport of one client: a reqwest client and the endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    http: reqwest::Client,
    url: String,
    next_id: Arc<AtomicI64>,
}

/// A session as the client holds it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The client's own number for it (0, 1, …).
    pub(crate) number: usize,
    pub(crate) id: String,
    pub(crate) version: String,
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Retry later: 503, 502, a broken connection, no answer in time.
    Retry(RetryCause, String),
    /// 404: the session is gone.
    SessionGone,
    /// Anything else: a status and body that no fault excuses.
    Unexpected(StatusCode, String),
}

/// An answer to a POST or GET.
pub(crate) enum Answer {
    Stream(Box<SseStream>),
    Json(Value),
    /// 202 (a notification).
    Accepted,
}

impl Http {
    pub(crate) fn new(url: &str) -> Http {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            // Fresh connections: one to a killed replica's proxy leg must not be reused.
            .pool_max_idle_per_host(0)
            .build()
            .expect("building the HTTP client");
        Http {
            http,
            url: url.to_owned(),
            next_id: Arc::new(AtomicI64::new(1)),
        }
    }

    pub(crate) fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn headers(session: Option<&Session>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(session) = session {
            if let Ok(id) = HeaderValue::from_str(&session.id) {
                headers.insert(SESSION_ID, id);
            }
            if let Ok(version) = HeaderValue::from_str(&session.version) {
                headers.insert(PROTOCOL_VERSION, version);
            }
        }
        headers
    }

    /// POSTs one message.
    pub(crate) async fn post(
        &self,
        session: Option<&Session>,
        message: &Value,
    ) -> Result<(Answer, HeaderMap), Refused> {
        self.post_to(&self.url, Self::headers(session), message)
            .await
    }

    /// POSTs a stateless-era (2026-07-28) request with its `Mcp-*` headers and no session, to
    /// the endpoint with `?fault=<tag>` appended: the proxy's request log
    /// ([`RoundRobinProxy::served`](shoal_testkit::proxy::RoundRobinProxy::served)) then says
    /// which replica served this one (the server ignores the query).
    pub(crate) async fn post_modern(
        &self,
        tag: &str,
        message: &Value,
    ) -> Result<(Answer, HeaderMap), Refused> {
        let url = format!("{}?{TAG_QUERY}={tag}", self.url);
        self.post_to(&url, shoal_testkit::modern::headers(message), message)
            .await
    }

    async fn post_to(
        &self,
        url: &str,
        mut headers: HeaderMap,
        message: &Value,
    ) -> Result<(Answer, HeaderMap), Refused> {
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let request = self
            .http
            .post(url)
            .headers(headers)
            .body(message.to_string());
        self.send(request).await
    }

    /// GETs a stream: the standalone one, or the one `last_event_id` names.
    pub(crate) async fn get(
        &self,
        session: &Session,
        last_event_id: Option<&str>,
    ) -> Result<(Answer, HeaderMap), Refused> {
        let mut headers = Self::headers(Some(session));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(last) = last_event_id.and_then(|l| HeaderValue::from_str(l).ok()) {
            headers.insert(LAST_EVENT_ID, last);
        }
        self.send(self.http.get(&self.url).headers(headers)).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(Answer, HeaderMap), Refused> {
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                return Err(Refused::Retry(RetryCause::Connection, error.to_string()));
            }
            Err(_) => {
                return Err(Refused::Retry(
                    RetryCause::Timeout,
                    format!("no answer within {REQUEST_TIMEOUT:?}"),
                ));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = media_type(&headers);
        if status == StatusCode::OK && content_type == "text/event-stream" {
            let stream = SseStream::new(response, EVENT_TIMEOUT);
            return Ok((Answer::Stream(Box::new(stream)), headers));
        }
        let body = match tokio::time::timeout(REQUEST_TIMEOUT, response.bytes()).await {
            Ok(Ok(body)) => String::from_utf8_lossy(&body).into_owned(),
            Ok(Err(error)) => {
                return Err(Refused::Retry(
                    RetryCause::Connection,
                    format!("{status} body broke: {error}"),
                ));
            }
            Err(_) => {
                return Err(Refused::Retry(
                    RetryCause::Timeout,
                    format!("{status} body did not end"),
                ));
            }
        };
        match status {
            StatusCode::OK => match serde_json::from_str(&body) {
                Ok(json) => Ok((Answer::Json(json), headers)),
                Err(_) => Err(Refused::Unexpected(status, body)),
            },
            StatusCode::ACCEPTED => Ok((Answer::Accepted, headers)),
            StatusCode::SERVICE_UNAVAILABLE => Err(Refused::Retry(RetryCause::Unavailable, body)),
            StatusCode::BAD_GATEWAY => Err(Refused::Retry(RetryCause::Connection, body)),
            StatusCode::NOT_FOUND => Err(Refused::SessionGone),
            _ => Err(Refused::Unexpected(status, body)),
        }
    }
}

/// The `?fault=` tag of a request in the proxy's log.
pub(crate) fn tag_of(served: &Served) -> Option<&str> {
    let query = served.path.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(TAG_QUERY)?.strip_prefix('='))
}

/// The next backoff after `delay`.
pub(crate) fn backoff(delay: Duration) -> Duration {
    (delay * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
}

/// Whether `event` carries the response to a request (a message with an id and no method).
pub(crate) fn is_response(event: &shoal_testkit::SseEvent) -> bool {
    event
        .json()
        .is_some_and(|m| m.get("method").is_none() && m.get("id").is_some())
}

/// One client of the load.
struct Client {
    n: usize,
    http: Http,
    checker: Checker,
    stop: Arc<AtomicBool>,
    config: WorkloadConfig,
}

/// How a call ended, for the client's loop.
pub(crate) enum CallEnd {
    /// Answered, refused or given up: the client goes on.
    Done,
    /// 404: the client opens another session.
    SessionGone,
}

impl Client {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    async fn run(self) {
        let mut number = 0;
        while !self.stopping() {
            let Some(session) = open_session(&self.http, &self.stop, &self.checker, number).await
            else {
                return;
            };
            self.checker.session_started(self.n, number);
            number += 1;
            let standalone_stop = Arc::new(AtomicBool::new(false));
            let (ready, is_ready) = tokio::sync::oneshot::channel();
            let standalone = tokio::spawn(read_standalone(
                self.http.clone(),
                self.checker.clone(),
                self.n,
                session.clone(),
                standalone_stop.clone(),
                ready,
            ));
            // Announces sent before the stream is open would not be on it: wait for its
            // priming event.
            let opened = tokio::time::timeout(Duration::from_secs(15), is_ready).await;
            let mut gone = !matches!(opened, Ok(Ok(())));
            match opened {
                Ok(Ok(())) => {}
                // The reader ended before the stream opened: a 404, or a refusal it recorded.
                Ok(Err(_)) => {
                    if let Ok(Ok(StandaloneEnd::SessionGone)) =
                        tokio::time::timeout(Duration::from_secs(5), standalone).await
                    {
                        self.checker.session_ended(
                            self.n,
                            session.number,
                            "opening the standalone stream",
                        );
                    }
                    continue;
                }
                Err(_) => {
                    if !self.stopping() {
                        self.checker.violation(format!(
                            "client {} session {}: the standalone stream did not open within \
                             15 s",
                            self.n, session.number
                        ));
                    }
                }
            }
            let mut round: u64 = 0;
            while !gone && !self.stopping() {
                round += 1;
                let end = if round.is_multiple_of(3) {
                    self.announce(&session, round / 3).await
                } else {
                    let to = 1 + (round * 7 + self.n as u64) % self.config.count_to_max;
                    self.count(&session, to).await
                };
                gone = matches!(end, CallEnd::SessionGone);
                if gone {
                    self.checker
                        .session_ended(self.n, session.number, "a call or its resumption");
                }
            }
            if !gone {
                let settle = Instant::now() + SETTLE_TIMEOUT;
                while Instant::now() < settle
                    && !self.checker.announces_delivered(self.n, session.number)
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            standalone_stop.store(true, Ordering::SeqCst);
            if tokio::time::timeout(Duration::from_secs(10), standalone)
                .await
                .is_err()
            {
                self.checker.violation(format!(
                    "client {} session {}: the standalone reader did not stop",
                    self.n, session.number
                ));
            }
        }
    }

    /// One `count {to}` call, read through to its answer, resumed as often as it breaks.
    async fn count(&self, session: &Session, to: u64) -> CallEnd {
        let id = self.http.next_id();
        let interval = self.config.count_interval_ms;
        let message = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {
                "name": "count",
                "arguments": { "to": to, "interval_ms": interval },
                "_meta": { "progressToken": format!("c{}-{id}", self.n) }
            }
        });
        let call = self
            .checker
            .start_call(self.n, session.number, id, CallKind::Count { to });
        let bound = Duration::from_millis(to * interval) + CALL_GRACE;
        read_call(
            &self.http,
            &self.checker,
            session,
            call,
            &message,
            bound,
            &self.stop,
        )
        .await
    }

    /// One numbered `announce`; acknowledged when its call returns a result.
    async fn announce(&self, session: &Session, n: u64) -> CallEnd {
        let id = self.http.next_id();
        let text = format!("c{} s{} n{n}", self.n, session.number);
        let message = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": "announce", "arguments": { "text": text } }
        });
        let call = self
            .checker
            .start_call(self.n, session.number, id, CallKind::Announce { n });
        let end = read_call(
            &self.http,
            &self.checker,
            session,
            call,
            &message,
            CALL_GRACE,
            &self.stop,
        )
        .await;
        if self.checker.call_succeeded(call) {
            self.checker.announce_acked(self.n, session.number, n);
        }
        end
    }
}

/// Opens a session, retrying refusals with backoff until `stop`.
pub(crate) async fn open_session(
    http: &Http,
    stop: &AtomicBool,
    checker: &Checker,
    number: usize,
) -> Option<Session> {
    let mut delay = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(delay).await;
        delay = backoff(delay);
        let initialize = json!({
            "jsonrpc": "2.0", "id": http.next_id(), "method": "initialize",
            "params": {
                "protocolVersion": CLIENT_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "shoal-faults", "version": env!("CARGO_PKG_VERSION") }
            }
        });
        let (answer, headers) = match http.post(None, &initialize).await {
            Ok(answered) => answered,
            Err(Refused::Retry(cause, _)) => {
                checker.retry(cause);
                continue;
            }
            Err(other) => {
                checker.violation(format!("initialize refused: {other:?}"));
                continue;
            }
        };
        let (Answer::Json(response), Some(id)) = (
            answer,
            headers.get(SESSION_ID).and_then(|v| v.to_str().ok()),
        ) else {
            checker.violation("initialize answered without a JSON result and a session id");
            continue;
        };
        let session = Session {
            number,
            id: id.to_owned(),
            version: response["result"]["protocolVersion"]
                .as_str()
                .unwrap_or(CLIENT_VERSION)
                .to_owned(),
        };
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        loop {
            match http.post(Some(&session), &initialized).await {
                Ok(_) => return Some(session),
                Err(Refused::Retry(cause, _)) if !stop.load(Ordering::SeqCst) => {
                    checker.retry(cause);
                    tokio::time::sleep(delay).await;
                    delay = backoff(delay);
                }
                Err(other) => {
                    checker.violation(format!("notifications/initialized refused: {other:?}"));
                    return None;
                }
            }
        }
    }
    None
}

/// Sends `message` (a request) and reads its answer: a JSON body, or an SSE stream resumed
/// through `http` with `Last-Event-ID` whenever it breaks, until its response or `bound`.
pub(crate) async fn read_call(
    http: &Http,
    checker: &Checker,
    session: &Session,
    call: CallId,
    message: &Value,
    bound: Duration,
    stop: &AtomicBool,
) -> CallEnd {
    let started = Instant::now();
    let mut delay = Duration::ZERO;
    // The POST itself, sent again while refused with 503.
    let mut stream = loop {
        tokio::time::sleep(delay).await;
        delay = backoff(delay);
        match http.post(Some(session), message).await {
            Ok((Answer::Stream(stream), _)) => break stream,
            Ok((Answer::Json(response), _)) => {
                checker.call_answered(call, response);
                return CallEnd::Done;
            }
            Ok((Answer::Accepted, _)) => {
                checker.violation(format!("a request answered 202: {message}"));
                return CallEnd::Done;
            }
            // Refused before it ran: the same request again.
            Err(Refused::Retry(RetryCause::Unavailable, _)) => {
                checker.retry(RetryCause::Unavailable);
                if stop.load(Ordering::SeqCst) || started.elapsed() > bound {
                    return CallEnd::Done;
                }
            }
            // It may have run (the exchange broke after the request went out): sending it again
            // could run it twice. Not acknowledged; the client's next call is a new one.
            Err(Refused::Retry(cause, _)) => {
                checker.abandon_call(call, cause);
                return CallEnd::Done;
            }
            Err(Refused::SessionGone) => return CallEnd::SessionGone,
            Err(Refused::Unexpected(status, body)) => {
                checker.violation(format!("{message} answered {status}: {body}"));
                return CallEnd::Done;
            }
        }
    };
    checker.call_connection(call, None);
    let mut last_event_id: Option<String> = None;
    delay = Duration::ZERO;
    loop {
        // Read until the response, or until the stream breaks (`Ok(None)`) or stalls (`Err`).
        // Ends when the stream breaks (`Ok(None)`) or stalls (`Err`).
        while let Ok(Some(event)) = stream.next_event_within(EVENT_TIMEOUT).await {
            if let Some(id) = &event.id {
                last_event_id = Some(id.clone());
            }
            checker.call_event(call, &event);
            if is_response(&event) {
                return CallEnd::Done;
            }
        }
        drop(stream);
        let Some(from) = last_event_id.clone() else {
            // Nothing to resume from: as if the request had been refused (the client's next
            // call has a new id).
            checker.abandon_call(call, RetryCause::BeforeFirstEvent);
            return CallEnd::Done;
        };
        // Resume through the proxy (so on another replica) until a stream opens.
        let mut last_refusal = String::new();
        stream = loop {
            if started.elapsed() > bound {
                checker.call_unanswered(
                    call,
                    format!(
                        "no response within {bound:?}; last event {from}; last refusal \
                         {last_refusal:?}"
                    ),
                );
                return CallEnd::Done;
            }
            tokio::time::sleep(delay.max(BACKOFF_MIN)).await;
            delay = backoff(delay);
            match http.get(session, Some(&from)).await {
                Ok((Answer::Stream(stream), _)) => {
                    checker.resumed();
                    checker.call_connection(call, shoal_testkit::sse::id_stream(&from));
                    break stream;
                }
                Ok((_, _)) => {
                    checker.violation(format!("resuming {from}: not a stream"));
                    return CallEnd::Done;
                }
                Err(Refused::Retry(cause, why)) => {
                    checker.retry(cause);
                    last_refusal = why;
                }
                Err(Refused::SessionGone) => return CallEnd::SessionGone,
                Err(Refused::Unexpected(status, body)) => {
                    checker.call_unanswered(call, format!("resuming {from}: {status} {body}"));
                    return CallEnd::Done;
                }
            }
        };
    }
}

/// Why a standalone reader ended.
enum StandaloneEnd {
    /// Told to stop.
    Stopped,
    /// The session answered 404.
    SessionGone,
    /// An answer no fault excuses (recorded as a violation).
    Refused,
}

/// Reads the standalone stream of `session` until `stop`, reconnecting with `Last-Event-ID`
/// whenever it breaks; `ready` fires at its first priming event.
async fn read_standalone(
    http: Http,
    checker: Checker,
    client: usize,
    session: Session,
    stop: Arc<AtomicBool>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> StandaloneEnd {
    let mut ready = Some(ready);
    let mut last_event_id: Option<String> = None;
    let mut delay = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(delay).await;
        delay = backoff(delay);
        let mut stream = match http.get(&session, last_event_id.as_deref()).await {
            Ok((Answer::Stream(stream), _)) => {
                if last_event_id.is_some() {
                    checker.resumed();
                }
                stream
            }
            Ok(_) => {
                checker.violation(format!(
                    "client {client} session {}: GET answered without a stream",
                    session.number
                ));
                return StandaloneEnd::Refused;
            }
            Err(Refused::Retry(cause, _)) => {
                checker.retry(cause);
                continue;
            }
            // The client's call loop sees the 404 too and counts it.
            Err(Refused::SessionGone) => return StandaloneEnd::SessionGone,
            Err(Refused::Unexpected(status, body)) => {
                checker.violation(format!(
                    "client {client} session {}: resuming the standalone stream from {:?} \
                     answered {status}: {body}",
                    session.number, last_event_id
                ));
                return StandaloneEnd::Refused;
            }
        };
        // Short reads, so that `stop` is seen; a long silence is only idleness here.
        loop {
            if stop.load(Ordering::SeqCst) {
                return StandaloneEnd::Stopped;
            }
            match stream.next_event_within(Duration::from_millis(250)).await {
                Ok(Some(event)) => {
                    delay = Duration::ZERO;
                    if let Some(id) = &event.id {
                        last_event_id = Some(id.clone());
                    }
                    if event.is_priming()
                        && let Some(ready) = ready.take()
                    {
                        let _ = ready.send(());
                    }
                    checker.standalone_event(client, session.number, &event);
                }
                Ok(None) => break,
                Err(_) => {}
            }
        }
    }
    StandaloneEnd::Stopped
}
