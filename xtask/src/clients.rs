//! The SDK client checks: the official TypeScript (`tests/clients/ts/client.mjs`) and Python
//! (`tests/clients/python/client.py`) MCP SDKs drive `shoal serve --tools demo` through
//! `echo`, `count` (progress), `ask_user` (elicitation) and `ask_model` (sampling); the
//! TypeScript SDK 2.x client (`tests/clients/ts2/client.mjs`) and the Python SDK 2.x client
//! (`tests/clients/python2/client.py`, in a venv of its own) land on 2026-07-28 with automatic
//! era detection and on the session era when asked, against the same endpoint, and there
//! answer `input_required` and open a listen stream.
//! All run, one after the other even if one fails, against one replica and then through three
//! replicas on one Redis behind the round-robin proxy (logs under `target/xtask/clients-cluster`).
//! Then the TypeScript and Python SDKs log in to `shoal serve --auth oauth` through three
//! replicas, one restarted between login and refresh ([`crate::oauth_clients`]).

use anyhow::{Result, bail};

use shoal_testkit::cluster::ShoalCluster;

use crate::Repo;
use crate::cmd;
use crate::oauth_clients;
use crate::process;
use crate::server::{self, Server, ToolSet};
use crate::tools::Tools;
use crate::topology::{Runtime, clear_dir, log_tail, write_proxy_log};

/// The TypeScript check's package directory, relative to the workspace root.
const TS_DIR: &str = "tests/clients/ts";
/// The TypeScript SDK 2.x check's package directory, relative to the workspace root.
const TS2_DIR: &str = "tests/clients/ts2";
/// The Python check's directory, relative to the workspace root.
const PYTHON_DIR: &str = "tests/clients/python";
/// The Python SDK 2.x check's directory, relative to the workspace root.
const PYTHON2_DIR: &str = "tests/clients/python2";
/// How many replicas the second run goes through.
const REPLICAS: usize = 3;
/// Where the replicas and the proxy log, relative to the target directory.
const CLUSTER_LOG_DIR: &str = "xtask/clients-cluster";

/// Builds shoal and runs every SDK client against one replica (memory host), then against
/// three replicas on one Redis behind the test kit's round-robin proxy, where every request
/// lands on another replica than the one before.
pub(crate) fn run(repo: &Repo, tools: &Tools) -> Result<()> {
    let binary = server::build(repo, tools)?;
    cmd::run(&mut tools.npm(
        &repo.root().join(TS_DIR),
        &["ci", "--no-audit", "--no-fund"],
    ))?;
    cmd::run(&mut tools.npm(
        &repo.root().join(TS2_DIR),
        &["ci", "--no-audit", "--no-fund"],
    ))?;

    let server = Server::start(repo, &binary, ToolSet::Demo)?;
    println!();
    println!("=== one replica: {}", server.mcp_url());
    let failed = run_clients(repo, tools, &server.mcp_url())?;
    if !failed.is_empty() {
        server.print_log_tail();
        bail!(
            "SDK client checks failed on one replica: {}",
            failed.join(", ")
        );
    }
    drop(server);

    process::redis_server()?;
    let log_dir = repo.target().join(CLUSTER_LOG_DIR);
    clear_dir(&log_dir)?;
    let runtime = Runtime::new()?;
    let cluster = runtime.run(
        "the replicas did not start",
        ShoalCluster::builder(&binary)
            .replicas(REPLICAS)
            .tools("demo")
            .log_dir(log_dir.clone())
            .start(),
    )?;
    println!();
    println!(
        "=== {REPLICAS} replicas on Redis behind a round-robin proxy: {}",
        cluster.url()
    );
    let outcome = run_clients(repo, tools, &cluster.url());
    if let Err(error) = write_proxy_log(cluster.proxy(), &log_dir.join("rr-proxy.log")) {
        eprintln!("{error:#}");
    }
    let failed = outcome?;
    if !failed.is_empty() {
        for i in 0..cluster.len() {
            eprintln!("{}", log_tail(&log_dir.join(format!("replica-{i}.log"))));
        }
    }
    runtime.stop(cluster);

    // The OAuth logins have a topology of their own; they run even if the checks above failed.
    let logins = oauth_clients::run(repo, tools, &binary);
    if !failed.is_empty() {
        if let Err(error) = logins {
            eprintln!("{error:#}");
        }
        bail!(
            "SDK client checks failed through {REPLICAS} replicas: {}",
            failed.join(", ")
        );
    }
    logins
}

/// Builds shoal and runs only the SDKs' OAuth logins (`cargo xtask clients --oauth`).
pub(crate) fn run_oauth(repo: &Repo, tools: &Tools) -> Result<()> {
    let binary = server::build(repo, tools)?;
    cmd::run(&mut tools.npm(
        &repo.root().join(TS_DIR),
        &["ci", "--no-audit", "--no-fund"],
    ))?;
    oauth_clients::run(repo, tools, &binary)
}

/// Runs every SDK client against `url`, one after the other even if one fails; the names of
/// those that failed.
fn run_clients(repo: &Repo, tools: &Tools, url: &str) -> Result<Vec<&'static str>> {
    let mut typescript = tools.command(tools.node());
    typescript
        .current_dir(repo.root().join(TS_DIR))
        .arg("client.mjs")
        .arg(url);

    let mut typescript2 = tools.command(tools.node());
    typescript2
        .current_dir(repo.root().join(TS2_DIR))
        .arg("client.mjs")
        .arg(url);

    let mut python = tools.command(tools.python()?);
    python
        .current_dir(repo.root().join(PYTHON_DIR))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("client.py")
        .arg(url);

    let mut python2 = tools.command(tools.python_mcp2()?);
    python2
        .current_dir(repo.root().join(PYTHON2_DIR))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("client.py")
        .arg(url);

    let mut failed = Vec::new();
    for (sdk, command) in [
        ("typescript", &mut typescript),
        ("typescript 2.x", &mut typescript2),
        ("python", &mut python),
        ("python 2.x", &mut python2),
    ] {
        println!();
        println!("--- {sdk} SDK client");
        if let Err(error) = cmd::run(command) {
            eprintln!("{sdk} SDK client: {error:#}");
            failed.push(sdk);
        }
    }
    Ok(failed)
}
