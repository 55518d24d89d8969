//! Configuration of `shoal serve`: flags, then `SHOAL_*` environment variables, then an
//! optional TOML file, then defaults, in that order of precedence.
//!
//! clap resolves flags and environment variables (each flag names its variable); the file
//! fills what both left unset. Every setting is listed once in [`ServeArgs`], whose doc
//! comments are what `shoal serve --help` prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
const DEFAULT_TOOLS: &str = "demo";
const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_SESSION_MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The URL schemes `--session-host` takes for Redis: one server (plain or TLS) or a Cluster.
const REDIS_SCHEMES: [&str; 4] = [
    "redis://",
    "rediss://",
    "redis-cluster://",
    "rediss-cluster://",
];
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of `shoal serve`.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ServeArgs {
    /// TOML file with any of these settings (snake_case keys, e.g. `listen = "0.0.0.0:8080"`).
    #[arg(long, env = "SHOAL_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address of the MCP endpoint [default: 127.0.0.1:8080].
    #[arg(long, env = "SHOAL_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Public URL of the MCP endpoint as clients see it, e.g. https://mcp.example.com/mcp.
    /// Its host is added to the Host allow-list [default: http://<listen>/mcp].
    #[arg(long, env = "SHOAL_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Where sessions live: `memory` (a single replica) or a Redis URL shared by every replica,
    /// `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS, or a Redis Cluster,
    /// `redis-cluster://[user:password@]host:port` (any one master; `rediss-cluster://` for
    /// TLS) [default: memory].
    #[arg(long, env = "SHOAL_SESSION_HOST", value_name = "memory|URL")]
    pub session_host: Option<String>,

    /// Prefix of every Redis key and channel, so that deployments can share one Redis
    /// [default: shoal].
    #[arg(long, env = "SHOAL_REDIS_KEY_PREFIX", value_name = "PREFIX")]
    pub redis_key_prefix: Option<String>,

    /// Built-in tool sets to serve, comma-separated: demo, conformance [default: demo].
    #[arg(long, env = "SHOAL_TOOLS", value_name = "LIST", value_delimiter = ',')]
    pub tools: Option<Vec<String>>,

    /// Address of the admin listener (/healthz, /readyz) [default: 127.0.0.1:9090].
    #[arg(long, env = "SHOAL_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Origins browsers may call from, comma-separated (e.g. https://app.example.com), or *.
    /// Origins whose host is an allowed host always pass; requests without Origin always pass.
    #[arg(
        long,
        env = "SHOAL_ALLOWED_ORIGINS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,

    /// Extra host names accepted in the Host header, comma-separated, or * (DNS-rebinding
    /// protection) [default: localhost, 127.0.0.1, [::1] and the public URL's host].
    #[arg(
        long,
        env = "SHOAL_ALLOWED_HOSTS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub allowed_hosts: Option<Vec<String>>,

    /// Largest accepted request body, in bytes [default: 4194304].
    #[arg(long, env = "SHOAL_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// A session unused this long expires, e.g. 30m, 2h [default: 30m].
    #[arg(long, env = "SHOAL_SESSION_IDLE_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub session_idle_timeout: Option<Duration>,

    /// A session expires this long after initialize, however busy [default: 24h].
    #[arg(long, env = "SHOAL_SESSION_MAX_LIFETIME", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub session_max_lifetime: Option<Duration>,

    /// On SIGTERM, how long in-flight requests may take to finish [default: 10s].
    #[arg(long, env = "SHOAL_DRAIN_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub drain_timeout: Option<Duration>,

    /// On SIGTERM, how long to keep serving while reporting not ready, so that load balancers
    /// stop sending requests first (a Kubernetes preStop delay) [default: 0s].
    #[arg(long, env = "SHOAL_SHUTDOWN_DELAY", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub shutdown_delay: Option<Duration>,

    /// This replica's node id [default: the host name plus a random suffix].
    #[arg(long, env = "SHOAL_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,

    /// Allow listening on a non-loopback address although no authentication is configured.
    #[arg(long, env = "SHOAL_ALLOW_UNAUTHENTICATED")]
    #[serde(default)]
    pub allow_unauthenticated: bool,

    /// Log format: text or json [default: text]. The filter comes from SHOAL_LOG or RUST_LOG.
    #[arg(long, env = "SHOAL_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `Option<Duration>` in TOML as a humantime string ("30m").
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Where sessions live.
#[derive(Clone, PartialEq, Eq)]
pub enum SessionHostKind {
    /// In this process: one replica.
    Memory,
    /// In Redis, shared by every replica.
    Redis {
        /// `redis://`, `rediss://`, `redis-cluster://` or `rediss-cluster://` URL (may hold a
        /// password: never logged).
        url: String,
        /// Prefix of every key and channel.
        key_prefix: String,
    },
}

impl std::fmt::Debug for SessionHostKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionHostKind::Memory => f.write_str("Memory"),
            SessionHostKind::Redis { key_prefix, .. } => f
                .debug_struct("Redis")
                .field("url", &"<redacted>")
                .field("key_prefix", key_prefix)
                .finish(),
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where sessions live.
    pub session_host: SessionHostKind,
    /// MCP endpoint address.
    pub listen: SocketAddr,
    /// The endpoint as clients reach it.
    pub public_url: String,
    /// Tool sets to serve.
    pub tools: Vec<String>,
    /// Admin listener address.
    pub admin_listen: SocketAddr,
    /// Origin allow-list.
    pub allowed_origins: Vec<String>,
    /// Host allow-list (names without ports).
    pub allowed_hosts: Vec<String>,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Idle expiry of sessions.
    pub session_idle_timeout: Duration,
    /// Maximum session lifetime.
    pub session_max_lifetime: Duration,
    /// Bound on the drain after SIGTERM.
    pub drain_timeout: Duration,
    /// Time spent not ready but serving, before the drain.
    pub shutdown_delay: Duration,
    /// Node id, if configured.
    pub node_id: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// Fills what flags and environment left unset from the config file, then defaults, and
    /// checks the result.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        let listen = pick(self.listen, file.listen, || parse_default(DEFAULT_LISTEN))?;
        let admin_listen = pick(self.admin_listen, file.admin_listen, || {
            parse_default(DEFAULT_ADMIN_LISTEN)
        })?;
        let public_url = self
            .public_url
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}/mcp"));
        let public_host = public_host(&public_url)?;
        let tools = self
            .tools
            .or(file.tools)
            .unwrap_or_else(|| vec![DEFAULT_TOOLS.to_owned()]);
        let tools: Vec<String> = tools
            .into_iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if tools.is_empty() {
            bail!("--tools names no tool set; choose from: demo, conformance");
        }
        for name in &tools {
            if crate::tools::by_name(name).is_none() {
                bail!("--tools: unknown tool set {name:?}; choose from: demo, conformance");
            }
        }
        let mut allowed_hosts: Vec<String> = shoal_transport::config::LOOPBACK_HOSTS
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        allowed_hosts.push(public_host);
        allowed_hosts.extend(
            self.allowed_hosts
                .or(file.allowed_hosts)
                .unwrap_or_default(),
        );
        allowed_hosts.dedup();
        let allow_unauthenticated = self.allow_unauthenticated || file.allow_unauthenticated;
        if !listen.ip().is_loopback() && !allow_unauthenticated {
            bail!(
                "refusing to listen on {listen} without authentication: anyone who can reach it could use \
                 every tool. Listen on a loopback address, or pass --allow-unauthenticated if a gateway \
                 in front authenticates clients"
            );
        }
        let key_prefix = self
            .redis_key_prefix
            .or(file.redis_key_prefix)
            .unwrap_or_else(|| "shoal".to_owned());
        let session_host = match self.session_host.or(file.session_host).as_deref() {
            None | Some("memory") => SessionHostKind::Memory,
            Some(url) if REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) => {
                SessionHostKind::Redis {
                    url: url.to_owned(),
                    key_prefix,
                }
            }
            Some(_) => bail!(
                "--session-host must be `memory` or a redis://, rediss://, redis-cluster:// or \
                 rediss-cluster:// URL"
            ),
        };
        let config = Config {
            session_host,
            listen,
            public_url,
            tools,
            admin_listen,
            allowed_origins: self
                .allowed_origins
                .or(file.allowed_origins)
                .unwrap_or_default(),
            allowed_hosts,
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(shoal_transport::config::DEFAULT_MAX_BODY_BYTES),
            session_idle_timeout: self
                .session_idle_timeout
                .or(file.session_idle_timeout)
                .unwrap_or(DEFAULT_SESSION_IDLE_TIMEOUT),
            session_max_lifetime: self
                .session_max_lifetime
                .or(file.session_max_lifetime)
                .unwrap_or(DEFAULT_SESSION_MAX_LIFETIME),
            drain_timeout: self
                .drain_timeout
                .or(file.drain_timeout)
                .unwrap_or(DEFAULT_DRAIN_TIMEOUT),
            shutdown_delay: self
                .shutdown_delay
                .or(file.shutdown_delay)
                .unwrap_or(Duration::ZERO),
            node_id: self.node_id.or(file.node_id),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
        };
        if config.max_body_bytes < 1024 {
            bail!(
                "--max-body-bytes must be at least 1024 (got {})",
                config.max_body_bytes
            );
        }
        if config.session_idle_timeout.is_zero() || config.session_max_lifetime.is_zero() {
            bail!("session timeouts must be greater than zero");
        }
        Ok(config)
    }
}

