//! Dynamic Client Registration (RFC 7591): checked metadata, a per-source rate limit, and the
//! client kept in the session host.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use ipnet::IpNet;

use super::ServerState;
use super::client;
use super::error::{OAuthError, no_store};
use super::metrics;
use super::store::now_secs;

/// POST `/oauth/register`.
pub(crate) async fn register(
    State(server): State<Arc<ServerState>>,
    parts: http::request::Parts,
    body: Bytes,
) -> Response {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    match register_client(&server, peer, &parts.headers, &body).await {
        Ok(response) => response,
        Err(error) => {
            metrics::registration("dcr", error.code);
            error.into_response()
        }
    }
}

async fn register_client(
    server: &ServerState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(OAuthError::invalid_client_metadata(
            "the registration request must be application/json",
        ));
    }
    let source = peer.map_or_else(
        || "unknown".to_owned(),
        |peer| client_address(peer.ip(), headers, &server.config.trusted_proxies).to_string(),
    );
    if !server
        .store
        .count_registration(&source, server.config.registrations_per_minute)
        .await?
    {
        return Err(OAuthError::slow_down(
            "too many registrations from this address; try again in a minute",
        ));
    }
    let (client, secret) =
        client::register(body, &server.redirects, now_secs()).map_err(|e| match e.code() {
            "invalid_redirect_uri" => OAuthError::invalid_redirect_uri(e.description()),
            _ => OAuthError::invalid_client_metadata(e.description()),
        })?;
    server
        .store
        .put_client(&client, server.config.client_ttl)
        .await?;
    metrics::registration("dcr", "ok");
    tracing::info!(client_id = %client.client_id, name = ?client.client_name, %source, "client registered");
    let body = client::registration_response(&client, secret.as_deref());
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// Who sent a request: the peer, or when the peer is a trusted proxy, the last address of
/// `X-Forwarded-For` that is not one. Each proxy appends the address it was reached from, so
/// only the entries right of the first untrusted one are known true; everything left of it
/// may be the client's own invention, and so is an entry that is not an address. Behind an
/// untrusted peer the header is ignored; behind a balancer left out of `trusted` every request
/// is the balancer's, and the limit is per balancer, which still bounds a flood.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut nearest = peer;
    for entry in entries.iter().rev() {
        match forwarded_ip(entry) {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return ip,
            // What a trusted proxy reports and cannot be read: the proxy it came through.
            None => break,
        }
    }
    nearest
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`[::1]:443`, `1.2.3.4:80`).
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn behind_a_trusted_proxy_the_last_untrusted_forwarded_address_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy = ip("10.1.2.3");
        let from = |values: &[&str]| client_address(proxy, &headers(values), &trusted);
        assert_eq!(from(&["203.0.113.7"]), ip("203.0.113.7"));
        // A forged entry left of the real one is passed over.
        assert_eq!(from(&["198.51.100.1, 203.0.113.7"]), ip("203.0.113.7"));
        // Proxies in the chain are skipped; headers repeated are one list.
        assert_eq!(from(&["203.0.113.7", "10.9.9.9"]), ip("203.0.113.7"));
        assert_eq!(from(&["[2001:db8::1]:443, 10.0.0.2:80"]), ip("2001:db8::1"));
        // Nothing but proxies: the first; no header or garbage: the peer.
        assert_eq!(from(&["10.0.0.9, 10.0.0.2"]), ip("10.0.0.9"));
        assert_eq!(from(&[]), proxy);
        assert_eq!(from(&["unknown"]), proxy);
        // The client cannot hide behind an entry that is not an address: the entries right of
        // it came from the proxies, and one left of it is never reached.
        assert_eq!(
            from(&["203.0.113.7, garbage, 198.51.100.1"]),
            ip("198.51.100.1")
        );
        assert_eq!(from(&["203.0.113.7, garbage, 10.0.0.2"]), ip("10.0.0.2"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let peer = ip("198.51.100.1");
        let forged = headers(&["203.0.113.7"]);
        assert_eq!(client_address(peer, &forged, &[]), peer);
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_address(peer, &forged, &trusted), peer);
    }
}
