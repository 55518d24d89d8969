//! Configuration of `shoal serve`: flags, then `SHOAL_*` environment variables, then an
//! optional TOML file, then defaults, in that order of precedence.
//!
//! clap resolves flags and environment variables (each flag names its variable); the file
//! fills what both left unset. Every setting is listed once in [`ServeArgs`], whose doc
//! comments are what `shoal serve --help` prints.
//!
//! Over 1,200 lines, 400 of them tests: this file is replaced by the facade's layered settings
//! (issue 20), so it is not split first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use shoal_auth::config as auth_config;
use shoal_auth::{AuthConfig, JwtConfig, StaticConfig, StaticTokens};
use shoal_core::ids::NodeId;
use shoal_transport::RateLimit;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
const DEFAULT_TOOLS: &str = "demo";
const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_SESSION_MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Matches the session hosts' own default (shoal-redis and the memory host).
const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(10 * 60);
/// The URL schemes `--session-host` takes for Redis: one server (plain or TLS) or a Cluster.
const REDIS_SCHEMES: [&str; 4] = [
    "redis://",
    "rediss://",
    "redis-cluster://",
    "rediss-cluster://",
];
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Static tokens from the environment only (`name=token,name2=token2`): a flag would show the
/// tokens in every process list.
pub const ENV_AUTH_TOKENS: &str = "SHOAL_AUTH_TOKENS";

