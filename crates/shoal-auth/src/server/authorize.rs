//! The browser's path: `/oauth/authorize` checks the client's request and sends the browser to
//! the upstream provider; `/oauth/callback` verifies who logged in there; `/oauth/consent`
//! asks them, and sends the browser back to the client with a code (or `access_denied`).
//!
//! The flow is bound to the browser that started it by a cookie whose hash the pending record
//! keeps, and the consent form carries an anti-forgery token: a link to another person's
//! callback or consent page leads nowhere.
//!
//! Errors before the client and its redirect URI are known to be genuine are shown as a page
//! (RFC 6749 §4.1.2.1: never redirect to an unchecked URI); later ones go back to the client
//! as `error`, `error_description`, `state` and `iss`.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::digest;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use super::ServerState;
use super::client::{Client, ClientOrigin, GrantType};
use super::metrics;
use super::pages::{self, Consent};
use super::store::{Code, Pending, hash, random_token};

/// The cookie that binds a flow to its browser.
const BROWSER_COOKIE: &str = "shoal_oauth_browser";

/// The checked parameters of an authorization request.
struct AuthorizationRequest {
    client: Client,
    redirect_uri: String,
    state: Option<String>,
}

/// GET `/oauth/authorize`.
pub(crate) async fn authorize(
    State(server): State<Arc<ServerState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = match parse_unique(query.as_deref().unwrap_or("")) {
        Ok(params) => params,
        Err(name) => {
            return refuse_page(
                "duplicate_parameter",
                &format!("The parameter {name} appears more than once."),
            );
        }
    };
    let Some(client_id) = params.get("client_id") else {
        return refuse_page("missing_client_id", "The request names no client_id.");
    };
    let client = match server.find_client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return refuse_page(
                "unknown_client",
                "The application is not registered with this server. It must register again.",
            );
        }
        Err(ClientLookup::Document(detail)) => {
            return refuse_page("client_metadata_document", &detail);
        }
        Err(ClientLookup::Unavailable) => {
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The server cannot reach its storage right now.",
            );
        }
    };
    let redirect_uri = match super::redirect::check_redirect(
        &client,
        params.get("redirect_uri").map(String::as_str),
    ) {
        Ok(uri) => uri,
        Err(detail) => return refuse_page("redirect_uri", &detail.to_string()),
    };
    let request = AuthorizationRequest {
        client,
        redirect_uri,
        state: params.get("state").cloned(),
    };
    match start(&server, &request, &params, &headers).await {
        Ok(response) => response,
        Err((code, description)) => {
            metrics::authorization_failed(code);
            back_to_client(
                &server,
                &request.redirect_uri,
                request.state.as_deref(),
                Err((code, &description)),
            )
        }
    }
}

