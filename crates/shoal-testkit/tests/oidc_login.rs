//! The OpenID provider fixture's login clients, walked by `HeadlessUser`: a user logs in at the
//! real `oidc-provider`, the client's callback server (on a loopback port of its own) receives
//! code and state, and the code buys an id_token with the nonce and an access token. Then the
//! refusals: an empty login, a reused code, a wrong verifier, a request without PKCE. Last, the
//! headless user on a consent page shaped like Shoal's (hidden inputs, approve and deny buttons,
//! a cookie the POST needs).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use shoal_testkit::browser::{Decision, HeadlessUser, WalkError};
use shoal_testkit::oidc::{self, LoginClient, OidcProvider, Options, Pkce};
use shoal_testkit::{TestServer, spawn_router};
use tokio::sync::mpsc;

const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const CLIENT_ID: &str = "shoal-login";
const CLIENT_SECRET: &str = "shoal-login-secret";
const SCOPE: &str = "openid profile email mcp:tools";

/// The login client's redirect URI: a server that hands every query it gets to the test.
struct Callback {
    server: TestServer,
    received: mpsc::UnboundedReceiver<HashMap<String, String>>,
}

impl Callback {
    async fn start() -> Self {
        let (tx, received) = mpsc::unbounded_channel();
        let router = Router::new().route(
            "/callback",
            get(move |Query(query): Query<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(query);
                    "you may close this window"
                }
            }),
        );
        Callback {
            server: spawn_router(router).await,
            received,
        }
    }

    fn url(&self) -> String {
        self.server.url("/callback")
    }
}

/// A provider with one login client whose redirect URI is `redirect_uri`.
async fn provider(redirect_uri: &str) -> (OidcProvider, LoginClient) {
    let client = LoginClient::new(CLIENT_ID, CLIENT_SECRET, [redirect_uri]);
    let options = Options::new(RESOURCE, &["mcp:tools", "mcp:echo"]).login_client(client.clone());
    (OidcProvider::start_with(options).await, client)
}

fn random() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[tokio::test]
async fn a_user_logs_in_and_the_code_buys_an_id_token_with_the_nonce() {
    let mut callback = Callback::start().await;
    let redirect_uri = callback.url();
    let (provider, client) = provider(&redirect_uri).await;
    assert_eq!(provider.login_clients(), std::slice::from_ref(&client));
    assert_eq!(
        provider.authorization_endpoint(),
        format!("{}/auth", provider.issuer())
    );
    let (pkce, state, nonce) = (Pkce::new(), random(), random());
    let url = provider.authorization_url(&client, &redirect_uri, SCOPE, &state, &nonce, &pkce);

    let user = HeadlessUser::new("alice");
    let walk = user
        .authorize(&url, &redirect_uri, Decision::Approve)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", provider.log_tail()));
    assert_eq!(walk.param("state").as_deref(), Some(state.as_str()));
    assert_eq!(walk.param("iss").as_deref(), Some(provider.issuer()));
    let login_page = walk.last_page.as_deref().expect("the login page");
    assert!(login_page.contains(r#"name="login""#), "{login_page}");
    let login_post = walk
        .visits
        .iter()
        .find(|visit| visit.method == "POST")
        .expect("the login form was posted");
    assert!(
        login_post.url.ends_with("/login") && login_post.status == 303,
        "{:?}",
        walk.visits
    );

    // The browser's last step, which the walk leaves to the test: the client's callback.
    let delivered = user.http().get(&walk.redirect).send().await.unwrap();
    assert_eq!(delivered.status(), 200);
    let query = callback.received.recv().await.unwrap();
    assert_eq!(query["state"], state);
    let code = query["code"].clone();
    assert_eq!(walk.param("code").as_deref(), Some(code.as_str()));

    let (status, tokens) = provider
        .exchange_code(&client, &code, &redirect_uri, &pkce.verifier)
        .await;
    assert_eq!(status, 200, "{tokens}");
    let (header, claims) = oidc::decode(tokens["id_token"].as_str().expect("an id_token"));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], provider.keys().await.kids[0]);
    assert_eq!(claims["iss"], provider.issuer());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], nonce);
    assert_eq!(claims["name"], "alice");
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(claims["email_verified"], true);
    let (header, claims) = oidc::decode(tokens["access_token"].as_str().expect("an access token"));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["scope"], "mcp:tools");

    // The login session is kept: the same user is sent straight back, with no login page.
    let (pkce, state) = (Pkce::new(), random());
    let url = provider.authorization_url(&client, &redirect_uri, SCOPE, &state, &random(), &pkce);
    let walk = user
        .authorize(&url, &redirect_uri, Decision::Approve)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", provider.log_tail()));
    assert!(walk.last_page.is_none(), "{:?}", walk.visits);
    assert_eq!(walk.param("state").as_deref(), Some(state.as_str()));
    let code = walk.param("code").expect("a code");
    let (status, tokens) = provider
        .exchange_code(&client, &code, &redirect_uri, &pkce.verifier)
        .await;
    assert_eq!(status, 200, "{tokens}");

    // A code is good once (and its reuse revokes what it bought).
    let (status, body) = provider
        .exchange_code(&client, &code, &redirect_uri, &pkce.verifier)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn an_empty_login_is_refused_with_400_and_says_why() {
    let callback = Callback::start().await;
    let redirect_uri = callback.url();
    let (provider, client) = provider(&redirect_uri).await;
    let url = provider.authorization_url(
        &client,
        &redirect_uri,
        SCOPE,
        &random(),
        &random(),
        &Pkce::new(),
    );
    let error = HeadlessUser::new("")
        .authorize(&url, &redirect_uri, Decision::Approve)
        .await
        .expect_err("an empty login goes nowhere");
    assert_eq!(error.status(), Some(400), "{error}");
    assert_eq!(error.body(), Some("login: enter a user name\n"), "{error}");
    let WalkError::Page { url, visits, .. } = &error else {
        panic!("{error}");
    };
    assert!(url.ends_with("/login"), "{error}");
    assert_eq!(visits.last().map(|visit| visit.method), Some("POST"));
}

