//! HTTP and SSE metrics, recorded through the `metrics` facade (the binary installs the
//! exporter; without one, recording is a no-op).
//!
//! [`track_http`] is a middleware: put it on the whole router with
//! `router.layer(axum::middleware::from_fn(track_http))` so that it runs after routing and
//! sees the route template ([`MatchedPath`]). It measures the time until the response
//! *headers* are ready: for an SSE response that is when the stream opens, not when it ends
//! (open streams are `shoal_sse_streams_open`).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{Method, StatusCode};
use metrics::{Label, SharedString};

/// Histogram: time to response headers, by `http_request_method`, `http_route`,
/// `http_response_status_code`.
pub const HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Gauge: SSE connections open on this replica, by `kind` (`request`, `standalone`).
pub const SSE_STREAMS_OPEN: &str = "shoal_sse_streams_open";
/// Counter: events sent on connections that resumed a stream with `Last-Event-ID`.
pub const EVENTS_REPLAYED: &str = "shoal_events_replayed_total";

/// Counter: requests refused by a limit, by `limit` (`body_bytes`, `header_bytes`,
/// `json_depth`, or a [`Limit`](crate::Limit) name such as `in_flight_per_session`).
pub const LIMIT_REJECTIONS: &str = "shoal_limit_rejections_total";
/// Counter: connections closed because a write to the client stayed blocked for the write
/// timeout (the client stopped reading), by `reason` (`write_timeout`).
pub const CONNECTIONS_CLOSED: &str = "shoal_connections_closed_total";

/// Every `limit` label of [`LIMIT_REJECTIONS`].
pub const LIMIT_LABELS: [&str; 9] = [
    "body_bytes",
    "header_bytes",
    "json_depth",
    "sse_streams_per_session",
    "in_flight_per_session",
    "sessions_per_principal",
    "rate_per_principal",
    "in_flight_per_principal",
    "listen_streams_per_principal",
];

/// The histograms of this module (for the exporter's bucket settings).
pub const HISTOGRAMS: [&str; 1] = [HTTP_REQUEST_DURATION];

/// Registers the help text of every metric of the transport with the installed recorder, and
/// creates its counters and gauges at zero (so that they are exported before their first event).
pub fn describe() {
    for kind in [
        StreamKind::Request,
        StreamKind::Standalone,
        StreamKind::Listen,
    ] {
        metrics::gauge!(SSE_STREAMS_OPEN, "kind" => kind.label()).increment(0.0);
    }
    metrics::counter!(EVENTS_REPLAYED).absolute(0);
    for limit in LIMIT_LABELS {
        metrics::counter!(LIMIT_REJECTIONS, "limit" => limit).absolute(0);
    }
    metrics::counter!(CONNECTIONS_CLOSED, "reason" => "write_timeout").absolute(0);
    metrics::describe_counter!(
        LIMIT_REJECTIONS,
        "Requests refused by a limit (body, headers, JSON depth, streams, in-flight, sessions, rate)"
    );
    metrics::describe_counter!(
        CONNECTIONS_CLOSED,
        "Connections closed by the server because a write stayed blocked for the write timeout"
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Duration of HTTP requests until the response headers (for SSE: until the stream opens)"
    );
    metrics::describe_gauge!(
        SSE_STREAMS_OPEN,
        "SSE connections open on this replica, by kind (request reply, standalone GET stream, listen stream)"
    );
    metrics::describe_counter!(
        EVENTS_REPLAYED,
        "Events sent on connections that resumed a stream with Last-Event-ID"
    );
}

/// Middleware: observes `http_server_request_duration_seconds` for every request. A request
/// that matched no route has no `http_route` label.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = tokio::time::Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| SharedString::from(String::from(path.as_str())));
    let response = next.run(request).await;
    let mut labels = Vec::with_capacity(3);
    labels.push(Label::from_static_parts("http_request_method", method));
    if let Some(route) = route {
        labels.push(Label::new("http_route", route));
    }
    labels.push(Label::new(
        "http_response_status_code",
        status_label(response.status()),
    ));
    metrics::histogram!(HTTP_REQUEST_DURATION, labels).record(started.elapsed().as_secs_f64());
    response
}

/// `http_request_method`: the standard methods, anything else `_OTHER` (as OpenTelemetry says).
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// `http_response_status_code`: a static string for the codes this server answers with.
fn status_label(status: StatusCode) -> SharedString {
    let known = match status.as_u16() {
        200 => "200",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        406 => "406",
        413 => "413",
        415 => "415",
        429 => "429",
        431 => "431",
        500 => "500",
        503 => "503",
        _ => return SharedString::from(status.as_u16().to_string()),
    };
    SharedString::const_str(known)
}

/// Which kind of stream an SSE connection serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// The reply to a POST (served at once, or resumed).
    Request,
    /// The session's standalone GET stream (opened, or resumed).
    Standalone,
    /// A `subscriptions/listen` stream (2026-07-28).
    Listen,
}

impl StreamKind {
    fn label(self) -> &'static str {
        match self {
            StreamKind::Request => "request",
            StreamKind::Standalone => "standalone",
            StreamKind::Listen => "listen",
        }
    }
}

/// Counts an SSE connection as open while it lives.
pub(crate) struct OpenStream(StreamKind);

impl OpenStream {
    pub(crate) fn open(kind: StreamKind) -> Self {
        metrics::gauge!(SSE_STREAMS_OPEN, "kind" => kind.label()).increment(1.0);
        OpenStream(kind)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(SSE_STREAMS_OPEN, "kind" => self.0.label()).decrement(1.0);
    }
}

/// Counts one request refused by the limit named `limit` (one of [`LIMIT_LABELS`]).
pub fn limit_rejected(limit: &'static str) {
    metrics::counter!(LIMIT_REJECTIONS, "limit" => limit).increment(1);
}

/// Counts one connection closed because the client stopped reading.
pub fn slow_client_closed() {
    metrics::counter!(CONNECTIONS_CLOSED, "reason" => "write_timeout").increment(1);
}

/// Counts one event sent on a resumed connection.
pub(crate) fn event_replayed() {
    metrics::counter!(EVENTS_REPLAYED).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
        assert_eq!(&*status_label(StatusCode::OK), "200");
        assert_eq!(&*status_label(StatusCode::IM_A_TEAPOT), "418");
        assert_eq!(StreamKind::Standalone.label(), "standalone");
    }
}
