//! Identifiers that cross process boundaries: sessions, streams, events and nodes.
//!
//! Session and stream ids are random (128 and 96 bits) and URL-safe base64, so they are visible
//! ASCII and unguessable. An event id names its stream, which makes it globally unique and lets
//! any replica resume the right log from `Last-Event-ID` alone: a stored event's id is
//! `<stream>.<seq>` ([`EventId`]); a priming event's is `<stream>.<seq>.<nonce>` ([`PrimingId`]),
//! the position it stands for plus a nonce of its own connection, since many connections can
//! start at one position and no id may be sent twice in a session. [`LastEventId`] reads either.
//!
//! The text forms of event ids (their grammar, parse and display) are `shoal_wire::event_id`'s,
//! shared with every client of ours; this module mints ids and owns them.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use shoal_wire::event_id::{self as grammar, EventIdRef, LastEventIdRef, PrimingIdRef};

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn is_token(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why an id from the outside world was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not a session id this server could have minted.
    #[error("malformed session id")]
    Session,
    /// Not an event id this server could have minted.
    #[error("malformed event id")]
    Event,
}

/// A session id: 128 random bits, 22 URL-safe characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    const LEN: usize = 22;

    /// Mints a fresh id.
    pub fn random() -> Self {
        SessionId(random_token(16))
    }

    /// The id as sent in `Mcp-Session-Id`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SessionId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        if is_token(s, Self::LEN) {
            Ok(SessionId(s.to_owned()))
        } else {
            Err(IdError::Session)
        }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream id: 96 random bits as 16 URL-safe characters, followed, for a request's reply
/// stream, by the id of the node whose handler writes it (so any replica can tell whether the
/// writer still lives). One per SSE stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    const RANDOM_LEN: usize = 16;
    const MAX_LEN: usize = Self::RANDOM_LEN + NodeId::MAX_LEN;

    /// Mints a fresh id (a standalone stream's: no writer node).
    pub fn random() -> Self {
        StreamId(random_token(12))
    }

    /// Mints a fresh id for a reply stream written by `node`.
    pub fn for_node(node: &NodeId) -> Self {
        StreamId(format!("{}{}", random_token(12), node.as_str()))
    }

    /// The node that writes this stream, for reply streams.
    pub fn writer(&self) -> Option<NodeId> {
        self.0
            .get(Self::RANDOM_LEN..)
            .filter(|node| !node.is_empty())
            .map(NodeId::new)
    }

    /// The id as it appears in event ids.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// The wire grammar's bounds are the minted ids': every id minted here must parse back.
const _: () = assert!(
    StreamId::RANDOM_LEN == grammar::STREAM_MIN_LEN
        && StreamId::MAX_LEN == grammar::STREAM_MAX_LEN
        && PrimingId::NONCE_LEN == 12 * 4 / 3
);

/// The position of an event in its stream's log, and the id of the stored event there:
/// `<stream>.<seq>`. Sequence 0 is the start of the stream, where no event is stored: resuming
/// from it replays the whole stream. Priming events stand for a position but are sent with a
/// [`PrimingId`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId {
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// Its position, counting from 1; 0 names the start of the stream.
    pub seq: u64,
}

impl EventId {
    /// The id as the wire grammar reads and writes it.
    fn as_ref(&self) -> EventIdRef<'_> {
        EventIdRef {
            stream: self.stream.as_str(),
            seq: self.seq,
        }
    }
}

impl From<EventIdRef<'_>> for EventId {
    fn from(id: EventIdRef<'_>) -> Self {
        EventId {
            stream: StreamId(id.stream.to_owned()),
            seq: id.seq,
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

impl FromStr for EventId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        // Only the canonical decimal form (no leading zero): the server never mints another,
        // and one position must have one id.
        EventIdRef::parse(s)
            .map(EventId::from)
            .map_err(|_| IdError::Event)
    }
}

