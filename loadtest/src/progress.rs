//! The progress bar on stderr: what is being set up, then the measured phase with live counts.
//! Hidden with `--quiet`, and by indicatif itself when stderr is not a terminal.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::run::{Live, Plan};

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// A progress bar, maybe hidden.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar on stderr, or none when `quiet`.
    pub(crate) fn new(quiet: bool) -> Self {
        if quiet {
            return Self::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(spinner_style());
        bar.enable_steady_tick(TICK);
        Self { bar }
    }

    pub(crate) fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    /// Says what is being done (setup, holding streams...).
    pub(crate) fn say(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Shows the measured phase of `plan` until the returned task is aborted.
    pub(crate) fn track(&self, plan: Arc<Plan>, live: Arc<Live>) -> JoinHandle<()> {
        let bar = self.bar.clone();
        let (length, by_count) = match (plan.deadline, plan.max_operations) {
            (Some(deadline), _) => (
                deadline
                    .saturating_duration_since(plan.measure_start)
                    .as_millis() as u64,
                false,
            ),
            (None, Some(max)) => (max, true),
            (None, None) => (0, false),
        };
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0);
            let mut ticks = tokio::time::interval(TICK);
            let mut measuring = false;
            loop {
                ticks.tick().await;
                let now = Instant::now();
                if now < plan.measure_start {
                    let left = plan.measure_start - now;
                    bar.set_message(format!("warmup, {:.1}s left", left.as_secs_f64()));
                    continue;
                }
                if !measuring {
                    measuring = true;
                    bar.set_length(length);
                    bar.set_style(bar_style());
                }
                let position = if by_count {
                    plan.claimed()
                } else {
                    now.saturating_duration_since(plan.measure_start)
                        .as_millis() as u64
                };
                bar.set_position(position.min(length));
                let ok = live.ok.load(Ordering::Relaxed);
                let errors = live.errors.load(Ordering::Relaxed);
                let done = ok + errors;
                let elapsed = now.saturating_duration_since(last.0).as_secs_f64();
                let rate = if elapsed > 0.0 {
                    (done - last.1) as f64 / elapsed
                } else {
                    0.0
                };
                last = (now, done);
                bar.set_message(format!("ok {ok}  errors {errors}  {rate:.0}/s"));
            }
        })
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
