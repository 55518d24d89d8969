//! The resource server's side of `--auth oauth`: Shoal's own access tokens, checked like any
//! JWT (the key ring's public keys, `iss`, `aud`, lifetime, scopes), then refused if their
//! grant has been revoked on any replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_core::session::Principal;
use shoal_transport::auth::{AuthError, AuthRequest, Authenticator, Challenger};

use super::store::Store;
use crate::authenticator::JwtAuthenticator;

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

/// Authenticates Shoal's own access tokens.
#[derive(Debug)]
pub(crate) struct OwnTokens {
    pub(crate) inner: JwtAuthenticator,
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
        let principal = self.inner.authenticate(request).await?;
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
