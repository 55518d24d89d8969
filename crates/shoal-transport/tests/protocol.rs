//! The positive paths of Streamable HTTP over real HTTP: 202s, JSON and SSE replies, priming
//! events and event ids, session-less ping, JSON-RPC errors in 200 replies, keep-alives, drain,
//! DELETE and server→client requests.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, assert_priming, progress_of, split_id, start_streaming_call};
use serde_json::{Value, json};
use shoal_testkit::client::{SESSION_ID, message};
use shoal_testkit::{McpClient, SseEvent, SseItem};
use shoal_transport::TransportConfig;

#[tokio::test]
async fn initialize_mints_a_session_and_negotiates_the_revision() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    let result = client.initialize().await;
    assert_eq!(result["protocolVersion"], "2025-11-25");
    assert_eq!(result["serverInfo"]["name"], "shoal");
    assert_eq!(
        result["capabilities"]["tools"],
        json!({ "listChanged": true })
    );
    assert_eq!(
        result["capabilities"]["resources"],
        json!({ "subscribe": true, "listChanged": true })
    );
    let id = client.session_id().unwrap().to_owned();
    assert!(id.len() >= 22, "at least 128 random bits: {id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe visible ASCII: {id}"
    );
    let mut other = harness.client();
    other.initialize().await;
    assert_ne!(other.session_id(), Some(id.as_str()));

    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2024-11-05", "2025-11-25"),
    ] {
        let result = harness
            .client()
            .initialize_with(json!({
                "protocolVersion": asked,
                "capabilities": {},
                "clientInfo": { "name": "old", "version": "1" }
            }))
            .await;
        assert_eq!(result["protocolVersion"], answered, "asked {asked}");
    }
}

#[tokio::test]
async fn notifications_and_responses_get_202_with_an_empty_body() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let replies = [
        client.notify("notifications/initialized", None).await,
        client
            .notify("notifications/roots/list_changed", None)
            .await,
        client.cancel(12345, "nothing runs under that id").await,
        // An answer nobody waits for (late, or forged) is accepted and dropped.
        client.respond(&json!("some-node.7"), Ok(json!({}))).await,
        client
            .respond(&json!(3), Err(json!({ "code": -1, "message": "no" })))
            .await,
    ];
    for raw in replies {
        assert_eq!(raw.status, 202, "{raw}");
        assert!(raw.body.is_empty(), "{raw}");
    }
}

#[tokio::test]
async fn a_request_whose_handler_emits_nothing_is_answered_as_json() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let id = client.next_id();
    let request = message(
        id,
        "tools/call",
        Some(json!({ "name": "echo", "arguments": { "text": "hi" } })),
    );
    let raw = client.post(&request).await.into_json();
    assert_eq!(raw.content_type(), "application/json");
    assert_eq!(
        raw.json(),
        json!({ "jsonrpc": "2.0", "id": id, "result": { "content": [{ "type": "text", "text": "hi" }] } })
    );

    // Progress without a progress token is not sent, so `steps` is a plain reply too.
    let exchange = client
        .exchange(
            "tools/call",
            json!({ "name": "steps", "arguments": { "count": 2, "delay_ms": 1 } }),
        )
        .await;
    assert_eq!(exchange.content_type, "application/json");
    assert_eq!(exchange.response["result"]["content"][0]["text"], "done 2");
    assert!(exchange.events.is_empty());
}

#[tokio::test]
async fn a_request_that_emits_progress_is_an_sse_stream_with_ordered_ids() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let (id, mut stream) =
        start_streaming_call(&client, "steps", json!({ "count": 3, "delay_ms": 10 })).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(stream.headers()["cache-control"], "no-cache");

    let priming = stream.expect_event().await;
    assert_priming(&priming);
    assert_eq!(priming.retry, Some(1000), "the configured retry");
    let (stream_id, seq) = split_id(&priming);
    assert_eq!(seq, 0, "the priming event is <stream>.0");
    assert!(
        stream_id.len() > 16,
        "a reply stream's id names the node writing it: {stream_id}"
    );

    let events = stream.collect_events().await;
    let ids: Vec<String> = events.iter().map(|e| e.id.clone().unwrap()).collect();
    assert_eq!(
        ids,
        // Position 1 holds the request id, for the server's own use.
        (2..=5)
            .map(|n| format!("{stream_id}.{n}"))
            .collect::<Vec<_>>(),
        "every event has an id of this stream, in order, without gaps"
    );
    for (step, event) in events[..3].iter().enumerate() {
        let step = step as u64 + 1;
        assert_eq!(
            event.json().unwrap(),
            json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {
                    "progressToken": "progress-1",
                    "progress": step as f64,
                    "total": 3.0,
                    "message": format!("step {step}")
                }
            })
        );
        assert_eq!(event.retry, None);
    }
    let response = events[3].json().unwrap();
    assert_eq!(response["id"], json!(id));
    assert_eq!(response["result"]["content"][0]["text"], "done 3");
}

