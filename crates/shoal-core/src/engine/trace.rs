//! Tracing of MCP operations, and the seam through which the binary carries W3C trace context.
//!
//! Libraries use only `tracing`: spans are created here and in the transport; what turns them
//! into OpenTelemetry spans (and reads or writes a `traceparent`) is installed by the binary as a
//! [`Propagator`]. Without one, spans are plain `tracing` spans and nothing crosses replicas.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use tracing::Span;

use crate::ids::SessionId;

/// Reads and writes W3C trace context on spans (implemented with OpenTelemetry by the binary).
pub trait Propagator: Send + Sync + 'static {
    /// Makes `span` a child of the remote context that `get` finds (`traceparent`,
    /// `tracestate`). Call it right after creating the span.
    fn set_parent(&self, span: &Span, get: &dyn Fn(&str) -> Option<String>);
    /// The `traceparent` of `span`, if it is sampled and exported.
    fn traceparent(&self, span: &Span) -> Option<String>;
    /// Links `span` to the span a `traceparent` names (one on another replica).
    fn add_link(&self, span: &Span, traceparent: &str);
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Installs the propagator, once per process; false if one was installed already.
pub fn set_propagator(propagator: impl Propagator) -> bool {
    PROPAGATOR.set(Box::new(propagator)).is_ok()
}

/// The installed propagator, if any.
pub fn propagator() -> Option<&'static dyn Propagator> {
    PROPAGATOR.get().map(|p| &**p)
}

/// `mcp.session.id` for spans: a short, stable hash, so that spans of one session can be grouped
/// without the id (a bearer credential of the session) ever leaving the process.
pub fn session_hash(session: &SessionId) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    "shoal.session".hash(&mut hasher);
    session.as_str().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The span of one MCP operation. `gen_ai.tool.name` and `error.type` are recorded later.
pub(crate) fn operation_span(method: &str, session: Option<&SessionId>, node: &str) -> Span {
    let span = tracing::info_span!(
        "mcp.operation",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        mcp.method.name = method,
        gen_ai.tool.name = tracing::field::Empty,
        mcp.session.id = tracing::field::Empty,
        shoal.node = node,
        error.type = tracing::field::Empty,
    );
    if let Some(session) = session
        && !span.is_disabled()
    {
        span.record("mcp.session.id", session_hash(session).as_str());
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hash_is_short_stable_and_not_the_id() {
        let id = SessionId::random();
        let hash = session_hash(&id);
        assert_eq!(hash.len(), 16);
        assert_eq!(hash, session_hash(&id));
        assert!(!hash.contains(id.as_str()) && !id.as_str().contains(&hash));
        assert_ne!(hash, session_hash(&SessionId::random()));
    }

    #[test]
    fn client_responses_of_older_versions_still_parse() {
        let old = r#"{"ClientResponse":{"session":"abcdefghijklmnopqrstuv","id":"n.1","outcome":{"Ok":{}}}}"#;
        let event: crate::host::NodeEvent = serde_json::from_str(old).unwrap();
        assert!(matches!(
            event,
            crate::host::NodeEvent::ClientResponse {
                trace_context: None,
                ..
            }
        ));
    }
}
