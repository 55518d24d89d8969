//! The connection-level limits of the real binary: header size (the transport's JSON 431 and
//! hyper's backstop), the idle connection timeout, and the write timeout that closes the
//! stream of a client that stopped reading, with the server's memory measured around it.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, assert_serve_refuses, initialize, open_get, post, start};
use serde_json::{Value, json};
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
    assert_eq!(body["error"]["code"], -32600, "{body}");
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
    assert_eq!(body["error"]["code"], -32029, "{body}");
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
