//! Shoal's task runner: the one entry point that CI and people run, as `cargo xtask COMMAND`
//! (the alias lives in `.cargo/config.toml`; `.ci/run` calls `cargo xtask ci`).
//!
//! # Commands
//!
//! - `ci`: every check, in order, stopping at the first failure: install the tools, `cargo fmt`,
//!   `cargo clippy`, `cargo doc` of the library crates (no warning), `cargo deny` (licences, bans, sources; advisories when a database is
//!   present), `cargo test`, a fuzz smoke (every `fuzz/` target for 10 s), the MCP
//!   conformance suite at 2025-11-25 and at 2026-07-28 (each with its baseline of known
//!   failures), both against three replicas behind a round-robin proxy (on one Redis, then on
//!   a three-master Redis Cluster),
//!   the same suite against an OAuth-protected `shoal` with a real token, the official
//!   authorization-server suite and both revisions' server suites against `shoal --auth oauth`
//!   (three replicas on Redis behind the proxy, a token from its own flow), the SDK client
//!   checks, the load smoke (every `shoal-load` scenario against one replica on Redis), the
//!   fault-injection suite (`faults`), the observability check (dashboard and alerts against a real Prometheus), the container
//!   image (built with podman, run, stopped and saved).
//! - `conformance [--scenario NAME] [--revision 2025-11-25|2026-07-28] [--cluster
//!   [--redis-cluster] | --auth | --oauth]`: only the conformance suite against a fresh `shoal`, at one
//!   revision (default 2025-11-25; with `--cluster` and `--oauth` both unless one is named) (with `--cluster`: against three replicas on one
//!   Redis behind the test kit's round-robin proxy; adding `--redis-cluster`: on a three-master
//!   Redis Cluster instead; with `--auth`: against `shoal --auth jwt` behind that proxy adding a
//!   token of the `oidc-provider` fixture; with `--oauth`: the authorization-server suite, then
//!   the server suites, against three `shoal --auth oauth` on Redis behind that proxy, which
//!   adds a token of Shoal's own authorization code flow).
//! - `clients [--oauth]`: only the TypeScript and Python SDK client checks against a fresh
//!   `shoal`, then their OAuth logins to `shoal --auth oauth` on three replicas (with `--oauth`:
//!   only the logins).
//! - `load-smoke`: only every `shoal-load` scenario for 10 s against one `shoal` on its own
//!   `redis-server`, failing on any error (the `load-smoke` step of `ci`).
//! - `faults [--scenario NAME]...`: only the fault-injection suite (`shoal-faults`: replicas
//!   killed, restarted, streams resumed late, under load, every event checked), each scenario
//!   against three replicas on Redis behind a round-robin proxy; report in `target/faults/`
//!   (the `faults` step of `ci`).
//! - `bench [--duration 10s] [--concurrency 50] [--sessions 1] [--idle-streams 10000]
//!   [--only NAME]... [--skip-long] [--rounds 3]`: release builds of Shoal and the anchors in `bench/` (axum echo, rmcp,
//!   the TypeScript SDK 1.x and 2.x), each driven by `shoal-load` in turn; prints throughput, Redis cost,
//!   memory per stream, churn and long-run tables and each target with PASS/MISS, and writes
//!   `target/bench/results.{json,md}`.
//! - `fuzz [--seconds 60] [--target NAME] [--sanitizer address|none]`: every cargo-fuzz target
//!   of `fuzz/` (or one) for the given time each; fails on a crash, naming the saved input and
//!   the command that replays it.
//! - `deny`: only cargo-deny's checks of the dependency tree against `deny.toml`, offline
//!   (installs cargo-deny under `target/tools`; the `deny` step of `ci`).
//! - `chart`: only the offline checks of the Helm chart and `deploy/` (the `chart` step of `ci`).
//! - `observability`: only the alert rules' promtool checks and the dashboard and alert queries
//!   against Prometheus scraping three replicas under load (the `observability` step of `ci`).
//! - `image`: build the `FROM scratch` image of `deploy/Containerfile` with `podman`, run it,
//!   check it answers and drains on SIGTERM, and save it as an OCI archive.
//!
//! # Layout
//!
//! - `steps`: banners, per-step timings and the closing summary.
//! - `cmd`: running child processes and reporting what they did.
//! - `tools`: installing `redis-server`, Node ≥ 22 and the Python venv under `target/tools`,
//!   and the environment every child process gets (`SHOAL_NODE`, `SHOAL_PYTHON`, `PATH`).
//! - `server`: building `shoal` and a spawned `shoal serve` that is stopped on drop.
//! - `conformance`, `clients`: the checks that drive `shoal` with third-party clients.
//! - `cluster`: Redis (one server or a Cluster), three `shoal` replicas and the round-robin
//!   proxy, started by the test kit's `ShoalCluster`, for the conformance suite.
//! - `topology`: the test kit's async helpers (Redis, replicas, the round-robin proxy, the
//!   `oidc-provider` fixture) run from the blocking steps on a tokio runtime, a helper's panic
//!   as the step's error, their logs kept under `target/xtask/`.
//! - `process`: child processes logging to a file and stopped on drop, readiness probes, and
//!   the `redis-server` binary, for what xtask starts itself (one `shoal`, Prometheus, the
//!   benchmark's targets).
//! - `auth`: the test kit's `oidc-provider` fixture and one `shoal --auth jwt` behind its proxy
//!   adding the access token, for the conformance suite.
//! - `oauth`: three `shoal --auth oauth` on Redis behind the proxy, users logging in at the
//!   `oidc-provider` fixture through the test kit's headless browser, for the
//!   authorization-server suite and the server suites.
//! - `observability`: Prometheus scraping the test kit's cluster, checking `deploy/grafana` and
//!   `deploy/prometheus`.
//! - `image`: the container image, built and checked with `podman`.
//! - `bench`: the benchmark harness and its anchors, and the load smoke step.
//! - `faults`: building and running `shoal-faults`.
//! - `fuzz`: installing cargo-fuzz, building and running the fuzz targets (and the CI smoke).
//! - `deny`: installing cargo-deny and running its offline checks.

