//! What an operator does to sessions and principals, on every replica at once: end one session,
//! end every session of a principal, refuse a principal (or the tokens it was issued before a
//! point in time) for a while.
//!
//! Sessions end through the host (the same path as a client's DELETE: gone for every replica's
//! next request). A refusal is an entry in the host's key-value store that expires when the
//! refusal does; each replica keeps what it read for a principal for [`CACHE_FOR`], so that
//! checking a request costs no round trip, and forgets it when any replica announces a change
//! for that principal (a broadcast, delivered in well under a millisecond on a LAN). A request
//! already past the check when the refusal lands is served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Shared;
use super::metrics;
use crate::host::{Broadcast, HostError, KvKey, KvNamespace, NodeEvent};
use crate::ids::SessionId;
use crate::session::Principal;

/// Where refusals live, one entry per principal.
const REFUSALS: KvNamespace = KvNamespace::new("refused-principal");

/// How long a replica trusts what it read of a principal's refusal without being told of a
/// change: bounds the damage of a lost announcement.
pub const CACHE_FOR: Duration = Duration::from_secs(10);

/// Principals a replica remembers at most; beyond, it forgets them all and reads again.
const CACHE_CAPACITY: usize = 100_000;

/// Which requests of a principal are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Every request.
    All,
    /// Requests whose credential was issued before this time (seconds since the epoch, the
    /// JWT `iat` claim); a credential without `iat` (a static token) is refused.
    IssuedBefore(u64),
}

impl Refusal {
    /// Whether `principal`'s request is refused.
    pub fn refuses(&self, principal: &Principal) -> bool {
        match self {
            Refusal::All => true,
            Refusal::IssuedBefore(epoch) => principal
                .claims
                .get("iat")
                .and_then(serde_json::Value::as_u64)
                .is_none_or(|issued| issued < *epoch),
        }
    }
}

/// A refusal as stored, with when it ends (seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRefusal {
    /// What is refused.
    pub refusal: Refusal,
    /// When the refusal ends.
    pub until: u64,
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    refusal: Option<StoredRefusal>,
    read_at: Instant,
}

/// Each replica's memory of refusals.
#[derive(Debug, Default)]
pub(crate) struct RefusalCache {
    entries: Mutex<HashMap<String, Cached>>,
}

impl RefusalCache {
    fn get(&self, principal: &str) -> Option<Option<StoredRefusal>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = entries.get(principal)?;
        (cached.read_at.elapsed() < CACHE_FOR).then_some(cached.refusal)
    }

    fn put(&self, principal: &str, refusal: Option<StoredRefusal>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(
            principal.to_owned(),
            Cached {
                refusal,
                read_at: Instant::now(),
            },
        );
    }

    /// Another replica (or this one) changed `principal`'s refusal.
    pub(crate) fn forget(&self, principal: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(principal);
    }
}

