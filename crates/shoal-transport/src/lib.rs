//! Streamable HTTP for the Shoal engine, as an axum [`Router`].
//!
//! One endpoint (default `/mcp`) takes POST (one JSON-RPC message), GET (the standalone stream,
//! or a resumption with `Last-Event-ID`) and DELETE (end the session). This crate knows HTTP and
//! the engine's API, nothing of where sessions are stored.
//!
//! # Layout
//!
//! - [`auth`]: the auth port: the [`Authenticator`](auth::Authenticator) trait, its layer,
//!   challenges, and the per-tool [`ToolScopeCheck`].
//! - [`config`]: endpoint, allow-lists, limits, SSE timings.
//! - `guard`: Origin/Host validation (DNS-rebinding protection) for every request, also as
//!   [`HostGuardLayer`] to run it in front of authentication.
//! - `headers`: reading `Accept`, `Content-Type`, `Mcp-Session-Id`, `MCP-Protocol-Version`.
//! - `limits`: in-flight requests and streams per session, the rate limit per principal.
//! - `rejection`: every refusal, with its status code and JSON-RPC error body.
//! - `post`, `get`, `delete`: the three methods.
//! - `sse`: serving a stream log as Server-Sent Events, with priming, keep-alive and drain (the
//!   frames themselves are `shoal_wire`'s).
//! - [`metrics`]: the HTTP request middleware ([`metrics::track_http`]), open SSE streams and
//!   replayed events.
//! - [`trace`]: the HTTP request span ([`trace::trace_http`]), parented on the request's W3C
//!   `traceparent`.
//!
//! # Auth seam
//!
//! An [`AuthLayer`](auth::AuthLayer) in front of this router runs an
//! [`Authenticator`](auth::Authenticator) and inserts the
//! [`Principal`](shoal_core::session::Principal) into the request extensions; the transport
//! binds it to the session at initialize and requires the same principal afterwards. Per-tool
//! authorization plugs in as [`TransportConfig::tool_scopes`], checked at `tools/call`. Put a
//! [`HostGuardLayer`] outside the auth layer, so that DNS-rebinding refusals come first.
//!
//! # Example
//!
//! The endpoint for an engine, as a router to serve or to merge into an axum app:
//!
//! ```
//! use std::sync::Arc;
//! use shoal_core::engine::{Engine, EngineConfig};
//! use shoal_core::handler::Handlers;
//! use shoal_core::host::{MemoryHost, MemoryHostConfig};
//! use shoal_core::ids::NodeId;
//! use shoal_transport::TransportConfig;
//! use tokio_util::sync::CancellationToken;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let host = Arc::new(MemoryHost::new(NodeId::new("node-1"), MemoryHostConfig::default()));
//! let engine = Engine::new(host, Handlers::new(), EngineConfig::default());
//! // Cancelling `drain` ends the open SSE streams with `retry` (clients resume elsewhere).
//! let drain = CancellationToken::new();
//! let mcp: axum::Router = shoal_transport::router(engine, TransportConfig::default(), drain);
//! # let _ = mcp;
//! # });
//! ```

#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
mod delete;
mod get;
mod guard;
mod headers;
mod limits;
pub mod metrics;
mod modern;
mod post;
mod rejection;
mod session;
mod sse;
pub mod trace;

use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use shoal_core::engine::Engine;
use tokio_util::sync::CancellationToken;

pub use auth::{Challenge, ToolScopeCheck};
pub use config::{InvalidRateLimit, RateLimit, TransportConfig};
pub use guard::{HostGuard, HostGuardLayer};
pub use rejection::{Limit, LimitExceeded, Rejection};

/// What every handler of the endpoint shares. axum clones the state for every request, so it
/// is one `Arc`: a clone is one count, where the fields' own clones were four (one of them
/// the drain token's lock).
#[derive(Clone)]
pub(crate) struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The fields behind [`AppState`].
pub(crate) struct SharedState {
    pub(crate) engine: Engine,
    pub(crate) config: Arc<TransportConfig>,
    /// Cancelled when the server drains: open streams close with `retry` so that clients
    /// reconnect to another replica.
    pub(crate) drain: CancellationToken,
    /// The per-replica count and rate limits.
    pub(crate) limits: Arc<limits::Limits>,
}

/// The MCP endpoint as a router. `drain` closes every open SSE stream when cancelled.
pub fn router(engine: Engine, config: TransportConfig, drain: CancellationToken) -> Router {
    let path = config.path.clone();
    let state = AppState(Arc::new(SharedState {
        engine,
        limits: Arc::new(limits::Limits::new(&config)),
        config: Arc::new(config),
        drain,
    }));
    Router::new().route(&path, any(dispatch)).with_state(state)
}

/// Refuses a request whose principal an operator refused (on any replica): 401, so that the
/// client authenticates again.
async fn check_not_refused(
    state: &AppState,
    principal: &shoal_core::session::Principal,
) -> Result<(), Rejection> {
    match state.engine.admin().refuses(principal).await {
        Ok(false) => Ok(()),
        Ok(true) => Err(Rejection::Auth(
            auth::Challenger::default().invalid_token("access revoked by an operator"),
        )),
        Err(error) => {
            tracing::warn!(%error, "cannot check whether the principal is refused");
            Err(Rejection::Unavailable)
        }
    }
}

async fn dispatch(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let result = async {
        // Headers first: nothing else of an oversized request is looked at.
        limits::check_header_size(request.headers(), state.config.max_header_bytes)?;
        guard::check(&state.config, request.headers())?;
        let principal = request.extensions().get::<shoal_core::session::Principal>();
        state.limits.rate(principal)?;
        if let Some(principal) = principal {
            check_not_refused(&state, principal).await?;
        }
        match *request.method() {
            http::Method::POST => post::handle(&state, request).await,
            http::Method::GET => get::handle(&state, request).await,
            http::Method::DELETE => delete::handle(&state, request).await,
            _ => Err(Rejection::MethodNotAllowed),
        }
    }
    .await;
    result.unwrap_or_else(|rejection| {
        if let Some(limit) = rejection.limit_label() {
            metrics::limit_rejected(limit);
        }
        rejection.into_response()
    })
}
