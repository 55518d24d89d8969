//! Resource-server authentication for Shoal: implementations of the auth port
//! ([`shoal_transport::auth`]) — who is calling, and may they?
//!
//! Four modes ([`AuthConfig`]):
//!
//! - **none**: every request passes without a principal ([`Anonymous`]).
//! - **static**: opaque tokens, each mapped to a principal name, presented as
//!   `Authorization: Bearer <token>` or in a custom header; compared in constant time
//!   ([`StaticTokenAuthenticator`]).
//! - **jwt**: an OAuth 2.0 resource server for an external authorization server. JWT access
//!   tokens (RFC 9068) are checked against the issuer's keys (JWKS, found by RFC 8414 / OpenID
//!   Connect discovery or configured), its exact `iss`, an `aud` naming this resource (the
//!   canonical public URL, RFC 8707), their lifetime, algorithm and scopes; the principal
//!   carries the token's validated claims. Protected Resource Metadata (RFC 9728) tells clients
//!   where to get tokens.
//! - **oauth**: Shoal is the OAuth 2.1 authorization server of its own endpoint (`server`):
//!   clients register (RFC 7591, or a Client ID Metadata Document), users sign in at an
//!   upstream OpenID Connect provider and consent, and Shoal issues RFC 9068 access tokens,
//!   validated like the jwt mode's, and rotated refresh tokens. Every record lives in the
//!   session host's key-value store ([`Auth::start_with_store`]), so any replica serves any
//!   step.
//!
//! # Layout
//!
//! - [`config`]: the settings of each mode and their checks.
//! - `token`: reading the presented token from `Authorization` or a custom header.
//! - `challenge`: the fixed `error_description` of each refusal.
//! - `authenticator`: the static and JWT [`Authenticator`]s.
//! - `static_tokens`: the static token table.
//! - `discovery`, `jwks`, `jwt`: authorization server discovery, the key cache, validation.
//! - `metadata`: the well-known documents.
//! - `server`: the built-in authorization server (oauth mode): its endpoints, records, keys,
//!   the upstream provider, and its clients (Dynamic Client Registration, the redirect URI
//!   policy, Client ID Metadata Documents fetched with SSRF protection).
//!
//! # Use
//!
//! [`Auth::start`] resolves the configuration for the endpoint's public URL and real path
//! (discovers the issuer, fetches its keys) and gives the [`AuthLayer`] to put in front of the
//! MCP router, the unauthenticated well-known routes to merge beside it, and the per-tool check
//! to give the transport ([`shoal_transport::TransportConfig::tool_scopes`]). The layer inserts
//! the authenticated [`Principal`] into the request extensions and removes the token header, so
//! the token is never forwarded; it never logs a token.
//!
//! # Example
//!
//! Static tokens, kept hashed and compared in constant time:
//!
//! ```
//! use shoal_auth::StaticTokens;
//!
//! let mut tokens = StaticTokens::new();
//! tokens.insert("ci", "tok-3f2a9c").unwrap();
//! assert_eq!(tokens.verify("tok-3f2a9c"), Some("ci"));
//! assert_eq!(tokens.verify("tok-guess"), None);
//! assert!(!format!("{tokens:?}").contains("tok-3f2a9c"));
//! ```

#![forbid(unsafe_code)]

mod authenticator;
mod challenge;
pub mod config;
mod discovery;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod jwks;
mod jwt;
mod metadata;
mod server;
mod static_tokens;
mod token;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use shoal_core::host::KeyValue;
use shoal_core::session::Principal;
use shoal_transport::auth::{
    Anonymous, AuthLayer, Authenticator, Challenge, Challenger, ToolScopeCheck,
};

pub use authenticator::StaticTokenAuthenticator;
pub use config::{
    AuthConfig, JwtConfig, OAuthConfig, StaticConfig, UpstreamClientAuth, UpstreamConfig,
    UpstreamProvider,
};
pub use error::Error;
pub use static_tokens::StaticTokens;

use authenticator::JwtAuthenticator;

