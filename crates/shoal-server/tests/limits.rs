//! The limits of the real binary: one refusal of each, with its status, body and code; header
//! size (the transport's JSON 431 and hyper's backstop), the idle connection timeout, and the
//! write timeout that closes the stream of a client that stopped reading, with the server's
//! memory measured around it.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, assert_serve_refuses, initialize, open_get, post, start};
use serde_json::{Value, json};
use shoal_core::codes::{self, session};
use shoal_testkit::client::message;
use shoal_testkit::{McpClient, RawResponse};
use shoal_transport::metrics::LIMIT_LABELS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(30);

fn ping(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

/// `host:port` of the MCP endpoint.
fn authority(server: &Server) -> String {
    server
        .mcp
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned()
}

/// The resident set size of the server process, in KiB.
fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// The value of the sample `name{labels}` on `/metrics`, 0 when absent.
async fn metric(server: &Server, sample: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(sample))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Reads `stream` until EOF or `PATIENCE`; returns the bytes read and whether EOF came.
async fn read_to_eof(stream: &mut TcpStream) -> (usize, bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) => return (total, true),
            Ok(Ok(n)) => total += n,
            // A reset after the server gave up on the socket ends it too.
            Ok(Err(_)) => return (total, true),
            Err(_) => return (total, false),
        }
    }
}

/// The tokens of [`every_limit_refuses_with_its_status_body_and_a_session_era_code`]: one
/// principal per limit that counts per session or per principal, so that none uses another's.
const LIMIT_TOKENS: &str = "misc=tok-misc,streams=tok-streams,inflight=tok-inflight,\
                            sessions=tok-sessions,rate=tok-rate,stateless=tok-stateless,\
                            listens=tok-listens";
/// That test's `--rate-limit-burst` (of 20 an hour: nothing refills while it runs).
const BURST: u64 = 20;

/// A client of that test's principal `name`.
fn client_of(server: &Server, name: &str) -> McpClient {
    McpClient::new(&server.mcp).with_header("authorization", &format!("Bearer tok-{name}"))
}

/// A sessionless ping whose params nest arrays so that the whole body is `depth` deep.
fn ping_nested(depth: usize) -> String {
    // The envelope and `params` are two levels.
    let arrays = depth - 2;
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"deep":{}{}}}}}"#,
        "[".repeat(arrays),
        "]".repeat(arrays)
    )
}

/// One refusal and what it must be.
struct Refusal {
    raw: RawResponse,
    status: u16,
    code: i32,
    /// The whole error message.
    message: String,
    /// `data.max` of a count or rate limit (whose code is `LIMIT_EXCEEDED`).
    max: Option<u64>,
    /// The id the error names: the request's in the stateless era (its body was read), none
    /// in the session era (refused before).
    id: Option<Value>,
}

impl Refusal {
    /// A refusal by a size limit: `status`, `INVALID_REQUEST`, no `data`.
    fn size(raw: RawResponse, status: u16, message: &str) -> Self {
        let (code, message) = (session::INVALID_REQUEST, message.to_owned());
        Refusal {
            raw,
            status,
            code,
            message,
            max: None,
            id: None,
        }
    }

    /// A refusal by a count or rate limit: 429, `LIMIT_EXCEEDED`, `data.max`.
    fn count(raw: RawResponse, max: u64, message: String) -> Self {
        let (status, code, max) = (429, session::LIMIT_EXCEEDED, Some(max));
        Refusal {
            raw,
            status,
            code,
            message,
            max,
            id: None,
        }
    }

    /// The same refusal, naming the request `id`.
    fn naming(self, id: i64) -> Self {
        Refusal {
            id: Some(json!(id)),
            ..self
        }
    }
}

