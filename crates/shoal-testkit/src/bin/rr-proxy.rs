//! `rr-proxy`: the testkit's round-robin reverse proxy as a process, for `cargo xtask`.
//!
//! ```text
//! rr-proxy --listen 127.0.0.1:PORT \
//!     --backend http://127.0.0.1:A/mcp=http://127.0.0.1:AA \
//!     --backend http://127.0.0.1:B/mcp=http://127.0.0.1:BB
//! ```
//!
//! Each `--backend` is a replica's MCP endpoint and its admin listener (`/readyz`). Every
//! request goes to the next ready replica (see `shoal_testkit::proxy`); each answered request
//! is printed to stderr. Runs until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use shoal_testkit::proxy::{Backend, RoundRobinProxy};

const USAGE: &str = "usage: rr-proxy --listen ADDR --backend MCP_URL=ADMIN_URL [--backend …]";

fn main() -> ExitCode {
    let (listen, backends) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("rr-proxy: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rr-proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let proxy = match RoundRobinProxy::bind(listen, backends, true).await {
            Ok(proxy) => proxy,
            Err(error) => {
                eprintln!("rr-proxy: cannot listen on {listen}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let names: Vec<String> = proxy
            .backends()
            .iter()
            .map(|b| b.name().to_owned())
            .collect();
        eprintln!(
            "rr-proxy: serving {} in front of {}",
            proxy.url(),
            names.join(", ")
        );
        proxy.run_until_signal().await;
        ExitCode::SUCCESS
    })
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(SocketAddr, Vec<Backend>), String> {
    let mut listen = None;
    let mut backends = Vec::new();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let value = value()?;
                listen = Some(
                    value
                        .parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {value:?}: {e}"))?,
                );
            }
            "--backend" => backends.push(Backend::parse(&value()?)?),
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let listen = listen.ok_or("--listen is required")?;
    if backends.is_empty() {
        return Err("at least one --backend is required".into());
    }
    Ok((listen, backends))
}
