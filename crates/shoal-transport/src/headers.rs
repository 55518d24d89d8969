//! Reading the request headers Streamable HTTP defines.

use http::HeaderMap;
use http::header::{ACCEPT, CONTENT_TYPE};
use shoal_core::version;

use crate::rejection::Rejection;

/// `Mcp-Session-Id`.
pub(crate) const SESSION_ID: &str = shoal_wire::header::MCP_SESSION_ID;
/// `MCP-Protocol-Version`.
pub(crate) const PROTOCOL_VERSION: &str = shoal_wire::header::MCP_PROTOCOL_VERSION;
/// `Last-Event-ID`.
pub(crate) const LAST_EVENT_ID: &str = shoal_wire::header::LAST_EVENT_ID;

/// Which of the two reply formats the client accepts (`*/*` and `type/*` count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepts {
    pub(crate) json: bool,
    pub(crate) sse: bool,
}

pub(crate) fn accepts(headers: &HeaderMap) -> Accepts {
    let mut accepts = Accepts {
        json: false,
        sse: false,
    };
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let media = range.split(';').next().unwrap_or("").trim();
            let is = |name: &str| media.eq_ignore_ascii_case(name);
            if is("*/*") {
                (accepts.json, accepts.sse) = (true, true);
            } else if is("application/*") || is("application/json") {
                accepts.json = true;
            } else if is("text/*") || is("text/event-stream") {
                accepts.sse = true;
            }
        }
    }
    accepts
}

/// POST bodies must be `application/json` (parameters such as `charset` allowed).
pub(crate) fn require_json_body(headers: &HeaderMap) -> Result<(), Rejection> {
    let essence = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(Rejection::UnsupportedMediaType),
    }
}

/// The session id header, if present.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(SESSION_ID).and_then(|v| v.to_str().ok())
}

/// Refuses an `MCP-Protocol-Version` this server does not speak (absent is fine: the spec
/// says to assume 2025-03-26).
/// A GET or DELETE without a session, whose `MCP-Protocol-Version` is of the stateless era:
/// that era has neither (405); its notifications come on `subscriptions/listen` streams.
pub(crate) fn refuse_modern_get_or_delete(headers: &HeaderMap) -> Result<(), Rejection> {
    let modern = headers
        .get(PROTOCOL_VERSION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(version::names_modern_era);
    if modern && session_id(headers).is_none() {
        return Err(Rejection::Modern {
            status: http::StatusCode::METHOD_NOT_ALLOWED,
            id: None,
            error: shoal_core::jsonrpc::rpc_error(
                shoal_core::codes::modern::INVALID_REQUEST,
                "method not allowed: the 2026-07-28 revision takes POST only",
            ),
        });
    }
    Ok(())
}

pub(crate) fn check_protocol_version(headers: &HeaderMap) -> Result<(), Rejection> {
    match headers.get(PROTOCOL_VERSION) {
        None => Ok(()),
        Some(value) => {
            let value = value.to_str().unwrap_or("<not text>");
            if version::is_supported(value) {
                Ok(())
            } else {
                Err(Rejection::UnsupportedProtocolVersion(value.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Accepts {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, value.parse().unwrap());
        accepts(&headers)
    }

    #[test]
    fn reads_accept_ranges() {
        assert_eq!(
            accept("application/json, text/event-stream"),
            Accepts {
                json: true,
                sse: true
            }
        );
        assert_eq!(
            accept("text/event-stream;q=0.9"),
            Accepts {
                json: false,
                sse: true
            }
        );
        assert_eq!(
            accept("*/*"),
            Accepts {
                json: true,
                sse: true
            }
        );
        assert_eq!(
            accept("text/html"),
            Accepts {
                json: false,
                sse: false
            }
        );
        assert_eq!(
            accepts(&HeaderMap::new()),
            Accepts {
                json: false,
                sse: false
            }
        );
    }
}
