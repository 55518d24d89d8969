//! Settings of the Streamable HTTP endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use shoal_core::session::Principal;

use crate::rejection::Challenge;

/// Default endpoint path.
pub const DEFAULT_PATH: &str = "/mcp";
/// Default request body limit: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default interval of keep-alive comments on idle streams.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Default reconnection delay advertised with `retry`.
pub const DEFAULT_RETRY: Duration = Duration::from_millis(1000);

/// Settings of the MCP endpoint.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The endpoint path, e.g. `/mcp`.
    pub path: String,
    /// Host names (without port) accepted in `Host`; `*` accepts any. Empty means the
    /// loopback names only.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted in `Origin` (`https://app.example.com`), or `*`. An origin whose host is
    /// in `allowed_hosts` is accepted too. Requests without `Origin` (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Idle SSE streams get a comment this often.
    pub keep_alive: Duration,
    /// The `retry` advertised on priming events and when a stream is closed early.
    pub retry: Duration,
    /// Checked at every `tools/call`, after the session is resolved: an auth layer's per-tool
    /// scopes. `None` lets every principal call every tool.
    pub tool_scopes: Option<Arc<dyn ToolScopeCheck>>,
}

/// Per-tool authorization, checked at `tools/call` (the only place the tool name is known).
///
/// The transport defines the seam and an auth crate implements it, so that the transport
/// needs no auth dependency. `tools/list` is not filtered.
pub trait ToolScopeCheck: Send + Sync + fmt::Debug {
    /// `Ok` when `principal` may call `tool`, else the challenge to answer with (typically 403
    /// `insufficient_scope`).
    fn check(&self, tool: &str, principal: Option<&Principal>) -> Result<(), Challenge>;
}

/// The names every local client uses for this machine.
pub const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            path: DEFAULT_PATH.into(),
            allowed_hosts: LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
            allowed_origins: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            keep_alive: DEFAULT_KEEP_ALIVE,
            retry: DEFAULT_RETRY,
            tool_scopes: None,
        }
    }
}
