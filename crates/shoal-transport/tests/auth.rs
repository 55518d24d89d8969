//! The auth port through the real endpoint on a loopback port: a custom [`Authenticator`]
//! (API keys in a header, standing in for a database or an introspection endpoint) in front of
//! `shoal_transport::router`, served with the peer address as `axum::serve` records it.
//! Checked: the principal and its claims reach the handlers, the credential header does not,
//! the peer address reaches the authenticator, each refusal has its status, challenge and
//! body, and per-tool scopes work with this authenticator as with the built-in ones.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, StatusCode};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use shoal_core::codes::session::{INTERNAL_ERROR, INVALID_REQUEST};
use shoal_core::engine::{Engine, EngineConfig};
use shoal_core::handler::{Handlers, ToolError, ToolSet, typed_tool};
use shoal_core::host::{MemoryHost, MemoryHostConfig};
use shoal_core::ids::NodeId;
use shoal_core::session::Principal;
use shoal_testkit::McpClient;
use shoal_transport::TransportConfig;
use shoal_transport::auth::{
    Anonymous, AuthError, AuthLayer, AuthRequest, Authenticator, Challenge, Challenger,
    ToolScopeCheck,
};
use tokio_util::sync::CancellationToken;

static KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// `alice-key` is alice of the blue team with scope `read`; `down` stands for a backend that
/// cannot be reached; anything else is refused. Records the peer of each request.
#[derive(Debug, Default)]
struct ApiKeys {
    peers: Mutex<Vec<Option<SocketAddr>>>,
}

#[async_trait::async_trait]
impl Authenticator for ApiKeys {
    async fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        self.peers.lock().unwrap().push(request.peer);
        let challenger = Challenger::default();
        let Some(key) = request.headers.get(&KEY_HEADER) else {
            return Err(challenger.missing().into());
        };
        match key.to_str() {
            Ok("alice-key") => {
                let mut principal = Principal::new("alice");
                principal.scopes = vec!["read".into()];
                principal.claims.insert("team".into(), json!("blue"));
                Ok(Some(principal))
            }
            Ok("down") => Err(AuthError::Unavailable(
                "the key directory is unreachable".into(),
            )),
            _ => Err(challenger.invalid_token("the key is not known").into()),
        }
    }

    fn credential_header(&self) -> Option<&HeaderName> {
        Some(&KEY_HEADER)
    }
}

/// `secret` needs scope `admin`.
#[derive(Debug)]
struct AdminOnlySecret;

impl ToolScopeCheck for AdminOnlySecret {
    fn check(&self, tool: &str, principal: Option<&Principal>) -> Result<(), Challenge> {
        let granted = principal.is_some_and(|p| p.scopes.iter().any(|s| s == "admin"));
        if tool != "secret" || granted {
            return Ok(());
        }
        Err(Challenger::default().insufficient_scope(&["admin".into()], "admin only"))
    }
}

#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

/// Inside the auth layer: a request that still carries a credential header is a failure.
async fn no_credential_inside(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.contains_key(&KEY_HEADER) || headers.contains_key(http::header::AUTHORIZATION) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "credential forwarded").into_response();
    }
    next.run(request).await
}

/// Serves the endpoint behind `authenticator`, recording peers as `axum::serve` does.
async fn serve(authenticator: Arc<dyn Authenticator>) -> String {
    let host = Arc::new(MemoryHost::new(
        NodeId::new("n"),
        MemoryHostConfig::default(),
    ));
    let whoami = |ctx: shoal_core::handler::RequestContext, NoArgs {}| async move {
        let principal = ctx.principal();
        Ok::<_, ToolError>(
            json!({
                "id": principal.map(|p| p.id.clone()),
                "claims": principal.map(|p| p.claims.clone()),
            })
            .to_string(),
        )
    };
    let handlers = Handlers::new().tools(
        ToolSet::new()
            .with(typed_tool("whoami", "Names the caller", whoami))
            .with(typed_tool("secret", "Names the caller too", whoami)),
    );
    let engine = Engine::new(host, handlers, EngineConfig::default());
    let transport = TransportConfig {
        tool_scopes: Some(Arc::new(AdminOnlySecret)),
        ..TransportConfig::default()
    };
    let app = shoal_transport::router(engine, transport, CancellationToken::new())
        .layer(axum::middleware::from_fn(no_credential_inside))
        .layer(AuthLayer::new(authenticator));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}/mcp")
}

fn tool_text(result: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_custom_authenticator_gives_the_handlers_its_principal_and_claims() {
    let keys = Arc::new(ApiKeys::default());
    let url = serve(keys.clone()).await;
    let mut client = McpClient::new(url).with_header("x-api-key", "alice-key");
    client.initialize().await;
    client.notify_initialized().await;
    let answer = tool_text(&client.call_tool("whoami", json!({})).await);
    assert_eq!(answer, json!({"id": "alice", "claims": {"team": "blue"}}));

    let peers = keys.peers.lock().unwrap().clone();
    assert!(!peers.is_empty());
    for peer in peers {
        assert!(peer.expect("the peer address").ip().is_loopback());
    }

    // Per-tool scopes see this authenticator's principal like any other.
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "secret", "arguments": {}}});
    let refused = client.post_raw(call.to_string(), |_| {}).await;
    refused.assert_rpc_error(403, i64::from(INVALID_REQUEST), "forbidden: admin only");
    assert_eq!(
        refused.header("www-authenticate"),
        Some(
            "Bearer scope=\"admin\", error=\"insufficient_scope\", error_description=\"admin only\""
        )
    );
}

#[tokio::test]
async fn refusals_and_failures_of_a_custom_authenticator() {
    let url = serve(Arc::new(ApiKeys::default())).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();

    let raw = McpClient::new(url.clone())
        .post_raw(ping.clone(), |_| {})
        .await;
    raw.assert_rpc_error(
        401,
        i64::from(INVALID_REQUEST),
        "unauthorized: a bearer token is required",
    );
    assert_eq!(raw.header("www-authenticate"), Some("Bearer"));

    let raw = McpClient::new(url.clone())
        .with_header("x-api-key", "guess")
        .post_raw(ping.clone(), |_| {})
        .await;
    raw.assert_rpc_error(401, i64::from(INVALID_REQUEST), "the key is not known");
    assert_eq!(
        raw.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"the key is not known\"")
    );

    // The cause is logged, not sent.
    let raw = McpClient::new(url)
        .with_header("x-api-key", "down")
        .post_raw(ping, |_| {})
        .await;
    raw.assert_rpc_error(
        503,
        i64::from(INTERNAL_ERROR),
        "service unavailable: authentication cannot be checked now",
    );
    assert!(!raw.text().contains("directory"), "{raw}");
    assert_eq!(raw.header("www-authenticate"), None);
}

#[tokio::test]
async fn anonymous_lets_every_request_through_without_a_principal() {
    let url = serve(Arc::new(Anonymous)).await;
    let mut client = McpClient::new(url);
    client.initialize().await;
    client.notify_initialized().await;
    let answer = tool_text(&client.call_tool("whoami", json!({})).await);
    assert_eq!(answer, json!({"id": null, "claims": null}));
}
