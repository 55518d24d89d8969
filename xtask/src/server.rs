//! Building `shoal` and running it for the client checks: [`Server`] starts
//! `shoal serve` on free loopback ports, waits for `/readyz`, and stops it when dropped, also
//! when a check fails. Its output goes to a log file under `target/xtask/`.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::Repo;
use crate::cmd;
use crate::process::{Process, wait_until};
use crate::tools::Tools;

/// Connect, read and write timeout of one `/readyz` probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A built-in tool set of `shoal serve --tools`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ToolSet {
    /// What the conformance suite's scenarios call.
    Conformance,
    /// `echo`, `count`, `ask_user`, `ask_model`: what the SDK client checks call.
    Demo,
}

impl fmt::Display for ToolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Conformance => "conformance",
            Self::Demo => "demo",
        })
    }
}

/// Builds the `shoal` binary and returns its path.
pub(crate) fn build(repo: &Repo, tools: &Tools) -> Result<PathBuf> {
    cmd::run(tools.apply(&mut repo.cargo([
        "build",
        "--locked",
        "-p",
        "shoal-server",
        "--bin",
        "shoal",
    ])))?;
    let binary = repo.target().join("debug").join("shoal");
    if !binary.is_file() {
        bail!("cargo built shoal but {} is missing", binary.display());
    }
    Ok(binary)
}

/// A running `shoal serve`, stopped on drop (SIGTERM first, so it drains as in production).
#[derive(Debug)]
pub(crate) struct Server {
    process: Process,
    listen: SocketAddr,
}

// === impl Server ===

impl Server {
    /// Starts `binary serve` with `tools` on free loopback ports and waits until `/readyz`
    /// answers 200.
    ///
    /// # Errors
    ///
    /// When it cannot start, exits, or is not ready in time; the error carries the tail of its
    /// log.
    pub(crate) fn start(repo: &Repo, binary: &Path, tools: ToolSet) -> Result<Self> {
        let [listen, admin] = free_ports()?;
        let log_dir = repo.target().join("xtask");
        fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .arg("--tools")
            .arg(tools.to_string())
            .current_dir(repo.root());
        let mut process = Process::spawn(&format!("shoal-{tools}"), &mut command, &log_dir)?;
        wait_until(&mut process, || {
            matches!(http_get_status(admin, "/readyz"), Ok(200))
        })?;
        let server = Self { process, listen };
        println!("shoal is ready at {}", server.mcp_url());
        Ok(server)
    }

    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub(crate) fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.listen)
    }

    /// Prints the last lines of the server's log, for a failed check.
    pub(crate) fn print_log_tail(&self) {
        eprintln!("{}", self.process.log_tail());
    }
}

/// `N` distinct free loopback ports. All are bound before any is released, so they differ;
/// another process could still take one before it is used, which is unlikely enough here.
pub(crate) fn free_ports<const N: usize>() -> Result<[SocketAddr; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a free port"))
        .collect::<Result<Vec<_>>>()?;
    let addrs = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<io::Result<Vec<_>>>()
        .context("cannot read a bound address")?;
    addrs
        .try_into()
        .map_err(|_| anyhow::anyhow!("bound the wrong number of ports"))
}

/// The status code of `GET path` on `addr`, over a fresh HTTP/1.1 connection.
pub(crate) fn http_get_status(addr: SocketAddr, path: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    // The status line is all we need: "HTTP/1.1 200 OK\r\n".
    let mut head = Vec::with_capacity(64);
    let mut buf = [0_u8; 64];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "not an HTTP status line: {:?}",
                    line.lines().next().unwrap_or("")
                ),
            )
        })
}

/// The `initialize` request of xtask's own checks.
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"xtask-check","version":"0"}}}"#;

/// `POST /mcp` with an `initialize` request to `addr` with `Host: host`; returns the status code and
/// the response head (status line and headers).
pub(crate) fn post_initialize(addr: SocketAddr, host: SocketAddr) -> io::Result<(u16, String)> {
    post_initialize_as(addr, host, None)
}

/// [`post_initialize`] with `Authorization: Bearer <token>` when `token` is set.
pub(crate) fn post_initialize_as(
    addr: SocketAddr,
    host: SocketAddr,
    token: Option<&str>,
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{authorization}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{INITIALIZE}",
        INITIALIZE.len()
    )?;
    let mut head = Vec::new();
    let mut buf = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "not an HTTP status line: {:?}",
                    head.lines().next().unwrap_or("")
                ),
            )
        })?;
    Ok((status, head))
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    /// Serves one connection with `response` and returns the request it read.
    fn serve_once(response: &'static str) -> (SocketAddr, thread::JoinHandle<String>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0_u8; 256];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                assert_ne!(n, 0, "client closed before the end of its request");
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(response.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (addr, handle)
    }

    #[test]
    fn reads_the_status_code() {
        let (addr, server) =
            serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(http_get_status(addr, "/readyz").unwrap(), 503);
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /readyz HTTP/1.1\r\n"),
            "{request:?}"
        );
    }

    #[test]
    fn rejects_a_non_http_answer() {
        let (addr, server) = serve_once("hello\n");
        let error = http_get_status(addr, "/readyz").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        server.join().unwrap();
    }

    #[test]
    fn free_ports_differ() {
        let [a, b] = free_ports().unwrap();
        assert_ne!(a.port(), b.port());
        assert!(a.ip().is_loopback() && b.ip().is_loopback());
    }
}