/// The checks that are answered at the client's redirect URI, then the upstream redirect.
async fn start(
    server: &ServerState,
    request: &AuthorizationRequest,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, (&'static str, String)> {
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return Err(("invalid_request", "response_type is required".into())),
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "only response_type=code is supported".into(),
            ));
        }
    }
    if !request
        .client
        .grant_types
        .contains(&GrantType::AuthorizationCode)
    {
        return Err((
            "unauthorized_client",
            "the client did not register the authorization_code grant".into(),
        ));
    }
    let Some(challenge) = params.get("code_challenge").cloned() else {
        return Err((
            "invalid_request",
            "code_challenge is required (PKCE with S256)".into(),
        ));
    };
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return Err((
            "invalid_request",
            "code_challenge_method must be S256".into(),
        ));
    }
    if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(&challenge).is_err() {
        return Err((
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)".into(),
        ));
    }
    match params.get("resource") {
        None => {
            return Err((
                "invalid_request",
                format!("resource is required (RFC 8707): {}", server.resource),
            ));
        }
        Some(resource) if resource.trim_end_matches('/') != server.resource => {
            return Err((
                "invalid_target",
                format!("this server issues tokens for {} only", server.resource),
            ));
        }
        Some(_) => {}
    }
    let scopes = server
        .requested_scopes(params.get("scope").map(String::as_str))
        .map_err(|description| ("invalid_scope", description))?;

    let (browser, set_cookie) = match browser_cookie(headers) {
        Some(value) => (value, None),
        None => {
            let value = random_token();
            let cookie = server.cookie(&value);
            (value, Some(cookie))
        }
    };
    let id = random_token();
    let verifier = random_token();
    let pending = Pending {
        client_id: request.client.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        code_challenge: challenge,
        scopes,
        resource: server.resource.clone(),
        browser: hash(&browser),
        nonce: random_token(),
        upstream_verifier: verifier.clone(),
        user: None,
        csrf: None,
    };
    if let Err(error) = server.store.put_pending(&id, &pending).await {
        tracing::warn!(%error, "an authorization could not be stored");
        return Err((
            "temporarily_unavailable",
            "the server cannot reach its storage; try again".into(),
        ));
    }
    metrics::authorization_started();
    let location = server.upstream.authorization_url(
        &server.callback_url(),
        &id,
        &pending.nonce,
        &s256(&verifier),
    );
    let mut response = Redirect::to(&location).into_response();
    if let Some(cookie) = set_cookie
        && let Ok(value) = HeaderValue::from_str(&cookie)
    {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// GET `/oauth/callback`: the upstream provider sends the browser back here.
pub(crate) async fn callback(
    State(server): State<Arc<ServerState>>,
    axum::extract::Query(params): axum::extract::Query<CallbackParams>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = params.state.as_deref() else {
        return refuse_page(
            "callback_without_state",
            "The sign-in response carries no state.",
        );
    };
    let mut pending = match server.store.pending(id).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return expired_page(),
        Err(error) => return unavailable_page(&error),
    };
    if !same_browser(&pending, &headers) {
        return refuse_page(
            "other_browser",
            "This sign-in was started in another browser. Start again from the application.",
        );
    }
    if pending.user.is_some() {
        return refuse_page(
            "callback_replayed",
            "This sign-in response was already used.",
        );
    }
    if let Some(error) = params.error.as_deref() {
        let _ = server.store.take_pending(id).await;
        tracing::info!(client_id = %pending.client_id, upstream_error = %error, "the upstream provider ended a sign-in with an error");
        metrics::authorization_failed("upstream_refused");
        let description = format!("the sign-in at the identity provider ended with {error}");
        return back_to_client(
            &server,
            &pending.redirect_uri,
            pending.state.as_deref(),
            Err(("access_denied", &description)),
        );
    }
    let Some(code) = params.code.as_deref() else {
        return refuse_page(
            "callback_without_code",
            "The sign-in response carries no code.",
        );
    };
    let user = match server
        .upstream
        .finish(
            code,
            &server.callback_url(),
            &pending.upstream_verifier,
            &pending.nonce,
        )
        .await
    {
        Ok(user) => user,
        Err(error) => {
            tracing::warn!(%error, client_id = %pending.client_id, "the upstream sign-in could not be verified");
            let _ = server.store.take_pending(id).await;
            metrics::authorization_failed("upstream_invalid");
            return back_to_client(
                &server,
                &pending.redirect_uri,
                pending.state.as_deref(),
                Err((
                    "server_error",
                    "the sign-in at the identity provider could not be verified",
                )),
            );
        }
    };
    pending.user = Some(user);
    pending.csrf = Some(random_token());
    if let Err(error) = server.store.put_pending(id, &pending).await {
        return unavailable_page(&error);
    }
    // A GET the browser can reload, instead of a page only this one-time callback shows.
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/oauth/consent?request={id}")) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct ConsentParams {
    request: Option<String>,
}

