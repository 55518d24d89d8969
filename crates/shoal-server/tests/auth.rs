//! `shoal serve --auth jwt` as a resource server for a real authorization server:
//! `oidc-provider` (npm, a certified OpenID provider) started by each test through
//! [`OidcProvider`], issuing RFC 9068 JWT access tokens by the client-credentials grant with
//! resource indicators (RFC 8707) for the Shoal endpoint.
//!
//! - Shoal discovers the provider from `--issuer`, accepts its tokens, and a client runs the
//!   tools with one, on the memory host and through 3 replicas on Redis.
//! - Every rejection asserts the status and the `WWW-Authenticate` challenge: parameters in the
//!   order `resource_metadata`, `scope`, `error`, exactly; an `error_description` after them may
//!   say anything (but never repeat the token).
//! - The TypeScript SDK's own OAuth discovery (`tests/clients/ts/oauth-discovery.mjs`) reads
//!   the challenge and the metadata, finds the provider, gets a token and calls a tool.
//!
//! Real processes, every wait bounded. Node ≥ 22 comes from `$SHOAL_NODE` (`cargo xtask ci`
//! sets it) or `PATH`; without it the tests fail and say so.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shoal_testkit::client::message;
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::oidc::{
    self, CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, OidcProvider, SigningKey,
};
use shoal_testkit::{McpClient, RawResponse};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
/// The scopes the provider's clients may ask for.
const SCOPES: [&str; 3] = ["mcp:tools", "mcp:echo", "mcp:admin"];
/// A test that takes longer than this has hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `shoal serve` has to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a server is started on fresh ports when one was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

static NEXT_LOG: AtomicUsize = AtomicUsize::new(0);

/// Runs `test` with a bound on its time.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}

// --- shoal serve -------------------------------------------------------------------------

/// A `shoal serve` process on the memory host, killed on drop.
struct Shoal {
    child: Option<Child>,
    listen: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

/// Two free loopback ports: the MCP endpoint's, known before the server starts (the provider
/// must know the resource), and the admin listener's.
fn free_ports() -> [SocketAddr; 2] {
    let bind = || TcpListener::bind("127.0.0.1:0").unwrap();
    let (first, second) = (bind(), bind());
    [first.local_addr().unwrap(), second.local_addr().unwrap()]
}

/// How one start of `shoal serve` ended.
enum Started {
    Ready,
    /// The admin port was taken: another one will do.
    AdminPortTaken,
    /// The endpoint's port was taken: its public URL changes with it.
    ListenPortTaken,
}

impl Shoal {
    /// Where the next server will listen: its public URL is the resource tokens are for.
    fn reserve() -> [SocketAddr; 2] {
        free_ports()
    }

    /// Starts `shoal serve --auth jwt --issuer <issuer> ARGS` on `ports` (from
    /// [`Shoal::reserve`]) and waits for `/readyz`; `None` when the endpoint's port was taken
    /// before `shoal` could bind it.
    async fn start_jwt(ports: [SocketAddr; 2], issuer: &str, args: &[&str]) -> Option<Shoal> {
        let mut all = vec!["--auth", "jwt", "--issuer", issuer];
        all.extend_from_slice(args);
        Self::start(ports, &all).await
    }

