//! The auth port: who is calling, decided in front of the endpoint, and whether they may call
//! a tool, decided at `tools/call`.
//!
//! An [`Authenticator`] reads a request's headers and peer address ([`AuthRequest`]) and
//! answers a [`Principal`], nobody (`Ok(None)`: the request goes on anonymous), a refusal with
//! its [`Challenge`], or a failure to decide ([`AuthError::Unavailable`]). [`AuthLayer`] runs
//! one in front of the [`router`](crate::router): it inserts the principal into the request
//! extensions, where the endpoint binds it to the session, and removes the credential header,
//! so that no handler sees the token (and none can forward it). [`ToolScopeCheck`] is the
//! per-tool seam, given as [`TransportConfig::tool_scopes`](crate::TransportConfig::tool_scopes).
//!
//! This crate defines the port and answers with it; implementations (static tokens, JWT
//! access tokens) live elsewhere (`shoal-auth`), and [`Anonymous`] is the one for no auth.

mod challenge;
mod layer;

use std::fmt;
use std::net::SocketAddr;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};
use shoal_core::session::Principal;

pub use challenge::{Challenge, Challenger};
pub use layer::{AuthLayer, AuthService};

/// What an authenticator may look at: the request's headers and the peer's address.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthRequest<'a> {
    /// The request headers, the credential header included.
    pub headers: &'a HeaderMap,
    /// The TCP peer, when the server records it (axum's
    /// [`ConnectInfo`](axum::extract::ConnectInfo)); a proxy's address behind a proxy.
    pub peer: Option<SocketAddr>,
}

impl<'a> AuthRequest<'a> {
    /// The view of a request with `headers` from `peer`.
    pub fn new(headers: &'a HeaderMap, peer: Option<SocketAddr>) -> AuthRequest<'a> {
        AuthRequest { headers, peer }
    }
}

/// A cause of [`AuthError::Unavailable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request goes no further than authentication.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// 400, 401 or 403: answered with the challenge (`Rejection::Auth`).
    #[error("{}", .0.message)]
    Refused(Challenge),
    /// 503: the authenticator cannot decide now (its key set, database or introspection
    /// endpoint is unreachable). The cause is logged, never sent.
    #[error("authentication is unavailable")]
    Unavailable(#[source] BoxError),
}

impl From<Challenge> for AuthError {
    fn from(challenge: Challenge) -> AuthError {
        AuthError::Refused(challenge)
    }
}

/// Decides who sends a request.
///
/// Called once per request by [`AuthLayer`], before the endpoint looks at the request. An
/// implementation never logs nor echoes the presented credential.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + fmt::Debug + 'static {
    /// The principal of `request`, `None` to let it go on anonymous, or why not.
    ///
    /// # Errors
    ///
    /// [`AuthError::Refused`] with the challenge to answer; [`AuthError::Unavailable`] when
    /// the decision cannot be made now.
    async fn authenticate(&self, request: &AuthRequest<'_>)
    -> Result<Option<Principal>, AuthError>;

    /// The header that carries the credential, removed from every authenticated request so
    /// that handlers never see it; `None` removes nothing. `Authorization` unless overridden.
    fn credential_header(&self) -> Option<&HeaderName> {
        Some(&AUTHORIZATION)
    }
}

/// No authentication: every request goes on without a principal, its headers untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

#[async_trait::async_trait]
impl Authenticator for Anonymous {
    async fn authenticate(
        &self,
        _request: &AuthRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        Ok(None)
    }

    fn credential_header(&self) -> Option<&HeaderName> {
        None
    }
}

/// Per-tool authorization, checked at `tools/call` (the only place the tool name is known).
///
/// The transport defines the seam and an auth crate implements it, so that the transport
/// needs no auth dependency. It sees only the principal, so it works with any
/// [`Authenticator`]. `tools/list` is not filtered.
pub trait ToolScopeCheck: Send + Sync + fmt::Debug {
    /// `Ok` when `principal` may call `tool`, else the challenge to answer with (typically 403
    /// `insufficient_scope`).
    fn check(&self, tool: &str, principal: Option<&Principal>) -> Result<(), Challenge>;
}