#[tokio::test]
async fn exchange_records_what_came_before_the_response() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let exchange = client
        .exchange(
            "tools/call",
            common::call_with_progress("steps", json!({ "count": 2, "delay_ms": 1 }), "t"),
        )
        .await;
    assert_eq!(exchange.content_type, "text/event-stream");
    assert_eq!(exchange.response["result"]["content"][0]["text"], "done 2");
    let progress: Vec<u64> = exchange.events.iter().filter_map(progress_of).collect();
    assert_eq!(progress, [1, 2]);
    let seen = client.take_seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|m| m["method"] == "notifications/progress"));
    assert!(client.take_seen().is_empty());
}

#[tokio::test]
async fn older_revisions_get_no_priming_event() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    client
        .initialize_with(json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "old", "version": "1" }
        }))
        .await;
    let (_, mut stream) =
        start_streaming_call(&client, "steps", json!({ "count": 1, "delay_ms": 1 })).await;
    let first = stream.expect_event().await;
    assert_eq!(
        first.seq(),
        Some(2),
        "no priming event before 2025-11-25 (position 1 holds the request id): {first:?}"
    );
    assert_eq!(progress_of(&first), Some(1));
}

#[tokio::test]
async fn ping_works_without_a_session() {
    let harness = Harness::start().await;
    let client = harness.client();
    let raw = client.post(&message(1, "ping", None)).await.into_json();
    assert_eq!(
        raw.json(),
        json!({ "jsonrpc": "2.0", "id": 1, "result": {} })
    );
    assert_eq!(raw.header(SESSION_ID), None, "ping mints no session");
}

#[tokio::test]
async fn an_unknown_method_is_method_not_found_in_a_200() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let raw = client
        .post(&message(7, "tools/frobnicate", Some(json!({}))))
        .await
        .into_json();
    assert_eq!(raw.status, 200);
    assert_eq!(
        raw.json(),
        json!({
            "jsonrpc": "2.0",
            "id": 7,
            "error": { "code": -32601, "message": "method not found: tools/frobnicate" }
        })
    );
}

#[tokio::test]
async fn an_unknown_tool_is_invalid_params() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let response = client
        .request("tools/call", json!({ "name": "nope", "arguments": {} }))
        .await;
    assert_eq!(response["error"]["code"], -32602);
    assert_eq!(response["error"]["message"], "unknown tool: nope");
    // Bad arguments of a known tool are a result the model can act on, not a protocol error.
    let result = client.call_tool("echo", json!({ "text": 5 })).await;
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("invalid arguments for tool echo"),
        "{result}"
    );
}

#[tokio::test]
async fn keep_alive_comments_appear_on_an_idle_get_stream() {
    let harness = Harness::start_with(TransportConfig {
        keep_alive: Duration::from_millis(50),
        ..TransportConfig::default()
    })
    .await;
    let client = harness.connect().await;
    let mut stream = client.get_stream(None).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let priming = stream.expect_event().await;
    assert_priming(&priming);
    assert_eq!(priming.seq(), Some(0));
    for _ in 0..3 {
        let item = stream
            .next_item_within(Duration::from_secs(1))
            .await
            .expect("a keep-alive within a second");
        assert_eq!(item, Some(SseItem::Comment(" keep-alive".into())));
    }
    assert_eq!(stream.comments_seen(), 3);
}

#[tokio::test]
async fn drain_ends_an_open_get_stream_with_retry() {
    let harness = Harness::start_with(TransportConfig {
        retry: Duration::from_millis(250),
        ..TransportConfig::default()
    })
    .await;
    let client = harness.connect().await;
    let mut stream = client.get_stream(None).await;
    let priming = stream.expect_event().await;
    assert_eq!(assert_priming(&priming), priming.id.clone().unwrap());
    assert_eq!(priming.retry, Some(250));

    harness.drain.cancel();
    let last = stream.expect_event().await;
    assert_eq!(
        last,
        SseEvent {
            retry: Some(250),
            ..SseEvent::default()
        },
        "a bare retry, so the client reconnects elsewhere"
    );
    stream.expect_end().await;
}

#[tokio::test]
async fn drain_ends_a_post_stream_with_retry() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let (_, mut stream) = start_streaming_call(&client, "hang", json!({})).await;
    assert_priming(&stream.expect_event().await);
    assert_eq!(progress_of(&stream.expect_event().await), Some(1));
    harness.drain.cancel();
    let last = stream.expect_event().await;
    assert_eq!((last.id, last.data, last.retry), (None, None, Some(1000)));
    stream.expect_end().await;
}

#[tokio::test]
async fn delete_ends_the_session_and_its_streams() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let mut stream = client.get_stream(None).await;
    assert_priming(&stream.expect_event().await);

    let raw = client.delete().await;
    assert!(raw.status.is_success(), "{raw}");
    assert!(raw.body.is_empty(), "{raw}");
    stream.expect_end().await;

    let raw = client.post_raw(message(9, "ping", None), |_| {}).await;
    raw.assert_rpc_error(404, -32001, "session not found");
    let raw = client.delete().await;
    raw.assert_rpc_error(404, -32001, "session not found");
}

