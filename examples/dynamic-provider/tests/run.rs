//! The example binary as a user runs it: its table in a real Redis named by
//! `EXAMPLE_DATABASE_URL`, configured by a TOML file named in `SHOAL_CONFIG` and by `SHOAL_*`
//! variables, reached over HTTP by an MCP client.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use shoal_testkit::McpClient;
use shoal_testkit::example::Example;
use shoal_testkit::redis::{RedisServer, command};

fn names(listed: &Value) -> Vec<&str> {
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect()
}

#[tokio::test]
async fn serves_the_table_of_its_database_with_the_file_and_the_variables_it_was_given() {
    let database = RedisServer::start().await;
    let dir = std::env::temp_dir().join(format!("example-dynamic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shoal.toml");
    std::fs::write(&file, "max_body_bytes = 2048\nmax_json_depth = 4\n").unwrap();
    let example = Example::start(
        env!("CARGO_BIN_EXE_example-dynamic-provider"),
        // The variable wins over the file's depth.
        &[
            ("EXAMPLE_DATABASE_URL", database.url().as_str()),
            ("SHOAL_CONFIG", file.to_str().unwrap()),
            ("SHOAL_MAX_JSON_DEPTH", "6"),
        ],
    )
    .await;
    let client = McpClient::connect(example.mcp_url()).await;
    let defined = client
        .call_tool("define_reply", json!({ "name": "greet", "reply": "hello" }))
        .await;
    assert_eq!(defined["content"][0]["text"], "defined greet", "{defined}");
    let listed = client.request("tools/list", json!({})).await;
    assert_eq!(names(&listed), ["define_reply", "greet"]);
    let greeted = client.call_tool("greet", json!({})).await;
    assert_eq!(greeted["content"][0]["text"], "hello", "{greeted}");

    // A row written to the database by someone else is a tool at once; the row written
    // through the tool is in the database.
    let redis = |line: &'static str| command(database.port(), line, Duration::from_secs(5));
    let written = redis("HSET example-dynamic-provider:replies bye ciao")
        .await
        .unwrap();
    assert!(written.starts_with(":1"), "{written:?}");
    let listed = client.request("tools/list", json!({})).await;
    assert_eq!(names(&listed), ["define_reply", "bye", "greet"]);
    let stored = redis("HGET example-dynamic-provider:replies greet")
        .await
        .unwrap();
    assert!(stored.contains("hello"), "{stored:?}");

    // The file's body limit and the variable's depth took effect.
    let padding = "p".repeat(3000);
    let big =
        json!({ "jsonrpc": "2.0", "id": 9, "method": "ping", "params": { "padding": padding } });
    client.post_raw(big, |_| {}).await.assert_rpc_error(
        413,
        -32600,
        "payload too large: the limit is 2048 bytes",
    );
    let five = json!({ "jsonrpc": "2.0", "id": 10, "method": "ping",
        "params": { "a": { "b": { "c": { "d": 1 } } } } });
    let answered = client.post_raw(five, |_| {}).await;
    assert_eq!(
        answered.json()["result"],
        json!({}),
        "depth 5 is within 6: {answered}"
    );
    let seven = json!({ "jsonrpc": "2.0", "id": 11, "method": "ping",
        "params": { "a": { "b": { "c": { "d": { "e": { "f": 1 } } } } } } });
    client
        .post_raw(seven, |_| {})
        .await
        .assert_rpc_error(400, -32600, "deeper than 6");
    drop(example);
    let _ = std::fs::remove_dir_all(&dir);
}
