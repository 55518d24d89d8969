//! The issuer's signing keys: fetched once at start, refreshed in the background, and
//! refetched when a token names an unknown `kid`, at most once per refetch interval.

use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use crate::discovery::fetch_json;

/// One usable public key.
#[derive(Clone)]
pub(crate) struct Key {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's `alg`, when it names one: the only algorithm the key may be used with.
    alg: Option<Algorithm>,
    pub(crate) decoding: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Key {
    /// Whether a token signed with `alg` may be checked with this key: the algorithm must fit
    /// the key type (never HMAC: no symmetric key is ever built from a JWKS) and the JWK's own
    /// `alg`, if any.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        let fits = match self.kind {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        };
        fits && self.alg.is_none_or(|a| a == alg)
    }

    fn from_json(value: &Value) -> Option<Key> {
        let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => KeyKind::Ed25519,
                _ => return None,
            },
            // A symmetric key has no business in a public key set; a key type this code does
            // not know is not trusted either.
            _ => return None,
        };
        let alg = match value.get("alg").and_then(Value::as_str) {
            None => None,
            Some(name) => Some(Algorithm::from_str(name).ok()?),
        };
        let decoding = DecodingKey::from_jwk(&jwk).ok()?;
        Some(Key {
            kid: jwk.common.key_id.clone(),
            kind,
            alg,
            decoding,
        })
    }
}

/// Why no key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// No key has the token's `kid` (or, without `kid`, none fits its algorithm).
    Unknown,
    /// The key with that `kid` does not fit the token's algorithm.
    WrongAlgorithm,
}

/// The cached key set of one JWKS URL.
pub(crate) struct Jwks {
    client: reqwest::Client,
    url: Url,
    refetch_interval: Duration,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When the last fetch began (any fetch: start, background or on demand).
    last_fetch: Mutex<Option<Instant>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url.as_str())
            .field("keys", &self.keys().len())
            .finish()
    }
}

impl Jwks {
    /// A key set not yet fetched.
    pub(crate) fn new(client: reqwest::Client, url: Url, refetch_interval: Duration) -> Jwks {
        Jwks {
            client,
            url,
            refetch_interval,
            keys: RwLock::new(Arc::new(Vec::new())),
            last_fetch: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The keys of `document`, a JWKS said to come from `url` but never fetched or refreshed
    /// (for the fuzz target).
    pub(crate) fn fixed(url: Url, document: &Value) -> Jwks {
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .map(|entries| entries.iter().filter_map(Key::from_json).collect())
            .unwrap_or_default();
        Jwks {
            client: reqwest::Client::new(),
            url,
            // A fetch "just began" and the next is never due: an unknown `kid` fetches nothing.
            refetch_interval: Duration::MAX,
            keys: RwLock::new(Arc::new(keys)),
            last_fetch: Mutex::new(Some(Instant::now())),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn keys(&self) -> Arc<Vec<Key>> {
        // A poisoned lock still holds a consistent Arc: it is only ever replaced whole.
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fetches the key set now. A failed fetch keeps the keys already known.
    pub(crate) async fn fetch(&self) -> Result<usize, String> {
        let _one = self.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<usize, String> {
        *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let document = fetch_json(&self.client, &self.url).await?;
        let Some(entries) = document.get("keys").and_then(Value::as_array) else {
            return Err("the JWKS has no keys array".to_owned());
        };
        let keys: Vec<Key> = entries.iter().filter_map(Key::from_json).collect();
        let count = keys.len();
        if count < entries.len() {
            tracing::debug!(
                skipped = entries.len() - count,
                "JWKS entries that are not public signing keys of a supported type were skipped"
            );
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(count)
    }

    /// Refetches unless a fetch began less than the refetch interval ago.
    async fn refetch_if_due(&self) {
        let _one = self.fetching.lock().await;
        let last = *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|last| last.elapsed() < self.refetch_interval) {
            return;
        }
        match self.fetch_locked().await {
            Ok(count) => tracing::info!(keys = count, "JWKS refetched for an unknown key id"),
            Err(detail) => tracing::warn!(url = %self.url, %detail, "JWKS refetch failed"),
        }
    }

    /// The keys a token with `kid` and `alg` may be checked with. An unknown `kid` triggers
    /// a refetch when one is due.
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<Key>, KeyError> {
        match select(&self.keys(), kid, alg) {
            Err(KeyError::Unknown) => {
                self.refetch_if_due().await;
                select(&self.keys(), kid, alg)
            }
            found => found,
        }
    }

    /// Refreshes the key set every `interval` while the cache is alive.
    pub(crate) fn refresh_in_background(self: &Arc<Self>, interval: Duration) {
        let weak: Weak<Jwks> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(jwks) = weak.upgrade() else { return };
                if let Err(detail) = jwks.fetch().await {
                    tracing::warn!(url = %jwks.url, %detail, "JWKS refresh failed; keeping the known keys");
                }
            }
        });
    }
}

fn select(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Result<Vec<Key>, KeyError> {
    match kid {
        Some(kid) => {
            let named: Vec<&Key> = keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if named.is_empty() {
                return Err(KeyError::Unknown);
            }
            let fitting: Vec<Key> = named
                .into_iter()
                .filter(|k| k.accepts(alg))
                .cloned()
                .collect();
            if fitting.is_empty() {
                Err(KeyError::WrongAlgorithm)
            } else {
                Ok(fitting)
            }
        }
        None => {
            let fitting: Vec<Key> = keys.iter().filter(|k| k.accepts(alg)).cloned().collect();
            if fitting.is_empty() {
                Err(KeyError::Unknown)
            } else {
                Ok(fitting)
            }
        }
    }
}
