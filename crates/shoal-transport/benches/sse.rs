//! SSE framing: what every event of a streamed reply or of the standalone stream costs on its
//! way out, from a stored event (position + serialized JSON-RPC message) to the bytes of one
//! frame (`id: <stream>.<seq>`, optional `retry`, `data: <message>`). The event id is built as
//! the stream reader builds it, cloning the stream id, so that cost is included.
//!
//! Messages are single-line: `serde_json` escapes every newline inside a string, so a frame
//! never needs more than one `data:` line, whatever the message holds.
//!
//! `cargo bench -p shoal-transport --bench sse` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use shoal_core::ids::{EventId, NodeId, StreamId};
use shoal_core::jsonrpc::{RequestId, encode_notification, encode_result};
use shoal_core::model::CallToolResult;
use shoal_wire::sse::event as encode_sse_event;

/// Prose with what JSON must escape (quotes, newlines, tabs) and some non-ASCII.
fn text_of(bytes: usize) -> String {
    const LINE: &str = "The \"quick\" brown fox jumps over the lazy dog\tà la café — line\n";
    LINE.repeat(bytes.div_ceil(LINE.len()))
}

fn frame(c: &mut Criterion) {
    let stream = StreamId::for_node(&NodeId::new("shoal-7d9f8c6b5-x2k4q"));
    let progress: Arc<str> = encode_notification(
        "notifications/progress",
        &json!({"progressToken": "p-7", "progress": 3.0, "total": 10.0, "message": "step 3 of 10"}),
    )
    .into();
    let result: Arc<str> = encode_result(
        &RequestId::Number(7),
        &CallToolResult::text(text_of(8 * 1024)),
    )
    .into();
    let retry = Some(Duration::from_millis(1000));
    let frames: [(&str, Option<Duration>, Arc<str>); 3] = [
        ("priming", retry, "".into()),
        ("progress_notification", None, progress),
        ("tools_call_result_8KiB", None, result),
    ];

    let mut group = c.benchmark_group("sse/frame");
    for (name, retry, data) in &frames {
        let bytes = encode_sse_event(
            &EventId {
                stream: stream.clone(),
                seq: 42,
            },
            *retry,
            data,
        );
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let id = EventId {
                    stream: black_box(&stream).clone(),
                    seq: 42,
                };
                encode_sse_event(&id, *retry, black_box(data))
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // Short by default so that a full run takes seconds; command-line flags override.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = frame
}
criterion_main!(benches);
