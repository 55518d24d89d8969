//! The test suite every [`SessionHost`] must pass. Each function takes a fresh host; a host
//! crate calls [`run_all`] from its own tests (see the tests at the bottom for the memory host).

// A test suite: a failed step is a panic with a message, as in any test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kv;

use std::time::Duration;

use futures::StreamExt;

use super::{HostError, NodeEvent, ReadFrom, SessionHost, SessionUpdate, StoredEvent, StreamEvent};
use crate::ids::{EventId, SessionId, StreamId};
use crate::jsonrpc::RequestId;
use crate::session::{LogLevel, SessionRecord};

pub use kv::{
    kv_compare_and_swap, kv_expiry, kv_keys_do_not_collide, kv_put_get_delete,
    kv_take_is_single_use,
};

fn record() -> SessionRecord {
    SessionRecord::new(
        Some("alice".into()),
        "2025-11-25",
        serde_json::json!({}),
        serde_json::json!({"name": "t"}),
    )
}

fn message(text: &str) -> StreamEvent {
    StreamEvent::Message(text.into())
}

async fn next_message<S>(events: &mut S) -> (u64, String)
where
    S: futures::Stream<Item = Result<super::StoredEvent, HostError>> + Unpin,
{
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream goes on")
        .expect("no error");
    match event.event {
        StreamEvent::Message(text) => (event.seq, text.to_string()),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Sessions: create, read, update, delete; a deleted session is gone at once.
pub async fn sessions(host: &dyn SessionHost) {
    let record = record();
    assert_eq!(host.session(&record.id).await.unwrap(), None);
    host.create_session(&record, 0).await.unwrap();
    assert_eq!(
        host.session(&record.id).await.unwrap().as_ref(),
        Some(&record)
    );
    host.update_session(&record.id, SessionUpdate::LogLevel(LogLevel::Warning))
        .await
        .unwrap();
    host.update_session(&record.id, SessionUpdate::Subscribe("test://a".into()))
        .await
        .unwrap();
    let stored = host.session(&record.id).await.unwrap().unwrap();
    assert_eq!(stored.log_level, Some(LogLevel::Warning));
    assert!(stored.subscriptions.contains("test://a"));
    host.update_session(&record.id, SessionUpdate::Unsubscribe("test://a".into()))
        .await
        .unwrap();
    assert!(
        host.session(&record.id)
            .await
            .unwrap()
            .unwrap()
            .subscriptions
            .is_empty()
    );
    assert!(host.delete_session(&record.id).await.unwrap());
    assert_eq!(host.session(&record.id).await.unwrap(), None);
    assert!(!host.delete_session(&record.id).await.unwrap());
    assert_eq!(
        host.update_session(&record.id, SessionUpdate::LogLevel(LogLevel::Info))
            .await,
        Err(HostError::SessionNotFound)
    );
}

/// Ordering under concurrent writers, and resume from every position.
pub async fn ordering_and_resume(host: &dyn SessionHost) {
    let record = record();
    host.create_session(&record, 0).await.unwrap();
    let stream = StreamId::random();
    let writes = (0..50).map(|i| host.append(&record.id, &stream, message(&format!("m{i}"))));
    let mut seqs = futures::future::try_join_all(writes).await.unwrap();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=50).collect::<Vec<u64>>(),
        "every append gets its own position"
    );
    host.append(&record.id, &stream, StreamEvent::End)
        .await
        .unwrap();

    let mut full = Vec::new();
    let mut sub = host
        .subscribe(&record.id, &stream, ReadFrom::After(0))
        .await
        .unwrap();
    while let Some(event) = sub.events.next().await {
        full.push(event.unwrap());
    }
    assert_eq!(full.len(), 51);
    assert_eq!(full.last().map(|e| &e.event), Some(&StreamEvent::End));
    for from in 0..=51u64 {
        let mut sub = host
            .subscribe(&record.id, &stream, ReadFrom::After(from))
            .await
            .unwrap();
        let mut got = Vec::new();
        while let Some(event) = sub.events.next().await {
            got.push(event.unwrap());
        }
        assert_eq!(got, full[from as usize..], "resume after {from}");
    }
    assert_eq!(
        host.subscribe(&record.id, &stream, ReadFrom::After(52))
            .await
            .map(|s| s.after),
        Err(HostError::EventFromTheFuture)
    );
}

