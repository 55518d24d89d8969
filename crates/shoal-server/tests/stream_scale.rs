//! Open SSE streams cost no Redis connection each: one replica holding many standalone streams
//! on the Redis host uses a small, fixed number of Redis connections.
//!
//! `SHOAL_TEST_STREAMS` sets how many streams to open (default 1,000; the figure in docs/performance.md
//! was measured with 10,000).

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use shoal_testkit::cluster::ShoalCluster;

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

fn redis_clients(port: u16) -> usize {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "client", "list"])
        .output()
        .unwrap();
    assert!(output.status.success(), "redis-cli client list failed");
    // Minus the redis-cli connection that asks.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
        - 1
}

async fn open_stream(client: &reqwest::Client, url: &str) -> reqwest::Response {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "scale", "version": "1"}}});
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut stream = client
        .get(url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let priming = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        priming.starts_with(b"id: "),
        "the stream is open and primed"
    );
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_share_a_bounded_number_of_redis_connections() {
    let streams: usize = std::env::var("SHOAL_TEST_STREAMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let cluster = ShoalCluster::builder(SHOAL).replicas(1).start().await;
    let port = cluster
        .redis()
        .expect("the harness started redis-server")
        .port();
    let url = cluster.replica_url(0);
    let before = redis_clients(port);

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let open: Vec<reqwest::Response> = futures::stream::iter(0..streams)
        .map(|_| open_stream(&client, &url))
        .buffer_unordered(64)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let during = redis_clients(port);
    println!(
        "{} open SSE streams on one replica (opened in {elapsed:?}): {during} Redis connections \
         ({before} before any stream)",
        open.len()
    );
    assert_eq!(open.len(), streams);
    assert!(
        during <= 4,
        "{during} Redis connections for {streams} streams: not bounded"
    );
    assert_eq!(during, before, "opening streams opened no Redis connection");
}
