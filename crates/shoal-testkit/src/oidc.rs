//! [`OidcProvider`]: a real OAuth 2.0 authorization server for auth tests, `oidc-provider` (a
//! certified OpenID provider, npm) run by Node from `tests/auth/oidc/server.mjs`.
//!
//! ```no_run
//! # async fn example() {
//! use shoal_testkit::oidc::OidcProvider;
//!
//! let provider = OidcProvider::start("http://127.0.0.1:8080/mcp", &["mcp:tools", "mcp:echo"]).await;
//! // An RFC 9068 JWT (`typ: at+jwt`) with `aud` = the resource, by the client-credentials grant.
//! let token = provider.token(&["mcp:tools"]).await;
//! provider.rotate_keys().await;
//! # let _ = (provider.issuer(), token);
//! # }
//! ```
//!
//! The provider listens on `127.0.0.1:<free port>` with issuer `http://127.0.0.1:<port>` (RFC 8414
//! and OpenID Connect discovery both at the issuer root, JWKS at `/jwks`, token endpoint at
//! `/token`). Two confidential clients are registered for the `client_credentials` grant,
//! [`CLIENT_ID`] and [`OTHER_CLIENT_ID`]; any absolute http(s) `resource` gets a JWT whose `aud`
//! is that resource, so tests can ask for tokens of other audiences. Its key set is fixed per
//! `oidc-provider` instance: [`OidcProvider::rotate_keys`] makes the fixture serve a new
//! instance behind the same port, whose JWKS is the "next" key first, then every older key.
//! [`OidcProvider::mint`] signs tokens the provider would not issue (expired, not yet valid,
//! signed with the next key, HMAC with the public key), with the provider's own keys.
//!
//! # Logging users in
//!
//! [`OidcProvider::start_with`] also registers [`LoginClient`]s: confidential clients of the
//! authorization-code flow (PKCE S256 required, `client_secret_basic`), the upstream provider
//! Shoal's authorization server sends browsers to. Its authorization endpoint
//! ([`OidcProvider::authorization_endpoint`]) redirects to a login page of the fixture's own, a
//! form with one text input `login`; posting a name logs that account in and grants every
//! requested scope at once (there is no upstream consent page), then the browser is sent to the
//! client's redirect URI with `code`, `state` and `iss`. Any name is an account: `sub` = `name`
//! = the name, `email` = `<name>@example.test`, `email_verified` = true; the id_token carries
//! the request's `nonce`. An empty name answers 400, text/plain, `login: enter a user name`.
//! [`crate::browser::HeadlessUser`] walks that flow; [`Pkce`] makes a verifier and its
//! challenge; [`OidcProvider::exchange_code`] redeems a code.
//!
//! ```no_run
//! # async fn example() {
//! use shoal_testkit::oidc::{LoginClient, OidcProvider, Options};
//!
//! let client = LoginClient::new("shoal", "shoal-secret", ["http://127.0.0.1:3000/oauth/callback"]);
//! let options = Options::new("http://127.0.0.1:3000/mcp", &["mcp:tools"]).login_client(client);
//! let provider = OidcProvider::start_with(options).await;
//! # let _ = provider.authorization_endpoint();
//! # }
//! ```
//!
//! Node ≥ 22 is found by [`crate::node::node`] (`$SHOAL_NODE`, which `cargo xtask` sets, else
//! `node` on `PATH`, else the one xtask caches); without one, starting panics and says so.
//! The npm packages of `tests/auth/oidc` are installed by `cargo xtask` (its tools step); when
//! `node_modules` is missing, [`OidcProvider::start`] runs `npm ci` there itself, once.
//! The process is killed on drop; its stderr goes to a log file whose tail failure messages
//! carry.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::node::{ensure_npm_packages, node, repo_root};

