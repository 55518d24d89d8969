//! A session is bound to the principal that initialized it, on every replica: two engines on
//! one Redis stand for two replicas behind a load balancer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use serde_json::json;
use shoal_core::engine::{Engine, EngineConfig, SessionError};
use shoal_core::handler::Handlers;
use shoal_core::jsonrpc::Message;
use shoal_core::session::Principal;
use shoal_testkit::redis::RedisServer;

#[tokio::test]
async fn another_principal_cannot_use_a_session_on_any_replica() {
    let redis = RedisServer::start().await;
    let prefix = common::unique_prefix();
    let replica = |node: &'static str| {
        let url = redis.url();
        let prefix = prefix.clone();
        async move {
            let host = common::host(&url, &prefix, node).await;
            Engine::new(Arc::new(host), Handlers::new(), EngineConfig::default())
        }
    };
    let (a, b) = (replica("replica-a").await, replica("replica-b").await);
    let alice = Principal::new("https://issuer.example|alice");
    let bob = Principal::new("https://issuer.example|bob");
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let Ok(Message::Request(init)) = Message::from_value(init) else {
        panic!()
    };
    let (session, _) = a.initialize(Some(&alice), &init).await.unwrap();
    let id = session.id.as_str();

    for replica in [&a, &b] {
        let found = replica.resolve_session(id, Some(&alice)).await.unwrap();
        assert_eq!(found.principal.as_deref(), Some(alice.id.as_str()));
        assert_eq!(
            replica.resolve_session(id, Some(&bob)).await.unwrap_err(),
            SessionError::NotFound
        );
        assert_eq!(
            replica.resolve_session(id, None).await.unwrap_err(),
            SessionError::NotFound
        );
    }
    // Bob's refusals changed nothing for Alice.
    assert!(b.resolve_session(id, Some(&alice)).await.is_ok());
}
