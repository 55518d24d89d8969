//! Settings: every knob of a Shoal server, layered (defaults < the TOML file < `SHOAL_*`
//! variables < flags) and checked all at once.
//!
//! A knob has one key (`max_body_bytes`), which names its flag (`--max-body-bytes`) and its
//! variable (`SHOAL_MAX_BODY_BYTES`), and one default, kept by the crate whose typed config
//! uses it ([`TransportConfig`], the hosts' session limits, [`JwtConfig`](shoal_auth::JwtConfig)) or, for the
//! listeners and the drain, here. [`Sources::resolve`] reads every knob, checks each and the
//! combinations, and reports every wrong one together: an operator fixes them in one go.

mod auth;
mod request_state;
mod sources;

use std::net::SocketAddr;
use std::time::Duration;

use shoal_auth::AuthConfig;
use shoal_core::ids::NodeId;
use shoal_transport::TransportConfig;

pub use sources::{
    ENV_ADMIN_TOKEN, ENV_AUTH_TOKENS, ENV_CONFIG, ENV_LOG, ENV_REQUEST_STATE_KEYS,
    ENV_UPSTREAM_CLIENT_SECRET, Origin, Reader, SettingError, SettingsErrors, Sources, flag_of,
    variable_of,
};

/// Address of the MCP endpoint by default: loopback, so that nothing is exposed unasked.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// Address of the admin listener (`/healthz`, `/readyz`, `/metrics`) by default.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);
/// Default bound on the drain after SIGTERM.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The URL schemes of a Redis session host: one server (plain or TLS) or a Cluster.
pub const REDIS_SCHEMES: [&str; 4] = [
    "redis://",
    "rediss://",
    "redis-cluster://",
    "rediss-cluster://",
];

/// Every setting of a Shoal server, resolved and checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Address of the MCP endpoint.
    pub listen: SocketAddr,
    /// Address of the admin listener.
    pub admin_listen: SocketAddr,
    /// The endpoint's URL as clients see it (the OAuth resource, the default audience).
    pub public_url: String,
    /// Where sessions live.
    pub host: HostSettings,
    /// Session limits, in every host.
    pub sessions: SessionSettings,
    /// The endpoint: path, allow-lists, request limits.
    pub transport: TransportConfig,
    /// Connection-level timeouts.
    pub connections: ConnectionSettings,
    /// Authentication.
    pub auth: AuthConfig,
    /// Multi round-trip requests' `requestState` (2026-07-28).
    pub request_state: RequestStateSettings,
    /// The operator API's token (`SHOAL_ADMIN_TOKEN`); without one the API is not served.
    pub admin_token: Option<crate::operator::AdminToken>,
    /// What happens on SIGTERM.
    pub shutdown: ShutdownSettings,
    /// This process's node id (the configured prefix, or the host name, plus a random suffix).
    pub node_id: NodeId,
    /// Listening on a non-loopback address without authentication, allowed explicitly.
    pub unauthenticated_exposed: bool,
    /// Worth a warning at start (logging may not be set up while settings resolve).
    pub warnings: Vec<String>,
}

/// Where sessions, stream logs and the key-value store live.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostSettings {
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

impl std::fmt::Debug for HostSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostSettings::Memory => f.write_str("Memory"),
            HostSettings::Redis { key_prefix, .. } => f
                .debug_struct("Redis")
                .field("url", &"<redacted>")
                .field("key_prefix", key_prefix)
                .finish(),
        }
    }
}

/// Session limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionSettings {
    /// A session unused this long expires.
    pub idle_timeout: Duration,
    /// A session expires this long after initialize, however busy.
    pub max_lifetime: Duration,
    /// Events of a stream older than this are trimmed.
    pub event_retention: Duration,
    /// Live sessions per principal across all replicas; 0: unlimited.
    pub max_per_principal: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout: shoal_core::host::DEFAULT_IDLE_TIMEOUT,
            max_lifetime: shoal_core::host::DEFAULT_MAX_LIFETIME,
            event_retention: shoal_core::host::DEFAULT_EVENT_RETENTION,
            max_per_principal: shoal_core::engine::DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
        }
    }
}

