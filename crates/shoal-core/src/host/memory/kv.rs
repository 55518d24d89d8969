//! The in-memory host's key-value store: a map of entries with their expiry instants. An
//! expired entry is absent to every operation and is removed by the next sweep, so the map
//! holds at most what was written in the last maximum expiry plus one sweep interval.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{MemoryHost, lock};
use crate::host::{HostError, KeyValue, KvKey, clamp_ttl};

/// How often writes sweep expired entries out (a sweep scans every entry).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Every entry, expired ones included until swept.
#[derive(Default)]
pub(super) struct Entries {
    map: HashMap<KvKey, Entry>,
    last_sweep: Option<Instant>,
}

struct Entry {
    value: Bytes,
    expires: Instant,
}

impl Entries {
    /// The live value under `key`; an expired entry is removed on the way.
    fn live(&mut self, key: &KvKey, now: Instant) -> Option<&Bytes> {
        if self.map.get(key).is_some_and(|entry| entry.expires <= now) {
            self.map.remove(key);
        }
        self.map.get(key).map(|entry| &entry.value)
    }

    /// Stores `value` under `key` for `ttl` (clamped), sweeping first when one is due.
    fn store(&mut self, key: &KvKey, value: Bytes, ttl: Duration, now: Instant) {
        if self
            .last_sweep
            .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
        {
            self.last_sweep = Some(now);
            self.map.retain(|_, entry| entry.expires > now);
        }
        // Clamped to at most `MAX_TTL` (ten years): the sum cannot overflow a monotonic clock.
        let expires = now + clamp_ttl(ttl);
        self.map.insert(key.clone(), Entry { value, expires });
    }
}

#[async_trait::async_trait]
impl KeyValue for MemoryHost {
    async fn put_if_absent(
        &self,
        key: &KvKey,
        value: Bytes,
        ttl: Duration,
    ) -> Result<bool, HostError> {
        let now = Instant::now();
        let mut entries = lock(&self.inner.kv);
        if entries.live(key, now).is_some() {
            return Ok(false);
        }
        entries.store(key, value, ttl, now);
        Ok(true)
    }

    async fn put(&self, key: &KvKey, value: Bytes, ttl: Duration) -> Result<(), HostError> {
        lock(&self.inner.kv).store(key, value, ttl, Instant::now());
        Ok(())
    }

    async fn get(&self, key: &KvKey) -> Result<Option<Bytes>, HostError> {
        Ok(lock(&self.inner.kv).live(key, Instant::now()).cloned())
    }

    async fn take(&self, key: &KvKey) -> Result<Option<Bytes>, HostError> {
        let now = Instant::now();
        let mut entries = lock(&self.inner.kv);
        entries.live(key, now);
        Ok(entries.map.remove(key).map(|entry| entry.value))
    }

    async fn delete(&self, key: &KvKey) -> Result<bool, HostError> {
        Ok(self.take(key).await?.is_some())
    }

    async fn compare_and_swap(
        &self,
        key: &KvKey,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Duration,
    ) -> Result<bool, HostError> {
        let now = Instant::now();
        let mut entries = lock(&self.inner.kv);
        if entries.live(key, now).map(|value| &value[..]) != expected {
            return Ok(false);
        }
        match new {
            Some(value) => entries.store(key, value, ttl, now),
            None => {
                entries.map.remove(key);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{KvNamespace, MemoryHostConfig};
    use crate::ids::NodeId;

    const TEST: KvNamespace = KvNamespace::new("test");

    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_swept() {
        let host = MemoryHost::new(NodeId::new("test"), MemoryHostConfig::default());
        for i in 0..100 {
            let key = KvKey::new(TEST, format!("short{i}"));
            host.put(&key, Bytes::from_static(b"v"), Duration::from_secs(1))
                .await
                .unwrap();
        }
        let long = KvKey::new(TEST, "long");
        host.put(&long, Bytes::from_static(b"v"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(lock(&host.inner.kv).map.len(), 101);
        tokio::time::advance(SWEEP_EVERY + Duration::from_secs(1)).await;
        // Any write sweeps once the interval has passed: only the live entries stay.
        host.put(
            &KvKey::new(TEST, "next"),
            Bytes::new(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(lock(&host.inner.kv).map.len(), 2);
        assert!(host.get(&long).await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_expires_at_its_ttl() {
        let host = MemoryHost::new(NodeId::new("test"), MemoryHostConfig::default());
        let key = KvKey::new(TEST, "k");
        host.put(&key, Bytes::from_static(b"v"), Duration::from_secs(10))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(host.get(&key).await.unwrap().is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(host.get(&key).await.unwrap(), None);
        assert_eq!(host.take(&key).await.unwrap(), None);
    }
}
