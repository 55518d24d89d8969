//! [`McpClient`]: a small MCP client over real HTTP, for tests of the Streamable HTTP transport.
//!
//! It speaks like a real client (the `Accept`, `Content-Type`, `Mcp-Session-Id` and
//! `MCP-Protocol-Version` headers, JSON or SSE replies, answers to server→client requests) and
//! also lets a test step outside the protocol: [`McpClient::post_raw`] and
//! [`McpClient::send_raw`] send whatever headers and body the test wants and hand back the raw
//! status, headers and body; [`McpClient::post`] and [`McpClient::get_stream`] hand back an
//! [`SseStream`] to read one event at a time.
//!
//! Every wait is bounded: a helper that waits longer than the client's timeout (default
//! [`DEFAULT_TIMEOUT`]) panics and says what it was waiting for.
//!
//! About 610 lines: one client type, one method per MCP or raw HTTP exchange a test needs.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::response::RawResponse;
use crate::sse::SseEvent;
use crate::stream::SseStream;

/// `Mcp-Session-Id`.
pub const SESSION_ID: &str = shoal_wire::header::MCP_SESSION_ID;
/// `MCP-Protocol-Version`.
pub const PROTOCOL_VERSION: &str = shoal_wire::header::MCP_PROTOCOL_VERSION;
/// `Last-Event-ID`.
pub const LAST_EVENT_ID: &str = shoal_wire::header::LAST_EVENT_ID;
/// The `Accept` value a Streamable HTTP client sends on POST.
pub const ACCEPT_JSON_AND_SSE: &str = "application/json, text/event-stream";
/// The revision [`McpClient::initialize`] asks for.
pub const CLIENT_VERSION: &str = "2025-11-25";
/// How long a helper waits for the server before it panics.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers a server→client request: `Ok(result)` or `Err(error object)`.
pub type RequestHandler = Arc<dyn Fn(&str, &Value) -> Result<Value, Value> + Send + Sync>;

/// An MCP client of one endpoint URL, holding at most one session.
pub struct McpClient {
    http: reqwest::Client,
    url: String,
    extra_headers: HeaderMap,
    session_id: Option<String>,
    protocol_version: Option<String>,
    next_id: AtomicI64,
    seen: Mutex<Vec<Value>>,
    on_request: Option<RequestHandler>,
    timeout: Duration,
}

impl fmt::Debug for McpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpClient")
            .field("url", &self.url)
            .field("session_id", &self.session_id)
            .field("protocol_version", &self.protocol_version)
            .finish_non_exhaustive()
    }
}

/// What a POST was answered with.
#[derive(Debug)]
pub enum Reply {
    /// `200` with `Content-Type: application/json`.
    Json(RawResponse),
    /// `200` with `Content-Type: text/event-stream`, still open.
    Stream(Box<SseStream>),
    /// Anything else (`202`, a rejection…), read to its end.
    Other(RawResponse),
}

/// A request and how it was answered, by [`McpClient::exchange`].
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The JSON-RPC response with the request's id.
    pub response: Value,
    /// The reply's `Content-Type` (`application/json` or `text/event-stream`).
    pub content_type: String,
    /// Every SSE event before the response, and the response's own event (empty for JSON).
    pub events: Vec<SseEvent>,
    /// The notifications and server→client requests that came before the response.
    pub messages: Vec<Value>,
}

// === impl McpClient ===

