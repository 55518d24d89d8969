//! The measured phase: workers that repeat an [`Operation`] as a [`Plan`] allows, each with
//! its own [`Recorder`].
//!
//! Closed loop (no `--rate`): a worker starts its next operation when the previous one ends;
//! latency runs from the start. Open loop (`--rate R`): operation `i` is due at
//! `start + i/R`; a free worker takes the next one, waits until it is due and records latency
//! from that time, so a server that stalls is charged for the whole queue it built up
//! (no coordinated omission).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::progress::Progress;
use crate::stats::{EventCounts, Recorder};

/// One kind of operation, run again and again by one worker.
pub(crate) trait Operation: Send + 'static {
    /// Runs one operation that was due at `due`, adding what it saw to `events`. Returns its
    /// latency when that is not simply `due` until now (a notification that arrived before
    /// the operation finished, a stream that took a moment more to end).
    fn run(
        &mut self,
        due: Instant,
        events: &mut EventCounts,
    ) -> impl Future<Output = Result<Option<Duration>, Error>> + Send;
}

/// When operations run, and which of them are measured.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The load starts (the warmup, if any).
    start: Instant,
    /// The measured phase starts.
    pub(crate) measure_start: Instant,
    /// No measured operation starts at or after this.
    pub(crate) deadline: Option<Instant>,
    /// At most this many measured operations.
    pub(crate) max_operations: Option<u64>,
    /// Operations per second, open loop.
    rate: Option<f64>,
    /// Measured operations handed out.
    claimed: AtomicU64,
    /// Open loop: operations handed out since `start`.
    tickets: AtomicU64,
    /// Set on Ctrl-C: hand out nothing more.
    stopped: Arc<AtomicBool>,
}

/// One operation a worker may run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// Open loop: when it is due.
    pub(crate) due: Option<Instant>,
    pub(crate) measured: bool,
}

/// Counts of the measured operations so far, for the progress bar.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) ok: AtomicU64,
    pub(crate) errors: AtomicU64,
}

// === impl Plan ===

impl Plan {
    /// A plan that starts now: `warmup`, then a measured phase of `measure_for` (`None`:
    /// until `max_operations`); it hands out nothing more once `stopped` is set.
    pub(crate) fn new(
        warmup: Duration,
        measure_for: Option<Duration>,
        max_operations: Option<u64>,
        rate: Option<f64>,
        stopped: Arc<AtomicBool>,
    ) -> Self {
        let start = Instant::now();
        let measure_start = start + warmup;
        Self {
            start,
            measure_start,
            deadline: measure_for.map(|d| measure_start + d),
            max_operations,
            rate,
            claimed: AtomicU64::new(0),
            tickets: AtomicU64::new(0),
            stopped,
        }
    }

    /// Measured operations handed out so far.
    pub(crate) fn claimed(&self) -> u64 {
        self.claimed.load(Ordering::Relaxed)
    }

    /// The next operation to run, or `None` when the plan is done (or stopped).
    pub(crate) fn next_slot(&self) -> Option<Slot> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let due = match self.rate {
            None => None,
            Some(rate) => {
                let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
                Some(self.start + Duration::from_secs_f64(ticket as f64 / rate))
            }
        };
        let at = due.unwrap_or_else(Instant::now);
        if at < self.measure_start {
            return Some(Slot {
                due,
                measured: false,
            });
        }
        if self.deadline.is_some_and(|deadline| at >= deadline) {
            return None;
        }
        if let Some(max) = self.max_operations
            && self.claimed.fetch_add(1, Ordering::Relaxed) >= max
        {
            return None;
        }
        Some(Slot {
            due,
            measured: true,
        })
    }
}

