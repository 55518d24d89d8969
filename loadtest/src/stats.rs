//! What a run measured: latencies in an HDR histogram (microseconds, 3 significant digits),
//! errors by kind with the first message of each, event counters, and a per-second timeline.
//!
//! Each worker fills its own [`Recorder`], without locks; they are merged at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};

/// Significant digits of the latency histogram.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Counters of the events a scenario checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct EventCounts {
    /// Notifications read off event streams.
    pub(crate) received: u64,
    /// Progress values that never arrived.
    pub(crate) gaps: u64,
    /// Progress values that arrived twice.
    pub(crate) duplicates: u64,
    /// Progress values that arrived after a greater one.
    pub(crate) out_of_order: u64,
    /// Requests of multi round-trip operations (mrtr): reported apart, as `mrtr.rounds`.
    #[serde(skip)]
    pub(crate) rounds: u64,
}

/// One second of the measured phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Second {
    pub(crate) second: u64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Latency {
    pub(crate) mean: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

/// Measurements of one worker, or of all once merged.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    /// The start of the measured phase: second 0 of the timeline.
    origin: Instant,
    /// Latencies of successful operations, in microseconds.
    pub(crate) histogram: Histogram<u64>,
    pub(crate) ok: u64,
    /// Failed operations by kind.
    pub(crate) errors: BTreeMap<ErrorKind, u64>,
    /// The first message of each kind.
    pub(crate) examples: BTreeMap<ErrorKind, String>,
    /// Failures that were not operations (setting up a stream, a stream that broke):
    /// counted under `errors` too, not in `operations`.
    pub(crate) side_errors: u64,
    pub(crate) events: EventCounts,
    /// (ok, errors) per second since `origin`.
    timeline: Vec<(u64, u64)>,
}

// === impl Recorder ===

impl Recorder {
    pub(crate) fn new(origin: Instant) -> Self {
        Self {
            origin,
            // An auto-resizing histogram (from 1 µs): no latency is ever out of range.
            histogram: Histogram::new(SIGNIFICANT_DIGITS)
                .unwrap_or_else(|_| unreachable!("3 significant digits are valid")),
            ok: 0,
            errors: BTreeMap::new(),
            examples: BTreeMap::new(),
            side_errors: 0,
            events: EventCounts::default(),
            timeline: Vec::new(),
        }
    }

    /// A successful operation that took `latency` and ended at `done`.
    pub(crate) fn record_ok(&mut self, latency: Duration, done: Instant) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // `record` grows the histogram; `saturating_record` would clamp to its current range.
        if self.histogram.record(micros).is_err() {
            self.histogram.saturating_record(micros);
        }
        self.ok += 1;
        self.second(done).0 += 1;
    }

    /// A failed operation that ended at `done`.
    pub(crate) fn record_error(&mut self, error: &Error, done: Instant) {
        self.count(error);
        self.second(done).1 += 1;
    }

    /// A failure outside any operation.
    pub(crate) fn record_side_error(&mut self, error: &Error) {
        self.count(error);
        self.side_errors += 1;
    }

    pub(crate) fn add_events(&mut self, events: EventCounts) {
        self.events.received += events.received;
        self.events.gaps += events.gaps;
        self.events.duplicates += events.duplicates;
        self.events.out_of_order += events.out_of_order;
        self.events.rounds += events.rounds;
    }

    /// Adds another recorder's measurements (same origin).
    pub(crate) fn merge(&mut self, other: Recorder) {
        // Both histograms auto-resize: adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, example) in other.examples {
            self.examples.entry(kind).or_insert(example);
        }
        self.side_errors += other.side_errors;
        self.add_events(other.events);
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), (0, 0));
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(other.timeline) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    /// Failed operations (not counting side errors).
    pub(crate) fn failed_operations(&self) -> u64 {
        self.errors.values().sum::<u64>() - self.side_errors
    }

    pub(crate) fn latency(&self) -> Latency {
        let h = &self.histogram;
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    /// Every second of the timeline, up to the last one with anything in it.
    pub(crate) fn timeline(&self) -> Vec<Second> {
        self.timeline
            .iter()
            .enumerate()
            .map(|(second, &(ok, errors))| Second {
                second: second as u64,
                ok,
                errors,
            })
            .collect()
    }

    fn count(&mut self, error: &Error) {
        let kind = error.kind();
        *self.errors.entry(kind).or_default() += 1;
        self.examples
            .entry(kind)
            .or_insert_with(|| error.to_string());
    }

    fn second(&mut self, at: Instant) -> &mut (u64, u64) {
        let second = at.saturating_duration_since(self.origin).as_secs() as usize;
        if self.timeline.len() <= second {
            self.timeline.resize(second + 1, (0, 0));
        }
        &mut self.timeline[second]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_counts_percentiles_and_timelines() {
        let origin = Instant::now();
        let mut a = Recorder::new(origin);
        let mut b = Recorder::new(origin);
        for ms in 1..=100 {
            a.record_ok(Duration::from_millis(ms), origin);
        }
        b.record_ok(Duration::from_secs(2), origin + Duration::from_millis(2500));
        b.record_error(
            &Error::Timeout(Duration::from_secs(1)),
            origin + Duration::from_secs(1),
        );
        b.record_error(&Error::Timeout(Duration::from_secs(2)), origin);
        b.record_side_error(&Error::StreamClosed);
        b.add_events(EventCounts {
            received: 3,
            gaps: 1,
            ..EventCounts::default()
        });
        a.merge(b);
        assert_eq!(a.ok, 101);
        assert_eq!(a.failed_operations(), 2);
        assert_eq!(a.errors[&ErrorKind::Timeout], 2);
        assert_eq!(a.errors[&ErrorKind::StreamClosed], 1);
        assert_eq!(a.examples[&ErrorKind::Timeout], "no result within 1s");
        assert_eq!((a.events.received, a.events.gaps), (3, 1));
        let seconds: Vec<(u64, u64, u64)> = a
            .timeline()
            .iter()
            .map(|s| (s.second, s.ok, s.errors))
            .collect();
        assert_eq!(seconds, [(0, 100, 1), (1, 0, 1), (2, 1, 0)]);
        let latency = a.latency();
        assert!((latency.p50 - 51.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max - 2000.0).abs() < 2.0, "{latency:?}");
        assert!(latency.p90 <= latency.p99 && latency.p99 <= latency.p999);
    }

    #[test]
    fn no_operations_means_zero_latency() {
        assert_eq!(Recorder::new(Instant::now()).latency(), Latency::default());
    }
}
