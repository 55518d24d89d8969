//! OAuth clients of Shoal's authorization server: what is kept of each ([`Client`]), which
//! redirect URIs the operator accepts ([`RedirectPolicy`]), Dynamic Client Registration
//! (RFC 7591, [`register`]) and the redirect URI check of an authorization request
//! ([`check_redirect`]).
//!
//! # Redirect URI patterns
//!
//! Every redirect URI must first have a safe shape, whatever the policy says:
//!
//! - at most [`MAX_URI_BYTES`] bytes, an absolute URI without a fragment (not even an empty
//!   `#`) and without userinfo (`user:pass@`);
//! - scheme `https` (with a host), `http` to a loopback host only (`localhost`, `127.0.0.0/8`,
//!   `[::1]`), or a private-use scheme, which contains a dot (`com.example.app:/callback`,
//!   RFC 8252 §7.1); any other scheme (`javascript:`, `data:`, `file:`…) is refused;
//! - in canonical form: the string a WHATWG URL parser gives back for it, so that the string
//!   compared here is the place a browser goes (no `\`, dot segments, upper-case hosts, default
//!   ports or stray percent-encodings). The one allowed difference is the `/` a parser adds to
//!   an empty path (`http://127.0.0.1:33418`).
//!
//! Then it must match one of the policy's patterns:
//!
//! - `https://app.example.com/callback`: this exact string (any URI without a `*`).
//! - `SCHEME://HOST[:PORT]/PATH*`: a `*` at the end, right after a `/`, matches any rest of
//!   the path and query (`https://app.example.com/oauth/*`).
//! - `http://127.0.0.1:*/…`: a `*` port matches any port (and the default one); only for the
//!   loopback hosts `127.0.0.1`, `[::1]` and `localhost`.
//! - `https://*/…`: a `*` host matches any host and port (`https` only).
//! - `com.example.app:*`: any URI of that private-use scheme; `*:*`: any URI of any
//!   private-use scheme.
//!
//! The defaults ([`RedirectPolicy::DEFAULT_PATTERNS`]) let the usual clients in out of the
//! box: loopback `http` on any port and path (RFC 8252 §7.3), any `https` URL and any
//! private-use scheme. An operator's list replaces them.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use url::{Host, Url};

/// The largest registration request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// The longest redirect URI, `client_uri` or `logo_uri`, in bytes.
pub const MAX_URI_BYTES: usize = 2048;
/// The longest `client_name`, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest `scope` value, in bytes.
pub const MAX_SCOPE_BYTES: usize = 1024;
/// Random bytes in a generated `client_id` (32 base64url characters).
const CLIENT_ID_BYTES: usize = 24;
/// Random bytes in a generated client secret (43 base64url characters).
const SECRET_BYTES: usize = 32;
/// How much of a client's string an error description quotes.
const QUOTE_CHARS: usize = 100;

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// A public client: no secret (it proves itself with PKCE).
    None,
    /// The secret in HTTP Basic authentication.
    ClientSecretBasic,
    /// The secret in the form body.
    ClientSecretPost,
}

impl TokenEndpointAuthMethod {
    /// Its name in metadata (`none`, `client_secret_basic`, `client_secret_post`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEndpointAuthMethod::None => "none",
            TokenEndpointAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenEndpointAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(TokenEndpointAuthMethod::None),
            "client_secret_basic" => Some(TokenEndpointAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(TokenEndpointAuthMethod::ClientSecretPost),
            _ => None,
        }
    }
}

/// A grant type the server issues tokens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
}

impl GrantType {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            _ => None,
        }
    }
}

/// A response type of the authorization endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// `code`: the only one of OAuth 2.1.
    Code,
}

/// Where a client's metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientOrigin {
    /// Dynamic Client Registration (RFC 7591).
    Registered,
    /// A Client ID Metadata Document fetched from the `client_id` URL.
    MetadataDocument,
}

