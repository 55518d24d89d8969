//! Resumption with `Last-Event-ID` over real HTTP: a POST stream whose connection broke gets
//! the rest of its events and its response exactly once; resuming from the priming event
//! replays everything; another session's stream, or a stream nobody minted, is refused without
//! a single event; the standalone GET stream resumes too.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, WATCHED, assert_priming, progress_of, split_id, start_streaming_call};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use shoal_testkit::client::LAST_EVENT_ID;
use shoal_testkit::{McpClient, SseEvent};

/// The JSON-RPC messages of `events` (priming events carry none).
fn messages(events: &[SseEvent]) -> Vec<Value> {
    events.iter().filter_map(SseEvent::json).collect()
}

fn seqs(events: &[SseEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.seq().expect("an event id"))
        .collect()
}

#[tokio::test]
async fn a_broken_post_stream_resumes_with_the_rest_and_the_response_exactly_once() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let (id, mut stream) =
        start_streaming_call(&client, "steps", json!({ "count": 6, "delay_ms": 40 })).await;
    let priming = stream.expect_event().await;
    assert_priming(&priming);
    let first = stream.expect_event().await;
    assert_eq!(progress_of(&first), Some(1));
    let (stream_id, seq) = split_id(&first);
    assert_eq!(
        seq, 2,
        "position 1 holds the request id, for the server's own use"
    );
    let last_seen = stream.last_event_id().unwrap().to_owned();
    assert_eq!(last_seen, format!("{stream_id}.2"));
    // The network breaks while the handler is still working.
    drop(stream);

    let mut resumed = client.get_stream(Some(&last_seen)).await;
    let priming = resumed.expect_event().await;
    assert_eq!(
        assert_priming(&priming),
        last_seen,
        "a resumed stream is primed at the point it resumes from"
    );
    let events = resumed.collect_events().await;
    assert!(
        events
            .iter()
            .all(|e| e.stream() == Some(stream_id.as_str()))
    );
    assert_eq!(
        seqs(&events),
        [3, 4, 5, 6, 7, 8],
        "no gap, no duplicate: {events:#?}"
    );
    let progress: Vec<u64> = events.iter().filter_map(progress_of).collect();
    assert_eq!(progress, [2, 3, 4, 5, 6]);
    let response = events.last().unwrap().json().unwrap();
    assert_eq!(response["id"], json!(id));
    assert_eq!(response["result"]["content"][0]["text"], "done 6");
    assert_eq!(
        messages(&events)
            .iter()
            .filter(|m| m.get("id") == Some(&json!(id)))
            .count(),
        1,
        "the response comes once"
    );
    // `collect_events` returned: the stream ended after the response.
}

#[tokio::test]
async fn resuming_a_finished_stream_from_the_middle_replays_only_the_rest() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let (id, mut stream) =
        start_streaming_call(&client, "steps", json!({ "count": 3, "delay_ms": 1 })).await;
    let all = stream.collect_events().await;
    assert_eq!(seqs(&all), [0, 2, 3, 4, 5]);
    let (stream_id, _) = split_id(&all[0]);

    let mut resumed = client.get_stream(Some(&format!("{stream_id}.3"))).await;
    assert_eq!(
        assert_priming(&resumed.expect_event().await),
        format!("{stream_id}.3")
    );
    let rest = resumed.collect_events().await;
    assert_eq!(rest, all[3..].to_vec());
    assert_eq!(rest.last().unwrap().json().unwrap()["id"], json!(id));

    // After the response, nothing is left but the end.
    let mut tail = client.get_stream(Some(&format!("{stream_id}.5"))).await;
    assert_priming(&tail.expect_event().await);
    tail.expect_end().await;
}

