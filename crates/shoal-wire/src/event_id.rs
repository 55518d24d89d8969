//! The grammar of Shoal's SSE event ids, read and written without copying.
//!
//! An event id names its stream, so that any replica can resume the right log from
//! `Last-Event-ID` alone:
//!
//! - a stored event's id is `<stream>.<seq>` ([`EventIdRef`]): the position of the event in its
//!   stream's log, sequence 0 naming the start of the stream;
//! - a priming event's id is `<stream>.<seq>.<nonce>` ([`PrimingIdRef`]): the position its
//!   connection starts after, plus a nonce of that connection, since many connections can start
//!   at one position and no id may be sent twice in a session.
//!
//! A stream id is 16 to 80 characters of the URL-safe base64 alphabet (`A–Z a–z 0–9 - _`), the
//! sequence number the canonical decimal form of a `u64` (no sign, no leading zero), the nonce
//! 16 characters of that alphabet. None of the parts holds a dot, so the dots tell the forms
//! apart. Only these forms parse, each in its one text form: the server never mints another,
//! and one position must have one id.
//!
//! The engine mints ids (the random parts) and keeps them in owned types built on this
//! grammar. Clients that trust the server and only need the parts of an id it sent use the
//! lenient [`stream_part`] and [`seq_part`].

use std::fmt;

/// The shortest stream id: its random part alone.
pub const STREAM_MIN_LEN: usize = 16;
/// The longest stream id: its random part and the longest node id (64 characters).
pub const STREAM_MAX_LEN: usize = 80;
/// The length of a priming event's nonce.
pub const NONCE_LEN: usize = 16;
/// The longest id a client can send back: a priming event's, with the longest stream id and
/// sequence number.
pub const MAX_LEN: usize = STREAM_MAX_LEN + 1 + U64_MAX_DIGITS + 1 + NONCE_LEN;

const U64_MAX_DIGITS: usize = u64::MAX.ilog10() as usize + 1;

/// Why a text is not an event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventIdError {
    /// Longer than any id ([`MAX_LEN`]).
    #[error("event id longer than {MAX_LEN} bytes")]
    TooLong,
    /// Neither `<stream>.<seq>` nor `<stream>.<seq>.<nonce>`, as the parser expected.
    #[error("event id without the expected number of parts")]
    Form,
    /// The stream part is not 16 to 80 URL-safe characters.
    #[error("malformed stream id in event id")]
    Stream,
    /// The sequence part is not a `u64` in canonical decimal.
    #[error("malformed sequence number in event id")]
    Seq,
    /// The nonce part is not 16 URL-safe characters.
    #[error("malformed nonce in event id")]
    Nonce,
}

/// Whether `text` is a stream id: 16 to 80 characters of the URL-safe base64 alphabet.
pub fn is_stream_id(text: &str) -> bool {
    (STREAM_MIN_LEN..=STREAM_MAX_LEN).contains(&text.len()) && is_url_safe(text)
}

/// Whether `text` is a priming nonce: 16 characters of the URL-safe base64 alphabet.
pub fn is_nonce(text: &str) -> bool {
    text.len() == NONCE_LEN && is_url_safe(text)
}

/// Whether every byte of `text` is in the URL-safe base64 alphabet (`A–Z a–z 0–9 - _`).
pub fn is_url_safe(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads a sequence number in its canonical decimal form only.
fn parse_seq(text: &str) -> Result<u64, EventIdError> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(EventIdError::Seq);
    }
    // All digits: only a number too large for u64 fails.
    text.parse().map_err(|_| EventIdError::Seq)
}

/// The stream part of an event id, stored (`<stream>.<seq>`) or priming
/// (`<stream>.<seq>.<nonce>`), without validating anything: for clients reading the ids a
/// server sent.
pub fn stream_part(id: &str) -> Option<&str> {
    Some(id.split_once('.')?.0)
}

/// The sequence part of an event id, stored or priming (the position it names), validating
/// only that it is a number: for clients reading the ids a server sent.
pub fn seq_part(id: &str) -> Option<u64> {
    let (_, rest) = id.split_once('.')?;
    rest.split('.').next()?.parse().ok()
}

/// A stored event's id, `<stream>.<seq>`: the position of an event in its stream's log.
/// Sequence 0 is the start of the stream, where no event is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventIdRef<'a> {
    /// The stream id.
    pub stream: &'a str,
    /// The position, counting from 1; 0 names the start of the stream.
    pub seq: u64,
}

// === impl EventIdRef ===