    async fn start(ports: [SocketAddr; 2], args: &[&str]) -> Option<Shoal> {
        let [listen, admin] = ports;
        let log = std::env::temp_dir().join(format!(
            "shoal-auth-{}-{}.log",
            std::process::id(),
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let mut shoal = Shoal {
            child: None,
            listen,
            admin,
            log,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            shoal.spawn(args);
            match shoal.wait_ready().await {
                Started::Ready => return Some(shoal),
                // The public URL is what tokens are for: the caller starts over on new ports.
                Started::ListenPortTaken => return None,
                Started::AdminPortTaken => {}
            }
            assert!(
                attempt < PORT_ATTEMPTS,
                "shoal found its ports taken {PORT_ATTEMPTS} times\n{}",
                shoal.log_tail()
            );
            shoal.admin = free_ports()[0];
        }
        unreachable!()
    }

    fn spawn(&mut self, args: &[&str]) {
        let out = File::create(&self.log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(SHOAL)
            .arg("serve")
            .args(["--listen", &self.listen.to_string()])
            .args(["--admin-listen", &self.admin.to_string()])
            .args(["--public-url", &self.url()])
            .args(["--tools", "demo"])
            .args(args)
            .env("RUST_LOG", "info")
            // The error of a failed start is the log's last line, not buried under a backtrace.
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {SHOAL}: {e}"));
        self.child = Some(child);
    }

    /// Ready once `/readyz` is 200; or which port was taken when the process exited for it.
    async fn wait_ready(&mut self) -> Started {
        let http = http();
        let url = format!("http://{}/readyz", self.admin);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                // `shoal serve` fails with "binding <addr>: Address already in use".
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                if log.contains("Address already in use") {
                    if log.contains(&format!("binding {}", self.admin)) {
                        return Started::AdminPortTaken;
                    }
                    if log.contains(&format!("binding {}", self.listen)) {
                        return Started::ListenPortTaken;
                    }
                }
                panic!(
                    "shoal serve exited before it was ready ({status}); does it accept `--auth \
                     jwt` and the flags this test passes?\n{}",
                    self.log_tail()
                );
            }
            let last = match http.get(&url).send().await {
                Ok(response) if response.status() == StatusCode::OK => return Started::Ready,
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => error.to_string(),
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "shoal was not ready within {READY_TIMEOUT:?} (last /readyz: {last})\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The MCP endpoint and public URL, `http://127.0.0.1:<port>/mcp`: the audience.
    fn url(&self) -> String {
        format!("http://{}/mcp", self.listen)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// The Protected Resource Metadata URL every challenge names.
    fn resource_metadata(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.origin())
    }

    fn client(&self, token: &str) -> McpClient {
        McpClient::new(self.url()).with_header("authorization", &format!("Bearer {token}"))
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        format!(
            "--- last {} lines of {} ---\n{}\n--- end ---",
            tail.len(),
            self.log.display(),
            tail.join("\n")
        )
    }
}

impl Drop for Shoal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("shoal's log is kept in {}", self.log.display());
        } else {
            let _ = fs::remove_file(&self.log);
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A provider for a server about to listen on `ports`, and that server's URL.
async fn provider_for(ports: [SocketAddr; 2]) -> OidcProvider {
    OidcProvider::start(&format!("http://{}/mcp", ports[0]), &SCOPES).await
}

/// A provider and a `shoal serve --auth jwt` trusting it, with `args`.
async fn provider_and_shoal(args: &[&str]) -> (OidcProvider, Shoal) {
    for _ in 0..PORT_ATTEMPTS {
        let ports = Shoal::reserve();
        let provider = provider_for(ports).await;
        if let Some(shoal) = Shoal::start_jwt(ports, provider.issuer(), args).await {
            return (provider, shoal);
        }
        // The endpoint's port was taken before `shoal` bound it: the public URL (the tokens'
        // audience, which the provider knows) changes with it, so both start over.
    }
    panic!("shoal found its endpoint's port taken {PORT_ATTEMPTS} times");
}

// --- requests and challenges -------------------------------------------------------------

fn initialize_params() -> Value {
    json!({
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": { "name": "shoal-auth-test", "version": "1" }
    })
}

/// POSTs `initialize` with `Authorization: <authorization>` (none when `None`).
async fn initialize_with(shoal: &Shoal, authorization: Option<&str>) -> RawResponse {
    let mut client = McpClient::new(shoal.url());
    if let Some(value) = authorization {
        client = client.with_header("authorization", value);
    }
    client
        .post_raw(message(0, "initialize", Some(initialize_params())), |_| {})
        .await
}

async fn initialize_bearer(shoal: &Shoal, token: &str) -> RawResponse {
    initialize_with(shoal, Some(&format!("Bearer {token}"))).await
}

/// `Bearer resource_metadata="…"[, scope="…"][, error="…"]`.
fn challenge(shoal: &Shoal, scope: Option<&str>, error: Option<&str>) -> String {
    let mut params = vec![format!(
        "resource_metadata=\"{}\"",
        shoal.resource_metadata()
    )];
    if let Some(scope) = scope {
        params.push(format!("scope=\"{scope}\""));
    }
    if let Some(error) = error {
        params.push(format!("error=\"{error}\""));
    }
    format!("Bearer {}", params.join(", "))
}

/// Asserts `response`'s status and challenge: exactly `expected`, followed only by an optional
/// `error_description` (which must not contain `token`).
fn assert_challenge(
    response: &RawResponse,
    status: u16,
    expected: &str,
    token: Option<&str>,
    case: &str,
) {
    assert_eq!(response.status.as_u16(), status, "{case}: {response}");
    let header = response
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{case}: no WWW-Authenticate in {response}"));
    let challenge = match header.find(", error_description=\"") {
        Some(at) => {
            let description = &header[at..];
            assert!(
                description.ends_with('"'),
                "{case}: error_description is not last in {header:?}"
            );
            if let Some(token) = token.filter(|t| t.len() > 8) {
                assert!(
                    !description.contains(token),
                    "{case}: the challenge repeats the token: {header:?}"
                );
            }
            &header[..at]
        }
        None => header,
    };
    assert_eq!(challenge, expected, "{case}: WWW-Authenticate");
}

/// Asserts that `initialize` with `token` is accepted (200 and a session).
async fn assert_accepted(shoal: &Shoal, token: &str, case: &str) {
    let response = initialize_bearer(shoal, token).await;
    assert_eq!(response.status, StatusCode::OK, "{case}: {response}");
    assert!(
        response.header("mcp-session-id").is_some(),
        "{case}: no session: {response}"
    );
}

/// Asserts that `initialize` with `token` is refused with 401 `invalid_token`.
async fn assert_invalid_token(shoal: &Shoal, token: &str, scope: Option<&str>, case: &str) {
    let response = initialize_bearer(shoal, token).await;
    let expected = challenge(shoal, scope, Some("invalid_token"));
    assert_challenge(&response, 401, &expected, Some(token), case);
}

/// A token of the provider's first client for `shoal` with `scopes`.
async fn token(provider: &OidcProvider, shoal: &Shoal, scopes: &[&str]) -> String {
    provider
        .token_as(CLIENT_ID, CLIENT_SECRET, &shoal.url(), scopes)
        .await
}

/// A token the fixture signs with `key`, for `shoal` (`aud`), `claims` overriding the rest.
async fn mint(
    provider: &OidcProvider,
    shoal: &Shoal,
    key: SigningKey,
    header: Value,
    mut claims: Value,
) -> String {
    if claims.get("aud").is_none() {
        claims["aud"] = json!(shoal.url());
    }
    provider.mint(key, header, claims).await
}

/// Initializes, lists the tools and calls `echo` with `client`.
async fn run_tools(client: &mut McpClient, text: &str) {
    client.initialize().await;
    client.notify_initialized().await;
    let tools = client.request("tools/list", None).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list failed: {tools}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");
    let result = client.call_tool("echo", json!({ "text": text })).await;
    assert_eq!(result["content"][0]["text"], text, "{result}");
}

// --- accepted tokens ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_token_runs_the_tools_on_the_memory_host() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&[]).await;
        let token = token(&provider, &shoal, &["mcp:tools", "mcp:echo"]).await;
        // What the provider issued: an RFC 9068 access token for this resource.
        let (header, claims) = oidc::decode(&token);
        assert_eq!(header["typ"], "at+jwt", "{header}");
        assert_eq!(header["alg"], "RS256", "{header}");
        assert!(header["kid"].is_string(), "{header}");
        assert_eq!(claims["iss"], provider.issuer(), "{claims}");
        assert_eq!(claims["aud"], shoal.url(), "{claims}");
        assert_eq!(claims["sub"], CLIENT_ID, "{claims}");
        assert_eq!(claims["scope"], "mcp:tools mcp:echo", "{claims}");

        let mut client = shoal.client(&token);
        run_tools(&mut client, "hello, jwt").await;
        // A later request of the session without the token is refused.
        let mut anonymous = McpClient::new(shoal.url());
        anonymous.set_session_id(client.session_id().map(str::to_owned));
        anonymous.set_protocol_version(client.protocol_version().map(str::to_owned));
        let response = anonymous
            .post_raw(message(9, "tools/list", None), |_| {})
            .await;
        assert_challenge(
            &response,
            401,
            &challenge(&shoal, None, None),
            None,
            "no token",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_token_runs_the_tools_across_three_replicas_on_redis() {
    bounded(async {
        // Behind a load balancer the public URL is the balancer's: here a name no replica
        // listens on, which every replica uses for the audience and the metadata URLs.
        const PUBLIC: &str = "http://shoal.test/mcp";
        let provider = OidcProvider::start(PUBLIC, &SCOPES).await;
        let cluster = ShoalCluster::builder(SHOAL)
            .replicas(3)
            .arg("--public-url")
            .arg(PUBLIC)
            .arg("--auth")
            .arg("jwt")
            .arg("--issuer")
            .arg(provider.issuer())
            .start()
            .await;
        let token = provider
            .token_as(CLIENT_ID, CLIENT_SECRET, PUBLIC, &["mcp:tools"])
            .await;
        let mut client = McpClient::new(cluster.url())
            .with_header("authorization", &format!("Bearer {token}"));
        run_tools(&mut client, "hello, replicas").await;
        for i in 0..6 {
            let text = format!("again {i}");
            let result = client.call_tool("echo", json!({ "text": text })).await;
            assert_eq!(result["content"][0]["text"], text, "{result}");
        }
        let served = cluster.proxy().served();
        let mut backends: Vec<usize> = served.iter().map(|s| s.backend).collect();
        backends.sort_unstable();
        backends.dedup();
        assert_eq!(backends.len(), 3, "not every replica served the session");

        // Each replica: no token → the challenge with the public URL; another principal on
        // the session → 404.
        let other = provider
            .token_as(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, PUBLIC, &["mcp:tools"])
            .await;
        for i in 0..3 {
            let response = McpClient::new(cluster.replica_url(i))
                .post_raw(message(0, "initialize", Some(initialize_params())), |_| {})
                .await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{response}");
            assert_eq!(
                response.header("www-authenticate"),
                Some(
                    "Bearer resource_metadata=\"http://shoal.test/.well-known/oauth-protected-resource/mcp\""
                ),
                "replica {i}"
            );
            let mut intruder = McpClient::new(cluster.replica_url(i))
                .with_header("authorization", &format!("Bearer {other}"));
            intruder.set_session_id(client.session_id().map(str::to_owned));
            intruder.set_protocol_version(client.protocol_version().map(str::to_owned));
            let response = intruder
                .post_raw(message(99, "tools/list", None), |_| {})
                .await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "replica {i}: {response}");
        }
    })
    .await;
}

// --- rejections --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_and_malformed_headers_are_refused() {
    bounded(async {
        let (_provider, shoal) = provider_and_shoal(&[]).await;
        let response = initialize_with(&shoal, None).await;
        assert_challenge(
            &response,
            401,
            &challenge(&shoal, None, None),
            None,
            "no token",
        );

        for malformed in ["Bearer", "Bearer ", "Bearer two tokens", "Bearer  a"] {
            let response = initialize_with(&shoal, Some(malformed)).await;
            assert_challenge(
                &response,
                400,
                &challenge(&shoal, None, Some("invalid_request")),
                None,
                &format!("Authorization: {malformed:?}"),
            );
        }

        // Well-formed, but not a JWT.
        assert_invalid_token(&shoal, "not-a-jwt", None, "not a JWT").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&[]).await;
        let genuine = token(&provider, &shoal, &["mcp:tools"]).await;
        assert_accepted(&shoal, &genuine, "the genuine token").await;
        let (header, claims) = oidc::decode(&genuine);

        let tampered = oidc::tamper_signature(&genuine);
        assert_invalid_token(&shoal, &tampered, None, "a flipped signature byte").await;

        let mut more = claims.clone();
        more["scope"] = json!("mcp:tools mcp:admin");
        let rewritten = oidc::replace_claims(&genuine, &more);
        assert_invalid_token(&shoal, &rewritten, None, "claims changed after signing").await;

        for none in [
            json!({ "alg": "none", "typ": "at+jwt" }),
            json!({ "alg": "none", "typ": "at+jwt", "kid": header["kid"] }),
            json!({ "alg": "None", "typ": "at+jwt" }),
        ] {
            let unsigned = oidc::encode_unsigned(&none, &claims);
            assert_invalid_token(&shoal, &unsigned, None, &format!("unsigned {none}")).await;
            // Also with the genuine signature left in place.
            let signature = genuine.rsplit('.').next().unwrap();
            let with_signature = format!("{unsigned}{signature}");
            assert_invalid_token(
                &shoal,
                &with_signature,
                None,
                &format!("{none} + signature"),
            )
            .await;
        }

        let hmac = mint(
            &provider,
            &shoal,
            SigningKey::HmacWithPublicKeyPem,
            json!({}),
            json!({}),
        )
        .await;
        assert_eq!(oidc::decode(&hmac).0["alg"], "HS256");
        assert_invalid_token(&shoal, &hmac, None, "HS256 keyed with the public key").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_is_accepted_once_the_provider_rotates_its_keys() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&["--jwks-refetch-interval", "1s"]).await;
        let before = token(&provider, &shoal, &["mcp:tools"]).await;
        assert_accepted(&shoal, &before, "a token of the current key").await;

        let keys = provider.keys().await;
        let early = mint(&provider, &shoal, SigningKey::Next, json!({}), json!({})).await;
        assert_eq!(oidc::decode(&early).0["kid"], keys.next_kid.as_str());
        assert_invalid_token(&shoal, &early, None, "a kid the provider does not publish").await;

        let rotated = provider.rotate_keys().await;
        assert_eq!(rotated.kids[0], keys.next_kid);
        assert_eq!(rotated.kids[1..], keys.kids[..]);

        // Shoal refetches the JWKS for the unknown kid, at most once per refetch interval.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let response = initialize_bearer(&shoal, &early).await;
            if response.status == StatusCode::OK {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the token of the rotated-in key is still refused: {response}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let after = token(&provider, &shoal, &["mcp:tools"]).await;
        assert_eq!(oidc::decode(&after).0["kid"], keys.next_kid.as_str());
        assert_accepted(&shoal, &after, "a token the provider signed after rotating").await;
        assert_accepted(&shoal, &before, "a token of the key rotated out of signing").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_issuer_is_refused() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&[]).await;
        let stranger = OidcProvider::start(&shoal.url(), &SCOPES).await;
        let foreign = token(&stranger, &shoal, &["mcp:tools"]).await;
        assert_invalid_token(&shoal, &foreign, None, "a token of another provider").await;

        // Signed by the trusted provider's key, so that only `iss` is wrong.
        for iss in [
            stranger.issuer().to_owned(),
            format!("{}/", provider.issuer()),
            provider.issuer().replace("127.0.0.1", "localhost"),
        ] {
            let forged = mint(
                &provider,
                &shoal,
                SigningKey::Current,
                json!({}),
                json!({ "iss": iss }),
            )
            .await;
            assert_invalid_token(&shoal, &forged, None, &format!("iss {iss}")).await;
        }
        let missing = mint(
            &provider,
            &shoal,
            SigningKey::Current,
            json!({}),
            json!({ "iss": null }),
        )
        .await;
        assert_invalid_token(&shoal, &missing, None, "no iss").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_audience_is_refused() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&[]).await;
        for resource in [
            format!("{}/", shoal.url()),
            format!("{}/other", shoal.origin()),
            shoal.origin(),
            "https://mcp.example.com/mcp".to_owned(),
        ] {
            let token = provider
                .token_as(CLIENT_ID, CLIENT_SECRET, &resource, &["mcp:tools"])
                .await;
            assert_eq!(oidc::decode(&token).1["aud"], resource.as_str());
            assert_invalid_token(&shoal, &token, None, &format!("aud {resource}")).await;
        }
        let missing = mint(
            &provider,
            &shoal,
            SigningKey::Current,
            json!({}),
            json!({ "aud": null }),
        )
        .await;
        assert_invalid_token(&shoal, &missing, None, "no aud").await;
        // `aud` may be an array: it must contain the canonical URL.
        let several = mint(
            &provider,
            &shoal,
            SigningKey::Current,
            json!({}),
            json!({ "aud": ["https://mcp.example.com/mcp", shoal.url()] }),
        )
        .await;
        assert_accepted(&shoal, &several, "aud containing the URL").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    bounded(async {
        // Default leeway: 30 s.
        let (provider, shoal) = provider_and_shoal(&[]).await;
        let now = oidc::now();
        let refused = [
            (
                "expired an hour ago",
                json!({ "iat": now - 7200, "exp": now - 3600 }),
            ),
            (
                "expired 2 minutes ago",
                json!({ "iat": now - 600, "exp": now - 120 }),
            ),
            ("valid in an hour", json!({ "nbf": now + 3600 })),
            ("valid in 2 minutes", json!({ "nbf": now + 120 })),
            (
                "issued in an hour",
                json!({ "iat": now + 3600, "exp": now + 7200 }),
            ),
            ("no exp", json!({ "exp": null })),
        ];
        for (case, claims) in refused {
            let token = mint(&provider, &shoal, SigningKey::Current, json!({}), claims).await;
            assert_invalid_token(&shoal, &token, None, case).await;
        }
        let within_leeway = [
            (
                "expired 5 s ago",
                json!({ "iat": now - 600, "exp": now - 5 }),
            ),
            ("valid in 5 s", json!({ "nbf": now + 5 })),
        ];
        for (case, claims) in within_leeway {
            let token = mint(&provider, &shoal, SigningKey::Current, json!({}), claims).await;
            assert_accepted(&shoal, &token, case).await;
        }
    })
    .await;
}

/// The claims and header fields that a lax decoder mistakes for absent or skips (the class of
/// CVE-2026-25537, GHSA-h395-gr6q-cpjc: a string `nbf` passed as "no nbf"): each token is
/// signed by the provider's real key, and each is refused as `invalid_token` (RFC 6750 §3.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_confused_claims_and_unknown_critical_headers_are_refused() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&[]).await;
        let now = oidc::now();
        let cases = [
            (
                "a string nbf an hour ahead",
                json!({}),
                json!({ "nbf": (now + 3600).to_string() }),
            ),
            (
                "a string exp an hour ago",
                json!({}),
                json!({ "iat": now - 7200, "exp": (now - 3600).to_string() }),
            ),
            (
                "a string exp an hour ahead",
                json!({}),
                json!({ "exp": (now + 3600).to_string() }),
            ),
            ("a numeric sub", json!({}), json!({ "sub": 42 })),
            (
                "an array iss",
                json!({}),
                json!({ "iss": [provider.issuer()] }),
            ),
            (
                "an unknown crit header",
                json!({ "crit": ["shoal-unknown"], "shoal-unknown": true }),
                json!({}),
            ),
            ("alg none", json!({ "alg": "none" }), json!({})),
        ];
        for (case, header, claims) in cases {
            // jose will not sign `alg: none`: that token is built unsigned from a genuine one.
            let token = if header["alg"] == "none" {
                let genuine = mint(&provider, &shoal, SigningKey::Current, json!({}), claims).await;
                let (mut header, claims) = oidc::decode(&genuine);
                header["alg"] = json!("none");
                oidc::encode_unsigned(&header, &claims)
            } else {
                mint(&provider, &shoal, SigningKey::Current, header, claims).await
            };
            assert_invalid_token(&shoal, &token, None, case).await;
        }
        let hmac = mint(
            &provider,
            &shoal,
            SigningKey::HmacWithPublicKeyPem,
            json!({}),
            json!({}),
        )
        .await;
        assert_invalid_token(&shoal, &hmac, None, "HS256 keyed with the public key").await;
        // The same provider's untouched token still passes: the refusals above are the fields.
        let genuine = mint(&provider, &shoal, SigningKey::Current, json!({}), json!({})).await;
        assert_accepted(&shoal, &genuine, "the genuine token").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_required_scopes_are_enforced() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&["--required-scopes", "mcp:tools"]).await;
        let scope = Some("mcp:tools");
        let response = initialize_with(&shoal, None).await;
        assert_challenge(
            &response,
            401,
            &challenge(&shoal, scope, None),
            None,
            "no token",
        );
        let genuine = token(&provider, &shoal, &["mcp:tools"]).await;
        let tampered = oidc::tamper_signature(&genuine);
        assert_invalid_token(&shoal, &tampered, scope, "a flipped signature byte").await;