/// Settings of `shoal serve`.
// The field docs are `shoal serve --help`, read in a terminal: URLs, `<listen>` and `[::1]` stay
// bare text there, so rustdoc is not to read them as links or HTML.
#[allow(
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
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
    /// Its host is added to the Host allow-list; required by --auth jwt on a non-loopback
    /// listen address [default: http://<listen>/mcp].
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

    /// Largest accepted request headers (names plus values), in bytes; more gets 431
    /// [default: 16384].
    #[arg(long, env = "SHOAL_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,

    /// Deepest accepted nesting of arrays and objects in a request body [default: 64].
    #[arg(long, env = "SHOAL_MAX_JSON_DEPTH", value_name = "DEPTH")]
    pub max_json_depth: Option<usize>,

    /// GET streams one session may hold open on one replica; more get 429 [default: 8].
    #[arg(long, env = "SHOAL_MAX_STREAMS_PER_SESSION", value_name = "COUNT")]
    pub max_streams_per_session: Option<u64>,

    /// Requests of one session handled (or streaming their reply) at once on one replica;
    /// more get 429 [default: 64].
    #[arg(long, env = "SHOAL_MAX_IN_FLIGHT_PER_SESSION", value_name = "COUNT")]
    pub max_in_flight_per_session: Option<u64>,

    /// Requests per principal on one replica, e.g. 100/s or 600/m; more get 429 with
    /// Retry-After [default: no limit].
    #[arg(long, env = "SHOAL_RATE_LIMIT", value_name = "RATE")]
    pub rate_limit: Option<String>,

    /// Requests a principal may send at once under --rate-limit [default: the per-second rate].
    #[arg(long, env = "SHOAL_RATE_LIMIT_BURST", value_name = "COUNT")]
    pub rate_limit_burst: Option<NonZeroU32>,

    /// A keep-alive connection waiting this long for its next request (or for the rest of a
    /// request's headers) is closed; open SSE streams are not idle [default: 60s].
    #[arg(long, env = "SHOAL_IDLE_CONNECTION_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub idle_connection_timeout: Option<Duration>,

    /// A connection whose writes stay blocked this long (the client stopped reading) is
    /// closed; a stream's client resumes with Last-Event-ID [default: 30s].
    #[arg(long, env = "SHOAL_WRITE_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub write_timeout: Option<Duration>,

    /// A session unused this long expires, e.g. 30m, 2h [default: 30m].
    #[arg(long, env = "SHOAL_SESSION_IDLE_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub session_idle_timeout: Option<Duration>,

    /// A session expires this long after initialize, however busy [default: 24h].
    #[arg(long, env = "SHOAL_SESSION_MAX_LIFETIME", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub session_max_lifetime: Option<Duration>,

    /// Live sessions one principal may hold across all replicas; more initializes get 429;
    /// 0: unlimited. Sessions without a principal (--auth none) are not counted [default: 100].
    #[arg(long, env = "SHOAL_MAX_SESSIONS_PER_PRINCIPAL", value_name = "COUNT")]
    pub max_sessions_per_principal: Option<usize>,

    /// Events of a stream older than this are trimmed: a client that resumes later gets a
    /// 400, e.g. 10m [default: 10m].
    #[arg(long, env = "SHOAL_EVENT_RETENTION", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub event_retention: Option<Duration>,

    /// On SIGTERM, how long in-flight requests may take to finish [default: 10s].
    #[arg(long, env = "SHOAL_DRAIN_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub drain_timeout: Option<Duration>,

    /// On SIGTERM, how long to keep serving while reporting not ready, so that load balancers
    /// stop sending requests first (a Kubernetes preStop delay) [default: 0s].
    #[arg(long, env = "SHOAL_SHUTDOWN_DELAY", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub shutdown_delay: Option<Duration>,

    /// This replica's node id prefix; every process adds a random suffix to it, so that a
    /// restarted process is never taken for the one that died [default: the host name].
    #[arg(long, env = "SHOAL_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,

    /// Allow listening on a non-loopback address although no authentication is configured.
    #[arg(long, env = "SHOAL_ALLOW_UNAUTHENTICATED")]
    #[serde(default)]
    pub allow_unauthenticated: bool,

    /// Authentication: `none`, `static` (tokens from --auth-tokens-file and/or the
    /// SHOAL_AUTH_TOKENS variable) or `jwt` (access tokens of --issuer) [default: none].
    #[arg(long, env = "SHOAL_AUTH", value_name = "none|static|jwt")]
    pub auth: Option<AuthMode>,

    /// static: file of `principal-name token` lines (`#` starts a comment; keep it readable by
    /// shoal only). Tokens may also come from the environment variable SHOAL_AUTH_TOKENS
    /// (`name=token,name2=token2`), which has no flag so that tokens never show in process lists.
    #[arg(long, env = "SHOAL_AUTH_TOKENS_FILE", value_name = "FILE")]
    pub auth_tokens_file: Option<PathBuf>,

    /// static: read the token from this header (e.g. X-API-Key) instead of
    /// `Authorization: Bearer <token>`.
    #[arg(long, env = "SHOAL_AUTH_HEADER", value_name = "NAME")]
    pub auth_header: Option<String>,

    /// jwt: the authorization server's issuer identifier, compared exactly with `iss` and with
    /// the `issuer` of its discovered metadata (e.g. https://kc.example.com/realms/mcp).
    /// http:// only for loopback hosts.
    #[arg(long, env = "SHOAL_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,

    /// jwt: the audience a token's `aud` must contain, compared exactly [default: the public
    /// URL without a trailing slash].
    #[arg(long, env = "SHOAL_AUDIENCE", value_name = "URL")]
    pub audience: Option<String>,

    /// jwt: the JWKS URL; skips discovery from the issuer [default: the discovered jwks_uri].
    #[arg(long, env = "SHOAL_JWKS_URL", value_name = "URL")]
    pub jwks_url: Option<String>,

    /// jwt: scopes every request needs, comma-separated (403 insufficient_scope otherwise).
    #[arg(
        long,
        env = "SHOAL_REQUIRED_SCOPES",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub required_scopes: Option<Vec<String>>,

    /// jwt: scopes a tools/call of one tool needs, `TOOL=SCOPE[ SCOPE...]`; repeat the flag
    /// for several tools (the environment variable separates them with `;`). Adds to the
    /// config file's `[tool_scopes]` table (`echo = ["mcp:echo"]`), replacing a tool's entry.
    #[arg(
        long = "tool-scope",
        env = "SHOAL_TOOL_SCOPES",
        value_name = "TOOL=SCOPES",
        value_delimiter = ';'
    )]
    #[serde(skip)]
    pub tool_scope: Vec<String>,

    /// Per-tool scopes from the config file: `[tool_scopes]` then `echo = ["mcp:echo"]`.
    #[arg(skip)]
    pub tool_scopes: Option<BTreeMap<String, Vec<String>>>,

    /// jwt: require the RFC 9068 header `typ: at+jwt` (or application/at+jwt).
    #[arg(long, env = "SHOAL_REQUIRE_AT_JWT")]
    #[serde(default)]
    pub require_at_jwt: bool,

    /// jwt: accepted signing algorithms, comma-separated; `none` and HS* are refused
    /// [default: RS256,ES256,EdDSA].
    #[arg(
        long,
        env = "SHOAL_JWT_ALGORITHMS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub jwt_algorithms: Option<Vec<String>>,

    /// jwt: clock skew tolerated on exp, nbf and iat [default: 30s].
    #[arg(long, env = "SHOAL_JWT_LEEWAY", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub jwt_leeway: Option<Duration>,

    /// jwt: a token with an unknown key id refetches the JWKS at most this often [default: 10s].
    #[arg(long, env = "SHOAL_JWKS_REFETCH_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub jwks_refetch_interval: Option<Duration>,

    /// jwt: the JWKS is refreshed in the background this often [default: 5m].
    #[arg(long, env = "SHOAL_JWKS_REFRESH_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub jwks_refresh_interval: Option<Duration>,

    /// jwt: also serve the authorization server's discovered metadata at
    /// /.well-known/oauth-authorization-server, for clients that look for it there.
    #[arg(long, env = "SHOAL_MIRROR_AS_METADATA")]
    #[serde(default)]
    pub mirror_authorization_server_metadata: bool,

    /// jwt: `resource_name` in the Protected Resource Metadata.
    #[arg(long, env = "SHOAL_RESOURCE_NAME", value_name = "NAME")]
    pub resource_name: Option<String>,

    /// Log format: text or json [default: text]. The filter comes from SHOAL_LOG or RUST_LOG.
    #[arg(long, env = "SHOAL_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// OTLP/HTTP endpoint to export traces to, e.g. `http://collector:4318` (spans go to
    /// `<URL>/v1/traces`) [default: OTEL_EXPORTER_OTLP_ENDPOINT; unset: no export].
    #[arg(long, env = "SHOAL_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