impl McpClient {
    /// A client of the endpoint at `url` (`http://127.0.0.1:1234/mcp`), without a session.
    ///
    /// # Panics
    ///
    /// When the HTTP client cannot be built.
    pub fn new(url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            // Tests talk to loopback; an HTTP_PROXY in the environment must not get in between.
            .no_proxy()
            .tcp_nodelay(true)
            .build()
            .expect("building the HTTP client");
        McpClient {
            http,
            url: url.into(),
            extra_headers: HeaderMap::new(),
            session_id: None,
            protocol_version: None,
            next_id: AtomicI64::new(1),
            seen: Mutex::new(Vec::new()),
            on_request: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Initializes a session and sends `notifications/initialized`: a client ready to use.
    pub async fn connect(url: impl Into<String>) -> Self {
        let mut client = Self::new(url);
        client.initialize().await;
        client.notify_initialized().await;
        client
    }

    /// Sends `name: value` on every request (an `Authorization` header, say).
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_str(value).expect("a valid header value");
        self.extra_headers.insert(name, value);
        self
    }

    /// How long helpers wait before they panic.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Answers server→client requests (elicitation, sampling, roots, ping) met while waiting
    /// for a response. Without a handler, `ping` gets `{}` and anything else `-32601`.
    pub fn on_request(
        mut self,
        handler: impl Fn(&str, &Value) -> Result<Value, Value> + Send + Sync + 'static,
    ) -> Self {
        self.on_request = Some(Arc::new(handler));
        self
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The session id, once initialized.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// Replaces the session id sent in `Mcp-Session-Id` (`None`: send none).
    pub fn set_session_id(&mut self, id: Option<String>) {
        self.session_id = id;
    }

    /// The negotiated revision, once initialized.
    pub fn protocol_version(&self) -> Option<&str> {
        self.protocol_version.as_deref()
    }

    /// Replaces the revision sent in `MCP-Protocol-Version` (`None`: send none). With
    /// [`McpClient::set_session_id`], a client of another URL (one replica, the proxy) can
    /// carry on a session that this or another client initialized.
    pub fn set_protocol_version(&mut self, version: Option<String>) {
        self.protocol_version = version;
    }

    /// A fresh request id.
    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The headers a real client sends on POST: `Accept` (JSON and SSE), `Content-Type`,
    /// `Mcp-Session-Id` and `MCP-Protocol-Version` once known, and the extra headers.
    ///
    /// # Panics
    ///
    /// When the session id or version is not a valid header value.
    pub fn default_headers(&self) -> HeaderMap {
        let mut headers = self.extra_headers.clone();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_JSON_AND_SSE));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(id) = &self.session_id {
            headers.insert(
                SESSION_ID,
                HeaderValue::from_str(id).expect("a session id is a valid header value"),
            );
        }
        if let Some(version) = &self.protocol_version {
            headers.insert(
                PROTOCOL_VERSION,
                HeaderValue::from_str(version).expect("a version is a valid header value"),
            );
        }
        headers
    }

    /// `initialize` with this client's default params (revision [`CLIENT_VERSION`], the
    /// `elicitation`, `sampling` and `roots` capabilities). Returns the result.
    pub async fn initialize(&mut self) -> Value {
        self.initialize_with(json!({
            "protocolVersion": CLIENT_VERSION,
            "capabilities": {
                "elicitation": {},
                "sampling": {},
                "roots": { "listChanged": true }
            },
            "clientInfo": { "name": "shoal-testkit", "version": env!("CARGO_PKG_VERSION") }
        }))
        .await
    }

    /// `initialize` with `params`: stores the session id and the negotiated revision, which
    /// later requests carry. Returns the result.
    ///
    /// # Panics
    ///
    /// Unless the server answers 200 with a JSON result and an `Mcp-Session-Id`.
    pub async fn initialize_with(&mut self, params: Value) -> Value {
        self.session_id = None;
        self.protocol_version = None;
        let id = self.next_id();
        let raw = self
            .post_raw(message(id, "initialize", Some(params)), |_| {})
            .await;
        assert_eq!(raw.status, StatusCode::OK, "initialize: {raw}");
        let response = raw.json();
        let result = response
            .get("result")
            .unwrap_or_else(|| panic!("initialize failed: {response}"))
            .clone();
        let session = raw
            .header(SESSION_ID)
            .unwrap_or_else(|| panic!("initialize answered without Mcp-Session-Id: {raw}"));
        self.session_id = Some(session.to_owned());
        self.protocol_version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        result
    }

    /// Sends `notifications/initialized`.
    ///
    /// # Panics
    ///
    /// Unless the server answers 202.
    pub async fn notify_initialized(&self) {
        let raw = self.notify("notifications/initialized", None).await;
        assert_eq!(raw.status, StatusCode::ACCEPTED, "initialized: {raw}");
    }

    /// Sends a notification; returns the raw answer (202 when accepted).
    pub async fn notify(&self, method: &str, params: impl Into<Option<Value>>) -> RawResponse {
        let mut body = json!({ "jsonrpc": "2.0", "method": method });
        if let Some(params) = params.into() {
            body["params"] = params;
        }
        self.post_raw(body, |_| {}).await
    }

    /// Sends `notifications/cancelled` for one of this client's requests.
    pub async fn cancel(&self, request_id: i64, reason: &str) -> RawResponse {
        self.notify(
            "notifications/cancelled",
            json!({ "requestId": request_id, "reason": reason }),
        )
        .await
    }

