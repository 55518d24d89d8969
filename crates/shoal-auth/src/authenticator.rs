//! The two authenticators: static tokens and JWT access tokens, each deciding from a request's
//! headers who is calling, or the challenge to answer with.

use http::HeaderName;
use http::header::AUTHORIZATION;
use shoal_core::session::Principal;
use shoal_transport::auth::{AuthError, AuthRequest, Authenticator, Challenge, Challenger};

use crate::challenge;
use crate::config::StaticConfig;
use crate::jwt::JwtValidator;
use crate::static_tokens::StaticTokens;
use crate::token::{self, Presented};

/// Static tokens, as `Authorization: Bearer <token>` or alone in a custom header; each names
/// a principal without scopes.
#[derive(Debug)]
pub struct StaticTokenAuthenticator {
    tokens: StaticTokens,
    /// The custom header, or `None` for `Authorization: Bearer`.
    header: Option<HeaderName>,
    challenger: Challenger,
}

impl StaticTokenAuthenticator {
    /// An authenticator of `config`'s tokens.
    pub fn new(config: StaticConfig) -> StaticTokenAuthenticator {
        StaticTokenAuthenticator {
            tokens: config.tokens,
            header: config.header,
            challenger: Challenger::default(),
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for StaticTokenAuthenticator {
    /// 401 without a token or with an unknown one, 400 for a malformed token header.
    async fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        let presented = match &self.header {
            Some(name) => token::custom(request.headers, name),
            None => token::bearer(request.headers),
        };
        let token = presented_token(&self.challenger, presented, self.header.is_some())?;
        match self.tokens.verify(token) {
            Some(name) => Ok(Some(Principal::new(name))),
            None => {
                tracing::debug!(reason = "unknown static token", "request refused");
                Err(AuthError::Refused(
                    self.challenger
                        .invalid_token(challenge::STATIC_TOKEN_INVALID),
                ))
            }
        }
    }

    fn credential_header(&self) -> Option<&HeaderName> {
        Some(self.header.as_ref().unwrap_or(&AUTHORIZATION))
    }
}

/// JWT access tokens of one issuer for this resource, with the scopes every request needs.
#[derive(Debug)]
pub(crate) struct JwtAuthenticator {
    validator: JwtValidator,
    challenger: Challenger,
    required_scopes: Vec<String>,
}

impl JwtAuthenticator {
    pub(crate) fn new(
        validator: JwtValidator,
        challenger: Challenger,
        required_scopes: Vec<String>,
    ) -> JwtAuthenticator {
        JwtAuthenticator {
            validator,
            challenger,
            required_scopes,
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for JwtAuthenticator {
    /// 401 without a token or with an invalid one, 400 for a malformed `Authorization`, 403
    /// when a required scope is missing.
    async fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        let token = presented_token(&self.challenger, token::bearer(request.headers), false)?;
        let principal = match self.validator.validate(token).await {
            Ok(principal) => principal,
            Err(error) => {
                tracing::debug!(reason = %error, "request refused");
                return Err(AuthError::Refused(
                    self.challenger.invalid_token(&error.to_string()),
                ));
            }
        };
        if !self
            .required_scopes
            .iter()
            .all(|scope| principal.scopes.contains(scope))
        {
            tracing::debug!(principal = %principal.id, "request refused: missing a required scope");
            return Err(AuthError::Refused(self.challenger.insufficient_scope(
                &self.required_scopes,
                challenge::SCOPE_MISSING,
            )));
        }
        Ok(Some(principal))
    }
}

/// The token, or the challenge for a missing (401) or malformed (400) token header.
fn presented_token<'a>(
    challenger: &Challenger,
    presented: Presented<'a>,
    custom: bool,
) -> Result<&'a str, Challenge> {
    match presented {
        Presented::Token(token) => Ok(token),
        Presented::Missing => Err(challenger.missing()),
        Presented::Malformed => Err(challenger.invalid_request(if custom {
            challenge::MALFORMED_CUSTOM_HEADER
        } else {
            challenge::MALFORMED_AUTHORIZATION
        })),
    }
}