/// The id of a priming event: `<stream>.<seq>.<nonce>`, the position a resumption from it
/// replays after, and 96 random bits minted for the one connection it opens. Each connection
/// is primed at the position it starts from, and many can start at one position (two
/// resumptions from one id; a GET after the last stored event, whose id is that position's), so
/// the position alone would send one id twice in a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrimingId {
    /// The position the priming event stands for.
    pub position: EventId,
    nonce: String,
}

impl PrimingId {
    const NONCE_LEN: usize = grammar::NONCE_LEN;

    /// A fresh id for a priming event at `position`.
    pub fn new(position: EventId) -> Self {
        PrimingId {
            position,
            nonce: random_token(12),
        }
    }
}

impl From<PrimingIdRef<'_>> for PrimingId {
    fn from(id: PrimingIdRef<'_>) -> Self {
        PrimingId {
            position: id.position.into(),
            nonce: id.nonce.to_owned(),
        }
    }
}

impl fmt::Display for PrimingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        PrimingIdRef {
            position: self.position.as_ref(),
            nonce: &self.nonce,
        }
        .fmt(f)
    }
}

impl FromStr for PrimingId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        PrimingIdRef::parse(s)
            .map(PrimingId::from)
            .map_err(|_| IdError::Event)
    }
}

/// What a client sends back in `Last-Event-ID`: the id of a stored event or of a priming event.
/// Both name a position to resume after; only ids the server could have minted parse, each in
/// its one text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LastEventId {
    /// A stored event's id: resume after that event.
    Event(EventId),
    /// A priming event's id: resume after the position it stood for, as its connection would
    /// have.
    Priming(PrimingId),
}

impl LastEventId {
    /// The longest id: a priming event's with the longest stream id and sequence number.
    pub const MAX_LEN: usize = grammar::MAX_LEN;

    /// The position to resume after.
    pub fn position(&self) -> &EventId {
        match self {
            LastEventId::Event(id) => id,
            LastEventId::Priming(id) => &id.position,
        }
    }
}

impl fmt::Display for LastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LastEventId::Event(id) => id.fmt(f),
            LastEventId::Priming(id) => id.fmt(f),
        }
    }
}

impl FromStr for LastEventId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        match LastEventIdRef::parse(s) {
            Ok(LastEventIdRef::Event(id)) => Ok(LastEventId::Event(id.into())),
            Ok(LastEventIdRef::Priming(id)) => Ok(LastEventId::Priming(id.into())),
            Err(_) => Err(IdError::Event),
        }
    }
}

