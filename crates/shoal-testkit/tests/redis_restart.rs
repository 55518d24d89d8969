//! `RedisServer` restarts after `kill -9`: with AOF (`appendfsync always`) an acknowledged key
//! survives, without persistence it does not, and `restart_empty` wipes even the AOF.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::command;
use shoal_testkit::redis::RedisServer;

#[tokio::test]
async fn an_acknowledged_key_survives_kill_and_restart_with_aof() {
    let mut redis = RedisServer::start_with_aof().await;
    assert!(redis.aof());
    assert_eq!(command(redis.port(), "SET survivor yes").await, "+OK\r\n");
    let port = redis.port();
    redis.kill();
    assert!(!redis.answers_ping().await);
    redis.restart().await;
    assert_eq!(redis.port(), port, "restarted on another port");
    assert_eq!(command(redis.port(), "GET survivor").await, "$3\r\nyes\r\n");
    assert!(
        command(redis.port(), "CONFIG GET appendfsync")
            .await
            .contains("always")
    );
}

#[tokio::test]
async fn without_persistence_a_restart_comes_back_empty() {
    let mut redis = RedisServer::start().await;
    assert!(!redis.aof());
    assert_eq!(command(redis.port(), "SET lost yes").await, "+OK\r\n");
    redis.kill();
    redis.restart().await;
    assert_eq!(command(redis.port(), "GET lost").await, "$-1\r\n");
    assert_eq!(command(redis.port(), "DBSIZE").await, ":0\r\n");
}

#[tokio::test]
async fn restart_empty_wipes_the_aof() {
    let mut redis = RedisServer::builder().aof(true).start().await;
    assert_eq!(command(redis.port(), "SET wiped yes").await, "+OK\r\n");
    redis.restart_empty().await;
    assert_eq!(command(redis.port(), "GET wiped").await, "$-1\r\n");
    // Still persisting afterwards.
    assert_eq!(command(redis.port(), "SET kept yes").await, "+OK\r\n");
    redis.restart().await;
    assert_eq!(command(redis.port(), "GET kept").await, "$3\r\nyes\r\n");
}
