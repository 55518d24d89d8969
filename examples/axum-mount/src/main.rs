//! Shoal inside an existing axum app: the app keeps its own routes (`GET /`), its own
//! middleware (a response header on everything it serves, MCP included), its own listener and
//! its own shutdown; Shoal adds the MCP endpoint at `/mcp` and drains when the app stops.
//!
//! [`Shoal::router`] carries the endpoint at the builder's path (default `/mcp`) and any
//! well-known routes at the root, so the app merges it rather than nesting it. The app serves
//! it with `into_make_service_with_connect_info`, so that authenticators see the peer address
//! as they do under [`Shoal::serve`]. The drain is wired to the app's shutdown:
//! [`Drain::start`](shoal::Drain::start) (not ready), the shutdown delay,
//! [`Drain::close_streams`](shoal::Drain::close_streams) (SSE clients resume elsewhere), then
//! [`Drain::wait_idle`](shoal::Drain::wait_idle) for handlers still writing.
//!
//! Settings come from the `SHOAL_*` variables as for `shoal serve`: the app listens on
//! `SHOAL_LISTEN`, the admin routes (`/healthz`, `/readyz`, `/metrics`) on
//! `SHOAL_ADMIN_LISTEN`. Run it with `cargo run -p example-axum-mount`, then
//! `curl http://127.0.0.1:8080/` and point an MCP client at `http://127.0.0.1:8080/mcp`.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use schemars::JsonSchema;
use serde::Deserialize;
use shoal::handler::{Handlers, RequestContext, ToolError, ToolSet, typed_tool};
use shoal::{Drain, Settings, Shoal};
use tokio::net::TcpListener;

/// The header the app's middleware puts on every response.
const SERVED_BY: &str = "x-served-by";

/// Whom to greet.
#[derive(Deserialize, JsonSchema)]
struct Greet {
    /// A name.
    name: String,
}

fn tools() -> ToolSet {
    ToolSet::new().with(typed_tool(
        "greet",
        "Greets someone, from the app's MCP endpoint",
        |_ctx: RequestContext, Greet { name }| async move {
            Ok::<_, ToolError>(format!("hello, {name}, from the app"))
        },
    ))
}

/// The app's own page.
async fn index() -> &'static str {
    "the app's own page; MCP is at /mcp\n"
}

/// The app's own middleware: it wraps Shoal's routes as well as the app's.
async fn served_by(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(SERVED_BY, HeaderValue::from_static("example-axum-mount"));
    response
}

/// The app: its routes, Shoal's router merged in, its middleware over both.
fn app(shoal: &Shoal) -> Router {
    Router::new()
        .route("/", get(index))
        .merge(shoal.router())
        .layer(middleware::from_fn(served_by))
}

/// Waits for `signal`, then drains Shoal as [`Shoal::serve`] would: not ready, the shutdown
/// delay, streams closed. The app's server then stops accepting and finishes its connections.
async fn shutdown(signal: impl Future<Output = ()>, drain: Drain, settings: Settings) {
    signal.await;
    drain.start();
    tokio::time::sleep(settings.shutdown.delay).await;
    drain.close_streams();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let settings = Settings::from_env()?;
    let shoal = Shoal::builder()
        .settings(settings.clone())
        .handlers(Handlers::new().tools(tools()))
        .build()
        .await?;
    let listener = TcpListener::bind(settings.listen).await?;
    let admin = TcpListener::bind(settings.admin_listen).await?;
    let admin_server = tokio::spawn(axum::serve(admin, shoal.admin_router()).into_future());
    tracing::info!(addr = %listener.local_addr()?, "the app is serving, MCP at /mcp");

    let drain = shoal.drain();
    axum::serve(
        listener,
        app(&shoal).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown(
        shoal::shutdown_signal(),
        drain.clone(),
        settings.clone(),
    ))
    .await?;
    if !drain.wait_idle(settings.shutdown.drain_timeout).await {
        tracing::warn!("drain timed out; in-flight requests were cut");
    }
    admin_server.abort();
    tracing::info!("stopped");
    Ok(())
}
