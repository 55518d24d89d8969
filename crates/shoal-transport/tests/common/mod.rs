//! The fixture every transport test shares: an engine over the in-memory host with a small
//! tool set, served by `shoal_transport::router` on a loopback port behind a stand-in auth
//! layer.
//!
//! Tools:
//! - `echo {text}`: answers `text` (a plain JSON reply).
//! - `steps {count, delay_ms}`: sends `count` progress notifications (`progress` 1..=count),
//!   sleeping `delay_ms` after each, then answers `done <count>` (an SSE reply when the call
//!   carries a `progressToken`).
//! - `hang {}`: sends one progress notification, then sleeps for a minute; reports `dropped`
//!   on the probe when its future is dropped and `finished` if it ever completes.
//! - `cooperative {}`: sends one progress notification, waits for its cancellation token,
//!   reports `saw cancellation` on the probe and returns `stopped early`.
//! - `confirm {question}`: elicits `{ok: boolean}` from the user and answers `<action> <content>`.
//! - `whoami {}`: answers the principal's id, or `anonymous`.
//! - `pause {}`: sends progress 1, closes the client's connection (SEP-1699), sends progress 2
//!   and answers `resumed`.
//!
//! A resource `test://watched` exists so that `resources/subscribe` has something to watch.
//! Requests with an `x-test-principal: <id>` header are authenticated as `<id>`.

// Each test binary uses part of the fixture; a failed expectation is a failed test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use shoal_core::engine::{Engine, EngineConfig};
use shoal_core::handler::{Handlers, ResourceSet, ToolError, ToolSet, typed_tool};
use shoal_core::host::{MemoryHost, MemoryHostConfig};
use shoal_core::ids::NodeId;
use shoal_core::model::{ElicitRequest, Resource, ResourceContents};
use shoal_core::session::Principal;
use shoal_testkit::{McpClient, SseEvent, SseStream, TestServer, spawn_router};
use shoal_transport::TransportConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The header the stand-in auth layer reads.
pub(crate) const PRINCIPAL_HEADER: &str = "x-test-principal";
/// The resource clients subscribe to.
pub(crate) const WATCHED: &str = "test://watched";
/// How long a test waits for something that should happen.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// A running server and the handles a test needs around it.
pub(crate) struct Harness {
    pub(crate) server: TestServer,
    pub(crate) engine: Engine,
    /// Cancel it to drain the server.
    pub(crate) drain: CancellationToken,
    /// What the tools report (`dropped`, `finished`, `saw cancellation`).
    pub(crate) probe: mpsc::UnboundedReceiver<String>,
}

impl Harness {
    /// A server with the default transport settings.
    pub(crate) async fn start() -> Self {
        Self::start_with(TransportConfig::default()).await
    }

    /// A server with `config` (its `path` must stay `/mcp`).
    pub(crate) async fn start_with(config: TransportConfig) -> Self {
        Self::start_with_host(config, MemoryHostConfig::default()).await
    }

    /// A server with `config` over an in-memory host with `host_config`.
    pub(crate) async fn start_with_host(
        config: TransportConfig,
        host_config: MemoryHostConfig,
    ) -> Self {
        let (report, probe) = mpsc::unbounded_channel();
        let host = Arc::new(MemoryHost::new(
            NodeId::with_random_suffix("test"),
            host_config,
        ));
        let engine = Engine::new(host, handlers(report), EngineConfig::default());
        let drain = CancellationToken::new();
        let router = shoal_transport::router(engine.clone(), config, drain.clone())
            .layer(axum::middleware::from_fn(stand_in_auth));
        Harness {
            server: spawn_router(router).await,
            engine,
            drain,
            probe,
        }
    }

    /// The endpoint URL.
    pub(crate) fn url(&self) -> String {
        self.server.mcp_url()
    }

    /// A client without a session.
    pub(crate) fn client(&self) -> McpClient {
        McpClient::new(self.url())
    }

    /// A client with an initialized session.
    pub(crate) async fn connect(&self) -> McpClient {
        McpClient::connect(self.url()).await
    }

    /// A client of `principal` with an initialized session.
    pub(crate) async fn connect_as(&self, principal: &str) -> McpClient {
        let mut client = McpClient::new(self.url()).with_header(PRINCIPAL_HEADER, principal);
        client.initialize().await;
        client.notify_initialized().await;
        client
    }

    /// The next report of a tool.
    pub(crate) async fn next_report(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.probe.recv())
            .await
            .unwrap_or_else(|_| panic!("no tool report within {PATIENCE:?}"))
            .expect("the probe is open")
    }

    /// Asserts that no tool reports anything for `quiet`.
    pub(crate) async fn expect_no_report(&mut self, quiet: Duration) {
        if let Ok(report) = tokio::time::timeout(quiet, self.probe.recv()).await {
            panic!("unexpected tool report: {report:?}");
        }
    }
}

