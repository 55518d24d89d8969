//! The stateless era (2026-07-28) beside the session era on one endpoint, over real HTTP:
//! requests served from their `_meta` alone, their result shape, live replies, and every
//! refusal with its status code, code and the request's id.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use shoal_core::codes::modern;
use shoal_testkit::client::{PROTOCOL_VERSION, SESSION_ID, message};

const VERSION: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "modern-test", "version": "1" }
    })
}

/// A stateless-era request: `params` with the `_meta` claim merged in.
fn modern_request(id: i64, method: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = meta();
    message(id, method, Some(params))
}

/// The headers a 2026-07-28 client sends with `method` (and `name`, for calls, gets and reads).
fn modern_headers(method: &'static str, name: Option<&'static str>) -> impl FnOnce(&mut HeaderMap) {
    move |h: &mut HeaderMap| {
        h.insert(PROTOCOL_VERSION, HeaderValue::from_static(VERSION));
        h.insert("mcp-method", HeaderValue::from_static(method));
        if let Some(name) = name {
            h.insert("mcp-name", HeaderValue::from_static(name));
        }
    }
}

#[tokio::test]
async fn a_stateless_request_is_served_from_its_meta_alone() {
    let harness = Harness::start().await;
    let client = harness.client();
    let call = modern_request(
        1,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "hi" } }),
    );
    let raw = client
        .post_raw(call, modern_headers("tools/call", Some("echo")))
        .await;
    assert_eq!(raw.status, 200, "{raw}");
    assert_eq!(raw.header(SESSION_ID), None, "no session is made: {raw}");
    let result = &raw.json()["result"];
    assert_eq!(result["content"][0]["text"], "hi", "{raw}");
    assert_eq!(result["resultType"], "complete", "{raw}");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "shoal"
    );

    let list = client
        .post_raw(
            modern_request(2, "tools/list", json!({})),
            modern_headers("tools/list", None),
        )
        .await;
    let result = &list.json()["result"];
    assert_eq!(
        (result["ttlMs"].clone(), result["cacheScope"].clone()),
        (json!(0), json!("private"))
    );
    assert!(
        result["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "echo")
    );

    let discover = client
        .post_raw(
            modern_request(3, "server/discover", json!({})),
            modern_headers("server/discover", None),
        )
        .await;
    let result = &discover.json()["result"];
    assert_eq!(result["supportedVersions"], json!([VERSION]), "{discover}");
    // Changes reach `subscriptions/listen` streams.
    assert_eq!(
        result["capabilities"]["tools"],
        json!({ "listChanged": true }),
        "{discover}"
    );
    assert_eq!(
        result["capabilities"]["resources"],
        json!({ "listChanged": true, "subscribe": true }),
        "{discover}"
    );
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["cacheScope"], "private");

    // A name in the `=?base64?…?=` form is decoded before it is compared.
    let encoded = client
        .post_raw(
            modern_request(
                4,
                "tools/call",
                json!({ "name": "echo", "arguments": { "text": "b" } }),
            ),
            modern_headers("tools/call", Some("=?base64?ZWNobw==?=")),
        )
        .await;
    assert_eq!(
        encoded.json()["result"]["content"][0]["text"],
        "b",
        "{encoded}"
    );

    // A session-era client on the same endpoint is untouched.
    let legacy = harness.connect().await;
    let ping = legacy.request("ping", None).await;
    assert_eq!(ping["result"], json!({}), "{ping}");
}

