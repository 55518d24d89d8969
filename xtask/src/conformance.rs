//! The MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tests/conformance/package.json`) against `shoal serve --tools conformance`.
//!
//! It runs at one [`Revision`] at a time: `--suite all --spec-version 2025-11-25` selects every
//! server scenario of the session era (33 in 0.2.0-alpha.12, unscored ones such as
//! `server-sse-polling` included), `--spec-version 2026-07-28` those of the stateless era (40).
//! The suite's exit code decides; each revision's baseline under `tests/conformance/`, when
//! present, lists its known failures (the suite fails a run whose baseline lists a scenario
//! that passes). Afterwards the `checks.json` files under `target/conformance-results*` are
//! tallied per scenario.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::Repo;
use crate::cmd;
use crate::server::{self, Server, ToolSet};
use crate::tools::Tools;

/// The suite's package directory, relative to the workspace root.
pub(crate) const SUITE_DIR: &str = "tests/conformance";
/// The suite's entry point, relative to [`SUITE_DIR`].
pub(crate) const SUITE_ENTRY: &str = "node_modules/@modelcontextprotocol/conformance/dist/index.js";
/// Where results go, relative to the target directory (plus the revision's suffix).
const RESULTS_DIR: &str = "conformance-results";

/// A protocol revision the suite checks Shoal at, one per era.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Revision {
    /// The session era's latest.
    #[value(name = "2025-11-25")]
    Session,
    /// The stateless era.
    #[value(name = "2026-07-28")]
    Modern,
}

impl Revision {
    /// Both eras, the session era first.
    pub(crate) const BOTH: [Revision; 2] = [Revision::Session, Revision::Modern];

    /// The suite's `--spec-version`.
    pub(crate) fn spec_version(self) -> &'static str {
        match self {
            Revision::Session => "2025-11-25",
            Revision::Modern => "2026-07-28",
        }
    }

    /// The known-failures baseline of this revision, relative to the workspace root.
    pub(crate) fn expected_failures(self) -> &'static str {
        match self {
            Revision::Session => "tests/conformance/expected-failures.yaml",
            Revision::Modern => "tests/conformance/expected-failures-2026-07-28.yaml",
        }
    }

    /// `results_dir` for this revision's results.
    pub(crate) fn results_dir(self, results_dir: &str) -> String {
        match self {
            Revision::Session => results_dir.to_owned(),
            Revision::Modern => format!("{results_dir}-2026-07-28"),
        }
    }
}

/// Builds shoal and runs the suite at `revision` (or only `scenario`) against it.
pub(crate) fn run(
    repo: &Repo,
    tools: &Tools,
    scenario: Option<&str>,
    revision: Revision,
) -> Result<()> {
    let binary = server::build(repo, tools)?;
    install(repo, tools)?;
    let server = Server::start(repo, &binary, ToolSet::Conformance)?;
    let outcome = run_suite(
        repo,
        tools,
        &server.mcp_url(),
        scenario,
        revision,
        &repo.root().join(revision.expected_failures()),
        &revision.results_dir(RESULTS_DIR),
    );
    if outcome.is_err() {
        server.print_log_tail();
    }
    outcome
}

/// Installs the suite's pinned packages; returns the suite's directory.
pub(crate) fn install(repo: &Repo, tools: &Tools) -> Result<PathBuf> {
    let suite_dir = repo.root().join(SUITE_DIR);
    cmd::run(&mut tools.npm(&suite_dir, &["ci", "--no-audit", "--no-fund"]))?;
    Ok(suite_dir)
}

/// Runs the installed suite at `revision` (or only `scenario`) against the MCP endpoint at
/// `url`, with the known-failures baseline `expected_failures` when that file exists, writing
/// results to `results_dir` (relative to the target directory, cleared first); then tallies
/// the results.
pub(crate) fn run_suite(
    repo: &Repo,
    tools: &Tools,
    url: &str,
    scenario: Option<&str>,
    revision: Revision,
    expected_failures: &Path,
    results_dir: &str,
) -> Result<()> {
    let suite_dir = repo.root().join(SUITE_DIR);
    let results = repo.target().join(results_dir);
    if results.exists() {
        fs::remove_dir_all(&results)
            .with_context(|| format!("cannot clear {}", results.display()))?;
    }

    let mut suite = tools.command(tools.node());
    suite
        .current_dir(&suite_dir)
        .arg(SUITE_ENTRY)
        .arg("server")
        .arg("--url")
        .arg(url);
    match scenario {
        Some(name) => suite.args(["--scenario", name]),
        None => suite.args(["--suite", "all"]),
    };
    suite
        .args(["--spec-version", revision.spec_version()])
        .arg("--output-dir")
        .arg(&results);
    if expected_failures.is_file() {
        suite.arg("--expected-failures").arg(expected_failures);
    }
    let status = cmd::status(&mut suite)?;

    let tally = tally(&results);
    match &tally {
        Ok(tally) => tally.print(&results),
        Err(error) => eprintln!("cannot read the results: {error:#}"),
    }
    if !status.success() {
        bail!(
            "the conformance suite failed at {} ({status})",
            revision.spec_version()
        );
    }
    if tally?.scenarios.is_empty() {
        bail!("the conformance suite ran no scenario");
    }
    Ok(())
}

