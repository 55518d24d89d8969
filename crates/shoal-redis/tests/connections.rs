//! A replica with many open streams uses a bounded number of Redis connections, and a channel
//! is unsubscribed once its last reader leaves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use shoal_core::host::{ReadFrom, SessionStore, StreamEvent, StreamLog};
use shoal_testkit::redis::RedisServer;

const SUBSCRIPTIONS: usize = 1_000;

async fn channel_count(admin: &fred::clients::Client, prefix: &str) -> usize {
    let pattern = format!("{prefix}:*");
    let reply = common::raw(admin, "PUBSUB", vec!["CHANNELS", &pattern]).await;
    match reply {
        fred::types::Value::Array(items) => items.len(),
        other => panic!("PUBSUB CHANNELS answered {other:?}"),
    }
}

#[tokio::test]
async fn a_thousand_subscriptions_use_two_connections() {
    let redis = RedisServer::start().await;
    let admin = common::admin(&redis.url()).await;
    let before = common::connected_clients(&admin).await;
    let prefix = common::unique_prefix();
    let host = common::host(&redis.url(), &prefix, "n").await;

    let records: Vec<_> = (0..SUBSCRIPTIONS).map(|_| common::record()).collect();
    futures::future::try_join_all(records.iter().map(|r| host.create_session(r, 0)))
        .await
        .unwrap();
    let started = Instant::now();
    let mut subs = futures::future::try_join_all(
        records
            .iter()
            .map(|r| host.subscribe(&r.id, &r.standalone_stream, ReadFrom::Tail)),
    )
    .await
    .unwrap();
    let opened = started.elapsed();

    let connections = common::connected_clients(&admin).await - before;
    println!(
        "{SUBSCRIPTIONS} subscriptions opened in {opened:?}; Redis connections of the host: \
         {connections}; wake channels: {}",
        host.wake_channel_count()
    );
    assert!(connections <= 5, "{connections} connections");
    assert_eq!(host.wake_channel_count(), SUBSCRIPTIONS);
    // Plus this node's inbox and the broadcast channel.
    assert_eq!(channel_count(&admin, &prefix).await, SUBSCRIPTIONS + 2);

    // Every subscription is live.
    let started = Instant::now();
    futures::future::try_join_all(records.iter().map(|r| {
        host.append(
            &r.id,
            &r.standalone_stream,
            StreamEvent::Message("hi".into()),
        )
    }))
    .await
    .unwrap();
    let deliveries = subs.iter_mut().map(|sub| async move {
        tokio::time::timeout(Duration::from_secs(10), sub.events.next())
            .await
            .expect("delivered within 10 s")
            .expect("open")
            .expect("no error")
            .seq
    });
    let seqs = futures::future::join_all(deliveries).await;
    assert!(seqs.iter().all(|&seq| seq == 1));
    println!(
        "{SUBSCRIPTIONS} appends delivered live in {:?}",
        started.elapsed()
    );
    assert!(common::connected_clients(&admin).await - before <= 5);

    // The last reader of a channel leaving unsubscribes it.
    drop(subs);
    let started = Instant::now();
    while channel_count(&admin, &prefix).await != 2 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "wake channels are unsubscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(host.wake_channel_count(), 0);
}

#[tokio::test]
async fn readers_of_one_stream_share_one_channel() {
    let redis = RedisServer::start().await;
    let admin = common::admin(&redis.url()).await;
    let prefix = common::unique_prefix();
    let host = common::host(&redis.url(), &prefix, "n").await;
    let record = common::record();
    host.create_session(&record, 0).await.unwrap();
    let stream = &record.standalone_stream;
    let mut first = host
        .subscribe(&record.id, stream, ReadFrom::Tail)
        .await
        .unwrap();
    let mut second = host
        .subscribe(&record.id, stream, ReadFrom::Tail)
        .await
        .unwrap();
    assert_eq!(channel_count(&admin, &prefix).await, 3);
    drop(first.events);
    // Leaving and coming back while the other stays: still subscribed, still live.
    first = host
        .subscribe(&record.id, stream, ReadFrom::Tail)
        .await
        .unwrap();
    host.append(&record.id, stream, StreamEvent::Message("both".into()))
        .await
        .unwrap();
    for sub in [&mut first, &mut second] {
        let event = tokio::time::timeout(Duration::from_secs(5), sub.events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.seq, 1);
    }
    assert_eq!(channel_count(&admin, &prefix).await, 3);
}
