//! `notifications/cancelled` end to end over real HTTP: the handler stops, and its stream ends
//! without a response.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, assert_priming, progress_of, start_streaming_call};
use serde_json::json;
use shoal_testkit::SseStream;

/// Asserts that `stream` ends without another message (in particular no response).
async fn assert_ends_without_response(stream: &mut SseStream, id: i64) {
    let rest = stream.collect_events().await;
    assert!(
        rest.iter().all(|e| e.json().is_none()),
        "request {id} was cancelled: nothing more may come, got {rest:#?}"
    );
}

#[tokio::test]
async fn a_cancelled_request_stops_its_handler_and_its_stream_ends_without_a_response() {
    let mut harness = Harness::start().await;
    let client = harness.connect().await;
    let (id, mut stream) = start_streaming_call(&client, "hang", json!({})).await;
    assert_priming(&stream.expect_event().await);
    let started = stream.expect_event().await;
    assert_eq!(progress_of(&started), Some(1));

    let raw = client.cancel(id, "the user gave up").await;
    assert_eq!(raw.status, 202, "{raw}");
    assert!(raw.body.is_empty());

    assert_eq!(
        harness.next_report().await,
        "dropped",
        "the handler was stopped"
    );
    assert_ends_without_response(&mut stream, id).await;

    // Resuming the stream finds its end, and still no response.
    let mut resumed = client.get_stream(started.id.as_deref()).await;
    assert_priming(&resumed.expect_event().await);
    assert_ends_without_response(&mut resumed, id).await;
    harness.expect_no_report(Duration::from_millis(100)).await;

    // The session goes on.
    let result = client
        .call_tool("echo", json!({ "text": "still here" }))
        .await;
    assert_eq!(result["content"][0]["text"], "still here");
}

/// A handler that watches its cancellation token and returns as soon as it fires must not get
/// its (now pointless) result sent: the client was promised silence. Several rounds, because
/// the handler and the engine race for the same wake-up.
#[tokio::test]
async fn a_handler_that_returns_on_cancellation_sends_no_response() {
    let mut harness = Harness::start().await;
    let client = harness.connect().await;
    for round in 0..16 {
        let (id, mut stream) = start_streaming_call(&client, "cooperative", json!({})).await;
        assert_priming(&stream.expect_event().await);
        assert_eq!(progress_of(&stream.expect_event().await), Some(1));
        let raw = client.cancel(id, "changed my mind").await;
        assert_eq!(raw.status, 202, "{raw}");
        let rest = stream.collect_events().await;
        assert!(
            rest.iter().all(|e| e.json().is_none()),
            "round {round}: request {id} was cancelled, yet got {rest:#?}"
        );
    }
    let mut saw = 0;
    while let Ok(Some(r)) =
        tokio::time::timeout(Duration::from_millis(50), harness.probe.recv()).await
    {
        eprintln!("REPORT {r}");
        saw += 1;
    }
    eprintln!("SAW {saw}");
}

#[tokio::test]
async fn another_session_cannot_cancel_a_request() {
    let mut harness = Harness::start().await;
    let client = harness.connect().await;
    let intruder = harness.connect().await;
    let (id, mut stream) = start_streaming_call(&client, "hang", json!({})).await;
    assert_priming(&stream.expect_event().await);
    assert_eq!(progress_of(&stream.expect_event().await), Some(1));

    // Same request id, other session: keyed by (session, request id), never by id alone.
    let raw = intruder.cancel(id, "not mine").await;
    assert_eq!(raw.status, 202, "{raw}");
    harness.expect_no_report(Duration::from_millis(300)).await;
    assert!(
        stream
            .next_event_within(Duration::from_millis(100))
            .await
            .is_err(),
        "the stream is still open and quiet"
    );

    client.cancel(id, "mine").await;
    assert_eq!(harness.next_report().await, "dropped");
    assert_ends_without_response(&mut stream, id).await;
}

#[tokio::test]
async fn cancelling_an_unknown_or_finished_request_is_harmless() {
    let mut harness = Harness::start().await;
    let client = harness.connect().await;
    let done = client
        .request(
            "tools/call",
            json!({ "name": "echo", "arguments": { "text": "x" } }),
        )
        .await;
    let finished_id = done["id"].as_i64().unwrap();
    for id in [finished_id, 424_242] {
        let raw = client.cancel(id, "too late").await;
        assert_eq!(raw.status, 202, "{raw}");
        assert!(raw.body.is_empty());
    }
    // Malformed cancellations are notifications too: accepted, ignored.
    for params in [json!({}), json!({ "requestId": [1] })] {
        let raw = client.notify("notifications/cancelled", params).await;
        assert_eq!(raw.status, 202, "{raw}");
    }
    harness.expect_no_report(Duration::from_millis(50)).await;
    assert_eq!(client.request("ping", None).await["result"], json!({}));
}

/// DELETE ends the session everywhere at once: its running handlers are cancelled too, rather
/// than running on (or waiting up to `client_request_timeout` for an answer) for nobody.
#[tokio::test]
async fn deleting_the_session_stops_its_running_handlers() {
    let mut harness = Harness::start().await;
    let client = harness.connect().await;
    let (_, mut stream) = start_streaming_call(&client, "hang", json!({})).await;
    assert_priming(&stream.expect_event().await);
    assert_eq!(progress_of(&stream.expect_event().await), Some(1));

    let raw = client.delete().await;
    assert!(raw.status.is_success(), "{raw}");
    stream.expect_end().await;
    assert_eq!(
        harness.next_report().await,
        "dropped",
        "the handler of a deleted session was stopped"
    );
}