/// Makes the server refuse one request by the limit labelled `limit` (one of
/// [`LIMIT_LABELS`]).
async fn refuse_by(server: &Server, limit: &str) -> Refusal {
    match limit {
        "body_bytes" => {
            let padding = "p".repeat(2000);
            let ping = message(1, "ping", Some(json!({ "padding": padding })));
            let raw = client_of(server, "misc").post_raw(ping, |_| {}).await;
            Refusal::size(raw, 413, "payload too large: the limit is 1024 bytes")
        }
        "header_bytes" => {
            let raw = client_of(server, "misc")
                .post_raw(message(2, "ping", None), |headers| {
                    headers.insert("x-padding", "p".repeat(3000).parse().unwrap());
                })
                .await;
            let expected = "request header fields too large: the limit is 2048 bytes";
            Refusal::size(raw, 431, expected)
        }
        "json_depth" => {
            let raw = client_of(server, "misc")
                .post_raw(ping_nested(9), |_| {})
                .await;
            Refusal::size(raw, 400, "JSON nesting deeper than 8")
        }
        "sse_streams_per_session" => {
            let mut client = client_of(server, "streams");
            client.initialize().await;
            client.notify_initialized().await;
            let _open = client.get_stream(None).await;
            let raw = client
                .open_stream(None)
                .await
                .expect_err("a second stream of the session is refused");
            let expected = "too many open streams for this session on this replica (max 1)";
            Refusal::count(raw, 1, expected.to_owned())
        }
        "in_flight_per_session" => {
            let mut client = client_of(server, "inflight");
            client.initialize().await;
            client.notify_initialized().await;
            // `ask_user` waits for the client's answer to its elicitation, holding the
            // session's one slot; its reply is a stream, whose first event says it is in.
            let id = client.next_id();
            let call = json!({ "name": "ask_user", "arguments": { "question": "held?" } });
            let mut held = client
                .post(&message(id, "tools/call", Some(call)))
                .await
                .into_stream();
            held.expect_event().await;
            let echo = json!({ "name": "echo", "arguments": { "text": "hi" } });
            let raw = client
                .post_raw(message(id + 1, "tools/call", Some(echo)), |_| {})
                .await;
            assert_eq!(client.cancel(id, "done").await.status, 202);
            let expected = "too many requests in flight for this session on this replica (max 1)";
            Refusal::count(raw, 1, expected.to_owned())
        }
        "sessions_per_principal" => {
            client_of(server, "sessions").initialize().await;
            let params = json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": { "name": "t", "version": "1" }
            });
            let raw = client_of(server, "sessions")
                .post_raw(message(1, "initialize", Some(params)), |_| {})
                .await;
            let expected = "too many sessions for this principal (max 1)";
            Refusal::count(raw, 1, expected.to_owned())
        }
        "rate_per_principal" => {
            let client = client_of(server, "rate");
            for id in 0..BURST {
                let id = i64::try_from(id).unwrap();
                let raw = client.post_raw(message(id, "ping", None), |_| {}).await;
                assert_eq!(raw.status, 200, "ping {id} of the burst: {raw}");
            }
            let raw = client.post_raw(message(99, "ping", None), |_| {}).await;
            assert!(raw.header("retry-after").is_some(), "{raw}");
            let expected = format!(
                "rate limit exceeded for this principal on this replica (burst of {BURST} requests)"
            );
            Refusal::count(raw, BURST, expected)
        }
        "in_flight_per_principal" => {
            // The stateless era has no sessions: a principal's requests are counted. `count`
            // with a progress token streams, holding the one slot until its reply ends.
            let client = client_of(server, "stateless");
            let mut count = shoal_testkit::modern::request(
                70,
                "tools/call",
                json!({ "name": "count", "arguments": { "to": 50, "interval_ms": 100 } }),
            );
            count["params"]["_meta"]["progressToken"] = json!("p");
            let mut held = client.post_modern(&count).await.into_stream();
            held.expect_event().await;
            let echo = shoal_testkit::modern::request(
                71,
                "tools/call",
                json!({ "name": "echo", "arguments": { "text": "hi" } }),
            );
            let raw = client
                .post_raw(echo.clone(), |h| {
                    h.extend(shoal_testkit::modern::headers(&echo))
                })
                .await;
            drop(held);
            let expected = "too many requests in flight for this principal on this replica (max 1)";
            Refusal::count(raw, 1, expected.to_owned()).naming(71)
        }
        "listen_streams_per_principal" => {
            let client = client_of(server, "listens");
            let mut first = client.listen(80, json!({ "toolsListChanged": true })).await;
            first.expect_event().await;
            let second = shoal_testkit::modern::request(
                81,
                "subscriptions/listen",
                json!({ "notifications": {} }),
            );
            let raw = client
                .post_raw(second.clone(), |h| {
                    h.extend(shoal_testkit::modern::headers(&second))
                })
                .await;
            let expected = "too many listen streams for this principal on this replica (max 1)";
            Refusal::count(raw, 1, expected.to_owned()).naming(81)
        }
        other => panic!("no case for the limit {other}: add one here"),
    }
}

