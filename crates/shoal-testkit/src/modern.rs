//! Requests of the stateless era (2026-07-28) from an [`McpClient`]: each carries its `_meta`
//! claim and the `Mcp-*` headers a real client sends, and needs no session.

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::SseStream;
use crate::client::{McpClient, PROTOCOL_VERSION, Reply, message};

/// The revision these requests claim.
pub const VERSION: &str = "2026-07-28";

/// The `_meta` claim of a request: [`VERSION`], the `elicitation`, `sampling` and `roots`
/// capabilities and a client name.
pub fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": { "elicitation": {}, "sampling": {}, "roots": {} },
        "io.modelcontextprotocol/clientInfo": { "name": "shoal-testkit", "version": "1" },
    })
}

/// A stateless-era request: `params` with [`meta`] merged in (a `_meta` of its own wins).
pub fn request(id: i64, method: &str, params: Value) -> Value {
    let mut params = match params {
        Value::Object(params) => params,
        _ => serde_json::Map::new(),
    };
    params.entry("_meta").or_insert_with(meta);
    message(id, method, Some(Value::Object(params)))
}

/// The headers a 2026-07-28 client adds to a request: `MCP-Protocol-Version`, `Mcp-Method`, and
/// `Mcp-Name` (the tool or prompt name, or the resource URI) where the method has one.
///
/// # Panics
///
/// When the name is not a valid header value (tests use ASCII names).
pub fn headers(request: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(PROTOCOL_VERSION, HeaderValue::from_static(VERSION));
    let method = request["method"].as_str().unwrap_or_default();
    headers.insert(
        HeaderName::from_static("mcp-method"),
        HeaderValue::from_str(method).expect("a method is a header value"),
    );
    let name = match method {
        "tools/call" | "prompts/get" => request["params"]["name"].as_str(),
        "resources/read" => request["params"]["uri"].as_str(),
        _ => None,
    };
    if let Some(name) = name {
        headers.insert(
            HeaderName::from_static("mcp-name"),
            HeaderValue::from_str(name).expect("an ASCII name"),
        );
    }
    headers
}

impl McpClient {
    /// Sends a stateless-era request and returns its response (the JSON body, or the message
    /// with its id from an SSE reply, notifications skipped).
    ///
    /// # Panics
    ///
    /// When the answer is not 200 with a response of the request's id.
    pub async fn modern(&self, method: &str, params: Value) -> Value {
        let id = self.next_id();
        let body = request(id, method, params);
        match self.post_modern(&body).await {
            Reply::Json(raw) => raw.json(),
            Reply::Stream(mut stream) => loop {
                let Some(event) = stream.next_event().await else {
                    panic!("{method}: the stream ended before the response");
                };
                if let Some(message) = event.json()
                    && message.get("method").is_none()
                {
                    assert_eq!(message["id"], json!(id), "{method}: {message}");
                    break message;
                }
            },
            Reply::Other(raw) => panic!("{method}: {raw}"),
        }
    }

    /// Opens a `subscriptions/listen` stream for `notifications` (the filter, e.g.
    /// `{"toolsListChanged": true}`); its first event is the acknowledgement.
    ///
    /// # Panics
    ///
    /// Unless the server answers 200 with `text/event-stream`.
    pub async fn listen(&self, id: i64, notifications: Value) -> SseStream {
        let body = request(
            id,
            "subscriptions/listen",
            json!({ "notifications": notifications }),
        );
        self.post_modern(&body).await.into_stream()
    }

    /// POSTs a stateless-era message with its `Mcp-*` headers and no session.
    pub async fn post_modern(&self, body: &Value) -> Reply {
        let mut all = self.default_headers();
        all.remove(crate::client::SESSION_ID);
        all.extend(headers(body));
        let response = self
            .send(Method::POST, all, Some(body.to_string().into_bytes()))
            .await;
        Reply::of(response, self.timeout()).await
    }
}
