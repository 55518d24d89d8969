//! A JSON message through the SSE framing the transport uses (`shoal_wire::sse::event`) and back
//! through the parser every client of ours uses (`shoal_wire::SseParser`), the bytes cut into
//! chunks anywhere: the client reads the same events — ids, `retry` and data — whatever the
//! message and the cuts.
//!
//! The input is the message: parsed as JSON and written compactly, as the engine writes every
//! message (input that is not JSON becomes a JSON string). Compact JSON never holds a line
//! break, which the framing relies on (one `data:` line per event): the target checks it.
//! The rest — stream id, writer node, sequence number, priming nonce, `retry`, the cuts — is
//! drawn from a hash of the input, so seeds stay plain JSON files and every mutation moves the
//! cuts.

#![no_main]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use shoal_core::ids::{EventId, NodeId, PrimingId};
use shoal_wire::sse::{SseEvent, SseItem, SseParser, event as encode_sse_event};

/// Writer nodes as configured: none, short, sanitized, and longer than a node id may be.
const NODES: [&str; 4] = [
    "",
    "replica-1",
    "pod.a:1/é",
    "a-host-name-much-longer-than-sixty-four-characters-as-some-clouds-make-them",
];

fuzz_target!(|message: &[u8]| {
    let mut draw = Draw::new(message);
    let mut random = [0u8; 12];
    random.iter_mut().for_each(|b| *b = draw.next() as u8);
    let node = NodeId::new(NODES[draw.below(NODES.len())]);
    let stream = format!("{}{}", URL_SAFE_NO_PAD.encode(random), node.as_str());
    let seq = match draw.below(4) {
        0 => 0,
        1 => u64::MAX,
        _ => draw.next(),
    };
    // Drawn rather than minted (`PrimingId::new`), so that one input always makes one frame.
    let mut nonce = [0u8; 12];
    nonce.iter_mut().for_each(|b| *b = draw.next() as u8);
    let nonce = URL_SAFE_NO_PAD.encode(nonce);
    let priming: PrimingId = format!("{stream}.{seq}.{nonce}")
        .parse()
        .unwrap_or_else(|e| panic!("{stream:?}: a minted stream id must make priming ids: {e}"));
    let next = EventId {
        stream: priming.position.stream.clone(),
        seq: seq.wrapping_add(1),
    };
    let data = match serde_json::from_slice::<Value>(message) {
        Ok(value) => serde_json::to_string(&value),
        Err(_) => serde_json::to_string(&String::from_utf8_lossy(message)),
    }
    .unwrap_or_else(|e| panic!("a JSON value must serialize: {e}"));
    assert!(
        !data.contains(['\r', '\n']),
        "compact JSON with a line break: {data:?}"
    );

    let retry_ms = draw.next() % 100_000;
    let retry = Duration::from_millis(retry_ms);
    // A disconnect event carries `retry` too.
    let message_retry = (draw.below(2) == 0).then_some(retry);
    let mut framed = encode_sse_event(&priming, Some(retry), "").to_vec();
    framed.extend_from_slice(&encode_sse_event(&next, message_retry, &data));

    let mut cuts: Vec<usize> = (0..draw.below(8))
        .map(|_| draw.below(framed.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut parser = SseParser::new();
    let mut items = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([framed.len()]) {
        parser.push(&framed[start..cut]);
        items.extend(std::iter::from_fn(|| parser.next_item()));
        start = cut;
    }
    parser.finish();
    items.extend(std::iter::from_fn(|| parser.next_item()));

    let expected = vec![
        SseItem::Event(SseEvent {
            id: Some(priming.to_string()),
            event: None,
            data: Some(String::new()),
            retry: Some(retry_ms),
        }),
        SseItem::Event(SseEvent {
            id: Some(next.to_string()),
            event: None,
            data: Some(data),
            retry: message_retry.map(|_| retry_ms),
        }),
    ];
    assert_eq!(items, expected);
    assert_eq!(parser.last_event_id(), Some(next.to_string().as_str()));
});

/// Deterministic numbers from the input: FNV-1a of the bytes seeds a SplitMix64 sequence.
struct Draw(u64);

impl Draw {
    fn new(bytes: &[u8]) -> Self {
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Draw(hash)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49eb_133b_111f);
        z ^ (z >> 31)
    }

    /// A number below `n` (> 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
