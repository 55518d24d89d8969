//! Two `RedisHost`s ("nodes") on one Redis: what one writes, the other sees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use futures::StreamExt;
use shoal_core::host::{
    Broadcast, HostError, NodeBus, NodeEvent, ReadFrom, SessionStore, StoredEvent, StreamEvent,
    StreamLog,
};
use shoal_core::ids::{NodeId, SessionId, StreamId};
use shoal_core::jsonrpc::RequestId;
use shoal_redis::RedisHost;
use shoal_testkit::redis::RedisServer;

const PATIENCE: Duration = Duration::from_secs(5);

async fn two_nodes(redis: &RedisServer) -> (RedisHost, RedisHost) {
    let prefix = common::unique_prefix();
    (
        common::host(&redis.url(), &prefix, "node-a").await,
        common::host(&redis.url(), &prefix, "node-b").await,
    )
}

async fn next<S>(events: &mut S) -> Option<Result<StoredEvent, HostError>>
where
    S: futures::Stream<Item = Result<StoredEvent, HostError>> + Unpin,
{
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the subscription moves within 5 s")
}

fn message(text: &str) -> StreamEvent {
    StreamEvent::Message(text.into())
}

#[tokio::test]
async fn a_stream_appended_on_one_node_is_read_live_on_the_other() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let record = common::record();
    a.create_session(&record, 0).await.unwrap();
    let stream = StreamId::random();
    a.append(&record.id, &stream, message("before"))
        .await
        .unwrap();

    let mut sub = b
        .subscribe(&record.id, &stream, ReadFrom::After(0))
        .await
        .unwrap();
    assert_eq!(sub.after, 0);
    let sent = [
        message("before"),
        message(r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#),
        message("ünïcödé ✓"),
        StreamEvent::Disconnect,
        message(""),
        StreamEvent::End,
    ];
    for event in &sent[1..] {
        a.append(&record.id, &stream, event.clone()).await.unwrap();
    }
    for (i, event) in sent.iter().enumerate() {
        let got = next(&mut sub.events).await.unwrap().unwrap();
        assert_eq!(got.seq, i as u64 + 1);
        assert_eq!(&got.event, event);
    }
    assert!(next(&mut sub.events).await.is_none(), "ends after End");
}

#[tokio::test]
async fn concurrent_writers_on_two_nodes_get_gapless_positions() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let record = common::record();
    a.create_session(&record, 0).await.unwrap();
    let stream = StreamId::random();
    let writes = (0..100).map(|i| {
        let host = if i % 2 == 0 { &a } else { &b };
        host.append(&record.id, &stream, message(&format!("m{i}")))
    });
    let mut seqs = futures::future::try_join_all(writes).await.unwrap();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_session_deleted_on_one_node_is_gone_on_the_others_next_read() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let record = common::record();
    a.create_session(&record, 0).await.unwrap();
    assert_eq!(b.session(&record.id).await.unwrap().as_ref(), Some(&record));
    let mut sub = b
        .subscribe(&record.id, &record.standalone_stream, ReadFrom::Tail)
        .await
        .unwrap();
    let mut events_b = b.node_events();

    assert!(a.delete_session(&record.id).await.unwrap());
    assert_eq!(b.session(&record.id).await.unwrap(), None);
    assert_eq!(
        b.append(&record.id, &record.standalone_stream, message("late"))
            .await,
        Err(HostError::SessionNotFound)
    );
    let end = next(&mut sub.events).await;
    assert!(end.is_none(), "the live reader on b stops: {end:?}");
    let closed = tokio::time::timeout(PATIENCE, events_b.next())
        .await
        .unwrap();
    assert_eq!(
        closed,
        Some(NodeEvent::Broadcast(Broadcast::SessionClosed(
            record.id.clone()
        )))
    );
}

