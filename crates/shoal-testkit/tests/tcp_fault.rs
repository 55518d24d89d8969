//! `TcpFaultProxy` in front of a real `redis-server`: `PING` through it with latency, during a
//! pause and after resume, after dropped connections and while refusing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use shoal_testkit::redis::RedisServer;
use shoal_testkit::tcp_fault::TcpFaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on any one reply that should come.
const PATIENCE: Duration = Duration::from_secs(5);

async fn connect(proxy: &TcpFaultProxy) -> TcpStream {
    tokio::time::timeout(PATIENCE, TcpStream::connect(proxy.addr()))
        .await
        .expect("connecting to the fault proxy hangs")
        .expect("connects to the fault proxy")
}

/// Sends `PING` and reads `+PONG\r\n` within `within`; `None` if no whole reply came.
async fn ping(conn: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    conn.write_all(b"PING\r\n").await.expect("writes PING");
    read_pong(conn, within).await.map(|()| started.elapsed())
}

async fn read_pong(conn: &mut TcpStream, within: Duration) -> Option<()> {
    let mut reply = [0u8; 7];
    match tokio::time::timeout(within, conn.read_exact(&mut reply)).await {
        Ok(Ok(_)) => {
            assert_eq!(&reply, b"+PONG\r\n", "reply to PING");
            Some(())
        }
        Ok(Err(e)) => panic!("the connection broke: {e}"),
        Err(_) => None,
    }
}

#[tokio::test]
async fn forwards_and_adds_latency_in_order() {
    let redis = RedisServer::start().await;
    let proxy = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
    let mut conn = connect(&proxy).await;
    let plain = ping(&mut conn, PATIENCE)
        .await
        .expect("PONG through the proxy");

    proxy.set_latency(Duration::from_millis(100));
    let slow = ping(&mut conn, PATIENCE).await.expect("PONG with latency");
    // Pipelined commands come back in order, each reply whole.
    conn.write_all(b"SET k 1\r\nINCR k\r\nGET k\r\n")
        .await
        .unwrap();
    let mut replies = Vec::new();
    let mut buf = [0u8; 64];
    while replies.len() < b"+OK\r\n:2\r\n$1\r\n2\r\n".len() {
        let n = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
            .await
            .expect("pipelined replies hang")
            .unwrap();
        assert!(n > 0, "closed mid-reply");
        replies.extend_from_slice(&buf[..n]);
    }
    assert_eq!(replies, b"+OK\r\n:2\r\n$1\r\n2\r\n");

    proxy.set_latency(Duration::ZERO);
    let back = ping(&mut conn, PATIENCE)
        .await
        .expect("PONG without latency");
    println!("PING round trip: plain {plain:?}, with 100 ms each way {slow:?}, after {back:?}");
    let stats = proxy.stats();
    println!("{stats:?}");
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.open, 1);
    assert!(stats.bytes_to_target > 0 && stats.bytes_to_client > 0);
}

#[tokio::test]
async fn a_pause_stalls_both_ways_and_resume_delivers() {
    let redis = RedisServer::start().await;
    let proxy = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
    let mut conn = connect(&proxy).await;
    ping(&mut conn, PATIENCE)
        .await
        .expect("PONG before the pause");

    proxy.pause();
    assert!(proxy.is_paused());
    assert_eq!(
        ping(&mut conn, Duration::from_millis(300)).await,
        None,
        "a PING got through a paused proxy"
    );
    // A connection opened during the pause stalls too.
    let mut late = connect(&proxy).await;
    assert_eq!(ping(&mut late, Duration::from_millis(300)).await, None);

    let resumed = Instant::now();
    proxy.resume();
    read_pong(&mut conn, PATIENCE)
        .await
        .expect("the held PING is answered after resume");
    read_pong(&mut late, PATIENCE)
        .await
        .expect("the late connection's PING is answered after resume");
    println!(
        "held replies delivered {:?} after resume",
        resumed.elapsed()
    );
    ping(&mut conn, PATIENCE).await.expect("PONG after resume");
    assert_eq!(proxy.stats().open, 2);
}

#[tokio::test]
async fn dropped_connections_close_and_new_ones_work() {
    let redis = RedisServer::start().await;
    let proxy = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
    let mut conn = connect(&proxy).await;
    ping(&mut conn, PATIENCE)
        .await
        .expect("PONG before the drop");

    proxy.drop_connections();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
        .await
        .expect("the dropped connection stays open");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the dropped connection still reads: {read:?}"
    );

    let mut fresh = connect(&proxy).await;
    ping(&mut fresh, PATIENCE)
        .await
        .expect("PONG on a new connection");
    let stats = proxy.stats();
    println!("{stats:?}");
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.accepted, 2);
}

#[tokio::test]
async fn refusing_closes_new_connections_only() {
    let redis = RedisServer::start().await;
    let proxy = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
    let mut kept = connect(&proxy).await;
    ping(&mut kept, PATIENCE)
        .await
        .expect("PONG before refusing");

    proxy.refuse(true);
    let mut refused = connect(&proxy).await;
    let _ = refused.write_all(b"PING\r\n").await;
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(PATIENCE, refused.read(&mut buf))
        .await
        .expect("the refused connection stays open");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a refused connection answered: {read:?}"
    );
    ping(&mut kept, PATIENCE)
        .await
        .expect("the open connection still works");

    proxy.refuse(false);
    let mut again = connect(&proxy).await;
    ping(&mut again, PATIENCE)
        .await
        .expect("PONG once accepted again");
    assert_eq!(proxy.stats().refused, 1);
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections() {
    let redis = RedisServer::start().await;
    let proxy = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
    let mut conn = connect(&proxy).await;
    ping(&mut conn, PATIENCE).await.expect("PONG");
    let addr = proxy.addr();
    drop(proxy);
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
        .await
        .expect("a connection outlives the proxy");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The listener is gone too, once the aborted accept task is dropped (soon, not at once).
    let deadline = Instant::now() + PATIENCE;
    while tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .expect("connecting hangs")
        .is_ok()
    {
        assert!(Instant::now() < deadline, "the proxy's port still accepts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
