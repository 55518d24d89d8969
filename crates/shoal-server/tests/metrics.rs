//! `/metrics` on the admin listener, as Prometheus scrapes it: the real binary over a real
//! Redis, driven through initialize, tool calls (known, unknown, streamed), prompts (known,
//! unknown), a method outside the spec, a standalone GET stream, a resumption and a DELETE;
//! every metric family is there with bounded labels.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};
use shoal_testkit::redis::RedisServer;

fn call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}})
}

/// One sample line: the metric name, its labels, its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").unwrap();
                    (key.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include `labels` (and lack those given as
/// empty).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels.iter().all(|(k, v)| match s.labels.get(*k) {
                Some(found) => found == v,
                None => v.is_empty(),
            })
        })
        .map(|s| s.value)
        .sum()
}

fn families(samples: &[Sample]) -> std::collections::BTreeSet<&str> {
    samples.iter().map(|s| s.name.as_str()).collect()
}

async fn scrape(server: &Server) -> (String, Vec<Sample>) {
    let response = reqwest::get(format!("{}/metrics", server.admin))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let samples = parse(&text);
    (text, samples)
}

#[tokio::test]
async fn metrics_cover_every_family_with_bounded_labels() {
    let redis = RedisServer::start().await;
    let server = common::start(&[
        "--session-host",
        &redis.url(),
        "--node-id",
        "metrics-node",
        "--tools",
        "demo,conformance",
    ])
    .await;
    let client = reqwest::Client::new();

    let session = common::initialize(&client, &server.mcp).await;

    // A known tool, and a name no provider knows.
    let echo = common::post(
        &client,
        &server.mcp,
        Some(&session),
        call(1, "echo", json!({"text": "hi"})),
    );
    let echo: Value = echo.send().await.unwrap().json().await.unwrap();
    assert_eq!(echo["result"]["content"][0]["text"], "hi", "{echo}");
    let unknown = call(2, "no-such-tool-4711", json!({}));
    let unknown: Value = common::post(&client, &server.mcp, Some(&session), unknown)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    // A prompt, a name no provider knows, and a method outside the spec.
    let mut answers = Vec::new();
    for (id, method, params) in [
        (4, "prompts/get", json!({"name": "test_simple_prompt"})),
        (5, "prompts/get", json!({"name": "no-such-prompt-4711"})),
        (6, "made/up-4711", json!({})),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer: Value = common::post(&client, &server.mcp, Some(&session), body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answers.push(answer);
    }
    assert!(
        answers[0]["result"]["messages"].is_array(),
        "{}",
        answers[0]
    );
    assert_eq!(answers[1]["error"]["code"], -32602, "{}", answers[1]);
    assert_eq!(answers[2]["error"]["code"], -32601, "{}", answers[2]);

    // A streamed reply: count with a progress token.
    let mut count = call(3, "count", json!({"to": 2, "interval_ms": 20}));
    count["params"]["_meta"] = json!({"progressToken": "p1"});
    let streamed = common::post(&client, &server.mcp, Some(&session), count)
        .send()
        .await
        .unwrap();
    assert_eq!(
        streamed.headers()["content-type"],
        "text/event-stream",
        "count with progress is streamed"
    );
    let body = streamed.text().await.unwrap();
    assert!(body.contains("notifications/progress"), "{body}");
    // The id of the first event after priming, to resume from.
    let first_id = body
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .nth(1)
        .unwrap()
        .to_owned();

    // A standalone GET stream, open while we scrape.
    let mut standalone = common::open_get(&client, &server, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(standalone.status(), 200);
    standalone.chunk().await.unwrap().unwrap();

    // A resumption of the count reply after its first event: the rest is replayed.
    let resumed = common::open_get(&client, &server, &session)
        .header("last-event-id", &first_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let replay = resumed.text().await.unwrap();
    assert!(replay.contains("\"result\""), "{replay}");

    // A path that is no route: no raw path may become a label.
    let stray = client
        .get(format!("{}/stray-path-0815", server.mcp))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 404);

    let (_, open) = scrape(&server).await;
    assert_eq!(
        value(&open, "shoal_sse_streams_open", &[("kind", "standalone")]),
        1.0
    );
    drop(standalone);

    let delete = client
        .delete(&server.mcp)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);

    // The SessionClosed broadcast comes back through Redis pub/sub: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (text, samples) = loop {
        let (text, samples) = scrape(&server).await;
        let delivered = value(
            &samples,
            "shoal_inbox_deliveries_total",
            &[("kind", "broadcast")],
        );
        if delivered >= 1.0 || Instant::now() > deadline {
            break (text, samples);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Every family is exported.
    let names = families(&samples);
    for family in [
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_count",
        "mcp_server_operation_duration_seconds_bucket",
        "mcp_server_session_duration_seconds_count",
        "shoal_sessions_initialized_total",
        "shoal_sessions_deleted_total",
        "shoal_sse_streams_open",
        "shoal_events_replayed_total",
        "shoal_inbox_deliveries_total",
        "shoal_requests_abandoned_total",
        "shoal_redis_command_duration_seconds_bucket",
        "shoal_redis_command_errors_total",
        "shoal_draining",
        "shoal_build_info",
    ] {
        assert!(names.contains(family), "{family} missing:\n{text}");
    }

    // HTTP: route templates, methods and status codes.
    let http = "http_server_request_duration_seconds_count";
    let mcp = ("http_route", "/mcp");
    assert_eq!(
        value(
            &samples,
            http,
            &[
                ("http_request_method", "POST"),
                mcp,
                ("http_response_status_code", "200")
            ]
        ),
        7.0,
        "initialize, echo, unknown tool, two prompts, unknown method, count:\n{text}"
    );
    assert_eq!(
        value(
            &samples,
            http,
            &[
                ("http_request_method", "GET"),
                mcp,
                ("http_response_status_code", "200")
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &samples,
            http,
            &[
                ("http_request_method", "DELETE"),
                mcp,
                ("http_response_status_code", "204")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            http,
            &[("http_route", ""), ("http_response_status_code", "404")]
        ),
        1.0,
        "the stray request has no route label"
    );
    for sample in samples.iter().filter(|s| s.name.starts_with("http_server")) {
        let route = sample.labels.get("http_route").map(String::as_str);
        assert!(matches!(route, None | Some("/mcp")), "{sample:?}");
    }

    // MCP operations: the tool label is bounded, errors are typed.
    let op = "mcp_server_operation_duration_seconds_count";
    let call = ("mcp_method_name", "tools/call");
    assert_eq!(
        value(
            &samples,
            op,
            &[call, ("gen_ai_tool_name", "echo"), ("error_type", "")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            op,
            &[
                call,
                ("gen_ai_tool_name", "_unknown"),
                ("error_type", "-32602")
            ]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            op,
            &[call, ("gen_ai_tool_name", "count"), ("error_type", "")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            op,
            &[("mcp_method_name", "initialize"), ("gen_ai_tool_name", "")]
        ),
        1.0
    );
    assert!(
        !text.contains("no-such-tool-4711"),
        "an unknown tool name became a label"
    );
    let get = ("mcp_method_name", "prompts/get");
    assert_eq!(
        value(
            &samples,
            op,
            &[
                get,
                ("gen_ai_prompt_name", "test_simple_prompt"),
                ("gen_ai_tool_name", ""),
                ("error_type", "")
            ]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            op,
            &[
                get,
                ("gen_ai_prompt_name", "_unknown"),
                ("error_type", "-32602")
            ]
        ),
        1.0,
        "{text}"
    );
    assert!(
        !text.contains("no-such-prompt-4711"),
        "an unknown prompt name became a label"
    );
    // A method outside the spec's list is `_OTHER`, as OpenTelemetry names it.
    assert_eq!(
        value(
            &samples,
            op,
            &[
                ("mcp_method_name", "_OTHER"),
                ("gen_ai_tool_name", ""),
                ("error_type", "-32601")
            ]
        ),
        1.0,
        "{text}"
    );
    assert!(
        !text.contains("made/up"),
        "an unknown method became a label"
    );

    // Sessions.
    assert_eq!(
        value(&samples, "shoal_sessions_initialized_total", &[]),
        1.0
    );
    assert_eq!(value(&samples, "shoal_sessions_deleted_total", &[]), 1.0);
    assert_eq!(
        value(&samples, "mcp_server_session_duration_seconds_count", &[]),
        1.0
    );

    // Streams and replay: the resumption replayed the count's remaining events.
    assert!(
        value(&samples, "shoal_events_replayed_total", &[]) >= 2.0,
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "shoal_inbox_deliveries_total",
            &[("kind", "broadcast")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(value(&samples, "shoal_requests_abandoned_total", &[]), 0.0);

    // Redis: per operation, bounded names.
    let redis_count = "shoal_redis_command_duration_seconds_count";
    for command in [
        "create_session",
        "session",
        "append",
        "subscribe",
        "delete_session",
        "ping",
    ] {
        assert!(
            value(&samples, redis_count, &[("command", command)]) >= 1.0,
            "no Redis {command}:\n{text}"
        );
    }
    assert_eq!(
        value(&samples, "shoal_redis_command_errors_total", &[]),
        0.0
    );

    // Drain state and build info.
    assert_eq!(value(&samples, "shoal_draining", &[]), 0.0);
    assert_eq!(
        value(
            &samples,
            "shoal_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // The process's node id: the configured one plus a random suffix of its own.
    let build_info = samples
        .iter()
        .find(|s| s.name == "shoal_build_info")
        .expect("shoal_build_info");
    let node = &build_info.labels["node"];
    assert!(node.starts_with("metrics-node-"), "{node}");
    assert!(node.len() > "metrics-node-".len(), "{node}");

    // Buckets for an RPC service; MCP operations up to the 300 s OpenTelemetry advises (a tool
    // may wait on a user), HTTP up to 10 s.
    let buckets = |name: &str| -> Vec<String> {
        samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.labels.get("le").cloned())
            .collect()
    };
    let operation = buckets("mcp_server_operation_duration_seconds_bucket");
    for le in [
        "0.0005", "0.01", "0.02", "0.2", "10", "30", "60", "120", "300", "+Inf",
    ] {
        assert!(operation.iter().any(|b| b == le), "no le={le}:\n{text}");
    }
    let http = buckets("http_server_request_duration_seconds_bucket");
    for le in ["0.0005", "10", "+Inf"] {
        assert!(http.iter().any(|b| b == le), "no le={le}:\n{text}");
    }
    assert!(!http.iter().any(|b| b == "300"), "{text}");

    // No session id, and no stream id, anywhere.
    assert!(
        !text.contains(&session),
        "a session id leaked into the metrics"
    );
    let stream_id = first_id.split('.').next().unwrap();
    assert!(
        !text.contains(stream_id),
        "a stream id leaked into the metrics"
    );
}

/// Operations carry their revision, so that the dashboard splits the session era from the
/// stateless one.
#[tokio::test]
async fn operations_are_labelled_with_their_protocol_revision() {
    let server = common::start(&[]).await;
    let client = reqwest::Client::new();
    let session = common::initialize(&client, &server.mcp).await;
    let legacy = common::post(
        &client,
        &server.mcp,
        Some(&session),
        call(1, "echo", json!({"text": "a"})),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(legacy.status(), 200);
    let mut modern = call(2, "echo", json!({"text": "b"}));
    modern["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let modern = common::post(&client, &server.mcp, None, modern)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .send()
        .await
        .unwrap();
    assert_eq!(modern.status(), 200);
    let body: Value = modern.json().await.unwrap();
    assert_eq!(body["result"]["resultType"], "complete", "{body}");

    let (text, samples) = scrape(&server).await;
    let op = "mcp_server_operation_duration_seconds_count";
    for version in ["2025-11-25", "2026-07-28"] {
        assert_eq!(
            value(
                &samples,
                op,
                &[
                    ("mcp_method_name", "tools/call"),
                    ("mcp_protocol_version", version)
                ]
            ),
            1.0,
            "{version}: {text}"
        );
    }
    assert_eq!(
        value(
            &samples,
            op,
            &[
                ("mcp_method_name", "initialize"),
                ("mcp_protocol_version", "2025-11-25")
            ]
        ),
        1.0,
        "{text}"
    );
}

/// Multi round-trip requests are counted: each `input_required`, and each retry refused, by
/// reason; listen streams are counted open while they are.
#[tokio::test]
async fn input_required_rounds_refused_states_and_listen_streams_are_counted() {
    let server = common::start(&[]).await;
    let client = shoal_testkit::McpClient::new(server.mcp.clone());
    let ask = json!({ "name": "ask_user", "arguments": { "question": "Name?" } });
    let first = client.modern("tools/call", ask.clone()).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let state = first["result"]["requestState"].as_str().unwrap();
    let mut forged = ask.clone();
    // One character of the sealed part changed: well formed, but not what was sealed.
    let middle = state.len() / 2;
    let swapped = if &state[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    forged["requestState"] = json!(format!(
        "{}{swapped}{}",
        &state[..middle],
        &state[middle + 1..]
    ));
    forged["inputResponses"] =
        json!({ "elicitation-1": { "action": "accept", "content": { "answer": "Ada" } } });
    let refused = client.modern("tools/call", forged).await;
    assert_eq!(refused["error"]["data"]["reason"], "forged", "{refused}");
    let mut listen = client.listen(9, json!({ "toolsListChanged": true })).await;
    listen.expect_event().await;

    let (text, samples) = scrape(&server).await;
    assert_eq!(
        value(
            &samples,
            "shoal_input_required_total",
            &[("mcp_method_name", "tools/call")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "shoal_request_state_refusals_total",
            &[("reason", "forged")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "shoal_request_state_refusals_total",
            &[("reason", "spent")]
        ),
        0.0,
        "every reason is exported before its first refusal: {text}"
    );
    assert!(
        text.contains("shoal_request_state_refusals_total{reason=\"spent\"} 0"),
        "{text}"
    );
    assert_eq!(
        value(&samples, "shoal_sse_streams_open", &[("kind", "listen")]),
        1.0,
        "{text}"
    );
}
