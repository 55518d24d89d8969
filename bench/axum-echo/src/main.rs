//! `bench-axum-echo`: the loopback ceiling of `cargo xtask bench`.
//!
//! The least an MCP server can do over Streamable HTTP and still be driven by `shoal-load`:
//! parse one JSON-RPC message per `POST /mcp` and answer it, with no session, no validation
//! beyond the JSON, no streams. `GET /mcp` opens an SSE stream that stays idle forever: the
//! bare baseline for the memory one idle stream costs. Like Shoal's binary it sets
//! TCP_NODELAY on accepted sockets and uses mimalloc.
//!
//! ```text
//! cargo run --release -p bench-axum-echo -- --listen 127.0.0.1:8001
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use clap::Parser;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;

// The allocator Shoal's binary uses, so that the comparison is between servers, not mallocs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The protocol revision answered when `initialize` names none.
const DEFAULT_PROTOCOL_VERSION: &str = "2025-11-25";

/// A minimal stateless MCP echo server (benchmark anchor).
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8001")]
    listen: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(args.listen))
}

async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "bench-axum-echo listening on http://{}/mcp",
        listener.local_addr()?
    );
    // Small replies written in more than one frame stall on delayed ACKs without it.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new().route("/mcp", post(message).get(idle_stream));
    axum::serve(listener, app).await?;
    Ok(())
}

/// `POST /mcp`: one JSON-RPC message.
async fn message(body: Bytes) -> Response {
    let message: Value = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            let error = rpc_error(&Value::Null, -32700, &format!("parse error: {error}"));
            return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
        }
    };
    let (Some(method), Some(id)) = (
        message.get("method").and_then(Value::as_str),
        message.get("id"),
    ) else {
        // A notification or a response to a server request: accepted, nothing to say.
        return StatusCode::ACCEPTED.into_response();
    };
    let params = message.get("params").unwrap_or(&Value::Null);
    let reply = match method {
        "initialize" => {
            let version = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_PROTOCOL_VERSION);
            rpc_result(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": { "tools": {} },
                    "serverInfo": { "name": "bench-axum-echo", "version": env!("CARGO_PKG_VERSION") },
                }),
            )
        }
        "tools/call" => {
            let text = params
                .pointer("/arguments/text")
                .cloned()
                .unwrap_or(Value::String(String::new()));
            rpc_result(id, json!({ "content": [{ "type": "text", "text": text }] }))
        }
        "tools/list" => rpc_result(
            id,
            json!({ "tools": [{
                "name": "echo",
                "description": "Returns its text.",
                "inputSchema": {
                    "type": "object",
                    "properties": { "text": { "type": "string" } },
                    "required": ["text"],
                },
            }] }),
        ),
        "ping" => rpc_result(id, json!({})),
        _ => rpc_error(id, -32601, &format!("method not found: {method}")),
    };
    axum::Json(reply).into_response()
}

/// `GET /mcp`: an SSE stream that stays open and idle. One comment flushes the headers.
async fn idle_stream() -> Response {
    let opening = stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b": open\n\n")) });
    let body = Body::from_stream(opening.chain(stream::pending()));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}
