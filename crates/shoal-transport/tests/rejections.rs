//! Every way the endpoint refuses a request, over real HTTP: the exact status code and the
//! JSON-RPC error body (code and message) of each refusal DESIGN.md lists.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::routing::get;
use common::{Harness, PRINCIPAL_HEADER};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shoal_core::codes::{self, session};
use shoal_core::engine::{Engine, EngineConfig};
use shoal_core::handler::Handlers;
use shoal_core::host::{MemoryHost, MemoryHostConfig};
use shoal_core::ids::NodeId;
use shoal_testkit::client::{LAST_EVENT_ID, PROTOCOL_VERSION, SESSION_ID, message};
use shoal_testkit::{McpClient, spawn_router};
use shoal_transport::{Challenge, HostGuardLayer, Rejection, TransportConfig};
use tokio_util::sync::CancellationToken;

const PARSE_ERROR: i64 = session::PARSE_ERROR as i64;
const INVALID_REQUEST: i64 = session::INVALID_REQUEST as i64;
const SESSION_NOT_FOUND: i64 = session::SESSION_NOT_FOUND as i64;

fn ping(id: i64) -> Value {
    message(id, "ping", None)
}

fn tools_list(id: i64) -> Value {
    message(id, "tools/list", None)
}

#[tokio::test]
async fn malformed_json_is_400_parse_error() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"#,
        "not json at all",
        "",
    ] {
        let raw = client.post_raw(body, |_| {}).await;
        raw.assert_rpc_error(400, PARSE_ERROR, "parse error");
        assert_eq!(raw.json().get("id"), None, "the id is unknown: {raw}");
    }
}

#[tokio::test]
async fn json_array_batch_is_400_invalid_request() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let raw = client.post_raw(json!([ping(1), ping(2)]), |_| {}).await;
    raw.assert_rpc_error(
        400,
        INVALID_REQUEST,
        "batched JSON-RPC messages are not supported",
    );
    let raw = client.post_raw(json!([]), |_| {}).await;
    raw.assert_rpc_error(400, INVALID_REQUEST, "batched");
}

#[tokio::test]
async fn not_json_rpc_is_400_invalid_request() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let cases = [
        (
            json!({ "id": 1, "method": "ping" }),
            r#""jsonrpc" must be "2.0""#,
        ),
        (
            json!({ "jsonrpc": "1.0", "id": 1, "method": "ping" }),
            r#""jsonrpc" must be "2.0""#,
        ),
        (json!("ping"), "a message must be a JSON object"),
        (
            json!({ "jsonrpc": "2.0" }),
            "a message needs a method or an id",
        ),
        (
            json!({ "jsonrpc": "2.0", "id": [1], "method": "ping" }),
            "an id must be a string or an integer",
        ),
        (
            json!({ "jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1] }),
            "params must be an object",
        ),
        (
            json!({ "jsonrpc": "2.0", "id": 1, "method": 7 }),
            "method must be a string",
        ),
    ];
    for (body, expected) in cases {
        client
            .post_raw(body, |_| {})
            .await
            .assert_rpc_error(400, INVALID_REQUEST, expected);
    }
}

#[tokio::test]
async fn missing_session_id_is_400() {
    let harness = Harness::start().await;
    let expected = "Mcp-Session-Id header is required";

    // A client that never initialized.
    let fresh = harness.client();
    fresh
        .post_raw(tools_list(1), |_| {})
        .await
        .assert_rpc_error(400, INVALID_REQUEST, expected);

    // A session's client that leaves the header out, on every method.
    let client = harness.connect().await;
    let without = |h: &mut reqwest::header::HeaderMap| {
        h.remove(SESSION_ID);
    };
    client
        .post_raw(tools_list(2), without)
        .await
        .assert_rpc_error(400, INVALID_REQUEST, expected);
    client
        .post_raw(
            json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
            without,
        )
        .await
        .assert_rpc_error(400, INVALID_REQUEST, expected);
    client
        .post_raw(
            json!({ "jsonrpc": "2.0", "id": "x.1", "result": {} }),
            without,
        )
        .await
        .assert_rpc_error(400, INVALID_REQUEST, expected);
    client
        .get_raw(without)
        .await
        .assert_rpc_error(400, INVALID_REQUEST, expected);
    let mut headers = client.default_headers();
    headers.remove(SESSION_ID);
    client
        .send_raw(Method::DELETE, headers, None)
        .await
        .assert_rpc_error(400, INVALID_REQUEST, expected);

    // The session is untouched.
    assert!(client.request("ping", None).await.get("result").is_some());
}

#[tokio::test]
async fn unsupported_protocol_version_is_400() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    for version in ["2024-11-05", "2026-07-28", "latest"] {
        let set = |h: &mut reqwest::header::HeaderMap| {
            h.insert(PROTOCOL_VERSION, HeaderValue::from_static(version));
        };
        client.get_raw(set).await.assert_rpc_error(
            400,
            INVALID_REQUEST,
            "unsupported MCP-Protocol-Version",
        );
        if version == "2026-07-28" {
            // A stateless-era header on a body that does not claim the era: the classification
            // both SDKs use refuses it with invalid params (tests/modern.rs).
            continue;
        }
        let error = client.post_raw(tools_list(1), set).await.assert_rpc_error(
            400,
            INVALID_REQUEST,
            "unsupported MCP-Protocol-Version",
        );
        assert!(
            error["message"].as_str().unwrap().contains(version),
            "the message names the version: {error}"
        );
    }
    // Every served revision passes, and so does no header at all (2025-03-26 is assumed).
    for version in ["2025-11-25", "2025-06-18", "2025-03-26"] {
        let raw = client
            .post_raw(ping(2), |h| {
                h.insert(PROTOCOL_VERSION, HeaderValue::from_static(version));
            })
            .await;
        assert_eq!(raw.status, 200, "{version}: {raw}");
    }
    let raw = client
        .post_raw(ping(3), |h| {
            h.remove(PROTOCOL_VERSION);
        })
        .await;
    assert_eq!(raw.status, 200, "{raw}");
}

