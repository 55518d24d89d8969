//! [`ListenChecker`]: records the listen streams and numbered triggers of a
//! [`ListenLoad`](crate::listen_workload::ListenLoad) and judges them.
//!
//! The rule (the 2026-07-28 revision delivers at most once and never replays):
//!
//! - A stream is owed trigger `n` when the trigger's call was *sent* after the stream's
//!   acknowledgement was read and *answered* (a result) before the stream ended. An owed update
//!   must arrive on that stream exactly once: missing is lost, twice is duplicated.
//! - Nothing is owed across a break: the client listens again and misses what came in
//!   between. An update that is not owed may arrive (once) or not.
//! - No update may arrive twice on one stream, owed or not.
//!
//! When a stream ended: a graceful end (the listen request's response) or a break, as the client
//! saw it. A break caused by `kill -9` is seen a moment after the kill, and a trigger answered in
//! between could not have reached the dead stream: a break seen within [`KILL_TO_BREAK`] of a
//! kill the scenario recorded ([`ListenChecker::replica_killed`]) ended at the kill.
//! An update answered just before a stream's end may still have been on its way through the
//! replica (from Redis to the replica, from the replica to the client) when the replica wrote
//! the graceful end, or died: nothing is replayed, so a stream ended that way ended
//! [`IN_FLIGHT_MARGIN`] before the graceful end was seen, or before the kill.
//! The stream still open when the load stops ended then, after the last trigger was answered.
//!
//! Times are given by the caller, so the unit tests below build every case exactly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::checker::{Checker, Judged};

/// A break seen this long after a kill is taken as caused by it.
pub const KILL_TO_BREAK: Duration = Duration::from_secs(2);
/// How long an answered update may still be on its way to a stream through the replica (at most,
/// on a busy 2-core machine): CI runs lost an update answered just before a graceful end, and
/// one answered just before a kill.
pub const IN_FLIGHT_MARGIN: Duration = Duration::from_millis(50);
/// How many violations of each kind are written out in full.
const VIOLATIONS_SHOWN: usize = 10;

/// The records of one listen load; cheap to clone, shared by its tasks.
#[derive(Debug, Clone, Default)]
pub struct ListenChecker {
    inner: Arc<Mutex<State>>,
}

/// One stream, as [`ListenChecker::stream_acked`] numbered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamId(usize);

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The server answered the listen request (it drains).
    Graceful,
    /// The connection broke or the body ended without the response.
    Broken,
    /// The load stopped reading it.
    Stopped,
}

/// What the checker concluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenVerdict {
    /// Listeners (clients holding one stream at a time).
    pub listeners: usize,
    /// Streams opened after a listener's first one.
    pub relistens: usize,
    /// Triggers answered with a result.
    pub triggers: usize,
    /// (stream, trigger) pairs owed a delivery.
    pub owed: usize,
    /// Owed updates that arrived exactly once.
    pub delivered: usize,
    /// Owed updates that never arrived.
    pub lost: usize,
    /// Updates that arrived more than once on one stream (each extra arrival counted).
    pub duplicated: usize,
    /// Streams that ended with the graceful response.
    pub graceful_ends: usize,
    /// Streams that broke.
    pub breaks: usize,
    /// Updates that arrived though not owed (across a break or at an end): allowed.
    pub unowed_arrivals: usize,
    /// What broke a rule.
    pub violations: Vec<String>,
}

/// The tag a listen request carries in the proxy's log
/// ([`Http::post_modern`](crate::workload::Http::post_modern)).
pub(crate) fn stream_tag(listener: usize, subscription: i64) -> String {
    format!("listen-l{listener}-{subscription}")
}

// === impl ListenVerdict ===

impl ListenVerdict {
    /// Hands the figures and violations to the scenario's `checker` (so the results table and
    /// the pass/fail see them) and returns the scenario's note line.
    pub fn record(&self, checker: &Checker) -> String {
        checker.add_judged(Judged {
            requests: self.triggers + self.listeners + self.relistens,
            events_checked: self.delivered + self.unowed_arrivals,
            lost: self.lost,
            duplicated: self.duplicated,
            results_once: 0,
        });
        for violation in &self.violations {
            checker.violation(violation.clone());
        }
        format!(
            "listeners {}, re-listens {} ({} graceful ends, {} breaks), triggers {}, owed \
             deliveries {}, delivered {}, lost {}, duplicated {} (updates that arrived though not \
             owed: {})",
            self.listeners,
            self.relistens,
            self.graceful_ends,
            self.breaks,
            self.triggers,
            self.owed,
            self.delivered,
            self.lost,
            self.duplicated,
            self.unowed_arrivals
        )
    }
}

