//! Redis goes away and comes back: calls fail fast with `Unavailable`, never hang, and the
//! same host works again afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use shoal_core::host::{
    Broadcast, HostError, NodeBus, NodeEvent, ReadFrom, SessionStore, SessionUpdate, StreamEvent,
    StreamLog,
};
use shoal_core::ids::StreamId;
use shoal_core::session::LogLevel;
use shoal_testkit::redis::RedisServer;

/// How long a call may take while Redis is down.
const FAIL_FAST: Duration = Duration::from_secs(2);

async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, HostError>>,
) -> Duration {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("{what} hangs while Redis is down"));
    let took = started.elapsed();
    assert!(
        matches!(result, Err(HostError::Unavailable(_))),
        "{what}: {result:?}"
    );
    assert!(took < FAIL_FAST, "{what} took {took:?}");
    took
}

#[tokio::test]
async fn calls_fail_fast_while_redis_is_down_and_the_host_recovers() {
    let mut redis = RedisServer::start().await;
    let host = common::host(&redis.url(), &common::unique_prefix(), "n").await;
    let record = common::record();
    host.create_session(&record, 0).await.unwrap();
    let stream = StreamId::random();
    host.append(&record.id, &stream, StreamEvent::Message("x".into()))
        .await
        .unwrap();
    let mut live = host
        .subscribe(&record.id, &stream, ReadFrom::After(0))
        .await
        .unwrap();
    assert_eq!(live.events.next().await.unwrap().unwrap().seq, 1);
    host.ping().await.unwrap();

    redis.kill();
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let took = [
            assert_unavailable("ping", host.ping()).await,
            assert_unavailable("session", host.session(&record.id)).await,
            assert_unavailable("create_session", host.create_session(&common::record(), 0)).await,
            assert_unavailable(
                "update_session",
                host.update_session(&record.id, SessionUpdate::LogLevel(LogLevel::Debug)),
            )
            .await,
            assert_unavailable("append", host.append(&record.id, &stream, StreamEvent::End)).await,
            assert_unavailable(
                "subscribe",
                host.subscribe(&record.id, &stream, ReadFrom::After(0)),
            )
            .await,
            assert_unavailable(
                "send_to_node",
                host.send_to_node(
                    host.node_id(),
                    NodeEvent::Broadcast(Broadcast::ToolsListChanged),
                ),
            )
            .await,
            assert_unavailable(
                "broadcast",
                host.broadcast(NodeEvent::Broadcast(Broadcast::ToolsListChanged)),
            )
            .await,
            assert_unavailable("delete_session", host.delete_session(&record.id)).await,
        ];
        slowest = took.into_iter().fold(slowest, Duration::max);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("slowest call while Redis was down: {slowest:?}");

    redis.restart().await;
    let started = Instant::now();
    while host.ping().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the host reconnects within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("ping answered {:?} after the restart", started.elapsed());

    // No persistence: the old session is gone, and its live reader stops.
    assert_eq!(host.session(&record.id).await.unwrap(), None);
    let end = tokio::time::timeout(Duration::from_secs(5), live.events.next())
        .await
        .expect("the old reader stops within 5 s");
    assert!(matches!(end, None | Some(Err(_))), "{end:?}");

    // The same host serves new sessions, live, with scripts reloaded after NOSCRIPT.
    let record = common::record();
    host.create_session(&record, 0).await.unwrap();
    let mut sub = host
        .subscribe(&record.id, &record.standalone_stream, ReadFrom::Tail)
        .await
        .unwrap();
    host.append(
        &record.id,
        &record.standalone_stream,
        StreamEvent::Message("back".into()),
    )
    .await
    .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), sub.events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.seq, event.event),
        (1, StreamEvent::Message("back".into()))
    );

    // And its inbox is subscribed again.
    let mut events = host.node_events();
    let admin = common::admin(&redis.url()).await;
    let inbox = format!("{}:node:n", host.config().key_prefix);
    let started = Instant::now();
    while !format!(
        "{:?}",
        common::raw(&admin, "PUBSUB", vec!["CHANNELS"]).await
    )
    .contains(&inbox)
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the inbox is resubscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.send_to_node(
        host.node_id(),
        NodeEvent::Broadcast(Broadcast::ToolsListChanged),
    )
    .await
    .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap(),
        Some(NodeEvent::Broadcast(Broadcast::ToolsListChanged))
    );
}

#[tokio::test]
async fn connect_fails_fast_when_redis_is_absent() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    redis.kill();
    let started = Instant::now();
    let result = shoal_redis::RedisHost::connect(common::config(&url, "x", "n")).await;
    assert!(
        matches!(result, Err(HostError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let bad_prefix = shoal_redis::RedisHostConfig {
        key_prefix: "a{b}".into(),
        ..common::config("redis://127.0.0.1:1", "x", "n")
    };
    assert!(matches!(
        shoal_redis::RedisHost::connect(bad_prefix).await,
        Err(HostError::Unavailable(_))
    ));
    let bad_url = common::config("http://127.0.0.1:1", "x", "n");
    assert!(matches!(
        shoal_redis::RedisHost::connect(bad_url).await,
        Err(HostError::Unavailable(_))
    ));
}

/// A URL the Redis client cannot use is refused at once, with the client's own error kept as
/// the cause (not flattened into text).
#[tokio::test]
async fn a_bad_url_keeps_the_clients_error() {
    let config = shoal_redis::RedisHostConfig::new("not a URL", shoal_core::ids::NodeId::new("n"));
    let Err(HostError::Unavailable(cause)) = shoal_redis::RedisHost::connect(config).await else {
        panic!("a malformed URL was accepted");
    };
    assert!(
        cause.to_string().starts_with("invalid Redis URL: "),
        "{cause}"
    );
    let Some(shoal_redis::ConfigError::Url(client_error)) =
        cause.as_error().downcast_ref::<shoal_redis::ConfigError>()
    else {
        panic!("not a URL error: {cause:?}");
    };
    assert!(
        client_error
            .as_error()
            .downcast_ref::<fred::error::Error>()
            .is_some(),
        "{client_error:?}"
    );
}