impl<'a> EventIdRef<'a> {
    /// Reads `<stream>.<seq>`.
    ///
    /// # Errors
    ///
    /// When `text` is not exactly that form.
    pub fn parse(text: &'a str) -> Result<Self, EventIdError> {
        let (stream, seq) = text.split_once('.').ok_or(EventIdError::Form)?;
        if !is_stream_id(stream) {
            return Err(EventIdError::Stream);
        }
        Ok(EventIdRef {
            stream,
            seq: parse_seq(seq)?,
        })
    }
}

impl fmt::Display for EventIdRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.stream, self.seq)
    }
}

/// A priming event's id, `<stream>.<seq>.<nonce>`: the position a resumption from it replays
/// after, and the nonce of the one connection it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrimingIdRef<'a> {
    /// The position the priming event stands for.
    pub position: EventIdRef<'a>,
    /// The connection's nonce.
    pub nonce: &'a str,
}

// === impl PrimingIdRef ===

impl<'a> PrimingIdRef<'a> {
    /// Reads `<stream>.<seq>.<nonce>`.
    ///
    /// # Errors
    ///
    /// When `text` is not exactly that form.
    pub fn parse(text: &'a str) -> Result<Self, EventIdError> {
        // The nonce has no dot, so the last one ends the position.
        let (position, nonce) = text.rsplit_once('.').ok_or(EventIdError::Form)?;
        if !is_nonce(nonce) {
            return Err(EventIdError::Nonce);
        }
        Ok(PrimingIdRef {
            position: EventIdRef::parse(position)?,
            nonce,
        })
    }
}

impl fmt::Display for PrimingIdRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.position, self.nonce)
    }
}

/// What a client sends back in `Last-Event-ID`: a stored event's id or a priming event's. Both
/// name a position to resume after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LastEventIdRef<'a> {
    /// A stored event's id: resume after that event.
    Event(EventIdRef<'a>),
    /// A priming event's id: resume after the position it stood for.
    Priming(PrimingIdRef<'a>),
}

// === impl LastEventIdRef ===

impl<'a> LastEventIdRef<'a> {
    /// Reads either form; nothing longer than [`MAX_LEN`] is looked at.
    ///
    /// # Errors
    ///
    /// When `text` is neither form.
    pub fn parse(text: &'a str) -> Result<Self, EventIdError> {
        if text.len() > MAX_LEN {
            return Err(EventIdError::TooLong);
        }
        match text.bytes().filter(|&b| b == b'.').count() {
            1 => EventIdRef::parse(text).map(LastEventIdRef::Event),
            2 => PrimingIdRef::parse(text).map(LastEventIdRef::Priming),
            _ => Err(EventIdError::Form),
        }
    }

    /// The position to resume after.
    pub fn position(&self) -> EventIdRef<'a> {
        match self {
            LastEventIdRef::Event(id) => *id,
            LastEventIdRef::Priming(id) => id.position,
        }
    }
}