        let narrow = token(&provider, &shoal, &["mcp:echo"]).await;
        let response = initialize_bearer(&shoal, &narrow).await;
        assert_challenge(
            &response,
            403,
            &challenge(&shoal, scope, Some("insufficient_scope")),
            Some(&narrow),
            "a token without mcp:tools",
        );
        let none = token(&provider, &shoal, &[]).await;
        let response = initialize_bearer(&shoal, &none).await;
        assert_challenge(
            &response,
            403,
            &challenge(&shoal, scope, Some("insufficient_scope")),
            Some(&none),
            "a token without scopes",
        );

        assert_accepted(&shoal, &genuine, "a token with mcp:tools").await;
        // Scopes also come from `scp` (an array).
        let scp = mint(
            &provider,
            &shoal,
            SigningKey::Current,
            json!({}),
            json!({ "scope": null, "scp": ["mcp:echo", "mcp:tools"] }),
        )
        .await;
        assert_accepted(&shoal, &scp, "scp with mcp:tools").await;
        let mut client = shoal.client(&genuine);
        run_tools(&mut client, "scoped").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tools_scope_is_enforced_at_tools_call() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&["--tool-scope", "echo=mcp:echo"]).await;
        let without = token(&provider, &shoal, &["mcp:tools"]).await;
        let mut client = shoal.client(&without);
        client.initialize().await;
        client.notify_initialized().await;
        let tools = client.request("tools/list", None).await;
        assert!(tools["result"]["tools"].is_array(), "{tools}");
        let call = message(
            client.next_id(),
            "tools/call",
            Some(json!({ "name": "echo", "arguments": { "text": "no" } })),
        );
        let response = client.post_raw(call, |_| {}).await;
        assert_challenge(
            &response,
            403,
            &challenge(&shoal, Some("mcp:echo"), Some("insufficient_scope")),
            Some(&without),
            "echo without mcp:echo",
        );

