//! Helpers shared by the Redis host's tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fred::prelude::{Builder, ClientLike, Config};
use fred::types::{ClusterHash, CustomCommand, Value};
use shoal_core::ids::NodeId;
use shoal_core::session::SessionRecord;
use shoal_redis::{RedisHost, RedisHostConfig};

static NEXT_PREFIX: AtomicUsize = AtomicUsize::new(0);

/// A key prefix no other host of this test binary uses.
pub fn unique_prefix() -> String {
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
    )
}

/// Test settings: short timeouts so that failures show in seconds.
pub fn config(url: &str, prefix: &str, node: &str) -> RedisHostConfig {
    RedisHostConfig {
        key_prefix: prefix.to_owned(),
        command_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(2),
        reconnect_delay: Duration::from_millis(100),
        ..RedisHostConfig::new(url, NodeId::new(node))
    }
}

/// A host on `url` under `prefix`, as node `node`.
pub async fn host(url: &str, prefix: &str, node: &str) -> RedisHost {
    RedisHost::connect(config(url, prefix, node))
        .await
        .expect("connects to the test redis-server")
}

/// A fresh session record.
pub fn record() -> SessionRecord {
    SessionRecord::new(
        Some("alice".into()),
        "2025-11-25",
        serde_json::json!({"sampling": {}}),
        serde_json::json!({"name": "t", "version": "1"}),
    )
}

/// A plain client for inspecting and disturbing the server.
pub async fn admin(url: &str) -> fred::clients::Client {
    let client = Builder::from_config(Config::from_url(url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

/// Runs a raw command on `client`.
pub async fn raw(client: &fred::clients::Client, cmd: &'static str, args: Vec<&str>) -> Value {
    client
        .custom(
            CustomCommand::new_static(cmd, ClusterHash::Random, false),
            args.into_iter().map(Value::from).collect::<Vec<_>>(),
        )
        .await
        .unwrap()
}

/// `connected_clients` from `INFO clients`.
pub async fn connected_clients(client: &fred::clients::Client) -> usize {
    let info = raw(client, "INFO", vec!["clients"]).await;
    let text = info.as_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO clients has connected_clients")
}
