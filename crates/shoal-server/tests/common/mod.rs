//! Helpers shared by the tests that run the real `shoal` binary.

// Test helpers fail the test by panicking; each test binary uses only some of them.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test.
pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// A free loopback port (released before it is used: good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `shoal serve` process on free loopback ports, killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// The MCP endpoint URL.
    pub mcp: String,
    /// The admin listener's base URL.
    pub admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `shoal serve` with `extra` arguments and waits until `/readyz` says ready.
pub async fn start(extra: &[&str]) -> Server {
    start_with_env(extra, &[]).await
}

/// [`start`], with these environment variables set for the process.
pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
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
        .envs(env.iter().copied())
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

/// `shoal serve ARGS` of each case exits unsuccessfully, naming what is wrong (the case's
/// message) on stderr.
pub fn assert_serve_refuses(cases: &[(&[&str], &str)]) {
    for (args, message) in cases {
        let output = Command::new(SHOAL)
            .arg("serve")
            .args(*args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A session on `url`, initialized as a client does it (`initialize`, then
/// `notifications/initialized`); returns its id.
pub async fn initialize(client: &reqwest::Client, url: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let response = post(client, url, None, body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post(client, url, Some(&session), initialized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    session
}

/// A POST of one JSON-RPC message with the headers a real client sends, and the session's
/// headers when there is a session.
pub fn post(
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
        request = with_session(request, session);
    }
    request
}

/// A GET of the session's standalone stream on `server` (add `last-event-id` to resume one),
/// with the headers a real client sends.
pub fn open_get(
    client: &reqwest::Client,
    server: &Server,
    session: &str,
) -> reqwest::RequestBuilder {
    with_session(
        client
            .get(&server.mcp)
            .header("accept", "text/event-stream"),
        session,
    )
}

/// The headers every request of an initialized session carries.
fn with_session(request: reqwest::RequestBuilder, session: &str) -> reqwest::RequestBuilder {
    request
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
}