#[derive(Debug, Default)]
struct State {
    listeners: usize,
    /// Trigger number → when its call was sent and answered (`None`: no result).
    triggers: BTreeMap<u64, (Instant, Option<Instant>)>,
    streams: Vec<Stream>,
    kills: Vec<Instant>,
    violations: Vec<String>,
}

#[derive(Debug)]
struct Stream {
    listener: usize,
    subscription: i64,
    acked: Instant,
    ended: Option<(StreamEnd, Instant)>,
    /// Trigger numbers, in the order their updates arrived.
    received: Vec<u64>,
}

// === impl ListenChecker ===

impl ListenChecker {
    /// An empty record.
    pub fn new() -> Self {
        ListenChecker::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The load has `listeners` listeners.
    pub fn listeners(&self, listeners: usize) {
        self.state().listeners = listeners;
    }

    /// Trigger `n`'s call was sent at `at`.
    pub fn trigger_sent(&self, n: u64, at: Instant) {
        self.state().triggers.insert(n, (at, None));
    }

    /// Trigger `n`'s call was answered with a result at `at`.
    pub fn trigger_answered(&self, n: u64, at: Instant) {
        if let Some((_, answered)) = self.state().triggers.get_mut(&n) {
            *answered = Some(at);
        }
    }

    /// A replica was killed (SIGKILL) at `at`.
    pub fn replica_killed(&self, at: Instant) {
        self.state().kills.push(at);
    }

    /// `listener`'s stream for listen request `subscription` was acknowledged at `at`.
    pub fn stream_acked(&self, listener: usize, subscription: i64, at: Instant) -> StreamId {
        let mut state = self.state();
        state.streams.push(Stream {
            listener,
            subscription,
            acked: at,
            ended: None,
            received: Vec::new(),
        });
        StreamId(state.streams.len() - 1)
    }

    /// Trigger `n`'s update arrived on `stream`.
    pub fn delivered(&self, stream: StreamId, n: u64) {
        if let Some(stream) = self.state().streams.get_mut(stream.0) {
            stream.received.push(n);
        }
    }

    /// `stream` ended (`how`), as the client saw it at `at`.
    pub fn stream_ended(&self, stream: StreamId, how: StreamEnd, at: Instant) {
        if let Some(stream) = self.state().streams.get_mut(stream.0) {
            stream.ended.get_or_insert((how, at));
        }
    }

    /// A rule broken that only the caller can see (a message on a stream it did not ask for).
    pub fn violation(&self, detail: impl Into<String>) {
        self.state().violations.push(detail.into());
    }

    /// How many listeners the load has.
    pub fn listeners_count(&self) -> usize {
        self.state().listeners
    }

    /// How many listeners have had a stream acknowledged.
    pub fn listeners_acked(&self) -> usize {
        let state = self.state();
        let listeners: std::collections::BTreeSet<usize> =
            state.streams.iter().map(|s| s.listener).collect();
        listeners.len()
    }

    /// The proxy-log tags ([`stream_tag`]) of the streams still open.
    pub fn open_stream_tags(&self) -> Vec<String> {
        self.state()
            .streams
            .iter()
            .filter(|s| s.ended.is_none())
            .map(|s| stream_tag(s.listener, s.subscription))
            .collect()
    }

    /// Whether every stream still open has every update it is owed so far (`now` as its end).
    pub fn open_streams_caught_up(&self, now: Instant) -> bool {
        let state = self.state();
        state
            .streams
            .iter()
            .filter(|s| s.ended.is_none())
            .all(|s| state.owed(s, now).all(|n| s.received.contains(&n)))
    }

    /// Judges everything recorded; a stream still open ends at `now`.
    pub fn report(&self, now: Instant) -> ListenVerdict {
        let state = self.state();
        let mut verdict = ListenVerdict {
            listeners: state.listeners,
            triggers: state.triggers.values().filter(|t| t.1.is_some()).count(),
            violations: state.violations.clone(),
            ..ListenVerdict::default()
        };
        let mut first_streams = std::collections::BTreeSet::new();
        let mut lost_lines = Vec::new();
        let mut duplicate_lines = Vec::new();
        for stream in &state.streams {
            if !first_streams.insert(stream.listener) {
                verdict.relistens += 1;
            }
            let mut arrivals: BTreeMap<u64, usize> = BTreeMap::new();
            for &n in &stream.received {
                *arrivals.entry(n).or_default() += 1;
            }
            match stream.ended {
                Some((StreamEnd::Graceful, _)) => verdict.graceful_ends += 1,
                Some((StreamEnd::Broken, _)) => verdict.breaks += 1,
                _ => {}
            }
            let end = state.effective_end(stream, now);
            let what = || {
                format!(
                    "listener {} stream {} (acked {:?} after the first trigger, ended {:?})",
                    stream.listener,
                    stream.subscription,
                    state.since_start(stream.acked),
                    stream.ended.map(|(how, at)| (how, state.since_start(at))),
                )
            };
            let mut owed_here = 0;
            let mut lost_here = Vec::new();
            for n in state.owed(stream, end) {
                owed_here += 1;
                match arrivals.get(&n) {
                    None => lost_here.push(n),
                    Some(1) => verdict.delivered += 1,
                    Some(_) => {}
                }
            }
            verdict.owed += owed_here;
            verdict.unowed_arrivals += arrivals.len() - (owed_here - lost_here.len());
            if !lost_here.is_empty() {
                verdict.lost += lost_here.len();
                lost_lines.push(format!(
                    "{}: {} owed updates lost: {lost_here:?}",
                    what(),
                    lost_here.len()
                ));
            }
            let twice: Vec<(u64, usize)> = arrivals.into_iter().filter(|(_, c)| *c > 1).collect();
            if !twice.is_empty() {
                verdict.duplicated += twice.iter().map(|(_, c)| c - 1).sum::<usize>();
                duplicate_lines.push(format!(
                    "{}: updates delivered more than once (n, times): {twice:?}",
                    what()
                ));
            }
        }
        for (kind, lines) in [("lost", lost_lines), ("duplicated", duplicate_lines)] {
            let more = lines.len().saturating_sub(VIOLATIONS_SHOWN);
            verdict
                .violations
                .extend(lines.into_iter().take(VIOLATIONS_SHOWN));
            if more > 0 {
                verdict
                    .violations
                    .push(format!("… and {more} more streams with {kind} updates"));
            }
        }
        verdict
    }
}

// === impl State ===

impl State {
    /// The triggers `stream` is owed if it ended at `end`.
    fn owed<'s>(&'s self, stream: &Stream, end: Instant) -> impl Iterator<Item = u64> + 's {
        let acked = stream.acked;
        self.triggers
            .iter()
            .filter(move |(_, (sent, answered))| {
                *sent >= acked && answered.is_some_and(|answered| answered <= end)
            })
            .map(|(n, _)| *n)
    }

    /// When `stream` ended for the rule: a break seen shortly after a kill ended at the kill.
    fn effective_end(&self, stream: &Stream, now: Instant) -> Instant {
        match stream.ended {
            None => now,
            Some((StreamEnd::Broken, seen)) => self
                .kills
                .iter()
                .copied()
                .filter(|kill| *kill <= seen && seen.duration_since(*kill) <= KILL_TO_BREAK)
                .max()
                .map_or(seen, |kill| {
                    kill.checked_sub(IN_FLIGHT_MARGIN).unwrap_or(kill)
                }),
            Some((StreamEnd::Graceful, seen)) => seen.checked_sub(IN_FLIGHT_MARGIN).unwrap_or(seen),
            Some((_, seen)) => seen,
        }
    }

    /// `at` relative to the first trigger sent, for messages.
    fn since_start(&self, at: Instant) -> Duration {
        let first = self.triggers.values().map(|t| t.0).min().unwrap_or(at);
        at.saturating_duration_since(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A checker with triggers 1..=`count`, trigger n sent at 10n ms and answered 2 ms later.
    fn with_triggers(t0: Instant, count: u64) -> ListenChecker {
        let checker = ListenChecker::new();
        for n in 1..=count {
            checker.trigger_sent(n, t0 + MS * (10 * n as u32));
            checker.trigger_answered(n, t0 + MS * (10 * n as u32 + 2));
        }
        checker
    }

    #[test]
    fn every_owed_update_once_passes_and_a_gap_or_a_repeat_does_not() {
        let t0 = Instant::now();
        let checker = with_triggers(t0, 5);
        checker.listeners(2);
        let whole = checker.stream_acked(0, 1, t0);
        for n in 1..=5 {
            checker.delivered(whole, n);
        }
        let verdict = checker.report(t0 + MS * 100);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!((verdict.owed, verdict.delivered), (5, 5));

        let gappy = checker.stream_acked(1, 2, t0);
        for n in [1, 2, 2, 4, 5] {
            checker.delivered(gappy, n);
        }
        let verdict = checker.report(t0 + MS * 100);
        assert_eq!((verdict.lost, verdict.duplicated), (1, 1));
        assert_eq!((verdict.owed, verdict.delivered), (10, 8));
        assert_eq!(verdict.violations.len(), 2, "{:?}", verdict.violations);
    }

    #[test]
    fn nothing_is_owed_before_the_ack_or_after_the_end_but_a_repeat_always_counts() {
        let t0 = Instant::now();
        let later = IN_FLIGHT_MARGIN;
        // The last trigger is sent after the listener listened again.
        let last = 6 + (later.as_millis() / 10) as u64;
        let checker = with_triggers(t0, last);
        // Acked after trigger 1 was sent, ended (drain) before trigger 5 was answered.
        let stream = checker.stream_acked(0, 1, t0 + MS * 15);
        for n in 2..=4 {
            checker.delivered(stream, n);
        }
        checker.stream_ended(stream, StreamEnd::Graceful, t0 + MS * 51 + later);
        let next = checker.stream_acked(0, 2, t0 + MS * 55 + later);
        // Trigger 1 arrived although not owed: allowed once, never twice.
        checker.delivered(next, 1);
        checker.delivered(next, last);
        let verdict = checker.report(t0 + MS * 62 + later);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!(
            (verdict.owed, verdict.delivered, verdict.relistens),
            (4, 4, 1)
        );
        assert_eq!(verdict.unowed_arrivals, 1);
        checker.delivered(next, 1);
        assert_eq!(checker.report(t0 + MS * 62 + later).duplicated, 1);
    }

    #[test]
    fn an_update_answered_just_before_a_graceful_end_is_not_owed() {
        let t0 = Instant::now();
        let checker = with_triggers(t0, 3);
        let stream = checker.stream_acked(0, 1, t0);
        checker.delivered(stream, 1);
        checker.delivered(stream, 2);
        // Trigger 3 answered at 32 ms; the end is read at 40 ms: the replica may have closed
        // the stream before the update reached it.
        checker.stream_ended(stream, StreamEnd::Graceful, t0 + MS * 40);
        let verdict = checker.report(t0 + MS * 100);
        assert_eq!((verdict.owed, verdict.lost), (0, 0), "{verdict:?}");
        // Read later than the margin after the answer, it was owed.
        let checker = with_triggers(t0, 3);
        let stream = checker.stream_acked(0, 1, t0);
        checker.stream_ended(stream, StreamEnd::Graceful, t0 + MS * 33 + IN_FLIGHT_MARGIN);
        assert_eq!(checker.report(t0 + MS * 200).lost, 3);
    }

    #[test]
    fn a_break_seen_soon_after_a_kill_ended_at_the_kill() {
        let t0 = Instant::now();
        let checker = with_triggers(t0, 4);
        let stream = checker.stream_acked(0, 1, t0);
        checker.delivered(stream, 1);
        checker.delivered(stream, 2);
        // Killed at 25 ms (plus the margin); the break is seen 10 ms later, after trigger 3 was
        // answered (32 ms).
        checker.replica_killed(t0 + MS * 25 + IN_FLIGHT_MARGIN);
        checker.stream_ended(stream, StreamEnd::Broken, t0 + MS * 35 + IN_FLIGHT_MARGIN);
        let verdict = checker.report(t0 + MS * 100 + IN_FLIGHT_MARGIN);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!(verdict.owed, 2);
        // The same break with no kill before it owes trigger 3.
        let lone = with_triggers(t0, 4);
        let stream = lone.stream_acked(0, 1, t0);
        lone.delivered(stream, 1);
        lone.delivered(stream, 2);
        lone.stream_ended(stream, StreamEnd::Broken, t0 + MS * 35);
        assert_eq!(lone.report(t0 + MS * 100).lost, 1);
    }

    #[test]
    fn a_trigger_without_a_result_is_owed_to_nobody() {
        let t0 = Instant::now();
        let checker = ListenChecker::new();
        checker.trigger_sent(1, t0 + MS);
        let stream = checker.stream_acked(0, 1, t0);
        assert!(checker.open_streams_caught_up(t0 + MS * 10));
        let verdict = checker.report(t0 + MS * 10);
        assert_eq!((verdict.triggers, verdict.owed, verdict.lost), (0, 0, 0));
        checker.trigger_answered(1, t0 + MS * 2);
        assert!(!checker.open_streams_caught_up(t0 + MS * 10));
        checker.delivered(stream, 1);
        assert!(checker.open_streams_caught_up(t0 + MS * 10));
    }
}