/// GET `/oauth/consent`: the page.
pub(crate) async fn consent_page(
    State(server): State<Arc<ServerState>>,
    axum::extract::Query(params): axum::extract::Query<ConsentParams>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = params.request.as_deref() else {
        return refuse_page(
            "consent_without_request",
            "The consent page was opened without its request.",
        );
    };
    let pending = match server.store.pending(id).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return expired_page(),
        Err(error) => return unavailable_page(&error),
    };
    let (Some(user), Some(csrf)) = (&pending.user, &pending.csrf) else {
        return refuse_page(
            "consent_before_sign_in",
            "Sign in first: start again from the application.",
        );
    };
    if !same_browser(&pending, &headers) {
        return refuse_page(
            "other_browser",
            "This sign-in was started in another browser. Start again from the application.",
        );
    }
    let client = match server.find_client(&pending.client_id).await {
        Ok(Some(client)) => client,
        Ok(None) | Err(ClientLookup::Document(_)) => {
            return refuse_page("unknown_client", "The application is no longer registered.");
        }
        Err(ClientLookup::Unavailable) => {
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The server cannot reach its storage right now.",
            );
        }
    };
    let client_host = (client.origin == ClientOrigin::MetadataDocument)
        .then(|| {
            url::Url::parse(&client.client_id)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
        })
        .flatten();
    let redirect_to = url::Url::parse(&pending.redirect_uri)
        .ok()
        .and_then(|u| {
            u.host_str().map(|host| match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            })
        })
        .unwrap_or_else(|| pending.redirect_uri.clone());
    let scopes = pending
        .scopes
        .iter()
        .map(|scope| {
            let note = server.scopes.get(scope).cloned().unwrap_or_default();
            (scope.clone(), note)
        })
        .collect();
    pages::consent(&Consent {
        client: client.client_name.as_deref().unwrap_or(&client.client_id),
        client_host: client_host.as_deref(),
        redirect_to: &redirect_to,
        resource: &server.resource_name,
        user: user.display(),
        scopes,
        request: id,
        csrf,
    })
}

#[derive(Default)]
pub(crate) struct Decision {
    request: Option<String>,
    csrf: Option<String>,
    decision: Option<String>,
}

/// POST `/oauth/consent`: the user's decision.
pub(crate) async fn consent_decision(
    State(server): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(form) = read_decision(&body) else {
        return refuse_page("consent_malformed", "The decision form could not be read.");
    };
    let Some(id) = form.request.as_deref() else {
        return refuse_page("consent_without_request", "The decision names no request.");
    };
    let pending = match server.store.pending(id).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return expired_page(),
        Err(error) => return unavailable_page(&error),
    };
    let forged = !same_browser(&pending, &headers)
        || pending.csrf.is_none()
        || pending.csrf.as_deref() != form.csrf.as_deref();
    if forged {
        return refuse_page(
            "consent_forged",
            "This decision did not come from the consent page shown to you. Start again from the application.",
        );
    }
    let approve = match form.decision.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return refuse_page(
                "consent_without_decision",
                "The decision is neither allow nor deny.",
            );
        }
    };
    // One decision per request, whichever replica receives a double-submitted form.
    let pending = match server.store.take_pending(id).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return expired_page(),
        Err(error) => return unavailable_page(&error),
    };
    let Some(user) = pending.user.clone() else {
        return refuse_page(
            "consent_before_sign_in",
            "Sign in first: start again from the application.",
        );
    };
    if !approve {
        metrics::authorization_failed("access_denied");
        return back_to_client(
            &server,
            &pending.redirect_uri,
            pending.state.as_deref(),
            Err(("access_denied", "the user denied the request")),
        );
    }
    let code = random_token();
    let record = Code {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        scopes: pending.scopes.clone(),
        resource: pending.resource.clone(),
        user,
        grant_id: random_token(),
    };
    if let Err(error) = server.store.put_code(&code, &record).await {
        return unavailable_page(&error);
    }
    metrics::authorization_completed();
    back_to_client(
        &server,
        &pending.redirect_uri,
        pending.state.as_deref(),
        Ok(&code),
    )
}

/// The consent form's fields; a field given twice is refused.
fn read_decision(body: &[u8]) -> Result<Decision, String> {
    let mut decision = Decision::default();
    for (name, value) in url::form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "request" => &mut decision.request,
            "csrf" => &mut decision.csrf,
            "decision" => &mut decision.decision,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(name.into_owned());
        }
    }
    Ok(decision)
}

