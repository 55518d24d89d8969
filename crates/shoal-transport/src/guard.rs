//! DNS-rebinding protection: a browser tricked into sending requests to a local server carries
//! the attacker's name in `Host` and `Origin`; both must be on the allow-list.
//!
//! The endpoint checks every request itself, so that a bare [`router`](crate::router) is safe.
//! [`HostGuardLayer`] runs the same check in front of layers that answer before the endpoint
//! (authentication), so that a rebound request gets this 403 and not an auth challenge, and
//! holds public routes beside the endpoint to the same `Host` rule.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};
use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Request};
use tower::{Layer, Service};

use crate::config::TransportConfig;
use crate::rejection::Rejection;

/// Checks `Host` and `Origin` against the allow-lists.
pub(crate) fn check(config: &TransportConfig, headers: &HeaderMap) -> Result<(), Rejection> {
    check_host(&config.allowed_hosts, headers)?;
    check_origin(&config.allowed_hosts, &config.allowed_origins, headers)
}

fn check_host(hosts: &[String], headers: &HeaderMap) -> Result<(), Rejection> {
    if let Some(host) = headers.get(HOST) {
        let host = host.to_str().map_err(|_| Rejection::ForbiddenHost)?;
        if !host_allowed(hosts, strip_port(host)) {
            return Err(Rejection::ForbiddenHost);
        }
    }
    Ok(())
}

/// An `Origin` passes when it is on `origins` or names an allowed host.
fn check_origin(
    hosts: &[String],
    origins: &[String],
    headers: &HeaderMap,
) -> Result<(), Rejection> {
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().map_err(|_| Rejection::ForbiddenOrigin)?;
        if !origin_allowed(hosts, origins, origin) {
            return Err(Rejection::ForbiddenOrigin);
        }
    }
    Ok(())
}

fn host_allowed(hosts: &[String], host: &str) -> bool {
    hosts
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(host))
}

fn origin_allowed(hosts: &[String], origins: &[String], origin: &str) -> bool {
    if origins
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // `null` (sandboxed frames, file://) has no host and is never on a host allow-list.
    let Some((_scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    !authority.is_empty() && !authority.contains('@') && host_allowed(hosts, strip_port(authority))
}

/// `host[:port]` → `host`, keeping IPv6 brackets: `[::1]:8080` → `[::1]`.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _port)| host)
}

/// The allow-lists of [`TransportConfig`], shared by every clone of the layer and its services.
#[derive(Debug)]
struct AllowLists {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl AllowLists {
    fn check(&self, check_origin_too: bool, headers: &HeaderMap) -> Result<(), Rejection> {
        check_host(&self.hosts, headers)?;
        if check_origin_too {
            check_origin(&self.hosts, &self.origins, headers)?;
        }
        Ok(())
    }
}

/// Wraps a service with [`HostGuard`].
#[derive(Debug, Clone)]
pub struct HostGuardLayer {
    lists: Arc<AllowLists>,
    check_origin: bool,
}

impl HostGuardLayer {
    /// A layer that checks `Host` against `config.allowed_hosts` and `Origin` as the endpoint
    /// does (`config.allowed_origins`, or an allowed host).
    pub fn new(config: &TransportConfig) -> HostGuardLayer {
        HostGuardLayer {
            lists: Arc::new(AllowLists {
                hosts: config.allowed_hosts.clone(),
                origins: config.allowed_origins.clone(),
            }),
            check_origin: true,
        }
    }

    /// The same layer without the `Origin` check, for public documents that any origin may
    /// read (CORS `*`): a rebound `Host` is still refused.
    pub fn host_only(self) -> HostGuardLayer {
        HostGuardLayer {
            check_origin: false,
            ..self
        }
    }
}

impl<S> Layer<S> for HostGuardLayer {
    type Service = HostGuard<S>;

    fn layer(&self, inner: S) -> HostGuard<S> {
        HostGuard {
            inner,
            lists: self.lists.clone(),
            check_origin: self.check_origin,
        }
    }
}

/// Answers 403 with a JSON-RPC error body when `Host` (or, unless host-only, `Origin`) is not
/// allowed; passes every other request to `S` unchanged.
#[derive(Debug, Clone)]
pub struct HostGuard<S> {
    inner: S,
    lists: Arc<AllowLists>,
    check_origin: bool,
}

impl<S, B> Service<Request<B>> for HostGuard<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.lists.check(self.check_origin, request.headers()) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(rejection) => Either::Left(ready(Ok(rejection.into_response()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(host) = host {
            map.insert(HOST, host.parse().unwrap());
        }
        if let Some(origin) = origin {
            map.insert(ORIGIN, origin.parse().unwrap());
        }
        map
    }

    #[test]
    fn accepts_loopback_names_with_ports() {
        let config = TransportConfig::default();
        for host in ["localhost:8080", "127.0.0.1:1", "[::1]:9", "localhost"] {
            let origin = format!("http://{host}");
            assert_eq!(
                check(&config, &headers(Some(host), Some(&origin))),
                Ok(()),
                "{host}"
            );
        }
        assert_eq!(check(&config, &headers(Some("localhost:1"), None)), Ok(()));
    }

    #[test]
    fn refuses_foreign_hosts_and_origins() {
        let config = TransportConfig::default();
        assert_eq!(
            check(&config, &headers(Some("evil.example.com"), None)),
            Err(Rejection::ForbiddenHost)
        );
        assert_eq!(
            check(
                &config,
                &headers(Some("localhost:1"), Some("http://evil.example.com"))
            ),
            Err(Rejection::ForbiddenOrigin)
        );
        assert_eq!(
            check(&config, &headers(None, Some("null"))),
            Err(Rejection::ForbiddenOrigin)
        );
        assert_eq!(
            check(
                &config,
                &headers(None, Some("http://localhost@evil.example.com"))
            ),
            Err(Rejection::ForbiddenOrigin)
        );
    }

    #[test]
    fn configured_origins_and_wildcards() {
        let config = TransportConfig {
            allowed_hosts: vec!["mcp.example.com".into()],
            allowed_origins: vec!["https://app.example.com".into()],
            ..Default::default()
        };
        assert_eq!(
            check(
                &config,
                &headers(Some("mcp.example.com"), Some("https://app.example.com"))
            ),
            Ok(())
        );
        assert_eq!(
            check(&config, &headers(Some("localhost"), None)),
            Err(Rejection::ForbiddenHost)
        );
        let open = TransportConfig {
            allowed_hosts: vec!["*".into()],
            allowed_origins: vec!["*".into()],
            ..Default::default()
        };
        assert_eq!(
            check(&open, &headers(Some("anything"), Some("https://x.y"))),
            Ok(())
        );
    }
}
