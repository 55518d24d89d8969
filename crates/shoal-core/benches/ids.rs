//! The identifiers every request and every SSE event touches: event ids (`<stream>.<seq>`)
//! written into each SSE frame and read back from `Last-Event-ID`, session ids read from
//! `Mcp-Session-Id`, and the random ids minted per session and per streamed reply.
//!
//! `cargo bench -p shoal-core --bench ids` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shoal_core::ids::{EventId, NodeId, SessionId, StreamId};

fn event_id(c: &mut Criterion) {
    let node = NodeId::new("shoal-7d9f8c6b5-x2k4q");
    let streams = [
        ("standalone_stream", StreamId::random()),
        ("reply_stream", StreamId::for_node(&node)),
    ];
    let mut group = c.benchmark_group("ids/event_id");
    for (name, stream) in streams {
        let id = EventId { stream, seq: 1_234 };
        let text = id.to_string();
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| black_box(&id).to_string())
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| black_box(text.as_str()).parse::<EventId>())
        });
    }
    group.finish();
}

fn session_id(c: &mut Criterion) {
    let mut group = c.benchmark_group("ids/session_id");
    let text = SessionId::random().to_string();
    group.bench_function("decode", |b| {
        b.iter(|| black_box(text.as_str()).parse::<SessionId>())
    });
    group.bench_function("random", |b| b.iter(SessionId::random));
    group.finish();

    let node = NodeId::new("shoal-7d9f8c6b5-x2k4q");
    let mut group = c.benchmark_group("ids/stream_id");
    group.bench_function("random", |b| b.iter(StreamId::random));
    group.bench_function("for_node", |b| {
        b.iter(|| StreamId::for_node(black_box(&node)))
    });
    group.finish();
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
    targets = event_id, session_id
}
criterion_main!(benches);
