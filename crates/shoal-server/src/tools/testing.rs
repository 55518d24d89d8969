//! A client for unit tests that drives the engine directly over the in-memory host, no HTTP.
//!
//! Only replies the engine answers as plain JSON are readable here. A reply that streams
//! (progress, log messages, server→client requests first) lives in a stream log; the
//! conformance suite and the end-to-end tests cover those.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};
use shoal_core::engine::{Engine, EngineConfig, Reply};
use shoal_core::handler::Handlers;
use shoal_core::host::{MemoryHost, MemoryHostConfig};
use shoal_core::ids::{NodeId, SessionId};
use shoal_core::jsonrpc::{Request, RequestId};
use shoal_core::model::CallToolResult;

/// One initialized session on a private engine.
pub(crate) struct TestClient {
    engine: Engine,
    session: SessionId,
    next_id: AtomicI64,
}

impl TestClient {
    /// Starts an engine serving `handlers` and initializes a session that declares
    /// `capabilities` (e.g. `{}`, or `{"sampling": {}}`).
    pub(crate) async fn connect(handlers: Handlers, capabilities: Value) -> Self {
        let host = Arc::new(MemoryHost::new(
            NodeId::new("test"),
            MemoryHostConfig::default(),
        ));
        let engine = Engine::new(host, handlers, EngineConfig::default());
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": capabilities,
            "clientInfo": { "name": "shoal-tools-test", "version": "0" },
        });
        let (record, _) = engine
            .initialize(None, &request(0, "initialize", params))
            .await
            .unwrap();
        TestClient {
            engine,
            session: record.id,
            next_id: AtomicI64::new(1),
        }
    }

    /// Sends a request and returns the whole JSON-RPC response. Panics if the reply streams.
    pub(crate) async fn request(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Read the record afresh each time, as the transport does (log level, subscriptions).
        let session = self
            .engine
            .resolve_session(self.session.as_str(), None)
            .await
            .unwrap();
        match self
            .engine
            .handle_request(session, None, request(id, method, params))
            .await
            .unwrap()
        {
            Reply::Json(body) => serde_json::from_str(&body).unwrap(),
            Reply::Stream(_) => {
                panic!("the reply to {method} streams; only JSON replies are readable here")
            }
        }
    }

    /// Opens the session's standalone stream (the client's GET): the messages logged on it
    /// from now on, as JSON.
    pub(crate) async fn standalone(&self) -> impl futures::Stream<Item = Value> + use<> {
        use futures::StreamExt;
        use shoal_core::host::StreamEvent;

        let session = self
            .engine
            .resolve_session(self.session.as_str(), None)
            .await
            .unwrap();
        let subscription = self.engine.open_standalone(&session).await.unwrap();
        subscription.events.filter_map(|event| async move {
            match event.unwrap().event {
                StreamEvent::Message(message) => Some(serde_json::from_str(&message).unwrap()),
                _ => None,
            }
        })
    }

    /// Sends a request and returns its `result`; panics on a JSON-RPC error.
    pub(crate) async fn result(&self, method: &str, params: Value) -> Value {
        let response = self.request(method, params).await;
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("{method} failed: {response}"),
        }
    }

    /// Calls a tool.
    pub(crate) async fn call_tool(&self, name: &str, arguments: Value) -> CallToolResult {
        let result = self
            .result(
                "tools/call",
                json!({ "name": name, "arguments": arguments }),
            )
            .await;
        serde_json::from_value(result).unwrap()
    }
}

/// The text of a result that must be exactly one text block.
pub(crate) fn only_text(result: &CallToolResult) -> &str {
    match result.content.as_slice() {
        [content] => content
            .as_text()
            .unwrap_or_else(|| panic!("not text: {content:?}")),
        other => panic!("expected one content block, got {other:?}"),
    }
}

fn request(id: i64, method: &str, params: Value) -> Request {
    Request {
        id: RequestId::Number(id),
        method: method.into(),
        params: params.as_object().cloned(),
    }
}
