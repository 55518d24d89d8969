//! The upstream provider that says who the user is: Shoal sends the browser there
//! (authorization code, PKCE S256, `state`, and `nonce` for OpenID Connect), exchanges the
//! code it gets back with its own client credentials, and believes either a verified
//! `id_token` (an OpenID provider) or the provider's userinfo answer to the access token it
//! was just given (a plain, GitHub-style OAuth 2 provider).

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{JwtConfig, UpstreamClientAuth, UpstreamConfig, UpstreamProvider};
use crate::error::Error;
use crate::jwt::JwtValidator;
use crate::{discovery, server::store::User};

/// Why the upstream leg of a flow failed (logged; the user sees a generic page).
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("{endpoint} could not be reached: {detail}")]
    Unreachable {
        endpoint: &'static str,
        detail: String,
    },
    #[error("{endpoint} refused: {status} {body}")]
    Refused {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("the token response has no {0}")]
    Missing(&'static str),
    #[error("the id_token is not valid: {0}")]
    InvalidIdToken(String),
    #[error("the id_token's nonce is not the one sent")]
    WrongNonce,
    #[error("the userinfo answer has no {0} (a string or an integer)")]
    NoSubject(String),
}

/// A started upstream provider.
#[derive(Debug)]
pub(crate) struct Upstream {
    config: UpstreamConfig,
    authorization_endpoint: Url,
    token_endpoint: Url,
    client_auth: UpstreamClientAuth,
    identity: Identity,
    http: reqwest::Client,
}

/// How the provider says who logged in.
#[derive(Debug)]
enum Identity {
    /// OpenID Connect: an `id_token` verified against the provider's keys.
    IdToken(JwtValidator),
    /// Plain OAuth 2: the userinfo endpoint's answer to the access token.
    Userinfo {
        endpoint: Url,
        subject_field: String,
    },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    id_token: Option<String>,
    /// GitHub answers a bad code with 200 and an `error` field.
    error: Option<String>,
}

impl Upstream {
    /// Discovers an OpenID provider and fetches its keys, or checks a plain provider's URLs.
    pub(crate) async fn start(config: UpstreamConfig) -> Result<Upstream, Error> {
        let http = discovery::client()?;
        match &config.provider {
            UpstreamProvider::OpenId { issuer } => {
                // An id_token's audience is Shoal's client id there (OpenID Connect Core §2).
                let mut jwt = JwtConfig::new(issuer.clone(), config.client_id.clone());
                // Asking for the metadata back: the endpoints are in it.
                jwt.mirror_authorization_server_metadata = true;
                let started = JwtValidator::start(&jwt).await?;
                let metadata = started.metadata.unwrap_or(Value::Null);
                let endpoint = |name: &str| -> Result<Url, Error> {
                    let url = metadata.get(name).and_then(Value::as_str).ok_or_else(|| {
                        Error::Discovery {
                            issuer: issuer.clone(),
                            detail: format!("the metadata has no {name}"),
                        }
                    })?;
                    discovery::checked_url(url)
                };
                let client_auth = config
                    .client_auth
                    .unwrap_or_else(|| client_auth_of(&metadata));
                Ok(Upstream {
                    authorization_endpoint: endpoint("authorization_endpoint")?,
                    token_endpoint: endpoint("token_endpoint")?,
                    client_auth,
                    identity: Identity::IdToken(started.validator),
                    http,
                    config,
                })
            }
            UpstreamProvider::OAuth2 {
                authorization_endpoint,
                token_endpoint,
                userinfo_endpoint,
                subject_field,
            } => Ok(Upstream {
                authorization_endpoint: discovery::checked_url(authorization_endpoint)?,
                token_endpoint: discovery::checked_url(token_endpoint)?,
                client_auth: config.client_auth.unwrap_or(UpstreamClientAuth::Post),
                identity: Identity::Userinfo {
                    endpoint: discovery::checked_url(userinfo_endpoint)?,
                    subject_field: subject_field.clone(),
                },
                http,
                config,
            }),
        }
    }

    /// Where to send the browser: an authorization request of Shoal's upstream client.
    pub(crate) fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> String {
        let openid = matches!(self.identity, Identity::IdToken(_));
        let mut scopes: Vec<&str> = if openid { vec!["openid"] } else { Vec::new() };
        for scope in &self.config.scopes {
            if !scopes.contains(&scope.as_str()) {
                scopes.push(scope);
            }
        }
        let mut url = self.authorization_endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", redirect_uri);
            if !scopes.is_empty() {
                query.append_pair("scope", &scopes.join(" "));
            }
            query.append_pair("state", state);
            if openid {
                query.append_pair("nonce", nonce);
            }
            query
                .append_pair("code_challenge", code_challenge)
                .append_pair("code_challenge_method", "S256");
        }
        url.into()
    }

    /// Exchanges the upstream `code` and returns the user the provider vouches for.
    pub(crate) async fn finish(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<User, UpstreamError> {
        let tokens = self.exchange(code, redirect_uri, verifier).await?;
        match &self.identity {
            Identity::IdToken(validator) => {
                let id_token = tokens.id_token.ok_or(UpstreamError::Missing("id_token"))?;
                user_of_id_token(validator, &id_token, nonce).await
            }
            Identity::Userinfo {
                endpoint,
                subject_field,
            } => {
                let access_token = tokens
                    .access_token
                    .ok_or(UpstreamError::Missing("access_token"))?;
                let userinfo = self.userinfo(endpoint, &access_token).await?;
                user_of_userinfo(&userinfo, subject_field)
            }
        }
    }

    async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, UpstreamError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self.http.post(self.token_endpoint.clone());
        match self.client_auth {
            UpstreamClientAuth::Basic => {
                request =
                    request.basic_auth(&self.config.client_id, Some(&self.config.client_secret));
            }
            UpstreamClientAuth::Post => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", &self.config.client_secret));
            }
        }
        const TOKEN_ENDPOINT: &str = "the token endpoint";
        let body = send(request.form(&form), TOKEN_ENDPOINT).await?;
        serde_json::from_str::<TokenResponse>(&body)
            .ok()
            .filter(|tokens| tokens.error.is_none())
            .ok_or_else(|| refused(TOKEN_ENDPOINT, 200, &body))
    }

    async fn userinfo(&self, endpoint: &Url, access_token: &str) -> Result<Value, UpstreamError> {
        const USERINFO_ENDPOINT: &str = "the userinfo endpoint";
        let request = self.http.get(endpoint.clone()).bearer_auth(access_token);
        let body = send(request, USERINFO_ENDPOINT).await?;
        serde_json::from_str::<Value>(&body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| refused(USERINFO_ENDPOINT, 200, &body))
    }
}

