//! An OTLP/HTTP collector stand-in: accepts `POST /v1/traces` (protobuf
//! `ExportTraceServiceRequest`) on `127.0.0.1:0` and records every span for assertions.
//!
//! ```no_run
//! # async fn example() {
//! use shoal_testkit::otlp::OtlpReceiver;
//!
//! let receiver = OtlpReceiver::start().await;
//! // ... start `shoal serve --otlp-endpoint <receiver.endpoint()>` and drive it ...
//! let spans = receiver.spans();
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

use crate::server::{TestServer, spawn_router};

/// One exported span, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The trace id, as 32 lowercase hex digits.
    pub trace_id: String,
    /// The span id, as 16 lowercase hex digits.
    pub span_id: String,
    /// The parent span id (empty for a root span).
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// The status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// The status description (set with an error status).
    pub status_message: String,
    /// The resource's attributes (`service.name`, `shoal.node`…), as text.
    pub resource: BTreeMap<String, String>,
    /// The span's attributes, as text.
    pub attributes: BTreeMap<String, String>,
    /// The trace ids of the span's links.
    pub link_trace_ids: Vec<String>,
    /// Attributes of the span's events, as text (one map per event).
    pub event_attributes: Vec<BTreeMap<String, String>>,
}

/// The receiver; stopped on drop.
pub struct OtlpReceiver {
    server: TestServer,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl OtlpReceiver {
    /// Starts the receiver on a loopback port.
    pub async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("/v1/traces", post(export))
            .with_state(spans.clone());
        OtlpReceiver {
            server: spawn_router(router).await,
            spans,
        }
    }

    /// The base URL to export to (`OTEL_EXPORTER_OTLP_ENDPOINT` / `--otlp-endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits (at most `timeout`) until `done` holds for the spans received; returns them, or
    /// panics with what it has.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("no {what} within {timeout:?}; spans received: {spans:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn export(
    State(spans): State<Arc<Mutex<Vec<ReceivedSpan>>>>,
    body: Bytes,
) -> axum::response::Response {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    status_code: span.status.as_ref().map_or(0, |s| s.code),
                    status_message: span.status.map(|s| s.message).unwrap_or_default(),
                    resource: resource.clone(),
                    attributes: attributes(&span.attributes),
                    link_trace_ids: span.links.iter().map(|l| hex(&l.trace_id)).collect(),
                    event_attributes: span
                        .events
                        .iter()
                        .map(|e| attributes(&e.attributes))
                        .collect(),
                });
            }
        }
    }
    spans.lock().unwrap().extend(received);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