mod auth;
mod bench;
mod browser;
mod chart;
mod clients;
mod cluster;
mod cmd;
mod conformance;
mod deny;
mod faults;
mod fuzz;
mod image;
mod oauth;
mod oauth_clients;
mod observability;
mod process;
mod server;
mod steps;
mod tools;
mod topology;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::cluster::RedisMode;
use crate::conformance::Revision;
use crate::steps::{StepFailed, Steps};
use crate::tools::{Needs, Tools};

/// The crates a library user depends on, whose `cargo doc` the `doc` step checks.
const LIBRARY_CRATES: [&str; 6] = [
    "shoal",
    "shoal-core",
    "shoal-transport",
    "shoal-auth",
    "shoal-redis",
    "shoal-wire",
];

/// Shoal's task runner.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run every CI step in order (tools, fmt, clippy, doc, deny, chart, test, fuzz-smoke,
    /// conformance, conformance-2026, conformance-cluster, conformance-redis-cluster,
    /// conformance-auth, conformance-oauth, clients, browser, load-smoke, faults, observability,
    /// image); stop at the first failure.
    Ci,
    /// Build `shoal`, serve the `conformance` tool set and run the MCP conformance suite on it.
    Conformance {
        /// Run only this scenario (the suite's `list --server` names them).
        #[arg(long, value_name = "NAME")]
        scenario: Option<String>,
        /// Run it against three replicas sharing one Redis behind a round-robin proxy.
        #[arg(long)]
        cluster: bool,
        /// With `--cluster`: the replicas share a three-master Redis Cluster instead.
        #[arg(long, requires = "cluster")]
        redis_cluster: bool,
        /// Run it against `shoal --auth jwt` behind a proxy that adds an access token of the
        /// `oidc-provider` fixture.
        #[arg(long, conflicts_with = "cluster")]
        auth: bool,
        /// Run the authorization-server suite, then the suite, against three `shoal --auth
        /// oauth` on Redis behind a proxy that adds a token of their own authorization code flow.
        #[arg(long, conflicts_with_all = ["cluster", "auth"])]
        oauth: bool,
        /// The protocol revision (era) to check [default: 2025-11-25; with `--cluster` or
        /// `--oauth`: both].
        #[arg(long, value_enum, conflicts_with = "auth")]
        revision: Option<Revision>,
    },
    /// Build `shoal`, serve the `demo` tool set and run the TypeScript and Python SDK clients on it.
    Clients {
        /// Only the SDKs' OAuth logins to `shoal serve --auth oauth` (three replicas).
        #[arg(long)]
        oauth: bool,
    },
    /// Drive Debian's Chromium through the OAuth consent and error pages of `shoal --auth
    /// oauth` (screenshots in target/xtask/browser/).
    Browser,
    /// Run every `shoal-load` scenario for 10s against one `shoal` on its own redis-server;
    /// fail on any error (see `xtask/src/bench/smoke.rs`).
    LoadSmoke,
    /// Run the fault-injection suite (`shoal-faults`): each scenario against three replicas on
    /// one redis-server behind a round-robin proxy, under load, every event checked; report in
    /// target/faults/ (see `xtask/src/faults.rs`).
    Faults {
        /// Run only this scenario (repeatable): baseline, kill9, rolling_restart, late_resume…
        #[arg(long, value_name = "NAME")]
        scenario: Vec<String>,
    },
    /// Benchmark Shoal against the anchors in `bench/` (axum echo, rmcp, TypeScript SDK 1.x and 2.x), one
    /// at a time with the same `shoal-load` settings; print the tables and the targets with
    /// PASS/MISS and write target/bench/results.{json,md} (see `xtask/src/bench.rs`).
    Bench {
        /// How long each throughput run measures (after a 2s warmup), e.g. 10s, 1m.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Concurrent `shoal-load` workers.
        #[arg(long, value_name = "N", default_value_t = 50)]
        concurrency: usize,
        /// MCP sessions the workers of a throughput run share (round robin). One, the default,
        /// is the setting; more shows what concurrent requests of one session share.
        #[arg(long, value_name = "N", default_value_t = 1)]
        sessions: usize,
        /// Idle standalone streams one server holds for the memory-per-stream figures.
        #[arg(long, value_name = "N", default_value_t = 10_000)]
        idle_streams: u32,
        /// Run only this measurement (repeatable): a target (axum, rmcp, ts-sdk, shoal-memory,
        /// shoal-redis, shoal-cluster: its throughput run), a group (calls, idle-streams,
        /// long) or a name such as cross-replica, churn, idle-streams/axum, long-calls.
        #[arg(long, value_name = "NAME")]
        only: Vec<String>,
        /// Skip the long runs (1M calls in one session, 100k sessions created and deleted).
        #[arg(long)]
        skip_long: bool,
        /// Throughput runs per target, the targets taking turns; each keeps its median run.
        #[arg(long, value_name = "N", default_value_t = 3)]
        rounds: usize,
    },
    /// Run the cargo-fuzz targets of `fuzz/` for a bounded time each (installs cargo-fuzz under
    /// target/tools); fail on a crash, printing the saved input and how to replay it (see
    /// `xtask/src/fuzz.rs`).
    Fuzz {
        /// How long each target runs, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        seconds: u64,
        /// Run only this target (a file name of fuzz/fuzz_targets/ without `.rs`).
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// Instrumentation: address (AddressSanitizer) or none (faster to build and run).
        #[arg(long, value_enum, default_value = "address")]
        sanitizer: fuzz::Sanitizer,
    },
    /// Check the dependency tree with cargo-deny against deny.toml, offline: licences, bans,
    /// sources, and advisories when a database exists (see `xtask/src/deny.rs`).
    Deny,
    /// Lint and render the Helm chart offline and check its manifests (see `xtask/src/chart.rs`).
    Chart,
    /// Check the alert rules with promtool and query every dashboard and alert expression on a
    /// Prometheus scraping three replicas under load (see `xtask/src/observability.rs`).
    Observability,
    /// Build the container image of `deploy/Containerfile` with podman, run and stop it, and
    /// save it to `target/image/shoal-image.tar` (see `xtask/src/image.rs`).
    Image,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let repo = match Repo::locate() {
        Ok(repo) => repo,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Task::Ci => Steps::execute(
            "ci",
            &[
                "tools",
                "fmt",
                "clippy",
                "doc",
                "deny",
                "chart",
                "test",
                "fuzz-smoke",
                "conformance",
                "conformance-2026",
                "conformance-cluster",
                "conformance-redis-cluster",
                "conformance-auth",
                "conformance-oauth",
                "clients",
                "browser",
                "load-smoke",
                "faults",
                "observability",
                "image",
            ],
            |steps| ci(&repo, steps),
        ),
        Task::Conformance {
            scenario,
            auth: true,
            ..
        } => Steps::execute(
            "conformance --auth",
            &["tools", "conformance-auth"],
            |steps| only_conformance_auth(&repo, steps, scenario.as_deref()),
        ),
        Task::Conformance {
            scenario,
            oauth: true,
            revision,
            ..
        } => Steps::execute(
            "conformance --oauth",
            &["tools", "conformance-oauth"],
            |steps| {
                let revisions: Vec<Revision> =
                    revision.map_or(Revision::BOTH.to_vec(), |r| vec![r]);
                only_conformance_oauth(&repo, steps, scenario.as_deref(), &revisions)
            },
        ),
        Task::Conformance {
            scenario,
            cluster: false,
            revision,
            ..
        } => Steps::execute("conformance", &["tools", "conformance"], |steps| {
            only_conformance(
                &repo,
                steps,
                scenario.as_deref(),
                revision.unwrap_or(Revision::Session),
            )
        }),
        Task::Conformance {
            scenario,
            cluster: true,
            redis_cluster,
            revision,
            ..
        } => {
            let (name, step, mode) = if redis_cluster {
                (
                    "conformance --cluster --redis-cluster",
                    "conformance-redis-cluster",
                    RedisMode::Cluster,
                )
            } else {
                (
                    "conformance --cluster",
                    "conformance-cluster",
                    RedisMode::Single,
                )
            };
            let revisions: Vec<Revision> = revision.map_or(Revision::BOTH.to_vec(), |r| vec![r]);
            Steps::execute(name, &["tools", step], |steps| {
                only_conformance_cluster(&repo, steps, scenario.as_deref(), mode, &revisions)
            })
        }
        Task::Deny => Steps::execute("deny", &["deny"], |steps| {
            steps.run("deny", || deny::run(&repo))
        }),
        Task::Chart => Steps::execute("chart", &["tools", "chart"], |steps| {
            let tools = steps.run("tools", || Tools::ensure(&repo, Needs::NODE_AND_PYTHON))?;
            steps.run("chart", || chart::run(&repo, &tools))
        }),
        Task::Observability => {
            Steps::execute("observability", &["tools", "observability"], |steps| {
                let tools = steps.run("tools", || Tools::ensure(&repo, Needs::OBSERVABILITY))?;
                steps.run("observability", || observability::run(&repo, &tools))
            })
        }
        Task::Image => Steps::execute("image", &["image"], |steps| {
            steps.run("image", || image::run(&repo))
        }),
        Task::Clients { oauth } => Steps::execute("clients", &["tools", "clients"], |steps| {
            only_clients(&repo, steps, oauth)
        }),
        Task::Browser => Steps::execute("browser", &["tools", "browser"], |steps| {
            let tools = steps.run("tools", || Tools::ensure(&repo, Needs::NODE))?;
            steps.run("browser", || browser::run(&repo, &tools))
        }),
        Task::Fuzz {
            seconds,
            target,
            sanitizer,
        } => Steps::execute("fuzz", &["fuzz"], |steps| {
            let plan = fuzz::Plan {
                seconds,
                target: target.as_deref(),
                sanitizer,
            };
            steps.run("fuzz", || fuzz::run(&repo, &plan))
        }),
        Task::LoadSmoke => Steps::execute("load-smoke", &["tools", "load-smoke"], |steps| {
            let tools = steps.run("tools", || Tools::ensure(&repo, Needs::NODE_AND_REDIS))?;
            steps.run("load-smoke", || bench::smoke::run(&repo, &tools))
        }),
        Task::Faults { scenario } => Steps::execute("faults", &["tools", "faults"], |steps| {
            let tools = steps.run("tools", || Tools::ensure(&repo, Needs::NODE_AND_REDIS))?;
            steps.run("faults", || faults::run(&repo, &tools, &scenario))
        }),
        Task::Bench {
            duration,
            concurrency,
            sessions,
            idle_streams,
            only,
            skip_long,
            rounds,
        } => {
            let options = bench::Options {
                duration,
                concurrency,
                sessions,
                idle_streams,
                only,
                skip_long,
                rounds,
            };
            if let Err(error) = bench::check(&options) {
                eprintln!("xtask bench: {error:#}");
                return ExitCode::from(2);
            }
            Steps::execute("bench", &["tools", "build", "bench"], |steps| {
                let tools = steps.run("tools", || Tools::ensure(&repo, Needs::NODE_AND_REDIS))?;
                let bins = steps.run("build", || bench::build(&repo, &tools))?;
                steps.run("bench", || bench::run(&repo, &bins, &options))
            })
        }
    }
}