/// Sends `request` asking for JSON: the body of a success, or why `endpoint` refused.
async fn send(
    request: reqwest::RequestBuilder,
    endpoint: &'static str,
) -> Result<String, UpstreamError> {
    let unreachable = |e: reqwest::Error| UpstreamError::Unreachable {
        endpoint,
        detail: e.to_string(),
    };
    let response = request
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body = response.text().await.map_err(unreachable)?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(refused(endpoint, status.as_u16(), &body))
    }
}

/// A refusal, with the start of what was said (for the log).
fn refused(endpoint: &'static str, status: u16, body: &str) -> UpstreamError {
    UpstreamError::Refused {
        endpoint,
        status,
        body: body.chars().take(300).collect(),
    }
}

/// `client_secret_basic` unless the provider's metadata lists only `client_secret_post`
/// (RFC 8414 §2: an absent list means basic).
fn client_auth_of(metadata: &Value) -> UpstreamClientAuth {
    let listed = metadata
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array);
    let lists = |method: &str| listed.is_some_and(|l| l.iter().any(|m| m == method));
    if listed.is_some() && !lists("client_secret_basic") && lists("client_secret_post") {
        UpstreamClientAuth::Post
    } else {
        UpstreamClientAuth::Basic
    }
}

async fn user_of_id_token(
    validator: &JwtValidator,
    id_token: &str,
    nonce: &str,
) -> Result<User, UpstreamError> {
    let principal = validator
        .validate(id_token)
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

/// The user a userinfo answer names: `subject_field` (a non-empty string, or an integer as
/// GitHub's `id` is), a display name from `name`, `login` or `preferred_username`, and
/// `email` (GitHub answers `null` for a private one).
fn user_of_userinfo(userinfo: &Value, subject_field: &str) -> Result<User, UpstreamError> {
    let text = |name: &str| {
        userinfo
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let sub = match userinfo.get(subject_field) {
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => number.to_string(),
        _ => text(subject_field).ok_or_else(|| UpstreamError::NoSubject(subject_field.into()))?,
    };
    Ok(User {
        sub,
        name: text("name")
            .or_else(|| text("login"))
            .or_else(|| text("preferred_username")),
        email: text("email"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_userinfo_subject_is_a_string_or_an_integer() {
        let github = json!({"id": 583231, "login": "octocat", "name": null, "email": null});
        let user = user_of_userinfo(&github, "id").unwrap();
        assert_eq!(user.sub, "583231");
        assert_eq!(
            user.name.as_deref(),
            Some("octocat"),
            "login stands in for a null name"
        );
        assert_eq!(user.email, None);

        let oidc = json!({"sub": "alice", "name": "Alice", "email": "alice@example.test"});
        let user = user_of_userinfo(&oidc, "sub").unwrap();
        assert_eq!(
            (
                user.sub.as_str(),
                user.name.as_deref(),
                user.email.as_deref()
            ),
            ("alice", Some("Alice"), Some("alice@example.test"))
        );
    }

    #[test]
    fn a_userinfo_answer_without_a_usable_subject_names_no_one() {
        for userinfo in [
            json!({"login": "octocat"}),
            json!({"id": ""}),
            json!({"id": 1.5}),
            json!({"id": true}),
            json!({"id": null}),
        ] {
            let error = user_of_userinfo(&userinfo, "id").unwrap_err();
            assert!(
                matches!(&error, UpstreamError::NoSubject(field) if field == "id"),
                "{userinfo}: {error}"
            );
        }
    }

    #[test]
    fn basic_unless_the_metadata_lists_only_post() {
        let auth = |methods: Value| {
            client_auth_of(&json!({"token_endpoint_auth_methods_supported": methods}))
        };
        assert_eq!(client_auth_of(&json!({})), UpstreamClientAuth::Basic);
        assert_eq!(
            auth(json!(["client_secret_basic", "client_secret_post"])),
            UpstreamClientAuth::Basic
        );
        assert_eq!(
            auth(json!(["client_secret_post", "private_key_jwt"])),
            UpstreamClientAuth::Post
        );
        assert_eq!(auth(json!(["private_key_jwt"])), UpstreamClientAuth::Basic);
    }
}