/// Auth, started: what `shoal serve` (or an embedder) wires around the transport.
#[derive(Debug)]
pub struct Auth {
    authenticator: Arc<dyn Authenticator>,
    routes: Router,
    tool_scopes: Option<Arc<dyn ToolScopeCheck>>,
}

impl Auth {
    /// Resolves `config` for the MCP endpoint at `public_url` (the URL clients use, e.g.
    /// `https://mcp.example.com/mcp`) served at `endpoint_path` (the transport's path, e.g.
    /// `/mcp`; it differs from the public URL's path behind a proxy that rewrites paths). In
    /// jwt mode this discovers the issuer's metadata and fetches its keys (then keeps them
    /// fresh in the background).
    ///
    /// # Errors
    ///
    /// An invalid public URL or endpoint path, or in jwt mode an issuer that cannot be
    /// discovered.
    pub async fn start(
        config: AuthConfig,
        public_url: &str,
        endpoint_path: &str,
    ) -> Result<Auth, Error> {
        Auth::start_with_store(config, public_url, endpoint_path, None).await
    }

    /// [`Auth::start`] with the session host's key-value store, where the built-in
    /// authorization server (oauth mode) keeps its clients, codes and grants: `None` is
    /// refused in oauth mode and unused otherwise.
    ///
    /// # Errors
    ///
    /// As [`Auth::start`]; in oauth mode also unusable signing keys or redirect patterns, an
    /// upstream provider that cannot be discovered, or no store.
    pub async fn start_with_store(
        config: AuthConfig,
        public_url: &str,
        endpoint_path: &str,
        store: Option<Arc<dyn KeyValue>>,
    ) -> Result<Auth, Error> {
        let resource = Resource::parse(public_url)?;
        if !endpoint_path.starts_with('/') {
            return Err(Error::InvalidEndpointPath(endpoint_path.to_owned()));
        }
        match config {
            AuthConfig::None => Ok(Auth {
                authenticator: Arc::new(Anonymous),
                routes: Router::new(),
                tool_scopes: None,
            }),
            AuthConfig::Static(config) => Ok(Auth {
                authenticator: Arc::new(StaticTokenAuthenticator::new(config)),
                routes: Router::new(),
                tool_scopes: None,
            }),
            AuthConfig::Jwt(config) => {
                let challenger = Challenger {
                    resource_metadata: Some(resource.metadata_url()),
                    scope: config.required_scopes.clone(),
                };
                let started = jwt::JwtValidator::start(&config).await?;
                let scopes_supported: BTreeSet<String> = config
                    .required_scopes
                    .iter()
                    .chain(config.tool_scopes.values().flatten())
                    .cloned()
                    .collect();
                let prm = metadata::protected_resource(
                    &resource.canonical,
                    &config.issuer,
                    scopes_supported.into_iter().collect(),
                    config.resource_name.as_deref(),
                );
                let mirror = if config.mirror_authorization_server_metadata {
                    started.metadata.clone()
                } else {
                    None
                };
                let routes = metadata::router(prm, &resource.metadata_paths(endpoint_path), mirror);
                let tool_scopes = ToolScopes::check(&config.tool_scopes, &challenger);
                let authenticator =
                    JwtAuthenticator::new(started.validator, challenger, config.required_scopes);
                Ok(Auth {
                    authenticator: Arc::new(authenticator),
                    routes,
                    tool_scopes,
                })
            }
            AuthConfig::OAuth(config) => {
                let store = store.ok_or_else(|| {
                    Error::OAuthConfig(
                        "the authorization server needs the session host's key-value store".into(),
                    )
                })?;
                // The issuer is the public origin: its metadata is at the origin's well-known
                // paths, beside the Protected Resource Metadata.
                let issuer = resource.origin.clone();
                let challenger = Challenger {
                    resource_metadata: Some(resource.metadata_url()),
                    scope: config.required_scopes.clone(),
                };
                let tool_scopes = ToolScopes::check(&config.tool_scopes, &challenger);
                let prm = metadata::protected_resource(
                    &resource.canonical,
                    &issuer,
                    config.scopes(),
                    config.resource_name.as_deref(),
                );
                let server = server::AuthorizationServer::start(
                    config,
                    issuer,
                    resource.canonical.clone(),
                    store,
                )
                .await?;
                let routes = metadata::router(prm, &resource.metadata_paths(endpoint_path), None)
                    .merge(server.routes());
                Ok(Auth {
                    authenticator: Arc::new(server.authenticator(challenger)?),
                    routes,
                    tool_scopes,
                })
            }
        }
    }

