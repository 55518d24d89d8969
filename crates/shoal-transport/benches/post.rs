//! One `tools/call` POST through the whole router in process, without a socket: header
//! checks, body read, parse, session lookup (in-memory host), dispatch to an echo tool, and
//! the plain JSON reply (the fast path most tool calls take). What is left of a request's cost
//! once the network and Redis are taken out; compare with the parts in `shoal-core`'s
//! `jsonrpc` benchmarks and the host benchmarks in `shoal-redis`.
//!
//! `cargo bench -p shoal-transport --bench post` (add `-- --quick` for a short run).

// Set-up failures abort the benchmark, as in a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use shoal_core::engine::{Engine, EngineConfig};
use shoal_core::handler::{Handlers, ToolError, ToolSet, typed_tool};
use shoal_core::host::{MemoryHost, MemoryHostConfig};
use shoal_core::ids::NodeId;
use shoal_transport::TransportConfig;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

#[derive(Deserialize, JsonSchema)]
struct EchoArgs {
    text: String,
}

/// Prose with what JSON must escape (quotes, newlines, tabs) and some non-ASCII.
fn text_of(bytes: usize) -> String {
    const LINE: &str = "The \"quick\" brown fox jumps over the lazy dog\tà la café — line\n";
    LINE.repeat(bytes.div_ceil(LINE.len()))
}

fn router() -> Router {
    let host = Arc::new(MemoryHost::new(
        NodeId::new("bench"),
        MemoryHostConfig::default(),
    ));
    let tools = ToolSet::new().with(typed_tool(
        "echo",
        "Echoes text",
        |_ctx, EchoArgs { text }| async move { Ok::<_, ToolError>(text) },
    ));
    let engine = Engine::new(host, Handlers::new().tools(tools), EngineConfig::default());
    shoal_transport::router(engine, TransportConfig::default(), CancellationToken::new())
}

/// A POST of `body` as a client sends it, in session `session` when given.
fn post(body: Bytes, session: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/mcp")
        .header("host", "localhost")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.body(Body::from(body)).expect("a valid request")
}

/// Sends one request; its status and whole body.
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = response.into_body().collect().await.expect("a whole body");
    (status, body.to_bytes())
}

/// Initializes a session; its id.
async fn session(router: &Router) -> String {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}
        }
    });
    let response = router
        .clone()
        .oneshot(post(initialize.to_string().into(), None))
        .await
        .expect("infallible");
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("initialize answers with a session id")
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _) = send(router, post(initialized.to_string().into(), Some(&id))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "notifications/initialized");
    id
}

fn tools_call(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a Tokio runtime");
    let router = runtime.block_on(async { router() });
    let session = runtime.block_on(session(&router));

    let mut group = c.benchmark_group("post/tools_call_echo_json");
    for (name, text) in [("small", "hello".to_owned()), ("8KiB", text_of(8 * 1024))] {
        let body: Bytes = json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}
        })
        .to_string()
        .into();
        let (status, reply) = runtime.block_on(send(&router, post(body.clone(), Some(&session))));
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply)
        );
        group.throughput(Throughput::Bytes((body.len() + reply.len()) as u64));
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| send(&router, post(body.clone(), Some(&session))))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // Short by default so that a full run takes seconds; command-line flags override.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = tools_call
}
criterion_main!(benches);
