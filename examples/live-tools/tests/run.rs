//! Three copies of the example binary on one Redis, as a user deploys them: a tool disabled
//! through replica 0 leaves the lists of a session-era client holding its GET stream on
//! replica 1 and of a stateless-era client listening on replica 2, each told by its own
//! stream and each listing from its own replica; enabled again, it comes back the same way.
//!
//! Real processes and a real `redis-server`, started by the test; every wait is bounded.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use shoal_testkit::example::Example;
use shoal_testkit::redis::RedisServer;
use shoal_testkit::{McpClient, SseStream};

const EXAMPLE: &str = env!("CARGO_BIN_EXE_example-live-tools");
/// A test that takes longer than this has hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Every replica's `SHOAL_REQUEST_STATE_KEYS`, as a deployment shares one Secret (a test key:
/// 32 bytes of base64).
const REQUEST_STATE_KEYS: &str = "test:bGl2ZS10b29scy1leGFtcGxlLXRlc3Qta2V5LTMyYnk=";
/// The id of the stateless client's listen request.
const LISTEN_ID: i64 = 77;

/// The next message of `stream` (priming events and keep-alives skipped).
async fn next_message(stream: &mut SseStream) -> Value {
    loop {
        if let Some(message) = stream.expect_event().await.json() {
            return message;
        }
    }
}

fn names(tools: &Value) -> Vec<&str> {
    tools
        .as_array()
        .unwrap_or_else(|| panic!("a tool list: {tools}"))
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect()
}

/// Both clients list `expected`, each from its own replica.
async fn assert_lists(session: &McpClient, stateless: &McpClient, expected: &[&str]) {
    let session_list = session.request("tools/list", json!({})).await;
    assert_eq!(
        names(&session_list["result"]["tools"]),
        expected,
        "session era"
    );
    let stateless_list = stateless.modern("tools/list", json!({})).await;
    assert_eq!(
        names(&stateless_list["result"]["tools"]),
        expected,
        "stateless era"
    );
}

/// Calls an admin tool through `admin`; its text.
async fn admin_call(admin: &McpClient, tool: &str, name: &str) -> String {
    let response = admin
        .modern(
            "tools/call",
            json!({ "name": tool, "arguments": { "name": name } }),
        )
        .await;
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{tool} answered {response}"))
        .to_owned()
}

/// Both streams hear `tools/list_changed`, the listen stream's stamped with its id.
async fn both_hear_the_change(get_stream: &mut SseStream, listen: &mut SseStream) {
    let heard = next_message(get_stream).await;
    assert_eq!(
        heard["method"], "notifications/tools/list_changed",
        "{heard}"
    );
    let heard = next_message(listen).await;
    assert_eq!(
        heard,
        json!({
            "jsonrpc": "2.0",
            "method": "notifications/tools/list_changed",
            "params": { "_meta": { "io.modelcontextprotocol/subscriptionId": LISTEN_ID } },
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_disabled_through_one_replica_leaves_every_replicas_lists() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let redis = RedisServer::start().await;
        let url = redis.url();
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(
                Example::start(
                    EXAMPLE,
                    &[
                        ("SHOAL_SESSION_HOST", url.as_str()),
                        ("SHOAL_REQUEST_STATE_KEYS", REQUEST_STATE_KEYS),
                    ],
                )
                .await,
            );
        }
        let all = ["shout", "reverse", "disable_tool", "enable_tool"];
        let without_shout = ["reverse", "disable_tool", "enable_tool"];

        let session = McpClient::connect(replicas[1].mcp_url()).await;
        let stateless = McpClient::new(replicas[2].mcp_url());
        // Both replicas list (and cache) the whole catalog before the change.
        assert_lists(&session, &stateless, &all).await;
        let mut get_stream = session.get_stream(None).await;
        let mut listen = stateless
            .listen(LISTEN_ID, json!({ "toolsListChanged": true }))
            .await;
        let ack = next_message(&mut listen).await;
        assert_eq!(
            ack["method"], "notifications/subscriptions/acknowledged",
            "{ack}"
        );

        let admin = McpClient::new(replicas[0].mcp_url());
        assert_eq!(
            admin_call(&admin, "disable_tool", "shout").await,
            "shout disabled"
        );
        both_hear_the_change(&mut get_stream, &mut listen).await;
        assert_lists(&session, &stateless, &without_shout).await;
        // Hidden means gone: replica 2 does not run it.
        let call = stateless
            .post_modern(&shoal_testkit::modern::request(
                900,
                "tools/call",
                json!({ "name": "shout", "arguments": { "text": "hi" } }),
            ))
            .await;
        let body = match call {
            shoal_testkit::Reply::Json(raw) | shoal_testkit::Reply::Other(raw) => raw.json(),
            shoal_testkit::Reply::Stream(_) => panic!("a hidden tool answered with a stream"),
        };
        assert_eq!(body["error"]["code"], -32602, "{body}");
        assert_eq!(
            admin_call(&admin, "disable_tool", "shout").await,
            "shout was already disabled"
        );

        assert_eq!(
            admin_call(&admin, "enable_tool", "shout").await,
            "shout enabled"
        );
        both_hear_the_change(&mut get_stream, &mut listen).await;
        assert_lists(&session, &stateless, &all).await;
        let shouted = session.call_tool("shout", json!({ "text": "hi" })).await;
        assert_eq!(shouted["content"][0]["text"], "HI", "{shouted}");
    })
    .await
    .expect("the test finished in time");
}