        let with = token(&provider, &shoal, &["mcp:tools", "mcp:echo"]).await;
        let mut client = shoal.client(&with);
        run_tools(&mut client, "allowed").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_answers_only_its_principal() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&[]).await;
        let first = token(&provider, &shoal, &["mcp:tools"]).await;
        let mut owner = shoal.client(&first);
        run_tools(&mut owner, "mine").await;

        let other = provider
            .token_as(
                OTHER_CLIENT_ID,
                OTHER_CLIENT_SECRET,
                &shoal.url(),
                &["mcp:tools"],
            )
            .await;
        assert_eq!(oidc::decode(&other).1["sub"], OTHER_CLIENT_ID);
        let mut intruder = shoal.client(&other);
        intruder.set_session_id(owner.session_id().map(str::to_owned));
        intruder.set_protocol_version(owner.protocol_version().map(str::to_owned));
        let response = intruder
            .post_raw(message(50, "tools/list", None), |_| {})
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{response}");
        let response = intruder.delete().await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "DELETE: {response}");

        // Another token of the same client is the same principal.
        let second = token(&provider, &shoal, &["mcp:tools"]).await;
        assert_ne!(first, second);
        let mut renewed = shoal.client(&second);
        renewed.set_session_id(owner.session_id().map(str::to_owned));
        renewed.set_protocol_version(owner.protocol_version().map(str::to_owned));
        let result = renewed
            .call_tool("echo", json!({ "text": "still mine" }))
            .await;
        assert_eq!(result["content"][0]["text"], "still mine");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_at_jwt_refuses_other_token_types() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&["--require-at-jwt"]).await;
        for typ in [json!("JWT"), json!(null)] {
            let token = mint(
                &provider,
                &shoal,
                SigningKey::Current,
                json!({ "typ": typ }),
                json!({}),
            )
            .await;
            assert_invalid_token(&shoal, &token, None, &format!("typ {typ}")).await;
        }
        let genuine = token(&provider, &shoal, &["mcp:tools"]).await;
        assert_accepted(&shoal, &genuine, "typ at+jwt").await;
    })
    .await;
}