#[tokio::test]
async fn progress_streams_live_without_event_ids_and_server_requests_are_refused() {
    let harness = Harness::start().await;
    let client = harness.client();
    let mut call = modern_request(
        1,
        "tools/call",
        json!({ "name": "steps", "arguments": { "count": 2, "delay_ms": 1 } }),
    );
    call["params"]["_meta"]["progressToken"] = json!("p");
    let raw = client
        .post_raw(call, modern_headers("tools/call", Some("steps")))
        .await;
    assert_eq!(raw.status, 200, "{raw}");
    assert_eq!(
        raw.header("content-type"),
        Some("text/event-stream"),
        "{raw}"
    );
    let text = raw.text();
    assert!(!text.contains("id:"), "no event ids in this era: {text}");
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(messages.len(), 3, "{text}");
    assert_eq!(messages[0]["method"], "notifications/progress");
    assert_eq!(messages[1]["params"]["progress"], 2.0);
    assert_eq!(messages[2]["result"]["content"][0]["text"], "done 2");
    assert_eq!(messages[2]["result"]["resultType"], "complete");

    // Elicitation is a server→client request, which this era does not have: the call ends
    // with `input_required`, and the retry with the answer and the state completes it.
    let mut confirm = modern_request(
        2,
        "tools/call",
        json!({ "name": "confirm", "arguments": { "question": "ok?" } }),
    );
    confirm["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({ "elicitation": {} });
    let first = client
        .post_raw(
            confirm.clone(),
            modern_headers("tools/call", Some("confirm")),
        )
        .await;
    assert_eq!(first.status, 200, "{first}");
    let result = &first.json()["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(
        result["inputRequests"]["elicitation-1"]["method"], "elicitation/create",
        "{first}"
    );
    assert_eq!(
        result["inputRequests"]["elicitation-1"]["params"]["message"],
        "ok?"
    );
    let mut retry = confirm;
    retry["id"] = json!(3);
    retry["params"]["inputResponses"] =
        json!({ "elicitation-1": { "action": "accept", "content": { "ok": true } } });
    retry["params"]["requestState"] = result["requestState"].clone();
    let second = client
        .post_raw(retry.clone(), modern_headers("tools/call", Some("confirm")))
        .await;
    assert_eq!(
        second.json()["result"]["content"][0]["text"],
        "Accept {\"ok\":true}",
        "{second}"
    );
    // A state is good for one retry.
    retry["id"] = json!(4);
    let replay = client
        .post_raw(retry, modern_headers("tools/call", Some("confirm")))
        .await;
    assert_eq!(replay.status, 200, "{replay}");
    assert_eq!(
        replay.json(),
        json!({
            "jsonrpc": "2.0",
            "id": 4,
            "error": {
                "code": -32602,
                "message": "requestState was already used; each one is good for one retry",
                "data": { "reason": "spent" },
            },
        })
    );
}

#[tokio::test]
async fn a_listen_stream_is_sse_from_its_acknowledgement_and_a_bad_filter_is_refused() {
    let harness = Harness::start().await;
    let client = harness.client();
    let mut stream = client.listen(7, json!({ "toolsListChanged": true })).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let ack = stream.expect_event().await;
    assert_eq!(ack.id, None, "no event ids in this era");
    let ack = ack.json().unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        json!({ "toolsListChanged": true })
    );
    harness
        .engine
        .notifier()
        .tools_list_changed()
        .await
        .unwrap();
    let change = stream.expect_event().await.json().unwrap();
    assert_eq!(change["method"], "notifications/tools/list_changed");
    assert_eq!(
        change["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );
    // The server drains: the listen request gets its response, and the stream ends.
    harness.drain.cancel();
    let end = stream.expect_event().await.json().unwrap();
    assert_eq!(end["id"], 7);
    assert_eq!(end["result"]["resultType"], "complete");
    stream.expect_end().await;

    let refused = client
        .post_raw(
            modern_request(8, "subscriptions/listen", json!({ "notifications": 1 })),
            modern_headers("subscriptions/listen", None),
        )
        .await;
    assert_eq!(refused.status, 200, "{refused}");
    assert_eq!(
        refused.json(),
        json!({
            "jsonrpc": "2.0",
            "id": 8,
            "error": {
                "code": -32602,
                "message": "subscriptions/listen needs params.notifications, an object naming what to receive",
            },
        })
    );
}

#[tokio::test]
async fn closing_a_live_reply_cancels_its_handler() {
    let mut harness = Harness::start().await;
    let http = reqwest::Client::new();
    let mut call = modern_request(1, "tools/call", json!({ "name": "hang", "arguments": {} }));
    // With a progress token, the tool's first progress opens the live reply.
    call["params"]["_meta"]["progressToken"] = json!(1);
    let response = http
        .post(harness.url())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header(PROTOCOL_VERSION, VERSION)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "hang")
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut response = response;
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), response.chunk())
        .await
        .expect("the first progress within 10 s")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    drop(response);
    assert_eq!(harness.next_report().await, "dropped");
}

