//! Security checks of the real `shoal` binary (issue 7):
//!
//! - A session belongs to the principal that initialized it, on every replica: another
//!   principal sending its id straight to each replica gets the same 404 as for an unknown
//!   session, for every method, and cannot delete it.
//! - No secret reaches the logs at the default level, in text or JSON, nor Shoal's own debug
//!   lines: neither a token (valid or not), nor a session id, nor a tool argument value.
//! - The OAuth metadata URLs come from `--public-url` only, never from the listen address or
//!   a client-supplied `Host` / `X-Forwarded-*` header; jwt on a non-loopback listen address
//!   without `--public-url` is refused.
//!
//! Real processes and a real `redis-server` (from `PATH`, or `$SHOAL_REDIS_SERVER`); every
//! wait is bounded.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::json;
use shoal_core::codes::session;
use shoal_testkit::client::{LAST_EVENT_ID, message};
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::{McpClient, RawResponse};

use common::{SHOAL, free_port};

/// A test that takes longer than this has hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `shoal serve` has to answer `/readyz`, and to exit after SIGTERM.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a server is started on fresh ports when one was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// The JSON-RPC code of an unknown (or someone else's) session.
const SESSION_NOT_FOUND: i64 = session::SESSION_NOT_FOUND as i64;
/// The JSON-RPC code of the Host/Origin guard's refusals.
const INVALID_REQUEST: i64 = session::INVALID_REQUEST as i64;
/// The public URL of the metadata test: what clients use, on no address of this machine.
const PUBLIC_URL: &str = "https://mcp.example.com/mcp";

static NEXT_FILE: AtomicUsize = AtomicUsize::new(0);

/// Runs `test` with a bound on its time.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}

/// A path under the temporary directory, unique to this process and call.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "shoal-security-{}-{}-{name}",
        std::process::id(),
        NEXT_FILE.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A value no other test or run produces, to look for in logs.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{what}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT_FILE.fetch_add(1, Ordering::Relaxed)
    )
}

/// Static tokens of alice and bob.
struct Tokens {
    alice: String,
    bob: String,
    file: PathBuf,
}

impl Tokens {
    fn new() -> Self {
        let tokens = Tokens {
            alice: unique("alice-token"),
            bob: unique("bob-token"),
            file: temp_path("tokens"),
        };
        fs::write(
            &tokens.file,
            format!(
                "# test tokens\nalice {}\nbob {}\n",
                tokens.alice, tokens.bob
            ),
        )
        .unwrap();
        // Owner-only, as shoal asks of a tokens file (it warns otherwise).
        fs::set_permissions(&tokens.file, fs::Permissions::from_mode(0o600)).unwrap();
        tokens
    }
}