/// A subscription sees events appended after it started, live, in order.
pub async fn live_delivery(host: &dyn SessionHost) {
    let record = record();
    host.create_session(&record, 0).await.unwrap();
    let stream = record.standalone_stream.clone();
    let mut sub = host
        .subscribe(&record.id, &stream, ReadFrom::Tail)
        .await
        .unwrap();
    assert_eq!(sub.after, 0);
    for i in 0..10 {
        host.append(&record.id, &stream, message(&format!("live{i}")))
            .await
            .unwrap();
    }
    for i in 0..10 {
        assert_eq!(
            next_message(&mut sub.events).await,
            (i + 1, format!("live{i}"))
        );
    }
    // Deleting the session ends the subscription.
    host.delete_session(&record.id).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), sub.events.next())
        .await
        .expect("ends within 5 s");
    assert!(end.is_none() || matches!(end, Some(Err(_))), "{end:?}");
}

/// Streams and sessions are isolated: another session's stream is unknown.
pub async fn isolation(host: &dyn SessionHost) {
    let (a, b) = (record(), record());
    host.create_session(&a, 0).await.unwrap();
    host.create_session(&b, 0).await.unwrap();
    let stream = StreamId::random();
    host.append(&a.id, &stream, message("secret"))
        .await
        .unwrap();
    assert_eq!(
        host.subscribe(&b.id, &stream, ReadFrom::After(0))
            .await
            .map(|s| s.after),
        Err(HostError::UnknownStream)
    );
    assert_eq!(
        host.subscribe(&a.id, &StreamId::random(), ReadFrom::After(0))
            .await
            .map(|s| s.after),
        Err(HostError::UnknownStream)
    );
    let ghost = SessionId::random();
    assert_eq!(
        host.subscribe(&ghost, &stream, ReadFrom::After(0))
            .await
            .map(|s| s.after),
        Err(HostError::SessionNotFound)
    );
    assert_eq!(
        host.append(&ghost, &stream, message("x")).await,
        Err(HostError::SessionNotFound)
    );
}

/// Node inbox and broadcast reach the node's event stream.
pub async fn inbox_and_broadcast(host: &dyn SessionHost) {
    let mut events = host.node_events();
    let session = SessionId::random();
    let response = NodeEvent::ClientResponse {
        session: session.clone(),
        id: RequestId::String("n.1".into()),
        outcome: Ok(serde_json::json!({"ok": true})),
        trace_context: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
    };
    host.send_to_node(host.node_id(), response.clone())
        .await
        .unwrap();
    let cancel = NodeEvent::Cancel {
        session,
        request_id: RequestId::Number(3),
    };
    host.broadcast(cancel.clone()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            tokio::time::timeout(Duration::from_secs(5), events.next())
                .await
                .unwrap(),
        );
    }
    // Both arrive; in which order is not part of the contract: the inbox and the broadcast
    // are two channels, which a Redis Cluster may carry through different shards.
    assert_eq!(got.len(), 2);
    assert!(got.contains(&Some(response)), "{got:?}");
    assert!(got.contains(&Some(cancel)), "{got:?}");
}