/// The whole CI run.
fn ci(repo: &Repo, steps: &mut Steps) -> Result<(), StepFailed> {
    let tools = steps.run("tools", || Tools::ensure(repo, Needs::ALL))?;
    steps.run("fmt", || {
        cmd::run(tools.apply(&mut repo.cargo(["fmt", "--all", "--check"])))
    })?;
    steps.run("clippy", || {
        cmd::run(tools.apply(&mut repo.cargo([
            "clippy",
            "--locked",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])))
    })?;
    // The library crates' API documentation is a guide: no broken link, no warning.
    steps.run("doc", || {
        let mut doc = repo.cargo(["doc", "--locked", "--no-deps"]);
        for library in LIBRARY_CRATES {
            doc.args(["-p", library]);
        }
        cmd::run(tools.apply(doc.env("RUSTDOCFLAGS", "-D warnings")))
    })?;
    steps.run("deny", || deny::run(repo))?;
    steps.run("chart", || chart::run(repo, &tools))?;
    steps.run("test", || {
        cmd::run(tools.apply(&mut repo.cargo(["test", "--locked", "--workspace"])))
    })?;
    steps.run("fuzz-smoke", || fuzz::smoke(repo))?;
    steps.run("conformance", || {
        conformance::run(repo, &tools, None, Revision::Session)
    })?;
    steps.run("conformance-2026", || {
        conformance::run(repo, &tools, None, Revision::Modern)
    })?;
    steps.run("conformance-cluster", || {
        cluster::run(repo, &tools, None, RedisMode::Single, &Revision::BOTH)
    })?;
    steps.run("conformance-redis-cluster", || {
        cluster::run(repo, &tools, None, RedisMode::Cluster, &Revision::BOTH)
    })?;
    steps.run("conformance-auth", || auth::run(repo, &tools, None))?;
    steps.run("conformance-oauth", || {
        oauth::run(repo, &tools, None, &Revision::BOTH)
    })?;
    steps.run("clients", || clients::run(repo, &tools))?;
    steps.run("browser", || browser::run(repo, &tools))?;
    steps.run("load-smoke", || bench::smoke::run(repo, &tools))?;
    steps.run("faults", || faults::run(repo, &tools, &[]))?;
    steps.run("observability", || observability::run(repo, &tools))?;
    steps.run("image", || image::run(repo))?;
    Ok(())
}

