//! Redis stalls (a TCP fault proxy stops forwarding, connections held open) while a handler is
//! writing its reply stream: the append times out, and the request is answered with a clean
//! "request abandoned" error once Redis answers again, after a gapless prefix of its progress,
//! instead of leaving the stream open and unanswered for ever.
//!
//! Real `shoal serve`, a real `redis-server` behind `TcpFaultProxy`; every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::redis::RedisServer;
use shoal_testkit::tcp_fault::TcpFaultProxy;
use shoal_testkit::{McpClient, SseStream};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
/// Longer than the replica's Redis command timeout (2 s by default).
const STALL: Duration = Duration::from_secs(3);
/// Bound on the answer once Redis answers again.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

#[derive(Debug, Default)]
struct Received {
    progress: Vec<u64>,
    responses: Vec<Value>,
    last_event_id: Option<String>,
}

impl Received {
    /// Reads `stream` until a response, its end, or `deadline`.
    async fn read(&mut self, stream: &mut SseStream, deadline: Instant) {
        while self.responses.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some(event)) = stream.next_event_within(left).await else {
                return;
            };
            if let Some(id) = &event.id {
                self.last_event_id = Some(id.clone());
            }
            let Some(message) = event.json() else {
                continue;
            };
            if message["method"] == "notifications/progress" {
                self.progress
                    .push(message["params"]["progress"].as_f64().unwrap() as u64);
            } else if message.get("id").is_some() {
                self.responses.push(message);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_stream_whose_append_fails_in_a_redis_stall_ends_with_an_abandoned_error() {
    let redis = RedisServer::start().await;
    let fault = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
    let cluster = ShoalCluster::builder(SHOAL)
        .replicas(1)
        .redis_url(fault.url())
        .start()
        .await;
    let client = McpClient::connect(cluster.replica_url(0)).await;
    let id = client.next_id();
    let call = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": "count",
            "arguments": { "to": 1000, "interval_ms": 50 },
            "_meta": { "progressToken": "stalled" }
        }
    });
    let mut received = Received::default();
    let mut post = client.post(&call).await.into_stream();
    let started = Instant::now() + Duration::from_secs(10);
    while received.progress.len() < 2 && Instant::now() < started {
        let mut one = Received::default();
        one.read(&mut post, Instant::now() + Duration::from_millis(200))
            .await;
        received.progress.extend(one.progress);
        received.last_event_id = one.last_event_id.or(received.last_event_id);
    }
    assert!(received.progress.len() >= 2, "no progress: {received:?}");

    fault.pause();
    tokio::time::sleep(STALL).await;
    fault.resume();
    let resumed = Instant::now();

    // The open stream may end or break; resume it with Last-Event-ID until the answer.
    let deadline = resumed + ANSWER_WITHIN;
    received.read(&mut post, deadline).await;
    drop(post);
    let client = client.with_timeout(Duration::from_secs(5));
    while received.responses.is_empty() && Instant::now() < deadline {
        let from = received.last_event_id.clone().expect("an event id");
        let mut get = client.get_stream(Some(&from)).await;
        received.read(&mut get, deadline).await;
    }
    let answered_in = resumed.elapsed();
    println!(
        "answered {answered_in:?} after the stall ended; progress {}..={} before it",
        received.progress.first().unwrap_or(&0),
        received.progress.last().unwrap_or(&0)
    );
    assert_eq!(received.responses.len(), 1, "{received:?}");
    let response = &received.responses[0];
    assert_eq!(response["jsonrpc"], "2.0", "{response}");
    assert_eq!(response["id"], json!(id), "{response}");
    assert_eq!(response["error"]["code"], json!(-32603), "{response}");
    let text = response["error"]["message"].as_str().unwrap_or_default();
    assert!(text.contains("abandoned"), "{response}");
    let n = received.progress.len() as u64;
    assert_eq!(
        received.progress,
        (1..=n).collect::<Vec<_>>(),
        "{received:?}"
    );
    assert!(n < 1000, "the handler finished although Redis stalled");
}
