//! What the authorization server remembers, in the session host's expiring key-value store:
//! Redis on the Redis host (so that any replica continues any flow, and a restart of every
//! replica loses nothing), memory on the memory host. Every entry has an expiry; single-use
//! entries are taken atomically.
//!
//! | namespace             | id                  | value      | expiry                          |
//! |-----------------------|---------------------|------------|---------------------------------|
//! | `oauth-client`        | client id           | [`Client`] | the configured client lifetime  |
//! | `oauth-pending`       | pending id (`state` upstream) | [`Pending`] | [`PENDING_TTL`]       |
//! | `oauth-code`          | SHA-256 of the code | [`Code`]   | [`CODE_TTL`], taken once        |
//! | `oauth-code-spent`    | SHA-256 of the code | grant id   | [`SPENT_CODE_TTL`]              |
//! | `oauth-grant`         | grant id            | [`Grant`]  | the refresh token lifetime      |
//! | `oauth-revoked-grant` | grant id            | empty      | the access token lifetime       |
//! | `oauth-registrations` | source address      | a count    | one minute                      |
//! | `oauth-cimd`          | client id URL       | a document | its HTTP cache lifetime         |

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shoal_core::error::Cause;
use shoal_core::host::{HostError, KeyValue, KvKey, KvNamespace};

use super::client::Client;

const CLIENTS: KvNamespace = KvNamespace::new("oauth-client");
const PENDING: KvNamespace = KvNamespace::new("oauth-pending");
const CODES: KvNamespace = KvNamespace::new("oauth-code");
const SPENT_CODES: KvNamespace = KvNamespace::new("oauth-code-spent");
const GRANTS: KvNamespace = KvNamespace::new("oauth-grant");
const REVOKED_GRANTS: KvNamespace = KvNamespace::new("oauth-revoked-grant");
const REGISTRATIONS: KvNamespace = KvNamespace::new("oauth-registrations");

/// How long a user has from `/oauth/authorize` to their decision on the consent page.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// How long an authorization code can be exchanged (RFC 6749 §4.1.2: at most 10 minutes).
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a spent code is remembered, so that a second use revokes what the first got.
const SPENT_CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// How many replaced refresh tokens a grant remembers to detect their reuse.
const SPENT_REFRESH_TOKENS: usize = 32;
/// A compare-and-swap that loses this many times in a row gives up.
const CAS_ATTEMPTS: usize = 8;

/// Who logged in, as the upstream provider's verified `id_token` or userinfo answer says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct User {
    /// The upstream `sub`.
    pub(crate) sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
}

impl User {
    /// How the consent page names the user.
    pub(crate) fn display(&self) -> &str {
        self.email
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(&self.sub)
    }
}

/// An authorization between `/oauth/authorize` and the user's decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: String,
    /// SHA-256 of the cookie that binds the flow to the browser that started it.
    pub(crate) browser: String,
    /// The `nonce` sent upstream, expected in its `id_token`.
    pub(crate) nonce: String,
    /// The PKCE verifier of the upstream request.
    pub(crate) upstream_verifier: String,
    /// Set once the upstream callback verified the user.
    pub(crate) user: Option<User>,
    /// The consent form's anti-forgery token, set with `user`.
    pub(crate) csrf: Option<String>,
}

/// An issued authorization code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: String,
    pub(crate) user: User,
    /// The grant the exchange creates (known now, so that a reused code can revoke it).
    pub(crate) grant_id: String,
}

/// What a user granted a client: the refresh token's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) user: User,
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: String,
    /// SHA-256 of the refresh token's secret that is valid now.
    pub(crate) refresh: String,
    /// SHA-256 of the secrets it replaced: presenting one of them is reuse.
    #[serde(default)]
    pub(crate) spent: Vec<String>,
}

/// What a refresh token is, to the store.
#[derive(Debug)]
pub(crate) enum Refreshed {
    /// The token was current: the grant now holds the new secret.
    Rotated(Grant),
    /// The token was already replaced: the grant has been revoked.
    Reused,
    /// No such grant, or a secret it never had.
    Unknown,
}