/// How multi round-trip requests' `requestState` is sealed, and for how long it is good.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestStateSettings {
    /// The key ring every replica shares; `None`: each process generates its own (one replica).
    pub keys: Option<shoal_core::request_state::KeyRing>,
    /// How long a state stays good: the time a user has to answer.
    pub ttl: Duration,
}

impl Default for RequestStateSettings {
    fn default() -> Self {
        RequestStateSettings {
            keys: None,
            ttl: shoal_core::engine::DEFAULT_REQUEST_STATE_TTL,
        }
    }
}

/// Connection-level timeouts (the header limit is the transport's `max_header_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionSettings {
    /// A keep-alive connection waiting this long for its next request (or for the rest of its
    /// headers) is closed.
    pub idle_timeout: Duration,
    /// A connection whose writes stay blocked this long is closed.
    pub write_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            idle_timeout: shoal_transport::config::DEFAULT_IDLE_CONNECTION_TIMEOUT,
            write_timeout: shoal_transport::config::DEFAULT_WRITE_TIMEOUT,
        }
    }
}

/// What happens on SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownSettings {
    /// How long to keep serving while reporting not ready (a preStop delay).
    pub delay: Duration,
    /// How long in-flight requests may take to finish.
    pub drain_timeout: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings {
            delay: Duration::ZERO,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl Default for Settings {
    /// Loopback, memory host, no authentication, every limit at its default.
    fn default() -> Self {
        Settings {
            listen: DEFAULT_LISTEN,
            admin_listen: DEFAULT_ADMIN_LISTEN,
            public_url: default_public_url(DEFAULT_LISTEN),
            host: HostSettings::Memory,
            sessions: SessionSettings::default(),
            transport: TransportConfig::default(),
            connections: ConnectionSettings::default(),
            auth: AuthConfig::None,
            request_state: RequestStateSettings::default(),
            admin_token: None,
            shutdown: ShutdownSettings::default(),
            node_id: NodeId::with_random_suffix(&hostname()),
            unauthenticated_exposed: false,
            warnings: Vec::new(),
        }
    }
}

impl Settings {
    /// The settings of the process's `SHOAL_*` variables and the file `SHOAL_CONFIG` names.
    ///
    /// # Errors
    ///
    /// Every wrong setting, together.
    pub fn from_env() -> Result<Settings, SettingsErrors> {
        Sources::from_env().resolve()
    }
}

impl Sources {
    /// Reads and checks every knob of the facade.
    ///
    /// # Errors
    ///
    /// Every wrong setting, together.
    pub fn resolve(&self) -> Result<Settings, SettingsErrors> {
        self.resolve_with(|_| Some(()))
            .map(|(settings, ())| settings)
    }

    /// Reads and checks every knob of the facade and, with `more`, knobs of the caller's own
    /// (the binary's tool sets and telemetry), so that theirs are in the same report and count
    /// as known in the file.
    ///
    /// # Errors
    ///
    /// Every wrong setting, the facade's and the caller's, together.
    pub fn resolve_with<T>(
        &self,
        more: impl FnOnce(&mut Reader<'_>) -> Option<T>,
    ) -> Result<(Settings, T), SettingsErrors> {
        let mut reader = self.reader();
        let settings = read_settings(&mut reader);
        let more = more(&mut reader);
        let warnings = reader.finish()?;
        // `finish` found no error, so every knob read into a value.
        match (settings, more) {
            (Some(mut settings), Some(more)) => {
                settings.warnings.extend(warnings);
                Ok((settings, more))
            }
            _ => Err(SettingsErrors(vec![SettingError {
                key: None,
                origin: Origin::Default,
                message: "a setting was refused without a reason (a bug in Shoal)".to_owned(),
            }])),
        }
    }
}

/// Every knob, in the order `shoal serve --help` lists them.
fn read_settings(reader: &mut Reader<'_>) -> Option<Settings> {
    let defaults = Settings::default();
    let listen = reader.parse("listen").unwrap_or(defaults.listen);
    let admin_listen = reader
        .parse("admin_listen")
        .unwrap_or(defaults.admin_listen);
    let public_url_given = reader.is_set("public_url");
    let public_url = reader
        .text("public_url")
        .unwrap_or_else(|| default_public_url(listen));
    let public_host = match public_host(&public_url) {
        Ok(host) => Some(host),
        Err(message) => {
            reader.refuse("public_url", message);
            None
        }
    };
    let host = read_host(reader);
    let sessions = read_sessions(reader, defaults.sessions);
    let mut transport = read_transport(reader, defaults.transport);
    transport.allowed_hosts.extend(public_host);
    transport
        .allowed_hosts
        .extend(reader.list("allowed_hosts", ',').unwrap_or_default());
    transport.allowed_hosts.dedup();
    let connections = ConnectionSettings {
        idle_timeout: positive(reader, "idle_connection_timeout")
            .unwrap_or(defaults.connections.idle_timeout),
        write_timeout: positive(reader, "write_timeout")
            .unwrap_or(defaults.connections.write_timeout),
    };
    let shutdown = ShutdownSettings {
        delay: reader
            .duration("shutdown_delay")
            .unwrap_or(defaults.shutdown.delay),
        drain_timeout: reader
            .duration("drain_timeout")
            .unwrap_or(defaults.shutdown.drain_timeout),
    };
    // Per process: a reader decides that a stream's writer died when no process holds the
    // writer's node id. A crashed pod restarted in place under its old name would otherwise
    // keep its dead predecessor's streams open for ever, unanswered.
    let node_id = reader.text("node_id").map_or(defaults.node_id, |prefix| {
        NodeId::with_random_suffix(&prefix)
    });
    let mut warnings = Vec::new();
    let request_state = request_state::read(reader, host.as_ref(), &mut warnings);
    let admin_token = match reader.variable(ENV_ADMIN_TOKEN).map(str::to_owned) {
        None => None,
        Some(token) => match crate::operator::AdminToken::new(&token) {
            Ok(token) => Some(token),
            Err(error) => {
                reader.fail(format!("{ENV_ADMIN_TOKEN}: {error}"));
                None
            }
        },
    };
    let auth = auth::read(reader, &public_url, &mut warnings);
    let allow_unauthenticated = reader.switch("allow_unauthenticated");
    let auth = auth?;
    let unauthenticated_exposed = auth == AuthConfig::None && !listen.ip().is_loopback();
    if unauthenticated_exposed && !allow_unauthenticated {
        // One line, naming every way out: it is all an operator sees of a container that exits
        // at once (the image's default command takes this branch).
        reader.fail(format!(
            "refusing to listen on {listen} without authentication (anyone who can reach it \
                 could use every tool): set --auth static with tokens in SHOAL_AUTH_TOKENS or \
                 --auth-tokens-file, or --auth jwt --issuer URL (SHOAL_AUTH, SHOAL_ISSUER), or \
                 pass --allow-unauthenticated (SHOAL_ALLOW_UNAUTHENTICATED=true) if a gateway in \
                 front authenticates clients, or listen on a loopback address"
        ));
    }
    // The default public URL names the listen address: on a non-loopback one (a pod IP,
    // 0.0.0.0) the OAuth metadata and challenges would publish an internal address that no
    // client can use as the resource (nor as the token audience).
    let oauth_mode = match auth {
        AuthConfig::Jwt(_) => Some("jwt"),
        AuthConfig::OAuth(_) => Some("oauth"),
        _ => None,
    };
    if let Some(mode) = oauth_mode
        && !listen.ip().is_loopback()
        && !public_url_given
    {
        reader.fail(format!(
            "--auth {mode} on the non-loopback address {listen} needs --public-url: the URL \
                 clients use is the OAuth resource, and the listen address would leak into the \
                 metadata"
        ));
    }
    Some(Settings {
        listen,
        admin_listen,
        public_url,
        host: host?,
        sessions,
        transport,
        connections,
        auth,
        request_state,
        admin_token,
        shutdown,
        node_id,
        unauthenticated_exposed,
        warnings,
    })
}

fn read_host(reader: &mut Reader<'_>) -> Option<HostSettings> {
    let key_prefix = reader
        .text("redis_key_prefix")
        .unwrap_or_else(|| shoal_redis::DEFAULT_KEY_PREFIX.to_owned());
    match reader.text("session_host").as_deref().map(str::trim) {
        None | Some("memory") => Some(HostSettings::Memory),
        Some(url) if REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) => {
            Some(HostSettings::Redis {
                url: url.to_owned(),
                key_prefix,
            })
        }
        // The value is not echoed: it may be a URL with a password.
        Some(_) => {
            reader.refuse(
                "session_host",
                "must be `memory` or a redis://, rediss://, redis-cluster:// or \
                 rediss-cluster:// URL"
                    .to_owned(),
            );
            None
        }
    }
}

fn read_sessions(reader: &mut Reader<'_>, defaults: SessionSettings) -> SessionSettings {
    let event_retention = reader.duration("event_retention");
    if event_retention.is_some_and(|retention| retention < Duration::from_millis(1)) {
        reader.refuse("event_retention", "must be at least 1ms".to_owned());
    }
    SessionSettings {
        idle_timeout: positive(reader, "session_idle_timeout").unwrap_or(defaults.idle_timeout),
        max_lifetime: positive(reader, "session_max_lifetime").unwrap_or(defaults.max_lifetime),
        event_retention: event_retention.unwrap_or(defaults.event_retention),
        max_per_principal: reader
            .get("max_sessions_per_principal")
            .unwrap_or(defaults.max_per_principal),
    }
}

fn read_transport(reader: &mut Reader<'_>, defaults: TransportConfig) -> TransportConfig {
    let rate_limit = reader.text("rate_limit");
    let burst = reader.get::<std::num::NonZeroU32>("rate_limit_burst");
    let rate_limit = match rate_limit.as_deref().map(str::trim) {
        None | Some("" | "off") => {
            if burst.is_some() {
                reader.refuse("rate_limit_burst", "needs --rate-limit".to_owned());
            }
            None
        }
        Some(rate) => match rate.parse::<shoal_transport::RateLimit>() {
            Ok(mut limit) => {
                if let Some(burst) = burst {
                    limit.burst = burst;
                }
                Some(limit)
            }
            Err(error) => {
                reader.refuse("rate_limit", format!("is not valid: {error}"));
                None
            }
        },
    };
    TransportConfig {
        allowed_origins: reader.list("allowed_origins", ',').unwrap_or_default(),
        max_body_bytes: at_least(reader, "max_body_bytes", 1024).unwrap_or(defaults.max_body_bytes),
        max_header_bytes: at_least(reader, "max_header_bytes", 1024)
            .unwrap_or(defaults.max_header_bytes),
        max_json_depth: at_least(reader, "max_json_depth", 1).unwrap_or(defaults.max_json_depth),
        max_streams_per_session: at_least(reader, "max_streams_per_session", 1)
            .unwrap_or(defaults.max_streams_per_session),
        max_in_flight_per_session: at_least(reader, "max_in_flight_per_session", 1)
            .unwrap_or(defaults.max_in_flight_per_session),
        rate_limit,
        ..defaults
    }
}

/// A count of at least `minimum`.
fn at_least<T>(reader: &mut Reader<'_>, key: &'static str, minimum: T) -> Option<T>
where
    T: serde::de::DeserializeOwned + PartialOrd + std::fmt::Display + Copy,
{
    let value = reader.get::<T>(key)?;
    if value < minimum {
        reader.refuse(key, format!("must be at least {minimum} (got {value})"));
        return None;
    }
    Some(value)
}

/// A duration greater than zero.
fn positive(reader: &mut Reader<'_>, key: &'static str) -> Option<Duration> {
    let duration = reader.duration(key)?;
    if duration.is_zero() {
        reader.refuse(key, "must be greater than zero".to_owned());
        return None;
    }
    Some(duration)
}

fn default_public_url(listen: SocketAddr) -> String {
    format!("http://{listen}{}", shoal_transport::config::DEFAULT_PATH)
}

/// The host name of a public URL, without port.
fn public_host(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("must start with http:// or https:// (got {url:?})"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("has no valid host (got {url:?})"));
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

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "shoal".to_owned())
}

#[cfg(test)]
mod tests;