#[tokio::test]
async fn a_wrong_verifier_or_no_pkce_at_all_is_refused() {
    let callback = Callback::start().await;
    let redirect_uri = callback.url();
    let (provider, client) = provider(&redirect_uri).await;
    let user = HeadlessUser::new("bob");

    let pkce = Pkce::new();
    let url = provider.authorization_url(&client, &redirect_uri, SCOPE, "s", "n", &pkce);
    let walk = user
        .authorize(&url, &redirect_uri, Decision::Approve)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", provider.log_tail()));
    let code = walk.param("code").expect("a code");
    let (status, body) = provider
        .exchange_code(&client, &code, &redirect_uri, &Pkce::new().verifier)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "grant request is invalid");

    // Without a code challenge, the browser is sent back to the client with an error.
    let mut without = reqwest::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = without
        .query_pairs()
        .filter(|(key, _)| !key.starts_with("code_challenge"))
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    without.query_pairs_mut().clear().extend_pairs(&pairs);
    let walk = user
        .authorize(without.as_str(), &redirect_uri, Decision::Approve)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", provider.log_tail()));
    assert_eq!(walk.param("error").as_deref(), Some("invalid_request"));
    assert_eq!(
        walk.param("error_description").as_deref(),
        Some("Authorization Server policy requires PKCE to be used for this request")
    );
    assert_eq!(walk.param("code"), None);
}

/// A consent page shaped like Shoal's: `GET /authorize` sets a cookie and shows a form of
/// hidden inputs and approve/deny buttons posting to `/oauth/consent`, which needs the cookie
/// (else 403) and redirects to `redirect_uri` with a code or `error=access_denied`; `/expired`
/// is a 400 page.
fn consent_app(redirect_uri: String) -> Router {
    Router::new()
        .route(
            "/authorize",
            get(|| async {
                (
                    [(header::SET_COOKIE, "pending=p-1; Path=/oauth; HttpOnly")],
                    Html(
                        r#"<!doctype html><html><body><p>Allow example-client?</p>
                        <form method="post" action="/oauth/consent">
                          <input type="hidden" name="request" value="r-1">
                          <button type="submit" name="decision" value="approve">Allow</button>
                          <button type="submit" name="decision" value="deny">Deny</button>
                        </form></body></html>"#,
                    ),
                )
            }),
        )
        .route(
            "/expired",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    "this authorization request has expired",
                )
            }),
        )
        .route(
            "/oauth/consent",
            post(move |headers: HeaderMap, body: String| {
                let redirect_uri = redirect_uri.clone();
                async move {
                    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
                    if cookie != Some("pending=p-1") {
                        return (
                            StatusCode::FORBIDDEN,
                            format!("no pending cookie: {cookie:?}"),
                        )
                            .into_response();
                    }
                    let form = reqwest::Url::parse(&format!("http://form/?{body}")).unwrap();
                    let form: HashMap<String, String> = form.query_pairs().into_owned().collect();
                    let location = match (form.get("request"), form.get("decision")) {
                        (Some(r), Some(d)) if r == "r-1" && d == "approve" => {
                            format!("{redirect_uri}?code=c-1&state=s-1")
                        }
                        (Some(r), Some(d)) if r == "r-1" && d == "deny" => {
                            format!("{redirect_uri}?error=access_denied&state=s-1")
                        }
                        _ => {
                            return (StatusCode::BAD_REQUEST, format!("bad form: {body}"))
                                .into_response();
                        }
                    };
                    Redirect::to(&location).into_response()
                }
            }),
        )
}

#[tokio::test]
async fn the_headless_user_approves_or_denies_on_a_consent_page() {
    let redirect_uri = "http://127.0.0.1:1/client/callback";
    let app = spawn_router(consent_app(redirect_uri.to_owned())).await;
    let start = app.url("/authorize");

    let walk = HeadlessUser::new("alice")
        .authorize(&start, redirect_uri, Decision::Approve)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(walk.redirect, format!("{redirect_uri}?code=c-1&state=s-1"));
    assert!(walk.last_page.unwrap().contains("Allow example-client?"));
    let visits: Vec<(&str, u16)> = walk.visits.iter().map(|v| (v.method, v.status)).collect();
    assert_eq!(visits, [("GET", 200), ("POST", 303)]);

    let walk = HeadlessUser::new("alice")
        .authorize(&start, redirect_uri, Decision::Deny)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(walk.param("error").as_deref(), Some("access_denied"));

    // A page it cannot go on from: the error carries its status, URL and body.
    let error = HeadlessUser::new("alice")
        .authorize(&app.url("/expired"), redirect_uri, Decision::Approve)
        .await
        .expect_err("a 400 page goes nowhere");
    assert_eq!(error.status(), Some(400), "{error}");
    assert_eq!(error.body(), Some("this authorization request has expired"));
    let message = error.to_string();
    assert!(message.contains(&app.url("/expired")), "{message}");
}
