//! `shoal-load`: an MCP-aware load generator for any Streamable HTTP server.
//!
//! ```text
//! shoal-load calls --url http://127.0.0.1:8080/mcp --concurrency 50 --duration 10s
//! shoal-load streams --streams 1000 --announce-rate 50 --json
//! SSL_CERT_FILE=ca.pem shoal-load calls --url https://mcp.internal/mcp
//! ```
//!
//! Exit status: 0 when the run finished (1 with `--fail-on-error` when anything failed), 2
//! when it could not run (bad options, no session or stream could be set up).
//!
//! # Layout
//!
//! - [`cli`]: the options (a contract: `cargo xtask bench` drives them).
//! - [`http`]: a small HTTP/1.1 client: per-worker keep-alive connections, round robin over
//!   URLs, one write per request, response heads parsed in place; [`tls`]: `https://` targets,
//!   verified against the system's trust roots (or not, with `--insecure`).
//! - [`client`]: MCP on top: initialize, requests with JSON or SSE replies, GET streams,
//!   resumption, DELETE (event streams are read with `shoal_wire`'s parser); [`wire`]: the
//!   JSON-RPC shapes; [`error`]: failures and their kinds.
//! - [`run`](mod@run): workers, closed or open loop, warmup, the measured phase; [`progress`]:
//!   the bar.
//! - [`scenario`]: what one operation is in each scenario.
//! - [`stats`] and [`report`]: histograms and counters; table, JSON and HTML.

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

mod cli;
mod client;
mod error;
mod http;
mod progress;
mod report;
mod run;
mod scenario;
mod stats;
mod tls;
mod wire;

use cli::Cli;
use report::Summary;

/// The run could not start or set up.
const EXIT_CANNOT_RUN: u8 = 2;
/// `--fail-on-error` and something failed.
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(problems) = cli.options.validate(cli.scenario) {
        for problem in problems.lines() {
            eprintln!("shoal-load: {problem}");
        }
        return ExitCode::from(EXIT_CANNOT_RUN);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shoal-load: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("shoal-load: {error:#}");
            ExitCode::from(EXIT_CANNOT_RUN)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli { scenario, options } = cli;
    if options.insecure {
        eprintln!("shoal-load: {}", tls::INSECURE_WARNING);
    }
    let targets = http::Targets::resolve(&options.urls, options.token.as_deref(), options.insecure)
        .await
        .map_err(anyhow::Error::msg)?;
    let stopped = Arc::new(AtomicBool::new(false));
    tokio::spawn(stop_on_ctrl_c(stopped.clone()));
    let ctx = scenario::Context {
        progress: progress::Progress::new(options.quiet),
        targets: Arc::new(targets),
        stopped,
        options,
    };
    let options = &ctx.options;
    let (summary, latencies) = match scenario::run(scenario, &ctx).await {
        Ok(outcome) => (
            Summary::new(scenario, options, &outcome),
            outcome.recorder.histogram,
        ),
        Err(failed) => (
            Summary::failed(scenario, options, &failed),
            failed.recorder.histogram,
        ),
    };
    let printed = if options.json {
        writeln!(std::io::stdout().lock(), "{}", summary.to_json())
    } else {
        writeln!(std::io::stdout().lock(), "{}", summary.to_table())
    };
    if let Err(error) = printed {
        eprintln!("shoal-load: cannot print the summary: {error}");
    }
    if let Some(dir) = &options.report {
        report::write_html(dir, &summary, &latencies)?;
    }
    if let Some(error) = &summary.setup_error {
        eprintln!("shoal-load: {error}");
        return Ok(ExitCode::from(EXIT_CANNOT_RUN));
    }
    if options.fail_on_error && !summary.passed() {
        let errors: Vec<String> = summary
            .errors
            .iter()
            .map(|(kind, count)| format!("{kind}: {count}"))
            .collect();
        let e = &summary.events;
        eprintln!(
            "shoal-load: failures: {} (gaps {}, duplicates {}, out of order {})",
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(", ")
            },
            e.gaps,
            e.duplicates,
            e.out_of_order
        );
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The first Ctrl-C ends the measured phase early (the summary is still printed); the second
/// exits at once.
async fn stop_on_ctrl_c(stopped: Arc<AtomicBool>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("shoal-load: stopping (Ctrl-C again to quit at once)");
    stopped.store(true, Ordering::Relaxed);
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}
