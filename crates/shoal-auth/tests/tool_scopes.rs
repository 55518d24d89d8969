//! Per-tool scopes through the real transport: `tools/call` of a tool whose scopes the token
//! lacks is 403 with the tool's scopes in the challenge; `tools/list` still lists it.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use shoal_auth::{Auth, AuthConfig};
use shoal_core::engine::{Engine, EngineConfig};
use shoal_core::handler::{Handlers, RequestContext, ToolError, ToolSet, typed_tool};
use shoal_core::host::{MemoryHost, MemoryHostConfig};
use shoal_core::ids::NodeId;
use shoal_testkit::{McpClient, spawn_router};
use shoal_transport::TransportConfig;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize, JsonSchema)]
struct Text {
    text: String,
}

async fn echo(_ctx: RequestContext, Text { text }: Text) -> Result<String, ToolError> {
    Ok(text)
}

#[tokio::test]
async fn a_tool_call_needs_the_tools_scopes() {
    let key = TestKey::ed25519("k");
    let server = TestAs::simple(&[&key]).await;
    let mut config = server.config();
    config
        .tool_scopes
        .insert("echo".into(), vec!["mcp:echo".into()]);
    let auth = Auth::start(AuthConfig::Jwt(config), PUBLIC_URL, ENDPOINT_PATH)
        .await
        .unwrap();

    let host = Arc::new(MemoryHost::new(
        NodeId::new("n"),
        MemoryHostConfig::default(),
    ));
    let handlers = Handlers::new().tools(
        ToolSet::new()
            .with(typed_tool("echo", "Echoes", echo))
            .with(typed_tool("free", "Echoes too", echo)),
    );
    let engine = Engine::new(host, handlers, EngineConfig::default());
    let transport = TransportConfig {
        allowed_hosts: vec!["*".into()],
        tool_scopes: auth.tool_scopes(),
        ..TransportConfig::default()
    };
    let router = shoal_transport::router(engine, transport, CancellationToken::new())
        .layer(auth.layer())
        .merge(auth.routes());
    let served = spawn_router(router).await;

    let token = key.sign(&server.claims("mcp:other"));
    let mut client =
        McpClient::new(served.mcp_url()).with_header("authorization", &format!("Bearer {token}"));
    client.initialize().await;
    client.notify_initialized().await;
    let listed = client.request("tools/list", json!({})).await;
    assert_eq!(
        listed["result"]["tools"].as_array().unwrap().len(),
        2,
        "tools/list is not filtered"
    );
    assert_eq!(
        client.call_tool("free", json!({"text": "hi"})).await["content"][0]["text"],
        "hi"
    );
    let call = json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}}});
    let refused = client.post_raw(call.to_string(), |_| {}).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.headers["www-authenticate"],
        jwt_challenge(
            Some("mcp:echo"),
            Some((
                "insufficient_scope",
                "the token lacks a scope required by this tool"
            ))
        )
        .as_str()
    );

    // The same session with a token that has the scope (same principal: same iss and sub).
    let token = key.sign(&server.claims("mcp:echo"));
    let client = client.with_header("authorization", &format!("Bearer {token}"));
    assert_eq!(
        client.call_tool("echo", json!({"text": "ok"})).await["content"][0]["text"],
        "ok"
    );
}
