//! The operator API on the admin listener, through three `shoal serve` replicas on one Redis:
//! ending a principal's sessions, refusing a principal and lifting it, each done through one
//! replica and effective on every replica; every refusal of the API itself (no token, a wrong
//! one, a bad body, nothing to act on) with its status and body.
//!
//! Real processes and a real `redis-server`, started by the test; every wait is bounded.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shoal_testkit::McpClient;
use shoal_testkit::cluster::ShoalCluster;

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const ADMIN_TOKEN: &str = "operator-secret-1";
/// How long a replica may take to learn of a refusal made on another (a broadcast on Redis).
const PROPAGATION: Duration = Duration::from_secs(2);

async fn cluster() -> ShoalCluster {
    ShoalCluster::builder(SHOAL)
        .replicas(3)
        .arg("--auth")
        .arg("static")
        .env("SHOAL_AUTH_TOKENS", "alice=alice-token,bob=bob-token")
        .env("SHOAL_ADMIN_TOKEN", ADMIN_TOKEN)
        .start()
        .await
}

fn as_user(url: String, token: &str) -> McpClient {
    McpClient::new(url).with_header("authorization", &format!("Bearer {token}"))
}

/// An operator API call on replica `i`'s admin listener: status and JSON body (Null if none).
async fn operator(
    cluster: &ShoalCluster,
    i: usize,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut request =
        reqwest::Client::new().request(method, format!("{}{path}", cluster.admin_url(i)));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body, challenge)
}

/// `initialize` of `token`'s principal on replica `i`: its HTTP status.
async fn initialize_status(cluster: &ShoalCluster, i: usize, token: &str) -> u16 {
    let client = as_user(cluster.replica_url(i), token);
    let raw = client
        .post_raw(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": { "name": "operator-test", "version": "1" } } }),
            |_| {},
        )
        .await;
    raw.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_ends_sessions_and_refuses_principals_on_every_replica() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let cluster = cluster().await;
        let mut alice = as_user(cluster.url(), "alice-token");
        alice.initialize().await;
        alice.notify_initialized().await;
        let mut bob = as_user(cluster.url(), "bob-token");
        bob.initialize().await;
        bob.notify_initialized().await;
        // Every replica has seen alice (and remembers that she is not refused).
        for _ in 0..3 {
            let echoed = alice.call_tool("echo", json!({ "text": "hi" })).await;
            assert_eq!(echoed["content"][0]["text"], "hi", "{echoed}");
        }

        // The API's own refusals.
        let delete = reqwest::Method::DELETE;
        let (status, body, challenge) =
            operator(&cluster, 1, delete.clone(), "/admin/principals/alice/sessions", None, None).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({ "error": "the operator API needs Authorization: Bearer <SHOAL_ADMIN_TOKEN>" }));
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"shoal-admin\""));
        let (status, _, _) = operator(&cluster, 1, delete.clone(), "/admin/principals/alice/sessions", Some("alice-token"), None).await;
        assert_eq!(status, 401, "an MCP token is not the operator's");
        let (status, body, _) = operator(&cluster, 1, delete.clone(), "/admin/sessions/not-a-session", Some(ADMIN_TOKEN), None).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({ "error": "no such session" })));

        // Ending alice's sessions through replica 1: her next request, on any replica, finds
        // no session; bob's goes on.
        let (status, body, _) =
            operator(&cluster, 1, delete.clone(), "/admin/principals/alice/sessions", Some(ADMIN_TOKEN), None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({ "principal": "alice", "ended": 1 })));
        for _ in 0..3 {
            let raw = alice
                .post_raw(json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" }), |_| {})
                .await;
            assert_eq!(raw.status, 404, "{raw}");
        }
        let echoed = bob.call_tool("echo", json!({ "text": "still here" })).await;
        assert_eq!(echoed["content"][0]["text"], "still here", "{echoed}");

        // Refusing alice through replica 2, for a minute: refused on every replica, with a
        // challenge; bob is not.
        let put = reqwest::Method::PUT;
        let path = "/admin/principals/alice/refusal";
        for (bad, message) in [
            (json!({ "duration": "soon" }), "duration \"soon\" is not a duration such as 30m or 1h"),
            (json!({ "duration": "0s" }), "duration must be between 1s and 365d"),
            (json!({ "for": "1m" }), "the body must be {\"duration\": \"1h\", \"issued_before\": <unix seconds, optional>}"),
        ] {
            let (status, body, _) = operator(&cluster, 2, put.clone(), path, Some(ADMIN_TOKEN), Some(bad.clone())).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body["error"].as_str().unwrap().starts_with(message), "{bad}: {body}");
        }
        let (status, body, _) =
            operator(&cluster, 2, put, path, Some(ADMIN_TOKEN), Some(json!({ "duration": "1m" }))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["refusal"], "all", "{body}");
        assert_eq!(body["sessions_ended"], 0, "{body}");
        let deadline = tokio::time::Instant::now() + PROPAGATION;
        for i in 0..3 {
            loop {
                match initialize_status(&cluster, i, "alice-token").await {
                    401 => break,
                    200 if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    other => panic!("replica {i}: alice still served ({other}) after {PROPAGATION:?}"),
                }
            }
            assert_eq!(initialize_status(&cluster, i, "bob-token").await, 200, "replica {i}");
        }
        let refused = as_user(cluster.replica_url(0), "alice-token")
            .post_raw(json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }), |_| {})
            .await;
        assert_eq!(refused.status, 401, "{refused}");
        assert_eq!(
            refused.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\", error_description=\"access revoked by an operator\""),
            "{refused}"
        );
        let (status, body, _) =
            operator(&cluster, 0, reqwest::Method::GET, path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, 200);
        assert_eq!(body["refusal"], "all");

        // Lifted through replica 0: served again everywhere.
        let (status, body, _) = operator(&cluster, 0, delete.clone(), path, Some(ADMIN_TOKEN), None).await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let deadline = tokio::time::Instant::now() + PROPAGATION;
        for i in 0..3 {
            while initialize_status(&cluster, i, "alice-token").await != 200 {
                assert!(tokio::time::Instant::now() < deadline, "replica {i} still refuses alice");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let (status, body, _) = operator(&cluster, 1, delete, path, Some(ADMIN_TOKEN), None).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({ "error": "this principal is not refused" })));
        let (status, _, _) = operator(&cluster, 1, reqwest::Method::GET, path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, 404);

        // Counted where they were done.
        let metrics = reqwest::get(format!("{}/metrics", cluster.admin_url(2))).await.unwrap().text().await.unwrap();
        assert!(metrics.contains("shoal_admin_actions_total{action=\"refuse_principal\"} 1"), "{metrics}");
        let mut refused_requests = 0;
        for i in 0..3 {
            let metrics = reqwest::get(format!("{}/metrics", cluster.admin_url(i))).await.unwrap().text().await.unwrap();
            refused_requests += metrics
                .lines()
                .find_map(|line| line.strip_prefix("shoal_principal_refusals_total "))
                .map_or(0, |value| value.parse::<u64>().unwrap());
        }
        assert!(refused_requests >= 4, "{refused_requests} requests counted as refused");
    })
    .await
    .expect("the test finished in time");
}
