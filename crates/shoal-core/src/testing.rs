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
//! let mut client = EngineClient::connect(engine, json!({})).await;
//! let result = client.call_tool("echo", json!({ "text": "hi" })).await;
//! assert_eq!(result["content"][0]["text"], "hi");
//! # });
//! ```
//!
//! Test code: every function panics, with a message, when the engine does not answer as a
//! client expects, and every wait is bounded ([`STREAM_TIMEOUT`]).

// Test helpers fail the test that calls them, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::engine::{Engine, Reply};
use crate::host::StreamEvent;
use crate::ids::{EventId, StreamId};
use crate::jsonrpc::{Message, Request};
use crate::session::SessionRecord;

/// How long [`read_stream`] waits for each event of a reply stream.
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
    engine.initialize(None, &init).await.unwrap().0
}

/// Every message of a reply stream, in order, until it ends.
///
/// # Panics
///
/// When the stream cannot be read, or an event takes longer than [`STREAM_TIMEOUT`].
pub async fn read_stream(engine: &Engine, session: &SessionRecord, stream: StreamId) -> Vec<Value> {
    let mut sub = engine
        .resume(session, &EventId { stream, seq: 0 })
        .await
        .unwrap();
    let mut messages = Vec::new();
    while let Some(event) = tokio::time::timeout(STREAM_TIMEOUT, sub.events.next())
        .await
        .unwrap()
    {
        match event.unwrap().event {
            StreamEvent::Message(text) => messages.push(serde_json::from_str(&text).unwrap()),
            StreamEvent::Last(text) => {
                messages.push(serde_json::from_str(&text).unwrap());
                break;
            }
            StreamEvent::End => break,
            StreamEvent::Disconnect | StreamEvent::Request(_) => {}
        }
    }
    messages
}

/// A client of one engine with one session: requests in, every message of the reply out.
pub struct EngineClient {
    engine: Engine,
    session: SessionRecord,
    next_id: i64,
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
            next_id: 1,
        }
    }

    /// The engine this client talks to, for what a test does beside calls: notify through
    /// [`Engine::notifier`], look at the host, wait for it to be idle.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The session's record.
    pub fn session(&self) -> &SessionRecord {
        &self.session
    }

    /// Sends `method` with `params` and returns every message of the reply: the response
    /// alone for a JSON reply; the notifications and requests before it, then it, for a stream.
    ///
    /// # Panics
    ///
    /// When the host fails or the stream cannot be read.
    pub async fn request(&mut self, method: &str, params: Value) -> Vec<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let reply = self
            .engine
            .handle_request(self.session.clone(), None, request(id, method, params))
            .await
            .unwrap();
        match reply {
            Reply::Json(body) => vec![serde_json::from_str(&body).unwrap()],
            Reply::Stream(stream) => read_stream(&self.engine, &self.session, stream).await,
        }
    }

    /// `tools/call` of `name` with `arguments`: the response's `result`.
    ///
    /// # Panics
    ///
    /// When the reply is a JSON-RPC error or has no response.
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        let messages = self
            .request(
                "tools/call",
                json!({ "name": name, "arguments": arguments }),
            )
            .await;
        let response = messages
            .into_iter()
            .find(|m| m.get("id").is_some() && m.get("method").is_none())
            .expect("a response to tools/call");
        assert!(
            response.get("error").is_none(),
            "tools/call {name} failed: {response}"
        );
        response["result"].clone()
    }
}
