//! The host's expiring key-value store: small values kept between requests and shared by every
//! replica, for state that belongs to no session (single-use nonces, authorization codes,
//! registered clients, revocation epochs).
//!
//! Every entry expires: there is no way to store a value for ever, so a store that callers
//! forget to clean up still stays bounded. Keys live in a [`KvNamespace`] chosen by the code
//! that uses them, so that two uses (or a use and the host's own session keys) cannot collide,
//! whatever ids their clients send.

use std::time::Duration;

use bytes::Bytes;

use super::HostError;

/// The longest expiry an entry can have; longer ones are shortened to it. Ten years: long
/// enough for any credential, short enough for every clock and every Redis expiry to hold it.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// The shortest expiry an entry can have (Redis counts in milliseconds); shorter ones are
/// lengthened to it.
pub const MIN_TTL: Duration = Duration::from_millis(1);

/// An expiry as both hosts apply it: within [`MIN_TTL`]`..=`[`MAX_TTL`].
pub fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.clamp(MIN_TTL, MAX_TTL)
}

/// The namespace of a [`KvKey`]: one per kind of entry (`"mrtr-nonce"`, `"oauth-code"`).
///
/// A name is 1 to 64 ASCII letters, digits, `-`, `_` or `.`; [`KvNamespace::new`] refuses
/// anything else, so a name never contains the separators a host builds its keys with. Names
/// are chosen by code, not by clients: declare each as a constant, where a bad one fails the
/// build.
///
/// ```
/// use shoal_core::host::KvNamespace;
/// const NONCES: KvNamespace = KvNamespace::new("mrtr-nonce");
/// assert_eq!(NONCES.as_str(), "mrtr-nonce");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KvNamespace(&'static str);

impl KvNamespace {
    /// The namespace `name`.
    ///
    /// # Panics
    ///
    /// When [`KvNamespace::try_new`] refuses `name`: at compile time when called in a `const`.
    pub const fn new(name: &'static str) -> Self {
        match Self::try_new(name) {
            Some(namespace) => namespace,
            None => {
                panic!("a key-value namespace has 1 to 64 ASCII letters, digits, '-', '_' or '.'")
            }
        }
    }

    /// The namespace `name`, or `None` when it is empty, longer than 64 bytes, or holds
    /// anything but ASCII letters, digits, `-`, `_` and `.`.
    pub const fn try_new(name: &'static str) -> Option<Self> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > 64 {
            return None;
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
                return None;
            }
            i += 1;
        }
        Some(KvNamespace(name))
    }

    /// The name given to [`try_new`](Self::try_new), as hosts write it into keys.
    pub const fn as_str(&self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for KvNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A key of the key-value store: a namespace and an id within it. The id may be any string
/// (a client's nonce, an authorization code): hosts encode it so that distinct keys stay
/// distinct.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KvKey {
    namespace: KvNamespace,
    id: String,
}

impl KvKey {
    /// The key `id` in `namespace`.
    pub fn new(namespace: KvNamespace, id: impl Into<String>) -> Self {
        KvKey {
            namespace,
            id: id.into(),
        }
    }

    /// Which namespace the key belongs to.
    pub fn namespace(&self) -> KvNamespace {
        self.namespace
    }

    /// The id within the namespace.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// An expiring key-value store shared by every node: byte values under namespaced keys, each
/// with an expiry.
///
/// Every operation is atomic on its one key, across nodes: of two concurrent
/// [`put_if_absent`](KeyValue::put_if_absent)s exactly one stores, of two concurrent
/// [`take`](KeyValue::take)s exactly one gets the value. An expired entry is absent for every
/// operation. Expiries are [clamped](clamp_ttl) to [`MIN_TTL`]`..=`[`MAX_TTL`]; a write always
/// sets the entry's expiry anew (there is no write that keeps the old one, and none without).
#[async_trait::async_trait]
pub trait KeyValue: Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl` unless the key holds a live entry; whether it was
    /// stored.
    async fn put_if_absent(
        &self,
        key: &KvKey,
        value: Bytes,
        ttl: Duration,
    ) -> Result<bool, HostError>;

    /// Stores `value` under `key` for `ttl`, replacing any entry.
    async fn put(&self, key: &KvKey, value: Bytes, ttl: Duration) -> Result<(), HostError>;

    /// The value under `key`; `None` when there is none (or it expired).
    async fn get(&self, key: &KvKey) -> Result<Option<Bytes>, HostError>;

    /// Reads and deletes the value under `key` at once: of any number of concurrent takes on
    /// any nodes, exactly one gets it (single use).
    async fn take(&self, key: &KvKey) -> Result<Option<Bytes>, HostError>;

    /// Deletes the entry under `key`; whether there was one.
    async fn delete(&self, key: &KvKey) -> Result<bool, HostError>;

    /// Replaces the entry under `key` if it holds `expected` (`None`: if there is none): with
    /// `new` for `ttl`, or deletes it when `new` is `None` (`ttl` is then unused). Whether the
    /// entry matched, hence was replaced.
    async fn compare_and_swap(
        &self,
        key: &KvKey,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Duration,
    ) -> Result<bool, HostError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_clamped() {
        assert_eq!(clamp_ttl(Duration::ZERO), MIN_TTL);
        assert_eq!(clamp_ttl(Duration::MAX), MAX_TTL);
        assert_eq!(clamp_ttl(Duration::from_secs(60)), Duration::from_secs(60));
    }

    #[test]
    fn a_namespace_is_a_short_name_without_separators() {
        assert!(KvNamespace::try_new("oauth-code_v2.x").is_some());
        let long: &'static str = Box::leak("n".repeat(65).into_boxed_str());
        for bad in ["", "a:b", "{a}", "a b", "a%", "é", long] {
            assert_eq!(KvNamespace::try_new(bad), None, "{bad:?}");
        }
    }
}
