//! The tower layer: authenticate, then pass the request on with its [`Principal`] and without
//! its credential header, or answer the refusal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use shoal_core::session::Principal;
use tower::{Layer, Service};

use super::{AuthError, AuthRequest, Authenticator};
use crate::rejection::Rejection;

/// Wraps a service with [`AuthService`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Arc<dyn Authenticator>,
}

impl AuthLayer {
    /// A layer that authenticates with `authenticator`.
    pub fn new(authenticator: Arc<dyn Authenticator>) -> AuthLayer {
        AuthLayer { authenticator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// Authenticates each request before `S` sees it.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<dyn Authenticator>,
}

impl<S> Service<Request> for AuthService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The ready service handles this request; the clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0);
            let outcome = authenticator
                .authenticate(&AuthRequest::new(request.headers(), peer))
                .await;
            match outcome {
                Ok(principal) => {
                    if let Some(header) = authenticator.credential_header() {
                        // Handlers never see the token, so cannot forward it.
                        request.headers_mut().remove(header);
                    }
                    if let Some(principal) = principal {
                        request.extensions_mut().insert::<Principal>(principal);
                    }
                    inner.call(request).await
                }
                Err(AuthError::Refused(challenge)) => {
                    Ok(Rejection::Auth(challenge).into_response())
                }
                Err(AuthError::Unavailable(cause)) => {
                    tracing::warn!(cause = %cause, "authentication unavailable");
                    Ok(Rejection::AuthUnavailable.into_response())
                }
            }
        })
    }
}