/// Runs one worker per operation until the plan is done; returns the merged measurements and
/// the length of the measured phase (until the last operation ended).
pub(crate) async fn drive<O: Operation>(
    operations: Vec<O>,
    plan: Arc<Plan>,
    timeout: Duration,
    progress: &Progress,
) -> (Recorder, Duration) {
    let live = Arc::new(Live::default());
    let ticker = progress.track(plan.clone(), live.clone());
    let workers: Vec<_> = operations
        .into_iter()
        .map(|operation| tokio::spawn(work(operation, plan.clone(), live.clone(), timeout)))
        .collect();
    let mut total = Recorder::new(plan.measure_start);
    for worker in workers {
        match worker.await {
            Ok(recorder) => total.merge(recorder),
            Err(error) => eprintln!("shoal-load: a worker failed: {error}"),
        }
    }
    ticker.abort();
    let measured = Instant::now().saturating_duration_since(plan.measure_start);
    (total, measured)
}

async fn work<O: Operation>(
    mut operation: O,
    plan: Arc<Plan>,
    live: Arc<Live>,
    timeout: Duration,
) -> Recorder {
    let mut recorder = Recorder::new(plan.measure_start);
    while let Some(slot) = plan.next_slot() {
        if let Some(due) = slot.due {
            tokio::time::sleep_until(due).await;
        }
        let due = slot.due.unwrap_or_else(Instant::now);
        let mut events = EventCounts::default();
        let result = tokio::time::timeout(timeout, operation.run(due, &mut events))
            .await
            .unwrap_or(Err(Error::Timeout(timeout)));
        let done = Instant::now();
        if !slot.measured {
            continue;
        }
        recorder.add_events(events);
        match result {
            Ok(latency) => {
                let latency = latency.unwrap_or_else(|| done.saturating_duration_since(due));
                recorder.record_ok(latency, done);
                live.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                recorder.record_error(&error, done);
                live.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    recorder
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sleeps a little, fails every third time.
    struct Flaky(u64);

    impl Operation for Flaky {
        async fn run(
            &mut self,
            _due: Instant,
            events: &mut EventCounts,
        ) -> Result<Option<Duration>, Error> {
            self.0 += 1;
            events.received += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
            if self.0.is_multiple_of(3) {
                Err(Error::StreamClosed)
            } else {
                Ok(None)
            }
        }
    }

    #[tokio::test]
    async fn stops_after_the_requested_number_of_operations() {
        let plan = Arc::new(Plan::new(
            Duration::ZERO,
            None,
            Some(30),
            None,
            Arc::default(),
        ));
        let operations = (0..4).map(|_| Flaky(0)).collect();
        let (recorder, _) = drive(
            operations,
            plan,
            Duration::from_secs(5),
            &Progress::hidden(),
        )
        .await;
        assert_eq!(recorder.ok + recorder.failed_operations(), 30);
        assert_eq!(recorder.events.received, 30);
        assert!(recorder.failed_operations() > 0);
    }

    #[test]
    fn open_loop_hands_out_operations_at_the_rate_and_skips_the_warmup() {
        // Due times are computed, not read off the clock: 1 s of warmup and 2 s measured at
        // 10/s are exactly 10 and 20 slots.
        let plan = Plan::new(
            Duration::from_secs(1),
            Some(Duration::from_secs(2)),
            None,
            Some(10.0),
            Arc::default(),
        );
        let mut measured = 0;
        let mut warmup = 0;
        while let Some(slot) = plan.next_slot() {
            if slot.measured {
                measured += 1;
            } else {
                warmup += 1;
            }
        }
        assert_eq!((warmup, measured), (10, 20));
    }

    #[tokio::test]
    async fn a_slow_operation_is_a_timeout() {
        struct Stuck;
        impl Operation for Stuck {
            async fn run(
                &mut self,
                _: Instant,
                _: &mut EventCounts,
            ) -> Result<Option<Duration>, Error> {
                std::future::pending().await
            }
        }
        let plan = Arc::new(Plan::new(
            Duration::ZERO,
            None,
            Some(2),
            None,
            Arc::default(),
        ));
        let (recorder, _) = drive(
            vec![Stuck],
            plan,
            Duration::from_millis(10),
            &Progress::hidden(),
        )
        .await;
        assert_eq!(recorder.errors[&crate::error::ErrorKind::Timeout], 2);
    }
}