#[tokio::test]
async fn every_refusal_has_its_status_code_and_the_request_id() {
    let harness = Harness::start().await;
    let client = harness.client();

    // `_meta` without the client's capabilities.
    let mut request = modern_request(11, "tools/list", json!({}));
    request["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let raw = client
        .post_raw(request, modern_headers("tools/list", None))
        .await;
    raw.assert_rpc_error(
        400,
        i64::from(modern::INVALID_PARAMS),
        "io.modelcontextprotocol/clientCapabilities is missing",
    );
    assert_eq!(raw.json()["id"], 11, "{raw}");

    // A stateless-era version this server does not speak.
    let mut request = modern_request(12, "tools/list", json!({}));
    request["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let raw = client
        .post_raw(request, |h| {
            h.insert(PROTOCOL_VERSION, HeaderValue::from_static("2099-01-01"));
            h.insert("mcp-method", HeaderValue::from_static("tools/list"));
        })
        .await;
    let error = raw.assert_rpc_error(
        400,
        i64::from(modern::UNSUPPORTED_VERSION),
        "unsupported protocol version",
    );
    assert_eq!(
        error["data"],
        json!({ "supported": [VERSION], "requested": "2099-01-01" })
    );
    assert_eq!(raw.json()["id"], 12, "{raw}");

    // Headers that are missing or disagree with the body.
    let call = || {
        modern_request(
            13,
            "tools/call",
            json!({ "name": "echo", "arguments": { "text": "x" } }),
        )
    };
    for (edit, expected) in [
        (
            Box::new(|h: &mut HeaderMap| {
                h.insert(PROTOCOL_VERSION, HeaderValue::from_static(VERSION));
                h.insert("mcp-name", HeaderValue::from_static("echo"));
            }) as Box<dyn FnOnce(&mut HeaderMap)>,
            "the mcp-method header is required",
        ),
        (
            Box::new(modern_headers("tools/list", Some("echo"))),
            "mcp-method header \"tools/list\" does not match the body's \"tools/call\"",
        ),
        (
            Box::new(modern_headers("tools/call", Some("other"))),
            "mcp-name header \"other\" does not match the body's \"echo\"",
        ),
        (
            Box::new(|h: &mut HeaderMap| {
                h.insert(PROTOCOL_VERSION, HeaderValue::from_static("2025-11-25"));
                h.insert("mcp-method", HeaderValue::from_static("tools/call"));
                h.insert("mcp-name", HeaderValue::from_static("echo"));
            }),
            "mcp-protocol-version header \"2025-11-25\" does not match the body's \"2026-07-28\"",
        ),
    ] {
        let raw = client.post_raw(call(), edit).await;
        raw.assert_rpc_error(400, i64::from(modern::HEADER_MISMATCH), expected);
        assert_eq!(raw.json()["id"], 13, "{raw}");
    }

    // Methods of the session era, and unknown ones, are not found in this one.
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "nope/nope",
    ] {
        let raw = client
            .post_raw(modern_request(14, method, json!({})), |h| {
                h.insert(PROTOCOL_VERSION, HeaderValue::from_static(VERSION));
                h.insert("mcp-method", HeaderValue::from_str(method).unwrap());
            })
            .await;
        raw.assert_rpc_error(404, i64::from(modern::METHOD_NOT_FOUND), "method not found");
        assert_eq!(raw.json()["id"], 14, "{raw}");
    }

    // A stateless-era header on a body without the claim.
    let raw = client
        .post_raw(message(15, "tools/list", None), |h| {
            h.insert(PROTOCOL_VERSION, HeaderValue::from_static(VERSION));
        })
        .await;
    raw.assert_rpc_error(
        400,
        i64::from(modern::INVALID_PARAMS),
        "params._meta has no io.modelcontextprotocol/protocolVersion",
    );
    assert_eq!(raw.json()["id"], 15, "{raw}");

    // GET and DELETE do not exist in this era.
    let modern_header = |h: &mut HeaderMap| {
        h.insert(PROTOCOL_VERSION, HeaderValue::from_static(VERSION));
    };
    let raw = client.get_raw(modern_header).await;
    raw.assert_rpc_error(405, i64::from(modern::INVALID_REQUEST), "takes POST only");
    assert_eq!(raw.header("allow"), Some("POST"), "{raw}");
    let raw = client.delete_raw(modern_header).await;
    raw.assert_rpc_error(405, i64::from(modern::INVALID_REQUEST), "takes POST only");

    // A notification that claims the era is accepted and has nothing to act on.
    let mut notification = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": { "requestId": 1 } });
    notification["params"]["_meta"] = meta();
    let raw = client
        .post_raw(
            notification,
            modern_headers("notifications/cancelled", None),
        )
        .await;
    assert_eq!(raw.status, 202, "{raw}");
    assert!(raw.text().is_empty(), "{raw}");
}

/// Arguments of a tool whose `region` a client mirrors into `Mcp-Param-Region`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct RegionArgs {
    #[schemars(extend("x-mcp-header" = "Region"))]
    region: String,
}