/// A client as the server keeps it (as JSON). It never holds a secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The `client_id`: generated at registration, or the metadata document's URL.
    pub client_id: String,
    /// Lower-case hex SHA-256 of the client secret, for confidential clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_sha256: Option<String>,
    /// The registered redirect URIs, compared exactly ([`check_redirect`]).
    pub redirect_uris: Vec<String>,
    /// A name to show the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The client's home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// The client's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// The scopes the client may ask for, space-separated; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Always holds `authorization_code`.
    pub grant_types: Vec<GrantType>,
    /// Always `[code]`.
    pub response_types: Vec<ResponseType>,
    /// How it authenticates at the token endpoint.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// When it was registered or its document fetched, in seconds since the Unix epoch.
    pub client_id_issued_at: u64,
    /// Registration or metadata document.
    pub origin: ClientOrigin,
}

impl Client {
    /// Whether `presented` is this client's secret, compared in constant time (of the
    /// digests). Always false for a client without a secret.
    pub fn verify_secret(&self, presented: &str) -> bool {
        let Some(stored) = &self.client_secret_sha256 else {
            return false;
        };
        let presented = sha256_hex(presented);
        bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
    }

    /// Whether the client may use refresh tokens.
    pub fn allows_refresh(&self) -> bool {
        self.grant_types.contains(&GrantType::RefreshToken)
    }
}

fn sha256_hex(secret: &str) -> String {
    digest(&SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // The thread RNG is a CSPRNG seeded by the OS (rand's `ThreadRng`).
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// At most [`QUOTE_CHARS`] characters of a client's string, for error descriptions.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((at, _)) => format!("{:?}…", &text[..at]),
        None => format!("{text:?}"),
    }
}

// === RedirectPolicy ===

/// Why a redirect URI is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefusal {
    /// Longer than [`MAX_URI_BYTES`].
    #[error("it is longer than {MAX_URI_BYTES} bytes")]
    TooLong,
    /// Not an absolute URI.
    #[error("it is not an absolute URI")]
    NotAUri,
    /// Holds a `#`.
    #[error("it has a fragment (#), which a redirect URI must not have")]
    Fragment,
    /// Holds `user:pass@`.
    #[error("it has userinfo (user@), which a redirect URI must not have")]
    Userinfo,
    /// Neither `http`, `https` nor a private-use scheme.
    #[error(
        "its scheme {0:?} is refused: use https, http to a loopback host, or a private-use scheme with a dot (com.example.app)"
    )]
    Scheme(String),
    /// `http://` to a host that is not loopback.
    #[error("http is allowed for loopback hosts (127.0.0.1, [::1], localhost) only: use https")]
    HttpNotLoopback,
    /// `https` (or `http`) without a host.
    #[error("it has no host")]
    NoHost,
    /// Not what a URL parser gives back for it.
    #[error("it is not in canonical form; write it as {0:?}")]
    NotCanonical(String),
    /// A safe URI that no pattern of the operator's policy matches.
    #[error("the server's redirect URI policy does not allow it")]
    NotAllowed,
}

/// A redirect URI pattern the policy cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect URI pattern {pattern:?} is invalid: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub reason: &'static str,
}

/// Every invalid pattern of a list given to [`RedirectPolicy::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PolicyError(pub Vec<PatternError>);

/// The operator's allow-list of redirect URIs (see the module docs for the pattern syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectPolicy {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Web {
        https: bool,
        /// `None`: any host.
        host: Option<String>,
        port: PortPattern,
        /// The path and query, or their prefix when `tail` is set.
        path: String,
        tail: bool,
    },
    /// `None`: any private-use scheme.
    PrivateUse(Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Default,
    Exact(u16),
    Any,
}

impl Default for RedirectPolicy {
    fn default() -> Self {
        // The defaults are valid patterns: the unit tests parse them.
        let patterns = Self::DEFAULT_PATTERNS
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect();
        RedirectPolicy { patterns }
    }
}

impl RedirectPolicy {
    /// The defaults: loopback `http` on any port and path, any `https` URL, any private-use
    /// scheme.
    pub const DEFAULT_PATTERNS: [&'static str; 5] = [
        "http://127.0.0.1:*/*",
        "http://[::1]:*/*",
        "http://localhost:*/*",
        "https://*/*",
        "*:*",
    ];