/// Resumption from every position of one stream whose log is `events` (at least one, none
/// ends the stream) then `terminal` (which does); property tests call it with generated logs.
///
/// Every event id of the stream, rendered and parsed back as a client sends it in
/// `Last-Event-ID`, resumes with exactly the later events, in order, without gap or duplicate,
/// then follows the stream live to its end. Resuming from the end yields nothing, a position
/// past it is refused, nothing is appended after it, and another session's stream or an
/// unknown one is refused.
pub async fn resume_from_every_event(
    host: &dyn SessionHost,
    events: &[StreamEvent],
    terminal: StreamEvent,
) {
    // A stream exists once something is appended to it (a reply stream's first event is
    // its `Request`): there is nothing to resume before that.
    assert!(
        !events.is_empty()
            && !events.iter().any(StreamEvent::ends_stream)
            && terminal.ends_stream(),
        "a log of open events, then one that ends the stream"
    );
    let record = record();
    host.create_session(&record, 0).await.unwrap();
    let stream = StreamId::random();
    for (seq, event) in (1u64..).zip(events) {
        let appended = host.append(&record.id, &stream, event.clone()).await;
        assert_eq!(appended, Ok(seq), "appends are numbered 1, 2, …");
    }
    let last = events.len() as u64;
    let mut open = Vec::new();
    for from in 0..=last {
        let id: EventId = EventId {
            stream: stream.clone(),
            seq: from,
        }
        .to_string()
        .parse()
        .expect("every event id the server mints parses");
        let mut sub = host
            .subscribe(&record.id, &id.stream, ReadFrom::After(id.seq))
            .await
            .unwrap();
        assert_eq!(sub.after, from);
        for (seq, event) in (from + 1..).zip(&events[from as usize..]) {
            let got = next_event(&mut sub.events).await;
            assert_eq!(
                got,
                Some(StoredEvent {
                    seq,
                    event: event.clone()
                }),
                "resumed after {from}"
            );
        }
        open.push((from, sub));
    }
    let end = StoredEvent {
        seq: last + 1,
        event: terminal.clone(),
    };
    assert_eq!(
        host.append(&record.id, &stream, terminal).await,
        Ok(end.seq)
    );
    // Each reader has seen exactly the backlog: the next event is the live one, then the end.
    for (from, mut sub) in open {
        assert_eq!(
            next_event(&mut sub.events).await,
            Some(end.clone()),
            "live after resuming from {from}"
        );
        assert_eq!(
            next_event(&mut sub.events).await,
            None,
            "ended, from {from}"
        );
    }
    let mut sub = host
        .subscribe(&record.id, &stream, ReadFrom::After(end.seq))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut sub.events).await,
        None,
        "resumed after the end"
    );
    assert_eq!(
        host.subscribe(&record.id, &stream, ReadFrom::After(end.seq + 1))
            .await
            .map(|s| s.after),
        Err(HostError::EventFromTheFuture)
    );
    assert_eq!(
        host.append(&record.id, &stream, message("late")).await,
        Err(HostError::StreamEnded)
    );
    let other = self::record();
    host.create_session(&other, 0).await.unwrap();
    assert_eq!(
        host.subscribe(&other.id, &stream, ReadFrom::After(0))
            .await
            .map(|s| s.after),
        Err(HostError::UnknownStream),
        "another session's stream"
    );
    assert_eq!(
        host.subscribe(&record.id, &StreamId::random(), ReadFrom::After(0))
            .await
            .map(|s| s.after),
        Err(HostError::UnknownStream)
    );
    host.delete_session(&other.id).await.unwrap();
    host.delete_session(&record.id).await.unwrap();
}

/// The next event, or `None` at the end; bounded so that a missing event fails, not hangs.
async fn next_event<S>(events: &mut S) -> Option<StoredEvent>
where
    S: futures::Stream<Item = Result<StoredEvent, HostError>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event or the end within 10 s")
        .map(|event| event.expect("no error"))
}

fn record_of(principal: Option<&str>) -> SessionRecord {
    let mut record = record();
    record.principal = principal.map(str::to_owned);
    record
}