/// How a client lookup failed.
pub(crate) enum ClientLookup {
    /// The client id is a metadata document URL whose document cannot be used.
    Document(String),
    /// The session host did not answer.
    Unavailable,
}

impl ServerState {
    /// The client `client_id`: a metadata document URL is resolved (fetched or cached), any
    /// other id is looked up among the registered clients.
    pub(crate) async fn find_client(
        &self,
        client_id: &str,
    ) -> Result<Option<Client>, ClientLookup> {
        // Registered ids are random base64url: an id with a scheme is a metadata document
        // URL (or a bad one, which the resolver names the reason for).
        if client_id.contains("://") {
            let Some(resolver) = &self.cimd else {
                return Err(ClientLookup::Document(
                    "This server does not accept client metadata documents.".into(),
                ));
            };
            return resolver
                .resolve(client_id, &self.redirects)
                .await
                .map(Some)
                .map_err(|e| ClientLookup::Document(e.to_string()));
        }
        self.store.client(client_id).await.map_err(|error| {
            tracing::warn!(%error, "a client lookup failed: the session host did not answer");
            ClientLookup::Unavailable
        })
    }

    /// The scopes of a request's `scope`, or the default ones; every one must be offered.
    pub(crate) fn requested_scopes(&self, scope: Option<&str>) -> Result<Vec<String>, String> {
        let Some(scope) = scope.filter(|s| !s.trim().is_empty()) else {
            return Ok(self.default_scopes.clone());
        };
        let mut scopes: Vec<String> = Vec::new();
        for item in scope.split(' ').filter(|s| !s.is_empty()) {
            if !self.scopes.contains_key(item) {
                return Err(format!("scope {item:?} is not offered by this server"));
            }
            if !scopes.iter().any(|s| s == item) {
                scopes.push(item.to_owned());
            }
        }
        Ok(scopes)
    }

    fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.issuer)
    }

    fn cookie(&self, value: &str) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        // Lax: the upstream provider's redirect back here is a top-level navigation, which Lax
        // cookies accompany; a cross-site POST or subrequest does not carry it.
        format!("{BROWSER_COOKIE}={value}; Path=/oauth; HttpOnly; SameSite=Lax{secure}")
    }
}

/// The redirect back to the client: the code or the error, with `state` and `iss` (RFC 9207).
fn back_to_client(
    server: &ServerState,
    redirect_uri: &str,
    state: Option<&str>,
    outcome: Result<&str, (&str, &str)>,
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return refuse_page(
            "redirect_uri",
            "The application's redirect URI is not a URL.",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        match outcome {
            Ok(code) => {
                query.append_pair("code", code);
            }
            Err((error, description)) => {
                query.append_pair("error", error);
                query.append_pair("error_description", description);
            }
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &server.issuer);
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(LOCATION, location);
    }
    super::error::no_store(response.headers_mut());
    response
}

/// The query as a map, refusing a parameter given twice (RFC 6749 §3.1); `Err(name)`.
fn parse_unique(query: &str) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(name.into_owned());
        }
    }
    Ok(params)
}

fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == BROWSER_COOKIE && value.len() == 43)
        .map(|(_, value)| value.to_owned())
}

fn same_browser(pending: &Pending, headers: &HeaderMap) -> bool {
    browser_cookie(headers).is_some_and(|cookie| hash(&cookie) == pending.browser)
}

/// `base64url(SHA-256(verifier))`: the S256 code challenge (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

fn refuse_page(reason: &'static str, detail: &str) -> Response {
    metrics::authorization_failed(reason);
    pages::error(
        StatusCode::BAD_REQUEST,
        "This sign-in cannot continue",
        detail,
    )
}

fn expired_page() -> Response {
    refuse_page(
        "expired",
        "This sign-in has expired or was already completed. Start again from the application.",
    )
}

fn unavailable_page(error: &shoal_core::host::HostError) -> Response {
    tracing::warn!(%error, "an authorization step failed: the session host did not answer");
    pages::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "The server cannot reach its storage right now.",
    )
}
