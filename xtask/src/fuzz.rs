//! `cargo xtask fuzz` and the CI `fuzz-smoke` step: the cargo-fuzz targets of `fuzz/`, each run
//! for a bounded time.
//!
//! - cargo-fuzz is installed at a pinned version under `target/tools/` (`tools::cargo_tool`).
//! - The targets build with nightly-only compiler flags (sanitizer coverage, `-Zsanitizer`);
//!   on the stable toolchain `RUSTC_BOOTSTRAP=1` unlocks them, for these builds only. Each
//!   sanitizer builds into its own directory under `target/fuzz/` so that switching between
//!   them rebuilds nothing.
//! - `cargo xtask fuzz` builds optimized (cargo-fuzz's default: release with debug
//!   assertions). The CI smoke builds unoptimized (`--dev`, into its own `-dev` directory):
//!   its 10 s per target weigh less than the build, which takes less than half the CPU time
//!   that way (219 against 498 CPU-seconds for the six targets); debug assertions and overflow
//!   checks stay on, and libFuzzer still runs each target and stops on a crash.
//! - Each target reads its seeds from `fuzz/corpus/<target>` (never written) and grows a
//!   working corpus in `target/fuzz/corpus/<target>` from run to run. Its libFuzzer output goes
//!   to `target/fuzz/logs/<target>.log`; the summary line says how fast it ran and how far it
//!   got.
//! - A crash, a hang (one input over [`INPUT_TIMEOUT_SECONDS`]) or memory over
//!   [`RSS_LIMIT_MB`] fails the command, naming the saved input (`fuzz/artifacts/<target>/`)
//!   and the command that replays it. Keep such an input as a regression test in the crate
//!   that owns the code (for example `crates/shoal-core/tests/fuzz_regressions.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::Repo;
use crate::{cmd, tools};

/// Every target, in the order they run (`fuzz/fuzz_targets/<name>.rs`).
pub(crate) const TARGETS: [&str; 7] = [
    "jsonrpc_message",
    "event_id",
    "session_id",
    "sse_round_trip",
    "jwt",
    "config",
    "oauth_client_metadata",
];
/// The cargo-fuzz release the targets are built with.
const CARGO_FUZZ: tools::CargoTool = tools::CargoTool {
    name: "cargo-fuzz",
    version: "0.13.2",
};
/// How long each target runs in the CI smoke.
pub(crate) const SMOKE_SECONDS: u64 = 10;
/// libFuzzer's memory limit per process.
const RSS_LIMIT_MB: u32 = 2048;
/// One input running longer than this is a hang, reported like a crash.
const INPUT_TIMEOUT_SECONDS: u32 = 20;

/// How the targets are instrumented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Sanitizer {
    /// AddressSanitizer: catches memory errors in dependencies' unsafe code; slower to build
    /// and to run.
    Address,
    /// Coverage only: panics, hangs and memory blow-ups are still caught.
    None,
}

impl Sanitizer {
    fn name(self) -> &'static str {
        match self {
            Sanitizer::Address => "address",
            Sanitizer::None => "none",
        }
    }
}

/// What one run of targets does.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    /// Run time of each target.
    pub(crate) seconds: u64,
    /// Only this target; every one when `None`.
    pub(crate) target: Option<&'a str>,
    pub(crate) sanitizer: Sanitizer,
}

/// How the targets are compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    /// cargo-fuzz's default: optimized, with debug assertions.
    Optimized,
    /// `--dev`: the fuzz workspace's dev profile, unoptimized; builds in less than half the
    /// time, runs slower.
    Dev,
}

/// The CI smoke: every target for [`SMOKE_SECONDS`], built without a sanitizer (an ASan
/// build of the dependency tree does not fit the step's time on two cores) and without
/// optimizations (the build, not the run, is most of the step).
pub(crate) fn smoke(repo: &Repo) -> Result<()> {
    run_built(
        repo,
        &Plan {
            seconds: SMOKE_SECONDS,
            target: None,
            sanitizer: Sanitizer::None,
        },
        Build::Dev,
    )
}

/// Installs cargo-fuzz if needed, builds the targets optimized, runs each and reports; fails
/// if any target found a failing input.
pub(crate) fn run(repo: &Repo, plan: &Plan<'_>) -> Result<()> {
    run_built(repo, plan, Build::Optimized)
}

