//! Redirect URIs: which ones the operator accepts ([`RedirectPolicy`]) and the check of an
//! authorization request's `redirect_uri` against a client's ([`check_redirect`]).
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

use url::{Host, Url};

use super::client::{Client, MAX_URI_BYTES, quote};

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
    /// How many patterns it has (the tests check that each default is one).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.patterns.len()
    }

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

pub(crate) fn is_loopback_host(host: Option<Host<&str>>) -> bool {
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
