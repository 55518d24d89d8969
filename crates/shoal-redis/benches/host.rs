//! The session host operations on the hot path, on the Redis host against a `redis-server`
//! this benchmark starts on a free loopback port, and on the in-memory host, side by side:
//!
//! - `host/session`: the session lookup every request with a session id makes.
//! - `host/append`: one event appended to a stream log (each streamed message, progress
//!   notification and streamed result).
//! - `host/read`: a resume (`subscribe` from position 0) that reads a whole finished stream
//!   of 16 messages and a final result; on Redis one `open` and one `read` script. Another
//!   reader holds the stream's wake-up channel, so the Redis figure leaves out the first
//!   reader's `SUBSCRIBE`.
//!
//! Redis figures are single-client round trips over loopback: latency, not capacity.
//!
//! `cargo bench -p shoal-redis --bench host` (add `-- --quick` for a short run). Needs
//! `redis-server` on `PATH` or in `$SHOAL_REDIS_SERVER`.

// Set-up failures abort the benchmark, as in a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde_json::json;
use shoal_core::host::{
    MemoryHost, MemoryHostConfig, ReadFrom, SessionHost, SharedHost, StreamEvent,
};
use shoal_core::ids::{NodeId, SessionId, StreamId};
use shoal_core::jsonrpc::{RequestId, encode_notification, encode_result};
use shoal_core::model::CallToolResult;
use shoal_core::session::SessionRecord;
use shoal_redis::{RedisHost, RedisHostConfig};
use shoal_testkit::redis::RedisServer;
use tokio::runtime::Runtime;

/// Messages in the stream `host/read` resumes, before its final result.
const READ_MESSAGES: u64 = 16;

/// Prose with what JSON must escape (quotes, newlines, tabs) and some non-ASCII.
fn text_of(bytes: usize) -> String {
    const LINE: &str = "The \"quick\" brown fox jumps over the lazy dog\tà la café — line\n";
    LINE.repeat(bytes.div_ceil(LINE.len()))
}

/// A session as `initialize` creates it.
fn record() -> SessionRecord {
    SessionRecord::new(
        Some("alice".into()),
        "2025-11-25",
        json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}}),
        json!({"name": "bench-client", "version": "1.0.0"}),
    )
}

/// The hosts under test, each with a session.
struct Hosts {
    /// Keeps the server alive for as long as the benchmark runs.
    _redis: RedisServer,
    hosts: Vec<(&'static str, SharedHost, SessionId)>,
}

impl Hosts {
    async fn start() -> Self {
        let redis = RedisServer::start().await;
        let config = RedisHostConfig {
            key_prefix: format!("bench{}", std::process::id()),
            ..RedisHostConfig::new(redis.url(), NodeId::new("bench"))
        };
        let redis_host: SharedHost = Arc::new(
            RedisHost::connect(config)
                .await
                .expect("connects to the benchmark's redis-server"),
        );
        let memory_host: SharedHost = Arc::new(MemoryHost::new(
            NodeId::new("bench"),
            MemoryHostConfig::default(),
        ));
        let mut hosts = Vec::new();
        for (name, host) in [("memory", memory_host), ("redis", redis_host)] {
            let record = record();
            host.create_session(&record, 0).await.expect("a session");
            hosts.push((name, host, record.id));
        }
        Hosts {
            _redis: redis,
            hosts,
        }
    }
}

fn host_operations(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a Tokio runtime");
    let Hosts { _redis, hosts } = runtime.block_on(Hosts::start());

    let mut group = c.benchmark_group("host/session");
    for (name, host, session) in &hosts {
        group.bench_function(*name, |b| {
            b.to_async(&runtime).iter(|| async {
                let record = host.session(session).await.expect("a session lookup");
                assert!(record.is_some(), "the session exists");
            })
        });
    }
    group.finish();

    let progress: Arc<str> = encode_notification(
        "notifications/progress",
        &json!({"progressToken": "p-7", "progress": 3.0, "total": 10.0, "message": "step 3 of 10"}),
    )
    .into();
    let large: Arc<str> = encode_notification(
        "notifications/message",
        &json!({"level": "info", "logger": "announce", "data": text_of(8 * 1024)}),
    )
    .into();
    // No byte throughput: the memory host keeps a shared pointer to the message, so bytes per
    // second would compare nothing.
    let mut group = c.benchmark_group("host/append");
    for (size, message) in [("progress", &progress), ("message_8KiB", &large)] {
        for (name, host, session) in &hosts {
            // One long stream per host and size; both hosts cap it (1024 events by default).
            let stream = StreamId::random();
            group.bench_function(BenchmarkId::new(*name, size), |b| {
                b.to_async(&runtime).iter(|| async {
                    host.append(session, &stream, StreamEvent::Message(message.clone()))
                        .await
                        .expect("an append")
                })
            });
        }
    }
    group.finish();

    let result: Arc<str> =
        encode_result(&RequestId::Number(7), &CallToolResult::text("done 16")).into();
    let mut group = c.benchmark_group("host/read");
    group.throughput(Throughput::Elements(READ_MESSAGES + 1));
    for (name, host, session) in &hosts {
        let stream = StreamId::random();
        let (held, events) = runtime.block_on(async {
            for _ in 0..READ_MESSAGES {
                host.append(session, &stream, StreamEvent::Message(progress.clone()))
                    .await
                    .expect("an append");
            }
            host.append(session, &stream, StreamEvent::Last(result.clone()))
                .await
                .expect("the final append");
            let held = host
                .subscribe(session, &stream, ReadFrom::Tail)
                .await
                .expect("a reader that holds the wake-up channel");
            let events = resume(host.as_ref(), session, &stream).await;
            (held, events)
        });
        assert_eq!(events, READ_MESSAGES + 1, "{name}: the whole stream");
        group.bench_function(BenchmarkId::new(*name, "whole_stream_17_events"), |b| {
            b.to_async(&runtime)
                .iter(|| resume(host.as_ref(), session, &stream))
        });
        drop(held);
    }
    group.finish();
}

/// Resumes `stream` from its start and reads it to its end; the number of events read.
async fn resume(host: &dyn SessionHost, session: &SessionId, stream: &StreamId) -> u64 {
    let subscription = host
        .subscribe(session, stream, ReadFrom::After(0))
        .await
        .expect("a subscription");
    let mut events = subscription.events;
    let mut read = 0;
    while let Some(event) = events.next().await {
        event.expect("an event");
        read += 1;
    }
    read
}

fn config() -> Criterion {
    // Short by default so that a full run takes well under a minute; command-line flags
    // override.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = host_operations
}
criterion_main!(benches);