/// The client id of the first registered client (the default of [`OidcProvider::token`]).
pub const CLIENT_ID: &str = "shoal-test";
/// The secret of [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "shoal-test-secret";
/// A second client: a token of it is another principal (`sub` = the client id).
pub const OTHER_CLIENT_ID: &str = "shoal-other";
/// The secret of [`OTHER_CLIENT_ID`].
pub const OTHER_CLIENT_SECRET: &str = "shoal-other-secret";
/// The lifetime of the tokens the provider issues, in seconds.
pub const TOKEN_TTL_SECS: u64 = 300;

/// How long the provider has to print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request to the provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The fixture's directory, relative to the workspace root.
const FIXTURE_DIR: &str = "tests/auth/oidc";
/// How many lines of the provider's log a failure message shows.
const LOG_TAIL_LINES: usize = 30;

static NEXT_LOG: AtomicUsize = AtomicUsize::new(0);

/// Which key [`OidcProvider::mint`] signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey {
    /// The provider's current signing key (RS256), published in its JWKS.
    Current,
    /// The key the provider publishes and signs with only after the next
    /// [`OidcProvider::rotate_keys`] (RS256): its `kid` is unknown until then.
    Next,
    /// HS256 with the PEM (SPKI) bytes of the current public key as the secret: the
    /// algorithm-confusion attack on verifiers that let the token pick the algorithm.
    HmacWithPublicKeyPem,
}

impl SigningKey {
    fn name(self) -> &'static str {
        match self {
            SigningKey::Current => "current",
            SigningKey::Next => "next",
            SigningKey::HmacWithPublicKeyPem => "hmac-public-pem",
        }
    }
}

/// The provider's keys: the published `kids` (the signing one first) and the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// Published in the JWKS, the one tokens are signed with first.
    pub kids: Vec<String>,
    /// Published and used after the next rotation.
    pub next_kid: String,
}

/// What [`OidcProvider::start_with`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The default resource: the Shoal endpoint's public URL, the `aud` of the access tokens.
    pub resource: String,
    /// The scopes of the resource, which clients may ask for.
    pub scopes: Vec<String>,
    /// Clients of the authorization-code flow, besides the two client-credentials clients.
    pub login_clients: Vec<LoginClient>,
}

/// A confidential client of the authorization-code flow: `client_secret_basic`, PKCE S256
/// required, scope `openid profile email offline_access` plus the resource's scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginClient {
    /// The client id (the `aud` of its id_tokens).
    pub id: String,
    /// The client secret.
    pub secret: String,
    /// The registered redirect URIs, exact (none may contain `|`).
    pub redirect_uris: Vec<String>,
    /// The client of a plain (GitHub-style) OAuth 2 upstream: `client_secret_post`, and an
    /// access token for the userinfo endpoint rather than for the resource.
    pub plain_oauth2: bool,
}

/// A PKCE (RFC 7636) pair for `code_challenge_method=S256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    /// The `code_verifier`: 43 base64url characters of 32 random bytes.
    pub verifier: String,
    /// The `code_challenge`: base64url(SHA-256(verifier)), unpadded.
    pub challenge: String,
}

/// A running `oidc-provider` fixture; killed on drop.
#[derive(Debug)]
pub struct OidcProvider {
    child: Option<Child>,
    issuer: String,
    authorization_endpoint: String,
    resource: String,
    login_clients: Vec<LoginClient>,
    log: PathBuf,
    http: reqwest::Client,
}

// === impl Options ===

impl Options {
    /// A provider for `resource` with `scopes` and no login client.
    pub fn new(resource: &str, scopes: &[&str]) -> Self {
        Options {
            resource: resource.to_owned(),
            scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            login_clients: Vec::new(),
        }
    }

    /// These options with `client` registered too.
    #[must_use]
    pub fn login_client(mut self, client: LoginClient) -> Self {
        self.login_clients.push(client);
        self
    }
}

// === impl LoginClient ===

