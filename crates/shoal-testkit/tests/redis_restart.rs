//! `RedisServer` restarts after `kill -9`: with AOF (`appendfsync always`) an acknowledged key
//! survives, without persistence it does not, and `restart_empty` wipes even the AOF.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use shoal_testkit::redis::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One inline command on a fresh connection; the reply as read within 5 s (one read suffices
/// for these short replies on loopback, but keep reading until a line ends).
async fn command(redis: &RedisServer, line: &str) -> String {
    let attempt = async {
        let mut conn = TcpStream::connect(("127.0.0.1", redis.port())).await?;
        conn.write_all(format!("{line}\r\n").as_bytes()).await?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            let whole = match text.strip_prefix('$') {
                // A bulk string: its header line, then the value line (or none for `$-1`).
                Some(rest) => rest.starts_with("-1\r\n") || text.matches("\r\n").count() >= 2,
                None => text.ends_with("\r\n"),
            };
            if whole {
                break;
            }
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or_else(|_| panic!("`{line}` hangs"))
        .unwrap_or_else(|e| panic!("`{line}`: {e}"))
}

#[tokio::test]
async fn an_acknowledged_key_survives_kill_and_restart_with_aof() {
    let mut redis = RedisServer::start_with_aof().await;
    assert!(redis.aof());
    assert_eq!(command(&redis, "SET survivor yes").await, "+OK\r\n");
    let port = redis.port();
    redis.kill();
    assert!(!redis.answers_ping().await);
    redis.restart().await;
    assert_eq!(redis.port(), port, "restarted on another port");
    assert_eq!(command(&redis, "GET survivor").await, "$3\r\nyes\r\n");
    assert!(
        command(&redis, "CONFIG GET appendfsync")
            .await
            .contains("always")
    );
}

#[tokio::test]
async fn without_persistence_a_restart_comes_back_empty() {
    let mut redis = RedisServer::start().await;
    assert!(!redis.aof());
    assert_eq!(command(&redis, "SET lost yes").await, "+OK\r\n");
    redis.kill();
    redis.restart().await;
    assert_eq!(command(&redis, "GET lost").await, "$-1\r\n");
    assert_eq!(command(&redis, "DBSIZE").await, ":0\r\n");
}

#[tokio::test]
async fn restart_empty_wipes_the_aof() {
    let mut redis = RedisServer::builder().aof(true).start().await;
    assert_eq!(command(&redis, "SET wiped yes").await, "+OK\r\n");
    redis.restart_empty().await;
    assert_eq!(command(&redis, "GET wiped").await, "$-1\r\n");
    // Still persisting afterwards.
    assert_eq!(command(&redis, "SET kept yes").await, "+OK\r\n");
    redis.restart().await;
    assert_eq!(command(&redis, "GET kept").await, "$3\r\nyes\r\n");
}