/// Every limit the binary counts on `/metrics`, refused once through the real binary: the
/// status, the whole message, `data` for the count and rate limits, and a code of the session
/// era's table, none of the range dual-era clients read as a 2026-07-28 answer.
#[tokio::test]
async fn every_limit_refuses_with_its_status_body_and_a_session_era_code() {
    let burst = BURST.to_string();
    let server = common::start_with_env(
        &[
            "--auth",
            "static",
            "--max-body-bytes",
            "1024",
            "--max-header-bytes",
            "2048",
            "--max-json-depth",
            "8",
            "--max-streams-per-session",
            "1",
            "--max-in-flight-per-session",
            "1",
            "--max-sessions-per-principal",
            "1",
            "--rate-limit",
            "20/h",
            "--rate-limit-burst",
            &burst,
        ],
        &[("SHOAL_AUTH_TOKENS", LIMIT_TOKENS)],
    )
    .await;
    let session_era: Vec<i32> = session::ALL.iter().map(|(_, code)| *code).collect();
    for limit in LIMIT_LABELS {
        let Refusal {
            raw,
            status,
            code,
            message,
            max,
            id,
        } = refuse_by(&server, limit).await;
        let error = raw.assert_rpc_error(status, i64::from(code), &message);
        assert_eq!(error["message"], message, "{limit}: {raw}");
        assert_eq!(raw.json().get("id"), id.as_ref(), "{limit}: {raw}");
        assert!(
            session_era.contains(&code) && !codes::MODERN_ONLY.contains(&code),
            "{limit}: {raw}"
        );
        match max {
            Some(max) => assert_eq!(
                error["data"],
                json!({ "limit": limit, "max": max }),
                "{raw}"
            ),
            None => assert_eq!(error.get("data"), None, "{raw}"),
        }
        println!("{limit}: {status} {code} {message:?}");
        let sample = format!("shoal_limit_rejections_total{{limit=\"{limit}\"}}");
        assert_eq!(metric(&server, &sample).await, 1.0, "{sample}");
    }
}

