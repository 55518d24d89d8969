//! `shoal serve`'s flags: the top layer of the facade's settings, plus the binary's own knobs
//! (the built-in tool sets and telemetry).
//!
//! Flags are kept as the text typed and checked by the facade with every other layer, so that
//! a bad flag is reported with the bad variables and file keys of the same start. Each flag's
//! variable is added to `--help` from the facade's naming rule ([`with_variables_in_help`]).

use std::path::PathBuf;

use serde::Serialize;
use shoal::settings::{Reader, Settings, SettingsErrors, Sources, variable_of};

use crate::tools;

/// Settings of `shoal serve`.
// The field docs are `shoal serve --help`, read in a terminal: URLs, `<listen>` and `[::1]` stay
// bare text there, so rustdoc is not to read them as links or HTML.
#[allow(
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct ServeArgs {
    /// TOML file with any of these settings (snake_case keys, e.g. `listen = "0.0.0.0:8080"`;
    /// `[tool_scopes]` then `echo = ["mcp:echo"]` for per-tool scopes).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address of the MCP endpoint [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Public URL of the MCP endpoint as clients see it, e.g. https://mcp.example.com/mcp.
    /// Its host is added to the Host allow-list; required by --auth jwt on a non-loopback
    /// listen address [default: http://<listen>/mcp].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// Where sessions live: `memory` (a single replica) or a Redis URL shared by every replica,
    /// `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS, or a Redis Cluster,
    /// `redis-cluster://[user:password@]host:port` (any one master; `rediss-cluster://` for
    /// TLS) [default: memory].
    #[arg(long, value_name = "memory|URL")]
    pub session_host: Option<String>,

    /// Prefix of every Redis key and channel, so that deployments can share one Redis
    /// [default: shoal].
    #[arg(long, value_name = "PREFIX")]
    pub redis_key_prefix: Option<String>,

    /// Built-in tool sets to serve, comma-separated: demo, conformance [default: demo].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub tools: Option<Vec<String>>,

    /// Address of the admin listener (/healthz, /readyz) [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,

    /// Origins browsers may call from, comma-separated (e.g. https://app.example.com), or *.
    /// Origins whose host is an allowed host always pass; requests without Origin always pass.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,

    /// Extra host names accepted in the Host header, comma-separated, or * (DNS-rebinding
    /// protection) [default: localhost, 127.0.0.1, [::1] and the public URL's host].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,

    /// Largest accepted request body, in bytes [default: 4194304].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<String>,

    /// Largest accepted request headers (names plus values), in bytes; more gets 431
    /// [default: 16384].
    #[arg(long, value_name = "BYTES")]
    pub max_header_bytes: Option<String>,

    /// Deepest accepted nesting of arrays and objects in a request body [default: 64].
    #[arg(long, value_name = "DEPTH")]
    pub max_json_depth: Option<String>,

    /// GET streams one session may hold open on one replica, and listen streams one
    /// principal may hold (2026-07-28); more get 429 [default: 8].
    #[arg(long, value_name = "COUNT")]
    pub max_streams_per_session: Option<String>,

    /// Requests of one session handled (or streaming their reply) at once on one replica,
    /// and stateless requests of one principal (2026-07-28); more get 429 [default: 64].
    #[arg(long, value_name = "COUNT")]
    pub max_in_flight_per_session: Option<String>,

    /// Requests per principal on one replica, e.g. 100/s or 600/m; more get 429 with
    /// Retry-After [default: no limit].
    #[arg(long, value_name = "RATE")]
    pub rate_limit: Option<String>,

    /// Requests a principal may send at once under --rate-limit [default: the per-second rate].
    #[arg(long, value_name = "COUNT")]
    pub rate_limit_burst: Option<String>,

    /// A keep-alive connection waiting this long for its next request (or for the rest of a
    /// request's headers) is closed; open SSE streams are not idle [default: 60s].
    #[arg(long, value_name = "DURATION")]
    pub idle_connection_timeout: Option<String>,

    /// A connection whose writes stay blocked this long (the client stopped reading) is
    /// closed; a stream's client resumes with Last-Event-ID [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub write_timeout: Option<String>,

    /// A session unused this long expires, e.g. 30m, 2h [default: 30m].
    #[arg(long, value_name = "DURATION")]
    pub session_idle_timeout: Option<String>,

    /// A session expires this long after initialize, however busy [default: 24h].
    #[arg(long, value_name = "DURATION")]
    pub session_max_lifetime: Option<String>,

    /// Live sessions one principal may hold across all replicas; more initializes get 429;
    /// 0: unlimited. Sessions without a principal (--auth none) are not counted [default: 100].
    #[arg(long, value_name = "COUNT")]
    pub max_sessions_per_principal: Option<String>,

    /// Events of a stream older than this are trimmed: a client that resumes later gets a
    /// 400, e.g. 10m [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub event_retention: Option<String>,

    /// Multi round-trip requests (2026-07-28): a file holding the key ring that seals their
    /// requestState, `ID:KEY` entries (KEY: 32 bytes in base64, e.g. `openssl rand -base64 32`),
    /// the sealing key first; every replica needs the same ring. It may come from the variable
    /// SHOAL_REQUEST_STATE_KEYS instead, which has no flag so that keys never show in process
    /// lists [default: a key generated by each process, good on one replica only].
    #[arg(long, value_name = "FILE")]
    pub request_state_keys_file: Option<String>,

    /// How long a multi round-trip request's requestState stays good: the time a user has to
    /// answer [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub request_state_ttl: Option<String>,

    /// On SIGTERM, how long in-flight requests may take to finish [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub drain_timeout: Option<String>,

    /// On SIGTERM, how long to keep serving while reporting not ready, so that load balancers
    /// stop sending requests first (a Kubernetes preStop delay) [default: 0s].
    #[arg(long, value_name = "DURATION")]
    pub shutdown_delay: Option<String>,

    /// This replica's node id prefix; every process adds a random suffix to it, so that a
    /// restarted process is never taken for the one that died [default: the host name].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,

    /// Allow listening on a non-loopback address although no authentication is configured.
    #[arg(long)]
    pub allow_unauthenticated: bool,

    /// Authentication: `none`, `static` (tokens from --auth-tokens-file and/or the
    /// SHOAL_AUTH_TOKENS variable), `jwt` (access tokens of --issuer) or `oauth` (Shoal is the
    /// authorization server, users log in at --upstream-issuer) [default: none].
    #[arg(long, value_name = "none|static|jwt|oauth")]
    pub auth: Option<String>,

    /// static: file of `principal-name token` lines (`#` starts a comment; keep it readable by
    /// shoal only). Tokens may also come from the environment variable SHOAL_AUTH_TOKENS
    /// (`name=token,name2=token2`), which has no flag so that tokens never show in process lists.
    #[arg(long, value_name = "FILE")]
    pub auth_tokens_file: Option<String>,

    /// static: read the token from this header (e.g. X-API-Key) instead of
    /// `Authorization: Bearer <token>`.
    #[arg(long, value_name = "NAME")]
    pub auth_header: Option<String>,

    /// jwt: the authorization server's issuer identifier, compared exactly with `iss` and with
    /// the `issuer` of its discovered metadata (e.g. https://kc.example.com/realms/mcp).
    /// http:// only for loopback hosts.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,

    /// jwt: the audience a token's `aud` must contain, compared exactly [default: the public
    /// URL without a trailing slash].
    #[arg(long, value_name = "URL")]
    pub audience: Option<String>,

    /// jwt: the JWKS URL; skips discovery from the issuer [default: the discovered jwks_uri].
    #[arg(long, value_name = "URL")]
    pub jwks_url: Option<String>,

    /// jwt, oauth: scopes every request needs, comma-separated (403 insufficient_scope otherwise).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub required_scopes: Option<Vec<String>>,

    /// jwt, oauth: scopes a tools/call of one tool needs, `TOOL=SCOPE[ SCOPE...]`; repeat the flag
    /// for several tools (the environment variable separates them with `;`). Adds to the
    /// config file's `[tool_scopes]` table (`echo = ["mcp:echo"]`), replacing a tool's entry.
    #[arg(long = "tool-scope", value_name = "TOOL=SCOPES", value_delimiter = ';')]
    #[serde(rename = "tool_scopes", skip_serializing_if = "Vec::is_empty")]
    pub tool_scope: Vec<String>,

    /// jwt: require the RFC 9068 header `typ: at+jwt` (or application/at+jwt).
    #[arg(long)]
    pub require_at_jwt: bool,

    /// jwt: accepted signing algorithms, comma-separated; `none` and HS* are refused
    /// [default: RS256,ES256,EdDSA].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub jwt_algorithms: Option<Vec<String>>,

    /// jwt: clock skew tolerated on exp, nbf and iat [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub jwt_leeway: Option<String>,

    /// jwt: a token with an unknown key id refetches the JWKS at most this often [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub jwks_refetch_interval: Option<String>,

    /// jwt: the JWKS is refreshed in the background this often [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub jwks_refresh_interval: Option<String>,

    /// jwt: also serve the authorization server's discovered metadata at
    /// /.well-known/oauth-authorization-server, for clients that look for it there.
    #[arg(long)]
    pub mirror_authorization_server_metadata: bool,

    /// jwt, oauth: `resource_name` in the Protected Resource Metadata (oauth: also on the
    /// consent page).
    #[arg(long, value_name = "NAME")]
    pub resource_name: Option<String>,

    /// oauth: the OpenID Connect provider users log in at (its issuer URL). Shoal is then the
    /// authorization server of its own endpoint: clients register (dynamically or by a client
    /// metadata document), users sign in upstream and consent, Shoal issues the tokens. Its
    /// client secret there comes from SHOAL_UPSTREAM_CLIENT_SECRET or a file. For a plain
    /// OAuth 2 provider (GitHub-style) give its three endpoints instead.
    #[arg(long, value_name = "URL")]
    pub upstream_issuer: Option<String>,

    /// oauth, a plain OAuth 2 provider instead of --upstream-issuer: where users log in.
    #[arg(long, value_name = "URL")]
    pub upstream_authorization_endpoint: Option<String>,

    /// oauth, a plain OAuth 2 provider: where Shoal redeems the code.
    #[arg(long, value_name = "URL")]
    pub upstream_token_endpoint: Option<String>,

    /// oauth, a plain OAuth 2 provider: where Shoal asks who the user is, with the access
    /// token (GitHub: https://api.github.com/user).
    #[arg(long, value_name = "URL")]
    pub upstream_userinfo_endpoint: Option<String>,

    /// oauth, a plain OAuth 2 provider: the userinfo field naming the user (GitHub: id)
    /// [default: sub].
    #[arg(long, value_name = "FIELD")]
    pub upstream_subject_field: Option<String>,

    /// oauth: how Shoal authenticates at the upstream token endpoint, client_secret_basic
    /// or client_secret_post [default: basic unless the provider lists only post; post for
    /// a plain OAuth 2 provider].
    #[arg(long, value_name = "METHOD")]
    pub upstream_client_auth: Option<String>,

    /// oauth: Shoal's client id at the upstream provider (its redirect URI there is
    /// `<public origin>/oauth/callback`).
    #[arg(long, value_name = "ID")]
    pub upstream_client_id: Option<String>,

    /// oauth: a file holding Shoal's client secret at the upstream provider.
    #[arg(long, value_name = "PATH")]
    pub upstream_client_secret_file: Option<String>,

    /// oauth: scopes asked of the upstream provider, comma-separated (openid is always
    /// added for an OpenID provider) [default: openid,email,profile; none for a plain OAuth 2
    /// provider].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub upstream_scopes: Option<Vec<String>>,

    /// oauth: the load balancers and proxies in front of Shoal, comma-separated CIDR ranges
    /// or addresses: behind one of them a client is the last address of X-Forwarded-For not
    /// in these ranges (for the registration rate limit) [default: none; the header is
    /// ignored].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,

    /// oauth: PKCS#8 PEM file of EC P-256 keys that sign access tokens, the signing one
    /// first; keep a replaced key after it until its tokens expired [default: one key,
    /// generated once and kept in the session host].
    #[arg(long, value_name = "PATH")]
    pub signing_keys_file: Option<String>,

    /// oauth: lifetime of an access token [default: 1h].
    #[arg(long, value_name = "DURATION")]
    pub access_token_ttl: Option<String>,

    /// oauth: lifetime of a refresh token, renewed by each use; 0 issues none [default: 30d].
    #[arg(long, value_name = "DURATION")]
    pub refresh_token_ttl: Option<String>,

    /// oauth: accept Dynamic Client Registration (RFC 7591) at /oauth/register [default: true].
    #[arg(long, value_name = "BOOL")]
    pub dynamic_registration: Option<bool>,

    /// oauth: registrations accepted per source address and minute [default: 10].
    #[arg(long, value_name = "N")]
    pub registrations_per_minute: Option<u32>,

    /// oauth: allowed redirect URI patterns, comma-separated, replacing the defaults
    /// (loopback http on any port, any https URL, private-use schemes); see docs/oauth.md.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub redirect_uri_patterns: Option<Vec<String>>,

    /// oauth: accept Client ID Metadata Documents (client ids that are https URLs)
    /// [default: true].
    #[arg(long, value_name = "BOOL")]
    pub client_metadata_documents: Option<bool>,

    /// oauth: fetch client metadata documents from private and loopback addresses and over
    /// plain http too (tests and closed networks only).
    #[arg(long)]
    pub client_metadata_private_targets: bool,

    /// Log format: text or json [default: text]. The filter comes from SHOAL_LOG or RUST_LOG.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// OTLP/HTTP endpoint to export traces to, e.g. `http://collector:4318` (spans go to
    /// `<URL>/v1/traces`) [default: OTEL_EXPORTER_OTLP_ENDPOINT; unset: no export].
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

impl ServeArgs {
    /// The facade's sources with these flags on top: the process's `SHOAL_*` variables, the
    /// file `--config` (or `SHOAL_CONFIG`) names.
    pub fn sources(&self) -> Sources {
        self.sources_over(Sources::from_env())
    }

    /// These flags on top of `sources`.
    pub fn sources_over(&self, sources: Sources) -> Sources {
        let mut sources = match &self.config {
            Some(path) => sources.file(path),
            None => sources,
        };
        // The flags' names are the knobs' keys; unset flags serialize as null or false.
        let serde_json::Value::Object(flags) = serde_json::to_value(self).unwrap_or_default()
        else {
            return sources;
        };
        for (key, value) in flags {
            sources = match value {
                serde_json::Value::String(text) => sources.flag(&key, text),
                serde_json::Value::Number(number) => sources.flag(&key, number.to_string()),
                serde_json::Value::Bool(true) => sources.switch(&key),
                serde_json::Value::Array(values) => sources.flag_list(
                    &key,
                    values
                        .into_iter()
                        .filter_map(|value| value.as_str().map(str::to_owned))
                        .collect(),
                ),
                _ => sources,
            };
        }
        sources
    }

    /// Every setting, the facade's and the binary's, checked together.
    ///
    /// # Errors
    ///
    /// Every wrong setting, together.
    pub fn resolve(&self) -> Result<(Settings, BinarySettings), SettingsErrors> {
        self.sources().resolve_with(BinarySettings::read)
    }
}

/// The knobs of the binary alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinarySettings {
    /// The built-in tool sets served.
    pub tools: Vec<String>,
    /// How logs are written.
    pub log_format: LogFormat,
    /// OTLP/HTTP endpoint for traces (the flag, `SHOAL_OTLP_ENDPOINT`, the file, then
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`); none: no export.
    pub otlp_endpoint: Option<String>,
}

/// The tool sets served when none are named.
const DEFAULT_TOOLS: &str = "demo";

impl BinarySettings {
    /// Reads the binary's knobs; `None` when one is wrong (the reader holds why).
    pub fn read(reader: &mut Reader<'_>) -> Option<BinarySettings> {
        let tools = reader
            .list("tools", ',')
            .unwrap_or_else(|| vec![DEFAULT_TOOLS.to_owned()]);
        let names = tools::NAMES.join(", ");
        let mut known = true;
        if tools.is_empty() {
            reader.refuse("tools", format!("names no tool set; choose from: {names}"));
            known = false;
        }
        for name in tools.iter().filter(|name| tools::by_name(name).is_none()) {
            reader.refuse(
                "tools",
                format!("names an unknown tool set {name:?}; choose from: {names}"),
            );
            known = false;
        }
        let log_format = match reader.text("log_format").as_deref().map(str::trim) {
            None | Some("text") => Some(LogFormat::Text),
            Some("json") => Some(LogFormat::Json),
            Some(other) => {
                reader.refuse(
                    "log_format",
                    format!("must be text or json (got {other:?})"),
                );
                None
            }
        };
        let otlp_endpoint = reader
            .text("otlp_endpoint")
            .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
            .filter(|url| !url.trim().is_empty());
        Some(BinarySettings {
            tools: known.then_some(tools)?,
            log_format: log_format?,
            otlp_endpoint,
        })
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `serve`'s `--help` with each flag's variable, as `[env: SHOAL_LISTEN]`.
pub fn with_variables_in_help(serve: clap::Command) -> clap::Command {
    serve.mut_args(|arg| {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            return arg;
        }
        let key = if id == "tool_scope" {
            "tool_scopes"
        } else {
            id
        };
        let variable = variable_of(key);
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let long_help = arg.get_long_help().map(ToString::to_string);
        let arg = arg.help(format!("{help} [env: {variable}]"));
        match long_help {
            Some(long) => arg.long_help(format!("{long} [env: {variable}]")),
            None => arg,
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use shoal_auth::AuthConfig;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn settings(args: &[&str]) -> Settings {
        let command =
            Command::try_parse_from(std::iter::once("shoal").chain(args.iter().copied())).unwrap();
        let sources = command.serve.sources_over(Sources::from_variables([(
            "SHOAL_UPSTREAM_CLIENT_SECRET".to_owned(),
            "s3cret".to_owned(),
        )]));
        sources.resolve().unwrap()
    }

    #[test]
    fn flags_of_every_kind_reach_the_settings() {
        let settings = settings(&[
            "--auth",
            "oauth",
            "--upstream-issuer",
            "https://accounts.example.com",
            "--upstream-client-id",
            "shoal",
            // A number, a list, a switch and a text.
            "--registrations-per-minute",
            "3",
            "--trusted-proxies",
            "10.0.0.0/8,192.0.2.1",
            "--client-metadata-private-targets",
            "--access-token-ttl",
            "5m",
        ]);
        let AuthConfig::OAuth(oauth) = &settings.auth else {
            panic!("oauth: {:?}", settings.auth)
        };
        assert_eq!(oauth.registrations_per_minute, 3);
        assert_eq!(oauth.trusted_proxies.len(), 2);
        assert!(oauth.client_metadata_private_targets);
        assert_eq!(oauth.access_token_ttl, std::time::Duration::from_secs(300));
    }
}
