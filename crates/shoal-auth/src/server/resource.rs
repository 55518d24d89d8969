//! The resource server's side of `--auth oauth`: Shoal's own access tokens, checked like any
//! JWT (the key ring's public keys, `iss`, `aud`, lifetime, scopes), then refused if their
//! grant has been revoked on any replica.
//!
//! A client sends the same token with every request until it expires, and the signature
//! check (ES256) costs more than the rest of a small request: a token checked once is
//! remembered by its SHA-256 until its `exp` ([`VerifiedTokens`]). The revocation check runs
//! on every request all the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_core::session::Principal;
use shoal_transport::auth::{AuthError, AuthRequest, Authenticator, Challenger};

use aws_lc_rs::digest;

use super::store::{Store, now_secs};
use crate::authenticator::JwtAuthenticator;
use crate::token::{self, Presented};

/// How long a replica trusts its last answer that a grant is alive: the delay after which a
/// revocation on another replica takes effect here.
pub(crate) const ALIVE_FOR: Duration = Duration::from_secs(5);
/// Entries kept before the cache is emptied (a bound, not a tuning knob).
const CACHE_ENTRIES: usize = 100_000;

/// What this replica knows of grants' revocation.
#[derive(Debug, Default)]
pub(crate) struct RevokedCache {
    entries: Mutex<HashMap<String, (Instant, bool)>>,
}

impl RevokedCache {
    fn lookup(&self, grant: &str) -> Option<bool> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(grant) {
            // A revocation is final; "alive" is believed for a short while only.
            Some((_, true)) => Some(true),
            Some((at, false)) if at.elapsed() < ALIVE_FOR => Some(false),
            _ => None,
        }
    }

    pub(crate) fn note(&self, grant: &str, revoked: bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(grant.to_owned(), (Instant::now(), revoked));
    }
}

/// How many verified tokens a replica remembers (a bound on memory: about 1 KiB each).
const VERIFIED_ENTRIES: usize = 10_000;

/// Access tokens whose signature and claims were checked, by their SHA-256: the principal
/// they gave and their `exp`.
#[derive(Debug, Default)]
pub(crate) struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], (Principal, u64)>>,
}

impl VerifiedTokens {
    /// The principal of the token hashed to `key`, if it was checked and `exp` is still ahead.
    fn get(&self, key: &[u8; 32], now: u64) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(principal, _)| principal.clone())
    }

    /// Remembers the token hashed to `key` until its `exp`; one without `exp` is not kept.
    fn put(&self, key: [u8; 32], principal: &Principal, now: u64) {
        let Some(expires) = principal.claims.get("exp").and_then(Value::as_u64) else {
            return;
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= VERIFIED_ENTRIES {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= VERIFIED_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (principal.clone(), expires));
    }
}

/// Authenticates Shoal's own access tokens.
#[derive(Debug)]
pub(crate) struct OwnTokens {
    pub(crate) inner: JwtAuthenticator,
    pub(crate) verified: VerifiedTokens,
    pub(crate) challenger: Challenger,
    pub(crate) store: Store,
    pub(crate) revoked: Arc<RevokedCache>,
}

#[async_trait::async_trait]
impl Authenticator for OwnTokens {
    async fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        let now = now_secs();
        let key = match token::bearer(request.headers) {
            Presented::Token(token) => {
                let digest = digest::digest(&digest::SHA256, token.as_bytes());
                let mut key = [0u8; 32];
                key.copy_from_slice(digest.as_ref());
                Some(key)
            }
            Presented::Missing | Presented::Malformed => None,
        };
        let principal = match key.and_then(|key| self.verified.get(&key, now)) {
            Some(principal) => Some(principal),
            None => {
                let principal = self.inner.authenticate(request).await?;
                if let (Some(key), Some(principal)) = (key, &principal) {
                    self.verified.put(key, principal, now);
                }
                principal
            }
        };
        let Some(grant) = principal
            .as_ref()
            .and_then(|p| p.claims.get("grant"))
            .and_then(Value::as_str)
        else {
            return Ok(principal);
        };
        let revoked = match self.revoked.lookup(grant) {
            Some(known) => known,
            None => {
                let revoked = self
                    .store
                    .grant_revoked(grant)
                    .await
                    .map_err(|e| AuthError::Unavailable(Box::new(e)))?;
                self.revoked.note(grant, revoked);
                revoked
            }
        };
        if revoked {
            tracing::debug!("request refused: the token's grant was revoked");
            return Err(AuthError::Refused(
                self.challenger.invalid_token("the token was revoked"),
            ));
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn principal(exp: Option<u64>) -> Principal {
        let mut principal = Principal::new("issuer|alice");
        if let Some(exp) = exp {
            principal.claims.insert("exp".into(), json!(exp));
        }
        principal
    }

    #[test]
    fn a_verified_token_is_remembered_until_its_exp_only() {
        let verified = VerifiedTokens::default();
        verified.put([1; 32], &principal(Some(1_000)), 900);
        assert_eq!(
            verified.get(&[1; 32], 999).map(|p| p.id),
            Some("issuer|alice".to_owned())
        );
        assert_eq!(verified.get(&[1; 32], 1_000), None, "expired at its exp");
        assert_eq!(verified.get(&[2; 32], 900), None, "another token");
        verified.put([3; 32], &principal(None), 900);
        assert_eq!(
            verified.get(&[3; 32], 900),
            None,
            "no exp: never remembered"
        );
    }

    #[test]
    fn a_full_cache_drops_the_expired_first() {
        let verified = VerifiedTokens::default();
        for i in 0..VERIFIED_ENTRIES {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            // Half of them expired at 500.
            let exp = if i % 2 == 0 { 500 } else { 2_000 };
            verified.put(key, &principal(Some(exp)), 100);
        }
        verified.put([9; 32], &principal(Some(2_000)), 600);
        let mut live = [0; 32];
        live[..8].copy_from_slice(&1u64.to_le_bytes());
        assert!(verified.get(&live, 600).is_some(), "a live entry stays");
        assert!(verified.get(&[9; 32], 600).is_some());
        let entries = verified.entries.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(entries.len(), VERIFIED_ENTRIES / 2 + 1);
    }
}