/// The id of one server process ("node"); server→client request ids carry it so that the
/// client's answer can be routed back to the waiting handler from any replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    /// The longest node id: reply stream ids embed it, and an event id must stay short
    /// enough to parse back from `Last-Event-ID`.
    pub const MAX_LEN: usize = 64;

    /// A node id from configuration. Dots and colons are replaced: they separate the parts of
    /// the ids that embed a node id. Cut to [`NodeId::MAX_LEN`] characters.
    pub fn new(id: impl AsRef<str>) -> Self {
        NodeId(
            id.as_ref()
                .chars()
                .take(Self::MAX_LEN)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect(),
        )
    }

    /// `<prefix>-<random>`, the default for a process; a long prefix is cut so that the
    /// random part survives.
    pub fn with_random_suffix(prefix: &str) -> Self {
        let suffix = random_token(6);
        let prefix: String = prefix
            .chars()
            .take(Self::MAX_LEN - suffix.len() - 1)
            .collect();
        Self::new(format!("{prefix}-{suffix}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_differ() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<SessionId>().unwrap(), a);
        assert!(a.as_str().bytes().all(|c| (0x21..=0x7e).contains(&c)));
        assert!("short".parse::<SessionId>().is_err());
        assert!("aaaaaaaaaaaaaaaaaaaaa!".parse::<SessionId>().is_err());
    }

    #[test]
    fn event_ids_name_their_stream() {
        let id = EventId {
            stream: StreamId::random(),
            seq: 42,
        };
        let parsed: EventId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        for bad in [
            "",
            ".",
            "abc.1",
            "aaaaaaaaaaaaaaaa.",
            "aaaaaaaaaaaaaaaa.-1",
            "aaaaaaaaaaaaaaaa.1x",
            "aaaaaaaaaaaaaaaa.99999999999999999999999",
            "aaaaaaaaaaaaaaaa.01",
            "aaaaaaaaaaaaaaaa.00",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn priming_ids_name_a_position_and_differ() {
        let position = EventId {
            stream: StreamId::for_node(&NodeId::new("replica-1")),
            seq: 7,
        };
        let a = PrimingId::new(position.clone());
        let b = PrimingId::new(position.clone());
        assert_ne!(a, b);
        assert_ne!(a.to_string(), b.to_string());
        let text = a.to_string();
        let (named, nonce) = text.rsplit_once('.').unwrap();
        assert_eq!(named, position.to_string());
        assert_eq!(nonce.len(), PrimingId::NONCE_LEN);
        assert_eq!(text.parse::<PrimingId>().unwrap(), a);
        let last: LastEventId = text.parse().unwrap();
        assert_eq!(last, LastEventId::Priming(a.clone()));
        assert_eq!(last.position(), &position);
        assert_eq!(last.to_string(), text);
        // A stored event's id is not a priming event's, nor the other way round.
        assert!(text.parse::<EventId>().is_err());
        assert!(position.to_string().parse::<PrimingId>().is_err());
    }

    #[test]
    fn last_event_ids_read_both_forms_and_nothing_else() {
        let stored: LastEventId = "aaaaaaaaaaaaaaaa.3".parse().unwrap();
        assert_eq!(stored.position().seq, 3);
        assert_eq!(stored.to_string(), "aaaaaaaaaaaaaaaa.3");
        let primed: LastEventId = "aaaaaaaaaaaaaaaa.0.AAAAAAAAAAAA-_z9".parse().unwrap();
        assert_eq!(primed.position().to_string(), "aaaaaaaaaaaaaaaa.0");
        assert_eq!(primed.to_string(), "aaaaaaaaaaaaaaaa.0.AAAAAAAAAAAA-_z9");
        let longest = format!("{}.{}.{}", "a".repeat(80), u64::MAX, "n".repeat(16));
        assert_eq!(longest.len(), LastEventId::MAX_LEN);
        assert_eq!(
            longest.parse::<LastEventId>().unwrap().position().seq,
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
            assert!(bad.parse::<LastEventId>().is_err(), "{bad:?} parsed");
            assert!(bad.parse::<PrimingId>().is_err(), "{bad:?} parsed");
        }
        let too_long = format!("{}.{}.{}", "a".repeat(81), 1, "n".repeat(16));
        assert!(too_long.parse::<LastEventId>().is_err());
        assert!(format!("{longest}0").parse::<LastEventId>().is_err());
    }

    #[test]
    fn reply_streams_name_their_writer() {
        let node = NodeId::new("replica-1");
        let stream = StreamId::for_node(&node);
        assert_eq!(stream.writer(), Some(node));
        assert_eq!(StreamId::random().writer(), None);
        let id: EventId = format!("{stream}.3").parse().unwrap();
        assert_eq!(id.stream, stream);
    }

    #[test]
    fn node_ids_are_sanitized() {
        assert_eq!(NodeId::new("pod.a:1").as_str(), "pod-a-1");
        assert_eq!(
            NodeId::new("é".repeat(100)).as_str(),
            "-".repeat(NodeId::MAX_LEN)
        );
        let long = NodeId::with_random_suffix(&"h".repeat(100));
        assert_eq!(long.as_str().len(), NodeId::MAX_LEN);
        assert_ne!(long, NodeId::with_random_suffix(&"h".repeat(100)));
    }
}