#[tokio::test]
async fn malformed_last_event_id_is_400() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    for last in [
        "garbage",
        "short.1",
        "AAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAA.",
        "AAAAAAAAAAAAAAAA.-1",
        "AAAAAAAAAAAAAAAA.1x",
    ] {
        let raw = client
            .get_raw(|h| {
                h.insert(LAST_EVENT_ID, HeaderValue::from_static(last));
            })
            .await;
        raw.assert_rpc_error(400, INVALID_REQUEST, "malformed Last-Event-ID");
    }
}

#[tokio::test]
async fn initialize_with_a_session_id_is_400() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let initialize = message(
        9,
        "initialize",
        Some(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": { "name": "again", "version": "1" }
        })),
    );
    let raw = client.post_raw(initialize, |_| {}).await;
    raw.assert_rpc_error(
        400,
        INVALID_REQUEST,
        "initialize must not carry Mcp-Session-Id",
    );
    assert_eq!(raw.header(SESSION_ID), None, "no new session: {raw}");
}

#[tokio::test]
async fn a_discover_probe_without_the_claim_is_a_session_era_400() {
    let harness = Harness::start().await;
    let client = harness.client();
    // A `server/discover` without a `_meta` claim or header is of the session era: without a
    // session it is refused with a plain 400, and a dual-era client falls back to initialize.
    // (With the claim it is served: tests/modern.rs.)
    let raw = client
        .post_raw(message(2, "server/discover", None), |_| {})
        .await;
    let error = raw.assert_rpc_error(400, INVALID_REQUEST, "Mcp-Session-Id header is required");
    assert_plain(&error);
}

/// A "plain" 400: no code of the range the 2026 revision reserves, which dual-era clients read
/// as "a modern server".
fn assert_plain(error: &Value) {
    let code = i32::try_from(error["code"].as_i64().unwrap()).unwrap();
    assert!(
        !codes::MODERN_ONLY.contains(&code),
        "reserved code {code}: {error}"
    );
}

#[tokio::test]
async fn bad_origin_is_403() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let evil = |h: &mut reqwest::header::HeaderMap| {
        h.insert(ORIGIN, HeaderValue::from_static("http://evil.example.com"));
    };
    let expected = "Origin not allowed";
    client
        .post_raw(ping(1), evil)
        .await
        .assert_rpc_error(403, INVALID_REQUEST, expected);
    client
        .get_raw(evil)
        .await
        .assert_rpc_error(403, INVALID_REQUEST, expected);
    let mut headers = client.default_headers();
    evil(&mut headers);
    client
        .send_raw(Method::DELETE, headers, None)
        .await
        .assert_rpc_error(403, INVALID_REQUEST, expected);
    // Initialize too: no session is created for a foreign page.
    let raw = harness
        .client()
        .post_raw(
            message(
                2,
                "initialize",
                Some(json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": { "name": "evil", "version": "1" }
                })),
            ),
            evil,
        )
        .await;
    raw.assert_rpc_error(403, INVALID_REQUEST, expected);
    assert_eq!(raw.header(SESSION_ID), None);
    for origin in ["null", "http://localhost@evil.example.com"] {
        client
            .post_raw(ping(3), |h| {
                h.insert(ORIGIN, HeaderValue::from_static(origin));
            })
            .await
            .assert_rpc_error(403, INVALID_REQUEST, expected);
    }
    // A loopback origin passes, and the session survived.
    let raw = client
        .post_raw(ping(4), |h| {
            h.insert(ORIGIN, HeaderValue::from_static("http://localhost:6274"));
        })
        .await;
    assert_eq!(raw.status, 200, "{raw}");
}

