//! The `shoal` server: configuration, built-in tool sets, and `serve`, which wires the session
//! host, the engine, the Streamable HTTP transport and the admin listener together.

#![forbid(unsafe_code)]

pub mod config;
mod conn;
pub mod serve;
pub mod telemetry;
pub mod tools;
