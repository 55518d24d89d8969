//! The limits that protect a replica, over real HTTP: header size, JSON nesting depth, GET
//! streams and requests in flight per session, and the rate limit per principal. Each refusal
//! is checked for its status, JSON-RPC code, message and `data`.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{Harness, PATIENCE, PRINCIPAL_HEADER, start_streaming_call};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use shoal_core::codes::session;
use shoal_testkit::McpClient;
use shoal_testkit::client::message;
use shoal_transport::{RateLimit, TransportConfig};

const INVALID_REQUEST: i64 = session::INVALID_REQUEST as i64;

fn echo(id: i64) -> Value {
    message(
        id,
        "tools/call",
        Some(json!({ "name": "echo", "arguments": { "text": "hi" } })),
    )
}

/// A ping whose params nest arrays so that the whole body is `depth` deep.
fn ping_nested(depth: usize) -> String {
    // The envelope and `params` are two levels.
    let arrays = depth - 2;
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"deep":{}{}}}}}"#,
        "[".repeat(arrays),
        "]".repeat(arrays)
    )
}

#[tokio::test]
async fn headers_over_the_limit_are_431() {
    let harness = Harness::start_with(TransportConfig {
        max_header_bytes: 2048,
        ..TransportConfig::default()
    })
    .await;
    let client = harness.connect().await;
    let raw = client
        .post_raw(message(1, "ping", None), |headers| {
            headers.insert(
                "x-padding",
                HeaderValue::from_str(&"p".repeat(1000)).unwrap(),
            );
        })
        .await;
    assert_eq!(raw.status, 200, "headers under the limit pass: {raw}");
    let raw = client
        .post_raw(message(2, "ping", None), |headers| {
            headers.insert(
                "x-padding",
                HeaderValue::from_str(&"p".repeat(2100)).unwrap(),
            );
        })
        .await;
    raw.assert_rpc_error(
        431,
        INVALID_REQUEST,
        "request header fields too large: the limit is 2048 bytes",
    );
    assert_eq!(raw.json().get("id"), None, "the id is unknown: {raw}");
    // GET is refused the same way, before anything else is looked at.
    client
        .get_raw(|headers| {
            headers.insert(
                "x-padding",
                HeaderValue::from_str(&"p".repeat(2100)).unwrap(),
            );
        })
        .await
        .assert_rpc_error(431, INVALID_REQUEST, "request header fields too large");
}

#[tokio::test]
async fn json_nested_deeper_than_the_limit_is_400() {
    let harness = Harness::start().await;
    let client = harness.connect().await;
    let raw = client.post_raw(ping_nested(64), |_| {}).await;
    assert_eq!(raw.status, 200, "64 levels pass: {raw}");
    let raw = client.post_raw(ping_nested(65), |_| {}).await;
    raw.assert_rpc_error(400, INVALID_REQUEST, "JSON nesting deeper than 64");
    // Brackets inside strings are text, not nesting.
    let text = "[".repeat(1000);
    let raw = client
        .post_raw(
            message(
                3,
                "tools/call",
                Some(json!({ "name": "echo", "arguments": { "text": text } })),
            ),
            |_| {},
        )
        .await;
    assert_eq!(raw.status, 200, "brackets in strings pass: {raw}");

    let shallow = Harness::start_with(TransportConfig {
        max_json_depth: 3,
        ..TransportConfig::default()
    })
    .await;
    // A sessionless ping: initialize itself nests deeper than 3.
    let client = shallow.client();
    let raw = client.post_raw(ping_nested(3), |_| {}).await;
    assert_eq!(raw.status, 200, "3 levels pass: {raw}");
    client
        .post_raw(ping_nested(4), |_| {})
        .await
        .assert_rpc_error(400, INVALID_REQUEST, "JSON nesting deeper than 3");
}

/// Asserts a 429 of `limit` with `max`; returns the response's `Retry-After`, if any.
fn assert_limit(raw: &shoal_testkit::RawResponse, limit: &str, max: u64, message: &str) {
    let error = raw.assert_rpc_error(429, i64::from(session::LIMIT_EXCEEDED), message);
    assert_eq!(
        error["data"],
        json!({ "limit": limit, "max": max }),
        "{raw}"
    );
}

