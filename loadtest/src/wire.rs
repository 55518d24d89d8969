//! The few JSON-RPC and MCP shapes the load generator writes and reads.
//!
//! Replies are parsed into small borrowing structs: only what a scenario checks is decoded;
//! everything else is skipped by serde without being built (unknown fields) or kept as raw
//! text ([`RawValue`]).

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::error::Error;

/// The protocol revision the client asks for at initialize.
pub(crate) const PROTOCOL_VERSION: &str = "2025-11-25";
/// The stateless revision: no initialize, each request claims it in its `_meta`.
pub(crate) const STATELESS_VERSION: &str = "2026-07-28";

/// One JSON-RPC message: request, notification or response.
#[derive(Debug, Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(borrow, default)]
    pub(crate) id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(crate) method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Debug, Deserialize)]
struct RpcError {
    code: i64,
    #[serde(default)]
    message: String,
}

/// The part of a `tools/call` result that is checked.
#[derive(Debug, Deserialize)]
pub(crate) struct ToolResult<'a> {
    #[serde(borrow, default)]
    content: Vec<Content<'a>>,
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Content<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct InitializeResult<'a> {
    #[serde(rename = "protocolVersion", borrow)]
    protocol_version: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
struct ProgressParams {
    progress: f64,
}

#[derive(Debug, Deserialize)]
struct LogParams<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

// === impl Message ===

impl<'a> Message<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        // serde would also read a struct from an array (a batch, which MCP does not allow).
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::protocol("not a JSON-RPC message: not a JSON object"));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| Error::protocol(format!("not a JSON-RPC message: {e}")))
    }

    pub(crate) fn parse_str(text: &'a str) -> Result<Self, Error> {
        Self::parse(text.as_bytes())
    }

    /// Whether this is the response to request `id`.
    pub(crate) fn is_response_to(&self, id: u64) -> bool {
        self.method.is_none() && self.id.is_some_and(|raw| raw.get().parse() == Ok(id))
    }

    /// Whether this is a request from the server with this method.
    pub(crate) fn is_request(&self, method: &str) -> bool {
        self.id.is_some() && self.method.as_deref() == Some(method)
    }

    /// The result of a response, or its error.
    pub(crate) fn into_result(self) -> Result<&'a RawValue, Error> {
        match (self.result, self.error) {
            (_, Some(error)) => Err(Error::JsonRpc {
                code: error.code,
                message: error.message,
            }),
            (Some(result), None) => Ok(result),
            (None, None) => Err(Error::protocol("a response with neither result nor error")),
        }
    }

    /// The `progress` of a `notifications/progress`.
    pub(crate) fn progress(&self) -> Option<f64> {
        if self.method.as_deref() != Some("notifications/progress") {
            return None;
        }
        let params: ProgressParams = serde_json::from_str(self.params?.get()).ok()?;
        Some(params.progress)
    }

    /// The `data` of a `notifications/message` when it is a string.
    pub(crate) fn log_text(&self) -> Option<Cow<'a, str>> {
        if self.method.as_deref() != Some("notifications/message") {
            return None;
        }
        let params: LogParams<'a> = serde_json::from_str(self.params?.get()).ok()?;
        serde_json::from_str(params.data.get()).ok()
    }
}

// === impl ToolResult ===

impl<'a> ToolResult<'a> {
    /// Parses a `tools/call` result; a result with `isError: true` is [`Error::Tool`].
    pub(crate) fn parse(result: &'a RawValue) -> Result<Self, Error> {
        let parsed: Self = serde_json::from_str(result.get())
            .map_err(|e| Error::protocol(format!("not a tools/call result: {e}")))?;
        if parsed.is_error == Some(true) {
            return Err(Error::Tool(parsed.text().unwrap_or_default().to_owned()));
        }
        Ok(parsed)
    }

    /// The first text block.
    pub(crate) fn text(&self) -> Option<&str> {
        self.content
            .iter()
            .find(|block| block.kind == "text")
            .and_then(|block| block.text.as_deref())
    }

    /// Checks the first text block with `expected`, which says what it should have been.
    pub(crate) fn expect_text(
        &self,
        expected: impl FnOnce() -> String,
        check: impl FnOnce(&str) -> bool,
    ) -> Result<(), Error> {
        match self.text() {
            Some(text) if check(text) => Ok(()),
            got => Err(Error::WrongResult {
                expected: expected(),
                got: got.unwrap_or("(no text block)").to_owned(),
            }),
        }
    }
}

/// The `protocolVersion` of an initialize result.
pub(crate) fn negotiated_version(result: &RawValue) -> Result<String, Error> {
    let result: InitializeResult<'_> = serde_json::from_str(result.get())
        .map_err(|e| Error::protocol(format!("not an initialize result: {e}")))?;
    Ok(result.protocol_version.into_owned())
}

// === bodies ===

/// A request body.
pub(crate) fn request(id: u64, method: &str, params: &Value) -> Bytes {
    let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    Bytes::from(message.to_string())
}

/// A notification body without params.
pub(crate) fn notification(method: &str) -> Bytes {
    Bytes::from(json!({ "jsonrpc": "2.0", "method": method }).to_string())
}

