//! The token endpoint (authorization code with PKCE, refresh token with rotation and reuse
//! detection) and the revocation endpoint (RFC 7009), with client authentication.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::ServerState;
use super::authorize::{ClientLookup, s256};
use super::client::{Client, GrantType, TokenEndpointAuthMethod};
use super::error::{OAuthError, no_store};
use super::metrics;
use super::store::{Grant, Refreshed, User, now_secs, random_token};

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    scope: String,
    iat: u64,
    exp: u64,
    jti: String,
    /// The grant it was issued under: revoking the grant refuses the token.
    grant: &'a str,
}

/// POST `/oauth/token`.
pub(crate) async fn token(
    State(server): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match exchange(&server, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn exchange(
    server: &ServerState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let form = read_form(headers, body)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    match grant_type.as_str() {
        "authorization_code" => {
            let client = authenticate_client(server, headers, &form).await?;
            if !client.grant_types.contains(&GrantType::AuthorizationCode) {
                return Err(OAuthError::unauthorized_client(
                    "the client did not register the authorization_code grant",
                ));
            }
            authorization_code(server, &client, &form).await
        }
        "refresh_token" => {
            let client = authenticate_client(server, headers, &form).await?;
            if !client.allows_refresh() {
                return Err(OAuthError::unauthorized_client(
                    "the client did not register the refresh_token grant",
                ));
            }
            refresh_token(server, &client, &form).await
        }
        other => Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {other:?} is not supported: use authorization_code or refresh_token"
        ))),
    }
}

async fn authorization_code(
    server: &ServerState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let code = required(form, "code")?;
    let redirect_uri = required(form, "redirect_uri")?;
    let verifier = required(form, "code_verifier")?;
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)",
        ));
    }
    let record = match server.store.redeem_code(code).await? {
        Ok(Some(record)) => record,
        Ok(None) => {
            return Err(OAuthError::invalid_grant(
                "the code is unknown, expired or already used",
            ));
        }
        Err(grant_id) => {
            // A second use: whoever holds the code may not be the client; what the first use
            // obtained is revoked (RFC 6749 §4.1.2).
            server
                .store
                .revoke_grant(&grant_id, server.config.access_token_ttl)
                .await?;
            server.note_revoked(&grant_id);
            tracing::warn!(client_id = %client.client_id, "a code was redeemed twice: its grant is revoked");
            metrics::code_reused();
            return Err(OAuthError::invalid_grant(
                "the code was already used; the tokens issued for it are revoked",
            ));
        }
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if record.redirect_uri != *redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri is not the one of the authorization request",
        ));
    }
    if s256(verifier) != record.code_challenge {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    check_resource(server, form.get("resource"), &record.resource)?;
    let refresh = server.issues_refresh_tokens(client).then(random_token);
    if let Some(secret) = &refresh {
        let grant = Grant {
            client_id: client.client_id.clone(),
            user: record.user.clone(),
            scopes: record.scopes.clone(),
            resource: record.resource.clone(),
            refresh: super::store::hash(secret),
            spent: Vec::new(),
        };
        server
            .store
            .put_grant(&record.grant_id, &grant, server.config.refresh_token_ttl)
            .await?;
    }
    metrics::token_issued("authorization_code");
    issue(
        server,
        client,
        &record.user,
        &record.scopes,
        &record.resource,
        &record.grant_id,
        refresh.map(|secret| format!("{}.{secret}", record.grant_id)),
    )
}

async fn refresh_token(
    server: &ServerState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let token = required(form, "refresh_token")?;
    let unknown = || OAuthError::invalid_grant("the refresh token is unknown, expired or revoked");
    let (grant_id, secret) = token.split_once('.').ok_or_else(unknown)?;
    let grant = server.store.grant(grant_id).await?.ok_or_else(unknown)?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // A narrower scope may be asked for, never a wider one (RFC 6749 §6).
    let scopes = match form.get("scope").filter(|s| !s.trim().is_empty()) {
        None => grant.scopes.clone(),
        Some(scope) => {
            let asked: Vec<String> = scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(extra) = asked.iter().find(|s| !grant.scopes.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {extra:?} was not granted"
                )));
            }
            asked
        }
    };
    check_resource(server, form.get("resource"), &grant.resource)?;
    let next = random_token();
    let grant = match server
        .store
        .refresh(
            grant_id,
            secret,
            &next,
            server.config.refresh_token_ttl,
            server.config.access_token_ttl,
        )
        .await?
    {
        Refreshed::Rotated(grant) => grant,
        Refreshed::Reused => {
            tracing::warn!(
                client_id = %client.client_id,
                "a replaced refresh token came back: the grant is revoked (a stolen token, or a client that lost its newest one)"
            );
            server.note_revoked(grant_id);
            metrics::refresh_reused();
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; the whole grant is revoked",
            ));
        }
        Refreshed::Unknown => return Err(unknown()),
    };
    metrics::token_issued("refresh_token");
    issue(
        server,
        client,
        &grant.user,
        &scopes,
        &grant.resource,
        grant_id,
        Some(format!("{grant_id}.{next}")),
    )
}

