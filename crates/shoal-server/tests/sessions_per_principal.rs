//! Sessions per principal through the real `shoal` binary: static-token principals, the
//! `--max-sessions-per-principal` flag, and the 429 answer to one initialize too many, on the
//! in-memory host and across two replicas sharing one real Redis (the limit is cluster-wide).
//!
//! Real processes and a real `redis-server` (from `PATH`, or `$SHOAL_REDIS_SERVER`); every
//! wait is bounded.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use shoal_core::codes::session;
use shoal_testkit::client::message;
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::{McpClient, RawResponse};

use common::SHOAL;

/// A test that takes longer than this has hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// The JSON-RPC code of a count or rate limit.
const LIMIT_EXCEEDED: i64 = session::LIMIT_EXCEEDED as i64;

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}

/// A tokens file naming alice and bob, removed on drop.
struct Tokens {
    file: PathBuf,
}

impl Tokens {
    fn new(name: &str) -> Self {
        let file = std::env::temp_dir().join(format!(
            "shoal-sessions-per-principal-{}-{name}",
            std::process::id()
        ));
        fs::write(&file, "alice alice-token-1\nbob bob-token-2\n").unwrap();
        // Owner-only, as shoal asks of a tokens file.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        Tokens { file }
    }

    fn path(&self) -> &str {
        self.file.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for Tokens {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

fn client(url: &str, token: &str) -> McpClient {
    McpClient::new(url).with_header("authorization", &format!("Bearer {token}"))
}

/// An initialize that must be refused; returns the raw answer.
async fn initialize_raw(url: &str, token: &str) -> RawResponse {
    let params = json!({
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}
    });
    client(url, token)
        .post_raw(message(1, "initialize", Some(params)), |_| {})
        .await
}

/// The exact refusal: 429, no `Retry-After`, no session id, the limit code and its data.
fn assert_at_limit(raw: &RawResponse, max: u64) {
    let error = raw.assert_rpc_error(
        429,
        LIMIT_EXCEEDED,
        &format!("too many sessions for this principal (max {max})"),
    );
    assert_eq!(
        error["data"],
        json!({"limit": "sessions_per_principal", "max": max}),
        "{raw}"
    );
    assert_eq!(raw.header("retry-after"), None, "{raw}");
    assert_eq!(raw.header("mcp-session-id"), None, "{raw}");
    assert_eq!(raw.json().get("id"), None::<&Value>, "{raw}");
}

#[tokio::test]
async fn a_principal_at_its_limit_gets_429_on_the_memory_host() {
    bounded(async {
        let tokens = Tokens::new("memory");
        let server = common::start(&[
            "--auth",
            "static",
            "--auth-tokens-file",
            tokens.path(),
            "--max-sessions-per-principal",
            "2",
        ])
        .await;
        let mut first = client(&server.mcp, "alice-token-1");
        first.initialize().await;
        let mut second = client(&server.mcp, "alice-token-1");
        second.initialize().await;
        assert_at_limit(&initialize_raw(&server.mcp, "alice-token-1").await, 2);

        // Another principal is unaffected.
        client(&server.mcp, "bob-token-2").initialize().await;
        // The refused session does not exist, and alice's two sessions still work.
        for session in [&first, &second] {
            assert_eq!(session.request("ping", None).await["result"], json!({}));
        }
        // Deleting one frees exactly one slot.
        assert!(first.delete().await.status.is_success());
        client(&server.mcp, "alice-token-1").initialize().await;
        assert_at_limit(&initialize_raw(&server.mcp, "alice-token-1").await, 2);

        let metrics = reqwest::get(format!("{}/metrics", server.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let refusals = metrics
            .lines()
            .find(|line| {
                line.starts_with("shoal_limit_rejections_total{")
                    && line.contains(r#"limit="sessions_per_principal""#)
            })
            .unwrap_or_else(|| panic!("no refusal counter:\n{metrics}"));
        assert!(refusals.ends_with(" 2"), "two refusals: {refusals}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_counts_sessions_on_every_replica() {
    bounded(async {
        let tokens = Tokens::new("cluster");
        let cluster = ShoalCluster::builder(SHOAL)
            .replicas(2)
            .arg("--auth")
            .arg("static")
            .arg("--auth-tokens-file")
            .arg(tokens.path())
            .arg("--max-sessions-per-principal")
            .arg("2")
            .start()
            .await;
        let (a, b) = (cluster.replica_url(0), cluster.replica_url(1));
        let mut on_a = client(&a, "alice-token-1");
        on_a.initialize().await;
        let mut on_b = client(&b, "alice-token-1");
        on_b.initialize().await;
        // One session on each replica: alice is at her limit on both.
        for url in [&a, &b] {
            assert_at_limit(&initialize_raw(url, "alice-token-1").await, 2);
        }
        client(&b, "bob-token-2").initialize().await;

        // A delete on replica B of the session made on A frees the slot for A.
        let mut deleting = client(&b, "alice-token-1");
        deleting.set_session_id(on_a.session_id().map(str::to_owned));
        deleting.set_protocol_version(on_a.protocol_version().map(str::to_owned));
        assert!(deleting.delete().await.status.is_success());
        client(&a, "alice-token-1").initialize().await;
        assert_at_limit(&initialize_raw(&b, "alice-token-1").await, 2);
        assert_eq!(on_b.request("ping", None).await["result"], json!({}));
    })
    .await;
}