impl Drop for Tokens {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts the 404 of an unknown session, byte for byte the same whoever asks.
fn assert_session_not_found(raw: &RawResponse, what: &str) {
    raw.assert_rpc_error(404, SESSION_NOT_FOUND, "session not found");
    assert_eq!(
        raw.json(),
        json!({ "jsonrpc": "2.0", "error": { "code": SESSION_NOT_FOUND, "message": "session not found" } }),
        "{what}"
    );
}

// --- principal isolation ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_principal_cannot_touch_a_session_on_any_replica() {
    bounded(async {
        let tokens = Tokens::new();
        let cluster = ShoalCluster::builder(SHOAL)
            .replicas(3)
            .arg("--auth")
            .arg("static")
            .arg("--auth-tokens-file")
            .arg(&tokens.file)
            .start()
            .await;
        let mut alice =
            McpClient::new(cluster.url()).with_header("authorization", &bearer(&tokens.alice));
        alice.initialize().await;
        let session = alice.session_id().unwrap().to_owned();

        // An event id of alice's standalone stream, for bob's resume attempt; the stream stays
        // open, so a GET that reached the session would meet a conflict rather than a 404.
        let mut standalone = alice.get_stream(None).await;
        let result = alice
            .call_tool("announce", json!({ "text": "for alice" }))
            .await;
        assert_eq!(result["content"][0]["text"], "announced", "{result}");
        loop {
            if standalone.expect_event().await.json().is_some() {
                break;
            }
        }
        let event_id = standalone
            .last_event_id()
            .expect("the announcement has an id")
            .to_owned();

        for i in 0..cluster.len() {
            let mut bob = McpClient::new(cluster.replica_url(i))
                .with_header("authorization", &bearer(&tokens.bob));
            bob.set_session_id(Some(session.clone()));
            bob.set_protocol_version(alice.protocol_version().map(str::to_owned));
            let what = |method: &str| format!("bob's {method} on replica {i}");

            let post = bob.post_raw(message(90, "tools/list", None), |_| {}).await;
            assert_session_not_found(&post, &what("POST"));
            let call = bob
                .post_raw(
                    message(
                        91,
                        "tools/call",
                        Some(json!({ "name": "echo", "arguments": { "text": "bob" } })),
                    ),
                    |_| {},
                )
                .await;
            assert_session_not_found(&call, &what("tools/call"));
            let get = bob.get_raw(|_| {}).await;
            assert_session_not_found(&get, &what("GET"));
            let resume = bob
                .get_raw(|h| {
                    h.insert(LAST_EVENT_ID, HeaderValue::from_str(&event_id).unwrap());
                })
                .await;
            assert_session_not_found(&resume, &what("GET with Last-Event-ID"));
            let delete = bob.delete().await;
            assert_session_not_found(&delete, &what("DELETE"));

            // Alice, on the same replica, still has her session.
            let mut owner = McpClient::new(cluster.replica_url(i))
                .with_header("authorization", &bearer(&tokens.alice));
            owner.set_session_id(Some(session.clone()));
            owner.set_protocol_version(alice.protocol_version().map(str::to_owned));
            let text = format!("still alice's on replica {i}");
            let result = owner.call_tool("echo", json!({ "text": text })).await;
            assert_eq!(result["content"][0]["text"], text, "{result}");
        }

        // Her stream survived bob's attempts too, and her own DELETE works.
        let result = alice
            .call_tool("announce", json!({ "text": "after bob" }))
            .await;
        assert_eq!(result["content"][0]["text"], "announced", "{result}");
        let message = loop {
            if let Some(message) = standalone.expect_event().await.json() {
                break message;
            }
        };
        assert_eq!(message["params"]["data"], "after bob", "{message}");
        let deleted = alice.delete().await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted}");
    })
    .await;
}

// --- a shoal process with its output captured --------------------------------------------------

/// `shoal serve` on loopback with stdout and stderr in one file; killed on drop.
struct LoggedShoal {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl LoggedShoal {
    /// Starts `shoal serve ARGS` on free loopback ports with the log filter `SHOAL_LOG=filter`
    /// (none: the default, info), and waits for `/readyz`.
    async fn start(args: &[&str], filter: Option<&str>) -> Self {
        let log = temp_path("shoal.log");
        for _ in 0..PORT_ATTEMPTS {
            let (port, admin) = (free_port(), free_port());
            let out = File::create(&log).unwrap();
            let err = out.try_clone().unwrap();
            let mut command = Command::new(SHOAL);
            command
                .arg("serve")
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
                .args(args)
                .env_remove("RUST_LOG")
                .env_remove("SHOAL_LOG")
                .env_remove("SHOAL_AUTH_TOKENS")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            if let Some(filter) = filter {
                command.env("SHOAL_LOG", filter);
            }
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("starting {SHOAL}: {e}"));
            let mut shoal = LoggedShoal {
                child: Some(child),
                port,
                log: log.clone(),
            };
            if shoal.wait_ready(admin).await {
                return shoal;
            }
        }
        panic!("shoal found its ports taken {PORT_ATTEMPTS} times");
    }

    /// True once `/readyz` is 200; false when the process exited because a port was taken.
    async fn wait_ready(&mut self, admin: u16) -> bool {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = tokio::time::Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                let log = self.read_log();
                assert!(
                    log.contains("Address already in use"),
                    "shoal exited ({status}):\n{log}"
                );
                return false;
            }
            if let Ok(response) = http
                .get(format!("http://127.0.0.1:{admin}/readyz"))
                .send()
                .await
                && response.status() == StatusCode::OK
            {
                return true;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "shoal not ready within {PROCESS_TIMEOUT:?}:\n{}",
                self.read_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn read_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the process with SIGTERM (so that every buffered line is written) and returns
    /// everything it printed.
    async fn stop(mut self) -> String {
        let mut child = self.child.take().expect("a running shoal");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = tokio::time::Instant::now() + PROCESS_TIMEOUT;
        while child.try_wait().unwrap().is_none() {
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("shoal did not exit within {PROCESS_TIMEOUT:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.read_log()
    }
}

impl Drop for LoggedShoal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_file(&self.log);
        } else {
            eprintln!("shoal's log: {}", self.log.display());
        }
    }
}

// --- logs ---------------------------------------------------------------------------------------