#[tokio::test]
async fn streams_per_session_over_the_limit_are_429_until_one_closes() {
    let harness = Harness::start_with(TransportConfig {
        max_streams_per_session: 2,
        ..TransportConfig::default()
    })
    .await;
    let client = harness.connect().await;
    // Two streams: the standalone one, and a request's reply stream resumed with GET (a
    // second GET of the same stream would take it over and close the first connection).
    let standalone = client.get_stream(None).await;
    let (_, mut reply) = start_streaming_call(&client, "hang", json!({})).await;
    let priming = reply.expect_event().await;
    let priming_id = priming.id.clone().expect("the priming event has an id");
    let resumed = client.get_stream(Some(&priming_id)).await;

    for last in [None, Some(priming_id.as_str())] {
        let raw = client
            .open_stream(last)
            .await
            .expect_err("a third stream of the session is refused");
        assert_limit(
            &raw,
            "sse_streams_per_session",
            2,
            "too many open streams for this session on this replica (max 2)",
        );
        assert_eq!(raw.header("retry-after"), None, "{raw}");
    }

    // Another session has its own count.
    let other = harness.connect().await;
    let _other_stream = other.get_stream(None).await;

    // Closing a stream gives its slot back (once the server notices the closed connection).
    drop(resumed);
    let reopened = eventually_open(&client, Some(&priming_id)).await;
    drop(reopened);
    drop(standalone);
}