fn only_conformance(
    repo: &Repo,
    steps: &mut Steps,
    scenario: Option<&str>,
    revision: Revision,
) -> Result<(), StepFailed> {
    let tools = steps.run("tools", || Tools::ensure(repo, Needs::NODE))?;
    steps.run("conformance", || {
        conformance::run(repo, &tools, scenario, revision)
    })
}

fn only_conformance_cluster(
    repo: &Repo,
    steps: &mut Steps,
    scenario: Option<&str>,
    mode: RedisMode,
    revisions: &[Revision],
) -> Result<(), StepFailed> {
    // redis-server (and redis-cli) must already be on PATH: `cluster::run` says so when not.
    let tools = steps.run("tools", || Tools::ensure(repo, Needs::NODE))?;
    let step = match mode {
        RedisMode::Single => "conformance-cluster",
        RedisMode::Cluster => "conformance-redis-cluster",
    };
    steps.run(step, || {
        cluster::run(repo, &tools, scenario, mode, revisions)
    })
}

fn only_conformance_auth(
    repo: &Repo,
    steps: &mut Steps,
    scenario: Option<&str>,
) -> Result<(), StepFailed> {
    // `auth::run` installs the fixture's npm packages when they are missing.
    let tools = steps.run("tools", || Tools::ensure(repo, Needs::NODE))?;
    steps.run("conformance-auth", || auth::run(repo, &tools, scenario))
}

