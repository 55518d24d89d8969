//! The fault-injection suite (`cargo xtask faults`, and the `faults` step of `ci`): builds
//! `shoal` and `shoal-faults` (debug builds: the suite checks behaviour, not speed) and runs
//! the scenarios of the `shoal-faults` crate (`crates/shoal-faults`), each against three replicas on one
//! `redis-server` behind the round-robin proxy. The report goes to `target/faults/`
//! (`results.md`, `results.json`); any violation fails the step.

use anyhow::{Result, bail};

use crate::Repo;
use crate::cmd;
use crate::process;
use crate::server;
use crate::tools::Tools;

/// The variable `shoal_testkit::redis` reads the `redis-server` binary from.
const ENV_REDIS_SERVER: &str = "SHOAL_REDIS_SERVER";
/// Load held per scenario: long enough for several faults, short enough that the whole step
/// stays within a few minutes on two cores.
const DURATION: &str = "15s";

/// Builds the binaries and runs `scenarios` (every one when empty).
pub(crate) fn run(repo: &Repo, tools: &Tools, scenarios: &[String]) -> Result<()> {
    let shoal = server::build(repo, tools)?;
    cmd::run(tools.apply(&mut repo.cargo([
        "build",
        "--locked",
        "-p",
        "shoal-faults",
        "--bin",
        "shoal-faults",
    ])))?;
    let faults = repo.target().join("debug").join("shoal-faults");
    if !faults.is_file() {
        bail!(
            "cargo built shoal-faults but {} is missing",
            faults.display()
        );
    }
    let redis_server = process::redis_server()?;
    let mut command = tools.command(&faults);
    command
        .env(ENV_REDIS_SERVER, &redis_server)
        .arg("--shoal")
        .arg(&shoal)
        .args(["--duration", DURATION])
        .arg("--report")
        .arg(repo.target().join("faults"));
    for scenario in scenarios {
        command.args(["--scenario", scenario]);
    }
    cmd::run(&mut command)
}