/// Opens a stream, retrying while the server still counts a stream the test just closed.
async fn eventually_open(client: &McpClient, last: Option<&str>) -> shoal_testkit::SseStream {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match client.open_stream(last).await {
            Ok(stream) => return stream,
            Err(raw) if tokio::time::Instant::now() < deadline => {
                assert_eq!(raw.status, 429, "{raw}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(raw) => panic!("the closed stream's slot never came back: {raw}"),
        }
    }
}

#[tokio::test]
async fn requests_in_flight_per_session_over_the_limit_are_429() {
    let harness = Harness::start_with(TransportConfig {
        max_in_flight_per_session: 1,
        ..TransportConfig::default()
    })
    .await;
    let client = harness.connect().await;
    // `hang` keeps its reply stream open: the session's one slot is taken.
    let (hanging_id, mut hanging) = start_streaming_call(&client, "hang", json!({})).await;
    hanging.expect_event().await;

    let raw = client.post_raw(echo(100), |_| {}).await;
    assert_limit(
        &raw,
        "in_flight_per_session",
        1,
        "too many requests in flight for this session on this replica (max 1)",
    );
    assert_eq!(raw.header("retry-after"), None, "{raw}");

    // Notifications are never refused: cancelling is how a client frees its slots.
    let raw = client.cancel(hanging_id, "free the slot").await;
    assert_eq!(raw.status, 202, "{raw}");

    // Another session of the same client has its own count.
    let other = harness.connect().await;
    assert_eq!(other.post_raw(echo(1), |_| {}).await.status, 200);

    // Dropping the reply stream gives the slot back.
    drop(hanging);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let raw = client.post_raw(echo(101), |_| {}).await;
        if raw.status == 200 {
            break;
        }
        assert_eq!(raw.status, 429, "{raw}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back: {raw}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rate_limit_per_principal_is_429_with_retry_after() {
    // Three requests at once, then one every 20 seconds: no test runs long enough to refill.
    let rate = RateLimit {
        requests: NonZeroU32::new(3).unwrap(),
        per: Duration::from_secs(60),
        burst: NonZeroU32::new(3).unwrap(),
    };
    let harness = Harness::start_with(TransportConfig {
        rate_limit: Some(rate),
        ..TransportConfig::default()
    })
    .await;
    // initialize, notifications/initialized and one ping use alice's burst.
    let alice = harness.connect_as("alice").await;
    assert_eq!(alice.post_raw(echo(1), |_| {}).await.status, 200);
    let raw = alice.post_raw(echo(2), |_| {}).await;
    assert_limit(
        &raw,
        "rate_per_principal",
        3,
        "rate limit exceeded for this principal on this replica (burst of 3 requests)",
    );
    let retry_after: u64 = raw
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    println!("retry-after: {retry_after} s");
    assert!((1..=20).contains(&retry_after), "{raw}");
    // Every method counts, GET too.
    assert_eq!(alice.get_raw(|_| {}).await.status, 429);

    // Bob has his own bucket; requests without a principal share the anonymous one.
    let bob = harness.connect_as("bob").await;
    assert_eq!(bob.post_raw(echo(1), |_| {}).await.status, 200);
    let anonymous = harness.connect().await;
    assert_eq!(anonymous.post_raw(echo(1), |_| {}).await.status, 200);
    let raw = anonymous.post_raw(echo(2), |_| {}).await;
    assert_limit(&raw, "rate_per_principal", 3, "rate limit exceeded");
    let stranger = McpClient::new(harness.url()).with_header(PRINCIPAL_HEADER, "carol");
    assert_eq!(stranger.post_raw(echo(1), |_| {}).await.status, 400);
}

/// The stateless era has no sessions: a principal's stateless requests in flight and its listen
/// streams are counted against the per-session maxima, refused with the request's id; requests
/// without a principal are not counted (as sessions without one are not limited per principal).
#[tokio::test]
async fn stateless_requests_and_listen_streams_per_principal_over_the_limit_are_429() {
    let harness = Harness::start_with(TransportConfig {
        max_in_flight_per_session: 1,
        max_streams_per_session: 1,
        ..TransportConfig::default()
    })
    .await;
    let alice = McpClient::new(harness.url()).with_header(PRINCIPAL_HEADER, "alice");
    let bob = McpClient::new(harness.url()).with_header(PRINCIPAL_HEADER, "bob");
    let anonymous = McpClient::new(harness.url());
    let stateless = |id: i64, name: &str, arguments: Value| {
        let mut call = shoal_testkit::modern::request(
            id,
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        );
        call["params"]["_meta"]["progressToken"] = json!("p");
        call
    };

    // `hang` streams its progress and never answers: alice's one slot is taken.
    let hanging = alice.post_modern(&stateless(1, "hang", json!({}))).await;
    let mut hanging = hanging.into_stream();
    hanging.expect_event().await;
    let echo = stateless(2, "echo", json!({ "text": "hi" }));
    let refused = alice
        .post_raw(echo.clone(), |h| {
            h.extend(shoal_testkit::modern::headers(&echo))
        })
        .await;
    assert_limit(
        &refused,
        "in_flight_per_principal",
        1,
        "too many requests in flight for this principal on this replica (max 1)",
    );
    assert_eq!(
        refused.json()["id"],
        2,
        "the refusal names the request: {refused}"
    );
    for other in [&bob, &anonymous] {
        let served = other
            .modern(
                "tools/call",
                json!({ "name": "echo", "arguments": { "text": "hi" } }),
            )
            .await;
        assert_eq!(served["result"]["content"][0]["text"], "hi", "{served}");
    }
    // Closing the reply cancels the handler and gives the slot back.
    drop(hanging);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let raw = alice
            .post_raw(echo.clone(), |h| {
                h.extend(shoal_testkit::modern::headers(&echo))
            })
            .await;
        if raw.status == 200 {
            break;
        }
        assert_eq!(raw.status, 429, "{raw}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back: {raw}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut first = alice.listen(10, json!({ "toolsListChanged": true })).await;
    first.expect_event().await;
    let second =
        shoal_testkit::modern::request(11, "subscriptions/listen", json!({ "notifications": {} }));
    let refused = alice
        .post_raw(second.clone(), |h| {
            h.extend(shoal_testkit::modern::headers(&second))
        })
        .await;
    assert_limit(
        &refused,
        "listen_streams_per_principal",
        1,
        "too many listen streams for this principal on this replica (max 1)",
    );
    assert_eq!(refused.json()["id"], 11, "{refused}");
    let mut bobs = bob.listen(12, json!({})).await;
    assert_eq!(
        bobs.expect_event().await.json().unwrap()["method"],
        "notifications/subscriptions/acknowledged"
    );
}
