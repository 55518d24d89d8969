//! The SDK clients log in to `shoal serve --auth oauth` (part of `cargo xtask clients`): the
//! TypeScript (`tests/clients/ts/oauth-login.mjs`) and Python
//! (`tests/clients/python/oauth_login.py`) SDKs' own OAuth clients, a headless browser in each
//! script walking the upstream login page and Shoal's consent page.
//!
//! The topology, on loopback, on the test kit (see [`crate::topology`]):
//!
//! - the `oidc-provider` fixture as the upstream OpenID provider, with Shoal's login client;
//! - three `shoal serve --auth oauth --required-scopes mcp:tools` replicas on one Redis behind
//!   the round-robin proxy, whose
//!   URL is the public one (issuer and resource), so every request of a flow lands on another
//!   replica than the one before; `--client-metadata-private-targets`, and `SSL_CERT_FILE` set
//!   to a private CA, so that Shoal fetches the scripts' Client ID Metadata Documents from
//!   `https://127.0.0.1:<port>` (the SDKs want an `https` URL) with a leaf of that CA.
//!
//! Each script runs twice, with dynamic client registration (`dcr`) and with a Client ID
//! Metadata Document (`cimd`). A run logs in, calls a tool and prints a `logged-in` line; xtask
//! then restarts one replica (another for each run) and tells the script to go on, and the
//! script makes its SDK refresh the tokens and call the tool again. Logs go to
//! `target/xtask/clients-oauth/` (emptied first); on a failure the replicas' and the
//! provider's tails are printed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::tls::{LEAF_NAMES, PrivateCa};

use crate::Repo;
use crate::cmd;
use crate::server::free_ports;
use crate::tools::Tools;
use crate::topology::{
    Runtime, clear_dir, log_tail, oauth_replicas, upstream_provider, write_proxy_log,
};

/// The TypeScript check's package directory, relative to the workspace root.
const TS_DIR: &str = "tests/clients/ts";
/// The Python check's directory, relative to the workspace root.
const PYTHON_DIR: &str = "tests/clients/python";
/// How many replicas the clients go through.
const REPLICAS: usize = 3;
/// Where the replicas, the proxy and the certificates are, relative to the target directory.
const LOG_DIR: &str = "xtask/clients-oauth";
/// The scope every MCP request needs (the clients ask for it, as the challenge says).
const SCOPE: &str = "mcp:tools";
/// The user who logs in.
const USER: &str = "alice";
/// The `phase` of the line a script prints when it has logged in and waits for the go-ahead
/// to refresh.
const LOGGED_IN: &str = "logged-in";

/// One client run: which SDK, which way it gets a client id.
#[derive(Debug, Clone, Copy)]
struct Run {
    sdk: &'static str,
    mode: &'static str,
}

const RUNS: [Run; 4] = [
    Run {
        sdk: "typescript",
        mode: "dcr",
    },
    Run {
        sdk: "typescript",
        mode: "cimd",
    },
    Run {
        sdk: "python",
        mode: "dcr",
    },
    Run {
        sdk: "python",
        mode: "cimd",
    },
];

