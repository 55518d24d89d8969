//! A trace crosses replicas: two `shoal serve` replicas on one Redis behind the round-robin
//! proxy export spans over OTLP/HTTP to a receiver stand-in. A tool call whose elicitation is
//! answered through the other replica yields spans of one trace (the client's `traceparent`)
//! from both replicas, and no span carries a raw session id.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use shoal_testkit::McpClient;
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::otlp::{OtlpReceiver, ReceivedSpan};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The `--node-id` a process's node id was made from: it adds `-` and 8 random characters
/// (which may contain `-` themselves).
fn configured(node: &str) -> &str {
    node.get(..node.len().saturating_sub(9)).unwrap_or(node)
}

fn nodes_of(spans: &[ReceivedSpan]) -> BTreeSet<String> {
    spans
        .iter()
        .filter(|s| s.trace_id == TRACE_ID)
        .filter_map(|s| s.resource.get("shoal.node"))
        .map(|node| configured(node).to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_crosses_replicas() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let receiver = OtlpReceiver::start().await;
        let cluster = ShoalCluster::builder(SHOAL)
            .replicas(2)
            .arg("--otlp-endpoint")
            .arg(receiver.endpoint())
            .start()
            .await;
        let mut client = McpClient::new(cluster.url())
            .with_header("traceparent", TRACEPARENT)
            .on_request(|method, params| {
                assert_eq!(method, "elicitation/create", "{params}");
                Ok(json!({ "action": "accept", "content": { "answer": "blue" } }))
            });
        client.initialize().await;
        client.notify_initialized().await;
        cluster.proxy().take_served();

        let exchange = client
            .exchange(
                "tools/call",
                json!({ "name": "ask_user", "arguments": { "question": "Favourite colour?" } }),
            )
            .await;
        assert_eq!(
            exchange.response["result"]["content"][0]["text"], "blue",
            "{:#?}",
            exchange.response
        );
        // The call's POST on one replica, the answer's POST on the other.
        let served = cluster.proxy().served();
        assert_eq!(served.len(), 2, "{served:#?}");
        assert_ne!(served[0].backend, served[1].backend, "{served:#?}");
        assert_eq!(served[1].status, StatusCode::ACCEPTED);
        let caller = cluster.node_id(served[0].backend).to_owned();
        let answerer = cluster.node_id(served[1].backend).to_owned();

        // The batch exporter sends every few seconds.
        let both: BTreeSet<String> = [caller.clone(), answerer.clone()].into();
        let spans = receiver
            .wait_for(
                Duration::from_secs(30),
                "spans of the trace from both replicas",
                |spans| {
                    nodes_of(spans) == both && spans.iter().any(|s| s.name == "mcp.client_response")
                },
            )
            .await;
        let trace: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
        let on = |node: &str| {
            trace
                .iter()
                .filter(|s| s.resource.get("shoal.node").map(|n| configured(n)) == Some(node))
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
        };
        for span in &trace {
            assert_eq!(span.resource["service.name"], "shoal", "{span:#?}");
        }
        // The caller: the HTTP span, the tools/call operation with its tool, and the arrival of
        // the answer, linked to the answerer's span.
        let call = trace
            .iter()
            .find(|s| s.attributes.get("mcp.method.name").map(String::as_str) == Some("tools/call"))
            .unwrap_or_else(|| panic!("no tools/call span: {trace:#?}"));
        assert_eq!(call.name, "tools/call ask_user");
        assert_eq!(call.attributes["gen_ai.tool.name"], "ask_user");
        assert_eq!(configured(&call.attributes["shoal.node"]), caller);
        assert_eq!(call.resource["shoal.node"], call.attributes["shoal.node"]);
        assert_eq!(call.attributes["mcp.session.id"].len(), 16);
        let answered = trace
            .iter()
            .find(|s| s.name == "mcp.client_response")
            .unwrap_or_else(|| panic!("no mcp.client_response span: {trace:#?}"));
        assert_eq!(answered.resource["shoal.node"], call.resource["shoal.node"]);
        assert_eq!(
            answered.parent_span_id, call.span_id,
            "child of the handler"
        );
        assert_eq!(answered.link_trace_ids, vec![TRACE_ID.to_owned()]);
        assert!(on(&caller).contains(&"POST /mcp"), "{:?}", on(&caller));
        // The answerer: its HTTP span and the routing of the answer to the caller.
        let routed = trace
            .iter()
            .find(|s| s.name == "mcp.client_response.route")
            .unwrap_or_else(|| panic!("no routing span: {trace:#?}"));
        assert_eq!(configured(&routed.resource["shoal.node"]), answerer);
        assert_eq!(
            routed.attributes["shoal.target_node"],
            call.resource["shoal.node"]
        );
        assert!(on(&answerer).contains(&"POST /mcp"), "{:?}", on(&answerer));
        let http = trace.iter().find(|s| s.name == "POST /mcp").unwrap();
        assert_eq!(http.attributes["http.request.method"], "POST");
        assert_eq!(http.attributes["http.route"], "/mcp");
        assert!(http.attributes.contains_key("http.response.status_code"));

        // Sessions are named by a hash only.
        let session = client.session_id().expect("a session").to_owned();
        for span in &spans {
            let attributes = span
                .attributes
                .iter()
                .chain(span.resource.iter())
                .chain(span.event_attributes.iter().flatten());
            for (key, value) in attributes {
                assert!(
                    !value.contains(&session),
                    "the raw session id in {key} of {}",
                    span.name
                );
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}
