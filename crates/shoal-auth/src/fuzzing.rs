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
    pub use crate::server::redirect::*;
}

/// The `client_id` the `oauth_client_metadata` target validates documents for.
const FUZZ_CLIENT_ID: &str = "https://app.example.com/oauth/client.json";

/// The `oauth_client_metadata` fuzz target: `data` as an RFC 7591 registration request and as
/// a client metadata document (also with the expected `client_id` put into it when it is a
/// JSON object, so that the metadata checks are reached), and as a redirect URI, a redirect
/// policy (one pattern a line) and a `client_id`. Never panics unless an invariant is broken:
/// whatever is accepted is safe by the same rules.
///
/// # Panics
///
/// When an accepted client breaks an invariant (a redirect URI its policy refuses, a secret
/// it does not verify, a document client with a secret…).
pub fn client_metadata(data: &[u8]) {
    use crate::server::cimd::{is_metadata_document_id, validate_document};
    use crate::server::client::{Client, TokenEndpointAuthMethod, register, registration_response};
    use crate::server::redirect::{RedirectPolicy, check_redirect};

    let policy = RedirectPolicy::default();
    let accepted_uris = |client: &Client| {
        assert!(!client.redirect_uris.is_empty());
        for uri in &client.redirect_uris {
            assert_eq!(policy.check(uri), Ok(()), "{uri}");
            assert_eq!(
                check_redirect(client, Some(uri)).as_deref(),
                Ok(uri.as_str())
            );
        }
        let stored = serde_json::to_vec(client).unwrap_or_default();
        let read: Option<Client> = serde_json::from_slice(&stored).ok();
        assert_eq!(read.as_ref(), Some(client));
    };

    match register(data, &policy, 0) {
        Ok((client, secret)) => {
            accepted_uris(&client);
            match (&secret, client.token_endpoint_auth_method) {
                (None, TokenEndpointAuthMethod::None) => {}
                (Some(secret), _) => assert!(client.verify_secret(secret)),
                (None, method) => panic!("no secret for {method}"),
            }
            let response = registration_response(&client, secret.as_deref());
            assert_eq!(response["client_id"], client.client_id.as_str());
        }
        Err(error) => {
            assert!(matches!(
                error.code(),
                "invalid_client_metadata" | "invalid_redirect_uri"
            ));
        }
    }

    let mut documents = vec![data.to_vec()];
    if let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(data) {
        object.insert("client_id".into(), FUZZ_CLIENT_ID.into());
        documents.push(serde_json::to_vec(&object).unwrap_or_default());
    }
    for document in documents {
        if let Ok(client) = validate_document(FUZZ_CLIENT_ID, &document, &policy, 0) {
            accepted_uris(&client);
            assert_eq!(client.client_id, FUZZ_CLIENT_ID);
            assert_eq!(client.client_secret_sha256, None);
            assert_eq!(
                client.token_endpoint_auth_method,
                TokenEndpointAuthMethod::None
            );
        }
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if policy.check(text).is_ok() {
        let url = url::Url::parse(text).ok();
        assert!(url.is_some_and(|u| u.fragment().is_none() && u.username().is_empty()));
    }
    if let Ok(custom) = RedirectPolicy::new(text.lines()) {
        for line in text.lines() {
            // A pattern without a wildcard allows exactly itself.
            if !line.contains('*') {
                assert_eq!(custom.check(line), Ok(()), "{line}");
            }
        }
    }
    if is_metadata_document_id(text) {
        let url = url::Url::parse(text).ok();
        assert!(url.is_some_and(|u| u.scheme() == "https" && u.as_str() == text));
    }
}
