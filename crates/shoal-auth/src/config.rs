//! The settings of each auth mode.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::Algorithm;

use crate::error::Error;
use crate::static_tokens::StaticTokens;

/// Algorithms accepted when none are configured.
pub const DEFAULT_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// At most one JWKS fetch for an unknown `kid` per this interval.
pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// The JWKS is refreshed in the background this often.
pub const DEFAULT_JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(300);

/// Which mode, with its settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AuthConfig {
    /// No authentication: requests carry no principal.
    #[default]
    None,
    /// Opaque tokens from a fixed table, each naming its principal: for a few known callers
    /// (other services, CI), without an authorization server.
    Static(StaticConfig),
    /// JWT access tokens of an external authorization server.
    Jwt(JwtConfig),
    /// Shoal is the authorization server for its own endpoint, users logging in at an
    /// upstream OpenID Connect provider.
    OAuth(OAuthConfig),
}

/// The static token mode: the token table and where the token is presented.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticConfig {
    /// The tokens and their principal names.
    pub tokens: StaticTokens,
    /// Read the token from this header instead of `Authorization: Bearer`.
    pub header: Option<HeaderName>,
}

/// A resource server for JWT access tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtConfig {
    /// The issuer, compared exactly with `iss` and the discovered metadata's `issuer`.
    pub issuer: String,
    /// The audience a token's `aud` must contain (the canonical public URL).
    pub audience: String,
    /// The JWKS URL; `None` discovers it from the issuer.
    pub jwks_url: Option<String>,
    /// Scopes every request needs.
    pub required_scopes: Vec<String>,
    /// Scopes a `tools/call` of each tool needs.
    pub tool_scopes: BTreeMap<String, Vec<String>>,
    /// Require header `typ` = `at+jwt` (RFC 9068).
    pub require_at_jwt: bool,
    /// Accepted signing algorithms (never `none` or HMAC).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// At most one JWKS fetch for an unknown `kid` per this interval.
    pub jwks_refetch_interval: Duration,
    /// Background JWKS refresh interval.
    pub jwks_refresh_interval: Duration,
    /// Serve the discovered authorization server metadata at
    /// `/.well-known/oauth-authorization-server`.
    pub mirror_authorization_server_metadata: bool,
    /// `resource_name` of the Protected Resource Metadata.
    pub resource_name: Option<String>,
}

impl JwtConfig {
    /// A configuration with the defaults for everything but the issuer and audience.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> JwtConfig {
        JwtConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            required_scopes: Vec::new(),
            tool_scopes: BTreeMap::new(),
            require_at_jwt: false,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            leeway: DEFAULT_LEEWAY,
            jwks_refetch_interval: DEFAULT_JWKS_REFETCH_INTERVAL,
            jwks_refresh_interval: DEFAULT_JWKS_REFRESH_INTERVAL,
            mirror_authorization_server_metadata: false,
            resource_name: None,
        }
    }
}

/// Access tokens live this long unless configured.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);
/// A grant (and its refresh token) lives this long after its last refresh unless configured.
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// A dynamically registered client is kept this long unless configured.
pub const DEFAULT_CLIENT_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Registrations accepted per source address and minute unless configured.
pub const DEFAULT_REGISTRATIONS_PER_MINUTE: u32 = 10;

/// Shoal as the OAuth 2.1 authorization server of its own endpoint (`--auth oauth`): clients
/// register (dynamically or by a Client ID Metadata Document), users log in at the upstream
/// OpenID Connect provider and consent here, and Shoal issues its own RFC 9068 access tokens.
/// Everything it remembers lives in the session host's key-value store.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthConfig {
    /// Who users are: the upstream OpenID Connect provider and Shoal's registration there.
    pub upstream: UpstreamConfig,
    /// Scopes every request needs.
    pub required_scopes: Vec<String>,
    /// Scopes a `tools/call` of each tool needs.
    pub tool_scopes: BTreeMap<String, Vec<String>>,
    /// The signing keys as PKCS#8 PEM blocks (EC P-256), the signing one first; the others
    /// stay published until the tokens they signed have expired. `None`: one key is generated
    /// and kept in the session host, shared by every replica.
    pub signing_keys_pem: Option<String>,
    /// Lifetime of an access token.
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token (each refresh starts it again); zero issues none.
    pub refresh_token_ttl: Duration,
    /// Accept Dynamic Client Registration (RFC 7591).
    pub dynamic_registration: bool,
    /// How long a dynamically registered client is kept.
    pub client_ttl: Duration,
    /// Registrations accepted per source address and minute.
    pub registrations_per_minute: u32,
    /// The load balancers and proxies in front of Shoal: a request from one of them is from
    /// the address its `X-Forwarded-For` names (the last one not in these ranges). Empty: the
    /// connection's peer, and the header is never believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Allowed redirect URI patterns; `None`: loopback, https and private-use schemes.
    pub redirect_uri_patterns: Option<Vec<String>>,
    /// Accept Client ID Metadata Documents.
    pub client_metadata_documents: bool,
    /// Let Client ID Metadata Documents be fetched from private and loopback addresses, and
    /// over plain http (for tests and closed networks only).
    pub client_metadata_private_targets: bool,
    /// `resource_name` of the Protected Resource Metadata, also shown on the consent page.
    pub resource_name: Option<String>,
}

