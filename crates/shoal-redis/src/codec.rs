//! How values are laid out in Redis: stream events, the session hash, replies of the scripts.

use std::collections::BTreeSet;

use fred::types::Value;
use shoal_core::error::Cause;
use shoal_core::host::{HostError, StreamEvent};
use shoal_core::session::{LogLevel, SessionRecord};

/// What Redis handed back that this host could not have written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// A stream entry's payload is not one of the known tags.
    #[error("unknown stream event tag")]
    EventTag,
    /// The session hash has no `record`.
    #[error("session hash without record")]
    NoRecord,
    /// A stored JSON value does not parse.
    #[error("stored JSON does not parse: {0}")]
    Json(#[from] serde_json::Error),
    /// A script answered with a shape it never returns.
    #[error("unexpected reply from Redis")]
    Reply,
}

impl From<DecodeError> for HostError {
    fn from(e: DecodeError) -> Self {
        HostError::Unavailable(Cause::new(e))
    }
}

/// A stream event as stored in an entry's `p` field: `m<text>`, `d` or `e`.
pub(crate) fn encode_event(event: &StreamEvent) -> String {
    match event {
        StreamEvent::Message(text) => {
            let mut out = String::with_capacity(text.len() + 1);
            out.push('m');
            out.push_str(text);
            out
        }
        StreamEvent::Request(id) => format!("r{id}"),
        StreamEvent::Last(text) => format!("l{text}"),
        StreamEvent::Disconnect => "d".to_owned(),
        StreamEvent::End => "e".to_owned(),
    }
}

/// The inverse of [`encode_event`].
pub(crate) fn decode_event(payload: &str) -> Result<StreamEvent, DecodeError> {
    match payload.split_at_checked(1) {
        Some(("m", text)) => Ok(StreamEvent::Message(text.into())),
        Some(("r", id)) => Ok(StreamEvent::Request(id.into())),
        Some(("l", text)) => Ok(StreamEvent::Last(text.into())),
        Some(("d", "")) => Ok(StreamEvent::Disconnect),
        Some(("e", "")) => Ok(StreamEvent::End),
        _ => Err(DecodeError::EventTag),
    }
}

/// A log level as stored in the `level` field.
pub(crate) fn encode_level(level: LogLevel) -> Result<String, DecodeError> {
    Ok(serde_json::to_string(&level)?)
}

/// A session record from the flat `HGETALL` reply of the session hash: the `record` JSON,
/// with `level` and the `sub:<uri>` fields overriding its log level and subscriptions; and the
/// session's creation time (`created_ms`, Redis clock), when the hash has one.
pub(crate) fn decode_session(
    reply: Vec<Value>,
) -> Result<(SessionRecord, Option<i64>), DecodeError> {
    let mut record = None;
    let mut level = None;
    let mut created_ms = None;
    let mut subscriptions = BTreeSet::new();
    let mut items = reply.into_iter();
    while let (Some(field), Some(value)) = (items.next(), items.next()) {
        let field = text(field)?;
        if field == "record" {
            record = Some(serde_json::from_str::<SessionRecord>(&text(value)?)?);
        } else if field == "level" {
            level = Some(serde_json::from_str::<LogLevel>(&text(value)?)?);
        } else if field == "created_ms" {
            created_ms = Some(integer(&value)?);
        } else if let Some(uri) = field.strip_prefix("sub:") {
            subscriptions.insert(uri.to_owned());
        }
    }
    let mut record = record.ok_or(DecodeError::NoRecord)?;
    record.log_level = level;
    record.subscriptions = subscriptions;
    Ok((record, created_ms))
}

/// An `HGETALL` reply as a flat field, value, field, value… list, whether `fred` handed it
/// back as an array or as a map (then sorted by field: a map's order changes from one reply
/// to the next, and the record memo compares replies).
pub(crate) fn hash_fields(reply: Value) -> Result<Vec<Value>, DecodeError> {
    match reply {
        Value::Array(items) => Ok(items),
        Value::Map(map) => {
            let mut pairs: Vec<_> = map.inner().into_iter().collect();
            pairs.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            Ok(pairs
                .into_iter()
                .flat_map(|(key, value)| [Value::from(key), value])
                .collect())
        }
        Value::Null => Ok(Vec::new()),
        _ => Err(DecodeError::Reply),
    }
}

/// A bulk or simple string reply.
pub(crate) fn text(value: Value) -> Result<String, DecodeError> {
    match value {
        Value::String(s) => Ok(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Reply),
        _ => Err(DecodeError::Reply),
    }
}

/// An integer reply, or a string holding one.
pub(crate) fn integer(value: &Value) -> Result<i64, DecodeError> {
    match value {
        Value::Integer(i) => Ok(*i),
        Value::String(s) => s.parse().map_err(|_| DecodeError::Reply),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(DecodeError::Reply),
        _ => Err(DecodeError::Reply),
    }
}

/// A position (≥ 0) from an integer reply.
pub(crate) fn position(value: &Value) -> Result<u64, DecodeError> {
    u64::try_from(integer(value)?).map_err(|_| DecodeError::Reply)
}

/// The elements of an array reply.
pub(crate) fn array(value: Value) -> Result<Vec<Value>, DecodeError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(DecodeError::Reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_events_round_trip() {
        for event in [
            StreamEvent::Message(r#"{"jsonrpc":"2.0","method":"x"}"#.into()),
            StreamEvent::Message("".into()),
            StreamEvent::Message("ünïcödé".into()),
            StreamEvent::Request("7".into()),
            StreamEvent::Last(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#.into()),
            StreamEvent::Disconnect,
            StreamEvent::End,
        ] {
            assert_eq!(decode_event(&encode_event(&event)).ok(), Some(event));
        }
        assert!(decode_event("").is_err());
        assert!(decode_event("x").is_err());
        assert!(decode_event("ee").is_err());
    }

    #[test]
    fn session_fields_override_the_record() {
        let mut record = SessionRecord::new(
            None,
            "2025-11-25",
            serde_json::json!({}),
            serde_json::json!({}),
        );
        let json = serde_json::to_string(&record).unwrap_or_default();
        let reply = vec![
            Value::from("record"),
            Value::from(json),
            Value::from("created_ms"),
            Value::from("1"),
            Value::from("level"),
            Value::from("\"warning\""),
            Value::from("sub:test://a"),
            Value::from("1"),
            Value::from("seq:abc"),
            Value::from("3"),
        ];
        let decoded = decode_session(reply).ok().map(|(record, _)| record);
        record.log_level = Some(LogLevel::Warning);
        record.subscriptions.insert("test://a".into());
        assert_eq!(decoded, Some(record));
    }
}