fn pick<T>(
    flag: Option<T>,
    file: Option<T>,
    default: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match flag.or(file) {
        Some(value) => Ok(value),
        None => default(),
    }
}

fn parse_default(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.parse()
        .with_context(|| format!("default address {addr}"))
}

fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

/// The host name of a public URL, without port.
fn public_host(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .with_context(|| format!("--public-url {url:?} must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        bail!("--public-url {url:?} has no valid host");
    }
    let host = if authority.starts_with('[') {
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    };
    Ok(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_demo() {
        let config = ServeArgs::default().resolve().unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.admin_listen, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(config.public_url, "http://127.0.0.1:8080/mcp");
        assert_eq!(config.tools, vec!["demo"]);
        assert_eq!(config.session_idle_timeout, Duration::from_secs(1800));
        assert_eq!(config.session_host, SessionHostKind::Memory);
    }

    #[test]
    fn session_host_is_memory_or_a_redis_url() {
        let redis = ServeArgs {
            session_host: Some("redis://:secret@127.0.0.1:6379/0".into()),
            ..Default::default()
        };
        let config = redis.resolve().unwrap();
        assert!(
            matches!(&config.session_host, SessionHostKind::Redis { key_prefix, .. } if key_prefix == "shoal")
        );
        assert!(
            !format!("{config:?}").contains("secret"),
            "the password never reaches a log"
        );
        for url in [
            "redis-cluster://127.0.0.1:7000",
            "rediss-cluster://app:secret@redis.example:7000",
        ] {
            let cluster = ServeArgs {
                session_host: Some(url.into()),
                ..Default::default()
            };
            let config = cluster.resolve().unwrap();
            assert!(
                matches!(&config.session_host, SessionHostKind::Redis { url: u, .. } if u == url),
                "{url} is a Redis Cluster"
            );
            assert!(!format!("{config:?}").contains("secret"));
        }
        let bad = ServeArgs {
            session_host: Some("postgres://x".into()),
            ..Default::default()
        };
        assert!(
            bad.resolve()
                .unwrap_err()
                .to_string()
                .contains("--session-host")
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("shoal-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shoal.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:7000\"\ntools = [\"conformance\"]\nsession_idle_timeout = \"5m\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7001".parse().unwrap()),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(
            config.listen,
            "127.0.0.1:7001".parse().unwrap(),
            "the flag wins"
        );
        assert_eq!(config.tools, vec!["conformance"], "the file fills the rest");
        assert_eq!(config.session_idle_timeout, Duration::from_secs(300));
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let error = ServeArgs {
            config: Some(path),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{error:#}").contains("unknown field"), "{error:#}");
    }

    #[test]
    fn refuses_unsafe_or_unknown_settings() {
        let open = ServeArgs {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            ..Default::default()
        };
        assert!(
            open.resolve()
                .unwrap_err()
                .to_string()
                .contains("without authentication")
        );
        let allowed = ServeArgs {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            allow_unauthenticated: true,
            public_url: Some("https://mcp.example.com/mcp".into()),
            ..Default::default()
        };
        assert!(
            allowed
                .resolve()
                .unwrap()
                .allowed_hosts
                .contains(&"mcp.example.com".to_owned())
        );
        let unknown = ServeArgs {
            tools: Some(vec!["nope".into()]),
            ..Default::default()
        };
        assert!(
            unknown
                .resolve()
                .unwrap_err()
                .to_string()
                .contains("unknown tool set")
        );
        let bad_url = ServeArgs {
            public_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(bad_url.resolve().is_err());
    }
}