/// The operator's handle on sessions and principals, from [`Engine::admin`](super::Engine::admin).
/// Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Admin { shared }
    }

    /// Ends one session on every replica (as its client's DELETE would); whether it existed.
    ///
    /// # Errors
    ///
    /// The host could not be reached.
    pub async fn end_session(&self, id: &SessionId) -> Result<bool, HostError> {
        let ended = self.shared.host.delete_session(id).await?;
        if ended {
            metrics::admin_action("end_session");
        }
        Ok(ended)
    }

    /// Ends every session of `principal` on every replica; how many there were.
    ///
    /// # Errors
    ///
    /// The host could not be reached (some sessions may have ended).
    pub async fn end_sessions_of(&self, principal: &str) -> Result<usize, HostError> {
        let mut ended = 0;
        for id in self.shared.host.sessions_of(principal).await? {
            if self.shared.host.delete_session(&id).await? {
                ended += 1;
            }
        }
        metrics::admin_action("end_sessions_of_principal");
        Ok(ended)
    }

    /// Refuses `principal`'s requests (all, or those of credentials issued before a time) on
    /// every replica for `duration`, and ends its sessions; how many sessions ended. A second
    /// refusal replaces the first.
    ///
    /// # Errors
    ///
    /// The host could not be reached.
    pub async fn refuse(
        &self,
        principal: &str,
        refusal: Refusal,
        duration: Duration,
    ) -> Result<usize, HostError> {
        let stored = StoredRefusal {
            refusal,
            until: now_secs().saturating_add(duration.as_secs()),
        };
        let value = serde_json::to_vec(&stored)
            .map_err(|e| HostError::Unavailable(crate::error::Cause::new(e)))?;
        self.shared
            .host
            .put(
                &KvKey::new(REFUSALS, principal),
                Bytes::from(value),
                duration,
            )
            .await?;
        self.announce(principal).await?;
        metrics::admin_action("refuse_principal");
        self.end_sessions_of(principal).await
    }

    /// Lifts `principal`'s refusal; whether there was one.
    ///
    /// # Errors
    ///
    /// The host could not be reached.
    pub async fn lift(&self, principal: &str) -> Result<bool, HostError> {
        let lifted = self
            .shared
            .host
            .delete(&KvKey::new(REFUSALS, principal))
            .await?;
        self.announce(principal).await?;
        if lifted {
            metrics::admin_action("lift_refusal");
        }
        Ok(lifted)
    }

    /// `principal`'s refusal in force, if any (read through this replica's memory).
    ///
    /// # Errors
    ///
    /// The host could not be reached and this replica remembers nothing recent.
    pub async fn refusal_of(&self, principal: &str) -> Result<Option<StoredRefusal>, HostError> {
        let cache = &self.shared.refusals;
        if let Some(known) = cache.get(principal) {
            return Ok(known.filter(|stored| stored.until > now_secs()));
        }
        let stored = match self
            .shared
            .host
            .get(&KvKey::new(REFUSALS, principal))
            .await?
        {
            // An entry this version cannot read refuses nothing, rather than everything.
            Some(bytes) => serde_json::from_slice::<StoredRefusal>(&bytes).ok(),
            None => None,
        };
        cache.put(principal, stored);
        Ok(stored.filter(|stored| stored.until > now_secs()))
    }

    /// Whether `principal`'s request is refused now.
    ///
    /// # Errors
    ///
    /// The host could not be reached and this replica remembers nothing recent.
    pub async fn refuses(&self, principal: &Principal) -> Result<bool, HostError> {
        let refused = self
            .refusal_of(&principal.id)
            .await?
            .is_some_and(|stored| stored.refusal.refuses(principal));
        if refused {
            metrics::request_refused_for_principal();
        }
        Ok(refused)
    }

    async fn announce(&self, principal: &str) -> Result<(), HostError> {
        self.shared.refusals.forget(principal);
        self.shared
            .host
            .broadcast(NodeEvent::Broadcast(Broadcast::PrincipalChanged(
                principal.to_owned(),
            )))
            .await
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::handler::Handlers;
    use crate::host::{MemoryHost, MemoryHostConfig};
    use crate::session::SessionRecord;

    fn engine() -> Engine {
        let host = Arc::new(MemoryHost::new(
            crate::ids::NodeId::new("n"),
            MemoryHostConfig::default(),
        ));
        Engine::new(host, Handlers::new(), EngineConfig::default())
    }

    fn principal(id: &str, iat: Option<u64>) -> Principal {
        let mut principal = Principal::new(id);
        if let Some(iat) = iat {
            principal.claims.insert("iat".into(), json!(iat));
        }
        principal
    }

    async fn session_of(engine: &Engine, id: &str) -> SessionId {
        let record = SessionRecord::new(Some(id.to_owned()), "2025-11-25", json!({}), json!({}));
        engine.host().create_session(&record, 0).await.unwrap();
        record.id
    }

    #[tokio::test]
    async fn a_refused_principal_is_refused_until_lifted_and_its_sessions_end() {
        let engine = engine();
        let admin = engine.admin();
        let alice = principal("alice", Some(1_000));
        let bob = principal("bob", None);
        let (a1, a2, b1) = (
            session_of(&engine, "alice").await,
            session_of(&engine, "alice").await,
            session_of(&engine, "bob").await,
        );
        // Read (and remembered) before the refusal: the refusal must still take.
        assert!(!admin.refuses(&alice).await.unwrap());

        let ended = admin
            .refuse("alice", Refusal::All, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(ended, 2);
        assert!(admin.refuses(&alice).await.unwrap());
        assert!(!admin.refuses(&bob).await.unwrap());
        for id in [&a1, &a2] {
            assert_eq!(engine.host().session(id).await.unwrap(), None);
        }
        assert!(engine.host().session(&b1).await.unwrap().is_some());
        let stored = admin.refusal_of("alice").await.unwrap().unwrap();
        assert_eq!(stored.refusal, Refusal::All);
        assert!(stored.until >= now_secs() + 59, "{stored:?}");

        assert!(admin.lift("alice").await.unwrap());
        assert!(!admin.refuses(&alice).await.unwrap());
        assert!(!admin.lift("alice").await.unwrap(), "nothing left to lift");
    }

    #[tokio::test]
    async fn issued_before_refuses_older_credentials_and_those_without_a_date() {
        let engine = engine();
        let admin = engine.admin();
        admin
            .refuse(
                "carol",
                Refusal::IssuedBefore(1_000),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert!(admin.refuses(&principal("carol", Some(999))).await.unwrap());
        assert!(
            !admin
                .refuses(&principal("carol", Some(1_000)))
                .await
                .unwrap()
        );
        assert!(admin.refuses(&principal("carol", None)).await.unwrap());
    }

    #[tokio::test]
    async fn a_refusal_ends_when_its_time_is_up() {
        let engine = engine();
        let admin = engine.admin();
        admin
            .refuse("dave", Refusal::All, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(admin.refuses(&principal("dave", None)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        assert!(!admin.refuses(&principal("dave", None)).await.unwrap());
        assert_eq!(admin.refusal_of("dave").await.unwrap(), None);
    }

    #[tokio::test]
    async fn ending_one_session_is_ending_it_everywhere() {
        let engine = engine();
        let id = session_of(&engine, "erin").await;
        assert!(engine.admin().end_session(&id).await.unwrap());
        assert!(!engine.admin().end_session(&id).await.unwrap());
        assert_eq!(engine.host().session(&id).await.unwrap(), None);
    }
}
