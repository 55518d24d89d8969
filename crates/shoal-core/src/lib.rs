//! The Shoal protocol engine.
//!
//! # Layout
//!
//! - [`jsonrpc`]: the JSON-RPC envelope and encoders.
//! - [`codes`]: the JSON-RPC error codes, one table per protocol era.
//! - [`version`]: protocol revisions and their negotiation.
//! - [`model`]: the MCP wire types of the session-era revisions.
//! - [`ids`], [`session`]: session, stream, event and node ids; the session record.
//! - [`host`]: the [`SessionHost`](host::SessionHost) contract and the in-memory host.
//! - [`handler`]: the API tool authors write against: tools, resources, prompts, completion.
//! - [`request_state`]: the key ring that seals a multi round-trip request's `requestState`.
//! - [`engine`]: lifecycle and dispatch: turns a parsed message and a session into results,
//!   notifications and server→client requests.
//! - `testing` (feature `testing`): an engine-direct test client, `testing::EngineClient`,
//!   for a library user's own tests of their handlers, without HTTP; with it, `host::suite`,
//!   the tests every host implementation must pass.
//!
//! The engine knows neither HTTP nor Redis: `shoal-transport` drives it over Streamable HTTP,
//! and a host implementation stores what it must remember.
//!
//! # Example
//!
//! An engine over the in-memory host, serving one typed tool, answering a stateless
//! (2026-07-28) `tools/call` without HTTP:
//!
//! ```
//! use std::sync::Arc;
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::json;
//! use shoal_core::engine::{Engine, EngineConfig, ModernReply};
//! use shoal_core::era::ModernMeta;
//! use shoal_core::handler::{Handlers, ToolError, ToolSet, typed_tool};
//! use shoal_core::host::{MemoryHost, MemoryHostConfig};
//! use shoal_core::ids::NodeId;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Add { a: i64, b: i64 }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let tools = ToolSet::new().with(typed_tool("add", "Adds two integers", |_ctx, Add { a, b }| async move {
//!     Ok::<_, ToolError>(format!("{}", a + b))
//! }));
//! let host = Arc::new(MemoryHost::new(NodeId::new("node-1"), MemoryHostConfig::default()));
//! let engine = Engine::new(host, Handlers::new().tools(tools), EngineConfig::default());
//! let meta = ModernMeta {
//!     version: "2026-07-28".into(),
//!     client_capabilities: json!({}),
//!     client_info: json!({ "name": "example", "version": "1" }),
//!     log_level: None,
//! };
//! let request = shoal_core::jsonrpc::Request {
//!     id: shoal_core::jsonrpc::RequestId::Number(1),
//!     method: "tools/call".into(),
//!     params: json!({ "name": "add", "arguments": { "a": 2, "b": 3 } }).as_object().cloned(),
//! };
//! let ModernReply::Json(body) = engine.handle_modern(meta, None, request).await else { panic!() };
//! let body: serde_json::Value = serde_json::from_str(&body).unwrap();
//! assert_eq!(body["result"]["content"][0]["text"], "5");
//! assert_eq!(body["result"]["resultType"], "complete");
//! # });
//! ```

#![forbid(unsafe_code)]

pub mod codes;
pub mod engine;
pub mod era;
pub mod error;
pub mod handler;
pub mod host;
pub mod ids;
pub mod jsonrpc;
pub mod model;
pub mod request_state;
pub mod session;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod version;