#[tokio::test]
async fn the_inbox_reaches_its_node_only_and_broadcasts_reach_all() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let mut events_a = a.node_events();
    let mut events_b = b.node_events();
    let response = NodeEvent::ClientResponse {
        session: SessionId::random(),
        id: RequestId::String("node-b.7".into()),
        outcome: Err(serde_json::json!({"code": -1, "message": "declined"})),
        trace_context: None,
    };
    a.send_to_node(b.node_id(), response.clone()).await.unwrap();
    let broadcast = NodeEvent::Broadcast(Broadcast::ResourceUpdated {
        uri: "test://r".into(),
    });
    b.broadcast(broadcast.clone()).await.unwrap();

    let got_b: Vec<_> = (&mut events_b).take(2).collect().await;
    assert_eq!(got_b, vec![response, broadcast.clone()]);
    let got_a = tokio::time::timeout(PATIENCE, events_a.next())
        .await
        .unwrap();
    assert_eq!(
        got_a,
        Some(broadcast),
        "a sees the broadcast, not b's inbox"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events_a.next())
            .await
            .is_err(),
        "nothing else reaches a"
    );
}

#[tokio::test]
async fn key_prefixes_isolate_deployments() {
    let redis = RedisServer::start().await;
    let a = common::host(&redis.url(), &common::unique_prefix(), "a").await;
    let b = common::host(&redis.url(), &common::unique_prefix(), "a").await;
    let record = common::record();
    a.create_session(&record, 0).await.unwrap();
    assert_eq!(b.session(&record.id).await.unwrap(), None);
    let mut events_b = b.node_events();
    a.broadcast(NodeEvent::Broadcast(Broadcast::ToolsListChanged))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events_b.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn trimmed_positions_are_expired() {
    let redis = RedisServer::start().await;
    let config = shoal_redis::RedisHostConfig {
        max_events_per_stream: 3,
        ..common::config(&redis.url(), &common::unique_prefix(), "n")
    };
    let host = RedisHost::connect(config).await.unwrap();
    let record = common::record();
    host.create_session(&record, 0).await.unwrap();
    let stream = StreamId::random();
    host.append(&record.id, &stream, message("0"))
        .await
        .unwrap();
    // A slow reader from the start.
    let mut slow = host
        .subscribe(&record.id, &stream, ReadFrom::After(0))
        .await
        .unwrap();
    for i in 1..500 {
        host.append(&record.id, &stream, message(&format!("{i}")))
            .await
            .unwrap();
    }
    // `MAXLEN ~` keeps at least 3 (whole radix-tree nodes go at once), far fewer than 500.
    assert!(
        host.subscribe(&record.id, &stream, ReadFrom::After(497))
            .await
            .is_ok()
    );
    assert_eq!(
        host.subscribe(&record.id, &stream, ReadFrom::After(1))
            .await
            .map(|s| s.after),
        Err(HostError::EventExpired)
    );
    // The slow reader either read before the trim or is told it lost events: never a gap.
    let mut expected = 1;
    loop {
        match next(&mut slow.events).await {
            Some(Ok(event)) => {
                assert_eq!(event.seq, expected);
                expected += 1;
                if expected == 501 {
                    break;
                }
            }
            Some(Err(e)) => {
                assert_eq!(e, HostError::EventExpired);
                break;
            }
            None => panic!("ended without End"),
        }
    }
}

#[tokio::test]
async fn idle_sessions_expire_and_reads_refresh_them() {
    let redis = RedisServer::start().await;
    let config = shoal_redis::RedisHostConfig {
        idle_timeout: Duration::from_millis(600),
        ..common::config(&redis.url(), &common::unique_prefix(), "n")
    };
    let host = RedisHost::connect(config).await.unwrap();
    let record = common::record();
    host.create_session(&record, 0).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            host.session(&record.id).await.unwrap().is_some(),
            "a read refreshes the idle timer"
        );
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(host.session(&record.id).await.unwrap(), None);
}

