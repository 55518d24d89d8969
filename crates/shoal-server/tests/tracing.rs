//! Spans as an OTLP/HTTP receiver stand-in gets them from `shoal serve`.
//!
//! A trace crosses replicas: two replicas on one Redis behind the round-robin proxy; a tool call
//! whose elicitation is answered through the other replica yields spans of one trace (the
//! client's `traceparent`) from both replicas, and no span carries a raw session id.
//!
//! Operation spans follow OpenTelemetry's MCP conventions: the attributes it names, the parent
//! from `params._meta` (linked to the HTTP span), span names of bounded cardinality.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
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

/// The HTTP headers' context, and the one `params._meta` carries: two traces.
const HTTP_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const HTTP_TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const META_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const META_PARENT: &str = "00f067aa0ba902b7";
const META_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The operation span of the request with JSON-RPC id `id`.
fn operation<'a>(spans: &'a [ReceivedSpan], id: &Value) -> &'a ReceivedSpan {
    let id = id.to_string();
    spans
        .iter()
        .find(|s| s.attributes.get("jsonrpc.request.id") == Some(&id))
        .unwrap_or_else(|| panic!("no operation span of request {id}: {spans:#?}"))
}

fn attribute<'a>(span: &'a ReceivedSpan, key: &str) -> Option<&'a str> {
    span.attributes.get(key).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_spans_follow_the_mcp_conventions() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let receiver = OtlpReceiver::start().await;
        let cluster = ShoalCluster::builder(SHOAL)
            .replicas(1)
            .tools("demo,conformance")
            .arg("--otlp-endpoint")
            .arg(receiver.endpoint())
            .start()
            .await;
        let mut client =
            McpClient::new(cluster.replica_url(0)).with_header("traceparent", HTTP_TRACEPARENT);
        client.initialize().await;
        client.notify_initialized().await;
        let version = client.protocol_version().unwrap().to_owned();

        // The client's operation context in `_meta`, next to the HTTP headers' context.
        let meta =
            json!({ "traceparent": META_TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7" });
        let echo = client
            .request(
                "tools/call",
                json!({ "name": "echo", "arguments": { "text": "hi" }, "_meta": meta }),
            )
            .await;
        assert_eq!(echo["result"]["content"][0]["text"], "hi", "{echo}");
        let prompt = client
            .request("prompts/get", json!({ "name": "test_simple_prompt" }))
            .await;
        assert!(prompt["result"]["messages"].is_array(), "{prompt}");
        let unknown_tool = client
            .request(
                "tools/call",
                json!({ "name": "no-such-tool-4711", "arguments": {} }),
            )
            .await;
        assert_eq!(unknown_tool["error"]["code"], -32602, "{unknown_tool}");
        let tool_error = client
            .request("tools/call", json!({ "name": "echo", "arguments": {} }))
            .await;
        assert_eq!(tool_error["result"]["isError"], true, "{tool_error}");
        let unknown_method = client.request("made/up-4711", json!({})).await;
        assert_eq!(unknown_method["error"]["code"], -32601, "{unknown_method}");

        let requests = [&echo, &prompt, &unknown_tool, &tool_error, &unknown_method];
        let spans = receiver
            .wait_for(Duration::from_secs(30), "every operation span", |spans| {
                let ids: BTreeSet<&str> = spans
                    .iter()
                    .filter_map(|s| s.attributes.get("jsonrpc.request.id"))
                    .map(String::as_str)
                    .collect();
                // initialize, the requests, and the HTTP span of each POST.
                ids.len() > requests.len()
                    && spans.iter().filter(|s| s.name == "POST /mcp").count() > requests.len() + 1
            })
            .await;
        let operations: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|s| s.attributes.contains_key("mcp.method.name"))
            .collect();

        // Every operation: the session's negotiated revision, the transport, the session hash.
        for span in &operations {
            assert_eq!(
                attribute(span, "mcp.protocol.version"),
                Some(&*version),
                "{span:#?}"
            );
            assert_eq!(
                attribute(span, "network.transport"),
                Some("tcp"),
                "{span:#?}"
            );
            assert_eq!(
                attribute(span, "network.protocol.name"),
                Some("http"),
                "{span:#?}"
            );
            assert_eq!(span.attributes["mcp.session.id"].len(), 16, "{span:#?}");
        }
        let initialize = operations
            .iter()
            .find(|s| s.name == "initialize")
            .unwrap_or_else(|| panic!("no initialize span: {operations:#?}"));
        assert_eq!(attribute(initialize, "mcp.method.name"), Some("initialize"));
        assert!(initialize.attributes.contains_key("jsonrpc.request.id"));

        // The call with `_meta`: a child of the client's span, linked to the HTTP span (of the
        // headers' trace); a tool call of a known tool.
        let call = operation(&spans, &echo["id"]);
        assert_eq!(call.name, "tools/call echo");
        assert_eq!(call.trace_id, META_TRACE_ID, "{call:#?}");
        assert_eq!(call.parent_span_id, META_PARENT, "{call:#?}");
        assert_eq!(
            call.link_trace_ids,
            vec![HTTP_TRACE_ID.to_owned()],
            "{call:#?}"
        );
        let expected = BTreeMap::from([
            ("mcp.method.name", "tools/call"),
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", "echo"),
        ]);
        for (key, value) in expected {
            assert_eq!(attribute(call, key), Some(value), "{key}: {call:#?}");
        }
        assert_eq!(
            attribute(call, "jsonrpc.request.id"),
            Some(&*echo["id"].to_string())
        );
        for absent in [
            "error.type",
            "rpc.response.status_code",
            "gen_ai.prompt.name",
        ] {
            assert_eq!(attribute(call, absent), None, "{absent}: {call:#?}");
        }
        assert_eq!(call.status_code, 0, "unset: {call:#?}");
        let http = spans
            .iter()
            .find(|s| s.name == "POST /mcp")
            .expect("an HTTP span");
        assert_eq!(http.trace_id, HTTP_TRACE_ID, "{http:#?}");
        assert_eq!(attribute(http, "network.protocol.version"), Some("1.1"));

        // Without `_meta`: a child of the HTTP span. A prompt the server knows names the span.
        let get = operation(&spans, &prompt["id"]);
        assert_eq!(get.name, "prompts/get test_simple_prompt");
        assert_eq!(get.trace_id, HTTP_TRACE_ID, "{get:#?}");
        let parent = spans
            .iter()
            .find(|s| s.span_id == get.parent_span_id)
            .unwrap_or_else(|| panic!("no parent of {get:#?}"));
        assert_eq!(parent.name, "POST /mcp");
        assert!(get.link_trace_ids.is_empty(), "{get:#?}");
        assert_eq!(
            attribute(get, "gen_ai.prompt.name"),
            Some("test_simple_prompt")
        );
        assert_eq!(
            attribute(get, "gen_ai.operation.name"),
            None,
            "only tools/call"
        );

        // A tool no provider knows: named by the method only; the JSON-RPC error on the span.
        let unknown = operation(&spans, &unknown_tool["id"]);
        assert_eq!(unknown.name, "tools/call");
        assert_eq!(
            attribute(unknown, "gen_ai.tool.name"),
            Some("no-such-tool-4711")
        );
        assert_eq!(attribute(unknown, "error.type"), Some("-32602"));
        assert_eq!(
            attribute(unknown, "rpc.response.status_code"),
            Some("-32602")
        );
        assert_eq!(unknown.status_code, 2, "error: {unknown:#?}");
        assert_eq!(
            unknown.status_message,
            unknown_tool["error"]["message"].as_str().unwrap()
        );

        // A result with `isError`: a `tool_error`, but no JSON-RPC code.
        let failed = operation(&spans, &tool_error["id"]);
        assert_eq!(failed.name, "tools/call echo");
        assert_eq!(attribute(failed, "error.type"), Some("tool_error"));
        assert_eq!(attribute(failed, "rpc.response.status_code"), None);
        assert_eq!(failed.status_code, 2, "error: {failed:#?}");

        // A method outside the spec: `_OTHER`, in the name and in `mcp.method.name`.
        let other = operation(&spans, &unknown_method["id"]);
        assert_eq!(other.name, "_OTHER");
        assert_eq!(attribute(other, "mcp.method.name"), Some("_OTHER"));
        assert_eq!(attribute(other, "rpc.response.status_code"), Some("-32601"));
        for span in &spans {
            assert!(
                !span.name.contains("made/up") && !span.name.contains("no-such-tool"),
                "a client's name became a span name: {span:#?}"
            );
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}