fn only_conformance_oauth(
    repo: &Repo,
    steps: &mut Steps,
    scenario: Option<&str>,
    revisions: &[Revision],
) -> Result<(), StepFailed> {
    // `oauth::run` installs the fixture's npm packages when they are missing.
    let tools = steps.run("tools", || Tools::ensure(repo, Needs::NODE_AND_REDIS))?;
    steps.run("conformance-oauth", || {
        oauth::run(repo, &tools, scenario, revisions)
    })
}

fn only_clients(repo: &Repo, steps: &mut Steps, oauth: bool) -> Result<(), StepFailed> {
    let tools = steps.run("tools", || Tools::ensure(repo, Needs::NODE_AND_PYTHON))?;
    if oauth {
        steps.run("clients", || clients::run_oauth(repo, &tools))
    } else {
        steps.run("clients", || clients::run(repo, &tools))
    }
}

/// Where things are: the workspace root and cargo's target directory.
#[derive(Debug)]
pub(crate) struct Repo {
    root: PathBuf,
    target: PathBuf,
}

// === impl Repo ===

impl Repo {
    fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        // Cargo reads a relative CARGO_TARGET_DIR against the directory it was started in.
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => {
                std::path::absolute(&dir).context("cannot resolve CARGO_TARGET_DIR")?
            }
            _ => root.join("target"),
        };
        Ok(Self { root, target })
    }

    /// The workspace root.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Cargo's target directory (`target/` unless `CARGO_TARGET_DIR` says otherwise).
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// A `cargo` command (the one running xtask) with `args`, run from the workspace root.
    pub(crate) fn cargo<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(args).current_dir(&self.root);
        command
    }
}
