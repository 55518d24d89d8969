//! Properties checked on generated inputs (proptest): event ids round trip through their text
//! form and nothing else parses; the memory host's stream logs resume from any event id with
//! exactly the later events, in order, and refuse positions they no longer hold.
//!
//! A failing case is shrunk and its seed saved beside this file
//! (`properties.proptest-regressions`, worth committing); rerunning the test replays it first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use proptest::collection::vec;
use proptest::prelude::*;
use shoal_core::host::suite;
use shoal_core::host::{
    HostError, MemoryHost, MemoryHostConfig, ReadFrom, SessionStore, StoredEvent, StreamEvent,
    StreamLog,
};
use shoal_core::ids::{EventId, NodeId, StreamId};
use shoal_core::session::SessionRecord;

/// Stream ids as the server mints them: standalone, or naming the node that writes them
/// (node ids come from configuration or the host name: any text).
fn minted_stream() -> impl Strategy<Value = StreamId> {
    prop_oneof![
        Just(()).prop_map(|()| StreamId::random()),
        "\\PC{0,100}".prop_map(|node| StreamId::for_node(&NodeId::new(node))),
    ]
}

/// Text close to an event id: the id alphabet, dots, signs, leading zeros, wrong lengths.
fn near_event_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,90}\\.[0-9]{0,25}",
        "[A-Za-z0-9_-]{14,82}\\.0[0-9]{0,4}",
        "[A-Za-z0-9_.+ -]{10,90}",
        "[A-Za-z0-9_-]{16,80}\\.[+-]?[0-9]{1,20}[^0-9]?",
        "\\PC{0,100}",
    ]
}

proptest! {
    #[test]
    fn minted_event_ids_round_trip(stream in minted_stream(), seq in any::<u64>()) {
        let id = EventId { stream, seq };
        let text = id.to_string();
        let parsed: EventId = text.parse().map_err(|e| {
            TestCaseError::fail(format!("{text:?} does not parse: {e}"))
        })?;
        prop_assert_eq!(parsed.stream.writer(), id.stream.writer());
        prop_assert_eq!(parsed, id);
    }

    #[test]
    fn well_formed_event_ids_round_trip(stream in "[A-Za-z0-9_-]{16,80}", seq in any::<u64>()) {
        let text = format!("{stream}.{seq}");
        let parsed: EventId = text.parse().map_err(|e| {
            TestCaseError::fail(format!("{text:?} does not parse: {e}"))
        })?;
        prop_assert_eq!(parsed.stream.as_str(), stream.as_str());
        prop_assert_eq!(parsed.seq, seq);
        prop_assert_eq!(parsed.to_string(), text);
    }

    /// Parsing accepts only the text `Display` writes: one position has one id.
    #[test]
    fn parse_accepts_only_what_round_trips(text in near_event_id()) {
        if let Ok(id) = text.parse::<EventId>() {
            prop_assert_eq!(id.to_string(), text);
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn memory_host(config: MemoryHostConfig) -> MemoryHost {
    MemoryHost::new(NodeId::new("properties"), config)
}

/// Events that leave a stream open, as handlers append them.
fn open_event() -> impl Strategy<Value = StreamEvent> {
    prop_oneof![
        6 => "\\PC{0,40}".prop_map(|text| StreamEvent::Message(text.into())),
        1 => Just(StreamEvent::Disconnect),
        1 => "[0-9]{1,6}".prop_map(|id| StreamEvent::Request(id.into())),
    ]
}

/// Events that end a stream.
fn terminal_event() -> impl Strategy<Value = StreamEvent> {
    prop_oneof![
        "\\PC{0,40}".prop_map(|text| StreamEvent::Last(text.into())),
        Just(StreamEvent::End),
    ]
}

proptest! {
    #[test]
    fn memory_host_resumes_from_every_event(
        events in vec(open_event(), 1..40),
        terminal in terminal_event(),
    ) {
        let host = memory_host(MemoryHostConfig::default());
        runtime().block_on(suite::resume_from_every_event(&host, &events, terminal));
    }

    /// With at most `keep` events retained, resuming after a trimmed position is refused
    /// (a gap would follow) and resuming from any retained one gives exactly the rest.
    #[test]
    fn memory_host_refuses_trimmed_positions(
        events in vec(open_event(), 1..40),
        keep in 1usize..10,
    ) {
        let host = memory_host(MemoryHostConfig {
            max_events_per_stream: keep,
            ..MemoryHostConfig::default()
        });
        runtime().block_on(async {
            let record = SessionRecord::new(None, "2025-11-25", Default::default(), Default::default());
            host.create_session(&record, 0).await.unwrap();
            let stream = StreamId::random();
            for event in &events {
                host.append(&record.id, &stream, event.clone()).await.unwrap();
            }
            let last = events.len() as u64;
            let first_kept = last.saturating_sub(keep as u64) + 1;
            for from in 0..=last {
                let outcome = host.subscribe(&record.id, &stream, ReadFrom::After(from)).await;
                if from + 1 < first_kept {
                    assert_eq!(outcome.map(|s| s.after), Err(HostError::EventExpired), "after {from}");
                    continue;
                }
                let read = outcome
                    .unwrap()
                    .events
                    .take((last - from) as usize)
                    .map(Result::unwrap)
                    .collect::<Vec<StoredEvent>>();
                // Bounded so that a missing event fails instead of hanging.
                let events_after = tokio::time::timeout(Duration::from_secs(10), read)
                    .await
                    .expect("the backlog within 10 s");
                let expected: Vec<StoredEvent> = (from + 1..)
                    .zip(&events[from as usize..])
                    .map(|(seq, event)| StoredEvent { seq, event: event.clone() })
                    .collect();
                assert_eq!(events_after, expected, "after {from}");
            }
        });
    }
}
