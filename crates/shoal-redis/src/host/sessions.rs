//! [`SessionStore`] on Redis: session records in one hash per session, and each principal's
//! set of sessions for the limit per principal.

use std::time::Duration;

use fred::types::Value;
use shoal_core::host::{HostError, SessionStore, SessionUpdate};
use shoal_core::ids::SessionId;
use shoal_core::session::SessionRecord;

use super::{Inner, RedisHost, millis, millis_i64, now_ms, unavailable};
use crate::codec::{self, DecodeError};
use crate::reads::Read;

impl Inner {
    /// Adds `session` to `principal`'s set unless it already holds `max` live sessions
    /// (0: no limit); whether it was added.
    async fn reserve(
        &self,
        principal_set: &str,
        session: &SessionId,
        max: usize,
    ) -> Result<bool, HostError> {
        let reply = self
            .eval(
                "create_session",
                &self.scripts.reserve,
                &[principal_set],
                vec![
                    session.as_str().to_owned(),
                    max.to_string(),
                    millis(self.config.max_lifetime),
                ],
            )
            .await?;
        Ok(codec::integer(&reply)? == 1)
    }

    /// Removes from a principal's set the sessions whose hash is gone (expired while idle, or
    /// a delete whose `ZREM` was lost); returns how many. A member's hash is written before the
    /// member is added (see `create_session`), so a missing hash means the session is gone for
    /// good, never that it is still being created.
    async fn prune(&self, principal_set: &str) -> Result<usize, HostError> {
        let members = self
            .on_key(
                "create_session",
                "ZRANGE",
                principal_set,
                vec![Value::from(0), Value::from(-1)],
            )
            .await?;
        let members: Vec<String> = codec::array(members)?
            .into_iter()
            .map(codec::text)
            .collect::<Result<_, _>>()?;
        // One `EXISTS` per member, concurrently (each key may live on another Cluster master).
        let checks = members.into_iter().map(|member| async move {
            let Ok(id) = member.parse::<SessionId>() else {
                return Ok::<_, HostError>(Some(member));
            };
            let key = self.keys.session(&id).session;
            let exists = self
                .on_key("create_session", "EXISTS", &key, Vec::new())
                .await?;
            Ok((codec::integer(&exists)? == 0).then_some(member))
        });
        let gone: Vec<Value> = futures::future::try_join_all(checks)
            .await?
            .into_iter()
            .flatten()
            .map(Value::from)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let count = gone.len();
        self.on_key("create_session", "ZREM", principal_set, gone)
            .await?;
        Ok(count)
    }