#[tokio::test]
async fn elicitation_is_a_request_on_the_stream_answered_by_post() {
    let harness = Harness::start().await;
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let record = asked.clone();
    let mut client = McpClient::new(harness.url()).on_request(move |method, params| {
        record
            .lock()
            .unwrap()
            .push(json!({ "method": method, "params": params }));
        Ok(json!({ "action": "accept", "content": { "ok": true } }))
    });
    client.initialize().await;
    client.notify_initialized().await;

    let exchange = client
        .exchange(
            "tools/call",
            json!({ "name": "confirm", "arguments": { "question": "Ship it?" } }),
        )
        .await;
    assert_eq!(exchange.content_type, "text/event-stream");
    assert_eq!(
        exchange.response["result"]["content"][0]["text"],
        r#"Accept {"ok":true}"#
    );
    assert_eq!(exchange.messages.len(), 1, "{:?}", exchange.messages);
    let request = &exchange.messages[0];
    assert_eq!(request["method"], "elicitation/create");
    assert!(
        request["id"].is_string(),
        "a server id names its node: {request}"
    );
    assert_eq!(
        asked.lock().unwrap().clone(),
        vec![json!({
            "method": "elicitation/create",
            "params": {
                "message": "Ship it?",
                "requestedSchema": {
                    "type": "object",
                    "properties": { "ok": { "type": "boolean" } },
                    "required": ["ok"]
                }
            }
        })]
    );
    // Event ids: priming, the elicitation request, the response (position 1 holds the
    // request id, for the server's own use).
    let seqs: Vec<u64> = exchange.events.iter().map(|e| e.seq().unwrap()).collect();
    assert_eq!(seqs, [0, 2, 3]);
}

#[tokio::test]
async fn elicitation_without_the_capability_is_a_tool_error() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    client
        .initialize_with(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": { "name": "plain", "version": "1" }
        }))
        .await;
    let result = client
        .call_tool("confirm", json!({ "question": "Ship it?" }))
        .await;
    assert_eq!(result["isError"], true);
    assert_eq!(
        result["content"][0]["text"],
        "the client does not support elicitation"
    );
}

#[tokio::test]
async fn an_elicitation_answer_from_another_session_is_ignored() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let intruder = harness.connect().await;
    let (id, mut stream) =
        start_streaming_call(&client, "confirm", json!({ "question": "Ship it?" })).await;
    assert_priming(&stream.expect_event().await);
    let request = stream.expect_event().await.json().unwrap();
    assert_eq!(request["method"], "elicitation/create");

    let raw = intruder
        .respond(&request["id"], Ok(json!({ "action": "decline" })))
        .await;
    assert_eq!(raw.status, 202, "{raw}");
    assert!(
        stream
            .next_event_within(Duration::from_millis(300))
            .await
            .is_err(),
        "the handler still waits"
    );

    let raw = client
        .respond(
            &request["id"],
            Ok(json!({ "action": "accept", "content": { "ok": false } })),
        )
        .await;
    assert_eq!(raw.status, 202, "{raw}");
    let response = stream.expect_event().await.json().unwrap();
    assert_eq!(response["id"], json!(id));
    assert_eq!(
        response["result"]["content"][0]["text"],
        r#"Accept {"ok":false}"#
    );
    stream.expect_end().await;
}

/// "The server MUST send each of its JSON-RPC messages on only one of the connected streams;
/// that is, it MUST NOT broadcast the same message across multiple streams" (Streamable HTTP,
/// Multiple Connections). A second GET may be refused (409) or take the stream over (the first
/// connection ends); either way no message arrives twice.
#[tokio::test]
async fn a_message_is_sent_on_one_connection_only() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let mut first = client.get_stream(None).await;
    assert_priming(&first.expect_event().await);
    let second = client.open_stream(None).await;
    let mut second = match second {
        Ok(mut stream) => {
            assert_priming(&stream.expect_event().await);
            Some(stream)
        }
        Err(raw) => {
            assert_eq!(raw.status, 409, "a refused second stream: {raw}");
            None
        }
    };

    harness
        .engine
        .notifier()
        .tools_list_changed()
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for (name, stream) in [("first", Some(&mut first)), ("second", second.as_mut())] {
        let Some(stream) = stream else { continue };
        if let Ok(Some(event)) = stream.next_event_within(Duration::from_millis(500)).await
            && let Some(message) = event.json()
        {
            deliveries.push((name, event.id.clone(), message["method"].clone()));
        }
    }
    assert_eq!(
        deliveries.len(),
        1,
        "list_changed must arrive on exactly one connection: {deliveries:?}"
    );
    assert_eq!(deliveries[0].2, "notifications/tools/list_changed");
}
