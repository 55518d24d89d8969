//! Three `shoal serve` replicas on one Redis behind a round-robin proxy that sends every
//! request to another replica than the one before: a session, a resumed stream, an answer to
//! an elicitation and a DELETE each cross replicas, and must behave as on one server; and a
//! stream resumed again and again, on one replica after another, never sends one event id twice.
//!
//! Real processes and a real `redis-server` (from `PATH`, or `$SHOAL_REDIS_SERVER`), started by
//! each test; every wait is bounded.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shoal_testkit::client::message;
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::proxy::Served;
use shoal_testkit::{McpClient, SseEvent};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
/// A test that takes longer than this has hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

async fn cluster() -> ShoalCluster {
    ShoalCluster::builder(SHOAL).replicas(3).start().await
}

/// Runs `test` with a bound on its time.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}

/// `method path -> replica status`, one per line, for failure messages.
fn describe(served: &[Served]) -> String {
    served
        .iter()
        .map(|s| format!("{} {} -> {} {}", s.method, s.path, s.name, s.status))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_alternates(served: &[Served]) {
    for pair in served.windows(2) {
        assert_ne!(
            pair[0].backend,
            pair[1].backend,
            "two consecutive requests on one replica:\n{}",
            describe(served)
        );
    }
}

/// The `progress` of a `notifications/progress` event (a whole number).
fn progress_of(event: &SseEvent) -> Option<u64> {
    let message = event.json()?;
    if message["method"] != "notifications/progress" {
        return None;
    }
    let progress = message["params"]["progress"].as_f64()?;
    // Whole numbers only: `count` reports 1, 2, 3…
    (progress.fract() == 0.0 && progress >= 0.0).then_some(progress as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_across_replicas_on_every_request() {
    bounded(async {
        let cluster = cluster().await;
        let client = McpClient::connect(cluster.url()).await;
        let tools = client.request("tools/list", None).await;
        let names: Vec<&str> = tools["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("tools/list failed: {tools}"))
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(names.contains(&"echo"), "{names:?}");
        for i in 0..6 {
            let text = format!("hello {i}");
            let result = client.call_tool("echo", json!({ "text": text })).await;
            assert_eq!(result["content"][0]["text"], text, "{result}");
        }

        let served = cluster.proxy().served();
        // initialize, initialized, tools/list, six calls.
        assert_eq!(served.len(), 9, "{}", describe(&served));
        assert!(
            served.iter().all(|s| s.status.is_success()),
            "{}",
            describe(&served)
        );
        assert_alternates(&served);
        for replica in 0..cluster.len() {
            assert!(
                served.iter().any(|s| s.backend == replica),
                "{} served nothing:\n{}",
                cluster.node_id(replica),
                describe(&served)
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_stream_resumes_on_another_replica() {
    bounded(async {
        let cluster = cluster().await;
        let client = McpClient::connect(cluster.url()).await;
        const TO: u64 = 5;
        let id = client.next_id();
        let call = message(
            id,
            "tools/call",
            Some(json!({
                "name": "count",
                "arguments": { "to": TO, "interval_ms": 300 },
                "_meta": { "progressToken": "count-1" }
            })),
        );
        let mut stream = client.post(&call).await.into_stream();
        let first = loop {
            let event = stream.expect_event().await;
            if let Some(progress) = progress_of(&event) {
                break progress;
            }
            assert!(
                event.json().is_none(),
                "only progress before the first progress: {event:?}"
            );
        };
        assert_eq!(first, 1);
        let last_seen = stream
            .last_event_id()
            .expect("the progress event has an id")
            .to_owned();
        let post_replica = cluster.proxy().served().last().unwrap().backend;
        // The network breaks while the handler keeps counting on its replica.
        drop(stream);

        let mut resumed = client.get_stream(Some(&last_seen)).await;
        let get_replica = cluster.proxy().served().last().unwrap().backend;
        assert_ne!(
            get_replica,
            post_replica,
            "{}",
            describe(&cluster.proxy().served())
        );
        let events = resumed.collect_events().await;
        let messages: Vec<Value> = events.iter().filter_map(SseEvent::json).collect();
        let progress: Vec<u64> = events.iter().filter_map(progress_of).collect();
        assert_eq!(
            progress,
            (2..=TO).collect::<Vec<_>>(),
            "the rest of the progress, in order, once: {messages:#?}"
        );
        let responses: Vec<&Value> = messages
            .iter()
            .filter(|m| m.get("method").is_none())
            .collect();
        assert_eq!(responses.len(), 1, "one response: {messages:#?}");
        assert_eq!(responses[0]["id"], json!(id));
        assert_eq!(responses[0]["result"]["content"][0]["text"], TO.to_string());
        assert!(
            messages.last().is_some_and(|m| m.get("method").is_none()),
            "the response comes last: {messages:#?}"
        );
        assert_alternates(&cluster.proxy().served());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_reaches_the_standalone_stream_held_by_another_replica() {
    bounded(async {
        let cluster = cluster().await;
        let client = McpClient::connect(cluster.url()).await;
        let mut standalone = client.get_stream(None).await;
        let get_replica = cluster.proxy().served().last().unwrap().backend;
        let mut crossed = 0;
        for n in 0..3 {
            let text = format!("announcement {n}");
            let result = client.call_tool("announce", json!({ "text": text })).await;
            assert_eq!(result["content"][0]["text"], "announced", "{result}");
            if cluster.proxy().served().last().unwrap().backend != get_replica {
                crossed += 1;
            }
            let message = loop {
                if let Some(message) = standalone.expect_event().await.json() {
                    break message;
                }
            };
            assert_eq!(message["method"], "notifications/message");
            assert_eq!(message["params"]["data"], json!(text), "{message}");
        }
        assert!(crossed >= 2, "{}", describe(&cluster.proxy().served()));
    })
    .await;
}

/// A client of replica `i` alone, carrying on `session`'s session.
fn on_replica(cluster: &ShoalCluster, i: usize, session: &McpClient) -> McpClient {
    let mut client = McpClient::new(cluster.replica_url(i));
    client.set_session_id(session.session_id().map(str::to_owned));
    client.set_protocol_version(session.protocol_version().map(str::to_owned));
    client
}

/// The id of a priming event (an id and empty data), checked to name `<stream>.<seq>.<nonce>`
/// at `position` (`<stream>.<seq>`).
fn primed_at(event: &SseEvent, position: &str) -> String {
    assert!(event.is_priming(), "a priming event first: {event:?}");
    let id = event.id.clone().unwrap();
    let (named, nonce) = id.rsplit_once('.').unwrap();
    assert_eq!(
        named, position,
        "the priming event names its position: {id}"
    );
    assert!(!nonce.is_empty(), "{id}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_on_each_replica_never_repeats_an_event_id() {
    bounded(async {
        let cluster = cluster().await;
        let client = McpClient::connect(cluster.url()).await;
        let announce = |text: &'static str| {
            let client = &client;
            async move {
                let result = client.call_tool("announce", json!({ "text": text })).await;
                assert_eq!(result["content"][0]["text"], "announced", "{result}");
            }
        };
        // Every id and every message the client reads, over all its connections.
        let mut ids = Vec::new();
        let mut texts = Vec::new();
        let mut read = |event: SseEvent| {
            ids.push(event.id.clone().expect("every event has an id"));
            if let Some(message) = event.json() {
                assert_eq!(message["method"], "notifications/message", "{message}");
                texts.push(message["params"]["data"].as_str().unwrap().to_owned());
            }
            event
        };

        // Replica 0: the standalone stream opens; the connection breaks after its priming.
        let mut stream = on_replica(&cluster, 0, &client).get_stream(None).await;
        let priming = read(stream.expect_event().await);
        let standalone = priming.stream().unwrap().to_owned();
        let at = |seq: u64| format!("{standalone}.{seq}");
        let first_priming = primed_at(&priming, &at(0));
        drop(stream);
        announce("one").await;
        announce("two").await;

        // Replica 1 resumes from that priming id; its connection breaks after its own.
        let mut stream = on_replica(&cluster, 1, &client)
            .get_stream(Some(&first_priming))
            .await;
        let second_priming = primed_at(&read(stream.expect_event().await), &at(0));
        drop(stream);

        // Replica 2 resumes from the second priming id (the same position): one event, then
        // the connection breaks.
        let mut stream = on_replica(&cluster, 2, &client)
            .get_stream(Some(&second_priming))
            .await;
        primed_at(&read(stream.expect_event().await), &at(0));
        let one = read(stream.expect_event().await);
        assert_eq!(one.id, Some(at(1)));
        drop(stream);
        announce("three").await;

        // Replica 0 again resumes from that real event: the rest.
        let mut stream = on_replica(&cluster, 0, &client)
            .get_stream(Some(&at(1)))
            .await;
        primed_at(&read(stream.expect_event().await), &at(1));
        for seq in [2, 3] {
            assert_eq!(read(stream.expect_event().await).id, Some(at(seq)));
        }
        drop(stream);

        // Replica 1 opens the stream afresh: primed at the tail, whose event came already.
        let mut stream = on_replica(&cluster, 1, &client).get_stream(None).await;
        primed_at(&read(stream.expect_event().await), &at(3));
        announce("four").await;
        assert_eq!(read(stream.expect_event().await).id, Some(at(4)));

        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "an id sent twice: {ids:#?}");
        assert_eq!(
            texts,
            ["one", "two", "three", "four"],
            "every event once, in order"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_elicitation_answered_through_another_replica_completes() {
    bounded(async {
        let cluster = cluster().await;
        let client = McpClient::new(cluster.url()).on_request(|method, params| {
            assert_eq!(method, "elicitation/create", "{params}");
            Ok(json!({ "action": "accept", "content": { "answer": "blue" } }))
        });
        let mut client = client;
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
        assert!(
            exchange
                .messages
                .iter()
                .any(|m| m["method"] == "elicitation/create"),
            "{:#?}",
            exchange.messages
        );
        let served = cluster.proxy().served();
        // The call's POST (its stream carries the question and the result), then the answer.
        assert_eq!(served.len(), 2, "{}", describe(&served));
        assert_ne!(
            served[0].backend,
            served[1].backend,
            "{}",
            describe(&served)
        );
        assert_eq!(served[1].status, StatusCode::ACCEPTED);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_deleted_through_one_replica_is_gone_on_the_next() {
    bounded(async {
        let cluster = cluster().await;
        let client = McpClient::connect(cluster.url()).await;
        let result = client.call_tool("echo", json!({ "text": "before" })).await;
        assert_eq!(result["content"][0]["text"], "before");

        let deleted = client.delete().await;
        assert!(deleted.status.is_success(), "DELETE: {deleted}");
        let after = client
            .post_raw(
                message(
                    client.next_id(),
                    "tools/call",
                    Some(json!({
                        "name": "echo", "arguments": { "text": "after" }
                    })),
                ),
                |_| {},
            )
            .await;
        assert_eq!(after.status, StatusCode::NOT_FOUND, "after DELETE: {after}");

        let served = cluster.proxy().served();
        let n = served.len();
        assert_eq!(served[n - 2].method, "DELETE");
        assert_ne!(
            served[n - 2].backend,
            served[n - 1].backend,
            "{}",
            describe(&served)
        );
        // Every replica forgot it, not only the next one.
        for _ in 0..cluster.len() {
            let raw = client.get_raw(|_| {}).await;
            assert_eq!(raw.status, StatusCode::NOT_FOUND, "GET after DELETE: {raw}");
        }
        assert_alternates(&cluster.proxy().served());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_replicas_dying_and_coming_back() {
    bounded(async {
        let mut cluster = cluster().await;
        let client = McpClient::connect(cluster.url()).await;

        // Killed without warning: the proxy's connects are refused until its probe notices.
        cluster.kill(1);
        for i in 0..4 {
            let result = client
                .call_tool("echo", json!({ "text": i.to_string() }))
                .await;
            assert_eq!(result["content"][0]["text"], i.to_string());
        }
        // Stopped cleanly: it drains, exits 0, and is skipped.
        let status = cluster.terminate(2).await;
        assert!(status.success(), "SIGTERM exit status {status}");
        cluster.proxy().take_served();
        for i in 0..3 {
            let result = client
                .call_tool("echo", json!({ "text": i.to_string() }))
                .await;
            assert_eq!(result["content"][0]["text"], i.to_string());
        }
        let served = cluster.proxy().take_served();
        assert!(
            served.iter().all(|s| s.backend == 0),
            "{}",
            describe(&served)
        );

        // Back on the same ports, they serve the same session again.
        cluster.restart(1).await;
        cluster.restart(2).await;
        for i in 0..6 {
            let result = client
                .call_tool("echo", json!({ "text": i.to_string() }))
                .await;
            assert_eq!(result["content"][0]["text"], i.to_string());
        }
        let served = cluster.proxy().take_served();
        assert_alternates(&served);
        for replica in 0..cluster.len() {
            assert!(
                served.iter().any(|s| s.backend == replica),
                "{} served nothing after the restarts:\n{}",
                cluster.node_id(replica),
                describe(&served)
            );
        }
    })
    .await;
}
