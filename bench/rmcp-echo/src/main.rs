//! `bench-rmcp-echo`: the official Rust MCP SDK's anchor of `cargo xtask bench`.
//!
//! One `echo {text}` tool served by `rmcp`'s `StreamableHttpService` in its default, stateful
//! mode (its `LocalSessionManager` mints an `Mcp-Session-Id` on `initialize`), mounted in axum
//! at `/mcp`. It gets what Shoal's binary gets and nothing more: TCP_NODELAY on accepted
//! sockets (without it each reply stalls ~44 ms on delayed ACKs) and mimalloc.
//!
//! ```text
//! cargo run --release -p bench-rmcp-echo -- --listen 127.0.0.1:8002
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use clap::Parser;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use tokio::net::TcpListener;

// The allocator Shoal's binary uses, so that the comparison is between servers, not mallocs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An MCP echo server on the official Rust SDK (benchmark anchor).
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8002")]
    listen: SocketAddr,
}

/// The arguments of `echo`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArguments {
    /// What to send back.
    text: String,
}

/// The server: one tool.
#[derive(Debug, Clone)]
struct Echo {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Echo {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Returns its text.")]
    fn echo(&self, Parameters(EchoArguments { text }): Parameters<EchoArguments>) -> String {
        text
    }
}

// The router built once per session, not (as `#[tool_handler]` does by default) per call.
#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {}

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
        "bench-rmcp-echo listening on http://{}/mcp",
        listener.local_addr()?
    );
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let service = StreamableHttpService::new(
        || Ok(Echo::new()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = Router::new().nest_service("/mcp", service);
    axum::serve(listener, app).await?;
    Ok(())
}