/// Starts the topology and runs every script in both modes, one after the other even if one
/// fails; fails naming those that failed. `binary` is the built `shoal`.
pub(crate) fn run(repo: &Repo, tools: &Tools, binary: &Path) -> Result<()> {
    let log_dir = repo.target().join(LOG_DIR);
    clear_dir(&log_dir)?;
    let ca = PrivateCa::new();
    let ca_file = ca.write_ca_pem(&log_dir);
    let (cert, key) = ca.write_leaf_pem(&log_dir, &LEAF_NAMES);
    let [proxy_addr] = free_ports()?;
    let origin = format!("http://{proxy_addr}");
    let resource = format!("{origin}/mcp");

    let runtime = Runtime::new()?;
    let started = Instant::now();
    let provider = upstream_provider(&runtime, &origin, &resource)?;
    let replicas = ShoalCluster::builder(binary)
        .replicas(REPLICAS)
        .tools("demo")
        .proxy_addr(proxy_addr)
        .env("SSL_CERT_FILE", &ca_file);
    let cluster = oauth_replicas(replicas, &resource, &provider)
        .arg("--required-scopes")
        .arg(SCOPE)
        .arg("--client-metadata-private-targets")
        .log_dir(&log_dir);
    let mut cluster = match runtime.run("the replicas did not start", cluster.start()) {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("{}", provider.log_tail());
            runtime.stop(provider);
            return Err(error);
        }
    };
    println!();
    println!(
        "=== OAuth login: {REPLICAS} replicas --auth oauth on Redis behind a round-robin proxy: \
         {resource}, upstream {} (up in {:.1?})",
        provider.issuer(),
        started.elapsed()
    );

    let mut failed = Vec::new();
    for (i, run) in RUNS.iter().enumerate() {
        println!();
        println!("--- {} SDK client, OAuth login ({})", run.sdk, run.mode);
        let mut command = match script(repo, tools, *run, &resource, &cert, &key) {
            Ok(command) => command,
            Err(error) => {
                eprintln!("{} SDK ({}): {error:#}", run.sdk, run.mode);
                failed.push(format!("{} {}", run.sdk, run.mode));
                continue;
            }
        };
        let started = Instant::now();
        let replica = i % REPLICAS;
        let outcome = run_phases(&mut command, || {
            let restarted = Instant::now();
            runtime.run("a replica did not start again", cluster.restart(replica))?;
            println!(
                "restarted replica-{replica} between login and refresh ({:.1?})",
                restarted.elapsed()
            );
            Ok(())
        });
        match outcome {
            Ok(()) => println!(
                "{} SDK ({}): login, restart, refresh in {:.1?}",
                run.sdk,
                run.mode,
                started.elapsed()
            ),
            Err(error) => {
                eprintln!("{} SDK ({}): {error:#}", run.sdk, run.mode);
                failed.push(format!("{} {}", run.sdk, run.mode));
            }
        }
    }

    if let Err(error) = write_proxy_log(cluster.proxy(), &log_dir.join("rr-proxy.log")) {
        eprintln!("{error:#}");
    }
    if !failed.is_empty() {
        for i in 0..cluster.len() {
            eprintln!("{}", log_tail(&log_dir.join(format!("replica-{i}.log"))));
        }
        eprintln!("{}", provider.log_tail());
    }
    runtime.stop(cluster);
    runtime.stop(provider);
    if !failed.is_empty() {
        bail!(
            "SDK OAuth logins failed through {REPLICAS} replicas: {}",
            failed.join(", ")
        );
    }
    Ok(())
}

/// The command of one run: `<script> URL MODE USER CERT KEY`.
fn script(
    repo: &Repo,
    tools: &Tools,
    run: Run,
    url: &str,
    cert: &Path,
    key: &Path,
) -> Result<Command> {
    let mut command = match run.sdk {
        "typescript" => {
            let mut command = tools.command(tools.node());
            command
                .current_dir(repo.root().join(TS_DIR))
                .arg("oauth-login.mjs");
            command
        }
        _ => {
            let mut command = tools.command(tools.python()?);
            command
                .current_dir(repo.root().join(PYTHON_DIR))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .arg("oauth_login.py");
            command
        }
    };
    command.arg(url).arg(run.mode).arg(USER).arg(cert).arg(key);
    Ok(command)
}

/// Runs a two-phase script: its stdout is echoed; at the `logged-in` line `between` runs and a
/// line goes to the script's stdin; then it must exit successfully.
fn run_phases(command: &mut Command, between: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("$ {}", cmd::display(command));
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{}`", cmd::display(command)))?;
    let mut stdin = Some(child.stdin.take().context("the script's stdin")?);
    let stdout = child.stdout.take().context("the script's stdout")?;
    let mut between = Some(between);
    let mut outcome = Ok(());
    // The scripts bound their own run time, so this loop ends when they do.
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the script's stdout")?;
        println!("{line}");
        if is_logged_in(&line)
            && let Some(between) = between.take()
        {
            outcome = between();
            // On a failure stdin closes: the script goes on (and ends) by itself.
            if let (Ok(()), Some(stdin)) = (&outcome, stdin.as_mut()) {
                writeln!(stdin, "refresh").context("writing to the script's stdin")?;
            }
            stdin = None;
        }
    }
    drop(stdin);
    let status = child.wait().context("waiting for the script")?;
    outcome?;
    if between.is_some() {
        bail!("the script never logged in (exit status {status})");
    }
    if !status.success() {
        bail!("`{}` failed: {status}", cmd::display(command));
    }
    Ok(())
}

/// Whether `line` is a JSON object whose `phase` is [`LOGGED_IN`].
fn is_logged_in(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .is_ok_and(|value| value["phase"].as_str() == Some(LOGGED_IN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_logged_in_line_however_it_is_spaced() {
        assert!(is_logged_in(
            r#"{"phase":"logged-in","sdk":"typescript-sdk"}"#
        ));
        assert!(is_logged_in(
            r#"{"phase": "logged-in", "sdk": "python-sdk"}"#
        ));
        assert!(!is_logged_in(r#"{"phase": "refreshed"}"#));
        assert!(!is_logged_in("[python-sdk] ok: logged-in"));
    }
}
