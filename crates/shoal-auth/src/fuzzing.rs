//! Token validation against a fixed key set, without discovery or any fetch: the entry point
//! of the `jwt` fuzz target (`fuzz/`). Not part of the API.

use std::sync::Arc;

use serde_json::Value;
use shoal_core::session::Principal;

use crate::config::JwtConfig;
use crate::discovery;
use crate::error::Error;
use crate::jwks::Jwks;
use crate::jwt::JwtValidator;

pub use crate::jwt::TokenError;

/// A JWT validator whose keys are those of a given JWKS document.
#[derive(Debug)]
pub struct FixedKeyValidator {
    validator: JwtValidator,
}

impl FixedKeyValidator {
    /// Validates tokens of `config` with the usable keys of `jwks` (a `{"keys": [...]}`
    /// document, filtered as a fetched one is). `config.jwks_url` names where it would come
    /// from; it is never fetched.
    ///
    /// # Errors
    ///
    /// A missing or invalid `config.jwks_url`.
    pub fn new(config: &JwtConfig, jwks: &Value) -> Result<Self, Error> {
        let url = config.jwks_url.as_deref().unwrap_or_default();
        let url = discovery::checked_url(url)?;
        let jwks = Arc::new(Jwks::fixed(url, jwks));
        Ok(FixedKeyValidator {
            validator: JwtValidator::new(config, jwks),
        })
    }

    /// The principal of a valid token, or why it is refused.
    pub async fn validate(&self, token: &str) -> Result<Principal, TokenError> {
        self.validator.validate(token).await
    }
}

/// The client side of the OAuth authorization server (registration, the redirect URI policy,
/// client metadata documents), for the `oauth_client_metadata` fuzz target and
/// `tests/cimd.rs`, which cannot reach the crate-private module otherwise.
pub mod oauth {
    pub use crate::server::cimd::*;
    pub use crate::server::client::*;
}
