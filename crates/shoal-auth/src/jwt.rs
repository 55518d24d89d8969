//! JWT access token validation (RFC 9068 profile): header checks, key choice, signature,
//! `iss`, `aud`, `exp`/`nbf`/`iat` with leeway, scopes.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;
use shoal_core::session::Principal;

use crate::config::JwtConfig;
use crate::discovery;
use crate::error::Error;
use crate::jwks::{Jwks, KeyError};

/// Why a token is refused; each has a fixed description for `error_description`.
/// (Public only for the fuzz target, through `fuzzing`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url parts with a JSON header, or claims that do not decode.
    #[error("the token is malformed")]
    Malformed,
    /// `alg` is not one of the configured algorithms, or does not fit the key.
    #[error("the token algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// `typ` is not `at+jwt` although it is required.
    #[error("the token type must be at+jwt")]
    WrongType,
    /// No key of the key set fits `kid` and `alg`.
    #[error("the token signing key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still to come.
    #[error("the token is not yet valid")]
    NotYetValid,
    /// `iat` is still to come.
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    #[error("the token issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not name this resource.
    #[error("the token audience is not this resource")]
    WrongAudience,
    /// `exp`, `iss`, `aud` or `sub` is missing.
    #[error("the token lacks a required claim")]
    MissingClaim,
}

/// The header fields that matter, read before any key is chosen.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    scp: Option<Value>,
}

/// Validates tokens of one issuer for one audience.
#[derive(Debug)]
pub(crate) struct JwtValidator {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    require_at_jwt: bool,
    jwks: Arc<Jwks>,
}

/// A started validator and the discovered metadata (for the optional mirror).
pub(crate) struct Started {
    pub(crate) validator: JwtValidator,
    pub(crate) metadata: Option<Value>,
}

impl JwtValidator {
    /// Discovers the issuer (unless a JWKS URL is configured and no mirror is wanted),
    /// fetches the keys once and starts the background refresh.
    pub(crate) async fn start(config: &JwtConfig) -> Result<Started, Error> {
        discovery::checked_url(&config.issuer)?;
        let client = discovery::client()?;
        let discovered = if config.jwks_url.is_none() || config.mirror_authorization_server_metadata
        {
            Some(discovery::discover(&client, &config.issuer).await?)
        } else {
            None
        };
        let jwks_url = match (
            &config.jwks_url,
            discovered.as_ref().and_then(|d| d.jwks_uri.as_ref()),
        ) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => {
                return Err(Error::Discovery {
                    issuer: config.issuer.clone(),
                    detail: "the metadata has no jwks_uri; configure --jwks-url".into(),
                });
            }
        };
        let jwks_url = discovery::checked_url(&jwks_url)?;
        let jwks = Arc::new(Jwks::new(
            client,
            jwks_url.clone(),
            config.jwks_refetch_interval,
        ));
        match jwks.fetch().await {
            Ok(count) => {
                tracing::info!(issuer = %config.issuer, jwks = %jwks_url, keys = count, "JWKS loaded")
            }
            // Start anyway: the first token refetches, and the background refresh retries.
            Err(detail) => tracing::warn!(jwks = %jwks_url, %detail, "JWKS not loaded yet"),
        }
        jwks.refresh_in_background(config.jwks_refresh_interval);
        Ok(Started {
            validator: JwtValidator::new(config, jwks),
            metadata: discovered.map(|d| d.metadata),
        })
    }

    /// A validator of `config`'s tokens with the keys of `jwks`.
    pub(crate) fn new(config: &JwtConfig, jwks: Arc<Jwks>) -> JwtValidator {
        JwtValidator {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            algorithms: config.algorithms.clone(),
            leeway: config.leeway,
            require_at_jwt: config.require_at_jwt,
            jwks,
        }
    }

    /// The principal (`<iss>|<sub>`, with the token's scopes) of a valid token.
    pub(crate) async fn validate(&self, token: &str) -> Result<Principal, TokenError> {
        let header = read_header(token)?;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or(TokenError::AlgorithmNotAllowed)?;
        if self.require_at_jwt && !header.typ.as_deref().is_some_and(is_at_jwt) {
            return Err(TokenError::WrongType);
        }
        let keys = self
            .jwks
            .keys_for(header.kid.as_deref(), alg)
            .await
            .map_err(|e| match e {
                KeyError::Unknown => TokenError::UnknownKey,
                KeyError::WrongAlgorithm => TokenError::AlgorithmNotAllowed,
            })?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        let mut outcome = Err(TokenError::BadSignature);
        for key in &keys {
            outcome = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
                .map(|data| data.claims)
                .map_err(|e| map_error(e.kind()));
            if !matches!(outcome, Err(TokenError::BadSignature)) {
                break;
            }
        }
        // Every claim goes to the principal; the ones checked here are read typed, and a
        // mistyped one makes the token malformed.
        let payload = outcome?;
        let claims = Claims::deserialize(&payload).map_err(|_| TokenError::Malformed)?;
        let Value::Object(all) = payload else {
            return Err(TokenError::Malformed);
        };
        let sub = claims.sub.ok_or(TokenError::MissingClaim)?;
        if let Some(iat) = claims.iat {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            if iat > now + self.leeway.as_secs_f64() {
                return Err(TokenError::IssuedInFuture);
            }
        }
        let mut principal = Principal::new(format!("{}|{sub}", claims.iss));
        principal.scopes = scopes(claims.scope.as_ref(), claims.scp.as_ref());
        principal.claims = all;
        Ok(principal)
    }
}

fn read_header(token: &str) -> Result<RawHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// RFC 9068 §2.1: `at+jwt`, or its full media type; compared case-insensitively.
fn is_at_jwt(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

fn map_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => TokenError::MissingClaim,
        ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAllowed,
        _ => TokenError::Malformed,
    }
}

/// Scopes from `scope` (space-separated, RFC 9068 §2.2.3) and `scp` (an array, or a
/// space-separated string as some providers send), deduplicated in order.
fn scopes(scope: Option<&Value>, scp: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in [scope, scp].into_iter().flatten() {
        let found: Vec<&str> = match value {
            Value::String(s) => s.split_whitespace().collect(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for scope in found {
            if !out.iter().any(|s| s == scope) {
                out.push(scope.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_from_scope_and_scp() {
        assert_eq!(
            scopes(Some(&json!("a b  c")), Some(&json!(["c", "d"]))),
            ["a", "b", "c", "d"]
        );
        assert_eq!(scopes(None, Some(&json!("x y"))), ["x", "y"]);
        assert!(scopes(Some(&json!(3)), None).is_empty());
    }

    #[test]
    fn typ_at_jwt_forms() {
        for ok in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            assert!(is_at_jwt(ok), "{ok}");
        }
        for bad in ["JWT", "jwt", "at+jwt ", "application/jwt"] {
            assert!(!is_at_jwt(bad), "{bad}");
        }
    }
}
