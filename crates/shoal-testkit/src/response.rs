//! [`RawResponse`]: an HTTP response read to its end, with assertions for refusals.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::client::media_type;

/// A response read to its end.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body, as bytes (a refusal's body need not be UTF-8 or JSON).
    pub body: Vec<u8>,
}

// === impl RawResponse ===

impl RawResponse {
    pub(crate) async fn read(response: reqwest::Response, timeout: Duration) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = match tokio::time::timeout(timeout, response.bytes()).await {
            Ok(Ok(body)) => body.to_vec(),
            Ok(Err(error)) => panic!("reading a {status} body: {error}"),
            Err(_) => panic!("the {status} body did not end within {timeout:?} (a stream?)"),
        };
        RawResponse {
            status,
            headers,
            body,
        }
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of `Content-Type`, lowercase, without parameters (`""` when absent).
    pub fn content_type(&self) -> String {
        media_type(&self.headers)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("the body is not JSON ({error}): {self}"))
    }

    /// Asserts a refusal: the status, a JSON body (`Content-Type: application/json`) that is a
    /// JSON-RPC error with `code` and a message containing `message`. Returns the error object.
    ///
    /// # Panics
    ///
    /// When any of that does not hold.
    pub fn assert_rpc_error(&self, status: u16, code: i64, message: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "status of {self}");
        assert_eq!(self.content_type(), "application/json", "type of {self}");
        let body = self.json();
        assert_eq!(body["jsonrpc"], "2.0", "envelope of {self}");
        assert_eq!(body["error"]["code"], json!(code), "error code of {self}");
        let text = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message),
            "error message {text:?} does not contain {message:?}"
        );
        body["error"].clone()
    }
}

impl fmt::Display for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] {:?}",
            self.status,
            self.content_type(),
            self.text()
        )
    }
}