impl LoginClient {
    /// A login client with these credentials and redirect URIs.
    pub fn new<I, S>(id: &str, secret: &str, redirect_uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LoginClient {
            id: id.to_owned(),
            secret: secret.to_owned(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
            plain_oauth2: false,
        }
    }

    /// This client as a plain (GitHub-style) OAuth 2 upstream's client: it authenticates with
    /// `client_secret_post` and, asking for no resource, gets an access token for
    /// [`OidcProvider::userinfo_endpoint`].
    #[must_use]
    pub fn plain_oauth2(mut self) -> Self {
        self.plain_oauth2 = true;
        self
    }

    /// The fixture's `--login-client` value: `ID:SECRET:URI|URI…`.
    fn arg(&self) -> String {
        assert!(
            !self.id.contains(':') && !self.secret.contains(':'),
            "a login client's id and secret hold no `:`: {self:?}"
        );
        assert!(
            !self.redirect_uris.is_empty() && self.redirect_uris.iter().all(|u| !u.contains('|')),
            "a login client needs redirect URIs, none holding `|`: {self:?}"
        );
        format!(
            "{}:{}:{}",
            self.id,
            self.secret,
            self.redirect_uris.join("|")
        )
    }
}

// === impl Pkce ===

impl Pkce {
    /// A fresh random verifier and its S256 challenge.
    pub fn new() -> Self {
        Self::from_verifier(&URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
    }

    /// The S256 challenge of `verifier`.
    pub fn from_verifier(verifier: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Pkce {
            verifier: verifier.to_owned(),
            challenge: URL_SAFE_NO_PAD.encode(digest.as_ref()),
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

// === impl OidcProvider ===

impl OidcProvider {
    /// Starts a provider whose default resource is `resource_url` (the Shoal endpoint's public
    /// URL, the `aud` of its tokens) and whose clients may ask for `scopes`; returns once it
    /// listens.
    ///
    /// # Panics
    ///
    /// When Node ≥ 22 or the npm packages cannot be found or installed, or the provider does
    /// not start within 30 s; the message says which.
    pub async fn start(resource_url: &str, scopes: &[&str]) -> Self {
        Self::start_with(Options::new(resource_url, scopes)).await
    }

    /// Starts a provider as [`OidcProvider::start`] does, with the login clients of `options`
    /// registered too.
    ///
    /// # Panics
    ///
    /// As [`OidcProvider::start`]; also when a login client's id or secret holds `:`, or it has
    /// no redirect URI, or one holds `|`.
    pub async fn start_with(options: Options) -> Self {
        let Options {
            resource,
            scopes,
            login_clients,
        } = options;
        let resource_url = resource.as_str();
        let login_args: Vec<String> = login_clients
            .iter()
            .flat_map(|client| ["--login-client".to_owned(), client.arg()])
            .chain(
                login_clients
                    .iter()
                    .filter(|client| client.plain_oauth2)
                    .flat_map(|client| ["--oauth2-client".to_owned(), client.id.clone()]),
            )
            .collect();
        let dir = repo_root().join(FIXTURE_DIR);
        let node = node();
        ensure_npm_packages(&dir, &node);
        let log = std::env::temp_dir().join(format!(
            "shoal-oidc-{}-{}.log",
            std::process::id(),
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let stderr = File::create(&log)
            .unwrap_or_else(|e| panic!("creating the provider's log {}: {e}", log.display()));
        let mut child = Command::new(&node)
            .current_dir(&dir)
            .arg("server.mjs")
            .args(["--port", "0"])
            .args(["--resource", resource_url])
            .args(["--scopes", &scopes.join(" ")])
            .args(["--client", &format!("{CLIENT_ID}:{CLIENT_SECRET}")])
            .args([
                "--client",
                &format!("{OTHER_CLIENT_ID}:{OTHER_CLIENT_SECRET}"),
            ])
            .args(&login_args)
            .args(["--ttl", &TOKEN_TTL_SECS.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} server.mjs: {e}", node.display()));
        let stdout = child.stdout.take().expect("the provider's stdout");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = ready_tx.send(lines.next().and_then(Result::ok));
            // Keep reading, so that the provider never blocks on a full pipe.
            for _ in lines {}
        });
        let mut provider = OidcProvider {
            child: Some(child),
            issuer: String::new(),
            authorization_endpoint: String::new(),
            resource,
            login_clients,
            log,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("building the HTTP client"),
        };
        let line = match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => panic!(
                "the OIDC provider exited before it was ready\n{}",
                provider.log_tail()
            ),
            Err(_) => panic!(
                "the OIDC provider was not ready within {START_TIMEOUT:?}\n{}",
                provider.log_tail()
            ),
        };
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "the provider's ready line is not JSON ({e}): {line}\n{}",
                provider.log_tail()
            )
        });
        provider.issuer = ready["issuer"]
            .as_str()
            .unwrap_or_else(|| panic!("the provider's ready line has no issuer: {line}"))
            .to_owned();
        provider.authorization_endpoint = ready["authorization_endpoint"]
            .as_str()
            .unwrap_or_else(|| {
                panic!("the provider's ready line has no authorization_endpoint: {line}")
            })
            .to_owned();
        provider
    }

    /// The issuer, `http://127.0.0.1:<port>` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The resource the provider was started for (the default `aud` of its tokens).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The JWKS URL, `<issuer>/jwks`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// The token endpoint, `<issuer>/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The userinfo endpoint, `<issuer>/me`.
    pub fn userinfo_endpoint(&self) -> String {
        format!("{}/me", self.issuer)
    }

    /// The authorization endpoint, `<issuer>/auth`.
    pub fn authorization_endpoint(&self) -> &str {
        &self.authorization_endpoint
    }

    /// The login clients it was started with.
    pub fn login_clients(&self) -> &[LoginClient] {
        &self.login_clients
    }

    /// An authorization request of `client` as Shoal's authorization server makes it:
    /// `response_type=code`, `client_id`, `redirect_uri`, `scope`, `state`, `nonce`, and the
    /// S256 `code_challenge` of `pkce`; the URL to send a browser to.
    pub fn authorization_url(
        &self,
        client: &LoginClient,
        redirect_uri: &str,
        scope: &str,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> String {
        let mut url = reqwest::Url::parse(&self.authorization_endpoint)
            .unwrap_or_else(|e| panic!("{}: {e}", self.authorization_endpoint));
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        url.into()
    }

    /// Redeems an authorization `code` of `client` at the token endpoint
    /// (`grant_type=authorization_code`, `client_secret_basic`, `redirect_uri`,
    /// `code_verifier`); returns the status and the JSON body.
    ///
    /// # Panics
    ///
    /// When the provider does not answer with JSON.
    pub async fn exchange_code(
        &self,
        client: &LoginClient,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> (u16, Value) {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ];
        self.post_token(&client.id, &client.secret, &form).await
    }

    /// A token of [`CLIENT_ID`] for the provider's resource with `scopes`.
    ///
    /// # Panics
    ///
    /// When the provider does not issue one.
    pub async fn token(&self, scopes: &[&str]) -> String {
        self.token_as(CLIENT_ID, CLIENT_SECRET, &self.resource, scopes)
            .await
    }

    /// A token of client `client_id` for `resource` with `scopes`: a client-credentials grant
    /// with `client_secret_basic` and `resource` (RFC 8707).
    ///
    /// # Panics
    ///
    /// When the provider does not issue one.
    pub async fn token_as(
        &self,
        client_id: &str,
        client_secret: &str,
        resource: &str,
        scopes: &[&str],
    ) -> String {
        let (status, body) = self
            .request_token(client_id, client_secret, Some(resource), scopes)
            .await;
        assert_eq!(status, 200, "the token endpoint refused: {body}");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("the token response has no access_token: {body}"))
            .to_owned()
    }

    /// A client-credentials request as given; returns the status and the JSON body.
    ///
    /// # Panics
    ///
    /// When the provider does not answer with JSON.
    pub async fn request_token(
        &self,
        client_id: &str,
        client_secret: &str,
        resource: Option<&str>,
        scopes: &[&str],
    ) -> (u16, Value) {
        let scope = scopes.join(" ");
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        self.post_token(client_id, client_secret, &form).await
    }

    /// POSTs `form` to the token endpoint as `client_id` (client_secret_basic): the status and
    /// the JSON body.
    async fn post_token(
        &self,
        client_id: &str,
        client_secret: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = self
            .http
            .post(self.token_endpoint())
            .basic_auth(client_id, Some(client_secret))
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {}: {e}\n{}", self.token_endpoint(), self.log_tail()));
        let status = response.status().as_u16();
        let body = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("the token response is not JSON: {e}"));
        (status, body)
    }

