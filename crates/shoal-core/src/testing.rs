//! An engine-direct test client (feature `testing`): drives an [`Engine`] the way a transport
//! does, without HTTP, so that a library user can test their tools, resources and prompts (and
//! a host implementation its behaviour under the engine) in a plain `#[tokio::test]`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//!
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::json;
//! use shoal_core::engine::{Engine, EngineConfig};
//! use shoal_core::handler::{Handlers, ToolError, ToolSet, typed_tool};
//! use shoal_core::host::{MemoryHost, MemoryHostConfig};
//! use shoal_core::ids::NodeId;
//! use shoal_core::testing::EngineClient;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Echo {
//!     text: String,
//! }
//!
//! let tools = ToolSet::new().with(typed_tool("echo", "echoes", |_ctx, Echo { text }| async move {
//!     Ok::<_, ToolError>(text)
//! }));
//! let host = Arc::new(MemoryHost::new(NodeId::new("test"), MemoryHostConfig::default()));
//! let engine = Engine::new(host, Handlers::new().tools(tools), EngineConfig::default());
//!
//! let client = EngineClient::connect(engine, json!({})).await;
//! let result = client.call_tool("echo", json!({ "text": "hi" })).await;
//! assert_eq!(result["content"][0]["text"], "hi");
//! # });
//! ```
//!
//! [`EngineClient::serving`] does the same setup (a fresh [`MemoryHost`],
//! the default [`EngineConfig`]) in one call.
//!
//! Test code: every function panics, with a message, when the engine does not answer as a
//! client expects, and every wait is bounded ([`STREAM_TIMEOUT`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::engine::{Engine, EngineConfig, Reply};
use crate::handler::Handlers;
use crate::host::{HostError, MemoryHost, MemoryHostConfig, StoredEvent, StreamEvent};
use crate::ids::{EventId, NodeId, StreamId};
use crate::jsonrpc::{Message, Request};
use crate::model::CallToolResult;
use crate::session::SessionRecord;

/// How long [`read_stream`] and [`EngineClient::standalone`] wait for each event.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// The protocol revision [`initialize`] asks for.
pub const CLIENT_VERSION: &str = "2025-11-25";

/// A JSON-RPC request with a numeric id, as the engine receives it.
///
/// # Panics
///
/// When `method` and `params` do not make a valid request (`params` not an object or array).
pub fn request(id: i64, method: &str, params: Value) -> Request {
    match Message::from_value(
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
    ) {
        Ok(Message::Request(request)) => request,
        other => panic!("not a request: {other:?}"),
    }
}