#[tokio::test]
async fn bad_host_is_403() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let expected = "Host header not allowed";
    for host in ["evil.example.com", "evil.example.com:80", "127.0.0.2"] {
        let rebound = |h: &mut reqwest::header::HeaderMap| {
            h.insert(HOST, HeaderValue::from_static(host));
        };
        client
            .post_raw(ping(1), rebound)
            .await
            .assert_rpc_error(403, INVALID_REQUEST, expected);
        client
            .get_raw(rebound)
            .await
            .assert_rpc_error(403, INVALID_REQUEST, expected);
    }
    let raw = client
        .post_raw(ping(2), |h| {
            h.insert(HOST, HeaderValue::from_static("localhost:1234"));
        })
        .await;
    assert_eq!(raw.status, 200, "a loopback name passes: {raw}");
}

/// DNS rebinding on every method: a foreign `Host` (the attacker's name resolved to
/// loopback), and a foreign `Origin` even when `Host` is a loopback name; loopback pairs pass.
#[tokio::test]
async fn rebinding_is_refused_on_every_method() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let rebound = |h: &mut reqwest::header::HeaderMap| {
        h.insert(HOST, HeaderValue::from_static("evil.example"));
    };
    let foreign_page = |h: &mut reqwest::header::HeaderMap| {
        h.insert(HOST, HeaderValue::from_static("localhost"));
        h.insert(ORIGIN, HeaderValue::from_static("http://evil.example"));
    };
    for (edit, expected) in [
        (
            &rebound as &dyn Fn(&mut reqwest::header::HeaderMap),
            "Host header not allowed",
        ),
        (&foreign_page, "Origin not allowed"),
    ] {
        client
            .post_raw(ping(1), edit)
            .await
            .assert_rpc_error(403, INVALID_REQUEST, expected);
        client
            .get_raw(edit)
            .await
            .assert_rpc_error(403, INVALID_REQUEST, expected);
        let mut headers = client.default_headers();
        headers.remove(CONTENT_TYPE);
        edit(&mut headers);
        client
            .send_raw(Method::DELETE, headers, None)
            .await
            .assert_rpc_error(403, INVALID_REQUEST, expected);
    }

    // The session survived the refused DELETEs; a loopback page on a loopback name uses every
    // method.
    let mut local = shoal_testkit::McpClient::new(harness.url())
        .with_header("host", "localhost:6274")
        .with_header("origin", "http://localhost:6274");
    local.initialize().await;
    let raw = local.post_raw(ping(2), |_| {}).await;
    assert_eq!(raw.status, 200, "{raw}");
    let stream = local.open_stream(None).await;
    assert!(stream.is_ok(), "GET: {:?}", stream.err());
    drop(stream);
    let raw = local.delete().await;
    assert_eq!(raw.status, 204, "{raw}");
    let raw = client.post_raw(ping(3), |_| {}).await;
    assert_eq!(raw.status, 200, "the first session is intact: {raw}");
}

