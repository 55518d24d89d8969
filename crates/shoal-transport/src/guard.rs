//! DNS-rebinding protection: a browser tricked into sending requests to a local server carries
//! the attacker's name in `Host` and `Origin`; both must be on the allow-list.

use http::HeaderMap;
use http::header::{HOST, ORIGIN};

use crate::config::TransportConfig;
use crate::rejection::Rejection;

/// Checks `Host` and `Origin` against the allow-lists.
pub(crate) fn check(config: &TransportConfig, headers: &HeaderMap) -> Result<(), Rejection> {
    if let Some(host) = headers.get(HOST) {
        let host = host.to_str().map_err(|_| Rejection::ForbiddenHost)?;
        if !host_allowed(config, strip_port(host)) {
            return Err(Rejection::ForbiddenHost);
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().map_err(|_| Rejection::ForbiddenOrigin)?;
        if !origin_allowed(config, origin) {
            return Err(Rejection::ForbiddenOrigin);
        }
    }
    Ok(())
}

fn host_allowed(config: &TransportConfig, host: &str) -> bool {
    config
        .allowed_hosts
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(host))
}

fn origin_allowed(config: &TransportConfig, origin: &str) -> bool {
    if config
        .allowed_origins
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
    !authority.is_empty() && !authority.contains('@') && host_allowed(config, strip_port(authority))
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
