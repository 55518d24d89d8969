//! Running `shoal-load` and reading its `--json` summary (the contract is in
//! `loadtest/src/cli.rs`: flags are added, never renamed).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd;

/// How many lines of `shoal-load`'s stderr a failure shows.
const STDERR_TAIL_LINES: usize = 30;

/// One `shoal-load` invocation, built up before it runs.
#[derive(Debug)]
pub(crate) struct Load {
    command: Command,
    /// What the output files are called: `<log_dir>/<name>.json` and `.stderr`.
    name: String,
    log_dir: PathBuf,
}

/// A `shoal-load` running in the background.
#[derive(Debug)]
pub(crate) struct Running {
    child: Child,
    name: String,
    stdout: PathBuf,
    stderr: PathBuf,
    started: Instant,
}

/// What `--json` prints, the parts the harness uses, and the whole object for the results.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) operations: u64,
    pub(crate) ok: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) throughput: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) streams_open: u64,
    pub(crate) streams_failed: u64,
    /// Gaps, duplicates and reorderings seen on event streams.
    pub(crate) event_faults: u64,
    pub(crate) raw: Value,
}

// === impl Load ===

impl Load {
    /// `shoal-load SCENARIO --json --quiet`, its outputs named `name` under `log_dir`.
    pub(crate) fn new(binary: &Path, scenario: &str, name: &str, log_dir: &Path) -> Self {
        let mut command = Command::new(binary);
        command.arg(scenario).args(["--json", "--quiet"]);
        Self {
            command,
            name: name.to_owned(),
            log_dir: log_dir.to_path_buf(),
        }
    }

    /// Runs it under `sh -c 'ulimit -n N && exec …'` (for thousands of streams).
    pub(crate) fn with_open_files(
        binary: &Path,
        limit: u64,
        scenario: &str,
        name: &str,
        log_dir: &Path,
    ) -> Self {
        let mut command = Command::new("sh");
        command
            .args(["-c", r#"ulimit -n "$0" && exec "$@""#])
            .arg(limit.to_string())
            .arg(binary)
            .arg(scenario)
            .args(["--json", "--quiet"]);
        Self {
            command,
            name: name.to_owned(),
            log_dir: log_dir.to_path_buf(),
        }
    }

    /// `--url URL` for each of `urls`.
    pub(crate) fn urls<S: AsRef<str>>(mut self, urls: &[S]) -> Self {
        for url in urls {
            self.command.args(["--url", url.as_ref()]);
        }
        self
    }

    /// `--NAME VALUE`.
    pub(crate) fn opt(mut self, name: &str, value: impl Into<OsString>) -> Self {
        self.command.arg(format!("--{name}")).arg(value.into());
        self
    }

    /// `--NAME` (a switch).
    pub(crate) fn flag(mut self, name: &str) -> Self {
        self.command.arg(format!("--{name}"));
        self
    }

    /// Starts it in the background.
    pub(crate) fn spawn(mut self) -> Result<Running> {
        fs::create_dir_all(&self.log_dir)
            .with_context(|| format!("cannot create {}", self.log_dir.display()))?;
        let stdout = self.log_dir.join(format!("{}.json", self.name));
        let stderr = self.log_dir.join(format!("{}.stderr", self.name));
        let out =
            File::create(&stdout).with_context(|| format!("cannot create {}", stdout.display()))?;
        let err =
            File::create(&stderr).with_context(|| format!("cannot create {}", stderr.display()))?;
        self.command.stdin(Stdio::null()).stdout(out).stderr(err);
        println!("$ {}", cmd::display(&self.command));
        let child = self
            .command
            .spawn()
            .with_context(|| format!("cannot start `{}`", cmd::display(&self.command)))?;
        Ok(Running {
            child,
            name: self.name,
            stdout,
            stderr,
            started: Instant::now(),
        })
    }

    /// Runs it to the end and reads its summary.
    pub(crate) fn run(self) -> Result<Summary> {
        self.spawn()?.wait()
    }
}

// === impl Running ===

impl Running {
    /// The exit status, if it has exited.
    pub(crate) fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("cannot poll shoal-load ({})", self.name))
    }