    /// Rotates the provider's keys: the next key signs from now on and is published first;
    /// older keys stay published. Returns the keys after the rotation.
    pub async fn rotate_keys(&self) -> Keys {
        let state = self.admin("rotate", None).await;
        keys_of(&state)
    }

    /// The provider's keys.
    pub async fn keys(&self) -> Keys {
        let state = self.admin("state", None).await;
        keys_of(&state)
    }

    /// A token signed with `key` by the provider's fixture: `header` fields override
    /// `{alg, typ: "at+jwt", kid}`, `claims` override what the token endpoint would issue to
    /// [`CLIENT_ID`] for the provider's resource (iss, sub, client_id, aud, scope, iat, exp =
    /// iat + [`TOKEN_TTL_SECS`], jti); a field given as `null` is left out.
    pub async fn mint(&self, key: SigningKey, header: Value, claims: Value) -> String {
        let body = json!({ "key": key.name(), "header": header, "claims": claims });
        let answer = self.admin("mint", Some(body)).await;
        answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("mint answered without a token: {answer}"))
            .to_owned()
    }

    async fn admin(&self, action: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_admin/{action}", self.issuer);
        let request = match body {
            Some(body) => self.http.post(&url).json(&body),
            None if action == "state" => self.http.get(&url),
            None => self.http.post(&url),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}\n{}", self.log_tail()));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url} is not JSON ({e}): {text}"))
    }

    /// The last lines of the provider's log (its stderr).
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "--- last {} lines of {} ---\n{}\n--- end ---",
            tail.len(),
            self.log.display(),
            tail.join("\n")
        )
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean it is already gone.
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("the OIDC provider's log is kept in {}", self.log.display());
        } else {
            let _ = fs::remove_file(&self.log);
        }
    }
}