/// The state store of the authorization server.
#[derive(Clone)]
pub(crate) struct Store {
    kv: Arc<dyn KeyValue>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    pub(crate) fn new(kv: Arc<dyn KeyValue>) -> Store {
        Store { kv }
    }

    pub(crate) async fn put_client(&self, client: &Client, ttl: Duration) -> Result<(), HostError> {
        self.put(CLIENTS, &client.client_id, client, ttl).await
    }

    pub(crate) async fn client(&self, client_id: &str) -> Result<Option<Client>, HostError> {
        self.get(CLIENTS, client_id).await
    }

    pub(crate) async fn put_pending(&self, id: &str, pending: &Pending) -> Result<(), HostError> {
        self.put(PENDING, id, pending, PENDING_TTL).await
    }

    pub(crate) async fn pending(&self, id: &str) -> Result<Option<Pending>, HostError> {
        self.get(PENDING, id).await
    }

    /// Ends a pending authorization: of concurrent decisions, exactly one gets it.
    pub(crate) async fn take_pending(&self, id: &str) -> Result<Option<Pending>, HostError> {
        self.take(PENDING, id).await
    }

    pub(crate) async fn put_code(&self, code: &str, value: &Code) -> Result<(), HostError> {
        self.put(CODES, &hash(code), value, CODE_TTL).await
    }

    /// Redeems a code once. A code already redeemed gives `Err(grant id)`: that grant was
    /// obtained with a code an attacker may also hold (RFC 6749 §4.1.2), so it is revoked.
    pub(crate) async fn redeem_code(
        &self,
        code: &str,
    ) -> Result<Result<Option<Code>, String>, HostError> {
        let id = hash(code);
        if let Some(value) = self.take::<Code>(CODES, &id).await? {
            self.kv
                .put(
                    &KvKey::new(SPENT_CODES, id),
                    Bytes::from(value.grant_id.clone()),
                    SPENT_CODE_TTL,
                )
                .await?;
            return Ok(Ok(Some(value)));
        }
        match self.kv.get(&KvKey::new(SPENT_CODES, id)).await? {
            Some(grant) => Ok(Err(String::from_utf8_lossy(&grant).into_owned())),
            None => Ok(Ok(None)),
        }
    }

    pub(crate) async fn put_grant(
        &self,
        id: &str,
        grant: &Grant,
        ttl: Duration,
    ) -> Result<(), HostError> {
        self.put(GRANTS, id, grant, ttl).await
    }

    /// Rotates the refresh token `secret` of grant `id` to `next`, atomically: of two
    /// concurrent refreshes with the same token, one rotates and the other is reuse.
    pub(crate) async fn refresh(
        &self,
        id: &str,
        secret: &str,
        next: &str,
        ttl: Duration,
        revoked_for: Duration,
    ) -> Result<Refreshed, HostError> {
        let key = KvKey::new(GRANTS, id);
        let presented = hash(secret);
        for _ in 0..CAS_ATTEMPTS {
            let Some(current) = self.kv.get(&key).await? else {
                return Ok(Refreshed::Unknown);
            };
            let Ok(mut grant) = serde_json::from_slice::<Grant>(&current) else {
                return Ok(Refreshed::Unknown);
            };
            if grant.spent.contains(&presented) {
                self.revoke_grant(id, revoked_for).await?;
                return Ok(Refreshed::Reused);
            }
            if grant.refresh != presented {
                return Ok(Refreshed::Unknown);
            }
            grant
                .spent
                .push(std::mem::replace(&mut grant.refresh, hash(next)));
            if grant.spent.len() > SPENT_REFRESH_TOKENS {
                grant.spent.remove(0);
            }
            let bytes = Bytes::from(serde_json::to_vec(&grant).unwrap_or_default());
            if self
                .kv
                .compare_and_swap(&key, Some(&current), Some(bytes), ttl)
                .await?
            {
                return Ok(Refreshed::Rotated(grant));
            }
        }
        Err(unavailable(
            "the grant changed under every attempt to rotate its refresh token".into(),
        ))
    }

