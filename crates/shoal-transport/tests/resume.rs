//! Resumption with `Last-Event-ID` over real HTTP: a POST stream whose connection broke gets
//! the rest of its events and its response exactly once; resuming from the priming event
//! replays everything; another session's stream, or a stream nobody minted, is refused without
//! a single event; the standalone GET stream resumes too; and no event id is sent twice, priming
//! events' included, however often a stream is resumed.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, WATCHED, assert_priming, progress_of, split_id, start_streaming_call};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use shoal_core::host::StreamEvent;
use shoal_core::ids::{LastEventId, SessionId};
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

/// Asserts that `event` is a priming event that stands for `position` (a stored event's id,
/// `<stream>.<seq>`) under an id of its own, which the server reads back; returns that id.
fn assert_primed_at(event: &SseEvent, position: &str) -> String {
    let id = assert_priming(event);
    let parsed: LastEventId = id
        .parse()
        .unwrap_or_else(|e| panic!("the server cannot read back {id:?}: {e}"));
    assert!(
        matches!(parsed, LastEventId::Priming(_)),
        "a priming event's id is not a stored event's: {id}"
    );
    assert_eq!(parsed.position().to_string(), position, "{id}");
    id
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
    // A resumed stream is primed at the point it resumes from.
    assert_primed_at(&priming, &last_seen);
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
    assert_primed_at(&resumed.expect_event().await, &format!("{stream_id}.3"));
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
    let (stream_id, _) = split_id(&original[0]);
    let mut primings = HashSet::from([priming_id.clone()]);

    // Twice: a resumption does not consume the log.
    for _ in 0..2 {
        let mut replay = client.get_stream(Some(&priming_id)).await;
        let events = replay.collect_events().await;
        let primed = assert_primed_at(&events[0], &format!("{stream_id}.0"));
        assert!(primings.insert(primed), "a priming id sent twice");
        assert_eq!(
            events[1..],
            original[1..],
            "the same ids and data, in the same order"
        );
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
    let replayed = own.collect_events().await;
    assert_primed_at(&replayed[0], &format!("{post_stream}.0"));
    assert_eq!(replayed[1..], owner_events[1..]);
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

#[tokio::test]
async fn a_priming_id_of_the_wrong_shape_or_stream_is_400() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let mut standalone = client.get_stream(None).await;
    let priming = assert_priming(&standalone.expect_event().await);
    drop(standalone);
    let (position, nonce) = priming.rsplit_once('.').unwrap();
    let (stream, _) = position.split_once('.').unwrap();
    for last in [
        format!("{position}."),
        format!("{position}.{}", &nonce[1..]),
        format!("{position}.{nonce}A"),
        format!("{position}.{}!", &nonce[1..]),
        format!("{priming}.1"),
        format!("{stream}.00.{nonce}"),
        format!("{stream}..{nonce}"),
    ] {
        get_with_last_event_id(&client, &last)
            .await
            .assert_rpc_error(400, -32600, "malformed Last-Event-ID");
    }
    get_with_last_event_id(&client, &format!("AAAAAAAAAAAAAAAA.0.{nonce}"))
        .await
        .assert_rpc_error(400, -32600, "Last-Event-ID names no stream of this session");
    let other = harness.connect().await;
    get_with_last_event_id(&other, &priming)
        .await
        .assert_rpc_error(400, -32600, "Last-Event-ID names no stream of this session");
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
    assert_primed_at(&resumed.expect_event().await, &format!("{standalone}.1"));
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
    assert_primed_at(
        &resumed.expect_event().await,
        disconnect.id.as_deref().unwrap(),
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

/// What a client saw over all its connections to one stream.
#[derive(Default)]
struct Seen {
    ids: Vec<String>,
    messages: Vec<Value>,
}

impl Seen {
    fn absorb(&mut self, event: &SseEvent) {
        self.ids
            .push(event.id.clone().expect("every event has an id"));
        self.messages.extend(event.json());
    }

    /// Asserts that no id came twice, over every connection.
    fn assert_ids_unique(&self) {
        let unique: HashSet<&String> = self.ids.iter().collect();
        assert_eq!(
            unique.len(),
            self.ids.len(),
            "an id sent twice: {:#?}",
            self.ids
        );
    }
}

/// A notification for the standalone stream.
fn note(text: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": { "level": "info", "data": text }
    })
}

#[tokio::test]
async fn no_event_id_is_sent_twice_however_often_a_stream_resumes() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let session: SessionId = client.session_id().unwrap().parse().unwrap();
    let host = harness.engine.host().clone();
    let mut seen = Seen::default();

    // Connection 1 opens the standalone stream and breaks after its priming event.
    let mut stream = client.get_stream(None).await;
    let priming = stream.expect_event().await;
    let first_priming = assert_priming(&priming);
    seen.absorb(&priming);
    drop(stream);
    let last: LastEventId = first_priming.parse().unwrap();
    let standalone = last.position().stream.clone();
    let at = |seq: u64| format!("{standalone}.{seq}");
    assert_eq!(last.position().seq, 0);

    // Handlers write to the stream while nobody holds it, as `notify_session` does.
    let append = |text: &'static str| {
        let (host, session, standalone) = (host.clone(), session.clone(), standalone.clone());
        async move {
            let message: Arc<str> = note(text).to_string().into();
            host.append(&session, &standalone, StreamEvent::Message(message))
                .await
                .unwrap()
        }
    };
    assert_eq!(append("one").await, 1);
    assert_eq!(append("two").await, 2);

    // Connection 2 resumes from the priming id and breaks after its own priming event.
    let mut stream = client.get_stream(Some(&first_priming)).await;
    let priming = stream.expect_event().await;
    let second_priming = assert_primed_at(&priming, &at(0));
    seen.absorb(&priming);
    drop(stream);

    // Connection 3 resumes from that priming id, the same position: breaks after one event.
    let mut stream = client.get_stream(Some(&second_priming)).await;
    let priming = stream.expect_event().await;
    assert_primed_at(&priming, &at(0));
    seen.absorb(&priming);
    let one = stream.expect_event().await;
    assert_eq!(one.id, Some(at(1)));
    seen.absorb(&one);
    drop(stream);
    assert_eq!(append("three").await, 3);

    // Connection 4 resumes from the real event: the rest, primed at that event's position.
    let mut stream = client.get_stream(Some(&at(1))).await;
    let priming = stream.expect_event().await;
    assert_primed_at(&priming, &at(1));
    seen.absorb(&priming);
    for seq in [2, 3] {
        let event = stream.expect_event().await;
        assert_eq!(event.id, Some(at(seq)));
        seen.absorb(&event);
    }
    drop(stream);

    // Connection 5 opens the stream afresh: primed at the tail, whose event came already.
    let mut stream = client.get_stream(None).await;
    let priming = stream.expect_event().await;
    assert_primed_at(&priming, &at(3));
    seen.absorb(&priming);
    assert_eq!(append("four").await, 4);
    let four = stream.expect_event().await;
    seen.absorb(&four);

    seen.assert_ids_unique();
    assert_eq!(
        seen.messages,
        ["one", "two", "three", "four"].map(note),
        "every event once, in order"
    );
}
