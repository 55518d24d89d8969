//! Authorization server discovery: RFC 8414 and OpenID Connect Discovery, in the order of the
//! MCP authorization specification, and the `http://`-only-on-loopback rule.

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::error::Error;

/// Timeout of one metadata or JWKS fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The client for metadata and JWKS: bounded, and never following redirects (a redirect could
/// lead off the configured host or onto plain HTTP).
pub(crate) fn client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        // Some providers' APIs (GitHub's userinfo) refuse a request that names no agent.
        .user_agent(concat!("shoal/", env!("CARGO_PKG_VERSION")))
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(Error::Client)
}

/// Parses `url`, accepting `https://`, and `http://` for loopback hosts only.
pub(crate) fn checked_url(url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|_| Error::InvalidUrl(url.to_owned()))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(Error::InvalidUrl(url.to_owned())),
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(Error::InsecureUrl(url.to_owned())),
        _ => Err(Error::InvalidUrl(url.to_owned())),
    }
}

/// The metadata URLs to try for `issuer`, in order. For `https://as/x`:
/// `https://as/.well-known/oauth-authorization-server/x`,
/// `https://as/.well-known/openid-configuration/x`,
/// `https://as/x/.well-known/openid-configuration`; for an issuer without a path:
/// `/.well-known/oauth-authorization-server`, then `/.well-known/openid-configuration`.
pub(crate) fn candidates(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut base = issuer.clone();
    base.set_query(None);
    base.set_fragment(None);
    let at = |p: String| {
        let mut url = base.clone();
        url.set_path(&p);
        url
    };
    if path.is_empty() {
        vec![
            at("/.well-known/oauth-authorization-server".into()),
            at("/.well-known/openid-configuration".into()),
        ]
    } else {
        vec![
            at(format!("/.well-known/oauth-authorization-server{path}")),
            at(format!("/.well-known/openid-configuration{path}")),
            at(format!("{path}/.well-known/openid-configuration")),
        ]
    }
}

/// The authorization server's metadata and its JWKS URL.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    pub(crate) metadata: Value,
    pub(crate) jwks_uri: Option<String>,
}

/// Fetches the first usable metadata document of `issuer`: one whose `issuer` equals the
/// configured issuer exactly (RFC 8414 §3.3).
pub(crate) async fn discover(client: &reqwest::Client, issuer: &str) -> Result<Discovered, Error> {
    let url = checked_url(issuer)?;
    let mut tried = Vec::new();
    for candidate in candidates(&url) {
        let outcome: Result<(), String> = match fetch_json(client, &candidate).await {
            Err(detail) => Err(detail),
            Ok(metadata) => match metadata.get("issuer").and_then(Value::as_str) {
                Some(found) if found == issuer => {
                    let jwks_uri = metadata
                        .get("jwks_uri")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    return Ok(Discovered { metadata, jwks_uri });
                }
                Some(found) => Err(format!("names issuer {found:?}")),
                None => Err("has no issuer".to_owned()),
            },
        };
        if let Err(detail) = outcome {
            tracing::debug!(url = %candidate, %detail, "no usable authorization server metadata");
            tried.push(format!("{candidate} {detail}"));
        }
    }
    Err(Error::Discovery {
        issuer: issuer.to_owned(),
        detail: tried.join("; "),
    })
}

/// GETs a JSON object.
pub(crate) async fn fetch_json(client: &reqwest::Client, url: &Url) -> Result<Value, String> {
    let response = client
        .get(url.clone())
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let value: Value = response
        .json()
        .await
        .map_err(|_| "answered something that is not JSON".to_owned())?;
    if !value.is_object() {
        return Err("answered JSON that is not an object".to_owned());
    }
    Ok(value)
}

/// Why `error` kept a fetch from getting an answer, with every cause in its chain; a TLS
/// certificate that did not verify is named as such, with where the trust roots come from.
fn unreachable(error: &reqwest::Error) -> String {
    let mut causes = vec![error.to_string()];
    let mut certificate = None;
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        causes.push(cause.to_string());
        if let Some(rustls::Error::InvalidCertificate(reason)) = tls_error(cause) {
            certificate = Some(format!("{reason:?}"));
        }
        next = cause.source();
    }
    causes.dedup();
    let chain = causes.join(": ");
    match certificate {
        Some(reason) => format!(
            "unreachable: its TLS certificate is not trusted ({reason}); certificates are \
             verified against the system's trust store, or the CA file or directory named by \
             SSL_CERT_FILE / SSL_CERT_DIR when set ({chain})"
        ),
        None => format!("unreachable ({chain})"),
    }
}

/// The rustls error `cause` is or wraps: the TLS stack wraps it in `io::Error`s (sometimes
/// more than one), whose `source` skips what they wrap.
fn tls_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = cause;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn urls(issuer: &str) -> Vec<String> {
        candidates(&Url::parse(issuer).unwrap())
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn discovery_order_follows_the_mcp_spec() {
        assert_eq!(
            urls("https://as.example.com/realms/mcp"),
            [
                "https://as.example.com/.well-known/oauth-authorization-server/realms/mcp",
                "https://as.example.com/.well-known/openid-configuration/realms/mcp",
                "https://as.example.com/realms/mcp/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            urls("https://tenant.auth0.com/"),
            [
                "https://tenant.auth0.com/.well-known/oauth-authorization-server",
                "https://tenant.auth0.com/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for ok in [
            "https://as.example.com",
            "http://127.0.0.1:9000/x",
            "http://localhost:1",
            "http://[::1]:2/",
        ] {
            assert!(checked_url(ok).is_ok(), "{ok}");
        }
        assert!(matches!(
            checked_url("http://as.example.com"),
            Err(Error::InsecureUrl(_))
        ));
        assert!(matches!(
            checked_url("ftp://as.example.com"),
            Err(Error::InvalidUrl(_))
        ));
    }
}