/// Authentication mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication (non-loopback listen addresses need --allow-unauthenticated).
    #[default]
    None,
    /// Static tokens, each naming a principal.
    Static,
    /// JWT access tokens of an OAuth authorization server.
    Jwt,
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
    /// Header limit (names plus values).
    pub max_header_bytes: usize,
    /// JSON nesting limit.
    pub max_json_depth: usize,
    /// GET streams per session per replica.
    pub max_streams_per_session: u64,
    /// Requests in flight per session per replica.
    pub max_in_flight_per_session: u64,
    /// Requests per principal per replica, if limited.
    pub rate_limit: Option<RateLimit>,
    /// Keep-alive idle and header read timeout.
    pub idle_connection_timeout: Duration,
    /// Blocked-write timeout.
    pub write_timeout: Duration,
    /// Idle expiry of sessions.
    pub session_idle_timeout: Duration,
    /// Maximum session lifetime.
    pub session_max_lifetime: Duration,
    /// Live sessions per principal, cluster-wide; 0: unlimited.
    pub max_sessions_per_principal: usize,
    /// Age after which stream events are trimmed.
    pub event_retention: Duration,
    /// Bound on the drain after SIGTERM.
    pub drain_timeout: Duration,
    /// Time spent not ready but serving, before the drain.
    pub shutdown_delay: Duration,
    /// This process's node id, used as is; `None`: the host name plus a random suffix.
    /// [`ServeArgs::resolve`] turns a configured `node_id` (a prefix) into one, adding a
    /// random suffix.
    pub node_id: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// OTLP/HTTP endpoint for traces (flag, SHOAL_OTLP_ENDPOINT, file, then
    /// OTEL_EXPORTER_OTLP_ENDPOINT); none: no export.
    pub otlp_endpoint: Option<String>,
    /// Authentication.
    pub auth: AuthConfig,
    /// Listening on a non-loopback address without authentication (allowed explicitly).
    pub unauthenticated_exposed: bool,
    /// Things worth a warning at start (logging is not set up while configuration resolves).
    pub warnings: Vec<String>,
}

