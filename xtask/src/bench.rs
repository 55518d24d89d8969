//! `cargo xtask bench`: Shoal beside the anchors that say what its figures mean, one at a
//! time on this machine, each driven by the same `shoal-load` settings.
//!
//! The targets ([`targets::Target`]): the loopback ceiling (`bench/axum-echo`, a stateless
//! axum JSON echo), the official Rust SDK (`bench/rmcp-echo`, stateful), the official
//! TypeScript SDK (`bench/ts-sdk-echo`, stateful), the TypeScript SDK 2.x
//! (`bench/ts2-sdk-echo`, both eras on one endpoint), Shoal on the memory host, Shoal on a Redis
//! host, and three Shoal replicas on one Redis behind `rr-proxy`. Every server sets
//! TCP_NODELAY on accepted sockets, as any deployment would.
//!
//! What is measured ([`measure`]):
//!
//! - `tools/call echo` throughput and latency of every target (closed loop, one session,
//!   `--concurrency` workers), and the server's resident memory after it;
//! - on the Redis targets, Redis commands (`INFO commandstats`, scripts' commands included,
//!   the harness's own left out) and round trips (the replicas'
//!   `shoal_redis_command_duration_seconds_count`) per `tools/call`, both sides of each ratio
//!   counted by the servers over the same window;
//! - the stateless era (2026-07-28): stateless `tools/call echo` on Shoal memory, Redis and 3
//!   replicas and on the TypeScript SDK 2.x (with Redis commands and round trips per call:
//!   the goal is none); multi round-trip calls (`ask_user`, answered and retried on the next
//!   replica) through 3 replicas, with Redis per round; and `subscriptions/listen` delivery:
//!   100 listen streams over the 3 replicas, resource updates triggered on each in turn;
//! - cross-replica delivery: 100 standalone streams held through `rr-proxy` while `announce`
//!   POSTs land on other replicas; latency POST → notification, and Redis cost per event;
//! - memory per idle standalone stream (10,000 held by one process) of the axum SSE baseline,
//!   Shoal memory and Shoal Redis, and the Redis connections Shoal holds meanwhile;
//! - session churn on Redis: keys and `used_memory` after every session is deleted, and the
//!   shapes of any key left behind;
//! - long runs (not with `--skip-long`): a replica's memory at 100k and 1M calls in one
//!   session, and after 10k and 100k sessions created and deleted.
//!
//! Then it prints the tables and each target with PASS/MISS ([`report`]), and writes
//! `target/bench/results.json` and `target/bench/results.md`. Logs of every process and every
//! `shoal-load` summary are under `target/bench/logs/`. Figures are only comparable within
//! one run: the machine is shared.
//!
//! [`smoke`] is the CI's `load-smoke` step: every `shoal-load` scenario, briefly, against one
//! replica on Redis, failing on any error.

mod load;
mod measure;
mod probe;
mod redis;
mod report;
pub(crate) mod smoke;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::Repo;
use crate::cmd;
use crate::process;
use crate::tools::Tools;

use self::measure::{Calls, Churn, CrossReplica, Era, IdleStreams, Listen, Long, Mrtr};
use self::probe::Machine;
use self::targets::{Binaries, Target};

/// The TypeScript anchors' packages, relative to the workspace root.
const TS_DIR: &str = "bench/ts-sdk-echo";
const TS2_DIR: &str = "bench/ts2-sdk-echo";
/// The targets of the stateless `tools/call` runs.
const STATELESS_TARGETS: [Target; 4] = [
    Target::Ts2Sdk,
    Target::ShoalMemory,
    Target::ShoalRedis,
    Target::ShoalCluster,
];
/// The long runs' points: calls in one session, and sessions created and deleted.
const LONG_CALLS: (u64, u64) = (100_000, 1_000_000);
const LONG_SESSIONS: (u64, u64) = (10_000, 100_000);