    /// A policy of exactly `patterns` (replacing the defaults).
    ///
    /// # Errors
    ///
    /// Every pattern that is not of the documented syntax, or that would allow an unsafe URI
    /// (`http` to another host than loopback, a fragment, userinfo, another scheme).
    pub fn new<I, S>(patterns: I) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        for pattern in patterns {
            match Pattern::parse(pattern.as_ref()) {
                Ok(p) => parsed.push(p),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(RedirectPolicy { patterns: parsed })
        } else {
            Err(PolicyError(errors))
        }
    }

    /// Whether `uri` may be registered as a redirect URI.
    ///
    /// # Errors
    ///
    /// Why not: an unsafe shape, or no matching pattern.
    pub fn check(&self, uri: &str) -> Result<(), RedirectRefusal> {
        let url = safe_redirect_uri(uri)?;
        if self.patterns.iter().any(|p| p.matches(uri, &url)) {
            Ok(())
        } else {
            Err(RedirectRefusal::NotAllowed)
        }
    }
}

fn is_loopback_host(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(name)) => name == "localhost",
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn is_private_use_scheme(scheme: &str) -> bool {
    scheme.contains('.')
}

/// Checks what every redirect URI must be (module docs), whatever the policy.
fn safe_redirect_uri(uri: &str) -> Result<Url, RedirectRefusal> {
    if uri.len() > MAX_URI_BYTES {
        return Err(RedirectRefusal::TooLong);
    }
    let url = Url::parse(uri).map_err(|_| RedirectRefusal::NotAUri)?;
    if uri.contains('#') || url.fragment().is_some() {
        return Err(RedirectRefusal::Fragment);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectRefusal::Userinfo);
    }
    match url.scheme() {
        "https" if url.host().is_none() => return Err(RedirectRefusal::NoHost),
        "https" => {}
        "http" if url.host().is_none() => return Err(RedirectRefusal::NoHost),
        "http" if !is_loopback_host(url.host()) => return Err(RedirectRefusal::HttpNotLoopback),
        "http" => {}
        scheme if is_private_use_scheme(scheme) => {}
        scheme => return Err(RedirectRefusal::Scheme(scheme.to_owned())),
    }
    let canonical = url.as_str();
    let added_slash = url.path() == "/"
        && url.query().is_none()
        && canonical.len() == uri.len() + 1
        && canonical.ends_with('/')
        && canonical.starts_with(uri);
    if canonical != uri && !added_slash {
        return Err(RedirectRefusal::NotCanonical(canonical.to_owned()));
    }
    Ok(url)
}

// === impl Pattern ===