/// `HostGuardLayer` in front of an auth layer that refuses every request, and host-only around
/// a public route beside the endpoint (as `shoal serve` wires them): a rebound request gets the
/// guard's 403, never the challenge; the public route takes any `Origin`; allowed requests reach
/// auth (401) or the public route (200).
#[tokio::test]
async fn host_guard_layer_answers_before_auth() {
    let config = TransportConfig::default();
    let guard = HostGuardLayer::new(&config);
    let host = MemoryHost::new(
        NodeId::with_random_suffix("test"),
        MemoryHostConfig::default(),
    );
    let engine = Engine::new(Arc::new(host), Handlers::new(), EngineConfig::default());
    let public = axum::Router::new()
        .route("/public", get(|| async { "public" }))
        .layer(guard.clone().host_only());
    let router = shoal_transport::router(engine, config, CancellationToken::new())
        .layer(axum::middleware::from_fn(refuse_all))
        .layer(guard)
        .merge(public);
    let server = spawn_router(router).await;
    let endpoint = McpClient::new(server.mcp_url());
    let public = McpClient::new(server.url("/public"));
    let rebound = |h: &mut reqwest::header::HeaderMap| {
        h.insert(HOST, HeaderValue::from_static("evil.example"));
    };
    let foreign_page = |h: &mut reqwest::header::HeaderMap| {
        h.insert(ORIGIN, HeaderValue::from_static("http://evil.example"));
    };

    for (edit, expected) in [
        (
            &rebound as &dyn Fn(&mut reqwest::header::HeaderMap),
            "Host header not allowed",
        ),
        (&foreign_page, "Origin not allowed"),
    ] {
        let raw = endpoint.post_raw(ping(1), edit).await;
        raw.assert_rpc_error(403, INVALID_REQUEST, expected);
        assert_eq!(raw.header("www-authenticate"), None, "{raw}");
        endpoint
            .get_raw(edit)
            .await
            .assert_rpc_error(403, INVALID_REQUEST, expected);
    }
    public
        .get_raw(rebound)
        .await
        .assert_rpc_error(403, INVALID_REQUEST, "Host header not allowed");
    let raw = public.get_raw(foreign_page).await;
    assert_eq!((raw.status.as_u16(), raw.text()), (200, "public".into()));

    let raw = endpoint.post_raw(ping(2), |_| {}).await;
    raw.assert_rpc_error(401, INVALID_REQUEST, "stand-in refusal");
    assert_eq!(raw.header("www-authenticate"), Some("Bearer"), "{raw}");
    let raw = public.get_raw(|_| {}).await;
    assert_eq!((raw.status.as_u16(), raw.text()), (200, "public".into()));
}

/// An auth layer that refuses every request with a challenge.
async fn refuse_all(
    _request: axum::extract::Request,
    _next: axum::middleware::Next,
) -> axum::response::Response {
    Rejection::Auth(Challenge {
        status: StatusCode::UNAUTHORIZED,
        www_authenticate: "Bearer".into(),
        message: "stand-in refusal".into(),
    })
    .into_response()
}

#[tokio::test]
async fn unknown_session_is_404() {
    let harness = Harness::start().await;
    let mut client = harness.connect().await;
    for id in ["AAAAAAAAAAAAAAAAAAAAAA", "not-a-session-id", "x"] {
        client.set_session_id(Some(id.to_owned()));
        assert_session_not_found(&client, id).await;
    }
}

/// Asserts that every method of the endpoint answers 404 for `client`'s session.
async fn assert_session_not_found(client: &shoal_testkit::McpClient, what: &str) {
    let expected = "session not found";
    let request = client.post_raw(tools_list(client.next_id()), |_| {}).await;
    request.assert_rpc_error(404, SESSION_NOT_FOUND, expected);
    let notification = client.notify("notifications/initialized", None).await;
    notification.assert_rpc_error(404, SESSION_NOT_FOUND, expected);
    let response = client.respond(&json!("node.1"), Ok(json!({}))).await;
    response.assert_rpc_error(404, SESSION_NOT_FOUND, expected);
    let get = client.get_raw(|_| {}).await;
    get.assert_rpc_error(404, SESSION_NOT_FOUND, expected);
    let resume = client
        .get_raw(|h| {
            h.insert(
                LAST_EVENT_ID,
                HeaderValue::from_static("AAAAAAAAAAAAAAAA.0"),
            );
        })
        .await;
    resume.assert_rpc_error(404, SESSION_NOT_FOUND, expected);
    let delete = client.delete().await;
    delete.assert_rpc_error(404, SESSION_NOT_FOUND, expected);
    // The bodies say nothing about the session.
    for raw in [&request, &notification, &response, &get, &resume, &delete] {
        assert_eq!(
            raw.json(),
            json!({ "jsonrpc": "2.0", "error": { "code": SESSION_NOT_FOUND, "message": "session not found" } }),
            "{what}"
        );
    }
}

#[tokio::test]
async fn every_method_is_404_after_delete() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let raw = client.delete().await;
    assert_eq!(raw.status, 204, "{raw}");
    assert!(raw.body.is_empty(), "{raw}");
    assert_session_not_found(&client, "deleted").await;
}