/// What `cargo xtask bench` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) duration: Duration,
    pub(crate) concurrency: usize,
    /// Sessions of a throughput run.
    pub(crate) sessions: usize,
    pub(crate) idle_streams: u32,
    /// Only these measurements (by [`Measurement::name`] or group); all when empty.
    pub(crate) only: Vec<String>,
    pub(crate) skip_long: bool,
    /// How many times each throughput run is repeated, the targets taking turns.
    pub(crate) rounds: usize,
}

/// What every measurement shares.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) duration: Duration,
    /// `duration` as `shoal-load` takes it.
    pub(crate) duration_text: String,
    pub(crate) concurrency: usize,
    /// Sessions of a throughput run, shared round robin by its workers.
    pub(crate) sessions: usize,
    pub(crate) idle_streams: u32,
    /// Throughput runs per target; each target's figures are its median run's.
    pub(crate) rounds: usize,
    /// Where process logs and `shoal-load` outputs go.
    pub(crate) log_dir: PathBuf,
}

impl Settings {
    /// "one session" or "N sessions", as the reports say it.
    pub(crate) fn sessions_text(&self) -> String {
        match self.sessions {
            1 => "one session".to_owned(),
            n => format!("{n} sessions"),
        }
    }
}

/// One measurement of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measurement {
    Calls(Target),
    /// 2026-07-28 `tools/call`, no session.
    StatelessCalls(Target),
    Mrtr,
    Listen,
    CrossReplica,
    IdleStreams(Target),
    Churn,
    LongCalls,
    LongChurn,
}

impl Measurement {
    /// Every measurement, in the order they run.
    fn all() -> Vec<Self> {
        let mut all: Vec<Self> = Target::ALL.into_iter().map(Self::Calls).collect();
        all.extend(STATELESS_TARGETS.map(Self::StatelessCalls));
        all.extend([Self::Mrtr, Self::Listen, Self::CrossReplica]);
        for target in [Target::Axum, Target::ShoalMemory, Target::ShoalRedis] {
            all.push(Self::IdleStreams(target));
        }
        all.extend([Self::Churn, Self::LongCalls, Self::LongChurn]);
        all
    }

    /// Its name, e.g. `calls/shoal-redis`, `stateless-calls/shoal-memory`, `idle-streams/axum`,
    /// `churn`.
    fn name(self) -> String {
        match self {
            Self::Calls(target) => format!("calls/{target}"),
            Self::StatelessCalls(target) => format!("stateless-calls/{target}"),
            Self::Mrtr => "mrtr".to_owned(),
            Self::Listen => "listen".to_owned(),
            Self::CrossReplica => "cross-replica".to_owned(),
            Self::IdleStreams(target) => format!("idle-streams/{target}"),
            Self::Churn => "churn".to_owned(),
            Self::LongCalls => "long-calls".to_owned(),
            Self::LongChurn => "long-churn".to_owned(),
        }
    }

    /// Whether `--only SELECTOR` picks it: its whole name, its group (`calls`,
    /// `stateless-calls`, `idle-streams`, `long`, `stateless`: every 2026-07-28 measurement),
    /// or a target's name (its throughput runs).
    fn selected_by(self, selector: &str) -> bool {
        let name = self.name();
        name == selector
            || name.split('/').next() == Some(selector)
            || (selector == "long" && self.is_long())
            || (selector == "stateless" && self.is_stateless())
            || matches!(
                self,
                Self::Calls(target) | Self::StatelessCalls(target) if target.name() == selector
            )
    }

    fn is_stateless(self) -> bool {
        matches!(self, Self::StatelessCalls(_) | Self::Mrtr | Self::Listen)
    }

    /// The target and era of a throughput run.
    fn throughput(self) -> Option<(Target, Era)> {
        match self {
            Self::Calls(target) => Some((target, Era::Sessions)),
            Self::StatelessCalls(target) => Some((target, Era::Stateless)),
            _ => None,
        }
    }

