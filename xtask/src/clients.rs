//! The SDK client checks: the official TypeScript (`tests/clients/ts/client.mjs`) and Python
//! (`tests/clients/python/client.py`) MCP SDKs drive `shoal serve --tools demo` through
//! `echo`, `count` (progress), `ask_user` (elicitation) and `ask_model` (sampling); the
//! TypeScript SDK 2.x client (`tests/clients/ts2/client.mjs`) and the Python SDK 2.x client
//! (`tests/clients/python2/client.py`, in a venv of its own) land on 2026-07-28 with automatic
//! era detection and on the session era when asked, against the same endpoint, and there
//! answer `input_required` and open a listen stream.
//! All run, one after the other against one server, even if one fails.

use anyhow::{Result, bail};

use crate::Repo;
use crate::cmd;
use crate::server::{self, Server, ToolSet};
use crate::tools::Tools;

/// The TypeScript check's package directory, relative to the workspace root.
const TS_DIR: &str = "tests/clients/ts";
/// The TypeScript SDK 2.x check's package directory, relative to the workspace root.
const TS2_DIR: &str = "tests/clients/ts2";
/// The Python check's directory, relative to the workspace root.
const PYTHON_DIR: &str = "tests/clients/python";
/// The Python SDK 2.x check's directory, relative to the workspace root.
const PYTHON2_DIR: &str = "tests/clients/python2";

/// Builds shoal and runs both SDK clients against it.
pub(crate) fn run(repo: &Repo, tools: &Tools) -> Result<()> {
    let binary = server::build(repo, tools)?;
    let ts_dir = repo.root().join(TS_DIR);
    let ts2_dir = repo.root().join(TS2_DIR);
    let python_dir = repo.root().join(PYTHON_DIR);
    cmd::run(&mut tools.npm(&ts_dir, &["ci", "--no-audit", "--no-fund"]))?;
    cmd::run(&mut tools.npm(&ts2_dir, &["ci", "--no-audit", "--no-fund"]))?;
    let python = tools.python()?;
    let python2 = tools.python_mcp2()?;

    let server = Server::start(repo, &binary, ToolSet::Demo)?;
    let url = server.mcp_url();

    let mut typescript = tools.command(tools.node());
    typescript.current_dir(&ts_dir).arg("client.mjs").arg(&url);

    let mut typescript2 = tools.command(tools.node());
    typescript2
        .current_dir(&ts2_dir)
        .arg("client.mjs")
        .arg(&url);

    let mut python = tools.command(python);
    python
        .current_dir(&python_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("client.py")
        .arg(&url);

    let mut python2 = tools.command(python2);
    python2
        .current_dir(repo.root().join(PYTHON2_DIR))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("client.py")
        .arg(&url);

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
    if !failed.is_empty() {
        server.print_log_tail();
        bail!("SDK client checks failed: {}", failed.join(", "));
    }
    Ok(())
}
