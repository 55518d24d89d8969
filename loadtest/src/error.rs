//! Why an operation failed ([`Error`]) and the key it is counted under ([`ErrorKind`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A failed operation. Its [`ErrorKind`] is what the summary counts; the message is kept for
/// the first error of each kind.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// No TCP connection or no HTTP/1.1 handshake.
    #[error("could not connect to {url}: {source}")]
    Connect {
        url: Arc<str>,
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed: most often a certificate that is not trusted.
    #[error("could not connect to {url}: {}", crate::tls::describe(.source))]
    Tls {
        url: Arc<str>,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    /// The connection broke before the reply was complete.
    #[error("the connection to {url} broke: {source}")]
    Connection {
        url: Arc<str>,
        #[source]
        source: std::io::Error,
    },
    /// The whole operation took longer than `--timeout`.
    #[error("no result within {0:?}")]
    Timeout(Duration),
    /// An HTTP status other than the expected one.
    #[error("{url} answered HTTP {status}{}", body_excerpt(.body))]
    Http {
        url: Arc<str>,
        status: u16,
        body: String,
    },
    /// A JSON-RPC error response.
    #[error("JSON-RPC error {code}: {message}")]
    JsonRpc { code: i64, message: String },
    /// A tool result with `isError: true`.
    #[error("the tool failed: {0}")]
    Tool(String),
    /// A reply that does not parse or is not what the protocol allows here.
    #[error("unexpected reply: {0}")]
    Protocol(String),
    /// An event stream that ended before the response it should carry.
    #[error("the event stream ended before the response")]
    StreamClosed,
    /// A result that is not what the scenario expects.
    #[error("wrong result: expected {expected}, got {got:?}")]
    WrongResult { expected: String, got: String },
    /// Events of one stream that were missing, repeated or reordered.
    #[error("{0}")]
    Sequence(SequenceError),
}

/// What was wrong with a sequence of notifications (progress, or listen deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SequenceError {
    #[error("{missing} notification(s) never arrived")]
    Gap { missing: u64 },
    #[error("{repeated} notification(s) arrived twice")]
    Duplicate { repeated: u64 },
    #[error("{late} notification(s) arrived after a later one")]
    OutOfOrder { late: u64 },
}

/// The summary's key for a failure: `connect` (TLS included), `timeout`, `http_<status>`, `jsonrpc_<code>`,
/// `tool_error`, `protocol`, `stream_closed`, `wrong_result`, `gap`, `duplicate`,
/// `out_of_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ErrorKind {
    Connect,
    Timeout,
    Http(u16),
    JsonRpc(i64),
    ToolError,
    Protocol,
    StreamClosed,
    WrongResult,
    Gap,
    Duplicate,
    OutOfOrder,
}

/// At most this much of an error body goes into a message.
const BODY_EXCERPT_CHARS: usize = 200;

fn body_excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    let mut excerpt: String = body.chars().take(BODY_EXCERPT_CHARS).collect();
    if excerpt.len() < body.len() {
        excerpt.push('…');
    }
    format!(": {excerpt}")
}

// === impl Error ===

impl Error {
    /// The key this failure is counted under.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::Connect { .. } | Self::Tls { .. } | Self::Connection { .. } => ErrorKind::Connect,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::Http { status, .. } => ErrorKind::Http(*status),
            Self::JsonRpc { code, .. } => ErrorKind::JsonRpc(*code),
            Self::Tool(_) => ErrorKind::ToolError,
            Self::Protocol(_) => ErrorKind::Protocol,
            Self::StreamClosed => ErrorKind::StreamClosed,
            Self::WrongResult { .. } => ErrorKind::WrongResult,
            Self::Sequence(SequenceError::Gap { .. }) => ErrorKind::Gap,
            Self::Sequence(SequenceError::Duplicate { .. }) => ErrorKind::Duplicate,
            Self::Sequence(SequenceError::OutOfOrder { .. }) => ErrorKind::OutOfOrder,
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol(message.into())
    }
}

// === impl ErrorKind ===

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::Timeout => f.write_str("timeout"),
            Self::Http(status) => write!(f, "http_{status}"),
            Self::JsonRpc(code) => write!(f, "jsonrpc_{code}"),
            Self::ToolError => f.write_str("tool_error"),
            Self::Protocol => f.write_str("protocol"),
            Self::StreamClosed => f.write_str("stream_closed"),
            Self::WrongResult => f.write_str("wrong_result"),
            Self::Gap => f.write_str("gap"),
            Self::Duplicate => f.write_str("duplicate"),
            Self::OutOfOrder => f.write_str("out_of_order"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_snake_case_keys() {
        let keys: Vec<String> = [
            ErrorKind::Connect,
            ErrorKind::Timeout,
            ErrorKind::Http(503),
            ErrorKind::JsonRpc(-32602),
            ErrorKind::ToolError,
            ErrorKind::Protocol,
            ErrorKind::StreamClosed,
            ErrorKind::WrongResult,
            ErrorKind::Gap,
            ErrorKind::Duplicate,
            ErrorKind::OutOfOrder,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            keys,
            [
                "connect",
                "timeout",
                "http_503",
                "jsonrpc_-32602",
                "tool_error",
                "protocol",
                "stream_closed",
                "wrong_result",
                "gap",
                "duplicate",
                "out_of_order"
            ]
        );
    }

    #[test]
    fn http_errors_quote_a_short_body() {
        let error = Error::Http {
            url: "http://x/mcp".into(),
            status: 404,
            body: format!("  {}  ", "a".repeat(300)),
        };
        let message = error.to_string();
        assert!(
            message.starts_with("http://x/mcp answered HTTP 404: aaa"),
            "{message}"
        );
        assert!(message.ends_with('…'), "{message}");
        let error = Error::Http {
            url: "http://x/mcp".into(),
            status: 503,
            body: String::new(),
        };
        assert_eq!(error.to_string(), "http://x/mcp answered HTTP 503");
    }
}