    fn is_long(self) -> bool {
        matches!(self, Self::LongCalls | Self::LongChurn)
    }
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub(crate) struct Results {
    /// Throughput runs of both eras (each [`Calls`] says which).
    pub(crate) calls: Vec<Calls>,
    pub(crate) mrtr: Option<Mrtr>,
    pub(crate) listen: Option<Listen>,
    pub(crate) cross_replica: Option<CrossReplica>,
    pub(crate) idle_streams: Vec<IdleStreams>,
    pub(crate) churn: Option<Churn>,
    pub(crate) long_calls: Option<Long>,
    pub(crate) long_churn: Option<Long>,
    /// Measurements that could not complete, with why.
    pub(crate) failures: Vec<(String, String)>,
}

/// The measurements `options` selects, or an error naming the selectors that match nothing.
fn plan(options: &Options) -> Result<Vec<Measurement>> {
    let all = Measurement::all();
    let unknown: Vec<&String> = options
        .only
        .iter()
        .filter(|selector| !all.iter().any(|m| m.selected_by(selector)))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<String> = all.iter().map(|m| m.name()).collect();
        bail!(
            "--only {}: no such measurement; choose from {}, the groups calls, \
             stateless-calls, idle-streams, long, stateless, or a target: {}",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            names.join(", "),
            Target::ALL.map(Target::name).join(", ")
        );
    }
    Ok(all
        .into_iter()
        .filter(|m| options.only.is_empty() || options.only.iter().any(|s| m.selected_by(s)))
        .filter(|m| !(options.skip_long && m.is_long()))
        .collect())
}

/// The throughput runs: every target once per round, in turn, so that a slow spell of the
/// shared machine falls on all of them rather than on one; each target keeps its median run.
fn throughput_rounds(
    targets: &[Measurement],
    bins: &Binaries,
    settings: &Settings,
    results: &mut Results,
) {
    let mut runs: Vec<Vec<Calls>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 1..=settings.rounds {
        for (measurement, runs) in targets.iter().zip(&mut runs) {
            let Some((target, era)) = measurement.throughput() else {
                continue;
            };
            let name = measurement.name();
            println!();
            println!("--- {name} (round {round} of {})", settings.rounds);
            match measure::calls(target, era, bins, settings) {
                Ok(calls) => {
                    println!("{}", report::calls_line(&calls));
                    runs.push(calls);
                }
                Err(error) => {
                    eprintln!("{name}: FAILED: {error:#}");
                    results.failures.push((name, format!("{error:#}")));
                }
            }
        }
    }
    for mut runs in runs.into_iter().filter(|runs| !runs.is_empty()) {
        runs.sort_by(|a, b| a.summary.throughput.total_cmp(&b.summary.throughput));
        let all: Vec<String> = runs
            .iter()
            .map(|run| format!("{:.0}", run.summary.throughput))
            .collect();
        let median = runs.swap_remove(runs.len() / 2);
        let group = match median.era {
            Era::Sessions => "calls",
            Era::Stateless => "stateless-calls",
        };
        println!(
            "{group}/{}: median {:.0} req/s of {}",
            median.target,
            median.summary.throughput,
            all.join(", ")
        );
        results.calls.push(median);
    }
}

/// Checks the options before anything is built.
pub(crate) fn check(options: &Options) -> Result<()> {
    if options.duration < Duration::from_secs(2) {
        bail!(
            "--duration {} is too short to measure anything: give at least 2s",
            humantime::format_duration(options.duration)
        );
    }
    if options.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if options.sessions == 0 {
        bail!("--sessions must be at least 1");
    }
    if options.idle_streams == 0 {
        bail!("--idle-streams must be at least 1");
    }
    if options.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    plan(options).map(drop)
}