/// The body of a response to a server's request, its id copied as it came.
pub(crate) fn response(id: &RawValue, result: &Value) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
        id.get()
    ))
}

/// The `initialize` params of this client.
pub(crate) fn initialize_params(capabilities: &Value) -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": capabilities,
        "clientInfo": { "name": "shoal-load", "version": env!("CARGO_PKG_VERSION") },
    })
}

/// The `_meta` of a 2026-07-28 request: the version, capabilities and client info that
/// `initialize` carried in the session era.
pub(crate) fn stateless_meta(capabilities: &Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {
            "name": "shoal-load",
            "version": env!("CARGO_PKG_VERSION"),
        },
    })
}

/// A `tools/call` body serialized once; each request only appends its id.
#[derive(Debug, Clone)]
pub(crate) struct CallTemplate {
    /// Everything up to the id's value.
    prefix: Vec<u8>,
}

impl CallTemplate {
    pub(crate) fn new(tool: &str, arguments: &Map<String, Value>) -> Self {
        Self::with_params(&json!({ "name": tool, "arguments": arguments }))
    }

    /// A 2026-07-28 call: the params carry the request's `_meta`.
    pub(crate) fn stateless(tool: &str, arguments: &Map<String, Value>) -> Self {
        Self::with_params(&json!({
            "name": tool,
            "arguments": arguments,
            "_meta": stateless_meta(&json!({})),
        }))
    }

    fn with_params(params: &Value) -> Self {
        let prefix = format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{params},"id":"#);
        Self {
            prefix: prefix.into_bytes(),
        }
    }

    pub(crate) fn body(&self, id: u64) -> Bytes {
        use std::io::Write;
        let mut body = Vec::with_capacity(self.prefix.len() + 21);
        body.extend_from_slice(&self.prefix);
        // Writing to a Vec cannot fail.
        let _ = write!(body, "{id}}}");
        Bytes::from(body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn call_template_makes_a_valid_request() {
        let arguments = json!({ "text": "a \"quoted\" text" });
        let template = CallTemplate::new("echo", arguments.as_object().unwrap());
        let body: Value = serde_json::from_slice(&template.body(42)).unwrap();
        assert_eq!(
            body,
            json!({
                "jsonrpc": "2.0", "id": 42, "method": "tools/call",
                "params": { "name": "echo", "arguments": arguments },
            })
        );
    }

    #[test]
    fn a_stateless_call_claims_the_revision_in_its_meta() {
        let arguments = json!({ "text": "hi" });
        let template = CallTemplate::stateless("echo", arguments.as_object().unwrap());
        let body: Value = serde_json::from_slice(&template.body(3)).unwrap();
        let meta = &body["params"]["_meta"];
        assert_eq!(
            meta["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientCapabilities"],
            json!({})
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientInfo"]["name"],
            "shoal-load"
        );
        assert_eq!(body["params"]["arguments"], arguments);
        assert_eq!(body["id"], 3);
    }

    #[test]
    fn reads_responses_errors_and_tool_results() {
        let text = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}],"structuredContent":{"x":[1,2]}}}"#;
        let message = Message::parse_str(text).unwrap();
        assert!(message.is_response_to(7));
        assert!(!message.is_response_to(8));
        let result = ToolResult::parse(message.into_result().unwrap()).unwrap();
        assert_eq!(result.text(), Some("hi"));
        assert!(result.expect_text(|| "hi".into(), |t| t == "hi").is_ok());
        let error = result
            .expect_text(|| "\"bye\"".into(), |t| t == "bye")
            .unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::WrongResult);

        let text = r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"bad"}}"#;
        let error = Message::parse_str(text).unwrap().into_result().unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::JsonRpc(-32602));

        let text = r#"{"content":[{"type":"text","text":"boom"}],"isError":true}"#;
        let raw: &RawValue = serde_json::from_str(text).unwrap();
        let error = ToolResult::parse(raw).unwrap_err();
        assert_eq!(error.to_string(), "the tool failed: boom");

        assert_eq!(
            Message::parse_str("[1]").unwrap_err().kind(),
            crate::error::ErrorKind::Protocol
        );
    }

    #[test]
    fn reads_notifications_and_server_requests() {
        let progress = Message::parse_str(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":3,"total":10}}"#,
        )
        .unwrap();
        assert_eq!(progress.progress(), Some(3.0));
        assert!(!progress.is_response_to(3));
        let log = Message::parse_str(
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"announce","data":"tok\"en"}}"#,
        )
        .unwrap();
        assert_eq!(log.log_text().as_deref(), Some("tok\"en"));
        assert_eq!(log.progress(), None);
        let request = Message::parse_str(
            r#"{"jsonrpc":"2.0","id":"node-1.5","method":"elicitation/create","params":{}}"#,
        )
        .unwrap();
        assert!(request.is_request("elicitation/create"));
        let body = response(request.id.unwrap(), &json!({ "action": "accept" }));
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({ "jsonrpc": "2.0", "id": "node-1.5", "result": { "action": "accept" } })
        );
    }
}