/// The token response (RFC 6749 §5.1).
fn issue(
    server: &ServerState,
    client: &Client,
    user: &User,
    scopes: &[String],
    resource: &str,
    grant_id: &str,
    refresh_token: Option<String>,
) -> Result<Response, OAuthError> {
    let now = now_secs();
    let ttl = server.config.access_token_ttl.as_secs();
    let scope = scopes.join(" ");
    let claims = AccessClaims {
        iss: &server.issuer,
        sub: &user.sub,
        aud: resource,
        client_id: &client.client_id,
        scope: scope.clone(),
        iat: now,
        exp: now + ttl,
        jti: random_token(),
        grant: grant_id,
    };
    let access_token = server
        .keys
        .sign("at+jwt", &claims)
        .map_err(|e| OAuthError::server_error(e.to_string()))?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
    });
    if let Some(map) = body.as_object_mut() {
        // No scope granted: no `scope` member rather than an empty one.
        if !scope.is_empty() {
            map.insert("scope".into(), scope.into());
        }
        if let Some(refresh) = refresh_token {
            map.insert("refresh_token".into(), refresh.into());
        }
    }
    let mut response = (StatusCode::OK, Json(body)).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// POST `/oauth/revoke` (RFC 7009): ends the grant of a refresh or access token of the
/// authenticated client. Unknown and foreign tokens get 200 too (§2.2).
pub(crate) async fn revoke(
    State(server): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let form = read_form(&headers, &body)?;
        let client = authenticate_client(&server, &headers, &form).await?;
        let token = required(&form, "token")?;
        let grant_id = match token.split_once('.') {
            // A refresh token: `<grant>.<secret>`; a JWT has two dots.
            Some((grant_id, secret)) if !secret.contains('.') => {
                match server.store.grant(grant_id).await? {
                    Some(grant) if grant.client_id == client.client_id => Some(grant_id.to_owned()),
                    _ => None,
                }
            }
            _ => match server.tokens.validate(token).await {
                Ok(principal) => {
                    let claim = |name: &str| {
                        principal
                            .claims
                            .get(name)
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned)
                    };
                    claim("client_id")
                        .filter(|id| *id == client.client_id)
                        .and(claim("grant"))
                }
                Err(_) => None,
            },
        };
        if let Some(grant_id) = grant_id {
            server
                .store
                .revoke_grant(&grant_id, server.config.access_token_ttl)
                .await?;
            server.note_revoked(&grant_id);
            metrics::revoked();
        }
        Ok::<_, OAuthError>(())
    }
    .await;
    match outcome {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

/// Who is calling: `client_secret_basic`, `client_secret_post` or a public client's
/// `client_id` (RFC 6749 §2.3, one method per request).
pub(crate) async fn authenticate_client(
    server: &ServerState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Client, OAuthError> {
    let basic = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(parse_basic(value).ok_or_else(|| {
            OAuthError::invalid_client("the Authorization header is not valid client_secret_basic")
        })?),
    };
    let (client_id, secret) = match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: Authorization or client_secret, not both",
            ));
        }
        (Some((id, _)), Some(form_id), None) if *form_id != id => {
            return Err(OAuthError::invalid_client(
                "client_id differs from the one in Authorization",
            ));
        }
        (Some((id, secret)), _, None) => (id, Some(secret)),
        (None, Some(id), secret) => (id.clone(), secret.cloned()),
        (None, None, _) => {
            return Err(OAuthError::invalid_client(
                "client authentication is required (client_id, or Authorization: Basic)",
            ));
        }
    };
    let client = match server.find_client(&client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(OAuthError::invalid_client("the client is not registered")),
        Err(ClientLookup::Document(detail)) => return Err(OAuthError::invalid_client(detail)),
        Err(ClientLookup::Unavailable) => {
            return Err(OAuthError::unavailable());
        }
    };
    match (client.token_endpoint_auth_method, secret) {
        (TokenEndpointAuthMethod::None, None) => Ok(client),
        (TokenEndpointAuthMethod::None, Some(_)) => Err(OAuthError::invalid_client(
            "the client is public (token_endpoint_auth_method none) and has no secret",
        )),
        (_, None) => Err(OAuthError::invalid_client("the client secret is missing")),
        (_, Some(secret)) if client.verify_secret(&secret) => Ok(client),
        (_, Some(_)) => Err(OAuthError::invalid_client("the client secret is wrong")),
    }
}

/// `Authorization: Basic base64(urlencoded id ":" urlencoded secret)` (RFC 6749 §2.3.1).
fn parse_basic(value: &http::HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |part: &str| {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

/// The form body, each parameter once (RFC 6749 §3.2).
fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let form_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form_type {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut form = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if form.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} appears more than once"
            )));
        }
    }
    Ok(form)
}

fn required<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a String, OAuthError> {
    form.get(name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

/// RFC 8707: a `resource` at the token endpoint must be the one granted.
fn check_resource(
    server: &ServerState,
    asked: Option<&String>,
    granted: &str,
) -> Result<(), OAuthError> {
    match asked {
        Some(resource) if resource.trim_end_matches('/') != granted => {
            Err(OAuthError::invalid_target(format!(
                "this server issues tokens for {} only",
                server.resource
            )))
        }
        _ => Ok(()),
    }
}
