//! Decoded session records, reused while the hash they came from is unchanged.
//!
//! Every request reads its session hash (`HGETALL`), and decoding the `record` JSON (the
//! client's capabilities and info as JSON trees) was a twentieth of a Redis replica's CPU per
//! `tools/call`. The read still goes to Redis each time, so nothing can go stale: only when the
//! reply is byte for byte the one decoded last time for that session is the earlier record
//! cloned instead of decoded again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use fred::types::Value;
use shoal_core::ids::SessionId;
use shoal_core::session::SessionRecord;

use crate::codec::{self, DecodeError};

/// How many sessions' records a replica keeps; past this it forgets them all (the cost is one
/// decode each). Small: idle streams do not read their session again, busy sessions do.
const CAPACITY: usize = 1024;

/// The last decoded record of each recently read session.
#[derive(Default)]
pub(crate) struct RecordMemo {
    records: Mutex<HashMap<SessionId, Decoded>>,
}

struct Decoded {
    /// The `HGETALL` reply it came from: field, value, field, value…
    reply: Vec<Box<[u8]>>,
    record: SessionRecord,
    created_ms: Option<i64>,
}

impl RecordMemo {
    /// The record of `session` in `reply` (a non-empty `HGETALL` reply), and its `created_ms`.
    pub(crate) fn decode(
        &self,
        session: &SessionId,
        reply: Vec<Value>,
    ) -> Result<(SessionRecord, Option<i64>), DecodeError> {
        if let Some(decoded) = self.lock().get(session)
            && same_reply(&decoded.reply, &reply)
        {
            return Ok((decoded.record.clone(), decoded.created_ms));
        }
        // Only string replies can be compared (RESP2 gives nothing else for a hash).
        let copy: Option<Vec<Box<[u8]>>> = reply
            .iter()
            .map(|value| bytes(value).map(Box::from))
            .collect();
        let (record, created_ms) = codec::decode_session(reply)?;
        if let Some(reply) = copy {
            let mut records = self.lock();
            if records.len() >= CAPACITY && !records.contains_key(session) {
                records.clear();
            }
            records.insert(
                session.clone(),
                Decoded {
                    reply,
                    record: record.clone(),
                    created_ms,
                },
            );
        }
        Ok((record, created_ms))
    }

    /// Forgets `session` (it is gone).
    pub(crate) fn forget(&self, session: &SessionId) {
        self.lock().remove(session);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Decoded>> {
        // Plain inserts and removals behind the lock: a panic elsewhere leaves it usable.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn same_reply(known: &[Box<[u8]>], reply: &[Value]) -> bool {
    known.len() == reply.len()
        && known
            .iter()
            .zip(reply)
            .all(|(known, value)| bytes(value) == Some(&**known))
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::String(s) => Some(s.as_bytes()),
        Value::Bytes(b) => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(record: &SessionRecord, level: Option<&str>) -> Vec<Value> {
        let mut reply = vec![
            Value::from("record"),
            Value::from(serde_json::to_string(record).unwrap()),
            Value::from("created_ms"),
            Value::from("1000"),
        ];
        if let Some(level) = level {
            reply.push(Value::from("level"));
            reply.push(Value::from(level));
        }
        reply
    }

    #[test]
    fn a_changed_reply_is_decoded_again() {
        let memo = RecordMemo::default();
        let record = SessionRecord::new(
            None,
            "2025-11-25",
            serde_json::json!({}),
            serde_json::json!({}),
        );
        let (first, created) = memo.decode(&record.id, reply(&record, None)).unwrap();
        assert_eq!(first, record);
        assert_eq!(created, Some(1000));
        let (again, _) = memo.decode(&record.id, reply(&record, None)).unwrap();
        assert_eq!(again, record);

        let (changed, _) = memo
            .decode(&record.id, reply(&record, Some("\"debug\"")))
            .unwrap();
        assert_eq!(
            changed.log_level,
            Some(shoal_core::session::LogLevel::Debug)
        );
        let (back, _) = memo.decode(&record.id, reply(&record, None)).unwrap();
        assert_eq!(back.log_level, None);
    }

    #[test]
    fn records_of_other_sessions_are_not_mixed_up() {
        let memo = RecordMemo::default();
        let a = SessionRecord::new(
            Some("alice".into()),
            "2025-11-25",
            serde_json::json!({}),
            serde_json::json!({}),
        );
        let b = SessionRecord::new(
            Some("bob".into()),
            "2025-11-25",
            serde_json::json!({}),
            serde_json::json!({}),
        );
        assert_eq!(memo.decode(&a.id, reply(&a, None)).unwrap().0, a);
        assert_eq!(memo.decode(&b.id, reply(&b, None)).unwrap().0, b);
        // The reply decides, not the id it is filed under.
        assert_eq!(memo.decode(&a.id, reply(&b, None)).unwrap().0, b);
    }

    #[test]
    fn it_stays_bounded() {
        let memo = RecordMemo::default();
        for _ in 0..CAPACITY + 10 {
            let record = SessionRecord::new(
                None,
                "2025-11-25",
                serde_json::json!({}),
                serde_json::json!({}),
            );
            memo.decode(&record.id, reply(&record, None)).unwrap();
        }
        assert!(memo.lock().len() <= CAPACITY);
    }
}
