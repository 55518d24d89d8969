//! `shoal serve --auth oauth`: Shoal as the authorization server of its own endpoint, users
//! logging in at a real OpenID provider (the `oidc-provider` fixture, `tests/auth/oidc`), a
//! browser without a person ([`HeadlessUser`]) walking the login and consent pages, and every
//! request through the round-robin proxy, so that each step of a flow lands on another
//! replica.
//!
//! - The whole flow over three replicas on Redis: registration (RFC 7591), every replica
//!   restarted, authorization (PKCE S256, RFC 8707 resource, RFC 9207 iss), code exchange,
//!   MCP calls with the token, every replica restarted again, refresh with rotation, reuse of
//!   a replaced refresh token revoking the grant and its access tokens.
//! - Every rejection of the authorization, token, registration and revocation endpoints
//!   asserts its status and body.
//!
//! Node ≥ 22 comes from `$SHOAL_NODE` (`cargo xtask ci` sets it) or `PATH`.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shoal_testkit::McpClient;
use shoal_testkit::browser::{Decision, HeadlessUser};
use shoal_testkit::client::message;
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::oidc::{LoginClient, OidcProvider, Options, Pkce};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
/// Shoal's client at the upstream provider.
const UPSTREAM_CLIENT: &str = "shoal-upstream";
const UPSTREAM_SECRET: &str = "shoal-upstream-secret";
/// The MCP client's redirect URI: never requested (the walk stops at it).
const REDIRECT: &str = "http://127.0.0.1:53682/callback";
/// A test that takes longer than this has hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a replica may keep believing a revoked grant is alive (`resource::ALIVE_FOR`,
/// with room for a slow machine).
const REVOCATION_DELAY: Duration = Duration::from_secs(15);

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}

/// Shoal with `--auth oauth` behind the proxy, and its upstream provider.
struct Deployment {
    cluster: ShoalCluster,
    /// Kept alive for the deployment's life.
    _provider: OidcProvider,
    /// The proxy's origin: the issuer.
    origin: String,
    /// The MCP endpoint's public URL: the resource.
    resource: String,
    http: reqwest::Client,
}