#[tokio::test]
async fn resuming_from_the_priming_id_replays_everything() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let (_, mut stream) =
        start_streaming_call(&client, "steps", json!({ "count": 3, "delay_ms": 5 })).await;
    let original = stream.collect_events().await;
    assert_eq!(seqs(&original), [0, 2, 3, 4, 5]);
    let priming_id = original[0].id.clone().unwrap();

    // Twice: a resumption does not consume the log.
    for _ in 0..2 {
        let mut replay = client.get_stream(Some(&priming_id)).await;
        let events = replay.collect_events().await;
        assert_eq!(events, original, "the same ids and data, in the same order");
    }
}

#[tokio::test]
async fn last_event_id_of_another_session_is_400_without_any_event() {
    let harness = Harness::start().await;
    let owner = harness.connect().await;
    let (_, mut stream) =
        start_streaming_call(&owner, "steps", json!({ "count": 2, "delay_ms": 1 })).await;
    let owner_events = stream.collect_events().await;
    let (post_stream, _) = split_id(&owner_events[0]);
    let mut standalone = owner.get_stream(None).await;
    let (standalone_stream, _) = split_id(&standalone.expect_event().await);

    let other = harness.connect().await;
    let foreign = [
        format!("{post_stream}.0"),
        format!("{post_stream}.1"),
        format!("{standalone_stream}.0"),
    ];
    for last in &foreign {
        let raw = get_with_last_event_id(&other, last).await;
        raw.assert_rpc_error(400, -32600, "Last-Event-ID names no stream of this session");
        assert!(!raw.text().contains("progress"), "no foreign data: {raw}");
    }
    // Same answer for a principal-less session asking after an authenticated one's stream.
    let alice = harness.connect_as("alice").await;
    let (_, mut alice_stream) =
        start_streaming_call(&alice, "steps", json!({ "count": 1, "delay_ms": 1 })).await;
    let (alice_post, _) = split_id(&alice_stream.expect_event().await);
    get_with_last_event_id(&other, &format!("{alice_post}.0"))
        .await
        .assert_rpc_error(400, -32600, "Last-Event-ID names no stream of this session");

    // The owner still can.
    let mut own = owner.get_stream(Some(&format!("{post_stream}.0"))).await;
    assert_eq!(own.collect_events().await, owner_events);
}

#[tokio::test]
async fn last_event_id_of_an_unknown_stream_is_400() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    for last in [
        "AAAAAAAAAAAAAAAA.0",
        "zzzzzzzzzzzzzzzz.5",
        "A-_A-_A-_A-_A-_A.1",
    ] {
        get_with_last_event_id(&client, last)
            .await
            .assert_rpc_error(400, -32600, "Last-Event-ID names no stream of this session");
    }
}

#[tokio::test]
async fn last_event_id_ahead_of_its_stream_is_400() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let (_, mut stream) =
        start_streaming_call(&client, "steps", json!({ "count": 1, "delay_ms": 1 })).await;
    let events = stream.collect_events().await;
    let (stream_id, _) = split_id(&events[0]);
    get_with_last_event_id(&client, &format!("{stream_id}.99"))
        .await
        .assert_rpc_error(400, -32600, "Last-Event-ID is ahead of its stream");
}

async fn get_with_last_event_id(client: &McpClient, last: &str) -> shoal_testkit::RawResponse {
    client
        .get_raw(|h| {
            h.insert(LAST_EVENT_ID, HeaderValue::from_str(last).unwrap());
        })
        .await
}

