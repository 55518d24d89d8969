//! `Last-Event-ID` as the transport reads it (`EventId::from_str`): never a panic, and exactly
//! the ids the server could have minted are accepted — `<stream>.<seq>` with a stream id of
//! 16 to 80 characters of the URL-safe alphabet and the canonical decimal form of a `u64` —
//! each of which displays back as the same text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::ids::EventId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<EventId>() {
        Ok(id) => {
            assert!(mintable(text), "{text:?} accepted");
            assert_eq!(id.to_string(), text);
            assert_eq!(id.to_string().parse::<EventId>().as_ref(), Ok(&id));
        }
        Err(_) => assert!(!mintable(text), "{text:?} refused"),
    }
});

/// The grammar of minted event ids, written independently of the parser.
fn mintable(text: &str) -> bool {
    let Some((stream, seq)) = text.split_once('.') else {
        return false;
    };
    let stream_ok = (16..=80).contains(&stream.len())
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let seq_ok = seq.parse::<u64>().is_ok_and(|n| n.to_string() == seq);
    stream_ok && seq_ok
}
