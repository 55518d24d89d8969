//! The upstream OpenID Connect provider that says who the user is: Shoal sends the browser
//! there (authorization code, PKCE S256, `state`, `nonce`), exchanges the code it gets back
//! with its own client credentials, and believes only a verified `id_token`.

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{JwtConfig, UpstreamConfig};
use crate::error::Error;
use crate::jwt::JwtValidator;
use crate::{discovery, server::store::User};

/// Why the upstream leg of a flow failed (logged; the user sees a generic page).
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the token endpoint refused the code: {status} {body}")]
    Refused { status: u16, body: String },
    #[error("the token response has no id_token")]
    NoIdToken,
    #[error("the id_token is not valid: {0}")]
    InvalidIdToken(String),
    #[error("the id_token's nonce is not the one sent")]
    WrongNonce,
}

/// A discovered upstream provider.
#[derive(Debug)]
pub(crate) struct Upstream {
    config: UpstreamConfig,
    authorization_endpoint: Url,
    token_endpoint: Url,
    id_tokens: JwtValidator,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

impl Upstream {
    /// Discovers the provider and fetches its keys.
    pub(crate) async fn start(config: UpstreamConfig) -> Result<Upstream, Error> {
        // An id_token's audience is Shoal's client id there (OpenID Connect Core §2).
        let mut jwt = JwtConfig::new(config.issuer.clone(), config.client_id.clone());
        // Asking for the metadata back: the endpoints are in it.
        jwt.mirror_authorization_server_metadata = true;
        let started = JwtValidator::start(&jwt).await?;
        let metadata = started.metadata.unwrap_or(Value::Null);
        let endpoint = |name: &str| -> Result<Url, Error> {
            let url =
                metadata
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::Discovery {
                        issuer: config.issuer.clone(),
                        detail: format!("the metadata has no {name}"),
                    })?;
            discovery::checked_url(url)
        };
        Ok(Upstream {
            authorization_endpoint: endpoint("authorization_endpoint")?,
            token_endpoint: endpoint("token_endpoint")?,
            id_tokens: started.validator,
            http: discovery::client()?,
            config,
        })
    }

    /// Where to send the browser: an authorization request of Shoal's upstream client.
    pub(crate) fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> String {
        let mut scopes = vec!["openid".to_owned()];
        for scope in &self.config.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        let mut url = self.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        url.into()
    }

    /// Exchanges the upstream `code` and returns the user its verified `id_token` names.
    pub(crate) async fn finish(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<User, UpstreamError> {
        let response = self
            .http
            .post(self.token_endpoint.clone())
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .header(http::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            return Err(UpstreamError::Refused {
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
            });
        }
        let id_token = serde_json::from_str::<TokenResponse>(&body)
            .ok()
            .and_then(|r| r.id_token)
            .ok_or(UpstreamError::NoIdToken)?;
        let principal = self
            .id_tokens
            .validate(&id_token)
            .await
            .map_err(|e| UpstreamError::InvalidIdToken(e.to_string()))?;
        let claim = |name: &str| {
            principal
                .claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if claim("nonce").as_deref() != Some(nonce) {
            return Err(UpstreamError::WrongNonce);
        }
        let sub = claim("sub").ok_or(UpstreamError::InvalidIdToken("no sub".into()))?;
        Ok(User {
            sub,
            name: claim("name").or_else(|| claim("preferred_username")),
            email: claim("email"),
        })
    }
}