fn run_built(repo: &Repo, plan: &Plan<'_>, build: Build) -> Result<()> {
    let targets: Vec<&str> = match plan.target {
        None => TARGETS.to_vec(),
        Some(name) if TARGETS.contains(&name) => vec![name],
        Some(name) => bail!(
            "no fuzz target {name:?}; choose from: {}",
            TARGETS.join(", ")
        ),
    };
    let fuzz = Fuzz::new(repo, plan.sanitizer, build)?;
    // cargo-fuzz has no `--locked`: a locked fetch first fails if fuzz/Cargo.lock is stale,
    // so the build below resolves nothing anew.
    cmd::run(
        repo.cargo(["fetch", "--locked", "--manifest-path"])
            .arg(fuzz.project.join("Cargo.toml")),
    )?;
    cmd::run(&mut fuzz.command(&["build"], plan.target))?;
    let mut findings = Vec::new();
    for target in targets {
        if let Some(finding) = fuzz.run_target(target, plan.seconds)? {
            findings.push(finding);
        }
    }
    if findings.is_empty() {
        return Ok(());
    }
    for finding in &findings {
        eprintln!("{finding}");
    }
    bail!(
        "{} fuzz target(s) found a failing input: keep each as a regression test",
        findings.len()
    )
}

/// The cargo-fuzz binary and where its builds, corpora and logs go.
struct Fuzz {
    cargo_fuzz: PathBuf,
    /// `fuzz/`, where cargo-fuzz runs.
    project: PathBuf,
    sanitizer: Sanitizer,
    build: Build,
    target_dir: PathBuf,
    corpora: PathBuf,
    logs: PathBuf,
}

// === impl Fuzz ===

impl Fuzz {
    fn new(repo: &Repo, sanitizer: Sanitizer, build: Build) -> Result<Self> {
        let work = repo.target().join("fuzz");
        let suffix = match build {
            Build::Optimized => "",
            Build::Dev => "-dev",
        };
        let fuzz = Self {
            cargo_fuzz: tools::cargo_tool(repo, CARGO_FUZZ)?,
            project: repo.root().join("fuzz"),
            sanitizer,
            build,
            target_dir: work.join(format!("build-{}{suffix}", sanitizer.name())),
            corpora: work.join("corpus"),
            logs: work.join("logs"),
        };
        fs::create_dir_all(&fuzz.logs)
            .with_context(|| format!("cannot create {}", fuzz.logs.display()))?;
        Ok(fuzz)
    }

    /// `cargo-fuzz <subcommand> [--dev] -s <sanitizer> --target-dir <dir> [target]` in
    /// `fuzz/`.
    fn command(&self, subcommand: &[&str], target: Option<&str>) -> Command {
        let mut command = Command::new(&self.cargo_fuzz);
        command
            .args(subcommand)
            .args(self.build_args())
            .args(["--sanitizer", self.sanitizer.name(), "--target-dir"])
            .arg(&self.target_dir)
            .args(target)
            .current_dir(&self.project)
            // Nightly-only flags on the stable toolchain, for this build only.
            .env("RUSTC_BOOTSTRAP", "1");
        command
    }