/// Check outcomes per scenario.
#[derive(Debug, Default)]
struct Tally {
    /// By the run's start time, so scenarios print in the order they ran.
    scenarios: BTreeMap<String, Counts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: usize,
    failed: usize,
    warnings: usize,
    skipped: usize,
    info: usize,
}

// === impl Tally ===

impl Tally {
    fn print(&self, results: &Path) {
        println!();
        println!(
            "conformance checks per scenario (from {}):",
            results.display()
        );
        let mut total = Counts::default();
        for (key, counts) in &self.scenarios {
            let name = key.split_once(' ').map_or(key.as_str(), |(_, name)| name);
            let mark = if counts.failed == 0 { "ok  " } else { "FAIL" };
            println!("  {mark} {name:<36} {}", counts.line());
            total.add(*counts);
        }
        println!(
            "  total over {} scenarios: {}",
            self.scenarios.len(),
            total.line()
        );
    }
}

// === impl Counts ===

impl Counts {
    fn add(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.warnings += other.warnings;
        self.skipped += other.skipped;
        self.info += other.info;
    }

    fn line(&self) -> String {
        format!(
            "passed {:>3}  failed {:>3}  warnings {:>2}  skipped {:>2}  info {:>2}",
            self.passed, self.failed, self.warnings, self.skipped, self.info
        )
    }
}

/// Reads every `server-SCENARIO-TIMESTAMP/checks.json` under `results`.
fn tally(results: &Path) -> Result<Tally> {
    let mut tally = Tally::default();
    if !results.exists() {
        return Ok(tally);
    }
    let entries =
        fs::read_dir(results).with_context(|| format!("cannot list {}", results.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", results.display()))?;
        let checks_path = entry.path().join("checks.json");
        if !checks_path.is_file() {
            continue;
        }
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let (scenario, timestamp) = split_result_dir(&dir_name);
        let text = fs::read_to_string(&checks_path)
            .with_context(|| format!("cannot read {}", checks_path.display()))?;
        let checks: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", checks_path.display()))?;
        let counts = count(&checks)
            .with_context(|| format!("{} is not a list of checks", checks_path.display()))?;
        tally
            .scenarios
            .insert(format!("{timestamp} {scenario}"), counts);
    }
    Ok(tally)
}

/// `server-tools-list-2026-01-02T03-04-05-678Z` → (`tools-list`, `2026-01-02T03-04-05-678Z`).
fn split_result_dir(name: &str) -> (&str, &str) {
    // The timestamp is an ISO 8601 instant with `:` and `.` replaced by `-`.
    const TIMESTAMP_LEN: usize = "2026-01-02T03-04-05-678Z".len();
    let name = name.strip_prefix("server-").unwrap_or(name);
    let Some(split) = name.len().checked_sub(TIMESTAMP_LEN + 1) else {
        return (name, "");
    };
    match (
        name.get(..split),
        name.get(split..split + 1),
        name.get(split + 1..),
    ) {
        (Some(scenario), Some("-"), Some(timestamp)) if timestamp.ends_with('Z') => {
            (scenario, timestamp)
        }
        _ => (name, ""),
    }
}

fn count(checks: &Value) -> Option<Counts> {
    let mut counts = Counts::default();
    for check in checks.as_array()? {
        match check.get("status")?.as_str()? {
            "SUCCESS" => counts.passed += 1,
            "FAILURE" => counts.failed += 1,
            "WARNING" => counts.warnings += 1,
            "SKIPPED" => counts.skipped += 1,
            _ => counts.info += 1,
        }
    }
    Some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_result_dir_names() {
        assert_eq!(
            split_result_dir("server-tools-list-2026-11-21T21-53-06-025Z"),
            ("tools-list", "2026-11-21T21-53-06-025Z")
        );
        assert_eq!(split_result_dir("server-ping"), ("ping", ""));
        assert_eq!(split_result_dir("odd"), ("odd", ""));
    }

    #[test]
    fn counts_statuses() {
        let checks = serde_json::json!([
            {"status": "SUCCESS"}, {"status": "SUCCESS"}, {"status": "FAILURE"},
            {"status": "WARNING"}, {"status": "SKIPPED"}, {"status": "INFO"}
        ]);
        let counts = count(&checks).unwrap();
        assert_eq!(
            (
                counts.passed,
                counts.failed,
                counts.warnings,
                counts.skipped,
                counts.info
            ),
            (2, 1, 1, 1, 1)
        );
        assert!(count(&serde_json::json!({"status": "SUCCESS"})).is_none());
    }
}
