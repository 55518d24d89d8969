//! Dynamic Client Registration (RFC 7591): checked metadata, a per-source rate limit, and the
//! client kept in the session host.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::StatusCode;
use http::header::CONTENT_TYPE;

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
    // Behind a load balancer this is the balancer's address: the limit is then per balancer,
    // which still bounds a flood.
    let source = peer.map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string());
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
    tracing::info!(client_id = %client.client_id, name = ?client.client_name, "client registered");
    let body = client::registration_response(&client, secret.as_deref());
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    no_store(response.headers_mut());
    Ok(response)
}