fn keys_of(state: &Value) -> Keys {
    let kids = state["kids"]
        .as_array()
        .unwrap_or_else(|| panic!("no kids in {state}"))
        .iter()
        .filter_map(|kid| kid.as_str().map(str::to_owned))
        .collect();
    let next_kid = state["next_kid"]
        .as_str()
        .unwrap_or_else(|| panic!("no next_kid in {state}"))
        .to_owned();
    Keys { kids, next_kid }
}

/// Seconds since the Unix epoch, for `iat`, `nbf` and `exp`.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// A compact JWS's header and claims, decoded (the signature is not checked).
///
/// # Panics
///
/// When `token` is not three base64url segments of JSON, JSON and anything.
pub fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut segment = |what: &str| -> Value {
        let part = parts
            .next()
            .unwrap_or_else(|| panic!("the token has no {what}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .unwrap_or_else(|e| panic!("the token's {what} is not base64url: {e}"));
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("the token's {what} is not JSON: {e}"))
    };
    let header = segment("header");
    let claims = segment("claims");
    (header, claims)
}

/// `base64url(header).base64url(claims).` with an empty signature: the `alg: none` form.
pub fn encode_unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `token` with one byte of its signature flipped (the header and claims unchanged).
///
/// # Panics
///
/// When `token` is not a compact JWS with a non-empty base64url signature.
pub fn tamper_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a compact JWS");
    let mut bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("a base64url signature");
    assert!(!bytes.is_empty(), "the token has no signature");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `token` with its claims replaced by `claims` and its header and signature kept: a signature
/// that no longer matches.
///
/// # Panics
///
/// When `token` is not a compact JWS.
pub fn replace_claims(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let header = parts.next().expect("a compact JWS");
    let signature = parts.nth(1).expect("a compact JWS");
    format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
