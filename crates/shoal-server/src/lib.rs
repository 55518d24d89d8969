//! The `shoal` binary's parts: its flags (the top layer of the facade's settings), telemetry,
//! and the built-in tool sets. The assembly itself is the facade's (`shoal::Shoal`).

#![forbid(unsafe_code)]

pub mod cli;
pub mod telemetry;
pub mod tools;
