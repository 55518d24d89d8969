//! [`KeyValue`] on Redis: one string key per entry (`<prefix>:kv:{<namespace>:<id>}`, see
//! `keys`), always written with `PX`, so no entry lives without an expiry.
//!
//! | operation | round trips | what runs in Redis |
//! | --- | --- | --- |
//! | `put_if_absent` | 1 | `SET NX PX` |
//! | `put` | 1 | `SET PX` |
//! | `get` | 1 | `GET` |
//! | `take` | 1 | `GETDEL` (Redis 6.2 or later) |
//! | `delete` | 1 | `DEL` |
//! | `compare_and_swap` | 1 | `swap` script (`GET`, then `SET PX` or `DEL`) |
//!
//! Each operation touches its entry's one key, so it runs on the master owning that key's slot
//! and is atomic there: Redis runs one command, or one script, at a time.

use std::time::Duration;

use bytes::Bytes;
use fred::interfaces::KeysInterface;
use fred::types::{Expiration, SetOptions, Value};
use shoal_core::host::{HostError, KeyValue, KvKey, clamp_ttl};

use super::{RedisHost, millis_i64, unavailable};
use crate::codec;
use crate::metrics::observe;

/// `PX <ttl>`, the expiry clamped as the contract says (at least 1 ms, at most ten years).
fn expiry(ttl: Duration) -> Expiration {
    Expiration::PX(millis_i64(clamp_ttl(ttl)))
}

#[async_trait::async_trait]
impl KeyValue for RedisHost {
    async fn put_if_absent(
        &self,
        key: &KvKey,
        value: Bytes,
        ttl: Duration,
    ) -> Result<bool, HostError> {
        let key = self.inner.keys.kv(key);
        let set = self.inner.commands.set::<Value, _, _>(
            key,
            value,
            Some(expiry(ttl)),
            Some(SetOptions::NX),
            false,
        );
        // `OK` when stored, nil when the key held a live entry.
        let reply = observe("kv_put_if_absent", set)
            .await
            .map_err(unavailable)?;
        Ok(!reply.is_null())
    }

    async fn put(&self, key: &KvKey, value: Bytes, ttl: Duration) -> Result<(), HostError> {
        let key = self.inner.keys.kv(key);
        let set =
            self.inner
                .commands
                .set::<Value, _, _>(key, value, Some(expiry(ttl)), None, false);
        observe("kv_put", set).await.map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &KvKey) -> Result<Option<Bytes>, HostError> {
        let key = self.inner.keys.kv(key);
        observe("kv_get", self.inner.commands.get::<Option<Bytes>, _>(key))
            .await
            .map_err(unavailable)
    }

    async fn take(&self, key: &KvKey) -> Result<Option<Bytes>, HostError> {
        let key = self.inner.keys.kv(key);
        observe(
            "kv_take",
            self.inner.commands.getdel::<Option<Bytes>, _>(key),
        )
        .await
        .map_err(unavailable)
    }

    async fn delete(&self, key: &KvKey) -> Result<bool, HostError> {
        let key = self.inner.keys.kv(key);
        let deleted: i64 = observe("kv_delete", self.inner.commands.del(key))
            .await
            .map_err(unavailable)?;
        Ok(deleted > 0)
    }

    async fn compare_and_swap(
        &self,
        key: &KvKey,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Duration,
    ) -> Result<bool, HostError> {
        let inner = &self.inner;
        let key = inner.keys.kv(key);
        let flag = |present: bool| Value::from(if present { "1" } else { "0" });
        let args = vec![
            flag(expected.is_some()),
            Value::Bytes(Bytes::copy_from_slice(expected.unwrap_or_default())),
            flag(new.is_some()),
            Value::Bytes(new.unwrap_or_default()),
            Value::from(millis_i64(clamp_ttl(ttl))),
        ];
        let reply = inner
            .eval("kv_compare_and_swap", &inner.scripts.swap, &[&key], args)
            .await?;
        Ok(codec::integer(&reply)? == 1)
    }
}