#[tokio::test]
async fn headers_over_the_limit_are_431_from_the_transport_and_from_hyper() {
    let server = start(&["--max-header-bytes", "4096"]).await;
    let client = reqwest::Client::new();
    // Just over the limit: the transport answers with a JSON-RPC error.
    let response = post(&client, &server.mcp, None, ping(1))
        .header("x-padding", "p".repeat(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], session::INVALID_REQUEST, "{body}");
    assert_eq!(
        body["error"]["message"],
        "request header fields too large: the limit is 4096 bytes"
    );
    // Far over it: hyper refuses before buffering it all (a bare 431, connection closed).
    let response = post(&client, &server.mcp, None, ping(2))
        .header("x-padding", "p".repeat(64 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    // Under the limit passes.
    let response = post(&client, &server.mcp, None, ping(3))
        .header("x-padding", "p".repeat(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let refused = metric(
        &server,
        "shoal_limit_rejections_total{limit=\"header_bytes\"}",
    )
    .await;
    assert_eq!(
        refused, 1.0,
        "the hyper backstop is not counted, the transport's is"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(&["--idle-connection-timeout", "1s"]).await;
    let mut tcp = TcpStream::connect(authority(&server)).await.unwrap();
    let body = ping(1).to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (read, eof) = read_to_eof(&mut tcp).await;
    println!(
        "idle connection closed after {:?} ({read} bytes read)",
        started.elapsed()
    );
    assert!(
        eof,
        "the server kept an idle connection open past {PATIENCE:?}"
    );
    assert!(
        read > 0,
        "the ping was answered before the connection closed"
    );

    // A client that never finishes its headers is cut by the same timeout.
    let mut slow = TcpStream::connect(authority(&server)).await.unwrap();
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let (_, eof) = read_to_eof(&mut slow).await;
    assert!(eof, "a request head never finished was not cut");
}

#[tokio::test]
async fn a_client_that_stops_reading_its_stream_is_cut_and_memory_stays_bounded() {
    const ANNOUNCEMENTS: usize = 2000;
    let server = start(&["--write-timeout", "1s"]).await;
    let client = reqwest::Client::new();
    let session = initialize(&client, &server.mcp).await;

    // The standalone stream, on a raw socket that is never read while the events pile up.
    // A small receive buffer on our side, so that the server's writes block sooner.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut reader = socket
        .connect(authority(&server).parse().unwrap())
        .await
        .unwrap();
    let request = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n"
    );
    reader.write_all(request.as_bytes()).await.unwrap();
    let before = rss_kib(&server);

    let text = "x".repeat(8 * 1024);
    let started = Instant::now();
    for id in 0..ANNOUNCEMENTS {
        let call = json!({"jsonrpc": "2.0", "id": id + 1, "method": "tools/call",
            "params": {"name": "announce", "arguments": {"text": text}}});
        let response = post(&client, &server.mcp, Some(&session), call)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        assert!(body.contains("announced"), "{body}");
    }
    let after = rss_kib(&server);
    println!(
        "{ANNOUNCEMENTS} announcements of 8 KiB in {:?}; server RSS before {before} KiB, after \
         {after} KiB (growth {} KiB)",
        started.elapsed(),
        after.saturating_sub(before)
    );
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );

    // The server gave up on the stream: what the kernel buffered is still readable, then EOF.
    let (read, eof) = read_to_eof(&mut reader).await;
    println!(
        "the stopped reader got {read} bytes (about {} of {ANNOUNCEMENTS} events), then {}",
        read / (8 * 1024),
        if eof { "EOF" } else { "nothing" }
    );
    assert!(
        eof,
        "the server did not close the stream of a client that stopped reading"
    );
    assert!(
        read < ANNOUNCEMENTS * 8 * 1024,
        "the reader got everything: the writes never blocked"
    );
    let closed = metric(
        &server,
        "shoal_connections_closed_total{reason=\"write_timeout\"}",
    )
    .await;
    assert_eq!(closed, 1.0);

    // The stream's slot is free again: the client resumes where it stopped.
    let response = open_get(&client, &server, &session).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn bad_limit_settings_are_refused_with_a_clear_message() {
    assert_serve_refuses(&[
        (&["--rate-limit", "lots"], "is not a rate limit"),
        (
            &["--rate-limit-burst", "5"],
            "--rate-limit-burst needs --rate-limit",
        ),
        (
            &["--max-header-bytes", "100"],
            "--max-header-bytes must be at least 1024",
        ),
        (&["--max-in-flight-per-session", "0"], "must be at least 1"),
        (&["--write-timeout", "0s"], "must be greater than zero"),
    ]);
    let output = std::process::Command::new(common::SHOAL)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in [
        "--max-header-bytes",
        "--max-json-depth",
        "--max-streams-per-session",
        "--max-in-flight-per-session",
        "--rate-limit",
        "--rate-limit-burst",
        "--idle-connection-timeout",
        "--write-timeout",
        "SHOAL_RATE_LIMIT",
        "SHOAL_WRITE_TIMEOUT",
    ] {
        assert!(help.contains(setting), "--help lacks {setting}");
    }
}

#[tokio::test]
async fn rate_limit_from_the_environment_refuses_with_retry_after() {
    let server = common::start_with_env(
        &[],
        &[("SHOAL_RATE_LIMIT", "2/m"), ("SHOAL_RATE_LIMIT_BURST", "2")],
    )
    .await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = post(&client, &server.mcp, None, ping(1))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        statuses.push((status, retry_after, body));
    }
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200);
    let (status, retry_after, body) = &statuses[2];
    assert_eq!(*status, 429, "{body}");
    assert_eq!(body["error"]["code"], session::LIMIT_EXCEEDED, "{body}");
    assert_eq!(
        body["error"]["data"],
        json!({"limit": "rate_per_principal", "max": 2})
    );
    let retry_after: u64 = retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "Retry-After {retry_after}");
    let refused = metric(
        &server,
        "shoal_limit_rejections_total{limit=\"rate_per_principal\"}",
    )
    .await;
    assert_eq!(refused, 1.0);
}
