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
