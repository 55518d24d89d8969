//! When a session read refreshes the session's idle timer.
//!
//! Every request reads its session, and refreshing the timer on each read doubled the Redis
//! commands of the hot path. So a replica refreshes a session at most once per tenth of the
//! idle timeout, setting the timer to the idle timeout plus that tenth: whichever replica served
//! the last request, the session lives at least one idle timeout after it, and at most a tenth
//! longer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shoal_core::ids::SessionId;

/// How many sessions a replica remembers; past this it forgets the stale ones (and, if all are
/// fresh, every one: the cost is one extra refresh each).
const CAPACITY: usize = 100_000;

/// The sessions this replica refreshed recently, and when.
pub(crate) struct IdleRefresh {
    /// The shortest time between two refreshes of one session by this replica.
    every: Duration,
    /// What a refresh sets the timer to.
    ttl: Duration,
    refreshed: Mutex<HashMap<SessionId, Instant>>,
}

impl IdleRefresh {
    pub(crate) fn new(idle_timeout: Duration) -> Self {
        let every = idle_timeout / 10;
        IdleRefresh {
            every,
            ttl: idle_timeout + every,
            refreshed: Mutex::new(HashMap::new()),
        }
    }

    /// What a refresh sets the session's timer to.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether a read of `session` at `now` must refresh its timer; if so, it counts as done.
    pub(crate) fn due(&self, session: &SessionId, now: Instant) -> bool {
        let mut refreshed = self
            .refreshed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if refreshed
            .get(session)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.every)
        {
            return false;
        }
        if refreshed.len() >= CAPACITY {
            refreshed.retain(|_, at| now.saturating_duration_since(*at) < self.every);
            if refreshed.len() >= CAPACITY {
                refreshed.clear();
            }
        }
        refreshed.insert(session.clone(), now);
        true
    }

    /// Forgets `session` (deleted): a session created again under its id starts afresh.
    pub(crate) fn forget(&self, session: &SessionId) {
        self.refreshed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_once_per_tenth_of_the_idle_timeout() {
        let refresh = IdleRefresh::new(Duration::from_secs(100));
        assert_eq!(refresh.ttl(), Duration::from_secs(110));
        let (a, b) = (SessionId::random(), SessionId::random());
        let start = Instant::now();
        assert!(refresh.due(&a, start));
        assert!(!refresh.due(&a, start + Duration::from_secs(9)));
        assert!(refresh.due(&b, start + Duration::from_secs(9)));
        assert!(refresh.due(&a, start + Duration::from_secs(10)));
        assert!(!refresh.due(&a, start + Duration::from_secs(11)));
        refresh.forget(&a);
        assert!(refresh.due(&a, start + Duration::from_secs(12)));
    }

    #[test]
    fn a_full_table_forgets_stale_sessions_first() {
        let refresh = IdleRefresh::new(Duration::from_secs(100));
        let start = Instant::now();
        let stale: Vec<SessionId> = (0..CAPACITY).map(|_| SessionId::random()).collect();
        for id in &stale {
            assert!(refresh.due(id, start));
        }
        let later = start + Duration::from_secs(20);
        let fresh = SessionId::random();
        assert!(refresh.due(&fresh, later));
        assert!(!refresh.due(&fresh, later + Duration::from_secs(1)));
        assert!(refresh.due(&stale[0], later));
    }
}
