//! The example binary as a user runs it: configured by `SHOAL_*` variables alone, reached over
//! HTTP by an MCP client.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use shoal_testkit::McpClient;
use shoal_testkit::example::Example;

#[tokio::test]
async fn serves_its_tool_on_the_address_and_limits_its_variables_set() {
    let example = Example::start(
        env!("CARGO_BIN_EXE_example-minimal-tool"),
        &[("SHOAL_MAX_BODY_BYTES", "2048")],
    )
    .await;
    let client = McpClient::connect(example.mcp_url()).await;
    let result = client.call_tool("add", json!({ "a": 2, "b": 3 })).await;
    assert_eq!(result["structuredContent"], json!({ "sum": 5 }), "{result}");

    // SHOAL_MAX_BODY_BYTES took effect: 3 kB is over it.
    let padding = "p".repeat(3000);
    let ping =
        json!({ "jsonrpc": "2.0", "id": 9, "method": "ping", "params": { "padding": padding } });
    client.post_raw(ping, |_| {}).await.assert_rpc_error(
        413,
        -32600,
        "payload too large: the limit is 2048 bytes",
    );
}