impl OAuthConfig {
    /// A configuration with the defaults for everything but the upstream provider.
    pub fn new(upstream: UpstreamConfig) -> OAuthConfig {
        OAuthConfig {
            upstream,
            required_scopes: Vec::new(),
            tool_scopes: BTreeMap::new(),
            signing_keys_pem: None,
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            dynamic_registration: true,
            client_ttl: DEFAULT_CLIENT_TTL,
            registrations_per_minute: DEFAULT_REGISTRATIONS_PER_MINUTE,
            trusted_proxies: Vec::new(),
            redirect_uri_patterns: None,
            client_metadata_documents: true,
            client_metadata_private_targets: false,
            resource_name: None,
        }
    }

    /// Every scope a client may ask for: the required and per-tool ones, in order.
    pub fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for scope in self
            .required_scopes
            .iter()
            .chain(self.tool_scopes.values().flatten())
        {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }
}

/// The upstream provider users log in at, and Shoal's client there.
#[derive(Clone, PartialEq)]
pub struct UpstreamConfig {
    /// The provider, and how it says who the user is.
    pub provider: UpstreamProvider,
    /// Shoal's client id there.
    pub client_id: String,
    /// Shoal's client secret there.
    pub client_secret: String,
    /// The scopes asked of it (`openid` is added for an OpenID Connect provider).
    pub scopes: Vec<String>,
    /// How Shoal authenticates at its token endpoint; `None`: `client_secret_basic` unless an
    /// OpenID provider's metadata lists only `client_secret_post`, and `client_secret_post` at
    /// a plain OAuth 2 provider (GitHub documents only that).
    pub client_auth: Option<UpstreamClientAuth>,
}

/// Where users log in, and what Shoal believes about who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamProvider {
    /// An OpenID Connect provider (Keycloak, Okta, Entra, Google…): discovered from its
    /// issuer; the user is the `sub` of a verified `id_token` carrying the flow's `nonce`.
    OpenId {
        /// Its issuer URL.
        issuer: String,
    },
    /// A plain OAuth 2 provider without OpenID Connect (GitHub-style): its endpoints are
    /// configured, and the user is what its userinfo endpoint answers to the access token.
    OAuth2 {
        /// Where the browser is sent to log in.
        authorization_endpoint: String,
        /// Where Shoal redeems the code.
        token_endpoint: String,
        /// Where Shoal asks who the user is (`GET`, bearer access token, JSON object).
        userinfo_endpoint: String,
        /// The userinfo field that identifies the user: a string or an integer (`id` at
        /// GitHub, `sub` at most others).
        subject_field: String,
    },
}

/// How Shoal authenticates as a client at the upstream token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamClientAuth {
    /// `client_secret_basic`: HTTP Basic authentication.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// Parses algorithm names (`RS256`, `ES256`, `EdDSA`…), refusing `none` and every `HS*`.
///
/// # Errors
///
/// An unknown or refused name, or an empty list.
pub fn parse_algorithms<S: AsRef<str>>(names: &[S]) -> Result<Vec<Algorithm>, Error> {
    let mut algorithms = Vec::new();
    for name in names {
        let name = name.as_ref().trim();
        if name.is_empty() {
            continue;
        }
        if name.eq_ignore_ascii_case("none") || name.to_ascii_uppercase().starts_with("HS") {
            return Err(Error::RefusedAlgorithm(name.to_owned()));
        }
        let algorithm =
            Algorithm::from_str(name).map_err(|_| Error::UnknownAlgorithm(name.to_owned()))?;
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    if algorithms.is_empty() {
        return Err(Error::NoAlgorithm);
    }
    Ok(algorithms)
}

/// Checks that a scope can be written in a challenge and a space-separated list.
///
/// # Errors
///
/// An empty scope, or one with whitespace, quotes or backslashes.
pub fn check_scope(scope: &str) -> Result<(), Error> {
    let ok = !scope.is_empty()
        && scope
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidScope(scope.to_owned()))
    }
}

/// Parses a custom token header name.
///
/// # Errors
///
/// Not a valid header name.
pub fn parse_header_name(name: &str) -> Result<HeaderName, Error> {
    HeaderName::from_str(name.trim()).map_err(|_| Error::InvalidHeaderName(name.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn algorithms_refuse_none_and_hmac() {
        assert_eq!(
            parse_algorithms(&["RS256", "EdDSA", "RS256"]).unwrap(),
            vec![Algorithm::RS256, Algorithm::EdDSA]
        );
        for bad in ["none", "NONE", "HS256", "hs512", "HS384"] {
            assert!(
                matches!(parse_algorithms(&[bad]), Err(Error::RefusedAlgorithm(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_algorithms(&["RS1"]),
            Err(Error::UnknownAlgorithm(_))
        ));
        assert!(matches!(
            parse_algorithms::<&str>(&[]),
            Err(Error::NoAlgorithm)
        ));
    }

    #[test]
    fn scopes_are_single_tokens() {
        assert!(check_scope("mcp:echo").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b"] {
            assert!(check_scope(bad).is_err(), "{bad:?}");
        }
    }
}
