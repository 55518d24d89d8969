//! The span of every HTTP request, with W3C trace context taken from its headers.
//!
//! [`trace_http`] is a middleware, put on the whole router like
//! [`track_http`](crate::metrics::track_http) so that it sees the route template. The span is
//! named `<method> <route>` (OpenTelemetry's HTTP server convention) and carries
//! `http.request.method`, `http.route`, `network.protocol.version` and
//! `http.response.status_code`. When the binary installed
//! a [`Propagator`](shoal_core::engine::trace::Propagator), the span's parent is the context of
//! the `traceparent` / `tracestate` headers. Like the metrics, it ends when the response headers
//! are ready (an SSE stream outlives it; the MCP operation has its own span, whose parent is the
//! context of the message's `params._meta` when it has one, linked to this span).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::Version;
use tracing::Instrument;

use crate::metrics::method_label;

/// Middleware: runs the request in an `http.request` span.
pub async fn trace_http(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let span = tracing::info_span!(
        "http.request",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = tracing::field::Empty,
        network.protocol.version = protocol_version(request.version()),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    // Nothing listens (no trace export, logs at `info`): skip the per-request formatting.
    if !span.is_disabled() {
        match request.extensions().get::<MatchedPath>() {
            Some(route) => {
                span.record("otel.name", format!("{method} {}", route.as_str()));
                span.record("http.route", route.as_str());
            }
            None => {
                span.record("otel.name", method);
            }
        }
        if let Some(propagator) = shoal_core::engine::trace::propagator() {
            let headers = request.headers();
            propagator.set_parent(&span, &|name| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            });
        }
    }
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("error.type", status.as_str());
        span.record("otel.status_code", "error");
    }
    response
}

/// `network.protocol.version`: the HTTP version as OpenTelemetry writes it (`1.1`, `2`).
fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_versions_are_written_as_opentelemetry_does() {
        assert_eq!(protocol_version(Version::HTTP_11), "1.1");
        assert_eq!(protocol_version(Version::HTTP_2), "2");
    }
}