    /// The layer that authenticates every request of the router it wraps.
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.authenticator.clone())
    }

    /// The unauthenticated well-known routes (Protected Resource Metadata and the optional
    /// authorization server metadata mirror); empty unless in jwt mode.
    pub fn routes(&self) -> Router {
        self.routes.clone()
    }

    /// The per-tool scope check for [`shoal_transport::TransportConfig::tool_scopes`].
    pub fn tool_scopes(&self) -> Option<Arc<dyn ToolScopeCheck>> {
        self.tool_scopes.clone()
    }
}

/// The protected resource: the MCP endpoint as clients name it.
#[derive(Debug, Clone)]
struct Resource {
    /// `scheme://authority` of the public URL.
    origin: String,
    /// The public URL without a trailing slash: the resource identifier and default audience.
    canonical: String,
    /// Its path without a trailing slash (`/mcp`), or empty.
    path: String,
}

impl Resource {
    fn parse(public_url: &str) -> Result<Resource, Error> {
        let url = reqwest::Url::parse(public_url)
            .map_err(|_| Error::InvalidUrl(public_url.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::InvalidUrl(public_url.to_owned()));
        }
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/').to_owned();
        Ok(Resource {
            canonical: format!("{origin}{path}"),
            origin,
            path,
        })
    }

    /// RFC 9728 §3.1: the well-known suffix goes between the host and the resource's path.
    fn metadata_url(&self) -> String {
        format!("{}{}{}", self.origin, metadata::PRM_PATH, self.path)
    }

    /// Where the metadata is served: the bare well-known path, the one for the resource's
    /// public path, and the one for `endpoint_path` (where the transport listens; the same
    /// unless a proxy rewrites paths).
    fn metadata_paths(&self, endpoint_path: &str) -> Vec<String> {
        let mut paths = vec![metadata::PRM_PATH.to_owned()];
        for path in [self.path.as_str(), endpoint_path.trim_end_matches('/')] {
            if !path.is_empty() {
                paths.push(format!("{}{}", metadata::PRM_PATH, path));
            }
        }
        paths.sort();
        paths.dedup();
        paths
    }
}

/// Per-tool scopes from configuration.
#[derive(Debug)]
struct ToolScopes {
    scopes: std::collections::BTreeMap<String, Vec<String>>,
    challenger: Challenger,
}

impl ToolScopes {
    /// The check of `scopes`, if any tool has scopes.
    fn check(
        scopes: &std::collections::BTreeMap<String, Vec<String>>,
        challenger: &Challenger,
    ) -> Option<Arc<dyn ToolScopeCheck>> {
        if scopes.is_empty() {
            return None;
        }
        Some(Arc::new(ToolScopes {
            scopes: scopes.clone(),
            challenger: challenger.clone(),
        }))
    }
}

impl ToolScopeCheck for ToolScopes {
    fn check(&self, tool: &str, principal: Option<&Principal>) -> Result<(), Challenge> {
        let Some(required) = self.scopes.get(tool) else {
            return Ok(());
        };
        let granted = principal.map(|p| p.scopes.as_slice()).unwrap_or_default();
        if required.iter().all(|scope| granted.contains(scope)) {
            return Ok(());
        }
        tracing::debug!(tool, "tools/call refused: missing a per-tool scope");
        Err(self
            .challenger
            .insufficient_scope(required, challenge::TOOL_SCOPE_MISSING))
    }
}
