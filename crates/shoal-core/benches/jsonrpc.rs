//! JSON-RPC framing on the hot path of every POST: parsing the body the transport receives
//! (`Message::parse`, then the engine's `params_as`) and encoding what the server writes
//! (`encode_result`, `encode_notification`, `encode_error`), for an echo-sized message and an
//! ~8 KiB one. Throughput is the size of the body parsed or produced.
//!
//! `cargo bench -p shoal-core --bench jsonrpc` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use shoal_core::jsonrpc::{
    INVALID_PARAMS, Message, RequestId, encode_error, encode_notification, encode_result, rpc_error,
};
use shoal_core::model::CallToolResult;

/// The size of the large payloads: a tool argument or result of about 8 KiB.
const LARGE_TEXT_BYTES: usize = 8 * 1024;

/// The shape `tools/call` params are read into (the engine's own type is private).
#[derive(Deserialize)]
struct CallParams {
    name: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
}

/// Prose with what JSON must escape (quotes, newlines, tabs) and some non-ASCII, so that
/// escaping and UTF-8 validation are part of the cost.
fn text_of(bytes: usize) -> String {
    const LINE: &str = "The \"quick\" brown fox jumps over the lazy dog\tà la café — line\n";
    LINE.repeat(bytes.div_ceil(LINE.len()))
}

/// A `tools/call` request body as a client sends it.
fn tools_call_body(text: &str) -> Vec<u8> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "echo",
            "arguments": { "text": text },
            "_meta": { "progressToken": "p-7" }
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn parse(c: &mut Criterion) {
    let tools_calls = [
        ("tools_call_small", tools_call_body("hello")),
        (
            "tools_call_8KiB",
            tools_call_body(&text_of(LARGE_TEXT_BYTES)),
        ),
    ];
    let others: [(&str, &[u8]); 3] = [
        (
            "notification_cancelled",
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"the user gave up"}}"#,
        ),
        (
            "response_elicitation",
            br#"{"jsonrpc":"2.0","id":"node-a1b2c3.17","result":{"action":"accept","content":{"ok":true}}}"#,
        ),
        // Batches are refused (Streamable HTTP since 2025-06-18): the cost of saying so.
        (
            "batch_refused",
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
        ),
    ];

    let mut group = c.benchmark_group("jsonrpc/parse");
    let bodies = tools_calls
        .iter()
        .map(|(name, body)| (*name, body.as_slice()))
        .chain(others);
    for (name, body) in bodies {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| b.iter(|| Message::parse(black_box(body))));
    }
    group.finish();

    // What the engine does next with a `tools/call`: reads its params into the call's shape.
    let mut group = c.benchmark_group("jsonrpc/parse_with_params");
    for (name, body) in &tools_calls {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| match Message::parse(black_box(body)) {
                Ok(Message::Request(request)) => match request.params_as::<CallParams>() {
                    Ok(params) => params.name.len() + params.arguments.map_or(0, |a| a.len()),
                    Err(_) => 0,
                },
                _ => 0,
            })
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let id = RequestId::Number(7);
    let results = [
        ("tools_call_small", CallToolResult::text("hello")),
        (
            "tools_call_8KiB",
            CallToolResult::text(text_of(LARGE_TEXT_BYTES)),
        ),
    ];

    // The engine's path: the handler's result becomes a `Value`, which is then encoded.
    let mut group = c.benchmark_group("jsonrpc/encode_result");
    for (name, result) in &results {
        group.throughput(Throughput::Bytes(encode_result(&id, result).len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let value = serde_json::to_value(black_box(result)).unwrap_or_default();
                encode_result(&id, &value)
            })
        });
    }
    group.finish();

    // The same results encoded from their type, without the intermediate `Value`.
    let mut group = c.benchmark_group("jsonrpc/encode_result_typed");
    for (name, result) in &results {
        group.throughput(Throughput::Bytes(encode_result(&id, result).len() as u64));
        group.bench_function(*name, |b| b.iter(|| encode_result(&id, black_box(result))));
    }
    group.finish();

    // Built as `RequestContext::progress` and `::log` build them.
    let progress = json!({
        "progressToken": "p-7", "progress": 3.0, "total": 10.0, "message": "step 3 of 10"
    });
    let message = json!({
        "level": "info", "logger": "announce", "data": text_of(LARGE_TEXT_BYTES)
    });
    let notifications = [
        ("progress", "notifications/progress", &progress),
        ("message_8KiB", "notifications/message", &message),
    ];
    let mut group = c.benchmark_group("jsonrpc/encode_notification");
    for (name, method, params) in notifications {
        group.throughput(Throughput::Bytes(
            encode_notification(method, params).len() as u64
        ));
        group.bench_function(name, |b| {
            b.iter(|| encode_notification(method, black_box(params)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("jsonrpc/encode_error");
    let unknown_tool = rpc_error(INVALID_PARAMS, "unknown tool: nope");
    group.throughput(Throughput::Bytes(
        encode_error(Some(&id), &unknown_tool).len() as u64,
    ));
    group.bench_function("invalid_params", |b| {
        b.iter(|| encode_error(Some(&id), black_box(&unknown_tool)))
    });
    // A body that is not JSON: the failed parse, its error object and its encoding.
    let truncated: &[u8] = br#"{"jsonrpc":"2.0","id":7,"#;
    group.throughput(Throughput::Bytes(truncated.len() as u64));
    group.bench_function("parse_error_from_body", |b| {
        b.iter(|| match Message::parse(black_box(truncated)) {
            Err(error) => encode_error(None, &error.to_rpc_error()),
            Ok(_) => String::new(),
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short by default so that a full run takes about a minute; command-line flags override.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse, encode
}
criterion_main!(benches);