#[tokio::test]
async fn session_of_another_principal_is_404() {
    let harness = Harness::start().await;
    let alice = harness.connect_as("alice").await;
    let alice_session = alice.session_id().unwrap().to_owned();

    let mut bob = shoal_testkit::McpClient::new(harness.url()).with_header(PRINCIPAL_HEADER, "bob");
    bob.set_session_id(Some(alice_session.clone()));
    assert_session_not_found(&bob, "bob").await;
    let mut anonymous = harness.client();
    anonymous.set_session_id(Some(alice_session));
    assert_session_not_found(&anonymous, "anonymous").await;

    // Alice's session is intact (bob's DELETE did nothing) and bound to alice.
    let result = alice.call_tool("whoami", json!({})).await;
    assert_eq!(result["content"][0]["text"], "alice");
    let bob = harness.connect_as("bob").await;
    assert_eq!(
        bob.call_tool("whoami", json!({})).await["content"][0]["text"],
        "bob"
    );
    // An authenticated principal cannot use an anonymous session either.
    let mut carol =
        shoal_testkit::McpClient::new(harness.url()).with_header(PRINCIPAL_HEADER, "carol");
    let anonymous = harness.connect().await;
    carol.set_session_id(anonymous.session_id().map(str::to_owned));
    assert_session_not_found(&carol, "carol").await;
}

#[tokio::test]
async fn put_and_patch_are_405_with_allow() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    for method in [Method::PUT, Method::PATCH, Method::OPTIONS] {
        let raw = client
            .send_raw(
                method.clone(),
                client.default_headers(),
                Some(ping(1).to_string().into_bytes()),
            )
            .await;
        raw.assert_rpc_error(405, INVALID_REQUEST, "method not allowed");
        assert_eq!(
            raw.header("allow"),
            Some("GET, POST, DELETE"),
            "{method}: {raw}"
        );
    }
}

#[tokio::test]
async fn post_without_both_media_types_is_406() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    for accept in [
        "application/json",
        "text/event-stream",
        "text/html",
        "application/json, text/html",
    ] {
        client
            .post_raw(ping(1), |h| {
                h.insert(ACCEPT, HeaderValue::from_static(accept));
            })
            .await
            .assert_rpc_error(
                406,
                INVALID_REQUEST,
                "must accept both application/json and text/event-stream",
            );
    }
    // Wildcards and parameters count.
    for accept in [
        "*/*",
        "application/*, text/*",
        "application/json;q=0.9, text/event-stream;q=1",
    ] {
        let raw = client
            .post_raw(ping(2), |h| {
                h.insert(ACCEPT, HeaderValue::from_static(accept));
            })
            .await;
        assert_eq!(raw.status, 200, "{accept}: {raw}");
    }
}

#[tokio::test]
async fn get_without_event_stream_is_406() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    for accept in ["application/json", "text/html"] {
        client
            .get_raw(|h| {
                h.insert(ACCEPT, HeaderValue::from_static(accept));
            })
            .await
            .assert_rpc_error(406, INVALID_REQUEST, "must accept text/event-stream");
    }
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    const LIMIT: usize = 1024;
    let harness = Harness::start_with(TransportConfig {
        max_body_bytes: LIMIT,
        ..TransportConfig::default()
    })
    .await;
    let client = harness.connect().await;
    let body_of = |len: usize| {
        let base = message(
            1,
            "tools/call",
            Some(json!({ "name": "echo", "arguments": { "text": "" } })),
        );
        let padding = len - base.to_string().len();
        let body = message(
            1,
            "tools/call",
            Some(json!({ "name": "echo", "arguments": { "text": "x".repeat(padding) } })),
        )
        .to_string();
        assert_eq!(body.len(), len);
        body
    };
    let raw = client.post_raw(body_of(LIMIT), |_| {}).await;
    assert_eq!(raw.status, 200, "a body of exactly the limit passes: {raw}");
    client
        .post_raw(body_of(LIMIT + 1), |_| {})
        .await
        .assert_rpc_error(
            413,
            INVALID_REQUEST,
            "payload too large: the limit is 1024 bytes",
        );
    client
        .post_raw(body_of(16 * LIMIT), |_| {})
        .await
        .assert_rpc_error(413, INVALID_REQUEST, "payload too large");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonp",
    ] {
        client
            .post_raw(ping(1), |h| {
                h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            })
            .await
            .assert_rpc_error(
                415,
                INVALID_REQUEST,
                "Content-Type must be application/json",
            );
    }
    client
        .post_raw(ping(2), |h| {
            h.remove(CONTENT_TYPE);
        })
        .await
        .assert_rpc_error(
            415,
            INVALID_REQUEST,
            "Content-Type must be application/json",
        );
    let raw = client
        .post_raw(ping(3), |h| {
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("Application/JSON; charset=utf-8"),
            );
        })
        .await;
    assert_eq!(raw.status, 200, "parameters and case are fine: {raw}");
}
