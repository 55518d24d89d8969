//! Child processes that xtask starts itself, blocking: [`Process`], a child logging to a file
//! and stopped on drop; [`wait_until`] its readiness; [`redis_pings`]; and where the
//! `redis-server` binary is. For what the test kit does not start: one `shoal serve`
//! (`server`), Prometheus (`observability`) and the benchmark's targets (`bench`).
//!
//! Redis, `shoal` replicas and the round-robin proxy (`cluster`, `observability`, `auth`)
//! are the test kit's, started through [`crate::topology`].

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Overrides the `redis-server` binary, as in the testkit.
const ENV_REDIS_SERVER: &str = "SHOAL_REDIS_SERVER";
/// How long each process has to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause between two readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Connect, read and write timeout of one probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a process has to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How many lines of each log a failure prints.
pub(crate) const LOG_TAIL_LINES: usize = 40;

/// `$SHOAL_REDIS_SERVER`, else `redis-server` from `PATH` (the tools step installs it).
pub(crate) fn redis_server() -> Result<PathBuf> {
    if let Some(binary) = std::env::var_os(ENV_REDIS_SERVER).filter(|b| !b.is_empty()) {
        return Ok(binary.into());
    }
    cmd::which("redis-server").context(
        "redis-server is not on PATH: install it (`cargo xtask ci` does) or set SHOAL_REDIS_SERVER",
    )
}

/// A child process logging to `<log_dir>/<name>.log`, stopped on drop.
#[derive(Debug)]
pub(crate) struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

// === impl Process ===

impl Process {
    pub(crate) fn spawn(name: &str, command: &mut Command, log_dir: &Path) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let stdout =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .with_context(|| format!("cannot share {}", log.display()))?;
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        println!("$ {}  > {}", cmd::display(command), log.display());
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// The process id (for `/proc/<pid>/status`).
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited.
    pub(crate) fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = match fs::read(&self.log) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) => return format!("(cannot read {}: {error})", self.log.display()),
        };
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "--- last {} lines of {} ---\n{}\n--- end of {} ---",
            tail.len(),
            self.log.display(),
            tail.join("\n"),
            self.name
        )
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`].
    pub(crate) fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.child.id().to_string();
        let terminated = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if terminated {
            let started = Instant::now();
            while started.elapsed() < STOP_TIMEOUT {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "{} did not exit within {}s of SIGTERM; killing it",
                self.name,
                STOP_TIMEOUT.as_secs()
            );
        }
        // Errors here mean it is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `ready` until it holds, failing if `process` exits or [`READY_TIMEOUT`] passes.
pub(crate) fn wait_until(process: &mut Process, mut ready: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < READY_TIMEOUT {
        if let Some(status) = process
            .child
            .try_wait()
            .with_context(|| format!("cannot poll {}", process.name))?
        {
            bail!(
                "{} exited before it was ready ({status})\n{}",
                process.name,
                process.log_tail()
            );
        }
        if ready() {
            return Ok(());
        }
        thread::sleep(POLL_INTERVAL);
    }
    bail!(
        "{} was not ready within {}s\n{}",
        process.name,
        READY_TIMEOUT.as_secs(),
        process.log_tail()
    )
}

/// Whether Redis on `addr` answers `PING` with `+PONG`.
pub(crate) fn redis_pings(addr: SocketAddr) -> bool {
    let attempt = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
        stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0_u8; 7];
        stream.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}
