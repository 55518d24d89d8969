//! `rr-proxy`: the testkit's round-robin reverse proxy as a process, for `cargo xtask`.
//!
//! ```text
//! rr-proxy --listen 127.0.0.1:PORT \
//!     --backend http://127.0.0.1:A/mcp=http://127.0.0.1:AA \
//!     --backend http://127.0.0.1:B/mcp=http://127.0.0.1:BB \
//!     [--header 'NAME: VALUE']... [--header-env NAME=ENV_VAR]... \
//!     [--metrics-listen 127.0.0.1:MPORT]
//! ```
//!
//! Each `--backend` is a replica's MCP endpoint and its admin listener (`/readyz`). Every
//! request goes to the next ready replica (see `shoal_testkit::proxy`); each answered request
//! is printed to stderr. Runs until SIGTERM or Ctrl-C.
//!
//! `--header 'Authorization: Bearer …'` adds that header to every forwarded request that has
//! none of that name (a request's own header wins); repeat it for several headers or values.
//! `--header-env Authorization=PROXY_AUTHORIZATION` does the same with the value read from the
//! environment variable `PROXY_AUTHORIZATION`, which keeps secrets such as bearer tokens out of
//! process lists: prefer it for those. Header values are never printed.
//!
//! `--metrics-listen ADDR` serves Prometheus metrics at `GET /metrics` on a separate listener
//! (`rr_proxy_requests_total{backend,status}`, `rr_proxy_connect_failures_total{backend}`,
//! `rr_proxy_backend_ready{backend}`; see `shoal_testkit::proxy`), the backend label being
//! each replica's MCP `host:port`. Without it there is no metrics listener.

use std::net::SocketAddr;
use std::process::ExitCode;

use http::HeaderMap;
use shoal_testkit::proxy::{Backend, RoundRobinProxy, header_pair, parse_header};

const USAGE: &str = "usage: rr-proxy --listen ADDR --backend MCP_URL=ADMIN_URL [--backend …] \
                     [--header 'NAME: VALUE']… [--header-env NAME=ENV_VAR]… \
                     [--metrics-listen ADDR]";

/// What the command line asks for.
struct Args {
    listen: SocketAddr,
    backends: Vec<Backend>,
    headers: HeaderMap,
    /// Where to serve `GET /metrics`, if anywhere.
    metrics: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let args = parse(std::env::args().skip(1), |name| std::env::var(name).ok());
    shoal_testkit::cli::main("rr-proxy", USAGE, args, serve)
}

/// Serves until SIGTERM or Ctrl-C; the error says what could not be bound.
async fn serve(args: Args) -> Result<ExitCode, String> {
    let Args {
        listen,
        backends,
        headers,
        metrics,
    } = args;
    let added: Vec<String> = headers.keys().map(ToString::to_string).collect();
    let mut proxy = RoundRobinProxy::bind_with_headers(listen, backends, true, headers)
        .await
        .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
    let metrics = match metrics {
        None => String::new(),
        Some(addr) => {
            let bound = proxy
                .serve_metrics(addr)
                .await
                .map_err(|error| format!("cannot serve metrics on {addr}: {error}"))?;
            format!(", metrics at http://{bound}/metrics")
        }
    };
    let names: Vec<String> = proxy
        .backends()
        .iter()
        .map(|b| b.name().to_owned())
        .collect();
    let adding = if added.is_empty() {
        String::new()
    } else {
        format!(", adding {} when missing", added.join(", "))
    };
    eprintln!(
        "rr-proxy: serving {} in front of {}{adding}{metrics}",
        proxy.url(),
        names.join(", ")
    );
    proxy.run_until_signal().await;
    Ok(ExitCode::SUCCESS)
}

/// Parses the arguments; `env` reads the variables that `--header-env` names.
fn parse(
    mut args: impl Iterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Args, String> {
    let mut listen = None;
    let mut metrics = None;
    let mut backends = Vec::new();
    let mut headers = HeaderMap::new();
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
            "--metrics-listen" => {
                let value = value()?;
                metrics = Some(
                    value
                        .parse::<SocketAddr>()
                        .map_err(|e| format!("--metrics-listen {value:?}: {e}"))?,
                );
            }
            "--backend" => backends.push(Backend::parse(&value()?)?),
            // The value may be a secret: errors name the header, never the value.
            "--header" => {
                let (name, value) =
                    parse_header(&value()?).map_err(|e| format!("--header: {e}"))?;
                headers.append(name, value);
            }
            "--header-env" => {
                let spec = value()?;
                let (name, var) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--header-env {spec:?} is not NAME=ENV_VAR"))?;
                let value = env(var).ok_or_else(|| {
                    format!("--header-env {spec}: the environment variable {var} is not set")
                })?;
                let (name, value) =
                    header_pair(name, &value).map_err(|e| format!("--header-env {spec}: {e}"))?;
                headers.append(name, value);
            }
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let listen = listen.ok_or("--listen is required")?;
    if backends.is_empty() {
        return Err("at least one --backend is required".into());
    }
    Ok(Args {
        listen,
        backends,
        headers,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> impl Iterator<Item = String> {
        line.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn env(name: &str) -> Option<String> {
        (name == "PROXY_AUTHORIZATION").then(|| "Bearer from-env".to_owned())
    }

    #[test]
    fn parses_headers_from_flags_and_the_environment() {
        let parsed = parse(
            args(&[
                "--listen",
                "127.0.0.1:0",
                "--backend",
                "http://127.0.0.1:1/mcp=http://127.0.0.1:2",
                "--header",
                "X-Tenant: t1",
                "--header-env=Authorization=PROXY_AUTHORIZATION",
            ]),
            env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.headers["x-tenant"], "t1");
        assert_eq!(parsed.headers["authorization"], "Bearer from-env");
        assert!(parsed.headers["authorization"].is_sensitive());
        assert_eq!(parsed.metrics, None);
    }

    #[test]
    fn parses_the_metrics_listener() {
        let parsed = parse(
            args(&[
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen=127.0.0.1:9464",
                "--backend",
                "http://127.0.0.1:1/mcp=http://127.0.0.1:2",
            ]),
            env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        let error = parse(args(&["--metrics-listen", "nope"]), env)
            .map(|_| ())
            .unwrap_err();
        assert!(error.contains("--metrics-listen"), "{error}");
    }

    #[test]
    fn header_errors_do_not_show_values() {
        let base = [
            "--listen",
            "127.0.0.1:0",
            "--backend",
            "http://127.0.0.1:1/mcp=http://127.0.0.1:2",
        ];
        let fail = |extra: &[&str]| {
            let line: Vec<&str> = base.iter().chain(extra).copied().collect();
            parse(args(&line), env).map(|_| ()).unwrap_err()
        };
        assert!(fail(&["--header-env", "Authorization=UNSET"]).contains("UNSET is not set"));
        assert!(fail(&["--header-env", "Authorization"]).contains("NAME=ENV_VAR"));
        let error = fail(&["--header", "X-Secret: top\u{1}secret"]);
        assert!(!error.contains("top"), "{error}");
    }
}
