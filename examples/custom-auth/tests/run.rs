//! The example binary as a user runs it, its keys in a file: no key and a wrong key are
//! refused with 401 and the example's challenge; a good key reaches the tool, which sees the
//! key's claims and never the key.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use shoal_testkit::McpClient;
use shoal_testkit::example::Example;

const KEY: &str = "k-3d9f0c2a71e44b6b";

fn initialize() -> serde_json::Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "custom-auth-test", "version": "1" } } })
}

#[tokio::test]
async fn refuses_missing_and_wrong_keys_and_hands_claims_to_the_tool() {
    let dir = std::env::temp_dir().join(format!("example-custom-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, format!("# key user team\n{KEY} ada research\n")).unwrap();
    let example = Example::start(
        env!("CARGO_BIN_EXE_example-custom-auth"),
        &[("EXAMPLE_API_KEYS_FILE", keys.to_str().unwrap())],
    )
    .await;

    let anonymous = McpClient::new(example.mcp_url());
    let refused = anonymous.post_raw(initialize(), |_| {}).await;
    refused.assert_rpc_error(401, -32600, "an API key is required in X-API-Key");
    assert_eq!(
        refused.header("www-authenticate"),
        Some("ApiKey realm=\"example-custom-auth\"")
    );

    let wrong = McpClient::new(example.mcp_url()).with_header("x-api-key", "k-guess");
    let refused = wrong.post_raw(initialize(), |_| {}).await;
    refused.assert_rpc_error(401, -32600, "the API key is not valid");
    assert_eq!(
        refused.header("www-authenticate"),
        Some("ApiKey realm=\"example-custom-auth\", error=\"invalid_key\"")
    );
    assert!(!refused.text().contains("k-guess"), "{refused}");

    let mut good = McpClient::new(example.mcp_url()).with_header("x-api-key", KEY);
    good.initialize().await;
    good.notify_initialized().await;
    let identity = good.call_tool("whoami", json!({})).await;
    assert_eq!(
        identity["structuredContent"],
        json!({ "principal": "api-key:ada", "user": "ada", "team": "research" }),
        "{identity}"
    );
    assert!(!identity.to_string().contains(KEY), "{identity}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three copies of the example on one Redis: a key holder's session is served by each replica
/// with the key's claims; an operator refuses the key's principal through one replica's admin
/// listener, and every replica refuses it, until the refusal is lifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holders_session_and_its_refusal_cross_three_replicas() {
    const ADMIN: &str = "operator-token-5";
    let deadline = std::time::Duration::from_secs(60);
    tokio::time::timeout(deadline, async {
        let dir = std::env::temp_dir().join(format!("example-custom-auth-3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("keys.txt");
        std::fs::write(&keys, format!("{KEY} ada research\n")).unwrap();
        let redis = shoal_testkit::redis::RedisServer::start().await;
        let url = redis.url();
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(
                Example::start(
                    env!("CARGO_BIN_EXE_example-custom-auth"),
                    &[
                        ("EXAMPLE_API_KEYS_FILE", keys.to_str().unwrap()),
                        ("SHOAL_SESSION_HOST", url.as_str()),
                        ("SHOAL_ADMIN_TOKEN", ADMIN),
                        ("SHOAL_REQUEST_STATE_KEYS", "k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
                    ],
                )
                .await,
            );
        }
        let mut first = McpClient::new(replicas[0].mcp_url()).with_header("x-api-key", KEY);
        first.initialize().await;
        first.notify_initialized().await;
        let on = |i: usize| {
            let mut client = McpClient::new(replicas[i].mcp_url()).with_header("x-api-key", KEY);
            client.set_session_id(first.session_id().map(str::to_owned));
            client.set_protocol_version(first.protocol_version().map(str::to_owned));
            client
        };
        for i in 0..3 {
            let identity = on(i).call_tool("whoami", json!({})).await;
            assert_eq!(identity["structuredContent"]["principal"], "api-key:ada", "replica {i}: {identity}");
        }

        let refused = reqwest::Client::new()
            .put(format!("{}/admin/principals/api-key%3Aada/refusal", replicas[2].admin_url()))
            .bearer_auth(ADMIN)
            .json(&json!({ "duration": "5m" }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 200);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["sessions_ended"], 1, "{body}");
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        for (i, replica) in replicas.iter().enumerate() {
            loop {
                let raw = McpClient::new(replica.mcp_url())
                    .with_header("x-api-key", KEY)
                    .post_raw(initialize(), |_| {})
                    .await;
                if raw.status == 401 {
                    assert_eq!(
                        raw.header("www-authenticate"),
                        Some("Bearer error=\"invalid_token\", error_description=\"access revoked by an operator\""),
                        "{raw}"
                    );
                    break;
                }
                assert!(tokio::time::Instant::now() < until, "replica {i} still serves ada: {raw}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }

        let lifted = reqwest::Client::new()
            .delete(format!("{}/admin/principals/api-key%3Aada/refusal", replicas[0].admin_url()))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(lifted.status(), 204);
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        for (i, replica) in replicas.iter().enumerate() {
            let mut client = McpClient::new(replica.mcp_url()).with_header("x-api-key", KEY);
            loop {
                let raw = client.post_raw(initialize(), |_| {}).await;
                if raw.status == 200 {
                    break;
                }
                assert!(tokio::time::Instant::now() < until, "replica {i} still refuses ada: {raw}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            client.initialize().await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("the test finished in time");
}