    /// The grant `id`, if it is alive.
    pub(crate) async fn grant(&self, id: &str) -> Result<Option<Grant>, HostError> {
        self.get(GRANTS, id).await
    }

    /// Ends grant `id`: its refresh token stops working at once, and the access tokens it
    /// issued (they live at most `access_ttl`) are refused by every replica.
    pub(crate) async fn revoke_grant(
        &self,
        id: &str,
        access_ttl: Duration,
    ) -> Result<(), HostError> {
        self.kv
            .put(&KvKey::new(REVOKED_GRANTS, id), Bytes::new(), access_ttl)
            .await?;
        self.kv.delete(&KvKey::new(GRANTS, id)).await?;
        Ok(())
    }

    pub(crate) async fn grant_revoked(&self, id: &str) -> Result<bool, HostError> {
        Ok(self
            .kv
            .get(&KvKey::new(REVOKED_GRANTS, id))
            .await?
            .is_some())
    }

    /// Counts one registration from `source` in the current minute; whether it is within
    /// `limit`.
    pub(crate) async fn count_registration(
        &self,
        source: &str,
        limit: u32,
    ) -> Result<bool, HostError> {
        let minute = now_secs() / 60;
        let key = KvKey::new(REGISTRATIONS, format!("{source}@{minute}"));
        for _ in 0..CAS_ATTEMPTS {
            let current = self.kv.get(&key).await?;
            let count: u32 = current
                .as_deref()
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .and_then(|text| text.parse().ok())
                .unwrap_or(0);
            if count >= limit {
                return Ok(false);
            }
            let next = Bytes::from((count + 1).to_string());
            if self
                .kv
                .compare_and_swap(
                    &key,
                    current.as_deref(),
                    Some(next),
                    Duration::from_secs(120),
                )
                .await?
            {
                return Ok(true);
            }
        }
        // Contended past reason: count it as over the limit rather than let it through.
        Ok(false)
    }

    async fn put<T: Serialize>(
        &self,
        namespace: KvNamespace,
        id: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), HostError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| unavailable(format!("cannot encode a record: {e}")))?;
        self.kv
            .put(&KvKey::new(namespace, id), Bytes::from(bytes), ttl)
            .await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        namespace: KvNamespace,
        id: &str,
    ) -> Result<Option<T>, HostError> {
        let bytes = self.kv.get(&KvKey::new(namespace, id)).await?;
        Ok(bytes.and_then(|bytes| decode(namespace, &bytes)))
    }

    async fn take<T: DeserializeOwned>(
        &self,
        namespace: KvNamespace,
        id: &str,
    ) -> Result<Option<T>, HostError> {
        let bytes = self.kv.take(&KvKey::new(namespace, id)).await?;
        Ok(bytes.and_then(|bytes| decode(namespace, &bytes)))
    }
}

fn unavailable(detail: String) -> HostError {
    HostError::Unavailable(Cause::new(std::io::Error::other(detail)))
}

/// A record another version wrote in a shape this one cannot read is treated as absent: the
/// flow starts over instead of failing forever.
fn decode<T: DeserializeOwned>(namespace: KvNamespace, bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(%namespace, %error, "an OAuth record cannot be read; ignored");
            None
        }
    }
}

/// SHA-256, base64url: how secrets are kept (a leaked store does not leak usable tokens).
pub(crate) fn hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

/// 32 random bytes, base64url: codes, token secrets, ids, cookies.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG does not fail on the platforms Shoal runs on; a zeroed token would be
    // refused by nobody, so fall back to a second source rather than to zeros.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let seeded = digest::digest(&digest::SHA256, &now.to_le_bytes());
        bytes.copy_from_slice(seeded.as_ref());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