impl Pattern {
    fn parse(pattern: &str) -> Result<Pattern, PatternError> {
        let error = |reason| PatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        if !pattern.contains('*') {
            return match safe_redirect_uri(pattern) {
                Ok(_) => Ok(Pattern::Exact(pattern.to_owned())),
                Err(RedirectRefusal::NotCanonical(_)) => Err(error(
                    "it is not in canonical form, so no redirect URI could match it",
                )),
                Err(_) => Err(error(
                    "it is not a safe redirect URI (https, http to a loopback host, or a private-use scheme; no fragment, no userinfo)",
                )),
            };
        }
        if pattern.contains('#') {
            return Err(error("a fragment (#) is never allowed"));
        }
        if let Some(rest) = pattern.strip_prefix("https://") {
            Self::parse_web(true, rest).map_err(error)
        } else if let Some(rest) = pattern.strip_prefix("http://") {
            Self::parse_web(false, rest).map_err(error)
        } else if pattern == "*:*" {
            Ok(Pattern::PrivateUse(None))
        } else if let Some(scheme) = pattern.strip_suffix(":*") {
            let valid = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
                && scheme.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
                });
            if valid && is_private_use_scheme(scheme) {
                Ok(Pattern::PrivateUse(Some(scheme.to_owned())))
            } else {
                Err(error(
                    "a scheme wildcard needs a lower-case private-use scheme with a dot (com.example.app:*)",
                ))
            }
        } else {
            Err(error(
                "a wildcard is allowed in http(s):// patterns (host, loopback port, path end) or as SCHEME:* and *:*",
            ))
        }
    }

    /// `HOST[:PORT]/PATH[*]` of an `http(s)://` pattern.
    fn parse_web(https: bool, rest: &str) -> Result<Pattern, &'static str> {
        let Some(slash) = rest.find('/') else {
            return Err("it needs a path (at least /)");
        };
        let (authority, path) = rest.split_at(slash);
        if authority.contains('@') {
            return Err("userinfo (@) is never allowed");
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((ip, "")) => (format!("[{ip}]"), None),
                Some((ip, port)) => match port.strip_prefix(':') {
                    Some(port) => (format!("[{ip}]"), Some(port)),
                    None => return Err("invalid host"),
                },
                None => return Err("invalid host"),
            },
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (authority.to_owned(), None),
            },
        };
        let host = if host == "*" {
            if !https {
                return Err("a wildcard host is allowed with https only");
            }
            None
        } else {
            // The host as a parser writes it (lower case, IPv6 compressed): a pattern that
            // differs would never match.
            let parsed = Url::parse(&format!("http://{host}/")).map_err(|_| "invalid host")?;
            let canonical = parsed.host_str().unwrap_or_default().to_owned();
            if canonical != host {
                return Err("the host is not in canonical form (lower case, compressed IPv6)");
            }
            Some(canonical)
        };
        let loopback = matches!(host.as_deref(), Some("127.0.0.1" | "[::1]" | "localhost"));
        if !https && !loopback {
            return Err(
                "http is allowed for the loopback hosts 127.0.0.1, [::1] and localhost only",
            );
        }
        let default_port = if https { 443 } else { 80 };
        let port = match port {
            // A wildcard host is any origin: any port too.
            None if host.is_none() => PortPattern::Any,
            Some(_) if host.is_none() => {
                return Err("a wildcard host takes no port (it matches any)");
            }
            None => PortPattern::Default,
            Some("*") if loopback => PortPattern::Any,
            Some("*") => return Err("a wildcard port is allowed for loopback hosts only"),
            Some(port) => match port.parse::<u16>() {
                Ok(p) if p.to_string() != port => return Err("the port is not in canonical form"),
                Ok(p) if p == default_port => PortPattern::Default,
                Ok(p) => PortPattern::Exact(p),
                Err(_) => return Err("invalid port"),
            },
        };
        let (path, tail) = match path.strip_suffix('*') {
            Some(prefix) if !prefix.ends_with('/') => {
                return Err("a path wildcard must follow a / (https://host/path/*)");
            }
            Some(prefix) => (prefix, true),
            None => (path, false),
        };
        if path.contains('*') {
            return Err("a wildcard in a path is allowed only at its end, after a /");
        }
        Ok(Pattern::Web {
            https,
            host,
            port,
            path: path.to_owned(),
            tail,
        })
    }

    /// Whether the safe redirect URI `uri` (parsed: `url`) matches.
    fn matches(&self, uri: &str, url: &Url) -> bool {
        match self {
            Pattern::Exact(exact) => exact == uri,
            Pattern::Web {
                https,
                host,
                port,
                path,
                tail,
            } => {
                let scheme = if *https { "https" } else { "http" };
                if url.scheme() != scheme {
                    return false;
                }
                if let Some(host) = host
                    && url.host_str() != Some(host.as_str())
                {
                    return false;
                }
                let port_ok = match port {
                    PortPattern::Any => true,
                    PortPattern::Default => url.port().is_none(),
                    PortPattern::Exact(p) => url.port() == Some(*p),
                };
                if !port_ok {
                    return false;
                }
                let path_and_query = match url.query() {
                    Some(query) => format!("{}?{query}", url.path()),
                    None => url.path().to_owned(),
                };
                if *tail {
                    path_and_query.starts_with(path.as_str())
                } else {
                    &path_and_query == path
                }
            }
            Pattern::PrivateUse(scheme) => {
                is_private_use_scheme(url.scheme())
                    && scheme.as_deref().is_none_or(|s| s == url.scheme())
            }
        }
    }
}

// === Registration ===

