//! What the `--auth oauth` tests share: a deployment (the upstream `oidc-provider` fixture and
//! `shoal serve --auth oauth` behind the round-robin proxy), a client's steps through it, and
//! a web server of client metadata documents.

// Test helpers fail the test by panicking; each test binary uses only some of them.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shoal_testkit::McpClient;
use shoal_testkit::browser::{Decision, HeadlessUser};
use shoal_testkit::client::message;
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::oidc::{LoginClient, OidcProvider, Options, Pkce};

pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
/// Shoal's client at the upstream provider.
pub const UPSTREAM_CLIENT: &str = "shoal-upstream";
pub const UPSTREAM_SECRET: &str = "shoal-upstream-secret";
/// The MCP client's redirect URI: never requested (the walk stops at it).
pub const REDIRECT: &str = "http://127.0.0.1:53682/callback";
/// A test that takes longer than this has hung.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a replica may keep believing a revoked grant is alive (`resource::ALIVE_FOR`,
/// with room for a slow machine).
pub const REVOCATION_DELAY: Duration = Duration::from_secs(15);

pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}

/// Shoal with `--auth oauth` behind the proxy, and its upstream provider.
pub struct Deployment {
    pub cluster: ShoalCluster,
    /// Kept alive for the deployment's life.
    pub _provider: OidcProvider,
    /// The proxy's origin: the issuer.
    pub origin: String,
    /// The MCP endpoint's public URL: the resource.
    pub resource: String,
    pub http: reqwest::Client,
}

/// How the upstream provider says who the user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// OpenID Connect (`--upstream-issuer`): a verified id_token.
    OpenId,
    /// Plain OAuth 2, GitHub-style (its three endpoints): the userinfo answer.
    PlainOAuth2,
}

pub async fn deploy(replicas: usize, memory: bool, args: &[&str]) -> Deployment {
    deploy_with(replicas, memory, UpstreamKind::OpenId, args).await
}

pub async fn deploy_with(
    replicas: usize,
    memory: bool,
    upstream: UpstreamKind,
    args: &[&str],
) -> Deployment {
    let proxy_addr: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let origin = format!("http://{proxy_addr}");
    let resource = format!("{origin}/mcp");
    let mut login_client = LoginClient::new(
        UPSTREAM_CLIENT,
        UPSTREAM_SECRET,
        [format!("{origin}/oauth/callback")],
    );
    if upstream == UpstreamKind::PlainOAuth2 {
        login_client = login_client.plain_oauth2();
    }
    let provider =
        OidcProvider::start_with(Options::new(&resource, &[]).login_client(login_client)).await;
    let (authorization_endpoint, token_endpoint, userinfo_endpoint) = (
        provider.authorization_endpoint().to_owned(),
        provider.token_endpoint(),
        provider.userinfo_endpoint(),
    );
    let upstream_args: Vec<&str> = match upstream {
        UpstreamKind::OpenId => vec!["--upstream-issuer", provider.issuer()],
        // The fixture's userinfo needs `openid`; a plain client asks for it as any scope.
        UpstreamKind::PlainOAuth2 => vec![
            "--upstream-authorization-endpoint",
            &authorization_endpoint,
            "--upstream-token-endpoint",
            &token_endpoint,
            "--upstream-userinfo-endpoint",
            &userinfo_endpoint,
            "--upstream-scopes",
            "openid,profile,email",
        ],
    };
    let mut builder = ShoalCluster::builder(SHOAL)
        .replicas(replicas)
        .proxy_addr(proxy_addr)
        .env("SHOAL_UPSTREAM_CLIENT_SECRET", UPSTREAM_SECRET)
        .args_of(&[
            "--public-url",
            &resource,
            "--auth",
            "oauth",
            "--upstream-client-id",
            UPSTREAM_CLIENT,
            "--required-scopes",
            "mcp:tools",
            "--tool-scope",
            "echo=mcp:echo",
        ])
        .args_of(&upstream_args)
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

pub trait ArgsOf {
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
pub struct Registered {
    pub client_id: String,
}

/// A finished authorization: the code and the verifier that redeems it.
pub struct Authorized {
    pub code: String,
    pub verifier: String,
    pub consent_page: String,
}

/// The form that exchanges `authorized`'s code for `client` (without `resource`).
pub fn code_exchange<'a>(
    client: &'a Registered,
    authorized: &'a Authorized,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", &authorized.code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &authorized.verifier),
        ("client_id", &client.client_id),
    ]
}

impl Deployment {
    /// GETs `path` of the deployment as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    pub async fn register(&self, metadata: Value) -> (StatusCode, Value) {
        self.register_forwarded(metadata, None).await
    }

    /// A registration whose request carries `X-Forwarded-For: forwarded_for` when given.
    pub async fn register_forwarded(
        &self,
        metadata: Value,
        forwarded_for: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url("/oauth/register")).json(&metadata);
        if let Some(forwarded_for) = forwarded_for {
            request = request.header("x-forwarded-for", forwarded_for);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn register_public(&self) -> Registered {
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
    pub fn authorization_url(
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

    pub async fn authorize(&self, client_id: &str, user: &str) -> Authorized {
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

    pub async fn token(
        &self,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.token_with(form, None).await
    }

    pub async fn token_with(
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

    pub async fn exchange(&self, client: &Registered, authorized: &Authorized) -> Value {
        let mut form = code_exchange(client, authorized);
        form.push(("resource", &self.resource));
        let (status, headers, body) = self.token(&form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        body
    }

    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
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
    pub async fn probe(&self, token: &str) -> StatusCode {
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
    pub async fn call_echo(&self, token: &str) -> Result<Value, u16> {
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

pub fn query(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn header(jwt: &str) -> Value {
    let header = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// An OAuth error body: `error` and a non-empty `error_description` containing `says`.
#[track_caller]
pub fn assert_oauth_error(body: &Value, error: &str, says: &str) {
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(says), "{says:?} not in {body}");
}

pub async fn page(deployment: &Deployment, url: &str) -> (StatusCode, String) {
    let response = deployment.http.get(url).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The redirect back to the client of an authorization request refused after the client and
/// its redirect URI were checked: its `error` and `error_description`.
pub async fn refused_at_client(deployment: &Deployment, url: &str) -> (String, String) {
    let response = deployment.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{url}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let params = query(&location);
    assert_eq!(params.get("state").map(String::as_str), Some("state-123"));
    assert_eq!(params.get("iss"), Some(&deployment.origin));
    (params["error"].clone(), params["error_description"].clone())
}

/// A web server on loopback that serves client metadata documents: `/client.json` (good,
/// cacheable), `/wrong.json` (names another client id); counts the fetches of each.
pub struct DocumentServer {
    pub origin: String,
    pub fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

pub async fn serve_documents() -> DocumentServer {
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
