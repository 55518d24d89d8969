//! Named steps: a banner when each starts, its time when it ends, and a closing summary.

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A step failed; its error has already been printed.
#[derive(Debug)]
pub(crate) struct StepFailed;

/// The steps of one command, in the order they are planned to run.
#[derive(Debug)]
pub(crate) struct Steps {
    planned: Vec<&'static str>,
    done: Vec<Done>,
    started: Instant,
}

#[derive(Debug)]
struct Done {
    name: &'static str,
    elapsed: Duration,
    ok: bool,
}

// === impl Steps ===

impl Steps {
    /// Runs `cargo xtask COMMAND` whose `steps` run the `planned` steps in order, then prints
    /// the summary.
    pub(crate) fn execute(
        command: &str,
        planned: &[&'static str],
        steps: impl FnOnce(&mut Self) -> Result<(), StepFailed>,
    ) -> ExitCode {
        let mut this = Self {
            planned: planned.to_vec(),
            done: Vec::new(),
            started: Instant::now(),
        };
        let outcome = steps(&mut this);
        this.summary(command);
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(StepFailed) => ExitCode::FAILURE,
        }
    }

    /// Runs step `name`, printing a banner before and the outcome after.
    ///
    /// # Errors
    ///
    /// [`StepFailed`] when `f` fails; its error chain is printed here.
    pub(crate) fn run<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> anyhow::Result<T>,
    ) -> Result<T, StepFailed> {
        let position = self
            .planned
            .iter()
            .position(|planned| *planned == name)
            .map_or(0, |i| i + 1);
        println!();
        println!("==> [{position}/{}] {name}", self.planned.len());
        let started = Instant::now();
        let outcome = f();
        let elapsed = started.elapsed();
        let ok = outcome.is_ok();
        self.done.push(Done { name, elapsed, ok });
        match outcome {
            Ok(value) => {
                println!("<== {name}: ok in {}", seconds(elapsed));
                Ok(value)
            }
            Err(error) => {
                eprintln!("<== {name}: FAILED after {}: {error:#}", seconds(elapsed));
                Err(StepFailed)
            }
        }
    }

    /// Prints every planned step with its outcome and time, then one closing line.
    fn summary(&self, command: &str) {
        println!();
        println!("==> summary of `cargo xtask {command}`");
        for name in &self.planned {
            match self.done.iter().find(|done| done.name == *name) {
                Some(done) => println!(
                    "    {name:<26} {:<8} {:>8}",
                    if done.ok { "ok" } else { "FAILED" },
                    seconds(done.elapsed)
                ),
                None => println!("    {name:<26} skipped"),
            }
        }
        println!(
            "    {:<26} {:<8} {:>8}",
            "total",
            "",
            seconds(self.started.elapsed())
        );
        let passed = self.done.iter().filter(|done| done.ok).count();
        match self.done.iter().find(|done| !done.ok) {
            None => println!("{command}: all {passed} steps ok"),
            Some(failed) => println!(
                "{command}: FAILED at step {} ({passed} of {} steps ok)",
                failed.name,
                self.planned.len()
            ),
        }
    }
}

/// `12.3s`.
fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}
