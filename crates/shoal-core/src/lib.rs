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
