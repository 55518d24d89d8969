//! The CI's `load-smoke` step: every `shoal-load` scenario for a few seconds against one
//! `shoal serve` (demo and conformance tools) on its own `redis-server`, in both eras (calls
//! also stateless; listen and mrtr are 2026-07-28 only), failing on any error, gap, duplicate
//! or reordering. It proves the load generator and the server agree, not how fast they are:
//! both are debug builds here.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::load::{Load, Summary};
use super::targets::{Binaries, Deployment, Limits, Target};
use crate::Repo;
use crate::cmd;
use crate::process;
use crate::server;
use crate::tools::Tools;

/// `--NAME VALUE` options of one run beyond the common ones.
type Extra = &'static [(&'static str, &'static str)];

/// Every run: (label, scenario, extra options), in the order they run.
const RUNS: [(&str, &str, Extra); 8] = [
    ("calls", "calls", &[]),
    ("churn", "churn", &[]),
    ("streams", "streams", &[("streams", STREAMS)]),
    ("roundtrip", "roundtrip", &[]),
    ("resume", "resume", &[]),
    ("calls-2026", "calls", &[("revision", "2026-07-28")]),
    ("listen", "listen", &[("listeners", STREAMS)]),
    ("mrtr", "mrtr", &[]),
];
/// How long each scenario runs, and with how many workers.
const DURATION: &str = "10s";
const CONCURRENCY: &str = "8";
/// Streams of the `streams` scenario, and listen streams of `listen`.
const STREAMS: &str = "50";

/// Builds `shoal` and `shoal-load`, starts Redis and one replica, and runs every scenario.
pub(crate) fn run(repo: &Repo, tools: &Tools) -> Result<()> {
    let shoal = server::build(repo, tools)?;
    cmd::run(tools.apply(&mut repo.cargo([
        "build",
        "--locked",
        "-p",
        "shoal-load",
        "--bin",
        "shoal-load",
    ])))?;
    let shoal_load = repo.target().join("debug").join("shoal-load");
    if !shoal_load.is_file() {
        bail!(
            "cargo built shoal-load but {} is missing",
            shoal_load.display()
        );
    }
    // Only what a Shoal-on-Redis deployment starts is used.
    let bins = Binaries {
        shoal,
        shoal_load,
        redis_server: process::redis_server()?,
        rr_proxy: PathBuf::new(),
        axum_echo: PathBuf::new(),
        rmcp_echo: PathBuf::new(),
        node: tools.node().to_path_buf(),
        ts_server: PathBuf::new(),
        ts2_server: PathBuf::new(),
    };
    let log_dir = repo.target().join("xtask").join("load-smoke");
    // The conformance tools: listen's trigger.
    let limits = Limits {
        conformance_tools: true,
        ..Limits::default()
    };
    let deployment = Deployment::start(Target::ShoalRedis, &bins, &log_dir, limits)?;

    let mut failed = Vec::new();
    for (label, scenario, extra) in RUNS {
        let mut load = Load::new(&bins.shoal_load, scenario, label, &log_dir)
            .urls(&[&deployment.url])
            .opt("duration", DURATION)
            .opt("warmup", "0s")
            .opt("concurrency", CONCURRENCY)
            .flag("fail-on-error");
        for (name, value) in extra {
            load = load.opt(name, value);
        }
        match load.run() {
            Ok(summary) => println!("{}", line(label, &summary)),
            Err(error) => {
                eprintln!("{label:<10} FAILED: {error:#}");
                failed.push(label);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("{}", deployment.log_tails());
        bail!("shoal-load scenarios failed: {}", failed.join(", "));
    }
    Ok(())
}

/// `calls     ops 12345  ops/s 1234.5  p99 1.23 ms  errors none`.
fn line(scenario: &str, summary: &Summary) -> String {
    format!(
        "{scenario:<10} ops {:>7}  ops/s {:>8.1}  p99 {:>7.2} ms  errors {}",
        summary.operations,
        summary.throughput,
        summary.p99_ms,
        summary.errors_text()
    )
}
