//! An endpoint at a path other than the default (`/api/mcp`): the Protected Resource Metadata
//! is published for that path and names it, the challenge points there, and nothing is
//! published for `/mcp`, where no endpoint is.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use shoal_auth::{Auth, AuthConfig};
use shoal_core::engine::{Engine, EngineConfig};
use shoal_core::handler::Handlers;
use shoal_core::host::{MemoryHost, MemoryHostConfig};
use shoal_core::ids::NodeId;
use shoal_testkit::spawn_router;
use shoal_transport::TransportConfig;
use tokio_util::sync::CancellationToken;

const API_PUBLIC_URL: &str = "https://mcp.example.com/api/mcp";

#[tokio::test]
async fn metadata_and_challenges_follow_the_endpoint_path() {
    let key = TestKey::ed25519("k");
    let server = TestAs::simple(&[&key]).await;
    let mut config = server.config();
    config.audience = API_PUBLIC_URL.into();
    let transport = TransportConfig {
        path: "/api/mcp".into(),
        allowed_hosts: vec!["*".into()],
        ..TransportConfig::default()
    };
    let auth = Auth::start(AuthConfig::Jwt(config), API_PUBLIC_URL, &transport.path)
        .await
        .unwrap();
    let host = Arc::new(MemoryHost::new(
        NodeId::new("n"),
        MemoryHostConfig::default(),
    ));
    let engine = Engine::new(host, Handlers::new(), EngineConfig::default());
    let router = shoal_transport::router(engine, transport, CancellationToken::new())
        .layer(auth.layer())
        .merge(auth.routes());
    let served = spawn_router(router).await;
    let http = reqwest::Client::new();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let post = |token: Option<String>| {
        let mut request = http
            .post(served.url("/api/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(ping.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let refused = post(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/api/mcp\""
    );

    for path in [
        "/.well-known/oauth-protected-resource/api/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let metadata = http.get(served.url(path)).send().await.unwrap();
        assert_eq!(metadata.status(), 200, "{path}");
        let document: Value = metadata.json().await.unwrap();
        assert_eq!(document["resource"], API_PUBLIC_URL, "{path}");
        assert_eq!(document["authorization_servers"], json!([server.issuer]));
    }
    let elsewhere = http
        .get(served.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404, "no endpoint at /mcp");

    let mut claims = server.claims("");
    claims["aud"] = json!(API_PUBLIC_URL);
    let accepted = post(Some(key.sign(&claims))).await.unwrap();
    assert_eq!(accepted.status(), 200);
    let body: Value = accepted.json().await.unwrap();
    assert_eq!(body["result"], json!({}));
}

#[tokio::test]
async fn an_endpoint_path_must_start_with_a_slash() {
    let error = Auth::start(AuthConfig::None, PUBLIC_URL, "mcp")
        .await
        .unwrap_err();
    assert!(
        matches!(error, shoal_auth::Error::InvalidEndpointPath(_)),
        "{error}"
    );
}