/// Builds the release binaries of every target and `shoal-load`, and installs the
/// TypeScript anchors' packages.
pub(crate) fn build(repo: &Repo, tools: &Tools) -> Result<Binaries> {
    cmd::run(tools.apply(&mut repo.cargo([
        "build",
        "--locked",
        "--release",
        "-p",
        "shoal-server",
        "-p",
        "shoal-load",
        "-p",
        "shoal-testkit",
        "-p",
        "bench-axum-echo",
        "-p",
        "bench-rmcp-echo",
        "--bin",
        "shoal",
        "--bin",
        "shoal-load",
        "--bin",
        "rr-proxy",
        "--bin",
        "bench-axum-echo",
        "--bin",
        "bench-rmcp-echo",
    ])))?;
    let ts_dir = repo.root().join(TS_DIR);
    let ts2_dir = repo.root().join(TS2_DIR);
    for dir in [&ts_dir, &ts2_dir] {
        cmd::run(&mut tools.npm(dir, &["ci", "--no-audit", "--no-fund"]))?;
    }
    let release = repo.target().join("release");
    let binary = |name: &str| -> Result<PathBuf> {
        let path = release.join(name);
        if !path.is_file() {
            bail!("cargo built {name} but {} is missing", path.display());
        }
        Ok(path)
    };
    Ok(Binaries {
        shoal: binary("shoal")?,
        shoal_load: binary("shoal-load")?,
        rr_proxy: binary("rr-proxy")?,
        axum_echo: binary("bench-axum-echo")?,
        rmcp_echo: binary("bench-rmcp-echo")?,
        redis_server: process::redis_server()?,
        node: tools.node().to_path_buf(),
        ts_server: ts_dir.join("server.mjs"),
        ts2_server: ts2_dir.join("server.mjs"),
    })
}