/// Creates `count` sessions of `principal` under limit `max`; each must succeed.
async fn fill(host: &dyn SessionHost, principal: &str, count: usize, max: usize) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for i in 0..count {
        let record = record_of(Some(principal));
        host.create_session(&record, max)
            .await
            .unwrap_or_else(|e| panic!("session {i} of {principal} under limit {max}: {e}"));
        ids.push(record.id);
    }
    ids
}

/// Sessions per principal: a principal at its limit cannot create another, and nothing of the
/// refused session is stored; deleting one frees a slot; another principal, a session without
/// a principal, and a limit of 0 are unaffected.
pub async fn sessions_per_principal(host: &dyn SessionHost) {
    const MAX: usize = 3;
    let alice = fill(host, "alice", MAX, MAX).await;
    let refused = record_of(Some("alice"));
    assert_eq!(
        host.create_session(&refused, MAX).await,
        Err(HostError::PrincipalAtLimit),
        "a principal at its limit"
    );
    assert_eq!(
        host.session(&refused.id).await.unwrap(),
        None,
        "a refused session is not stored"
    );
    assert_eq!(
        host.create_session(&record_of(Some("alice")), MAX + 1)
            .await,
        Ok(()),
        "a higher limit leaves room"
    );
    assert_eq!(
        host.create_session(&record_of(Some("alice")), MAX + 1)
            .await,
        Err(HostError::PrincipalAtLimit)
    );
    // Another principal, sessions without one, and no limit at all are unaffected.
    fill(host, "bob", MAX, MAX).await;
    for _ in 0..MAX + 1 {
        host.create_session(&record_of(None), MAX).await.unwrap();
    }
    host.create_session(&record_of(Some("alice")), 0)
        .await
        .expect("0 is unlimited");
    // Every session of alice still lives: the refusals destroyed nothing.
    for id in &alice {
        assert!(host.session(id).await.unwrap().is_some());
    }
    // alice now holds MAX + 2 sessions; deleting until she holds MAX - 1 frees one slot.
    let mut held = MAX + 2;
    let mut alice = alice.into_iter();
    while held >= MAX {
        let id = alice.next().expect("one of alice's sessions to delete");
        assert!(host.delete_session(&id).await.unwrap());
        held -= 1;
    }
    host.create_session(&record_of(Some("alice")), MAX)
        .await
        .expect("a deleted session frees its slot");
    assert_eq!(
        host.create_session(&record_of(Some("alice")), MAX).await,
        Err(HostError::PrincipalAtLimit),
        "exactly one slot was freed"
    );
    assert_eq!(
        host.create_session(&record_of(Some("bob")), MAX).await,
        Err(HostError::PrincipalAtLimit),
        "bob is at his own limit"
    );
}

/// A principal's sessions are listed, whoever else has sessions, and no longer once deleted.
pub async fn sessions_of_a_principal(host: &dyn SessionHost) {
    let mut dave = fill(host, "dave", 3, 0).await;
    fill(host, "erin", 2, 0).await;
    host.create_session(&record_of(None), 0).await.unwrap();
    let mut listed = host.sessions_of("dave").await.unwrap();
    listed.sort();
    dave.sort();
    assert_eq!(listed, dave);
    assert!(host.delete_session(&dave[0]).await.unwrap());
    let mut listed = host.sessions_of("dave").await.unwrap();
    listed.sort();
    assert_eq!(listed, dave[1..]);
    assert_eq!(
        host.sessions_of("nobody").await.unwrap(),
        Vec::<SessionId>::new()
    );
}