/// Why a registration request (or a metadata document's metadata) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("the registration request is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The body is not JSON.
    #[error("the registration request is not valid JSON")]
    NotJson,
    /// JSON, but not an object.
    #[error("the registration request must be a JSON object")]
    NotObject,
    /// A field of the wrong JSON type.
    #[error("{field} must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// No `redirect_uris`.
    #[error("redirect_uris is required: the URIs the authorization response may go to")]
    NoRedirectUris,
    /// More than [`MAX_REDIRECT_URIS`].
    #[error("redirect_uris has {0} entries; at most {MAX_REDIRECT_URIS} are allowed")]
    TooManyRedirectUris(usize),
    /// A redirect URI the policy refuses.
    #[error("redirect URI {uri} is refused: {reason}")]
    RedirectUri {
        /// The URI, quoted and shortened.
        uri: String,
        /// Why.
        reason: RedirectRefusal,
    },
    /// An empty list where one value at least is needed.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A grant type other than `authorization_code` and `refresh_token`.
    #[error("grant type {0} is not supported: use authorization_code and refresh_token")]
    GrantType(String),
    /// `grant_types` without `authorization_code`.
    #[error("grant_types must include authorization_code")]
    NoAuthorizationCode,
    /// A response type other than `code`.
    #[error("response type {0} is not supported: use code")]
    ResponseType(String),
    /// An authentication method other than the supported ones.
    #[error(
        "token_endpoint_auth_method {0} is not supported: use none, client_secret_basic or client_secret_post"
    )]
    AuthMethod(String),
    /// A string field that is too long.
    #[error("{field} is longer than {limit}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit, with its unit.
        limit: &'static str,
    },
    /// A name with control characters.
    #[error("client_name must not contain control or text direction characters")]
    ControlCharacters,
    /// A `client_uri` or `logo_uri` that is not a safe web URL.
    #[error("{field} must be an https URL (or http to a loopback host) without userinfo")]
    WebUri {
        /// The field.
        field: &'static str,
    },
    /// A scope value that is not a space-separated list of scope tokens.
    #[error("scope {0} is not a list of scope tokens separated by single spaces (RFC 6749 §3.3)")]
    Scope(String),
}

impl RegistrationError {
    /// The RFC 7591 §3.2.2 error code: `invalid_redirect_uri` for a refused redirect URI,
    /// `invalid_client_metadata` for everything else.
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::RedirectUri { .. } => "invalid_redirect_uri",
            _ => "invalid_client_metadata",
        }
    }

    /// The `error_description`.
    pub fn description(&self) -> String {
        self.to_string()
    }
}

/// The client metadata fields both registration and metadata documents carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) client_name: Option<String>,
    pub(crate) client_uri: Option<String>,
    pub(crate) logo_uri: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) grant_types: Vec<GrantType>,
    pub(crate) response_types: Vec<ResponseType>,
    /// `None` when absent: the default differs (RFC 7591 vs metadata documents).
    pub(crate) token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
}

/// A string field; `null` counts as absent.
fn string_field<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, RegistrationError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RegistrationError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// An array-of-strings field; `null` counts as absent.
fn strings_field<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<Vec<&'a str>>, RegistrationError> {
    let wrong = RegistrationError::WrongType {
        field,
        expected: "an array of strings",
    };
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or(wrong.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong),
    }
}

fn web_uri(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, RegistrationError> {
    let Some(uri) = string_field(object, field)? else {
        return Ok(None);
    };
    if uri.len() > MAX_URI_BYTES {
        return Err(RegistrationError::TooLong {
            field,
            limit: "2048 bytes",
        });
    }
    let safe = Url::parse(uri).is_ok_and(|url| {
        let scheme_ok = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => is_loopback_host(url.host()),
            _ => false,
        };
        scheme_ok && url.username().is_empty() && url.password().is_none()
    });
    if safe {
        Ok(Some(uri.to_owned()))
    } else {
        Err(RegistrationError::WebUri { field })
    }
}

/// Control characters, and the bidirectional embedding, override and isolate characters.
fn is_unsafe_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, separated by one space.
fn valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        })
}