// --- metadata and discovery --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata_names_the_provider() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&[
            "--required-scopes",
            "mcp:tools",
            "--mirror-authorization-server-metadata",
        ])
        .await;
        let http = http();
        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
        ] {
            let response = http
                .get(format!("{}{path}", shoal.origin()))
                .header("origin", "https://app.example.com")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(
                response
                    .headers()
                    .contains_key("access-control-allow-origin"),
                "{path}: no CORS: {:?}",
                response.headers()
            );
            let metadata: Value = response.json().await.unwrap();
            assert_eq!(metadata["resource"], shoal.url(), "{path}: {metadata}");
            assert_eq!(
                metadata["authorization_servers"],
                json!([provider.issuer()]),
                "{path}: {metadata}"
            );
            assert_eq!(
                metadata["bearer_methods_supported"],
                json!(["header"]),
                "{path}: {metadata}"
            );
            let scopes = metadata["scopes_supported"]
                .as_array()
                .unwrap_or_else(|| panic!("{path}: no scopes_supported: {metadata}"));
            assert!(scopes.contains(&json!("mcp:tools")), "{path}: {metadata}");
        }

        let mirrored: Value = http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                shoal.origin()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(mirrored["issuer"], provider.issuer(), "{mirrored}");
        assert_eq!(
            mirrored["token_endpoint"],
            provider.token_endpoint(),
            "{mirrored}"
        );
        assert_eq!(mirrored["jwks_uri"], provider.jwks_uri(), "{mirrored}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_discovers_the_provider_and_calls_a_tool() {
    bounded(async {
        let (provider, shoal) = provider_and_shoal(&["--required-scopes", "mcp:tools"]).await;
        let node = shoal_testkit::node::node();
        let ts_dir = shoal_testkit::node::repo_root().join("tests/clients/ts");
        shoal_testkit::node::ensure_npm_packages(&ts_dir, &node);
        let output = tokio::time::timeout(
            Duration::from_secs(45),
            tokio::process::Command::new(&node)
                .current_dir(&ts_dir)
                .arg("oauth-discovery.mjs")
                .arg(shoal.url())
                .arg(CLIENT_ID)
                .arg(CLIENT_SECRET)
                // SDK 1.x asks for the client's configured scope, not the challenge's hint.
                .arg("mcp:tools")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("oauth-discovery.mjs did not finish within 45 s")
        .expect("running oauth-discovery.mjs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "oauth-discovery.mjs failed ({})\nstdout: {stdout}\nstderr: {stderr}\n{}\n{}",
            output.status,
            shoal.log_tail(),
            provider.log_tail()
        );
        let report: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("oauth-discovery.mjs printed no JSON ({e}): {stdout}"));

        let prm_url = shoal.resource_metadata();
        let as_url = format!(
            "{}/.well-known/oauth-authorization-server",
            provider.issuer()
        );
        // What the SDK parsed from the challenge and the documents.
        let parsed = &report["challenge"];
        assert_eq!(parsed["status"], 401, "{report}");
        assert_eq!(
            parsed["resource_metadata_url"],
            prm_url.as_str(),
            "{report}"
        );
        assert_eq!(parsed["scope"], "mcp:tools", "{report}");
        assert_eq!(report["resource_metadata"]["resource"], shoal.url());
        assert_eq!(report["authorization_server"], provider.issuer());
        let as_metadata = &report["authorization_server_metadata"];
        assert_eq!(as_metadata["issuer"], provider.issuer(), "{report}");
        assert_eq!(
            as_metadata["token_endpoint"],
            provider.token_endpoint(),
            "{report}"
        );
        // The token it got and used.
        let claims = &report["token_claims"];
        assert_eq!(claims["iss"], provider.issuer(), "{report}");
        assert_eq!(claims["aud"], shoal.url(), "{report}");
        assert_eq!(claims["sub"], CLIENT_ID, "{report}");
        assert_eq!(claims["scope"], "mcp:tools", "{report}");
        assert!(
            report["tools"].as_array().unwrap().contains(&json!("echo")),
            "{report}"
        );
        assert_eq!(report["echo"], "hello, oauth", "{report}");

        // What it fetched, in order.
        let fetched = report["fetched"].as_array().unwrap();
        let list: Vec<String> = fetched
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {}",
                    f["phase"].as_str().unwrap_or("?"),
                    f["method"].as_str().unwrap_or("?"),
                    f["url"].as_str().unwrap_or("?"),
                    f["status"]
                )
            })
            .collect();
        let position = |phase: &str, method: &str, url: &str, status: u16| {
            fetched.iter().position(|f| {
                f["phase"] == phase
                    && f["method"] == method
                    && f["url"] == url
                    && f["status"] == status
            })
        };
        let step = [
            position("discovery", "POST", &shoal.url(), 401),
            position("discovery", "GET", &prm_url, 200),
            position("discovery", "GET", &as_url, 200),
        ];
        assert!(
            step.iter().all(Option::is_some) && step.is_sorted(),
            "discovery step by step:\n{}",
            list.join("\n")
        );
        let token_endpoint = provider.token_endpoint();
        let flow = [
            position("client", "POST", &shoal.url(), 401),
            position("client", "GET", &prm_url, 200),
            position("client", "GET", &as_url, 200),
            position("client", "POST", &token_endpoint, 200),
        ];
        assert!(
            flow.iter().all(Option::is_some) && flow.is_sorted(),
            "the SDK's flow:\n{}",
            list.join("\n")
        );
        let token_request = &fetched[flow[3].unwrap()];
        assert_eq!(
            token_request["form"]["grant_type"], "client_credentials",
            "{token_request}"
        );
        assert_eq!(
            token_request["form"]["scope"], "mcp:tools",
            "{token_request}"
        );
        assert_eq!(
            token_request["form"]["resource"],
            shoal.url(),
            "{token_request}"
        );
        assert!(
            fetched[flow[3].unwrap()..]
                .iter()
                .any(|f| f["url"] == shoal.url()
                    && f["status"] == 200
                    && f["authorization"] == "Bearer"),
            "no authenticated request after the token:\n{}",
            list.join("\n")
        );
    })
    .await;
}
