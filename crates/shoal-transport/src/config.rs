//! Settings of the Streamable HTTP endpoint.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::ToolScopeCheck;

/// Default endpoint path.
pub const DEFAULT_PATH: &str = "/mcp";
/// Default request body limit: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default limit of the request headers (names plus values): 16 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default limit of JSON nesting (arrays and objects) in a request body.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
/// Default limit of GET streams one session may hold open on one replica.
pub const DEFAULT_MAX_STREAMS_PER_SESSION: u64 = 8;
/// Default limit of requests of one session handled at once on one replica.
pub const DEFAULT_MAX_IN_FLIGHT_PER_SESSION: u64 = 64;
/// Default time a keep-alive connection may wait for its next request (and a client may take
/// to send a request's headers).
pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a write to a client may stay blocked (the client stopped reading) before the
/// connection is closed.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
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
    /// Requests whose headers (names plus values) exceed this are refused with 431.
    pub max_header_bytes: usize,
    /// Request bodies nesting arrays and objects deeper than this are refused with 400.
    pub max_json_depth: usize,
    /// GET streams (standalone or resumed) one session may hold open on this replica, and
    /// `subscriptions/listen` streams one principal may hold open on it (2026-07-28, which has
    /// no sessions; not counted without a principal); more are refused with 429.
    pub max_streams_per_session: u64,
    /// POSTs of one session being handled or streaming their reply on this replica, and
    /// stateless requests (2026-07-28) of one principal (not counted without a principal); more
    /// are refused with 429.
    pub max_in_flight_per_session: u64,
    /// Requests per principal (one bucket for all anonymous requests) on this replica; `None`
    /// for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Idle SSE streams get a comment this often.
    pub keep_alive: Duration,
    /// The `retry` advertised on priming events and when a stream is closed early.
    pub retry: Duration,
    /// Checked at every `tools/call`, after the session is resolved: an auth layer's per-tool
    /// scopes. `None` lets every principal call every tool.
    pub tool_scopes: Option<Arc<dyn ToolScopeCheck>>,
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
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_streams_per_session: DEFAULT_MAX_STREAMS_PER_SESSION,
            max_in_flight_per_session: DEFAULT_MAX_IN_FLIGHT_PER_SESSION,
            rate_limit: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            retry: DEFAULT_RETRY,
            tool_scopes: None,
        }
    }
}

/// A token bucket per principal: `requests` per `per`, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per `per`, on average.
    pub requests: NonZeroU32,
    /// The period: one second, one minute or one hour.
    pub per: Duration,
    /// Requests allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

/// A rate limit that is not `<count>/s`, `<count>/m` or `<count>/h` with a positive count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rate limit: write <count>/s, <count>/m or <count>/h, e.g. 100/s")]
pub struct InvalidRateLimit(pub String);

impl RateLimit {
    /// The requests per second, rounded up: the `max` the client is told.
    pub fn per_second(&self) -> u64 {
        let per_ms = self.per.as_millis().max(1);
        (u128::from(self.requests.get()) * 1000).div_ceil(per_ms) as u64
    }
}

impl FromStr for RateLimit {
    type Err = InvalidRateLimit;

    /// `100/s`, `600/m` or `3600/h`; the burst is the per-second amount (at least 1).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidRateLimit(text.to_owned());
        let (count, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
        let requests: NonZeroU32 = count.trim().parse().map_err(|_| invalid())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(invalid()),
        };
        let mut limit = RateLimit {
            requests,
            per,
            burst: requests,
        };
        let per_second = u32::try_from(limit.per_second()).unwrap_or(u32::MAX);
        limit.burst = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        Ok(limit)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "m",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rate_limits() {
        let limit: RateLimit = "100/s".parse().unwrap();
        assert_eq!(limit.requests.get(), 100);
        assert_eq!(limit.per, Duration::from_secs(1));
        assert_eq!(limit.burst.get(), 100);
        let limit: RateLimit = "600/m".parse().unwrap();
        assert_eq!((limit.per_second(), limit.burst.get()), (10, 10));
        assert_eq!(limit.to_string(), "600/m");
        // Fewer than one per second still allows one at a time.
        let limit: RateLimit = "30/m".parse().unwrap();
        assert_eq!(limit.burst.get(), 1);
        for bad in ["", "100", "0/s", "-1/s", "10/d", "x/s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }
}
