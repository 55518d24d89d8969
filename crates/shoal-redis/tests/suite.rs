//! The shared host suite of `shoal-core`, against a fresh `RedisHost` per check on a
//! `redis-server` of this test's own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use shoal_core::host::suite;
use shoal_redis::RedisHost;
use shoal_testkit::redis::RedisServer;

/// A fresh host under a fresh prefix, connected synchronously (the suite's factory is sync).
fn fresh_host(url: &str) -> RedisHost {
    let config = common::config(url, &common::unique_prefix(), "suite");
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(RedisHost::connect(config))
    })
    .expect("connects to the test redis-server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_host_suite() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    suite::run_all(|| fresh_host(&url)).await;
}

macro_rules! check {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let redis = RedisServer::start().await;
            let host = common::host(&redis.url(), &common::unique_prefix(), "suite").await;
            suite::$name(&host).await;
        }
    )*};
}

check!(
    sessions,
    ordering_and_resume,
    live_delivery,
    isolation,
    inbox_and_broadcast,
    sessions_per_principal,
    kv_put_get_delete,
    kv_expiry,
    kv_take_is_single_use,
    kv_compare_and_swap,
    kv_keys_do_not_collide,
);

#[tokio::test]
async fn expiry_frees_a_principal_slot() {
    let redis = RedisServer::start().await;
    let idle_timeout = std::time::Duration::from_secs(1);
    let config = shoal_redis::RedisHostConfig {
        idle_timeout,
        ..common::config(&redis.url(), &common::unique_prefix(), "suite")
    };
    let host = RedisHost::connect(config).await.expect("connects");
    suite::expiry_frees_a_principal_slot(&host, idle_timeout).await;
}
