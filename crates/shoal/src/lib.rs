//! Shoal as a library: a horizontally scalable MCP server you assemble in a few lines.
//!
//! ```no_run
//! use shoal::handler::{Handlers, ToolSet, typed_tool, RequestContext, ToolError};
//! # #[derive(serde::Deserialize, schemars::JsonSchema)] struct Args { text: String }
//! # async fn echo(_: RequestContext, args: Args) -> Result<String, ToolError> { Ok(args.text) }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), shoal::Error> {
//!     let tools = ToolSet::new().with(typed_tool("echo", "Echoes its text", echo));
//!     // Settings from SHOAL_* variables and the file SHOAL_CONFIG names; serves until SIGTERM.
//!     shoal::run_with(Handlers::new().tools(tools)).await
//! }
//! ```
//!
//! # Layout
//!
//! - [`settings`]: every knob, layered (defaults < TOML file < `SHOAL_*` variables < flags)
//!   and checked all at once, each naming its flag, variable and key.
//! - [`Builder`] → [`Shoal`] (`server`): connects the host (memory, Redis, or yours), starts
//!   authentication (static tokens, JWT, or your [`Authenticator`]), and assembles the MCP
//!   router in its one layer order (tracing, metrics, Host/Origin guard, authentication,
//!   transport), the admin router, the engine and the [`Drain`].
//! - `listener`: hyper connections with the header limit, idle and write timeouts.
//! - `admin`: `/healthz`, `/readyz`, `/metrics`.
//! - [`operator`]: the operator API on the admin listener (end sessions, refuse principals on
//!   every replica), behind `SHOAL_ADMIN_TOKEN`.
//!
//! Everything a tool author needs is re-exported: the handler API ([`handler`], [`model`]),
//! the [`Principal`], the auth port ([`auth`]) and the `testing` client of the engine (feature
//! `testing`).

#![forbid(unsafe_code)]

mod admin;
mod error;
mod listener;
pub mod operator;
mod server;
pub mod settings;

pub use error::Error;
pub use server::{Builder, Drain, Shoal, shutdown_signal};
pub use settings::Settings;

pub use shoal_core::handler;
pub use shoal_core::model;
pub use shoal_core::session::Principal;
#[cfg(feature = "testing")]
pub use shoal_core::testing;
pub use shoal_core::{engine, host, ids};
pub use shoal_transport::auth;
pub use shoal_transport::auth::Authenticator;

/// Serves `handlers` with the settings of the process's `SHOAL_*` variables and the file
/// `SHOAL_CONFIG` names, until SIGTERM or Ctrl-C, then drains. Logs go to stderr (filter in
/// `SHOAL_LOG`, default `info`) unless the program installed its own subscriber.
///
/// # Errors
///
/// Every wrong setting together, or what stopped the server.
pub async fn run_with(handlers: handler::Handlers) -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::try_from_env(settings::ENV_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Fails only when a subscriber is installed already: the program's own, kept.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    run(Settings::from_env()?, handlers).await
}

/// Serves `handlers` with `settings` until SIGTERM or Ctrl-C, then drains: [`run_with`] for
/// settings you resolved yourself (the `shoal` binary's, with its flags on top).
///
/// # Errors
///
/// What stopped the server.
pub async fn run(settings: Settings, handlers: handler::Handlers) -> Result<(), Error> {
    Shoal::builder()
        .settings(settings)
        .handlers(handlers)
        .build()
        .await?
        .serve()
        .await
}