    /// The build flags, the same for `build` and `run` (else `run` rebuilds).
    fn build_args(&self) -> &'static [&'static str] {
        match self.build {
            Build::Optimized => &[],
            Build::Dev => &["--dev"],
        }
    }

    /// Runs `target` for `seconds`; returns what it found, if anything.
    fn run_target(&self, target: &str, seconds: u64) -> Result<Option<Finding>> {
        let corpus = self.corpora.join(target);
        let seeds = self.project.join("corpus").join(target);
        fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        let log_path = self.logs.join(format!("{target}.log"));
        let log = fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut command = self.command(&["run"], Some(target));
        // New inputs go to the first directory; the seeds are only read.
        command
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
            .arg("-print_final_stats=1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the log file")?)
            .stderr(log);
        println!("$ {}", cmd::display(&command));
        let status = command
            .status()
            .with_context(|| format!("could not start `{}`", cmd::display(&command)))?;
        let output = fs::read_to_string(&log_path)
            .with_context(|| format!("cannot read {}", log_path.display()))?;
        let stats = Stats::read(&output);
        let (inputs, bytes) = corpus_size(&corpus)?;
        println!(
            "{target}: {} runs in {seconds} s ({} exec/s), coverage {} edges / {} features, \
             corpus {inputs} inputs ({} KiB), {} new this run; log {}",
            stats.runs,
            stats.exec_per_sec,
            stats.coverage,
            stats.features,
            bytes.div_ceil(1024),
            stats.new_inputs,
            log_path.display(),
        );
        if status.success() {
            return Ok(None);
        }
        // What libFuzzer said last, where the reason and the stack trace are.
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("    {line}");
        }
        let artifact = output
            .lines()
            .find_map(|line| line.split_once("Test unit written to "))
            .map(|(_, path)| self.project.join(path.trim()));
        let replay = artifact.as_ref().map(|artifact| {
            // Shown as a line to paste into a shell: the environment goes on the line too.
            let mut replay = Command::new("env");
            replay
                .arg("RUSTC_BOOTSTRAP=1")
                .arg(&self.cargo_fuzz)
                .arg("run")
                .args(self.build_args())
                .args(["--sanitizer", self.sanitizer.name(), "--target-dir"])
                .arg(&self.target_dir)
                .arg(target)
                .arg(artifact)
                .current_dir(&self.project);
            cmd::display(&replay)
        });
        Ok(Some(Finding {
            target: target.to_owned(),
            status: status.to_string(),
            artifact,
            replay,
            log: log_path,
        }))
    }
}

/// A target that stopped on a failing input.
#[derive(Debug)]
struct Finding {
    target: String,
    status: String,
    artifact: Option<PathBuf>,
    replay: Option<String>,
    log: PathBuf,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "fuzz target {} failed ({}).", self.target, self.status)?;
        match (&self.artifact, &self.replay) {
            (Some(artifact), Some(replay)) => {
                writeln!(f, "  input:  {}", artifact.display())?;
                writeln!(f, "  replay: {replay}")?;
            }
            _ => writeln!(f, "  libFuzzer saved no input: see the log")?,
        }
        write!(f, "  log:    {}", self.log.display())
    }
}

/// libFuzzer's figures for one run, from its log (`-print_final_stats=1` and the last status
/// line, `#N DONE cov: C ft: F corp: …`). Missing figures read as 0.
#[derive(Debug, Default)]
struct Stats {
    runs: u64,
    exec_per_sec: u64,
    new_inputs: u64,
    coverage: u64,
    features: u64,
}

impl Stats {
    fn read(log: &str) -> Self {
        let stat = |name: &str| {
            log.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim_start_matches(':').trim().parse().ok())
                .unwrap_or(0)
        };
        let last_status = log.lines().rev().find(|line| line.contains(" cov: "));
        let field = |name: &str| {
            last_status
                .and_then(|line| line.split_whitespace().skip_while(|w| *w != name).nth(1))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        Stats {
            runs: stat("stat::number_of_executed_units"),
            exec_per_sec: stat("stat::average_exec_per_sec"),
            new_inputs: stat("stat::new_units_added"),
            coverage: field("cov:"),
            features: field("ft:"),
        }
    }
}

/// Files and bytes in a corpus directory.
fn corpus_size(dir: &Path) -> Result<(u64, u64)> {
    let mut inputs = 0;
    let mut bytes = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            inputs += 1;
            bytes += meta.len();
        }
    }
    Ok((inputs, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_figures() {
        let log = "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #4096\tpulse  cov: 120 ft: 300 corp: 20/400b lim: 4 exec/s: 2048 rss: 31Mb\n\
                   #81920\tDONE   cov: 130 ft: 320 corp: 22/430b lim: 4 exec/s: 8192 rss: 32Mb\n\
                   Done 81920 runs in 10 second(s)\n\
                   stat::number_of_executed_units: 81920\n\
                   stat::average_exec_per_sec:     8192\n\
                   stat::new_units_added:          21\n";
        let stats = Stats::read(log);
        assert_eq!(
            (
                stats.runs,
                stats.exec_per_sec,
                stats.new_inputs,
                stats.coverage,
                stats.features
            ),
            (81920, 8192, 21, 130, 320)
        );
        assert_eq!(Stats::read("").runs, 0);
    }
}