/// Runs a whole session (and two refused requests) against a shoal with static tokens, in log
/// format `format` with log filter `filter` (none: the default), and asserts that no secret
/// appears in its output.
async fn run_and_check_logs(format: &str, filter: Option<&str>) {
    let tokens = Tokens::new();
    let shoal = LoggedShoal::start(
        &[
            "--log-format",
            format,
            "--auth",
            "static",
            "--auth-tokens-file",
            tokens.file.to_str().unwrap(),
        ],
        filter,
    )
    .await;
    let marker = unique("argument-value");
    let wrong_token = unique("wrong-token");
    let unknown_session = unique("unknown-session");

    let mut client =
        McpClient::new(shoal.url()).with_header("authorization", &bearer(&tokens.alice));
    client.initialize().await;
    let session = client.session_id().unwrap().to_owned();
    let result = client.call_tool("echo", json!({ "text": marker })).await;
    assert_eq!(result["content"][0]["text"], marker, "{result}");

    let mut standalone = client.get_stream(None).await;
    let result = client
        .call_tool("announce", json!({ "text": marker }))
        .await;
    assert_eq!(result["content"][0]["text"], "announced", "{result}");
    loop {
        if standalone.expect_event().await.json().is_some() {
            break;
        }
    }
    let event_id = standalone.last_event_id().unwrap().to_owned();
    drop(standalone);
    let resumed = client.open_stream(Some(&event_id)).await;
    assert!(resumed.is_ok(), "resume: {:?}", resumed.err());
    drop(resumed);
    let deleted = client.delete().await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted}");

    let intruder = McpClient::new(shoal.url()).with_header("authorization", &bearer(&wrong_token));
    let refused = intruder.post_raw(message(1, "ping", None), |_| {}).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused}");
    let mut lost = McpClient::new(shoal.url()).with_header("authorization", &bearer(&tokens.alice));
    lost.set_session_id(Some(unknown_session.clone()));
    lost.set_protocol_version(Some("2025-11-25".into()));
    let missing = lost.post_raw(message(2, "ping", None), |_| {}).await;
    assert_session_not_found(&missing, "unknown session");

    let log = shoal.stop().await;
    println!(
        "--log-format {format}, SHOAL_LOG {filter:?}: {} lines, {} bytes of output for one session",
        log.lines().count(),
        log.len()
    );
    // The capture works: the start line is there.
    assert!(log.contains("shoal is serving"), "no start line:\n{log}");
    for (what, secret) in [
        ("alice's token", tokens.alice.as_str()),
        ("bob's token", tokens.bob.as_str()),
        ("the wrong token", wrong_token.as_str()),
        ("the session id", session.as_str()),
        ("the unknown session id", unknown_session.as_str()),
        ("the argument value", marker.as_str()),
    ] {
        assert!(!log.contains(secret), "{what} is in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_text_logs_at_the_default_level() {
    bounded(run_and_check_logs("text", None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_json_logs_at_the_default_level() {
    bounded(run_and_check_logs("json", None)).await;
}

/// Shoal's own debug lines name sessions by hash too (as spans do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_shoal_debug_logs() {
    bounded(run_and_check_logs("text", Some("info,shoal=debug"))).await;
}

// --- metadata URLs ------------------------------------------------------------------------------

/// Every header value and the body of `raw`, for leak checks.
fn everything(raw: &RawResponse) -> String {
    let mut all = raw.text();
    for (name, value) in &raw.headers {
        all.push_str(&format!(
            "\n{name}: {}",
            value.to_str().unwrap_or("<binary>")
        ));
    }
    all
}

/// Internal addresses a response must not name.
const INTERNAL: [&str; 3] = ["127.0.0.1", "10.1.2.3", "internal"];

fn assert_no_internal_address(raw: &RawResponse, what: &str) {
    let all = everything(raw);
    for internal in INTERNAL {
        assert!(!all.contains(internal), "{what} names {internal:?}:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_urls_come_from_the_public_url_only() {
    bounded(async {
        // No provider is needed: with --jwks-url nothing is discovered, and an unreachable
        // JWKS only delays token validation (every request here is refused before that).
        let jwks = format!("http://127.0.0.1:{}/jwks", free_port());
        let shoal = LoggedShoal::start(
            &[
                "--public-url",
                PUBLIC_URL,
                "--allowed-hosts",
                "10.1.2.3",
                "--auth",
                "jwt",
                "--issuer",
                "https://issuer.example",
                "--jwks-url",
                &jwks,
            ],
            None,
        )
        .await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let expected_metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        // A client (or a proxy in front) that names internal addresses in every header it can.
        let internal = |request: reqwest::RequestBuilder, host: &str| {
            request
                .header("host", host)
                .header("x-forwarded-host", "internal.svc.cluster.local")
                .header("x-forwarded-proto", "http")
                .header("x-forwarded-for", "10.1.2.3")
                .header("forwarded", "host=internal.svc.cluster.local;proto=http")
        };

        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
        ] {
            let get = |host: &str| internal(http.get(format!("{}{path}", shoal.origin())), host);
            // An allowed internal Host gets the document, naming the public URL only.
            let host = "10.1.2.3:8080";
            let raw = read(get(host).send().await.unwrap()).await;
            assert_eq!(raw.status, StatusCode::OK, "{path} with Host {host}: {raw}");
            let metadata = raw.json();
            assert_eq!(metadata["resource"], PUBLIC_URL, "{path}: {metadata}");
            assert_no_internal_address(&raw, &format!("{path} with Host {host}"));

            // The public routes follow the endpoint's Host rule.
            let host = "internal.svc.cluster.local";
            let raw = read(get(host).send().await.unwrap()).await;
            assert_host_not_allowed(&raw, &format!("GET {path} with Host {host}"));
        }

        // The challenge: without a token, and with one that is not valid.
        for authorization in [None, Some("Bearer not-a-jwt")] {
            let mut request = internal(http.post(shoal.url()), "10.1.2.3:8080")
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(message(1, "ping", None).to_string());
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let raw = read(request.send().await.unwrap()).await;
            let what = format!("POST with Authorization {authorization:?}");
            assert_eq!(raw.status, StatusCode::UNAUTHORIZED, "{what}: {raw}");
            let challenge = raw.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with(&format!("Bearer resource_metadata=\"{expected_metadata}\"")),
                "{what}: {challenge}"
            );
            assert_no_internal_address(&raw, &what);
        }

        // A Host that is not allowed is refused by the Host guard before authentication: no
        // challenge, and nothing internal named.
        let raw = read(
            internal(http.post(shoal.url()), "internal.svc.cluster.local")
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(message(2, "ping", None).to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_host_not_allowed(&raw, "POST with a Host not allowed");
        shoal.stop().await;
    })
    .await;
}

/// Asserts the Host guard's refusal: 403 with its JSON-RPC error body, no auth challenge, and
/// nothing internal named.
fn assert_host_not_allowed(raw: &RawResponse, what: &str) {
    assert_eq!(raw.status, StatusCode::FORBIDDEN, "{what}: {raw}");
    assert_eq!(
        raw.header("content-type"),
        Some("application/json"),
        "{what}: {raw}"
    );
    assert_eq!(
        raw.json(),
        json!({
            "jsonrpc": "2.0",
            "error": { "code": INVALID_REQUEST, "message": "forbidden: Host header not allowed" }
        }),
        "{what}"
    );
    assert_eq!(raw.header("www-authenticate"), None, "{what}: {raw}");
    assert_no_internal_address(raw, what);
}

/// Reads `response` to its end (bounded).
async fn read(response: reqwest::Response) -> RawResponse {
    let status = response.status();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(PROCESS_TIMEOUT, response.bytes())
        .await
        .expect("the body ended in time")
        .unwrap()
        .to_vec();
    RawResponse {
        status,
        headers,
        body,
    }
}

#[test]
fn jwt_on_a_non_loopback_address_needs_a_public_url() {
    // Without --public-url the resource would be named after the listen address (a pod IP):
    // refused before anything listens.
    let port = free_port();
    let output = Command::new(SHOAL)
        .args(["serve", "--listen", &format!("0.0.0.0:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--auth", "jwt", "--issuer", "https://issuer.example"])
        .env_remove("SHOAL_PUBLIC_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "shoal started:\n{stderr}");
    assert!(stderr.contains("--public-url"), "{stderr}");
    assert!(
        stderr.contains("non-loopback"),
        "the refusal says why: {stderr}"
    );
}

#[test]
fn jwt_on_a_loopback_address_defaults_the_public_url() {
    // On loopback the listen address is what local clients use: no --public-url needed. The
    // process is stopped as soon as it gets past configuration (it cannot discover the issuer).
    let output = Command::new(SHOAL)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--auth", "jwt", "--issuer"])
        .arg(format!("http://127.0.0.1:{}", free_port()))
        .env_remove("SHOAL_PUBLIC_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // It fails on discovery, not on configuration.
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot discover the authorization server metadata"),
        "{stderr}"
    );
    assert!(!stderr.contains("--public-url"), "{stderr}");
}
