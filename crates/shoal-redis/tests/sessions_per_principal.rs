//! Sessions per principal are counted cluster-wide: two engines on one Redis stand for two
//! replicas, and the limit counts the sessions created on either, atomically.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use shoal_core::engine::{Engine, EngineConfig, InitializeError};
use shoal_core::handler::Handlers;
use shoal_core::host::{NodeBus, SessionStore};
use shoal_core::jsonrpc::{Message, Request};
use shoal_core::session::{Principal, SessionRecord};
use shoal_testkit::redis::RedisServer;

fn initialize() -> Request {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let Ok(Message::Request(init)) = Message::from_value(init) else {
        panic!("an initialize request")
    };
    init
}

async fn replicas(redis: &RedisServer, prefix: &str, max: usize) -> (Engine, Engine) {
    let config = EngineConfig {
        max_sessions_per_principal: max,
        ..EngineConfig::default()
    };
    let mut engines = Vec::new();
    for node in ["replica-a", "replica-b"] {
        let host = common::host(&redis.url(), prefix, node).await;
        engines.push(Engine::new(Arc::new(host), Handlers::new(), config.clone()));
    }
    let b = engines.pop().expect("two engines");
    let a = engines.pop().expect("two engines");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_counts_sessions_created_on_either_replica() {
    let redis = RedisServer::start().await;
    let prefix = common::unique_prefix();
    let (a, b) = replicas(&redis, &prefix, 3).await;
    let alice = Principal::new("https://issuer.example|alice");
    let init = initialize();

    let (first, _) = a.initialize(Some(&alice), &init).await.unwrap();
    b.initialize(Some(&alice), &init).await.unwrap();
    a.initialize(Some(&alice), &init).await.unwrap();
    for replica in [&a, &b] {
        assert_eq!(
            replica.initialize(Some(&alice), &init).await.unwrap_err(),
            InitializeError::TooManySessions { max: 3 }
        );
    }
    // Sessions without a principal are not counted, nor limited.
    for _ in 0..5 {
        b.initialize(None, &init).await.unwrap();
    }
    // A delete on B of a session made on A frees the slot everywhere.
    assert!(b.host().delete_session(&first.id).await.unwrap());
    b.initialize(Some(&alice), &init).await.unwrap();
    assert_eq!(
        a.initialize(Some(&alice), &init).await.unwrap_err(),
        InitializeError::TooManySessions { max: 3 }
    );

    // The principal's set is bounded in time: it expires with its sessions' lifetime.
    let admin = common::admin(&redis.url()).await;
    let key = format!("{prefix}:principal:{{{}}}:sessions", alice.id);
    let ttl = common::raw(&admin, "PTTL", vec![&key]).await;
    let ttl = ttl.as_i64().expect("PTTL answers an integer");
    assert!(ttl > 0, "the set has a TTL: {ttl}");
    let count = common::raw(&admin, "ZCARD", vec![&key]).await;
    assert_eq!(count.as_i64(), Some(3), "the deleted session left the set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_initializes_on_two_replicas_never_overshoot() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(&redis, &common::unique_prefix(), 5).await;
    let bob = Principal::new("bob");
    let init = initialize();
    let attempts = (0..40).map(|i| {
        let replica = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (bob, init) = (bob.clone(), init.clone());
        tokio::spawn(async move { replica.initialize(Some(&bob), &init).await })
    });
    let mut created = 0;
    let mut refused = 0;
    for outcome in futures::future::join_all(attempts).await {
        match outcome.expect("the task ran") {
            Ok(_) => created += 1,
            Err(InitializeError::TooManySessions { max: 5 }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, refused), (5, 35));
}

/// Figures, not assertions: what the count costs a create on a local Redis.
#[tokio::test]
async fn print_the_cost_of_counting() {
    let redis = RedisServer::start().await;
    let host = common::host(&redis.url(), &common::unique_prefix(), "figures").await;
    const N: u32 = 300;
    for (what, principal, max) in [
        ("no principal", None, 100),
        ("principal, limit 0", Some("p0"), 0),
        ("principal, limit 100k", Some("p1"), 100_000),
    ] {
        let started = Instant::now();
        for _ in 0..N {
            let record = SessionRecord::new(
                principal.map(str::to_owned),
                "2025-11-25",
                json!({}),
                json!({"name": "t"}),
            );
            host.create_session(&record, max).await.unwrap();
        }
        println!(
            "create_session, {what}: {:?} per create (mean of {N})",
            started.elapsed() / N
        );
    }
    // A refusal at the limit, where every member's hash still exists (the prune finds none).
    let full = 100;
    for _ in 0..full {
        host.create_session(&common::record(), full).await.unwrap();
    }
    let started = Instant::now();
    for _ in 0..N {
        let refused = host.create_session(&common::record(), full).await;
        assert!(refused.is_err());
    }
    println!(
        "create_session refused at a limit of {full}: {:?} per refusal (mean of {N})",
        started.elapsed() / N
    );
}

/// A refused session was never seen by any node: destroying it announces nothing.
#[tokio::test]
async fn a_refused_create_broadcasts_nothing() {
    use futures::StreamExt;
    use shoal_core::host::{Broadcast, HostError, NodeEvent};

    let redis = RedisServer::start().await;
    let host = common::host(&redis.url(), &common::unique_prefix(), "quiet").await;
    let mut events = host.node_events();
    host.create_session(&common::record(), 1).await.unwrap();
    assert_eq!(
        host.create_session(&common::record(), 1).await,
        Err(HostError::PrincipalAtLimit)
    );
    // Both travel on the broadcast channel, in order: the marker comes first only if the
    // refusal published nothing.
    let marker = NodeEvent::Broadcast(Broadcast::ToolsListChanged);
    host.broadcast(marker.clone()).await.unwrap();
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await
        .expect("the marker within 5 s");
    assert_eq!(first, Some(marker));
}

/// Deleting a session without a principal touches no principal's set and reports it existed.
#[tokio::test]
async fn a_session_without_a_principal_is_deleted_as_before() {
    let redis = RedisServer::start().await;
    let host = common::host(&redis.url(), &common::unique_prefix(), "anonymous").await;
    let mut record = common::record();
    record.principal = None;
    host.create_session(&record, 1).await.unwrap();
    assert!(host.delete_session(&record.id).await.unwrap());
    assert!(!host.delete_session(&record.id).await.unwrap());
    assert_eq!(host.session(&record.id).await.unwrap(), None);
}