    /// Destroys a session (the `delete` script); whether it existed, and its principal.
    /// `announce`: tell every node (`SessionClosed`); not for a session refused at creation.
    async fn destroy(
        &self,
        id: &SessionId,
        announce: bool,
    ) -> Result<(bool, Option<String>), HostError> {
        let keys = self.keys.session(id);
        let mut args = self.common_args(id, &keys)?;
        if !announce {
            // The broadcast channel: the script publishes nothing on ''.
            args[4] = String::new();
        }
        self.refresh.forget(id);
        let reply = self
            .eval(
                "delete_session",
                &self.scripts.delete,
                &[&keys.session],
                args,
            )
            .await?;
        let mut reply = codec::array(reply)?.into_iter();
        let existed = codec::integer(&reply.next().ok_or(DecodeError::Reply)?)? == 1;
        let principal = match reply.next().ok_or(DecodeError::Reply)? {
            // '' (no principal) may come back as a null bulk string.
            Value::Null => None,
            value => Some(codec::text(value)?).filter(|p| !p.is_empty()),
        };
        Ok((existed, principal))
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisHost {
    /// Writes the session hash, then adds the session to its principal's set if there is
    /// room, else destroys the hash again. Two scripts, not one: the set and the hash live in
    /// different Cluster slots (a shared hash tag would put every session of a principal on one
    /// master). The hash comes first so that every member of the set has (or had) a hash: a
    /// member without one is gone, and `prune` may drop it without racing a create.
    async fn create_session(
        &self,
        record: &SessionRecord,
        max_per_principal: usize,
    ) -> Result<(), HostError> {
        let inner = &self.inner;
        let keys = inner.keys.session(&record.id);
        let mut args = inner.common_args(&record.id, &keys)?;
        args.push(serde_json::to_string(record).map_err(unavailable)?);
        args.push(record.standalone_stream.as_str().to_owned());
        args.push(match record.log_level {
            Some(level) => codec::encode_level(level)?,
            None => String::new(),
        });
        args.push(record.principal.clone().unwrap_or_default());
        args.extend(record.subscriptions.iter().cloned());
        inner
            .eval(
                "create_session",
                &inner.scripts.create,
                &[&keys.session],
                args,
            )
            .await?;
        let Some(principal) = record.principal.as_deref() else {
            return Ok(());
        };
        let set = inner.keys.principal_sessions(principal);
        let reserved = async {
            if inner.reserve(&set, &record.id, max_per_principal).await? {
                return Ok(true);
            }
            // Full, maybe of sessions that expired while idle (their scores only end with
            // their lifetime): drop those and try once more. At most once per tenth of the
            // idle timeout per principal and replica: a prune costs one `EXISTS` per session,
            // and a client hammering initialize at its limit must not multiply Redis's work.
            if !inner.prunes.due(principal, std::time::Instant::now())
                || inner.prune(&set).await? == 0
            {
                return Ok(false);
            }
            inner.reserve(&set, &record.id, max_per_principal).await
        }
        .await;
        match reserved {
            Ok(true) => Ok(()),
            refused => {
                // Best effort: a hash left behind expires after the idle timeout, unused.
                let _ = inner.destroy(&record.id, false).await;
                refused.and(Err(HostError::PrincipalAtLimit))
            }
        }
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, HostError> {
        let inner = &self.inner;
        // The hot path (every request): one plain `HGETALL`, no script (a Lua call cost Redis
        // several times the CPU of the commands it ran), pipelined with the reads of other
        // requests (see `reads`). Now and then, with it, the idle timer's refresh (see
        // `refresh`). The lifetime is checked here, on this replica's clock, and a session
        // past it is destroyed as the scripts would.
        let read = Read {
            key: inner.keys.session_hash(id),
            refresh_ms: inner
                .refresh
                .due(id, std::time::Instant::now())
                .then(|| millis_i64(inner.refresh.ttl())),
        };
        let reply = inner.reads.read(read).await?;
        let fields = codec::hash_fields(reply)?;
        if fields.is_empty() {
            inner.records.forget(id);
            return Ok(None);
        }
        let (record, created_ms) = inner.records.decode(id, fields)?;
        let lifetime = millis_i64(inner.config.max_lifetime);
        if created_ms.is_some_and(|created| created.saturating_add(lifetime) <= now_ms()) {
            self.delete_session(id).await?;
            return Ok(None);
        }
        Ok(Some(record))
    }

    async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<(), HostError> {
        let inner = &self.inner;
        let keys = inner.keys.session(id);
        let mut args = inner.common_args(id, &keys)?;
        match update {
            SessionUpdate::LogLevel(level) => {
                args.push("level".into());
                args.push(codec::encode_level(level)?);
            }
            SessionUpdate::Subscribe(uri) => {
                args.push("sub".into());
                args.push(uri);
            }
            SessionUpdate::Unsubscribe(uri) => {
                args.push("unsub".into());
                args.push(uri);
            }
        }
        let reply = inner
            .eval(
                "update_session",
                &inner.scripts.update,
                &[&keys.session],
                args,
            )
            .await?;
        if codec::integer(&reply)? == 1 {
            Ok(())
        } else {
            Err(HostError::SessionNotFound)
        }
    }

    async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionId>, HostError> {
        let set = self.inner.keys.principal_sessions(principal);
        let members = self
            .inner
            .on_key(
                "sessions_of",
                "ZRANGE",
                &set,
                vec![Value::from(0), Value::from(-1)],
            )
            .await?;
        // A member that is not a session id was never written by a Shoal: skipped.
        Ok(codec::array(members)?
            .into_iter()
            .map(codec::text)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter_map(|member| member.parse::<SessionId>().ok())
            .collect())
    }

    async fn delete_session(&self, id: &SessionId) -> Result<bool, HostError> {
        let inner = &self.inner;
        inner.records.forget(id);
        let (existed, principal) = inner.destroy(id, true).await?;
        if let Some(principal) = principal {
            // Frees the slot now. If this is lost, `prune` frees it when the principal is full.
            let set = inner.keys.principal_sessions(&principal);
            inner
                .on_key(
                    "delete_session",
                    "ZREM",
                    &set,
                    vec![Value::from(id.as_str())],
                )
                .await?;
        }
        Ok(existed)
    }
}

/// Principals whose full set this replica pruned recently, and when.
pub(super) struct PruneThrottle {
    every: Duration,
    pruned: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl PruneThrottle {
    /// Principals remembered; past this the stale ones are forgotten (if all are fresh,
    /// every one: the cost is one extra prune each).
    const CAPACITY: usize = 10_000;

    pub(super) fn new(every: Duration) -> Self {
        PruneThrottle {
            every,
            pruned: std::sync::Mutex::default(),
        }
    }

    /// Whether `principal`'s set may be pruned at `now`; if so, it counts as done.
    fn due(&self, principal: &str, now: std::time::Instant) -> bool {
        let mut pruned = self
            .pruned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pruned
            .get(principal)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.every)
        {
            return false;
        }
        if pruned.len() >= Self::CAPACITY {
            pruned.retain(|_, at| now.saturating_duration_since(*at) < self.every);
            if pruned.len() >= Self::CAPACITY {
                pruned.clear();
            }
        }
        pruned.insert(principal.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_is_pruned_at_most_once_per_interval() {
        let throttle = PruneThrottle::new(Duration::from_secs(10));
        let start = std::time::Instant::now();
        assert!(throttle.due("alice", start));
        assert!(!throttle.due("alice", start + Duration::from_secs(9)));
        assert!(throttle.due("bob", start + Duration::from_secs(9)));
        assert!(throttle.due("alice", start + Duration::from_secs(10)));
        assert!(!throttle.due("alice", start + Duration::from_secs(11)));
    }
}