/// Authenticates `x-test-principal: <id>` as `<id>`, as a real auth layer would.
async fn stand_in_auth(mut request: Request, next: Next) -> Response {
    let principal = request
        .headers()
        .get(PRINCIPAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(Principal::new);
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}

#[derive(Deserialize, JsonSchema)]
struct EchoArgs {
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct StepsArgs {
    count: u32,
    delay_ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

#[derive(Deserialize, JsonSchema)]
struct ConfirmArgs {
    question: String,
}

/// Reports `dropped` when the tool's future is dropped before it finished.
struct DropReport {
    report: mpsc::UnboundedSender<String>,
    armed: bool,
}

impl Drop for DropReport {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.report.send("dropped".into());
        }
    }
}

fn handlers(report: mpsc::UnboundedSender<String>) -> Handlers {
    let hang_report = report.clone();
    let cooperative_report = report;
    let tools = ToolSet::new()
        .with(typed_tool(
            "echo",
            "Echoes text",
            |_ctx, EchoArgs { text }| async move { Ok::<_, ToolError>(text) },
        ))
        .with(typed_tool(
            "steps",
            "Reports progress count times, then answers",
            |ctx, StepsArgs { count, delay_ms }| async move {
                for step in 1..=count {
                    ctx.progress(
                        f64::from(step),
                        Some(f64::from(count)),
                        Some(&format!("step {step}")),
                    )
                    .await
                    .map_err(|e| ToolError::Internal(e.to_string()))?;
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                Ok::<_, ToolError>(format!("done {count}"))
            },
        ))
        .with(typed_tool(
            "hang",
            "Never answers",
            move |ctx, NoArgs {}| {
                let report = hang_report.clone();
                async move {
                    let mut guard = DropReport {
                        report: report.clone(),
                        armed: true,
                    };
                    ctx.progress(1.0, None, Some("started"))
                        .await
                        .map_err(|e| ToolError::Internal(e.to_string()))?;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    guard.armed = false;
                    let _ = report.send("finished".into());
                    Ok::<_, ToolError>("finished".to_owned())
                }
            },
        ))
        .with(typed_tool(
            "cooperative",
            "Stops as soon as it is cancelled",
            move |ctx, NoArgs {}| {
                let report = cooperative_report.clone();
                async move {
                    ctx.progress(1.0, None, Some("started"))
                        .await
                        .map_err(|e| ToolError::Internal(e.to_string()))?;
                    ctx.cancellation().cancelled().await;
                    let _ = report.send("saw cancellation".into());
                    Ok::<_, ToolError>("stopped early".to_owned())
                }
            },
        ))
        .with(typed_tool(
            "confirm",
            "Asks the user to confirm",
            |ctx, ConfirmArgs { question }| async move {
                let answer = ctx
                    .elicit(ElicitRequest {
                        message: question,
                        requested_schema: json!({
                            "type": "object",
                            "properties": { "ok": { "type": "boolean" } },
                            "required": ["ok"]
                        }),
                    })
                    .await
                    .map_err(|e| ToolError::failed(e.to_string()))?;
                let content = answer.content.map_or(Value::Null, Value::Object);
                Ok::<_, ToolError>(format!("{:?} {content}", answer.action))
            },
        ))
        .with(typed_tool(
            "pause",
            "Closes the stream mid-call",
            |ctx, NoArgs {}| async move {
                let fail = |e: shoal_core::handler::PeerError| ToolError::Internal(e.to_string());
                ctx.progress(1.0, None, None).await.map_err(fail)?;
                ctx.close_sse_stream().await.map_err(fail)?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                ctx.progress(2.0, None, None).await.map_err(fail)?;
                Ok::<_, ToolError>("resumed".to_owned())
            },
        ))
        .with(typed_tool(
            "whoami",
            "Names the caller",
            |ctx, NoArgs {}| async move {
                Ok::<_, ToolError>(
                    ctx.principal()
                        .map_or_else(|| "anonymous".to_owned(), |p| p.id.clone()),
                )
            },
        ));
    let resources = ResourceSet::new().fixed(
        Resource {
            uri: WATCHED.into(),
            name: "watched".into(),
            ..Resource::default()
        },
        ResourceContents::text(WATCHED, "text/plain", "v1"),
    );
    Handlers::new().tools(tools).resources(resources)
}

/// `tools/call` of `name` with a progress token: the params of a call that streams.
pub(crate) fn call_with_progress(name: &str, arguments: Value, token: &str) -> Value {
    json!({
        "name": name,
        "arguments": arguments,
        "_meta": { "progressToken": token }
    })
}

/// Starts `tools/call` of `name` with a progress token; returns the request id and the open
/// SSE reply.
pub(crate) async fn start_streaming_call(
    client: &McpClient,
    name: &str,
    arguments: Value,
) -> (i64, SseStream) {
    let id = client.next_id();
    let request = shoal_testkit::client::message(
        id,
        "tools/call",
        Some(call_with_progress(name, arguments, "progress-1")),
    );
    (id, client.post(&request).await.into_stream())
}

/// The `<stream>` and `<seq>` of an event's id.
pub(crate) fn split_id(event: &SseEvent) -> (String, u64) {
    let stream = event
        .stream()
        .expect("an event id <stream>.<seq>")
        .to_owned();
    let seq = event.seq().expect("an event id <stream>.<seq>");
    (stream, seq)
}

/// The `progress` value of a `notifications/progress` event.
pub(crate) fn progress_of(event: &SseEvent) -> Option<u64> {
    let message = event.json()?;
    if message["method"] != "notifications/progress" {
        return None;
    }
    message["params"]["progress"].as_f64().map(|p| p as u64)
}

/// Asserts that `event` is a priming event (an id, `retry`, empty data) and returns its id.
pub(crate) fn assert_priming(event: &SseEvent) -> String {
    assert!(event.is_priming(), "not a priming event: {event:?}");
    assert!(
        event.retry.is_some(),
        "a priming event carries retry: {event:?}"
    );
    event.id.clone().expect("an id")
}