    /// Waits until `ready` holds, failing when `shoal-load` exits first or `timeout` passes.
    pub(crate) fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.try_wait()? {
                bail!(
                    "shoal-load ({}) exited ({status}) before {what}\n{}",
                    self.name,
                    self.outputs()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "shoal-load ({}) did not reach {what} within {}s",
            self.name,
            timeout.as_secs()
        )
    }

    /// Waits for it to exit and reads its summary; a nonzero exit is an error carrying its
    /// summary and stderr.
    pub(crate) fn wait(mut self) -> Result<Summary> {
        let status = self
            .child
            .wait()
            .with_context(|| format!("cannot wait for shoal-load ({})", self.name))?;
        if !status.success() {
            bail!(
                "shoal-load ({}) failed after {:.1}s: {status}\n{}",
                self.name,
                self.started.elapsed().as_secs_f64(),
                self.outputs()
            );
        }
        let text = fs::read_to_string(&self.stdout)
            .with_context(|| format!("cannot read {}", self.stdout.display()))?;
        Summary::parse(&text).with_context(|| {
            format!(
                "shoal-load ({}) printed no usable summary\n{}",
                self.name,
                self.outputs()
            )
        })
    }

    /// Its summary (stdout) and the tail of its stderr, for an error message.
    fn outputs(&self) -> String {
        let stdout = fs::read_to_string(&self.stdout).unwrap_or_default();
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = &lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..];
        format!(
            "--- summary ({}) ---\n{}\n--- stderr ({}) ---\n{}",
            self.stdout.display(),
            stdout.trim(),
            self.stderr.display(),
            tail.join("\n")
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only when a measurement is abandoned: a finished run has been waited for.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// === impl Summary ===

impl Summary {
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let raw: Value = serde_json::from_str(text.trim()).context("not one JSON object")?;
        let number = |pointer: &str| raw.pointer(pointer).and_then(Value::as_f64);
        let count = |pointer: &str| raw.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
        let errors = raw
            .get("errors")
            .and_then(Value::as_object)
            .map(|errors| {
                errors
                    .iter()
                    .map(|(kind, n)| (kind.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            operations: raw
                .get("operations")
                .and_then(Value::as_u64)
                .context("no `operations`")?,
            ok: count("/ok"),
            errors,
            throughput: number("/throughput_per_sec").context("no `throughput_per_sec`")?,
            p50_ms: number("/latency_ms/p50").unwrap_or(f64::NAN),
            p99_ms: number("/latency_ms/p99").unwrap_or(f64::NAN),
            streams_open: count("/streams/open"),
            streams_failed: count("/streams/failed"),
            event_faults: count("/events/gaps")
                + count("/events/duplicates")
                + count("/events/out_of_order"),
            raw,
        })
    }

    /// All failed operations.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `timeout: 3, status_500: 1`, or `none`.
    pub(crate) fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "none".to_owned();
        }
        self.errors
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_contract_summary() {
        let text = r#"{"scenario":"calls","urls":["http://127.0.0.1:1/mcp"],"concurrency":8,
            "sessions":1,"duration_secs":10.0,"operations":1000,"ok":998,
            "errors":{"timeout":2},"throughput_per_sec":99.8,
            "latency_ms":{"mean":1.0,"p50":0.9,"p90":1.5,"p99":3.25,"p999":4.0,"max":9.0},
            "streams":{"open":0,"failed":0},
            "events":{"received":0,"gaps":1,"duplicates":0,"out_of_order":2},
            "timeline":[{"second":0,"ok":100,"errors":0}]}"#;
        let summary = Summary::parse(text).unwrap();
        assert_eq!(summary.operations, 1000);
        assert_eq!(summary.ok, 998);
        assert_eq!(summary.error_count(), 2);
        assert_eq!(summary.errors_text(), "timeout: 2");
        assert_eq!(summary.p99_ms, 3.25);
        assert_eq!(summary.event_faults, 3);
    }

    #[test]
    fn rejects_a_summary_without_operations() {
        assert!(Summary::parse(r#"{"scenario":"calls"}"#).is_err());
        assert!(Summary::parse("not json").is_err());
    }
}