impl fmt::Display for LastEventIdRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LastEventIdRef::Event(id) => id.fmt(f),
            LastEventIdRef::Priming(id) => id.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    const STREAM: &str = "aaaaaaaaaaaaaaaa";

    #[test]
    fn stored_ids_read_the_canonical_form_only() {
        let id = EventIdRef::parse("aaaaaaaaaaaaaaaa.42").unwrap();
        assert_eq!(
            id,
            EventIdRef {
                stream: STREAM,
                seq: 42
            }
        );
        assert_eq!(id.to_string(), "aaaaaaaaaaaaaaaa.42");
        for (bad, why) in [
            ("", EventIdError::Form),
            (".", EventIdError::Stream),
            ("abc.1", EventIdError::Stream),
            ("aaaaaaaaaaaaaaaa.", EventIdError::Seq),
            ("aaaaaaaaaaaaaaaa.-1", EventIdError::Seq),
            ("aaaaaaaaaaaaaaaa.+1", EventIdError::Seq),
            ("aaaaaaaaaaaaaaaa.1x", EventIdError::Seq),
            (
                "aaaaaaaaaaaaaaaa.99999999999999999999999",
                EventIdError::Seq,
            ),
            ("aaaaaaaaaaaaaaaa.01", EventIdError::Seq),
            ("aaaaaaaaaaaaaaaa.00", EventIdError::Seq),
            ("aaaaaaaaaaaaaaa!.1", EventIdError::Stream),
        ] {
            assert_eq!(EventIdRef::parse(bad), Err(why), "{bad:?}");
        }
        let longest_stream = "a".repeat(STREAM_MAX_LEN);
        assert!(EventIdRef::parse(&format!("{longest_stream}.0")).is_ok());
        assert!(EventIdRef::parse(&format!("{longest_stream}a.0")).is_err());
    }

    #[test]
    fn priming_ids_name_a_position() {
        let text = "aaaaaaaaaaaaaaaa.0.AAAAAAAAAAAA-_z9";
        let id = PrimingIdRef::parse(text).unwrap();
        assert_eq!(id.position.to_string(), "aaaaaaaaaaaaaaaa.0");
        assert_eq!(id.nonce, "AAAAAAAAAAAA-_z9");
        assert_eq!(id.to_string(), text);
        // A stored event's id is not a priming event's, nor the other way round.
        assert!(EventIdRef::parse(text).is_err());
        assert!(PrimingIdRef::parse("aaaaaaaaaaaaaaaa.0").is_err());
    }

    #[test]
    fn last_event_ids_read_both_forms_and_nothing_else() {
        let stored = LastEventIdRef::parse("aaaaaaaaaaaaaaaa.3").unwrap();
        assert_eq!(stored.position().seq, 3);
        assert_eq!(stored.to_string(), "aaaaaaaaaaaaaaaa.3");
        let primed = LastEventIdRef::parse("aaaaaaaaaaaaaaaa.0.AAAAAAAAAAAA-_z9").unwrap();
        assert_eq!(primed.position().to_string(), "aaaaaaaaaaaaaaaa.0");
        let longest = format!("{}.{}.{}", "a".repeat(80), u64::MAX, "n".repeat(16));
        assert_eq!(longest.len(), MAX_LEN);
        assert_eq!(
            LastEventIdRef::parse(&longest).unwrap().position().seq,
            u64::MAX
        );
        for bad in [
            "",
            "..",
            "aaaaaaaaaaaaaaaa.1.",
            "aaaaaaaaaaaaaaaa..AAAAAAAAAAAAAAAA",
            ".1.AAAAAAAAAAAAAAAA",
            "aaaaaaaaaaaaaaaa.01.AAAAAAAAAAAAAAAA",
            "aaaaaaaaaaaaaaaa.1x.AAAAAAAAAAAAAAAA",
            "aaaaaaaaaaaaaaaa.1.AAAAAAAAAAAAAAA",
            "aaaaaaaaaaaaaaaa.1.AAAAAAAAAAAAAAAAA",
            "aaaaaaaaaaaaaaaa.1.AAAAAAAAAAAAAAA!",
            "aaaaaaaaaaaaaaaa.1.AAAAAAAAAAAAAAAA.",
            "aaaaaaaaaaaaaaaa.1.AAAAAAAAAAAAAAAA.1",
            "abc.1.AAAAAAAAAAAAAAAA",
        ] {
            assert!(LastEventIdRef::parse(bad).is_err(), "{bad:?} parsed");
            assert!(PrimingIdRef::parse(bad).is_err(), "{bad:?} parsed");
        }
        let too_long = format!("{}.{}.{}", "a".repeat(81), 1, "n".repeat(16));
        assert!(LastEventIdRef::parse(&too_long).is_err());
        assert_eq!(
            LastEventIdRef::parse(&format!("{longest}0")),
            Err(EventIdError::TooLong)
        );
    }

    #[test]
    fn lenient_parts_split_without_validating() {
        assert_eq!(stream_part("abc.7"), Some("abc"));
        assert_eq!(seq_part("abc.7"), Some(7));
        assert_eq!(stream_part("abc.7.n0nc3"), Some("abc"));
        assert_eq!(seq_part("abc.7.n0nc3"), Some(7));
        assert_eq!(stream_part("abc"), None);
        assert_eq!(seq_part("abc.x"), None);
    }

    proptest! {
        #[test]
        fn ids_display_back_as_they_parse(
            stream in "[A-Za-z0-9_-]{16,80}",
            seq in any::<u64>(),
            nonce in "[A-Za-z0-9_-]{16}",
        ) {
            let stored = format!("{stream}.{seq}");
            let primed = format!("{stored}.{nonce}");
            prop_assert_eq!(LastEventIdRef::parse(&stored).unwrap().to_string(), stored.clone());
            prop_assert_eq!(LastEventIdRef::parse(&primed).unwrap().to_string(), primed.clone());
            prop_assert_eq!(
                PrimingIdRef::parse(&primed).unwrap().position,
                EventIdRef::parse(&stored).unwrap()
            );
            prop_assert_eq!(seq_part(&primed), Some(seq));
            prop_assert_eq!(stream_part(&primed), Some(stream.as_str()));
        }
    }
}
