//! `Last-Event-ID` as the transport reads it (`LastEventId::from_str`, on the grammar of
//! `shoal_wire::event_id`, which must agree with it): never a panic, and
//! exactly the ids the server could have minted are accepted — a stored event's `<stream>.<seq>`
//! or a priming event's `<stream>.<seq>.<nonce>`, with a stream id of 16 to 80 characters of the
//! URL-safe alphabet, the canonical decimal form of a `u64`, and a nonce of 16 characters of that
//! alphabet — each of which displays back as the same text. `EventId` and `PrimingId` each
//! accept exactly their own form, and a priming id names the position written before its nonce.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::ids::{EventId, LastEventId, PrimingId};
use shoal_wire::event_id::{EventIdRef, LastEventIdRef, PrimingIdRef};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let stored = text.parse::<EventId>();
    let primed = text.parse::<PrimingId>();
    // The borrowed grammar accepts exactly what the owned ids do, and displays it back.
    let grammar = LastEventIdRef::parse(text);
    assert_eq!(
        grammar.is_ok(),
        text.parse::<LastEventId>().is_ok(),
        "{text:?}"
    );
    assert_eq!(EventIdRef::parse(text).is_ok(), stored.is_ok(), "{text:?}");
    assert_eq!(
        PrimingIdRef::parse(text).is_ok(),
        primed.is_ok(),
        "{text:?}"
    );
    if let Ok(id) = grammar {
        assert_eq!(id.to_string(), text);
    }
    match text.parse::<LastEventId>() {
        Ok(id) => {
            assert_eq!(id.to_string(), text);
            assert_eq!(id.to_string().parse::<LastEventId>().as_ref(), Ok(&id));
            match &id {
                LastEventId::Event(event) => {
                    assert!(mintable_stored(text), "{text:?} accepted");
                    assert_eq!(stored.as_ref(), Ok(event));
                    assert!(primed.is_err(), "{text:?} read as both forms");
                }
                LastEventId::Priming(priming) => {
                    assert!(mintable_priming(text), "{text:?} accepted");
                    assert_eq!(primed.as_ref(), Ok(priming));
                    assert!(stored.is_err(), "{text:?} read as both forms");
                    let position = text.rsplit_once('.').map(|(position, _)| position);
                    assert_eq!(Some(id.position().to_string().as_str()), position);
                }
            }
        }
        Err(_) => {
            assert!(
                !mintable_stored(text) && !mintable_priming(text),
                "{text:?} refused"
            );
            assert!(stored.is_err() && primed.is_err(), "{text:?} half read");
        }
    }
});

fn url_safe(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The grammar of stored events' ids, written independently of the parser.
fn mintable_stored(text: &str) -> bool {
    let Some((stream, seq)) = text.split_once('.') else {
        return false;
    };
    let stream_ok = (16..=80).contains(&stream.len()) && url_safe(stream);
    let seq_ok = seq.parse::<u64>().is_ok_and(|n| n.to_string() == seq);
    stream_ok && seq_ok
}

/// The grammar of priming events' ids: a stored event's id (the position) and a nonce.
fn mintable_priming(text: &str) -> bool {
    let Some((position, nonce)) = text.rsplit_once('.') else {
        return false;
    };
    mintable_stored(position) && nonce.len() == 16 && url_safe(nonce)
}
