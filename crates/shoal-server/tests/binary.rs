//! The `shoal` binary as an operator meets it: `--help`, bad configuration, health endpoints,
//! and the drain on SIGTERM.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `shoal serve` process, killed on drop.
struct Server {
    child: Child,
    mcp: String,
    admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(extra: &[&str]) -> Server {
    let (port, admin_port) = (free_port(), free_port());
    let child = Command::new(SHOAL)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin_port}"),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        mcp: format!("http://127.0.0.1:{port}/mcp"),
        admin: format!("http://127.0.0.1:{admin_port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(format!("{}/readyz", server.admin)).await
            && response.status() == 200
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("shoal did not become ready");
}

fn post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: Value,
) -> reqwest::RequestBuilder {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request
}

async fn initialize(client: &reqwest::Client, url: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let response = post(client, url, None, body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn help_documents_every_setting() {
    let output = Command::new(SHOAL)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in [
        "--listen",
        "--public-url",
        "--tools",
        "--admin-listen",
        "--allowed-origins",
        "--allowed-hosts",
        "--max-body-bytes",
        "--session-idle-timeout",
        "--session-max-lifetime",
        "--drain-timeout",
        "--node-id",
        "--allow-unauthenticated",
        "--log-format",
        "--config",
        "--shutdown-delay",
        "--session-host",
        "--redis-key-prefix",
        "SHOAL_SESSION_HOST",
        "SHOAL_LISTEN",
        "SHOAL_TOOLS",
        "SHOAL_SESSION_IDLE_TIMEOUT",
    ] {
        assert!(help.contains(setting), "--help lacks {setting}:\n{help}");
    }
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let cases: [(&[&str], &str); 4] = [
        (&["--tools", "nope"], "unknown tool set"),
        (&["--listen", "0.0.0.0:0"], "without authentication"),
        (&["--session-idle-timeout", "soon"], "session-idle-timeout"),
        (
            &["--config", "/nonexistent/shoal.toml"],
            "reading config file",
        ),
    ];
    for (args, message) in cases {
        let output = Command::new(SHOAL)
            .arg("serve")
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn environment_variables_configure_the_server() {
    let output = Command::new(SHOAL)
        .arg("serve")
        .env("SHOAL_TOOLS", "bogus")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"bogus\""));
}

#[tokio::test]
async fn health_endpoints_answer() {
    let server = start(&[]).await;
    let health = reqwest::get(format!("{}/healthz", server.admin))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/readyz", server.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn sigterm_closes_streams_with_retry_and_finishes_in_flight_calls() {
    let mut server = start(&["--drain-timeout", "5s"]).await;
    let client = reqwest::Client::new();
    let session = initialize(&client, &server.mcp).await;

    // A standalone stream, open while the server drains.
    let mut stream = client
        .get(&server.mcp)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let priming = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&priming).contains("retry:"));

    // An in-flight call that takes ~600 ms.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "count", "arguments": {"to": 3, "interval_ms": 200}}});
    let in_flight = tokio::spawn(post(&client, &server.mcp, Some(&session), call).send());
    tokio::time::sleep(Duration::from_millis(100)).await;

    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    let rest = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap();
    let rest = rest
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    assert!(
        rest.starts_with("retry:"),
        "the stream closes with retry: {rest:?}"
    );

    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "3", "{body}");

    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "did not exit within the drain timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
