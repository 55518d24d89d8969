//! The built-in OAuth 2.1 authorization server (`--auth oauth`): Shoal issues the access
//! tokens of its own endpoint, users logging in at the operator's OpenID Connect provider.
//!
//! Everything it remembers is in the session host's key-value store ([`store`]), so any
//! replica can serve any step of any flow and a restart of every replica loses nothing.
//!
//! # Endpoints (all under the public URL's origin, the issuer)
//!
//! | path | what |
//! |------|------|
//! | `/.well-known/oauth-authorization-server`, `/.well-known/openid-configuration` | metadata (RFC 8414) |
//! | `/oauth/register` | Dynamic Client Registration (RFC 7591), when enabled |
//! | `/oauth/authorize` | the authorization endpoint: checks the request, sends the browser upstream |
//! | `/oauth/callback` | the upstream provider's redirect: verifies the user, then the consent page |
//! | `/oauth/consent` | the consent page (GET) and the user's decision (POST) |
//! | `/oauth/token` | authorization code (PKCE S256) and refresh token grants |
//! | `/oauth/revoke` | token revocation (RFC 7009) |
//! | `/oauth/jwks` | the public signing keys |
//!
//! # Layout
//!
//! - `client`, `redirect`, `cimd`: client metadata and registration, the redirect URI policy
//!   and check, Client ID Metadata Documents.
//! - `authorize`: authorization endpoint, upstream callback, consent.
//! - `token`: token and revocation endpoints, token issuance.
//! - `keys`: the signing key ring. `store`: the records. `upstream`: the OpenID provider.
//! - `resource`: the resource-server side: validating Shoal's own tokens, refusing revoked grants.
//! - `pages`, `error`: what a person and what a client sees when something is wrong.

pub(crate) mod authorize;
pub(crate) mod cimd;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod keys;
pub(crate) mod metrics;
pub(crate) mod pages;
pub(crate) mod redirect;
pub(crate) mod register;
pub(crate) mod resource;
pub(crate) mod store;
pub(crate) mod token;
pub(crate) mod upstream;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::HeaderValue;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE};
use serde_json::{Value, json};
use shoal_core::host::KeyValue;

use shoal_transport::auth::Challenger;

use crate::authenticator::JwtAuthenticator;
use crate::config::{JwtConfig, OAuthConfig};
use crate::error::Error;
use crate::jwks::Jwks;
use crate::jwt::JwtValidator;

use cimd::{CimdResolver, FetchPolicy};
use client::Client;
use keys::SigningKeys;
use redirect::RedirectPolicy;
use resource::{OwnTokens, RevokedCache, VerifiedTokens};
use store::Store;
use upstream::Upstream;

/// Where the metadata is served (RFC 8414 §3 and OpenID Connect Discovery §4).
const METADATA_PATHS: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];
/// The largest form or JSON body an endpoint reads.
const MAX_BODY: usize = 16 * 1024;

/// The authorization server, started: its routes and its state.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizationServer {
    pub(crate) state: Arc<ServerState>,
}

/// What every endpoint shares.
#[derive(Debug)]
pub(crate) struct ServerState {
    /// The issuer: the public URL's origin, byte for byte what the metadata says.
    pub(crate) issuer: String,
    /// The protected resource: the canonical public URL of the MCP endpoint.
    pub(crate) resource: String,
    /// How the consent page names the MCP server.
    pub(crate) resource_name: String,
    pub(crate) store: Store,
    pub(crate) keys: SigningKeys,
    pub(crate) upstream: Upstream,
    pub(crate) redirects: RedirectPolicy,
    pub(crate) cimd: Option<CimdResolver>,
    /// Every scope a client may ask for, with what it allows (for the consent page).
    pub(crate) scopes: BTreeMap<String, String>,
    /// The scopes a request without `scope` gets.
    pub(crate) default_scopes: Vec<String>,
    pub(crate) config: OAuthConfig,
    /// Validates Shoal's own access tokens (for revocation).
    pub(crate) tokens: JwtValidator,
    /// What this replica knows of revoked grants.
    pub(crate) revoked: Arc<RevokedCache>,
    /// Cookies get `Secure` when the public URL is https.
    pub(crate) secure_cookies: bool,
}

impl AuthorizationServer {
    /// Starts the server for the endpoint at `resource` (canonical public URL) whose origin is
    /// `issuer`: loads or creates the signing keys, discovers the upstream provider.
    pub(crate) async fn start(
        config: OAuthConfig,
        issuer: String,
        resource: String,
        kv: Arc<dyn KeyValue>,
    ) -> Result<AuthorizationServer, Error> {
        let keys = match &config.signing_keys_pem {
            Some(pem) => SigningKeys::from_pem(pem)?,
            None => SigningKeys::shared(kv.as_ref()).await?,
        };
        let redirects = match &config.redirect_uri_patterns {
            Some(patterns) => RedirectPolicy::new(patterns)
                .map_err(|e| Error::OAuthConfig(format!("redirect URI patterns: {e}")))?,
            None => RedirectPolicy::default(),
        };
        let upstream = Upstream::start(config.upstream.clone()).await?;
        let store = Store::new(kv.clone());
        let cimd = if config.client_metadata_documents {
            Some(
                CimdResolver::new(
                    FetchPolicy {
                        allow_private_targets: config.client_metadata_private_targets,
                        allow_http: config.client_metadata_private_targets,
                        ..FetchPolicy::default()
                    },
                    kv,
                )
                .map_err(Error::Client)?,
            )
        } else {
            None
        };
        let scopes = scope_notes(&config);
        let tokens = own_token_validator(&issuer, &resource, &keys)?;
        let default_scopes = config.required_scopes.clone();
        metrics::start_at_zero();
        tracing::info!(
            %issuer,
            upstream = ?config.upstream.provider,
            signing_key = keys.signing_kid(),
            dynamic_registration = config.dynamic_registration,
            client_metadata_documents = config.client_metadata_documents,
            "OAuth authorization server ready"
        );
        Ok(AuthorizationServer {
            state: Arc::new(ServerState {
                secure_cookies: issuer.starts_with("https://"),
                resource_name: config
                    .resource_name
                    .clone()
                    .unwrap_or_else(|| resource.clone()),
                issuer,
                resource,
                store,
                keys,
                upstream,
                redirects,
                cimd,
                scopes,
                default_scopes,
                config,
                tokens,
                revoked: Arc::default(),
            }),
        })
    }

