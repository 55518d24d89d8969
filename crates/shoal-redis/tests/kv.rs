//! The key-value store on one `redis-server`, beyond the shared suite: what Redis holds
//! (one key per entry, always with an expiry) and single use across two nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use fred::interfaces::KeysInterface;
use shoal_core::host::{KeyValue, KvKey, KvNamespace};
use shoal_testkit::redis::RedisServer;

const NONCES: KvNamespace = KvNamespace::new("nonce");

/// The kv keys under `prefix` and their `PTTL`s.
async fn kv_keys(admin: &fred::clients::Client, prefix: &str) -> Vec<(String, i64)> {
    let pattern = format!("{prefix}:kv:*");
    let keys = common::raw(admin, "KEYS", vec![&pattern]).await;
    let mut out = Vec::new();
    for key in keys.into_array() {
        let key = key.as_string().unwrap();
        let ttl: i64 = admin.pttl(&key).await.unwrap();
        out.push((key, ttl));
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_entry_is_one_key_with_an_expiry() {
    let redis = RedisServer::start().await;
    let prefix = common::unique_prefix();
    let host = common::host(&redis.url(), &prefix, "kv").await;
    let admin = common::admin(&redis.url()).await;
    let ttl = Duration::from_secs(60);
    let key = |id: &str| KvKey::new(NONCES, id);
    let value = Bytes::from_static(b"v");

    assert!(
        host.put_if_absent(&key("a"), value.clone(), ttl)
            .await
            .unwrap()
    );
    host.put(&key("b"), value.clone(), ttl).await.unwrap();
    assert!(
        host.compare_and_swap(&key("c"), None, Some(value.clone()), ttl)
            .await
            .unwrap()
    );
    assert!(
        host.compare_and_swap(&key("c"), Some(b"v"), Some(value.clone()), ttl)
            .await
            .unwrap()
    );
    host.put(&key("d}{"), value.clone(), Duration::ZERO)
        .await
        .unwrap();
    host.put(&key("e"), value.clone(), Duration::MAX)
        .await
        .unwrap();

    let keys = kv_keys(&admin, &prefix).await;
    let names: Vec<&str> = keys.iter().map(|(name, _)| name.as_str()).collect();
    let expected: Vec<String> = ["a", "b", "c", "e"]
        .iter()
        .map(|id| format!("{prefix}:kv:{{nonce:{id}}}"))
        .collect();
    // `d}{` had the shortest expiry (1 ms): it may or may not be gone already.
    let without_d: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !name.contains("nonce:d"))
        .collect();
    assert_eq!(without_d, expected, "{names:?}");
    for (name, pttl) in &keys {
        if name.contains("nonce:d") {
            // Listed just before it expired: by its PTTL it may be gone (-2) or ending (0), but
            // never without an expiry (-1).
            assert!(*pttl == -2 || *pttl >= 0, "{name} has an expiry ({pttl})");
            continue;
        }
        assert!(*pttl > 0, "{name} has an expiry ({pttl})");
        if !name.contains("nonce:e") {
            assert!(*pttl <= 60_000, "{name}: {pttl}");
        }
    }
    // The longest expiry is the contract's maximum, ten years.
    let (_, longest) = keys
        .iter()
        .find(|(name, _)| name.contains("nonce:e"))
        .unwrap();
    let ten_years_ms = 10 * 365 * 24 * 60 * 60 * 1000;
    assert!(
        (ten_years_ms - 60_000..=ten_years_ms).contains(longest),
        "{longest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_is_taken_once_across_nodes() {
    let redis = RedisServer::start().await;
    let prefix = common::unique_prefix();
    let a = common::host(&redis.url(), &prefix, "node-a").await;
    let b = common::host(&redis.url(), &prefix, "node-b").await;
    for round in 0..20 {
        let key = KvKey::new(NONCES, format!("n{round}"));
        assert!(
            a.put_if_absent(&key, Bytes::from_static(b"once"), Duration::from_secs(60))
                .await
                .unwrap()
        );
        let takes = (0..8).flat_map(|_| [a.take(&key), b.take(&key)]);
        let taken = futures::future::try_join_all(takes).await.unwrap();
        assert_eq!(
            taken.iter().flatten().count(),
            1,
            "round {round}: {taken:?}"
        );
    }
}
