//! Test-only helpers for Shoal: serve a router on a loopback port and talk MCP to it over real
//! HTTP.
//!
//! # Layout
//!
//! - [`spawn_router`] / [`TestServer`]: an axum router on `127.0.0.1:0`, stopped on drop.
//! - [`McpClient`]: an MCP client of one endpoint: `initialize`, requests with JSON or SSE
//!   replies, notifications, answers to server→client requests, raw requests for refusal
//!   tests, `GET` streams read one event at a time, `DELETE`.
//! - [`modern`]: requests of the stateless era (2026-07-28) from an [`McpClient`]: `_meta`,
//!   `Mcp-*` headers, `subscriptions/listen` streams.
//! - [`SseStream`]: an open SSE response read one event at a time; [`RawResponse`]: any
//!   other response, read to its end, with [`RawResponse::assert_rpc_error`] for refusals.
//! - [`sse`]: the incremental Server-Sent Events parser behind [`SseStream`] (`shoal_wire`'s).
//! - [`proxy::RoundRobinProxy`]: a reverse proxy that sends every request to the next ready
//!   backend, logging where each landed (also the `rr-proxy` binary, for `cargo xtask`).
//! - [`redis_cluster::RedisCluster`]: a throwaway three-master Redis Cluster (optionally one
//!   replica per master, with failovers).
//! - [`tcp_fault::TcpFaultProxy`]: a TCP forwarder in front of Redis with run-time faults
//!   (latency, stalls, dropped or refused connections).
//! - [`otlp::OtlpReceiver`]: an OTLP/HTTP trace receiver that records the spans it gets.
//! - [`tls::PrivateCa`] / [`tls::TlsTerminator`]: a throwaway CA; `https://` before a server.
//! - [`cluster::ShoalCluster`]: `shoal serve` replicas on one [`redis::RedisServer`] behind
//!   that proxy, to kill, stop and restart one by one.
//! - [`oidc::OidcProvider`]: a real OpenID provider (`oidc-provider` under Node): JWT access
//!   tokens by client credentials, key rotation, and users logging in for the authorization-code
//!   flow of [`oidc::LoginClient`]s.
//! - [`browser::HeadlessUser`]: a browser without a person, walking an authorization flow
//!   (redirects, cookies, login and consent forms) to the client's redirect URI.
//! - [`example::Example`]: an example binary on the facade, configured by `SHOAL_*` variables.
//! - [`cli::main`]: the `main` shell of the `rr-proxy` binary and of `shoal-faults` (the
//!   fault-injection suite, its own crate on these helpers).
//!
//! Every helper is bounded in time and panics with a message that says what it waited for:
//! a failing test fails in seconds, never hangs.
//!
//! # Example
//!
//! ```no_run
//! # async fn example(router: axum::Router) {
//! use serde_json::json;
//! use shoal_testkit::{McpClient, spawn_router};
//!
//! let server = spawn_router(router).await;
//! let client = McpClient::connect(server.mcp_url()).await;
//! let result = client.call_tool("echo", json!({ "text": "hi" })).await;
//! assert_eq!(result["content"][0]["text"], "hi");
//! # }
//! ```

#![forbid(unsafe_code)]
// Test-only code: its helpers panic on purpose, with a message, when the server misbehaves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod example;
pub mod modern;
pub mod node;
pub mod oidc;
pub mod otlp;
pub mod proxy;
pub mod redis;
pub mod redis_cluster;
mod response;
mod server;
pub mod sse;
mod stream;
pub mod tcp_fault;
pub mod tls;

#[doc(inline)]
pub use client::{Exchange, McpClient, Reply};
pub use response::RawResponse;
pub use server::{TestServer, spawn_router};
#[doc(inline)]
pub use sse::{SseEvent, SseItem, SseParser};
pub use stream::SseStream;
