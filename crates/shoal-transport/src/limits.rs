//! The per-replica count and rate limits: requests in flight and GET streams per session, and
//! an optional token bucket per principal. Each admitted request holds a [`Slot`] that gives
//! its count back when dropped (for streams: when hyper drops the response body). The header
//! size check lives here too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use shoal_core::session::Principal;

use crate::config::{RateLimit, TransportConfig};
use crate::rejection::{Limit, LimitExceeded, Rejection};

/// The rate limiter's key when the request carries no principal (auth is off).
const ANONYMOUS: &str = "anonymous";
/// Buckets idle long enough to be full again are dropped every this many checks, so that the
/// map holds the principals seen recently, not every principal ever seen.
const RATE_RETAIN_EVERY: u64 = 4096;

/// The limits of one router.
pub(crate) struct Limits {
    in_flight: Counter,
    streams: Counter,
    /// Stateless requests (2026-07-28) per principal: that era has no sessions.
    principal_in_flight: Counter,
    /// `subscriptions/listen` streams per principal.
    principal_listens: Counter,
    rate: Option<RateLimiter>,
}

impl Limits {
    pub(crate) fn new(config: &TransportConfig) -> Self {
        Limits {
            in_flight: Counter::new(Limit::InFlightPerSession, config.max_in_flight_per_session),
            streams: Counter::new(Limit::SseStreamsPerSession, config.max_streams_per_session),
            principal_in_flight: Counter::new(
                Limit::InFlightPerPrincipal,
                config.max_in_flight_per_session,
            ),
            principal_listens: Counter::new(
                Limit::ListenStreamsPerPrincipal,
                config.max_streams_per_session,
            ),
            rate: config.rate_limit.map(RateLimiter::new),
        }
    }

    /// Takes one of the session's in-flight slots.
    pub(crate) fn in_flight(&self, session: &str) -> Result<Slot, Rejection> {
        self.in_flight.acquire(session)
    }

    /// Counts a notification or a response of the session while it is handled, without
    /// refusing it: those are how a client cancels or completes in-flight requests (an
    /// elicitation answer, `notifications/cancelled`), so refusing them at the limit could
    /// stall the session for good.
    pub(crate) fn in_flight_unchecked(&self, session: &str) -> Slot {
        self.in_flight.hold(session)
    }

    /// Takes one of the session's stream slots.
    pub(crate) fn stream(&self, session: &str) -> Result<Slot, Rejection> {
        self.streams.acquire(session)
    }

    /// Takes one of the principal's stateless in-flight slots; `None` without a principal (as
    /// sessions without one are not limited per principal).
    pub(crate) fn principal_in_flight(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Option<Slot>, Rejection> {
        principal
            .map(|p| self.principal_in_flight.acquire(&p.id))
            .transpose()
    }

    /// Takes one of the principal's listen-stream slots; `None` without a principal.
    pub(crate) fn principal_listen(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Option<Slot>, Rejection> {
        principal
            .map(|p| self.principal_listens.acquire(&p.id))
            .transpose()
    }

    /// Takes a token from the principal's bucket, if a rate limit is set.
    pub(crate) fn rate(&self, principal: Option<&Principal>) -> Result<(), Rejection> {
        match &self.rate {
            Some(rate) => rate.check(principal.map_or(ANONYMOUS, |p| p.id.as_str())),
            None => Ok(()),
        }
    }
}

/// Counts per session, refusing beyond `max`. Entries at zero are removed, so the map holds
/// the sessions with something open only. The key is shared with the slots, so a request to a
/// session that already has something open allocates nothing.
struct Counter {
    limit: Limit,
    max: u64,
    counts: Arc<Mutex<HashMap<Arc<str>, u64>>>,
}

impl Counter {
    fn new(limit: Limit, max: u64) -> Self {
        Counter {
            limit,
            max,
            counts: Arc::default(),
        }
    }

    fn hold(&self, session: &str) -> Slot {
        let session = increment(&mut lock(&self.counts), session);
        Slot {
            counts: self.counts.clone(),
            session,
        }
    }

    fn acquire(&self, session: &str) -> Result<Slot, Rejection> {
        let mut counts = lock(&self.counts);
        if counts.get(session).is_some_and(|count| *count >= self.max) {
            drop(counts);
            return Err(Rejection::Limit(LimitExceeded {
                limit: self.limit,
                max: self.max,
                retry_after: None,
                request_id: None,
            }));
        }
        let session = increment(&mut counts, session);
        Ok(Slot {
            counts: self.counts.clone(),
            session,
        })
    }
}

/// Adds one to `session`'s count and returns its key.
fn increment(counts: &mut HashMap<Arc<str>, u64>, session: &str) -> Arc<str> {
    if let Some((key, count)) = counts.get_key_value(session) {
        let key = key.clone();
        let count = count + 1;
        counts.insert(key.clone(), count);
        return key;
    }
    let key: Arc<str> = Arc::from(session);
    counts.insert(key.clone(), 1);
    key
}

/// One admitted request or stream; gives its count back when dropped.
pub(crate) struct Slot {
    counts: Arc<Mutex<HashMap<Arc<str>, u64>>>,
    session: Arc<str>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&*self.session) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&*self.session);
            }
        }
    }
}

/// No code panics while holding these locks (plain integer updates), so a poisoned lock still
/// holds consistent counts.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    burst: u64,
    checks: AtomicU64,
}

impl RateLimiter {
    fn new(limit: RateLimit) -> Self {
        let period = limit.per / limit.requests.get();
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(limit.requests))
            .allow_burst(limit.burst);
        RateLimiter {
            limiter: DefaultKeyedRateLimiter::hashmap(quota),
            burst: u64::from(limit.burst.get()),
            checks: AtomicU64::new(0),
        }
    }

    fn check(&self, key: &str) -> Result<(), Rejection> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RATE_RETAIN_EVERY == RATE_RETAIN_EVERY - 1
        {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                Rejection::Limit(LimitExceeded {
                    limit: Limit::RatePerPrincipal,
                    max: self.burst,
                    retry_after: Some(not_until.wait_time_from(self.limiter.clock().now())),
                    request_id: None,
                })
            })
    }
}

/// Refuses requests whose headers (names plus values, as hyper has parsed them) exceed `max`.
pub(crate) fn check_header_size(headers: &http::HeaderMap, max: usize) -> Result<(), Rejection> {
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > max {
        return Err(Rejection::HeadersTooLarge(max));
    }
    Ok(())
}