impl ServeArgs {
    /// Fills what flags and environment left unset from the config file, then defaults, and
    /// checks the result. Reads SHOAL_AUTH_TOKENS from the process environment.
    pub fn resolve(self) -> anyhow::Result<Config> {
        self.resolve_with_env(|name| std::env::var(name).ok())
    }

    /// [`ServeArgs::resolve`], with the variables that have no flag read through `env`.
    pub fn resolve_with_env(self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
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
            .clone()
            .or_else(|| file.public_url.clone())
            .unwrap_or_else(|| format!("http://{listen}/mcp"));
        let public_host = public_host(&public_url)?;
        let mut warnings = Vec::new();
        let auth = resolve_auth(&self, &file, &public_url, &env, &mut warnings)?;
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
        let unauthenticated_exposed = auth == AuthConfig::None && !listen.ip().is_loopback();
        if unauthenticated_exposed && !allow_unauthenticated {
            // One line, naming every way out: it is all an operator sees of a container that
            // exits at once (the image's default command takes this branch).
            bail!(
                "refusing to listen on {listen} without authentication (anyone who can reach it \
                 could use every tool): set --auth static with tokens in SHOAL_AUTH_TOKENS or \
                 --auth-tokens-file, or --auth jwt --issuer URL (SHOAL_AUTH, SHOAL_ISSUER), or pass \
                 --allow-unauthenticated (SHOAL_ALLOW_UNAUTHENTICATED=true) if a gateway in front \
                 authenticates clients, or listen on a loopback address"
            );
        }
        // The default public URL names the listen address: on a non-loopback one (a pod IP,
        // 0.0.0.0) the OAuth metadata and challenges would publish an internal address that no
        // client can use as the resource (nor as the token audience).
        let public_url_given = self.public_url.is_some() || file.public_url.is_some();
        if matches!(auth, AuthConfig::Jwt(_)) && !listen.ip().is_loopback() && !public_url_given {
            bail!(
                "--auth jwt on the non-loopback address {listen} needs --public-url: the URL clients \
                 use is the OAuth resource, and the listen address would leak into the metadata"
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
            max_header_bytes: self
                .max_header_bytes
                .or(file.max_header_bytes)
                .unwrap_or(shoal_transport::config::DEFAULT_MAX_HEADER_BYTES),
            max_json_depth: self
                .max_json_depth
                .or(file.max_json_depth)
                .unwrap_or(shoal_transport::config::DEFAULT_MAX_JSON_DEPTH),
            max_streams_per_session: self
                .max_streams_per_session
                .or(file.max_streams_per_session)
                .unwrap_or(shoal_transport::config::DEFAULT_MAX_STREAMS_PER_SESSION),
            max_in_flight_per_session: self
                .max_in_flight_per_session
                .or(file.max_in_flight_per_session)
                .unwrap_or(shoal_transport::config::DEFAULT_MAX_IN_FLIGHT_PER_SESSION),
            rate_limit: resolve_rate_limit(
                self.rate_limit.or(file.rate_limit).as_deref(),
                self.rate_limit_burst.or(file.rate_limit_burst),
            )?,
            idle_connection_timeout: self
                .idle_connection_timeout
                .or(file.idle_connection_timeout)
                .unwrap_or(shoal_transport::config::DEFAULT_IDLE_CONNECTION_TIMEOUT),
            write_timeout: self
                .write_timeout
                .or(file.write_timeout)
                .unwrap_or(shoal_transport::config::DEFAULT_WRITE_TIMEOUT),
            session_idle_timeout: self
                .session_idle_timeout
                .or(file.session_idle_timeout)
                .unwrap_or(DEFAULT_SESSION_IDLE_TIMEOUT),
            session_max_lifetime: self
                .session_max_lifetime
                .or(file.session_max_lifetime)
                .unwrap_or(DEFAULT_SESSION_MAX_LIFETIME),
            max_sessions_per_principal: self
                .max_sessions_per_principal
                .or(file.max_sessions_per_principal)
                .unwrap_or(shoal_core::engine::DEFAULT_MAX_SESSIONS_PER_PRINCIPAL),
            event_retention: self
                .event_retention
                .or(file.event_retention)
                .unwrap_or(DEFAULT_EVENT_RETENTION),
            drain_timeout: self
                .drain_timeout
                .or(file.drain_timeout)
                .unwrap_or(DEFAULT_DRAIN_TIMEOUT),
            shutdown_delay: self
                .shutdown_delay
                .or(file.shutdown_delay)
                .unwrap_or(Duration::ZERO),
            // Per process: a reader decides that a stream's writer died when no process holds
            // the writer's node id. A crashed pod restarted in place under its old name would
            // otherwise keep its dead predecessor's streams open for ever, unanswered.
            node_id: self
                .node_id
                .or(file.node_id)
                .map(|prefix| NodeId::with_random_suffix(&prefix).to_string()),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            otlp_endpoint: self
                .otlp_endpoint
                .or(file.otlp_endpoint)
                .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
                .filter(|url| !url.trim().is_empty()),
            auth,
            unauthenticated_exposed,
            warnings,
        };
        if config.max_body_bytes < 1024 {
            bail!(
                "--max-body-bytes must be at least 1024 (got {})",
                config.max_body_bytes
            );
        }
        if config.max_header_bytes < 1024 {
            bail!(
                "--max-header-bytes must be at least 1024 (got {})",
                config.max_header_bytes
            );
        }
        if config.max_json_depth == 0
            || config.max_streams_per_session == 0
            || config.max_in_flight_per_session == 0
        {
            bail!(
                "--max-json-depth, --max-streams-per-session and --max-in-flight-per-session must \
                 be at least 1"
            );
        }
        if config.idle_connection_timeout.is_zero() || config.write_timeout.is_zero() {
            bail!("--idle-connection-timeout and --write-timeout must be greater than zero");
        }
        if config.session_idle_timeout.is_zero() || config.session_max_lifetime.is_zero() {
            bail!("session timeouts must be greater than zero");
        }
        if config.event_retention < Duration::from_millis(1) {
            bail!("--event-retention must be at least 1ms");
        }
        Ok(config)
    }
}

/// `--rate-limit` with its optional `--rate-limit-burst`.
fn resolve_rate_limit(
    rate: Option<&str>,
    burst: Option<NonZeroU32>,
) -> anyhow::Result<Option<RateLimit>> {
    let Some(rate) = rate.map(str::trim).filter(|r| !r.is_empty() && *r != "off") else {
        if burst.is_some() {
            bail!("--rate-limit-burst needs --rate-limit");
        }
        return Ok(None);
    };
    let mut limit: RateLimit = rate
        .parse()
        .map_err(|error| anyhow::anyhow!("--rate-limit: {error}"))?;
    if let Some(burst) = burst {
        limit.burst = burst;
    }
    Ok(Some(limit))
}

/// The auth settings: flags and environment first, then the file.
fn resolve_auth(
    args: &ServeArgs,
    file: &ServeArgs,
    public_url: &str,
    env: &impl Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<AuthConfig> {
    let mode = args.auth.or(file.auth).unwrap_or_default();
    let issuer = args.issuer.clone().or_else(|| file.issuer.clone());
    let tokens_file = args
        .auth_tokens_file
        .clone()
        .or_else(|| file.auth_tokens_file.clone());
    let auth_header = args
        .auth_header
        .clone()
        .or_else(|| file.auth_header.clone());
    let required_scopes = args
        .required_scopes
        .clone()
        .or_else(|| file.required_scopes.clone())
        .unwrap_or_default();
    let required_scopes: Vec<String> = required_scopes
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let mut tool_scopes = file.tool_scopes.clone().unwrap_or_default();
    for entry in args.tool_scope.iter().filter(|e| !e.trim().is_empty()) {
        let Some((tool, scopes)) = entry.split_once('=') else {
            bail!("--tool-scope {entry:?} is not TOOL=SCOPE[ SCOPE...]");
        };
        tool_scopes.insert(
            tool.trim().to_owned(),
            scopes.split_whitespace().map(str::to_owned).collect(),
        );
    }
    for scope in required_scopes.iter().chain(tool_scopes.values().flatten()) {
        auth_config::check_scope(scope)?;
    }
    if mode != AuthMode::Jwt {
        if issuer.is_some() {
            bail!("--issuer is set but --auth is not jwt; pass --auth jwt");
        }
        if !required_scopes.is_empty() || tool_scopes.values().any(|s| !s.is_empty()) {
            bail!(
                "--required-scopes and tool scopes need --auth jwt (static tokens have no scopes)"
            );
        }
    }
    if mode != AuthMode::Static && tokens_file.is_some() {
        bail!("--auth-tokens-file is set but --auth is not static; pass --auth static");
    }
    match mode {
        AuthMode::None => Ok(AuthConfig::None),
        AuthMode::Static => {
            let mut tokens = StaticTokens::new();
            if let Some(path) = &tokens_file
                && tokens.insert_file(path)?
            {
                warnings.push(format!(
                    "the tokens file {} is readable by every user; chmod 600 it",
                    path.display()
                ));
            }
            if let Some(value) = env(ENV_AUTH_TOKENS) {
                tokens.insert_env(ENV_AUTH_TOKENS, &value)?;
            }
            if tokens.is_empty() {
                return Err(shoal_auth::Error::NoTokens.into());
            }
            let header = auth_header
                .as_deref()
                .map(auth_config::parse_header_name)
                .transpose()?;
            if header.is_none() {
                tokens.check_bearer_syntax()?;
            }
            Ok(AuthConfig::Static(StaticConfig { tokens, header }))
        }
        AuthMode::Jwt => {
            let Some(issuer) = issuer else {
                return Err(shoal_auth::Error::MissingIssuer.into());
            };
            if auth_header.is_some() {
                bail!("--auth-header is for --auth static; JWTs travel in Authorization: Bearer");
            }
            let audience = args
                .audience
                .clone()
                .or_else(|| file.audience.clone())
                .unwrap_or_else(|| public_url.trim_end_matches('/').to_owned());
            let mut config = JwtConfig::new(issuer, audience);
            if let Some(names) = args
                .jwt_algorithms
                .as_ref()
                .or(file.jwt_algorithms.as_ref())
            {
                config.algorithms = auth_config::parse_algorithms(names)?;
            }
            config.jwks_url = args.jwks_url.clone().or_else(|| file.jwks_url.clone());
            config.required_scopes = required_scopes;
            config.tool_scopes = tool_scopes;
            config.require_at_jwt = args.require_at_jwt || file.require_at_jwt;
            config.mirror_authorization_server_metadata = args.mirror_authorization_server_metadata
                || file.mirror_authorization_server_metadata;
            config.resource_name = args
                .resource_name
                .clone()
                .or_else(|| file.resource_name.clone());
            if let Some(leeway) = args.jwt_leeway.or(file.jwt_leeway) {
                config.leeway = leeway;
            }
            if let Some(interval) = args.jwks_refetch_interval.or(file.jwks_refetch_interval) {
                config.jwks_refetch_interval = interval;
            }
            if let Some(interval) = args.jwks_refresh_interval.or(file.jwks_refresh_interval) {
                if interval.is_zero() {
                    bail!("--jwks-refresh-interval must be greater than zero");
                }
                config.jwks_refresh_interval = interval;
            }
            Ok(AuthConfig::Jwt(config))
        }
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
    fn sessions_per_principal_from_flag_file_or_default() {
        let config = ServeArgs::default().resolve().unwrap();
        assert_eq!(config.max_sessions_per_principal, 100);
        let dir = std::env::temp_dir().join(format!("shoal-sessions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shoal.toml");
        std::fs::write(&path, "max_sessions_per_principal = 0\n").unwrap();
        let file = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert_eq!(file.resolve().unwrap().max_sessions_per_principal, 0);
        let flag = ServeArgs {
            config: Some(path),
            max_sessions_per_principal: Some(7),
            ..Default::default()
        };
        assert_eq!(flag.resolve().unwrap().max_sessions_per_principal, 7);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn limits_from_file_flag_or_default() {
        let config = ServeArgs::default().resolve().unwrap();
        assert_eq!(config.max_header_bytes, 16 * 1024);
        assert_eq!(config.max_json_depth, 64);
        assert_eq!(config.max_streams_per_session, 8);
        assert_eq!(config.max_in_flight_per_session, 64);
        assert_eq!(config.rate_limit, None);
        assert_eq!(config.idle_connection_timeout, Duration::from_secs(60));
        assert_eq!(config.write_timeout, Duration::from_secs(30));
        let dir = std::env::temp_dir().join(format!("shoal-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shoal.toml");
        std::fs::write(
            &path,
            "max_header_bytes = 4096\nmax_json_depth = 10\nmax_streams_per_session = 2\n\
             max_in_flight_per_session = 3\nrate_limit = \"600/m\"\nrate_limit_burst = 20\n\
             idle_connection_timeout = \"5s\"\nwrite_timeout = \"2s\"\n",
        )
        .unwrap();
        let file = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!((file.max_header_bytes, file.max_json_depth), (4096, 10));
        assert_eq!(
            (file.max_streams_per_session, file.max_in_flight_per_session),
            (2, 3)
        );
        let rate = file.rate_limit.unwrap();
        assert_eq!(
            (rate.to_string(), rate.burst.get()),
            ("600/m".to_owned(), 20)
        );
        assert_eq!(file.idle_connection_timeout, Duration::from_secs(5));
        assert_eq!(file.write_timeout, Duration::from_secs(2));
        let flag = ServeArgs {
            config: Some(path),
            rate_limit: Some("5/s".into()),
            max_json_depth: Some(7),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(flag.max_json_depth, 7);
        // The flag's rate, the file's burst.
        let rate = flag.rate_limit.unwrap();
        assert_eq!((rate.to_string(), rate.burst.get()), ("5/s".to_owned(), 20));
        let _ = std::fs::remove_dir_all(&dir);
    }

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
    fn every_process_gets_its_own_node_id_from_the_configured_prefix() {
        let args = || ServeArgs {
            node_id: Some("pod-7".into()),
            ..Default::default()
        };
        let first = args().resolve().unwrap().node_id.unwrap();
        let restarted = args().resolve().unwrap().node_id.unwrap();
        assert!(first.starts_with("pod-7-"), "{first}");
        assert!(restarted.starts_with("pod-7-"), "{restarted}");
        // A restarted process must not be taken for its dead predecessor (found by the
        // `kill9` fault scenario: calls whose handler died were never answered).
        assert_ne!(first, restarted);
        assert_eq!(ServeArgs::default().resolve().unwrap().node_id, None);
    }

    #[test]
    fn event_retention_defaults_to_ten_minutes_and_refuses_zero() {
        let config = ServeArgs::default().resolve().unwrap();
        assert_eq!(config.event_retention, Duration::from_secs(600));
        let short = ServeArgs {
            event_retention: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        assert_eq!(
            short.resolve().unwrap().event_retention,
            Duration::from_secs(3)
        );
        let zero = ServeArgs {
            event_retention: Some(Duration::ZERO),
            ..Default::default()
        };
        let error = zero.resolve().unwrap_err().to_string();
        assert!(error.contains("--event-retention"), "{error}");
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

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn auth_none_needs_loopback_or_the_explicit_flag() {
        let config = ServeArgs::default().resolve_with_env(no_env).unwrap();
        assert_eq!(config.auth, AuthConfig::None);
        assert!(!config.unauthenticated_exposed);
        let exposed = ServeArgs {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            allow_unauthenticated: true,
            ..Default::default()
        };
        assert!(
            exposed
                .resolve_with_env(no_env)
                .unwrap()
                .unauthenticated_exposed
        );
        let with_auth = ServeArgs {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            auth: Some(AuthMode::Static),
            ..Default::default()
        };
        let env = |name: &str| (name == ENV_AUTH_TOKENS).then(|| "ci=tok-1,ops=tok-2".to_owned());
        let config = with_auth.resolve_with_env(env).unwrap();
        assert!(
            !config.unauthenticated_exposed,
            "auth makes a public listen fine"
        );
        let AuthConfig::Static(settings) = &config.auth else {
            panic!("static")
        };
        assert_eq!(settings.tokens.verify("tok-2"), Some("ops"));
        assert!(
            !format!("{config:?}").contains("tok-1"),
            "tokens never reach a log"
        );
    }

    #[test]
    fn static_tokens_from_a_file_and_a_custom_header() {
        let dir = std::env::temp_dir().join(format!("shoal-auth-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(&path, "# team\nalice a-token\n").unwrap();
        let args = ServeArgs {
            auth: Some(AuthMode::Static),
            auth_tokens_file: Some(path.clone()),
            auth_header: Some("X-API-Key".into()),
            ..Default::default()
        };
        let config = args.resolve_with_env(no_env).unwrap();
        let AuthConfig::Static(settings) = &config.auth else {
            panic!("static")
        };
        assert_eq!(settings.header.as_ref().unwrap().as_str(), "x-api-key");
        assert_eq!(settings.tokens.verify("a-token"), Some("alice"));
        let empty = ServeArgs {
            auth: Some(AuthMode::Static),
            ..Default::default()
        };
        assert!(
            empty
                .resolve_with_env(no_env)
                .unwrap_err()
                .to_string()
                .contains("at least one token")
        );
    }

    #[test]
    fn jwt_settings_and_defaults() {
        let dir = std::env::temp_dir().join(format!("shoal-jwt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shoal.toml");
        std::fs::write(
            &path,
            "auth = \"jwt\"\nissuer = \"https://kc.example.com/realms/mcp\"\n\
             [tool_scopes]\necho = [\"mcp:echo\"]\ncount = [\"mcp:count\"]\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            public_url: Some("https://mcp.example.com/mcp/".into()),
            tool_scope: vec!["echo=mcp:echo mcp:extra".into()],
            required_scopes: Some(vec!["mcp:use".into()]),
            ..Default::default()
        };
        let config = args.resolve_with_env(no_env).unwrap();
        let AuthConfig::Jwt(jwt) = &config.auth else {
            panic!("jwt")
        };
        assert_eq!(jwt.issuer, "https://kc.example.com/realms/mcp");
        assert_eq!(
            jwt.audience, "https://mcp.example.com/mcp",
            "no trailing slash"
        );
        assert_eq!(jwt.required_scopes, ["mcp:use"]);
        assert_eq!(
            jwt.tool_scopes["echo"],
            ["mcp:echo", "mcp:extra"],
            "the flag wins"
        );
        assert_eq!(jwt.tool_scopes["count"], ["mcp:count"]);
        assert_eq!(jwt.leeway, Duration::from_secs(30));
        assert_eq!(
            jwt.algorithms,
            shoal_auth::config::DEFAULT_ALGORITHMS.to_vec()
        );

        for (args, needle) in [
            (
                ServeArgs {
                    auth: Some(AuthMode::Jwt),
                    ..Default::default()
                },
                "--issuer",
            ),
            (
                ServeArgs {
                    auth: Some(AuthMode::Jwt),
                    issuer: Some("https://as.example.com".into()),
                    jwt_algorithms: Some(vec!["RS256".into(), "HS256".into()]),
                    ..Default::default()
                },
                "HS256",
            ),
            (
                ServeArgs {
                    auth: Some(AuthMode::Jwt),
                    issuer: Some("https://as.example.com".into()),
                    jwt_algorithms: Some(vec!["none".into()]),
                    ..Default::default()
                },
                "none",
            ),
            (
                ServeArgs {
                    issuer: Some("https://as.example.com".into()),
                    ..Default::default()
                },
                "--auth jwt",
            ),
            (
                ServeArgs {
                    required_scopes: Some(vec!["a".into()]),
                    ..Default::default()
                },
                "--auth jwt",
            ),
        ] {
            let error = args.resolve_with_env(no_env).unwrap_err();
            assert!(format!("{error:#}").contains(needle), "{error:#}");
        }
    }
}
