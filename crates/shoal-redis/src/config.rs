//! The Redis host's settings: where Redis is, how keys are named, and the session and log limits.

use std::time::Duration;

use shoal_core::error::Cause;
use shoal_core::ids::NodeId;

/// Default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "shoal";
// The session limits are every host's (Redis trims approximately: at least
// `DEFAULT_MAX_EVENTS_PER_STREAM` events are kept).
pub use shoal_core::host::{
    DEFAULT_EVENT_RETENTION, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_EVENTS_PER_STREAM,
    DEFAULT_MAX_LIFETIME,
};
/// Default bound on one command, round trip included.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Default bound on opening a connection (TCP, TLS, `AUTH`, `HELLO`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default pause between two reconnection attempts while Redis is unreachable.
pub const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_millis(250);
/// Default interval after which an idle subscription re-reads its log even without a wake-up.
pub const DEFAULT_REREAD_INTERVAL: Duration = Duration::from_secs(30);
/// Default interval between two heartbeats of this node.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Default time after the last heartbeat at which a node counts as dead.
pub const DEFAULT_NODE_TTL: Duration = Duration::from_secs(3);

/// Settings of a [`RedisHost`](crate::RedisHost). `Debug` hides the URL's password.
#[derive(Clone)]
pub struct RedisHostConfig {
    /// `redis://[user[:password]@]host[:port][/db]` or `rediss://…` for TLS; for a Redis
    /// Cluster, `redis-cluster://[user[:password]@]host:port` of any master (others with
    /// `?node=host:port&…`; `rediss-cluster://` for TLS): the other masters are discovered.
    pub url: String,
    /// Prefix of every key and channel; lets several deployments share one Redis. May not
    /// contain `{` or `}` (they would break the Cluster hash tags).
    pub key_prefix: String,
    /// This process's node id: names its inbox channel.
    pub node: NodeId,
    /// A session unused for this long is gone.
    pub idle_timeout: Duration,
    /// A session older than this is gone, however busy.
    pub max_lifetime: Duration,
    /// Events kept per stream; older ones are trimmed (`XADD … MAXLEN ~`, so at least this
    /// many are kept).
    pub max_events_per_stream: usize,
    /// Events older than this are trimmed.
    pub event_retention: Duration,
    /// Bound on one command, round trip included; past it the call is `Unavailable`.
    pub command_timeout: Duration,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Pause between two reconnection attempts; the host retries for ever.
    pub reconnect_delay: Duration,
    /// An idle subscription re-reads its log this often even when no wake-up came (a safety
    /// net: wake-ups are at-most-once).
    pub reread_interval: Duration,
    /// This node renews its liveness key this often.
    pub heartbeat_interval: Duration,
    /// A node whose last heartbeat is older than this counts as dead.
    pub node_ttl: Duration,
}

impl RedisHostConfig {
    /// Settings for `url` and `node` with every other field at its default.
    pub fn new(url: impl Into<String>, node: NodeId) -> Self {
        RedisHostConfig {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            node,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            max_events_per_stream: DEFAULT_MAX_EVENTS_PER_STREAM,
            event_retention: DEFAULT_EVENT_RETENTION,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect_delay: DEFAULT_RECONNECT_DELAY,
            reread_interval: DEFAULT_REREAD_INTERVAL,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            node_ttl: DEFAULT_NODE_TTL,
        }
    }

    /// Checks the settings that Redis cannot take as they are.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}']) {
            return Err(ConfigError::KeyPrefix(self.key_prefix.clone()));
        }
        for (name, value) in [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("event_retention", self.event_retention),
            ("command_timeout", self.command_timeout),
            ("connect_timeout", self.connect_timeout),
            ("reread_interval", self.reread_interval),
        ] {
            if value < Duration::from_millis(1) {
                return Err(ConfigError::TooShort(name));
            }
        }
        if self.max_events_per_stream == 0 {
            return Err(ConfigError::NoEvents);
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedisHostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHostConfig")
            .field("url", &redacted(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("node", &self.node)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("max_events_per_stream", &self.max_events_per_stream)
            .field("event_retention", &self.event_retention)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("reread_interval", &self.reread_interval)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("node_ttl", &self.node_ttl)
            .finish()
    }
}

/// `url` with the password of its user info, if any, replaced by `***`.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// A setting the host refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The key prefix is empty or contains a brace.
    #[error("key_prefix {0:?} must be non-empty and contain no '{{' or '}}'")]
    KeyPrefix(String),
    /// A duration is below one millisecond.
    #[error("{0} must be at least 1 ms")]
    TooShort(&'static str),
    /// `max_events_per_stream` is zero.
    #[error("max_events_per_stream must be at least 1")]
    NoEvents,
    /// The URL is not one Redis understands; the cause is the Redis client's error.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] Cause),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_braces_and_zero_limits() {
        let ok = RedisHostConfig::new("redis://127.0.0.1", NodeId::new("n"));
        assert_eq!(ok.validate(), Ok(()));
        let braces = RedisHostConfig {
            key_prefix: "a{b".into(),
            ..ok.clone()
        };
        assert!(matches!(braces.validate(), Err(ConfigError::KeyPrefix(_))));
        let zero = RedisHostConfig {
            idle_timeout: Duration::ZERO,
            ..ok.clone()
        };
        assert_eq!(zero.validate(), Err(ConfigError::TooShort("idle_timeout")));
        let none = RedisHostConfig {
            max_events_per_stream: 0,
            ..ok
        };
        assert_eq!(none.validate(), Err(ConfigError::NoEvents));
    }

    #[test]
    fn debug_hides_the_password() {
        assert_eq!(
            redacted("rediss://app:s3cret@redis.example:6380/2"),
            "rediss://app:***@redis.example:6380/2"
        );
        assert_eq!(redacted("redis://:s3cret@h"), "redis://:***@h");
        assert_eq!(redacted("redis://h:6379"), "redis://h:6379");
        let config = RedisHostConfig::new("redis://u:pw@h", NodeId::new("n"));
        assert!(!format!("{config:?}").contains("pw"));
    }

    #[test]
    fn cluster_urls_parse_as_clusters() {
        let config = fred::types::config::Config::from_url("redis-cluster://u:pw@127.0.0.1:7000");
        let config = config.ok();
        assert!(config.as_ref().is_some_and(|c| c.server.is_clustered()));
        assert_eq!(
            config.and_then(|c| c.password.clone()).as_deref(),
            Some("pw")
        );
        let plain = fred::types::config::Config::from_url("redis://127.0.0.1:6379").ok();
        assert!(plain.is_some_and(|c| !c.server.is_clustered()));
    }

    #[test]
    fn urls_with_tls_and_credentials_parse() {
        let config = fred::types::config::Config::from_url("rediss://app:pw@localhost:6380/2");
        let config = config.ok();
        assert!(config.as_ref().is_some_and(|c| c.tls.is_some()));
        assert_eq!(
            config.as_ref().and_then(|c| c.username.clone()).as_deref(),
            Some("app")
        );
        assert_eq!(
            config.as_ref().and_then(|c| c.password.clone()).as_deref(),
            Some("pw")
        );
        assert_eq!(config.and_then(|c| c.database), Some(2));
    }
}