/// Validates the client metadata of `object` (RFC 7591 §2) against `policy`; unknown fields
/// are ignored.
pub(crate) fn parse_metadata(
    object: &Map<String, Value>,
    policy: &RedirectPolicy,
) -> Result<Metadata, RegistrationError> {
    let uris = strings_field(object, "redirect_uris")?.ok_or(RegistrationError::NoRedirectUris)?;
    if uris.is_empty() {
        return Err(RegistrationError::NoRedirectUris);
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(RegistrationError::TooManyRedirectUris(uris.len()));
    }
    let mut redirect_uris: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        policy
            .check(uri)
            .map_err(|reason| RegistrationError::RedirectUri {
                uri: quote(uri),
                reason,
            })?;
        if !redirect_uris.iter().any(|u| u == uri) {
            redirect_uris.push(uri.to_owned());
        }
    }

    let grant_types = match strings_field(object, "grant_types")? {
        None => vec![GrantType::AuthorizationCode],
        Some(names) if names.is_empty() => return Err(RegistrationError::Empty("grant_types")),
        Some(names) => {
            let mut grants = Vec::new();
            for name in names {
                let grant = GrantType::parse(name)
                    .ok_or_else(|| RegistrationError::GrantType(quote(name)))?;
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
            if !grants.contains(&GrantType::AuthorizationCode) {
                return Err(RegistrationError::NoAuthorizationCode);
            }
            grants
        }
    };
    match strings_field(object, "response_types")? {
        Some(names) if names.is_empty() => {
            return Err(RegistrationError::Empty("response_types"));
        }
        Some(names) => {
            if let Some(other) = names.iter().find(|n| **n != "code") {
                return Err(RegistrationError::ResponseType(quote(other)));
            }
        }
        None => {}
    }
    let token_endpoint_auth_method = match string_field(object, "token_endpoint_auth_method")? {
        None => None,
        Some(name) => Some(
            TokenEndpointAuthMethod::parse(name)
                .ok_or_else(|| RegistrationError::AuthMethod(quote(name)))?,
        ),
    };

    let client_name = match string_field(object, "client_name")? {
        None => None,
        Some(name) if name.chars().count() > MAX_NAME_CHARS => {
            return Err(RegistrationError::TooLong {
                field: "client_name",
                limit: "200 characters",
            });
        }
        // A consent screen shows it: no line breaks, no text direction overrides that would
        // make it read as another name.
        Some(name) if name.chars().any(is_unsafe_in_name) => {
            return Err(RegistrationError::ControlCharacters);
        }
        Some(name) => Some(name.to_owned()),
    };
    let scope = match string_field(object, "scope")? {
        None => None,
        Some(scope) if scope.len() > MAX_SCOPE_BYTES => {
            return Err(RegistrationError::TooLong {
                field: "scope",
                limit: "1024 bytes",
            });
        }
        Some(scope) if !valid_scope(scope) => return Err(RegistrationError::Scope(quote(scope))),
        Some(scope) => Some(scope.to_owned()),
    };
    Ok(Metadata {
        redirect_uris,
        client_name,
        client_uri: web_uri(object, "client_uri")?,
        logo_uri: web_uri(object, "logo_uri")?,
        scope,
        grant_types,
        response_types: vec![ResponseType::Code],
        token_endpoint_auth_method,
    })
}

/// Validates an RFC 7591 registration request `body` and makes the client, with a new
/// `client_id` and, for a confidential client (`client_secret_basic`, the default, or
/// `client_secret_post`), a new secret: returned in plain once, kept only as its SHA-256.
/// `now` is the time in seconds since the Unix epoch.
///
/// # Errors
///
/// The first thing wrong with the request ([`RegistrationError::code`] says which RFC 7591
/// error to answer).
pub fn register(
    body: &[u8],
    policy: &RedirectPolicy,
    now: u64,
) -> Result<(Client, Option<String>), RegistrationError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RegistrationError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| RegistrationError::NotJson)?;
    let object = value.as_object().ok_or(RegistrationError::NotObject)?;
    let metadata = parse_metadata(object, policy)?;
    let method = metadata
        .token_endpoint_auth_method
        .unwrap_or(TokenEndpointAuthMethod::ClientSecretBasic);
    let secret = match method {
        TokenEndpointAuthMethod::None => None,
        TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost => {
            Some(random_token(SECRET_BYTES))
        }
    };
    let client = Client {
        client_id: random_token(CLIENT_ID_BYTES),
        client_secret_sha256: secret.as_deref().map(sha256_hex),
        redirect_uris: metadata.redirect_uris,
        client_name: metadata.client_name,
        client_uri: metadata.client_uri,
        logo_uri: metadata.logo_uri,
        scope: metadata.scope,
        grant_types: metadata.grant_types,
        response_types: metadata.response_types,
        token_endpoint_auth_method: method,
        client_id_issued_at: now,
        origin: ClientOrigin::Registered,
    };
    Ok((client, secret))
}