/// Runs the planned measurements one at a time, prints the tables and targets, writes the
/// results files. Fails when a measurement could not complete (the others still run); a
/// missed target is reported, not a failure.
pub(crate) fn run(repo: &Repo, bins: &Binaries, options: &Options) -> Result<()> {
    let out_dir = repo.target().join("bench");
    let settings = Settings {
        duration: options.duration,
        duration_text: humantime::format_duration(options.duration).to_string(),
        concurrency: options.concurrency,
        sessions: options.sessions,
        idle_streams: options.idle_streams,
        rounds: options.rounds,
        log_dir: out_dir.join("logs"),
    };
    let machine = Machine::describe();
    let (soft, hard) = probe::open_files_limit()?;
    println!("machine: {machine}");
    println!(
        "settings: {} per run, concurrency {}, {}, median of {} rounds; open files limit \
         {soft} (hard {hard})",
        settings.duration_text,
        settings.concurrency,
        settings.sessions_text(),
        settings.rounds
    );

    let plan = plan(options)?;
    let mut results = Results::default();
    let targets: Vec<Measurement> = plan
        .iter()
        .copied()
        .filter(|m| m.throughput().is_some())
        .collect();
    throughput_rounds(&targets, bins, &settings, &mut results);
    for measurement in plan {
        if measurement.throughput().is_some() {
            continue;
        }
        let name = measurement.name();
        println!();
        println!("--- {name}");
        let outcome = match measurement {
            Measurement::Calls(_) | Measurement::StatelessCalls(_) => Ok(()),
            Measurement::Mrtr => measure::mrtr(bins, &settings).map(|mrtr| {
                println!("{}", report::mrtr_line(&mrtr));
                results.mrtr = Some(mrtr);
            }),
            Measurement::Listen => measure::listen(bins, &settings).map(|listen| {
                println!("{}", report::listen_line(&listen));
                results.listen = Some(listen);
            }),
            Measurement::CrossReplica => measure::cross_replica(bins, &settings).map(|cross| {
                println!("{}", report::cross_replica_line(&cross));
                results.cross_replica = Some(cross);
            }),
            Measurement::IdleStreams(target) => {
                measure::idle_streams(target, bins, &settings).map(|idle| {
                    println!("{}", report::idle_streams_line(&idle));
                    results.idle_streams.push(idle);
                })
            }
            Measurement::Churn => measure::churn(bins, &settings).map(|churn| {
                println!("{}", report::churn_line(&churn));
                results.churn = Some(churn);
            }),
            Measurement::LongCalls => {
                let (first, last) = LONG_CALLS;
                measure::long_calls(bins, &settings, first, last).map(|long| {
                    println!("{}", report::long_line(&long));
                    results.long_calls = Some(long);
                })
            }
            Measurement::LongChurn => {
                let (first, last) = LONG_SESSIONS;
                measure::long_churn(bins, &settings, first, last).map(|long| {
                    println!("{}", report::long_line(&long));
                    results.long_churn = Some(long);
                })
            }
        };
        if let Err(error) = outcome {
            eprintln!("{name}: FAILED: {error:#}");
            results.failures.push((name, format!("{error:#}")));
        }
    }

    let report = report::Report::new(&results, &settings, &machine);
    println!();
    println!("{}", report.text());
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let json_path = out_dir.join("results.json");
    let md_path = out_dir.join("results.md");
    std::fs::write(&json_path, report.json())
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(&md_path, report.markdown())
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    println!("wrote {} and {}", json_path.display(), md_path.display());

    if !results.failures.is_empty() {
        let names: Vec<&str> = results.failures.iter().map(|(n, _)| n.as_str()).collect();
        bail!(
            "{} measurement(s) could not complete: {}",
            names.len(),
            names.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(only: &[&str], skip_long: bool) -> Options {
        Options {
            duration: Duration::from_secs(10),
            concurrency: 50,
            sessions: 1,
            idle_streams: 10_000,
            only: only.iter().map(|s| (*s).to_owned()).collect(),
            skip_long,
            rounds: 3,
        }
    }

    fn names(options: &Options) -> Vec<String> {
        plan(options)
            .unwrap()
            .into_iter()
            .map(Measurement::name)
            .collect()
    }

    #[test]
    fn plans_everything_by_default() {
        let all = names(&options(&[], false));
        assert_eq!(all.len(), 20);
        assert_eq!(all[0], "calls/axum");
        assert!(all.contains(&"long-churn".to_owned()));
    }

    #[test]
    fn skip_long_drops_the_long_runs() {
        let short = names(&options(&[], true));
        assert_eq!(short.len(), 18);
        assert!(!short.iter().any(|n| n.starts_with("long")));
    }

    #[test]
    fn only_takes_names_groups_and_targets() {
        assert_eq!(
            names(&options(&["shoal-redis", "churn"], false)),
            ["calls/shoal-redis", "stateless-calls/shoal-redis", "churn"]
        );
        assert_eq!(
            names(&options(&["idle-streams"], false)),
            [
                "idle-streams/axum",
                "idle-streams/shoal-memory",
                "idle-streams/shoal-redis"
            ]
        );
        assert_eq!(
            names(&options(&["long"], false)),
            ["long-calls", "long-churn"]
        );
        assert_eq!(
            names(&options(&["idle-streams/axum"], false)),
            ["idle-streams/axum"]
        );
        assert_eq!(
            names(&options(&["stateless"], false)),
            [
                "stateless-calls/ts2-sdk",
                "stateless-calls/shoal-memory",
                "stateless-calls/shoal-redis",
                "stateless-calls/shoal-cluster",
                "mrtr",
                "listen"
            ]
        );
        assert_eq!(
            names(&options(&["ts2-sdk"], false)),
            ["calls/ts2-sdk", "stateless-calls/ts2-sdk"]
        );
    }

    #[test]
    fn only_rejects_unknown_names() {
        let error = plan(&options(&["nope"], false)).unwrap_err().to_string();
        assert!(error.contains("--only nope"), "{error}");
    }

    #[test]
    fn rejects_a_too_short_duration() {
        let mut short = options(&[], false);
        short.duration = Duration::from_secs(1);
        assert!(check(&short).is_err());
        assert!(check(&options(&[], false)).is_ok());
    }

    #[test]
    fn rejects_zero_rounds() {
        let mut none = options(&[], false);
        none.rounds = 0;
        let error = check(&none).unwrap_err().to_string();
        assert!(error.contains("--rounds"), "{error}");
    }

    #[test]
    fn rejects_zero_sessions() {
        let mut none = options(&[], false);
        none.sessions = 0;
        let error = check(&none).unwrap_err().to_string();
        assert!(error.contains("--sessions"), "{error}");
    }
}