    /// Answers a server→client request; returns the raw answer (202 when accepted).
    pub async fn respond(&self, id: &Value, outcome: Result<Value, Value>) -> RawResponse {
        let body = match outcome {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error }),
        };
        self.post_raw(body, |_| {}).await
    }

    /// Sends a request and returns its JSON-RPC response (`result` or `error`), from a JSON
    /// or an SSE reply. Notifications and server→client requests that come first are recorded
    /// (see [`McpClient::take_seen`]); server→client requests are answered.
    pub async fn request(&self, method: &str, params: impl Into<Option<Value>>) -> Value {
        self.exchange(method, params).await.response
    }

    /// `tools/call`; returns the result.
    ///
    /// # Panics
    ///
    /// When the server answers with a JSON-RPC error.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Value {
        let response = self
            .request(
                "tools/call",
                json!({ "name": name, "arguments": arguments }),
            )
            .await;
        response
            .get("result")
            .unwrap_or_else(|| panic!("tools/call {name} failed: {response}"))
            .clone()
    }

    /// Sends a request and returns everything about its reply.
    ///
    /// # Panics
    ///
    /// When the reply is neither JSON nor SSE, when the response has another id, when the
    /// stream ends before the response, or when anything takes longer than the timeout.
    pub async fn exchange(&self, method: &str, params: impl Into<Option<Value>>) -> Exchange {
        let id = self.next_id();
        let request = message(id, method, params.into());
        let exchange = match self.post(&request).await {
            Reply::Json(raw) => {
                let response = raw.json();
                assert_eq!(
                    response["id"],
                    json!(id),
                    "{method}: response of another id"
                );
                Exchange {
                    response,
                    content_type: "application/json".into(),
                    events: Vec::new(),
                    messages: Vec::new(),
                }
            }
            Reply::Stream(mut stream) => self.read_until_response(&mut stream, id, method).await,
            Reply::Other(raw) => panic!("{method}: expected a JSON or SSE reply, got {raw}"),
        };
        lock(&self.seen).extend(exchange.messages.iter().cloned());
        exchange
    }

    /// Reads `stream` until the response to `id`, answering server→client requests.
    pub async fn read_until_response(
        &self,
        stream: &mut SseStream,
        id: i64,
        method: &str,
    ) -> Exchange {
        let mut events = Vec::new();
        let mut messages = Vec::new();
        loop {
            let Some(event) = stream.next_event().await else {
                panic!("{method}: the stream ended before the response; events: {events:#?}");
            };
            events.push(event.clone());
            let Some(message) = event.json() else {
                continue;
            };
            let is_response = message.get("method").is_none();
            if is_response && message.get("id") == Some(&json!(id)) {
                return Exchange {
                    response: message,
                    content_type: "text/event-stream".into(),
                    events,
                    messages,
                };
            }
            assert!(
                !is_response,
                "{method}: a response to another request on this stream: {message}"
            );
            if let Some(request_id) = message.get("id") {
                let method = message["method"].as_str().unwrap_or_default();
                let outcome = self.answer(method, message.get("params").unwrap_or(&Value::Null));
                let raw = self.respond(request_id, outcome).await;
                assert_eq!(
                    raw.status,
                    StatusCode::ACCEPTED,
                    "answer to {method}: {raw}"
                );
            }
            messages.push(message);
        }
    }

    fn answer(&self, method: &str, params: &Value) -> Result<Value, Value> {
        match (&self.on_request, method) {
            (Some(handler), _) => handler(method, params),
            (None, "ping") => Ok(json!({})),
            (None, _) => {
                Err(json!({ "code": -32601, "message": format!("unsupported: {method}") }))
            }
        }
    }

    /// The notifications and server→client requests received before responses so far, in
    /// order; clears the record.
    pub fn take_seen(&self) -> Vec<Value> {
        std::mem::take(&mut *lock(&self.seen))
    }

    /// POSTs one message with the default headers.
    pub async fn post(&self, message: &Value) -> Reply {
        let response = self
            .send(
                Method::POST,
                self.default_headers(),
                Some(message.to_string().into_bytes()),
            )
            .await;
        Reply::of(response, self.timeout).await
    }

    /// How long any wait of this client may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs `body` with the default headers as changed by `edit`; returns the raw answer.
    pub async fn post_raw(
        &self,
        body: impl Into<RawBody>,
        edit: impl FnOnce(&mut HeaderMap),
    ) -> RawResponse {
        let mut headers = self.default_headers();
        edit(&mut headers);
        self.send_raw(Method::POST, headers, Some(body.into().0))
            .await
    }

    /// GET with the default headers (`Accept: text/event-stream`), as changed by `edit`;
    /// returns the raw answer read to its end (for refusals: a stream would time out).
    pub async fn get_raw(&self, edit: impl FnOnce(&mut HeaderMap)) -> RawResponse {
        let mut headers = self.get_headers(None);
        edit(&mut headers);
        self.send_raw(Method::GET, headers, None).await
    }

    /// Opens the standalone stream (no `last_event_id`) or resumes a stream after the event
    /// `last_event_id` names.
    ///
    /// # Panics
    ///
    /// Unless the server answers 200 with `text/event-stream`.
    pub async fn get_stream(&self, last_event_id: Option<&str>) -> SseStream {
        match self.open_stream(last_event_id).await {
            Ok(stream) => stream,
            Err(raw) => {
                panic!("GET (Last-Event-ID {last_event_id:?}) did not open a stream: {raw}")
            }
        }
    }

    /// Like [`McpClient::get_stream`], but hands back any other answer, read to its end.
    pub async fn open_stream(&self, last_event_id: Option<&str>) -> Result<SseStream, RawResponse> {
        let response = self
            .send(Method::GET, self.get_headers(last_event_id), None)
            .await;
        let content_type = media_type(response.headers());
        if response.status() != StatusCode::OK || content_type != "text/event-stream" {
            return Err(RawResponse::read(response, self.timeout).await);
        }
        Ok(SseStream::new(response, self.timeout))
    }

    fn get_headers(&self, last_event_id: Option<&str>) -> HeaderMap {
        let mut headers = self.default_headers();
        headers.remove(CONTENT_TYPE);
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(last) = last_event_id {
            headers.insert(
                LAST_EVENT_ID,
                HeaderValue::from_str(last).expect("a valid Last-Event-ID value"),
            );
        }
        headers
    }

    /// DELETE the session; returns the raw answer.
    pub async fn delete(&self) -> RawResponse {
        self.delete_raw(|_| {}).await
    }

    /// DELETE with the default headers as changed by `edit`; returns the raw answer.
    pub async fn delete_raw(&self, edit: impl FnOnce(&mut HeaderMap)) -> RawResponse {
        let mut headers = self.default_headers();
        headers.remove(CONTENT_TYPE);
        edit(&mut headers);
        self.send_raw(Method::DELETE, headers, None).await
    }

    /// Sends exactly `headers` and `body` with `method`; returns the raw answer read to its end.
    pub async fn send_raw(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> RawResponse {
        let response = self.send(method, headers, body).await;
        RawResponse::read(response, self.timeout).await
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let mut builder = self
            .http
            .request(method.clone(), &self.url)
            .headers(headers);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        match tokio::time::timeout(self.timeout, builder.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => panic!("{method} {}: {error}", self.url),
            Err(_) => panic!("{method} {}: no answer within {:?}", self.url, self.timeout),
        }
    }
}