/// The RFC 7591 §3.2.1 response body: `client_id`, `client_secret` and
/// `client_secret_expires_at: 0` (never expires) when a secret was issued,
/// `client_id_issued_at`, and the registered metadata.
pub fn registration_response(client: &Client, secret: Option<&str>) -> Value {
    let mut response = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.client_id_issued_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": client.response_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    });
    if let Some(secret) = secret {
        response["client_secret"] = secret.into();
        response["client_secret_expires_at"] = 0.into();
    }
    for (field, value) in [
        ("client_name", &client.client_name),
        ("client_uri", &client.client_uri),
        ("logo_uri", &client.logo_uri),
        ("scope", &client.scope),
    ] {
        if let Some(value) = value {
            response[field] = value.as_str().into();
        }
    }
    response
}

// === Redirect check of an authorization request ===

/// Why an authorization request's `redirect_uri` is refused. The authorization endpoint
/// shows this to the user and never redirects (the URI is not trusted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectMismatch {
    /// No `redirect_uri`, and the client registered several.
    #[error("redirect_uri is required: the client registered {0} redirect URIs")]
    Missing(usize),
    /// Not one of the client's redirect URIs.
    #[error("redirect_uri {0} is not one of the client's registered redirect URIs")]
    NotRegistered(String),
}

impl RedirectMismatch {
    /// The OAuth error code: `invalid_request`.
    pub fn code(&self) -> &'static str {
        "invalid_request"
    }

    /// The `error_description`.
    pub fn description(&self) -> String {
        self.to_string()
    }
}

/// The redirect URI an authorization request of `client` goes to.
///
/// Matching is exact, byte for byte (OAuth 2.1 §2.3.1), with one exception: for a registered
/// `http` URI to a loopback host (`127.0.0.1`, `[::1]`, `localhost`), the port may differ
/// (RFC 8252 §7.3: native apps take an ephemeral port at each run), when everything else is
/// the same and the presented URI is itself safe and canonical. `localhost` is included
/// because common clients register it, although RFC 8252 §8.3 prefers the IP literals; it
/// resolves on the user's own machine. When `redirect_uri` is absent, the client must have
/// registered exactly one, which is used. The result is the presented URI (or the one
/// registered): the token request must present the same string.
///
/// # Errors
///
/// Absent with several registered, or not matching.
pub fn check_redirect(
    client: &Client,
    redirect_uri: Option<&str>,
) -> Result<String, RedirectMismatch> {
    let Some(presented) = redirect_uri else {
        return match client.redirect_uris.as_slice() {
            [only] => Ok(only.clone()),
            several => Err(RedirectMismatch::Missing(several.len())),
        };
    };
    if client.redirect_uris.iter().any(|r| r == presented) {
        return Ok(presented.to_owned());
    }
    let not_registered = || RedirectMismatch::NotRegistered(quote(presented));
    let Ok(url) = safe_redirect_uri(presented) else {
        return Err(not_registered());
    };
    if url.scheme() != "http" || !is_loopback_host(url.host()) {
        return Err(not_registered());
    }
    let without_port = |mut url: Url| {
        // Cannot fail for an http URL with a host.
        let _ = url.set_port(None);
        url
    };
    let presented_url = without_port(url);
    let matches = client.redirect_uris.iter().any(|registered| {
        Url::parse(registered).is_ok_and(|r| {
            r.scheme() == "http" && is_loopback_host(r.host()) && without_port(r) == presented_url
        })
    });
    if matches {
        Ok(presented.to_owned())
    } else {
        Err(not_registered())
    }
}

impl fmt::Display for TokenEndpointAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