async fn deploy(replicas: usize, memory: bool, args: &[&str]) -> Deployment {
    let proxy_addr: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let origin = format!("http://{proxy_addr}");
    let resource = format!("{origin}/mcp");
    let provider =
        OidcProvider::start_with(Options::new(&resource, &[]).login_client(LoginClient::new(
            UPSTREAM_CLIENT,
            UPSTREAM_SECRET,
            [format!("{origin}/oauth/callback")],
        )))
        .await;
    let mut builder = ShoalCluster::builder(SHOAL)
        .replicas(replicas)
        .proxy_addr(proxy_addr)
        .env("SHOAL_UPSTREAM_CLIENT_SECRET", UPSTREAM_SECRET)
        .args_of(&[
            "--public-url",
            &resource,
            "--auth",
            "oauth",
            "--upstream-issuer",
            provider.issuer(),
            "--upstream-client-id",
            UPSTREAM_CLIENT,
            "--required-scopes",
            "mcp:tools",
            "--tool-scope",
            "echo=mcp:echo",
        ])
        .args_of(args);
    if memory {
        builder = builder.memory_host();
    }
    let cluster = builder.start().await;
    Deployment {
        cluster,
        _provider: provider,
        origin,
        resource,
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

trait ArgsOf {
    fn args_of(self, args: &[&str]) -> Self;
}

impl ArgsOf for shoal_testkit::cluster::ClusterBuilder {
    fn args_of(mut self, args: &[&str]) -> Self {
        for arg in args {
            self = self.arg(*arg);
        }
        self
    }
}

/// A registered client, as the registration response gave it.
struct Registered {
    client_id: String,
}

/// A finished authorization: the code and the verifier that redeems it.
struct Authorized {
    code: String,
    verifier: String,
    consent_page: String,
}

impl Deployment {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    async fn register(&self, metadata: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/oauth/register"))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn register_public(&self) -> Registered {
        let (status, body) = self
            .register(json!({
                "client_name": "Test <Client> & Co",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body.get("client_secret").is_none(), "{body}");
        Registered {
            client_id: body["client_id"].as_str().unwrap().to_owned(),
        }
    }

    /// The authorization URL of `client` with a new PKCE pair, and `extra` parameters
    /// replacing the defaults (a `None` value removes one).
    fn authorization_url(
        &self,
        client_id: &str,
        pkce: &Pkce,
        extra: &[(&str, Option<&str>)],
    ) -> String {
        let mut params: Vec<(String, String)> = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client_id.into()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("state".into(), "state-123".into()),
            ("code_challenge".into(), pkce.challenge.clone()),
            ("code_challenge_method".into(), "S256".into()),
            ("resource".into(), self.resource.clone()),
            ("scope".into(), "mcp:tools mcp:echo offline_access".into()),
        ];
        for (name, value) in extra {
            params.retain(|(n, _)| n != name);
            if let Some(value) = value {
                params.push(((*name).into(), (*value).into()));
            }
        }
        let mut url = reqwest::Url::parse(&self.url("/oauth/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        url.into()
    }

    async fn authorize(&self, client_id: &str, user: &str) -> Authorized {
        let pkce = Pkce::new();
        let url = self.authorization_url(client_id, &pkce, &[]);
        let walk = HeadlessUser::new(user)
            .authorize(&url, REDIRECT, Decision::Approve)
            .await
            .unwrap_or_else(|e| panic!("the authorization walk failed: {e}"));
        let params = query(&walk.redirect);
        assert_eq!(params.get("state").map(String::as_str), Some("state-123"));
        assert_eq!(params.get("iss"), Some(&self.origin), "RFC 9207 iss");
        assert!(!params.contains_key("error"), "{}", walk.redirect);
        Authorized {
            code: params["code"].clone(),
            verifier: pkce.verifier,
            consent_page: walk.last_page.unwrap_or_default(),
        }
    }

    async fn token(
        &self,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.token_with(form, None).await
    }

    async fn token_with(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.post(self.url("/oauth/token")).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn exchange(&self, client: &Registered, authorized: &Authorized) -> Value {
        let (status, headers, body) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &authorized.code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &authorized.verifier),
                ("client_id", &client.client_id),
                ("resource", &self.resource),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        body
    }

    async fn refresh(&self, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ])
            .await;
        (status, body)
    }

    /// The status of an `initialize` with `token`.
    async fn probe(&self, token: &str) -> StatusCode {
        let client = McpClient::new(format!("{}/mcp", self.origin))
            .with_header("authorization", &format!("Bearer {token}"));
        let probe = message(
            0,
            "initialize",
            Some(json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": { "name": "oauth-test", "version": "0" },
            })),
        );
        client.post_raw(probe.to_string(), |_| {}).await.status
    }

    /// `tools/call echo` with `token` on a new session: the result, or the HTTP status.
    async fn call_echo(&self, token: &str) -> Result<Value, u16> {
        let status = self.probe(token).await;
        if status != StatusCode::OK {
            return Err(status.as_u16());
        }
        let mut client = McpClient::new(format!("{}/mcp", self.origin))
            .with_header("authorization", &format!("Bearer {token}"));
        client.initialize().await;
        client.notify_initialized().await;
        Ok(client.call_tool("echo", json!({ "text": "hi" })).await)
    }
}

fn query(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header(jwt: &str) -> Value {
    let header = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// An OAuth error body: `error` and a non-empty `error_description` containing `says`.
#[track_caller]
fn assert_oauth_error(body: &Value, error: &str, says: &str) {
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(says), "{says:?} not in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_on_three_replicas_survives_restarts_of_every_replica() {
    bounded(async {
        let mut deployment = deploy(3, false, &[]).await;
        let origin = deployment.origin.clone();

        // Metadata by the book, from any replica.
        let metadata: Value = deployment
            .http
            .get(deployment.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["issuer"], origin);
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"])
        );
        assert_eq!(
            metadata["registration_endpoint"],
            format!("{origin}/oauth/register")
        );
        assert_eq!(
            metadata["authorization_response_iss_parameter_supported"],
            true
        );
        assert_eq!(metadata["client_id_metadata_document_supported"], true);
        let openid: Value = deployment
            .http
            .get(deployment.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(openid, metadata);
        let prm: Value = deployment
            .http
            .get(deployment.url("/.well-known/oauth-protected-resource/mcp"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(prm["authorization_servers"], json!([origin]));
        assert_eq!(prm["resource"], deployment.resource);
        // No redirect between a path and its trailing-slash twin.
        let twin = deployment
            .http
            .get(deployment.url("/.well-known/oauth-authorization-server/"))
            .send()
            .await
            .unwrap();
        assert_eq!(twin.status(), StatusCode::NOT_FOUND);

        let client = deployment.register_public().await;
        // Nothing of it in any process: every replica starts again.
        for i in 0..3 {
            deployment.cluster.restart(i).await;
        }
        let authorized = deployment.authorize(&client.client_id, "alice").await;
        assert!(
            authorized
                .consent_page
                .contains("Test &lt;Client&gt; &amp; Co"),
            "the consent page names the client, escaped"
        );
        assert!(authorized.consent_page.contains("alice@example.test"));
        assert!(authorized.consent_page.contains("Call the tool echo"));
        let tokens = deployment.exchange(&client, &authorized).await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["scope"], "mcp:tools mcp:echo offline_access");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(header(&access)["typ"], "at+jwt");
        assert_eq!(header(&access)["alg"], "ES256");
        let access_claims = claims(&access);
        assert_eq!(access_claims["iss"], origin);
        assert_eq!(access_claims["aud"], deployment.resource);
        assert_eq!(access_claims["sub"], "alice");
        assert_eq!(access_claims["client_id"], client.client_id.as_str());

        let result = deployment.call_echo(&access).await.unwrap();
        assert_eq!(result["content"][0]["text"], "hi", "{result}");

        // A code is single-use, whichever replica sees the second try.
        let (status, _, body) = deployment
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &authorized.code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &authorized.verifier),
                ("client_id", &client.client_id),
            ])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_grant", "already used");

        // The code's reuse revoked that grant; a fresh one goes on.
        let authorized = deployment.authorize(&client.client_id, "alice").await;
        let tokens = deployment.exchange(&client, &authorized).await;
        let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        for i in 0..3 {
            deployment.cluster.restart(i).await;
        }
        let (status, refreshed) = deployment.refresh(&client.client_id, &first_refresh).await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");
        let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(second_refresh, first_refresh, "rotated on every use");
        let second_access = refreshed["access_token"].as_str().unwrap().to_owned();
        deployment.call_echo(&second_access).await.unwrap();

        // The replaced token again: reuse, and the whole grant goes.
        let (status, body) = deployment.refresh(&client.client_id, &first_refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_grant", "already used");
        let (status, body) = deployment.refresh(&client.client_id, &second_refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_grant", "unknown, expired or revoked");
        let deadline = Instant::now() + REVOCATION_DELAY;
        loop {
            match deployment.probe(&second_access).await {
                StatusCode::UNAUTHORIZED => break,
                other => assert!(
                    Instant::now() < deadline,
                    "the revoked grant's access token still works: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
}

/// A page of the authorization endpoint: its status and that it says `says`.
async fn page(deployment: &Deployment, url: &str) -> (StatusCode, String) {
    let response = deployment.http.get(url).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The redirect back to the client of an authorization request refused after the client and
/// its redirect URI were checked: its `error` and `error_description`.
async fn refused_at_client(deployment: &Deployment, url: &str) -> (String, String) {
    let response = deployment.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{url}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let params = query(&location);
    assert_eq!(params.get("state").map(String::as_str), Some("state-123"));
    assert_eq!(params.get("iss"), Some(&deployment.origin));
    (params["error"].clone(), params["error_description"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_says_why() {
    bounded(async {
        let deployment = deploy(1, true, &["--registrations-per-minute", "8"]).await;
        let client = deployment.register_public().await;
        let pkce = Pkce::new();

        // Before the client and its redirect URI are known good: a page, never a redirect.
        for (extra, says) in [
            (vec![("client_id", Some("nobody"))], "not registered"),
            (vec![("client_id", None)], "no client_id"),
            (
                vec![("redirect_uri", Some("http://127.0.0.1:9/elsewhere"))],
                "not one of the client",
            ),
        ] {
            let url = deployment.authorization_url(&client.client_id, &pkce, &extra);
            let (status, body) = page(&deployment, &url).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?}");
            assert!(body.contains(says), "{says:?} not in {body}");
        }
        let doubled = format!(
            "{}&state=again",
            deployment.authorization_url(&client.client_id, &pkce, &[])
        );
        let (status, body) = page(&deployment, &doubled).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("more than once"), "{body}");

        // After: back to the client with the error, state and iss.
        for (extra, error, says) in [
            (
                vec![("response_type", Some("token"))],
                "unsupported_response_type",
                "response_type=code",
            ),
            (
                vec![("response_type", None)],
                "invalid_request",
                "response_type is required",
            ),
            (
                vec![("code_challenge", None)],
                "invalid_request",
                "code_challenge is required",
            ),
            (
                vec![("code_challenge_method", Some("plain"))],
                "invalid_request",
                "must be S256",
            ),
            (
                vec![("code_challenge", Some("short"))],
                "invalid_request",
                "43 characters",
            ),
            (
                vec![("resource", None)],
                "invalid_request",
                "resource is required",
            ),
            (
                vec![("resource", Some("https://elsewhere.example/mcp"))],
                "invalid_target",
                "issues tokens for",
            ),
            (
                vec![("scope", Some("mcp:tools root"))],
                "invalid_scope",
                "\"root\" is not offered",
            ),
        ] {
            let url = deployment.authorization_url(&client.client_id, &pkce, &extra);
            let (got, description) = refused_at_client(&deployment, &url).await;
            assert_eq!(got, error, "{extra:?}: {description}");
            assert!(
                description.contains(says),
                "{says:?} not in {description:?}"
            );
        }

        // The user says no.
        let url = deployment.authorization_url(&client.client_id, &pkce, &[]);
        let walk = HeadlessUser::new("bob")
            .authorize(&url, REDIRECT, Decision::Deny)
            .await
            .unwrap();
        assert_eq!(walk.param("error").as_deref(), Some("access_denied"));
        assert_eq!(walk.param("state").as_deref(), Some("state-123"));

        // A consent decision without the page's anti-forgery token.
        let response = deployment
            .http
            .post(deployment.url("/oauth/consent"))
            .form(&[("request", "x"), ("csrf", "y"), ("decision", "approve")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("expired or was already completed")
        );

        // The token endpoint.
        let authorized = deployment.authorize(&client.client_id, "carol").await;
        let code_form = |code: &'static str| -> Vec<(&'static str, String)> {
            vec![
                ("grant_type", "authorization_code".into()),
                ("code", code.into()),
                ("redirect_uri", REDIRECT.into()),
                ("code_verifier", authorized.verifier.clone()),
                ("client_id", client.client_id.clone()),
            ]
        };
        // (form, status, error, what the description says)
        type Case = (
            Vec<(&'static str, String)>,
            StatusCode,
            &'static str,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                vec![],
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            ),
            (
                vec![("grant_type", "password".into())],
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "\"password\" is not supported",
            ),
            (
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("client_id", "nobody".into()),
                ],
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "not registered",
            ),
            (
                vec![("grant_type", "authorization_code".into())],
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required",
            ),
            (
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("client_id", client.client_id.clone()),
                    ("client_secret", "guess".into()),
                ],
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "public",
            ),
            (
                code_form("unknown-code"),
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "unknown, expired or already used",
            ),
            (
                {
                    let mut form = code_form("unused");
                    form.retain(|(n, _)| *n != "code_verifier");
                    form
                },
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "code_verifier is required",
            ),
        ];
        for (form, status, error, says) in cases {
            let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let (got, headers, body) = deployment.token(&form).await;
            assert_eq!(got, status, "{form:?}: {body}");
            assert_oauth_error(&body, error, says);
            assert_eq!(headers["cache-control"], "no-store");
            if status == StatusCode::UNAUTHORIZED {
                assert!(headers.contains_key("www-authenticate"), "{form:?}");
            }
        }
        // Not a form.
        let response = deployment
            .http
            .post(deployment.url("/oauth/token"))
            .json(&json!({ "grant_type": "authorization_code" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_oauth_error(
            &response.json().await.unwrap(),
            "invalid_request",
            "application/x-www-form-urlencoded",
        );
        // The real code with a wrong verifier, then a wrong redirect URI, then a wrong
        // resource: each spends it (a code is tried once).
        for (name, value, error, says) in [
            (
                "code_verifier",
                "x".repeat(43),
                "invalid_grant",
                "does not match",
            ),
            (
                "redirect_uri",
                "http://127.0.0.1:53682/other".to_owned(),
                "invalid_grant",
                "redirect_uri",
            ),
        ] {
            let authorized = deployment.authorize(&client.client_id, "carol").await;
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", authorized.code.clone()),
                ("redirect_uri", REDIRECT.to_owned()),
                ("code_verifier", authorized.verifier.clone()),
                ("client_id", client.client_id.clone()),
            ];
            form.retain(|(n, _)| *n != name);
            form.push((name, value));
            let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let (status, _, body) = deployment.token(&form).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
            assert_oauth_error(&body, error, says);
        }
        let tokens = deployment.exchange(&client, &authorized).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        // A refresh may narrow the scope, never widen it, and must name this resource.
        let (status, _, body) = deployment
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client.client_id),
                ("scope", "mcp:tools mcp:admin"),
            ])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_scope", "\"mcp:admin\" was not granted");
        let (status, _, body) = deployment
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client.client_id),
                ("resource", "https://elsewhere.example/mcp"),
            ])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_target", "issues tokens for");

        // A client that registered no refresh grant may not refresh.
        let (status, body) = deployment
            .register(json!({
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "client_secret_post",
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (secret_id, secret) = (
            body["client_id"].as_str().unwrap().to_owned(),
            body["client_secret"].as_str().unwrap().to_owned(),
        );
        let (status, _, body) = deployment
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &secret_id),
                ("client_secret", &secret),
            ])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "unauthorized_client", "refresh_token grant");
        let (status, _, body) = deployment
            .token_with(
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                Some((&secret_id, "wrong")),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_oauth_error(&body, "invalid_client", "secret is wrong");

        // Revocation (RFC 7009): the refresh token, hence its grant and access tokens.
        let revoke = |form: Vec<(&'static str, String)>| {
            let request = deployment
                .http
                .post(deployment.url("/oauth/revoke"))
                .form(&form);
            async move { request.send().await.unwrap() }
        };
        let response = revoke(vec![("token", refresh.clone())]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_oauth_error(
            &response.json().await.unwrap(),
            "invalid_client",
            "client authentication is required",
        );
        let response = revoke(vec![("client_id", client.client_id.clone())]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_oauth_error(
            &response.json().await.unwrap(),
            "invalid_request",
            "token is required",
        );
        // Another client's revocation of it does nothing (and says nothing).
        let response = revoke(vec![
            ("token", refresh.clone()),
            ("client_id", secret_id.clone()),
            ("client_secret", secret.clone()),
        ])
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(deployment.probe(&access).await, StatusCode::OK);
        let response = revoke(vec![
            ("token", refresh.clone()),
            ("client_id", client.client_id.clone()),
        ])
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(deployment.probe(&access).await, StatusCode::UNAUTHORIZED);
        let (status, body) = deployment.refresh(&client.client_id, &refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_grant", "revoked");

        // Registration.
        for (metadata, error, says) in [
            (
                json!({ "redirect_uris": ["http://evil.example/cb"] }),
                "invalid_redirect_uri",
                "evil.example",
            ),
            (
                json!({ "redirect_uris": [] }),
                "invalid_client_metadata",
                "redirect_uris",
            ),
            (
                json!({ "redirect_uris": [REDIRECT], "grant_types": ["password"] }),
                "invalid_client_metadata",
                "password",
            ),
            (
                json!(["not", "an", "object"]),
                "invalid_client_metadata",
                "object",
            ),
        ] {
            let (status, body) = deployment.register(metadata.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{metadata}: {body}");
            assert_oauth_error(&body, error, says);
        }
        let response = deployment
            .http
            .post(deployment.url("/oauth/register"))
            .body("redirect_uris=x")
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_oauth_error(
            &response.json().await.unwrap(),
            "invalid_client_metadata",
            "application/json",
        );
        // The registrations of this minute (8 allowed) run out, even if a new minute begins
        // on the way.
        let mut limited = None;
        for _ in 0..10 {
            let (status, body) = deployment
                .register(json!({ "redirect_uris": [REDIRECT] }))
                .await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(body);
                break;
            }
        }
        let body = limited.expect("the registration rate limit never answered 429");
        assert_oauth_error(&body, "slow_down", "too many registrations");
    })
    .await;
}

/// A web server on loopback that serves client metadata documents: `/client.json` (good,
/// cacheable), `/wrong.json` (names another client id); counts the fetches of each.
struct DocumentServer {
    origin: String,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn serve_documents() -> DocumentServer {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::routing::get;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let good = json!({
        "client_id": format!("{origin}/client.json"),
        "client_name": "Metadata Document Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    });
    let wrong = json!({
        "client_id": "https://impostor.example/client.json",
        "redirect_uris": [REDIRECT],
    });
    let counter = fetches.clone();
    let app = axum::Router::new()
        .route(
            "/client.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = good.to_string();
                async move {
                    (
                        [
                            ("content-type", "application/json"),
                            ("cache-control", "max-age=300"),
                        ],
                        body,
                    )
                }
            }),
        )
        .route(
            "/wrong.json",
            get(move || {
                let body = wrong.to_string();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    DocumentServer { origin, fetches }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_metadata_document_client_signs_in_and_its_document_is_cached() {
    bounded(async {
        let documents = serve_documents().await;
        let client_id = format!("{}/client.json", documents.origin);
        // Loopback documents over http: only with the switch that tests and closed networks use.
        let deployment = deploy(1, true, &["--client-metadata-private-targets"]).await;
        let authorized = deployment.authorize(&client_id, "dana").await;
        assert!(
            authorized.consent_page.contains("Metadata Document Client"),
            "the consent page names the client from its document"
        );
        assert!(
            authorized.consent_page.contains("127.0.0.1"),
            "and where its id points"
        );
        let tokens = deployment
            .exchange(
                &Registered {
                    client_id: client_id.clone(),
                },
                &authorized,
            )
            .await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(claims(access)["client_id"], client_id.as_str());
        deployment.call_echo(access).await.unwrap();
        assert_eq!(
            documents.fetches.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "authorize, consent and token used one fetch: the document is cached"
        );

        // A document that names another client id is refused, on a page.
        let pkce = Pkce::new();
        let wrong = format!("{}/wrong.json", documents.origin);
        let url = deployment.authorization_url(&wrong, &pkce, &[]);
        let (status, body) = page(&deployment, &url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("client_id"), "{body}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_documents_are_refused_by_default() {
    bounded(async {
        let documents = serve_documents().await;
        let deployment = deploy(1, true, &[]).await;
        let pkce = Pkce::new();
        let url =
            deployment.authorization_url(&format!("{}/client.json", documents.origin), &pkce, &[]);
        let (status, body) = page(&deployment, &url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("https"), "{body}");
        assert_eq!(
            documents.fetches.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nothing was fetched"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_key_of_the_key_file_signs_and_every_key_is_published() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use base64::engine::general_purpose::STANDARD;

    bounded(async {
        let pem: String = (0..2)
            .map(|_| {
                let der = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .unwrap()
                    .to_pkcs8v1()
                    .unwrap();
                format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    STANDARD.encode(der.as_ref())
                )
            })
            .collect();
        let path =
            std::env::temp_dir().join(format!("shoal-oauth-keys-{}.pem", std::process::id()));
        std::fs::write(&path, pem).unwrap();
        let deployment = deploy(1, true, &["--signing-keys-file", path.to_str().unwrap()]).await;
        let jwks: Value = deployment
            .http
            .get(deployment.url("/oauth/jwks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids.len(), 2, "{jwks}");
        let client = deployment.register_public().await;
        let authorized = deployment.authorize(&client.client_id, "erin").await;
        let tokens = deployment.exchange(&client, &authorized).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(header(access)["kid"], kids[0], "the first key signs");
        deployment.call_echo(access).await.unwrap();
        let _ = std::fs::remove_file(&path);
    })
    .await;
}
