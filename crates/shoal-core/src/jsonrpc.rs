//! JSON-RPC 2.0 framing: the envelope of every message, the session era's error codes (from
//! [`codes`](crate::codes)), and the encoders for what the server writes. The envelope is
//! parsed before the params so that a message with an unknown method or bad params can still
//! be answered with the right error code instead of failing to parse as a whole.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Cause;

// The error codes of the session era, which the engine answers: defined in `codes`, with the
// other era's.
pub use crate::codes::session::{
    INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
    RESOURCE_NOT_FOUND,
};

/// A JSON-RPC request id: a string or an integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(Arc<str>),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => f.write_str(s),
        }
    }
}

/// The error object of a JSON-RPC error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// One of the codes above, or an application code.
    pub code: i32,
    /// One short sentence.
    pub message: String,
    /// Whatever helps the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

/// Builds an [`RpcError`] without data.
pub fn rpc_error(code: i32, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
        data: None,
    }
}

/// One incoming JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: has an id and expects exactly one response.
    Request(Request),
    /// A notification: no id, no response.
    Notification(Notification),
    /// A response (result or error) to a request the server sent.
    Response(Response),
}

/// A JSON-RPC request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The request id, echoed in the response.
    pub id: RequestId,
    /// The method name.
    pub method: String,
    /// The params object, if any.
    pub params: Option<Map<String, Value>>,
}

/// A JSON-RPC notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method name.
    pub method: String,
    /// The params object, if any.
    pub params: Option<Map<String, Value>>,
}

/// A JSON-RPC response to a server→client request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the server's request.
    pub id: RequestId,
    /// The result, or the error the client answered with.
    pub outcome: Result<Value, RpcError>,
}

/// Why a body is not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON at all.
    #[error("parse error: {0}")]
    NotJson(#[source] Cause),
    /// A JSON array: batches are not part of Streamable HTTP since 2025-06-18.
    #[error("batched JSON-RPC messages are not supported; send one message per request")]
    Batch,
    /// JSON, but not a JSON-RPC 2.0 message.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

impl ParseError {
    /// The JSON-RPC error that answers this.
    pub fn to_rpc_error(&self) -> RpcError {
        let code = match self {
            ParseError::NotJson(_) => PARSE_ERROR,
            ParseError::Batch | ParseError::Invalid(_) => INVALID_REQUEST,
        };
        rpc_error(code, self.to_string())
    }
}

impl Message {
    /// Parses one message from a request body.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ParseError::NotJson(Cause::new(e)))?;
        Self::from_value(value)
    }

    /// Classifies an already-parsed JSON value.
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        let mut object = match value {
            Value::Object(object) => object,
            Value::Array(_) => return Err(ParseError::Batch),
            _ => return Err(ParseError::Invalid("a message must be a JSON object")),
        };
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(ParseError::Invalid(r#""jsonrpc" must be "2.0""#));
        }
        let id = match object.remove("id") {
            None => None,
            Some(Value::String(s)) => Some(RequestId::String(s.into())),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(n) => Some(RequestId::Number(n)),
                None => return Err(ParseError::Invalid("an id must be a string or an integer")),
            },
            Some(_) => return Err(ParseError::Invalid("an id must be a string or an integer")),
        };
        let params = match object.remove("params") {
            None | Some(Value::Null) => None,
            Some(Value::Object(params)) => Some(params),
            Some(_) => return Err(ParseError::Invalid("params must be an object")),
        };
        match (object.remove("method"), id) {
            (Some(Value::String(method)), Some(id)) => {
                Ok(Message::Request(Request { id, method, params }))
            }
            (Some(Value::String(method)), None) => {
                Ok(Message::Notification(Notification { method, params }))
            }
            (Some(_), _) => Err(ParseError::Invalid("method must be a string")),
            (None, Some(id)) => {
                let outcome = match (object.remove("result"), object.remove("error")) {
                    (Some(result), None) => Ok(result),
                    (None, Some(error)) => Err(serde_json::from_value(error)
                        .map_err(|_| ParseError::Invalid("malformed error object"))?),
                    _ => {
                        return Err(ParseError::Invalid(
                            "a response must carry exactly one of result and error",
                        ));
                    }
                };
                Ok(Message::Response(Response { id, outcome }))
            }
            (None, None) => Err(ParseError::Invalid("a message needs a method or an id")),
        }
    }
}

impl Request {
    /// Deserializes the params into `T`, treating absent params as `{}`.
    pub fn params_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, RpcError> {
        // From a borrow: only what `T` keeps is copied, not the whole params tree.
        let empty = Map::new();
        T::deserialize(self.params.as_ref().unwrap_or(&empty))
            .map_err(|e| rpc_error(INVALID_PARAMS, format!("invalid params: {e}")))
    }

    /// `params._meta.progressToken`, when the client asked for progress.
    pub fn progress_token(&self) -> Option<Value> {
        self.params
            .as_ref()?
            .get("_meta")?
            .get("progressToken")
            .filter(|token| token.is_string() || token.is_number())
            .cloned()
    }
}