#[tokio::test]
async fn sessions_have_a_maximum_lifetime() {
    let redis = RedisServer::start().await;
    let config = shoal_redis::RedisHostConfig {
        max_lifetime: Duration::from_millis(800),
        ..common::config(&redis.url(), &common::unique_prefix(), "n")
    };
    let host = RedisHost::connect(config).await.unwrap();
    let record = common::record();
    host.create_session(&record, 0).await.unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(600) {
        assert!(host.session(&record.id).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(host.session(&record.id).await.unwrap(), None);
}

#[tokio::test]
async fn old_events_are_trimmed_by_age() {
    let redis = RedisServer::start().await;
    let config = shoal_redis::RedisHostConfig {
        event_retention: Duration::from_millis(300),
        ..common::config(&redis.url(), &common::unique_prefix(), "n")
    };
    let host = RedisHost::connect(config).await.unwrap();
    let record = common::record();
    host.create_session(&record, 0).await.unwrap();
    let stream = StreamId::random();
    host.append(&record.id, &stream, message("old"))
        .await
        .unwrap();
    host.append(&record.id, &stream, message("old"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        host.subscribe(&record.id, &stream, ReadFrom::After(0))
            .await
            .map(|s| s.after),
        Err(HostError::EventExpired)
    );
    // Positions go on where they were; resuming at the end is fine.
    assert_eq!(
        host.append(&record.id, &stream, message("new")).await,
        Ok(3)
    );
    let mut sub = host
        .subscribe(&record.id, &stream, ReadFrom::After(2))
        .await
        .unwrap();
    let got = next(&mut sub.events).await.unwrap().unwrap();
    assert_eq!((got.seq, got.event), (3, message("new")));
}

async fn received(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<StoredEvent, HostError>>,
) -> u64 {
    let event = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("still open");
    event.unwrap().seq
}

#[tokio::test]
async fn readers_catch_up_after_the_pubsub_connection_is_killed() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let admin = common::admin(&redis.url()).await;
    let record = common::record();
    a.create_session(&record, 0).await.unwrap();
    let stream = record.standalone_stream.clone();
    let mut sub = b
        .subscribe(&record.id, &stream, ReadFrom::Tail)
        .await
        .unwrap();
    // Read continuously, so the reader is waiting for a wake-up when the connection dies.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = sub.events.next().await {
            let _ = tx.send(event);
        }
    });
    a.append(&record.id, &stream, message("one")).await.unwrap();
    assert_eq!(received(&mut rx).await, 1);

    // Drop every pub/sub connection: wake-ups published before the resubscription are lost.
    common::raw(&admin, "CLIENT", vec!["KILL", "TYPE", "pubsub"]).await;
    for i in 2..=5 {
        a.append(&record.id, &stream, message(&format!("{i}")))
            .await
            .unwrap();
    }
    for seq in 2..=5 {
        assert_eq!(received(&mut rx).await, seq);
    }
    // The resubscribed channel delivers live again.
    a.append(&record.id, &stream, message("6")).await.unwrap();
    assert_eq!(received(&mut rx).await, 6);

    // Node channels come back too (a message sent before that is lost: at-most-once).
    let node_channel = format!("{}:node:node-b", b.config().key_prefix);
    let started = std::time::Instant::now();
    loop {
        let channels = common::raw(&admin, "PUBSUB", vec!["CHANNELS"]).await;
        if format!("{channels:?}").contains(&node_channel) {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "b resubscribes its inbox");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events_b = b.node_events();
    a.send_to_node(
        b.node_id(),
        NodeEvent::Broadcast(Broadcast::PromptsListChanged),
    )
    .await
    .unwrap();
    assert_eq!(
        tokio::time::timeout(PATIENCE, events_b.next())
            .await
            .unwrap(),
        Some(NodeEvent::Broadcast(Broadcast::PromptsListChanged))
    );
}

#[tokio::test]
async fn a_node_is_alive_while_its_host_runs() {
    let redis = RedisServer::start().await;
    let prefix = common::unique_prefix();
    let config = |node: &str| shoal_redis::RedisHostConfig {
        heartbeat_interval: Duration::from_millis(100),
        node_ttl: Duration::from_millis(400),
        ..common::config(&redis.url(), &prefix, node)
    };
    let a = RedisHost::connect(config("a")).await.unwrap();
    let b = RedisHost::connect(config("b")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(a.node_alive(&NodeId::new("b")).await.unwrap());
    assert!(!a.node_alive(&NodeId::new("never-was")).await.unwrap());
    drop(b);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !a.node_alive(&NodeId::new("b")).await.unwrap(),
        "a node without heartbeats is dead"
    );
}
