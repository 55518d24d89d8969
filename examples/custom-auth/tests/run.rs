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