/// `initialize`s a session (revision [`CLIENT_VERSION`], the client's `capabilities`) without
/// a principal, and returns its record.
///
/// # Panics
///
/// When the engine refuses.
pub async fn initialize(engine: &Engine, capabilities: Value) -> SessionRecord {
    let init = request(
        0,
        "initialize",
        json!({"protocolVersion": CLIENT_VERSION, "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}),
    );
    match engine.initialize(None, &init).await {
        Ok((session, _)) => session,
        Err(error) => panic!("initialize failed: {error}"),
    }
}

/// Every message of a reply stream, in order, until it ends.
///
/// # Panics
///
/// When the stream cannot be read, or an event takes longer than [`STREAM_TIMEOUT`].
pub async fn read_stream(engine: &Engine, session: &SessionRecord, stream: StreamId) -> Vec<Value> {
    let what = format!("reply stream {stream}");
    let mut events = match engine.resume(session, &EventId { stream, seq: 0 }).await {
        Ok(subscription) => subscription.events,
        Err(error) => panic!("cannot read the {what}: {error}"),
    };
    let mut messages = Vec::new();
    while let Some((message, last)) = next_message(&mut events, &what).await {
        messages.push(message);
        if last {
            break;
        }
    }
    messages
}

/// The next message of `events`, and whether it is the last one (the stream's response); `None`
/// once the stream ends. Skips what a client never reads (the request id) and rides over a
/// `Disconnect` as a client that resumes at once would.
async fn next_message(
    events: &mut BoxStream<'static, Result<StoredEvent, HostError>>,
    what: &str,
) -> Option<(Value, bool)> {
    loop {
        let Ok(event) = tokio::time::timeout(STREAM_TIMEOUT, events.next()).await else {
            panic!("no event on the {what} within {STREAM_TIMEOUT:?}");
        };
        let event = match event? {
            Ok(stored) => stored.event,
            Err(error) => panic!("the {what} failed: {error}"),
        };
        let (text, last) = match event {
            StreamEvent::Message(text) => (text, false),
            StreamEvent::Last(text) => (text, true),
            StreamEvent::End => return None,
            StreamEvent::Disconnect | StreamEvent::Request(_) => continue,
        };
        match serde_json::from_str(&text) {
            Ok(message) => return Some((message, last)),
            Err(error) => panic!("not JSON on the {what} ({error}): {text}"),
        }
    }
}

/// A client of one engine with one session: requests in, every message of the reply out.
///
/// Like the transport, it reads the session's record afresh before each request, so that what
/// earlier requests changed (`logging/setLevel`, resource subscriptions) is seen. Its methods
/// take `&self`: requests may run concurrently.
pub struct EngineClient {
    engine: Engine,
    session: SessionRecord,
    next_id: AtomicI64,
}

impl std::fmt::Debug for EngineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineClient")
            .field("session", &self.session.id)
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

impl EngineClient {
    /// Initializes a session on `engine` with the client's `capabilities`.
    ///
    /// # Panics
    ///
    /// When the engine refuses.
    pub async fn connect(engine: Engine, capabilities: Value) -> Self {
        let session = initialize(&engine, capabilities).await;
        Self {
            engine,
            session,
            next_id: AtomicI64::new(1),
        }
    }

    /// Starts an engine serving `handlers` over a fresh [`MemoryHost`] with the default
    /// [`EngineConfig`], and initializes a session on it with the client's `capabilities`
    /// (`{}`, or `{"sampling": {}}`…).
    ///
    /// # Panics
    ///
    /// When the engine refuses.
    pub async fn serving(handlers: Handlers, capabilities: Value) -> Self {
        let host = Arc::new(MemoryHost::new(
            NodeId::new("test"),
            MemoryHostConfig::default(),
        ));
        Self::connect(
            Engine::new(host, handlers, EngineConfig::default()),
            capabilities,
        )
        .await
    }

    /// The engine this client talks to, for what a test does beside calls: notify through
    /// [`Engine::notifier`], look at the host, wait for it to be idle.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The session's record as `initialize` made it. Requests change the stored record (the
    /// logging level, subscriptions); each request reads that one.
    pub fn session(&self) -> &SessionRecord {
        &self.session
    }

    /// The session's record as the host holds it now, as the transport reads it per request.
    async fn current_session(&self) -> SessionRecord {
        match self
            .engine
            .resolve_session(self.session.id.as_str(), None)
            .await
        {
            Ok(session) => session,
            Err(error) => panic!("session {} is gone: {error}", self.session.id),
        }
    }

    /// Sends `method` with `params` and returns every message of the reply: the response
    /// alone for a JSON reply; the notifications and requests before it, then it, for a stream.
    ///
    /// # Panics
    ///
    /// When the session is gone, the host fails or the stream cannot be read.
    pub async fn request(&self, method: &str, params: Value) -> Vec<Value> {
        self.send(method, params).await.1
    }

    /// Sends `method` with `params` and returns the JSON-RPC response to it, a result or an
    /// error, without what came before it on the reply stream.
    ///
    /// # Panics
    ///
    /// As [`request`](Self::request), and when the reply has no response.
    pub async fn response(&self, method: &str, params: Value) -> Value {
        let (id, mut messages) = self.send(method, params).await;
        let is_response = |m: &Value| m.get("method").is_none() && m.get("id") == Some(&json!(id));
        match messages.iter().position(is_response) {
            Some(at) => messages.swap_remove(at),
            None => panic!("no response to {method} in its reply: {}", json!(messages)),
        }
    }

    /// Sends `method` with `params` and returns the `result` of the response.
    ///
    /// # Panics
    ///
    /// As [`response`](Self::response), and when the response is a JSON-RPC error.
    pub async fn result(&self, method: &str, params: Value) -> Value {
        into_result(self.response(method, params).await, method)
    }

    /// `tools/call` of `name` with `arguments`: the response's `result`.
    ///
    /// # Panics
    ///
    /// When the reply is a JSON-RPC error or has no response.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Value {
        let params = json!({ "name": name, "arguments": arguments });
        let response = self.response("tools/call", params).await;
        into_result(response, &format!("tools/call {name}"))
    }

    /// [`call_tool`](Self::call_tool), the result read as a [`CallToolResult`]. A failure of
    /// the tool itself is a result with `is_error`, not a panic.
    ///
    /// # Panics
    ///
    /// As [`call_tool`](Self::call_tool), and when the result is not a `CallToolResult`.
    pub async fn call_tool_result(&self, name: &str, arguments: Value) -> CallToolResult {
        let result = self.call_tool(name, arguments).await;
        match serde_json::from_value(result.clone()) {
            Ok(result) => result,
            Err(error) => panic!("tools/call {name}: not a CallToolResult ({error}): {result}"),
        }
    }

    /// Opens the session's standalone stream (the client's GET): the messages sent on it from
    /// now on, in order. The stream ends when the host ends it.
    ///
    /// # Panics
    ///
    /// When the stream cannot be opened; while it is read, when the host fails or the next
    /// message takes longer than [`STREAM_TIMEOUT`] from when it is awaited.
    pub async fn standalone(&self) -> impl Stream<Item = Value> + use<> {
        let session = self.current_session().await;
        let events = match self.engine.open_standalone(&session).await {
            Ok(subscription) => subscription.events,
            Err(error) => panic!("cannot open the standalone stream: {error}"),
        };
        futures::stream::unfold(Some(events), |events| async move {
            let mut events = events?;
            let (message, last) = next_message(&mut events, "standalone stream").await?;
            Some((message, (!last).then_some(events)))
        })
    }

    /// Sends a request with the next id: the id and every message of the reply.
    async fn send(&self, method: &str, params: Value) -> (i64, Vec<Value>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let session = self.current_session().await;
        let reply = match self
            .engine
            .handle_request(session.clone(), None, request(id, method, params))
            .await
        {
            Ok(reply) => reply,
            Err(error) => panic!("{method}: the host failed: {error}"),
        };
        let messages = match reply {
            Reply::Json(body) => match serde_json::from_str(&body) {
                Ok(response) => vec![response],
                Err(error) => panic!("{method}: the reply is not JSON ({error}): {body}"),
            },
            Reply::Stream(stream) => read_stream(&self.engine, &session, stream).await,
        };
        (id, messages)
    }
}

/// The `result` of `response`, the answer to `what`.
fn into_result(response: Value, what: &str) -> Value {
    match response.get("result") {
        Some(result) => result.clone(),
        None => panic!("{what} failed: {response}"),
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::json;

    use super::EngineClient;
    use crate::handler::{Handlers, ToolError, ToolSet, typed_tool};
    use crate::session::LogLevel;

    #[derive(Deserialize, JsonSchema)]
    struct Text {
        text: String,
    }

    /// `log` logs its text on the reply stream, `announce` on the standalone stream.
    fn handlers() -> Handlers {
        let tools = ToolSet::new()
            .with(typed_tool("log", "logs", |ctx, Text { text }| async move {
                ctx.log(LogLevel::Info, None, json!(text))
                    .await
                    .map_err(|e| ToolError::failed(e.to_string()))?;
                Ok::<_, ToolError>("logged".to_owned())
            }))
            .with(typed_tool(
                "announce",
                "announces",
                |ctx, Text { text }| async move {
                    ctx.notify_session("notifications/message", &json!({ "data": text }))
                        .await
                        .map_err(|e| ToolError::failed(e.to_string()))?;
                    Ok::<_, ToolError>("announced".to_owned())
                },
            ));
        Handlers::new().tools(tools)
    }

    #[tokio::test]
    async fn reads_streamed_replies_and_the_current_session() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let messages = client
            .request(
                "tools/call",
                json!({ "name": "log", "arguments": { "text": "a" } }),
            )
            .await;
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0]["params"]["data"], "a");
        assert_eq!(messages[1]["id"], 1);
        let result = client.call_tool_result("log", json!({ "text": "b" })).await;
        assert_eq!(result.content[0].as_text(), Some("logged"));

        client
            .result("logging/setLevel", json!({ "level": "warning" }))
            .await;
        let messages = client
            .request(
                "tools/call",
                json!({ "name": "log", "arguments": { "text": "c" } }),
            )
            .await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        let unknown = client.response("no/such/method", json!({})).await;
        assert_eq!(unknown["error"]["code"], crate::jsonrpc::METHOD_NOT_FOUND);
    }

    #[tokio::test]
    async fn standalone_carries_the_session_messages() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let mut standalone = std::pin::pin!(client.standalone().await);
        let result = client.call_tool("announce", json!({ "text": "hi" })).await;
        assert_eq!(result["content"][0]["text"], "announced");
        let message = standalone.next().await;
        assert_eq!(
            message,
            Some(json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": { "data": "hi" },
            }))
        );
    }
}
