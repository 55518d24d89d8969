//! `subscriptions/listen` (2026-07-28) across three `shoal serve` replicas on one Redis: a
//! change raised through any replica reaches the listen streams held by every replica, stamped
//! with each stream's id and only as each asked; a replica that drains ends its streams with
//! the graceful response.
//!
//! Real processes and a real `redis-server`, started by the test; every wait is bounded.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::{McpClient, SseStream};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
/// A test that takes longer than this has hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Subscribed to by every stream.
const WATCHED: &str = "test://static-text";

/// The next message of `stream` (keep-alive comments skipped).
async fn next_message(stream: &mut SseStream) -> Value {
    loop {
        if let Some(message) = stream.expect_event().await.json() {
            return message;
        }
    }
}

async fn call(client: &McpClient, tool: &str, arguments: Value) {
    let response = client
        .modern(
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        )
        .await;
    assert_eq!(response["result"]["resultType"], "complete", "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_raised_on_one_replica_reaches_listen_streams_on_every_replica() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut cluster = ShoalCluster::builder(SHOAL)
            .replicas(3)
            .tools("conformance")
            .start()
            .await;
        let clients: Vec<McpClient> = (0..3)
            .map(|i| McpClient::new(cluster.replica_url(i)))
            .collect();
        let mut streams = Vec::new();
        for (i, client) in clients.iter().enumerate() {
            let id = 100 + i as i64;
            let mut stream = client
                .listen(
                    id,
                    json!({ "toolsListChanged": true, "resourceSubscriptions": [WATCHED] }),
                )
                .await;
            let ack = next_message(&mut stream).await;
            assert_eq!(
                ack["method"], "notifications/subscriptions/acknowledged",
                "{ack}"
            );
            assert_eq!(
                ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
                id
            );
            streams.push((id, stream));
        }

        // Raised through replica 0, 1 and 2 in turn; the prompt change is nobody's business.
        call(&clients[0], "test_trigger_prompt_change", json!({})).await;
        call(&clients[1], "test_trigger_tool_change", json!({})).await;
        call(
            &clients[2],
            "test_trigger_resource_update",
            json!({ "uri": "test://other" }),
        )
        .await;
        call(
            &clients[2],
            "test_trigger_resource_update",
            json!({ "uri": WATCHED }),
        )
        .await;
        for (id, stream) in &mut streams {
            let tools = next_message(stream).await;
            assert_eq!(
                tools,
                json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/tools/list_changed",
                    "params": { "_meta": { "io.modelcontextprotocol/subscriptionId": *id } },
                })
            );
            let updated = next_message(stream).await;
            assert_eq!(
                updated["method"], "notifications/resources/updated",
                "{updated}"
            );
            assert_eq!(updated["params"]["uri"], WATCHED, "{updated}");
            assert_eq!(
                updated["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
                *id
            );
        }

        // A replica that drains answers its listen requests, then closes their streams.
        let (id, mut stream) = streams.pop().unwrap();
        let status = cluster.terminate(2).await;
        assert!(status.success(), "{status}");
        let end = next_message(&mut stream).await;
        assert_eq!(
            end,
            json!({
                "jsonrpc": "2.0",
                "id": id,
                "result": {
                    "resultType": "complete",
                    "_meta": { "io.modelcontextprotocol/subscriptionId": id },
                },
            })
        );
        stream.expect_end().await;
    })
    .await
    .expect("the test finished in time");
}