#[tokio::test]
async fn the_standalone_stream_resumes_after_a_disconnect() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let response = client
        .request("resources/subscribe", json!({ "uri": WATCHED }))
        .await;
    assert_eq!(response["result"], json!({}));
    let notifier = harness.engine.notifier();

    let mut stream = client.get_stream(None).await;
    let priming = stream.expect_event().await;
    assert_priming(&priming);
    let (standalone, seq) = split_id(&priming);
    assert_eq!(seq, 0);

    notifier.resource_updated(WATCHED).await.unwrap();
    notifier.tools_list_changed().await.unwrap();
    let updated = stream.expect_event().await;
    assert_eq!(updated.id, Some(format!("{standalone}.1")));
    assert_eq!(
        updated.json().unwrap(),
        json!({
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": { "uri": WATCHED }
        })
    );
    let changed = stream.expect_event().await;
    assert_eq!(changed.id, Some(format!("{standalone}.2")));
    assert_eq!(
        changed.json().unwrap()["method"],
        "notifications/tools/list_changed"
    );
    // The client saw event 2 arrive but lost it with the connection.
    drop(stream);

    let mut resumed = client.get_stream(Some(&format!("{standalone}.1"))).await;
    assert_eq!(
        assert_priming(&resumed.expect_event().await),
        format!("{standalone}.1")
    );
    assert_eq!(
        resumed.expect_event().await,
        changed,
        "replayed from the log"
    );

    // Live again: a resource nobody subscribed to is not announced; list changes are.
    notifier.resource_updated("test://elsewhere").await.unwrap();
    notifier.resources_list_changed().await.unwrap();
    let live = resumed.expect_event().await;
    assert_eq!(live.id, Some(format!("{standalone}.3")));
    assert_eq!(
        live.json().unwrap()["method"],
        "notifications/resources/list_changed"
    );
    assert!(
        resumed
            .next_event_within(Duration::from_millis(300))
            .await
            .is_err(),
        "nothing else, and no duplicate"
    );
}

#[tokio::test]
async fn a_stream_the_handler_closes_is_resumed_where_it_stopped() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let (id, mut stream) = start_streaming_call(&client, "pause", json!({})).await;
    let events = stream.collect_events().await;
    assert_eq!(seqs(&events), [0, 2, 3], "{events:#?}");
    assert_eq!(progress_of(&events[1]), Some(1));
    let disconnect = &events[2];
    assert!(
        disconnect.is_priming(),
        "a bare id to resume from: {disconnect:?}"
    );
    assert_eq!(disconnect.retry, Some(1000));

    let mut resumed = client.get_stream(stream.last_event_id()).await;
    assert_eq!(
        assert_priming(&resumed.expect_event().await),
        disconnect.id.clone().unwrap()
    );
    let rest = resumed.collect_events().await;
    assert_eq!(seqs(&rest), [4, 5]);
    assert_eq!(progress_of(&rest[0]), Some(2));
    let response = rest[1].json().unwrap();
    assert_eq!(response["id"], json!(id));
    assert_eq!(response["result"]["content"][0]["text"], "resumed");
}

#[tokio::test]
async fn last_event_id_no_longer_retained_is_400() {
    let harness = Harness::start_with_host(
        shoal_transport::TransportConfig::default(),
        shoal_core::host::MemoryHostConfig {
            max_events_per_stream: 3,
            ..shoal_core::host::MemoryHostConfig::default()
        },
    )
    .await;
    let client = harness.connect().await;
    let (_, mut stream) =
        start_streaming_call(&client, "steps", json!({ "count": 4, "delay_ms": 20 })).await;
    let events = stream.collect_events().await;
    assert_eq!(
        events.last().and_then(SseEvent::seq),
        Some(6),
        "{events:#?}"
    );
    let (stream_id, _) = split_id(&events[0]);
    // Positions 1..=3 (the request id, progress 1 and 2) are trimmed: progress 3 and 4 and
    // the response are kept.
    for seq in [0, 1, 2] {
        get_with_last_event_id(&client, &format!("{stream_id}.{seq}"))
            .await
            .assert_rpc_error(400, -32600, "no longer retained");
    }
    let mut tail = client.get_stream(Some(&format!("{stream_id}.3"))).await;
    assert_priming(&tail.expect_event().await);
    let rest = tail.collect_events().await;
    assert_eq!(seqs(&rest), [4, 5, 6]);
    assert_eq!(rest, events[3..].to_vec());
}
