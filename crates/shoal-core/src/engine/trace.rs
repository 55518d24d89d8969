//! Tracing of MCP operations, and the seam through which the binary carries W3C trace context.
//!
//! Libraries use only `tracing`: spans are created here and in the transport; what turns them
//! into OpenTelemetry spans (and reads or writes a `traceparent`) is installed by the binary as a
//! [`Propagator`]. Without one, spans are plain `tracing` spans and nothing crosses replicas.
//!
//! # The operation span
//!
//! Every request gets one `mcp.operation` span of kind server, after OpenTelemetry's MCP
//! conventions: named `{mcp.method.name}`, or `{mcp.method.name} {target}` where the target is a
//! tool or prompt that a provider of this server knows (so span names come from bounded sets; a
//! method outside the spec's list is `_OTHER`, in the name and in `mcp.method.name`). It carries
//! `jsonrpc.request.id`, `mcp.protocol.version` (the session's negotiated revision),
//! `mcp.session.id` (a hash, see [`session_hash`]), `network.transport` and
//! `network.protocol.name` (Streamable HTTP, the engine's only transport), the tool or prompt
//! name the client asked for, `gen_ai.operation.name` = `execute_tool` for `tools/call`, and on
//! failure `error.type`, the JSON-RPC code as `rpc.response.status_code` and the error's message
//! as the span status.
//!
//! # Parent
//!
//! A request whose `params._meta` carries a `traceparent` (and `tracestate`), as the MCP
//! conventions have clients send it, is a child of that context, and links to the HTTP
//! request's span, which stays the child of the HTTP headers' context: one MCP request may
//! travel over several HTTP requests (retries, resumption) and one HTTP request may carry
//! several, so the `_meta` context is the one that names the client's operation. Without
//! `_meta` context, the span is a child of the HTTP request's span, as every span of a request.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use serde_json::Value;
use tracing::Span;

use crate::ids::SessionId;
use crate::jsonrpc::Request;

/// Reads and writes W3C trace context on spans (implemented with OpenTelemetry by the binary).
pub trait Propagator: Send + Sync + 'static {
    /// Makes `span` a child of the remote context that `get` finds (`traceparent`,
    /// `tracestate`). Call it right after creating the span.
    fn set_parent(&self, span: &Span, get: &dyn Fn(&str) -> Option<String>);
    /// The `traceparent` of `span`, if it is sampled and exported.
    fn traceparent(&self, span: &Span) -> Option<String>;
    /// Links `span` to the span a `traceparent` names (one on another replica).
    fn add_link(&self, span: &Span, traceparent: &str);
    /// Renames `span`, also once it has been entered: the OpenTelemetry layer applies an
    /// `otel.name` recorded after that to logs only.
    fn set_name(&self, _span: &Span, _name: String) {}
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

/// The span of one MCP operation, named `method` (the bounded `mcp_method_name` label: the
/// spec's method or `_OTHER`). A parent in the request's `params._meta` takes precedence over the
/// current span, which it links to instead (see the module docs).
pub(crate) fn operation_span(method: &'static str, request: &Request, node: &str) -> Span {
    let span = tracing::info_span!(
        "mcp.operation",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        mcp.method.name = method,
        jsonrpc.request.id = tracing::field::display(&request.id),
        mcp.protocol.version = tracing::field::Empty,
        mcp.session.id = tracing::field::Empty,
        gen_ai.operation.name = tracing::field::Empty,
        gen_ai.tool.name = tracing::field::Empty,
        gen_ai.prompt.name = tracing::field::Empty,
        rpc.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        network.transport = "tcp",
        network.protocol.name = "http",
        shoal.node = node,
    );
    // Nothing listens (no trace export, logs at `info`): nothing more to look up.
    if span.is_disabled() {
        return span;
    }
    let params = request.params.as_ref();
    let name = || params?.get("name")?.as_str();
    match method {
        "tools/call" => {
            span.record("gen_ai.operation.name", "execute_tool");
            if let Some(tool) = name() {
                span.record("gen_ai.tool.name", tool);
            }
        }
        "prompts/get" => {
            if let Some(prompt) = name() {
                span.record("gen_ai.prompt.name", prompt);
            }
        }
        _ => {}
    }
    if let Some(propagator) = propagator()
        && let Some(meta) = params.and_then(|p| p.get("_meta"))
        && meta.get("traceparent").is_some_and(Value::is_string)
    {
        // The HTTP request's span, current when the operation starts, becomes a link.
        let transport = propagator.traceparent(&Span::current());
        propagator.set_parent(&span, &|field| {
            meta.get(field).and_then(Value::as_str).map(str::to_owned)
        });
        if let Some(transport) = transport {
            propagator.add_link(&span, &transport);
        }
    }
    span
}

/// Records the session of an operation: `mcp.session.id` (its hash) and its negotiated
/// `mcp.protocol.version`.
pub(crate) fn record_session(span: &Span, session: Option<&SessionId>, protocol_version: &str) {
    if !span.is_disabled() {
        if let Some(session) = session {
            span.record("mcp.session.id", session_hash(session).as_str());
        }
        span.record("mcp.protocol.version", protocol_version);
    }
}

/// Names the span after the tool or prompt a provider ran (`tools/call echo`): only names the
/// server knows become part of a span name. Known only once the provider answered, so the span
/// is renamed through the [`Propagator`].
pub(crate) fn record_target(span: &Span, method: &str, target: &str) {
    if span.is_disabled() {
        return;
    }
    let name = format!("{method} {target}");
    span.record("otel.name", name.as_str());
    if let Some(propagator) = propagator() {
        propagator.set_name(span, name);
    }
}

/// How an operation failed, for its span.
#[derive(Clone, Copy)]
pub(crate) enum Failure<'a> {
    /// Answered with a JSON-RPC error: its code (as text) and its message (formatted only
    /// when the span is exported).
    Rpc {
        code: &'a str,
        message: &'a dyn fmt::Display,
    },
    /// Succeeded at the JSON-RPC level, failed within the result (`error_type`, such as
    /// `tool_error`).
    InResult { error_type: &'a str },
}

/// Records a failure: `error.type`, and the span's status error; for a JSON-RPC error also
/// `rpc.response.status_code` and the message as the status description.
pub(crate) fn record_failure(span: &Span, failure: Failure<'_>) {
    if span.is_disabled() {
        return;
    }
    // The status code first: recording it again would clear the description.
    span.record("otel.status_code", "error");
    match failure {
        Failure::Rpc { code, message } => {
            span.record("error.type", code);
            span.record("rpc.response.status_code", code);
            span.record("otel.status_description", tracing::field::display(message));
        }
        Failure::InResult { error_type } => {
            span.record("error.type", error_type);
        }
    }
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