// === encoders ===

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RequestId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

fn encode<T: Serialize>(envelope: &Envelope<'_, T>) -> String {
    // Serializing our own types into a String cannot fail: no maps with non-string keys.
    serde_json::to_string(envelope).unwrap_or_else(|_| {
        r#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"}}"#.to_owned()
    })
}

/// A success response.
pub fn encode_result<T: Serialize>(id: &RequestId, result: &T) -> String {
    encode(&Envelope {
        jsonrpc: "2.0",
        id: Some(id),
        method: None,
        params: None,
        result: Some(result),
        error: None,
    })
}

/// An error response; `id` is `None` only when the request's id could not be read, and is then
/// left out (the MCP schema makes it optional and forbids `null`).
pub fn encode_error(id: Option<&RequestId>, error: &RpcError) -> String {
    #[derive(Serialize)]
    struct ErrorEnvelope<'a> {
        jsonrpc: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        error: &'a RpcError,
    }
    serde_json::to_string(&ErrorEnvelope {
        jsonrpc: "2.0",
        id,
        error,
    })
    .unwrap_or_default()
}

/// A notification.
pub fn encode_notification<T: Serialize>(method: &str, params: &T) -> String {
    encode(&Envelope {
        jsonrpc: "2.0",
        id: None,
        method: Some(method),
        params: Some(params),
        result: None,
        error: None,
    })
}

/// A server→client request.
pub fn encode_request<T: Serialize>(id: &RequestId, method: &str, params: &T) -> String {
    encode(&Envelope {
        jsonrpc: "2.0",
        id: Some(id),
        method: Some(method),
        params: Some(params),
        result: None,
        error: None,
    })
}

/// Whether `bytes` nests arrays and objects deeper than `max`: a byte scan before parsing, so
/// that a hostile body cannot make the parser recurse deeply. Brackets inside strings (with
/// escapes honoured) do not count; the scan does not validate the JSON.
pub fn nesting_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_depth_counts_arrays_and_objects() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(!nesting_depth_exceeds(nested(64).as_bytes(), 64));
        assert!(nesting_depth_exceeds(nested(65).as_bytes(), 64));
        assert!(nesting_depth_exceeds(br#"{"a":{"b":[1]}}"#, 2));
        assert!(!nesting_depth_exceeds(br#"{"a":{"b":[1]}}"#, 3));
        // Siblings do not add up.
        assert!(!nesting_depth_exceeds(b"[[],[],[[]]]", 3));
        assert!(!nesting_depth_exceeds(b"", 0));
        assert!(nesting_depth_exceeds(b"{}", 0));
    }

    #[test]
    fn nesting_depth_ignores_brackets_in_strings() {
        let in_string = format!(r#"{{"text":"{}"}}"#, "[{".repeat(100));
        assert!(!nesting_depth_exceeds(in_string.as_bytes(), 1));
        // An escaped quote does not end the string; an escaped backslash does not escape it.
        assert!(!nesting_depth_exceeds(br#"{"a":"\"[[\""}"#, 1));
        assert!(nesting_depth_exceeds(br#"{"a":"\\",  "b":[[1]]}"#, 2));
        assert!(!nesting_depth_exceeds(br#"{"a":"x\"]]\"y"}"#, 1));
    }

    #[test]
    fn classifies_messages() {
        let request = Message::parse(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert!(matches!(
            request,
            Message::Request(Request {
                id: RequestId::Number(7),
                ..
            })
        ));
        let note = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(matches!(note, Ok(Message::Notification(_))));
        let response = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert!(matches!(
            response,
            Message::Response(Response { outcome: Ok(_), .. })
        ));
        let error =
            Message::parse(br#"{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}}"#)
                .unwrap();
        assert!(matches!(
            error,
            Message::Response(Response {
                outcome: Err(_),
                ..
            })
        ));
    }

    #[test]
    fn rejects_what_is_not_one_message() {
        assert!(matches!(Message::parse(b"{"), Err(ParseError::NotJson(_))));
        assert_eq!(Message::parse(b"[]"), Err(ParseError::Batch));
        assert!(matches!(
            Message::parse(br#"{"id":1,"method":"x"}"#),
            Err(ParseError::Invalid(_))
        ));
        assert!(matches!(
            Message::parse(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#),
            Err(ParseError::Invalid(_))
        ));
        assert!(matches!(
            Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
            Err(ParseError::Invalid(_))
        ));
        assert_eq!(
            Message::parse(b"[]").unwrap_err().to_rpc_error().code,
            INVALID_REQUEST
        );
        assert_eq!(
            Message::parse(b"x").unwrap_err().to_rpc_error().code,
            PARSE_ERROR
        );
    }

    #[test]
    fn encodes_envelopes() {
        let id = RequestId::Number(1);
        assert_eq!(
            encode_result(&id, &serde_json::json!({})),
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#
        );
        let error = rpc_error(METHOD_NOT_FOUND, "nope");
        assert_eq!(
            encode_error(None, &error),
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"nope"}}"#
        );
    }
}