/// A request body for the raw helpers: a JSON value, text or bytes.
#[derive(Debug, Clone)]
pub struct RawBody(Vec<u8>);

impl From<Value> for RawBody {
    fn from(value: Value) -> Self {
        RawBody(value.to_string().into_bytes())
    }
}

impl From<&str> for RawBody {
    fn from(text: &str) -> Self {
        RawBody(text.as_bytes().to_vec())
    }
}

impl From<String> for RawBody {
    fn from(text: String) -> Self {
        RawBody(text.into_bytes())
    }
}

impl From<Vec<u8>> for RawBody {
    fn from(bytes: Vec<u8>) -> Self {
        RawBody(bytes)
    }
}

/// A JSON-RPC request with a numeric id.
pub fn message(id: i64, method: &str, params: Option<Value>) -> Value {
    let mut message = json!({ "jsonrpc": "2.0", "id": id, "method": method });
    if let Some(params) = params {
        message["params"] = params;
    }
    message
}

/// The media type of a response's `Content-Type`, without parameters (`text/event-stream`).
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// === impl Reply ===

impl Reply {
    /// A response as it comes: an SSE stream, a JSON body, or anything else read to its end.
    pub(crate) async fn of(response: reqwest::Response, timeout: Duration) -> Reply {
        let status = response.status();
        let content_type = media_type(response.headers());
        match (status, content_type.as_str()) {
            (StatusCode::OK, "text/event-stream") => {
                Reply::Stream(Box::new(SseStream::new(response, timeout)))
            }
            (StatusCode::OK, "application/json") => {
                Reply::Json(RawResponse::read(response, timeout).await)
            }
            _ => Reply::Other(RawResponse::read(response, timeout).await),
        }
    }

    /// The SSE stream.
    ///
    /// # Panics
    ///
    /// When the reply is not a stream.
    pub fn into_stream(self) -> SseStream {
        match self {
            Reply::Stream(stream) => *stream,
            Reply::Json(raw) => panic!("expected an SSE reply, got JSON: {raw}"),
            Reply::Other(raw) => panic!("expected an SSE reply, got {raw}"),
        }
    }

    /// The JSON reply.
    ///
    /// # Panics
    ///
    /// When the reply is not `200 application/json`.
    pub fn into_json(self) -> RawResponse {
        match self {
            Reply::Json(raw) => raw,
            Reply::Stream(_) => panic!("expected a JSON reply, got an SSE stream"),
            Reply::Other(raw) => panic!("expected a JSON reply, got {raw}"),
        }
    }
}
