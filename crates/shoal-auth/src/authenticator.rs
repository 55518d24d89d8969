//! Deciding, from a request's headers, who is calling: a principal, nobody (auth off), or a
//! challenge to answer with.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};
use shoal_core::session::Principal;
use shoal_transport::Challenge;

use crate::challenge::{self, Challenger};
use crate::config::StaticConfig;
use crate::jwt::JwtValidator;
use crate::static_tokens::StaticTokens;
use crate::token::{self, Presented};

/// Authenticates requests in one mode.
#[derive(Debug)]
pub struct Authenticator {
    mode: Mode,
    challenger: Challenger,
    required_scopes: Vec<String>,
}

#[derive(Debug)]
enum Mode {
    None,
    Static {
        tokens: StaticTokens,
        header: Option<HeaderName>,
    },
    Jwt(JwtValidator),
}

impl Authenticator {
    pub(crate) fn none() -> Authenticator {
        Authenticator {
            mode: Mode::None,
            challenger: Challenger::default(),
            required_scopes: Vec::new(),
        }
    }

    pub(crate) fn static_tokens(config: StaticConfig) -> Authenticator {
        Authenticator {
            mode: Mode::Static {
                tokens: config.tokens,
                header: config.header,
            },
            challenger: Challenger::default(),
            required_scopes: Vec::new(),
        }
    }

    pub(crate) fn jwt(
        validator: JwtValidator,
        challenger: Challenger,
        required_scopes: Vec<String>,
    ) -> Authenticator {
        Authenticator {
            mode: Mode::Jwt(validator),
            challenger,
            required_scopes,
        }
    }

    /// The header the token travels in (`Authorization` unless configured otherwise), or
    /// `None` when auth is off.
    pub fn token_header(&self) -> Option<&HeaderName> {
        match &self.mode {
            Mode::None => None,
            Mode::Static {
                header: Some(name), ..
            } => Some(name),
            Mode::Static { header: None, .. } | Mode::Jwt(_) => Some(&AUTHORIZATION),
        }
    }

    /// The principal of the request, `None` when auth is off, or the challenge to answer.
    ///
    /// # Errors
    ///
    /// 401 without a token or with an invalid one, 400 for a malformed token header, 403 when
    /// a required scope is missing.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, Challenge> {
        let principal = match &self.mode {
            Mode::None => return Ok(None),
            Mode::Static { tokens, header } => {
                let presented = match header {
                    Some(name) => token::custom(headers, name),
                    None => token::bearer(headers),
                };
                let token = self.presented(presented, header.is_some())?;
                match tokens.verify(token) {
                    Some(name) => Principal::new(name),
                    None => {
                        tracing::debug!(reason = "unknown static token", "request refused");
                        return Err(self
                            .challenger
                            .invalid_token(challenge::STATIC_TOKEN_INVALID));
                    }
                }
            }
            Mode::Jwt(validator) => {
                let token = self.presented(token::bearer(headers), false)?;
                match validator.validate(token).await {
                    Ok(principal) => principal,
                    Err(error) => {
                        tracing::debug!(reason = %error, "request refused");
                        return Err(self.challenger.invalid_token(&error.to_string()));
                    }
                }
            }
        };
        if !self
            .required_scopes
            .iter()
            .all(|scope| principal.scopes.contains(scope))
        {
            tracing::debug!(principal = %principal.id, "request refused: missing a required scope");
            return Err(self
                .challenger
                .insufficient_scope(&self.required_scopes, challenge::SCOPE_MISSING));
        }
        Ok(Some(principal))
    }

    fn presented<'a>(&self, presented: Presented<'a>, custom: bool) -> Result<&'a str, Challenge> {
        match presented {
            Presented::Token(token) => Ok(token),
            Presented::Missing => Err(self.challenger.missing()),
            Presented::Malformed => Err(self.challenger.invalid_request(if custom {
                challenge::MALFORMED_CUSTOM_HEADER
            } else {
                challenge::MALFORMED_AUTHORIZATION
            })),
        }
    }
}