/// Expiry frees a principal's slot: `host` must expire idle sessions after `idle_timeout`.
/// Not part of [`run_all`]: it needs a host with a short idle timeout, and waits it out.
pub async fn expiry_frees_a_principal_slot(host: &dyn SessionHost, idle_timeout: Duration) {
    const MAX: usize = 2;
    let ids = fill(host, "carol", MAX, MAX).await;
    assert_eq!(
        host.create_session(&record_of(Some("carol")), MAX).await,
        Err(HostError::PrincipalAtLimit)
    );
    tokio::time::sleep(idle_timeout + idle_timeout / 2 + Duration::from_millis(100)).await;
    let fresh = fill(host, "carol", MAX, MAX).await;
    assert_eq!(
        host.create_session(&record_of(Some("carol")), MAX).await,
        Err(HostError::PrincipalAtLimit),
        "the new sessions count"
    );
    for id in ids {
        assert_eq!(host.session(&id).await.unwrap(), None, "expired");
    }
    for id in fresh {
        assert!(host.delete_session(&id).await.unwrap());
    }
}

/// Runs every check, each against a fresh host from `make`.
pub async fn run_all<H, F>(make: F)
where
    H: SessionHost,
    F: Fn() -> H,
{
    sessions(&make()).await;
    ordering_and_resume(&make()).await;
    live_delivery(&make()).await;
    isolation(&make()).await;
    inbox_and_broadcast(&make()).await;
    sessions_per_principal(&make()).await;
    sessions_of_a_principal(&make()).await;
    kv_put_get_delete(&make()).await;
    kv_expiry(&make()).await;
    kv_take_is_single_use(&make()).await;
    kv_compare_and_swap(&make()).await;
    kv_keys_do_not_collide(&make()).await;
}

#[cfg(test)]
mod memory_host {
    use super::*;
    use crate::host::{MemoryHost, MemoryHostConfig, SessionStore, StreamLog};
    use crate::ids::NodeId;

    fn host() -> MemoryHost {
        MemoryHost::new(NodeId::new("test"), MemoryHostConfig::default())
    }

    #[tokio::test]
    async fn passes_the_host_suite() {
        run_all(host).await;
    }

    #[tokio::test(start_paused = true)]
    async fn idle_sessions_expire() {
        let config = MemoryHostConfig {
            idle_timeout: Duration::from_secs(60),
            ..Default::default()
        };
        let host = MemoryHost::new(NodeId::new("test"), config);
        let record = record();
        host.create_session(&record, 0).await.unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(
            host.session(&record.id).await.unwrap().is_some(),
            "a read refreshes the idle timer"
        );
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(host.session(&record.id).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(host.session(&record.id).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_have_a_maximum_lifetime() {
        let config = MemoryHostConfig {
            max_lifetime: Duration::from_secs(100),
            ..Default::default()
        };
        let host = MemoryHost::new(NodeId::new("test"), config);
        let record = record();
        host.create_session(&record, 0).await.unwrap();
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(40)).await;
            let _ = host.session(&record.id).await.unwrap();
        }
        assert!(host.session(&record.id).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_frees_a_principal_slot() {
        let idle_timeout = Duration::from_secs(60);
        let config = MemoryHostConfig {
            idle_timeout,
            ..Default::default()
        };
        let host = MemoryHost::new(NodeId::new("test"), config);
        super::expiry_frees_a_principal_slot(&host, idle_timeout).await;
    }

    #[tokio::test]
    async fn trimmed_positions_are_expired() {
        let config = MemoryHostConfig {
            max_events_per_stream: 3,
            ..Default::default()
        };
        let host = MemoryHost::new(NodeId::new("test"), config);
        let record = record();
        host.create_session(&record, 0).await.unwrap();
        let stream = StreamId::random();
        for i in 0..5 {
            host.append(&record.id, &stream, message(&format!("{i}")))
                .await
                .unwrap();
        }
        // Events 3..=5 remain: resuming after 2 is fine, after 1 would skip event 2.
        assert!(
            host.subscribe(&record.id, &stream, ReadFrom::After(2))
                .await
                .is_ok()
        );
        assert_eq!(
            host.subscribe(&record.id, &stream, ReadFrom::After(1))
                .await
                .map(|s| s.after),
            Err(HostError::EventExpired)
        );
    }
}