    /// The endpoints and metadata, unauthenticated.
    pub(crate) fn routes(&self) -> Router {
        let metadata = serde_json::to_string(&self.metadata()).unwrap_or_default();
        let jwks = serde_json::to_string(&self.state.keys.jwks()).unwrap_or_default();
        let mut router = Router::new();
        for path in METADATA_PATHS {
            let body = metadata.clone();
            router = router.route(path, get(move || async move { json_document(body) }));
        }
        router = router
            .route(
                "/oauth/jwks",
                get(move || async move { json_document(jwks) }),
            )
            .route("/oauth/authorize", get(authorize::authorize))
            .route("/oauth/callback", get(authorize::callback))
            .route(
                "/oauth/consent",
                get(authorize::consent_page).post(authorize::consent_decision),
            )
            .route("/oauth/token", post(token::token))
            .route("/oauth/revoke", post(token::revoke));
        if self.state.config.dynamic_registration {
            router = router.route("/oauth/register", post(register::register));
        }
        router
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.state.clone())
    }

    /// The authorization server metadata (RFC 8414 §2).
    pub(crate) fn metadata(&self) -> Value {
        let state = &self.state;
        let issuer = &state.issuer;
        let mut grant_types = vec!["authorization_code"];
        if !state.config.refresh_token_ttl.is_zero() {
            grant_types.push("refresh_token");
        }
        let mut document = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "jwks_uri": format!("{issuer}/oauth/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": grant_types,
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported":
                ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported":
                ["none", "client_secret_basic", "client_secret_post"],
            "scopes_supported": state.scopes.keys().collect::<Vec<_>>(),
            "client_id_metadata_document_supported": state.cimd.is_some(),
            "authorization_response_iss_parameter_supported": true,
            "protected_resources": [state.resource],
        });
        if state.config.dynamic_registration
            && let Some(map) = document.as_object_mut()
        {
            map.insert(
                "registration_endpoint".into(),
                Value::String(format!("{issuer}/oauth/register")),
            );
        }
        document
    }

    /// The resource server's side: the authenticator of Shoal's own access tokens, which
    /// need `required_scopes` and answer with `challenger`'s challenges.
    pub(crate) fn authenticator(&self, challenger: Challenger) -> Result<OwnTokens, Error> {
        let state = &self.state;
        let validator = own_token_validator(&state.issuer, &state.resource, &state.keys)?;
        Ok(OwnTokens {
            inner: JwtAuthenticator::new(
                validator,
                challenger.clone(),
                state.config.required_scopes.clone(),
            ),
            verified: VerifiedTokens::default(),
            challenger,
            store: state.store.clone(),
            revoked: state.revoked.clone(),
        })
    }
}

impl ServerState {
    /// Remembers here at once that `grant` is revoked (other replicas learn it from the host).
    pub(crate) fn note_revoked(&self, grant: &str) {
        self.revoked.note(grant, true);
    }

    /// Whether `client` gets refresh tokens: when they are on and it registered the grant.
    pub(crate) fn issues_refresh_tokens(&self, client: &Client) -> bool {
        !self.config.refresh_token_ttl.is_zero() && client.allows_refresh()
    }
}

/// A validator of the access tokens this server signs: `typ` at+jwt, ES256, this issuer, this
/// resource as the audience, with the key ring's public keys.
fn own_token_validator(
    issuer: &str,
    resource: &str,
    keys: &SigningKeys,
) -> Result<JwtValidator, Error> {
    let jwks_url = format!("{issuer}/oauth/jwks");
    let url = reqwest::Url::parse(&jwks_url).map_err(|_| Error::InvalidUrl(jwks_url))?;
    let mut config = JwtConfig::new(issuer, resource);
    config.algorithms = vec![jsonwebtoken::Algorithm::ES256];
    config.require_at_jwt = true;
    Ok(JwtValidator::new(
        &config,
        Arc::new(Jwks::fixed(url, &keys.jwks())),
    ))
}

/// Each offered scope with what the consent page says it allows.
fn scope_notes(config: &OAuthConfig) -> BTreeMap<String, String> {
    let mut notes = BTreeMap::new();
    for scope in &config.required_scopes {
        notes.insert(scope.clone(), "Connect to the server".to_owned());
    }
    let mut tools_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (tool, scopes) in &config.tool_scopes {
        for scope in scopes {
            tools_of.entry(scope).or_default().push(tool);
        }
    }
    for (scope, tools) in tools_of {
        let note = format!(
            "Call the tool{} {}",
            if tools.len() == 1 { "" } else { "s" },
            tools.join(", ")
        );
        notes
            .entry(scope.to_owned())
            .and_modify(|existing: &mut String| {
                existing.push_str("; ");
                existing.push_str(&note);
            })
            .or_insert(note);
    }
    if !config.refresh_token_ttl.is_zero() {
        notes.insert(
            "offline_access".to_owned(),
            "Stay connected when you are not using it (a refresh token)".to_owned(),
        );
    }
    notes
}

fn json_document(body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