#[tokio::test]
async fn mirrored_arguments_must_match_their_mcp_param_headers() {
    use shoal_core::engine::{Engine, EngineConfig};
    use shoal_core::handler::{Handlers, ToolError, ToolSet, typed_tool};
    use shoal_core::host::{MemoryHost, MemoryHostConfig};
    use shoal_core::ids::NodeId;

    let tools = ToolSet::new().with(typed_tool(
        "regional",
        "Echoes its region",
        |_ctx, RegionArgs { region }| async move { Ok::<_, ToolError>(region) },
    ));
    let host = std::sync::Arc::new(MemoryHost::new(
        NodeId::new("n"),
        MemoryHostConfig::default(),
    ));
    let engine = Engine::new(host, Handlers::new().tools(tools), EngineConfig::default());
    let router = shoal_transport::router(
        engine,
        shoal_transport::TransportConfig::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let server = shoal_testkit::spawn_router(router).await;
    let client = shoal_testkit::McpClient::new(server.mcp_url());
    let call = |region: &str| {
        modern_request(
            7,
            "tools/call",
            json!({ "name": "regional", "arguments": { "region": region } }),
        )
    };
    let with_param = |value: &'static str| {
        move |h: &mut HeaderMap| {
            modern_headers("tools/call", Some("regional"))(h);
            h.insert("mcp-param-region", HeaderValue::from_static(value));
        }
    };

    // Matching, plainly or in the base64 form ("eu-west" is ZXUtd2VzdA==).
    for header in ["eu-west", "=?base64?ZXUtd2VzdA==?="] {
        let raw = client.post_raw(call("eu-west"), with_param(header)).await;
        assert_eq!(
            raw.json()["result"]["content"][0]["text"],
            "eu-west",
            "{header}: {raw}"
        );
    }
    // Missing, different, or not valid base64: refused before the tool runs.
    let missing = client
        .post_raw(
            call("eu-west"),
            modern_headers("tools/call", Some("regional")),
        )
        .await;
    missing.assert_rpc_error(
        400,
        i64::from(modern::HEADER_MISMATCH),
        "the mcp-param-Region header is required (it must be \"eu-west\")",
    );
    assert_eq!(missing.json()["id"], 7, "{missing}");
    client
        .post_raw(call("eu-west"), with_param("us-east"))
        .await
        .assert_rpc_error(
            400,
            i64::from(modern::HEADER_MISMATCH),
            "mcp-param-Region header \"us-east\" does not match the body's \"eu-west\"",
        );
    client
        .post_raw(call("eu-west"), with_param("=?base64?ZXUtd2VzdA?="))
        .await
        .assert_rpc_error(400, i64::from(modern::HEADER_MISMATCH), "mcp-param-Region");
}
