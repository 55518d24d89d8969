//! The conformance suite against three `shoal` replicas sharing one Redis, behind the
//! testkit's round-robin proxy (`rr-proxy`): every request of every scenario lands on another
//! replica than the one before, as behind a Kubernetes Service at its worst.
//!
//! What runs, each on free loopback ports, logging under `target/xtask/cluster/`:
//! `redis-server` (no persistence), three `shoal serve --tools conformance --session-host
//! redis://… --node-id replica-<i>`, and `rr-proxy` in front of them. The suite's baseline is
//! `tests/conformance/expected-failures-cluster.yaml` (when present): the scenarios that fail
//! only because requests move across replicas. Results go to
//! `target/conformance-results-cluster`.
//!
//! With [`RedisMode::Cluster`] (CI step `conformance-redis-cluster`) the one `redis-server` is
//! replaced by a three-master Redis Cluster (`redis-server --cluster-enabled yes` ×3 joined by
//! `redis-cli --cluster create`, no replicas) and the replicas get `--session-host
//! redis-cluster://…`; logs go to `target/xtask/redis-cluster/`, the baseline is
//! `tests/conformance/expected-failures-redis-cluster.yaml`, results go to
//! `target/conformance-results-redis-cluster`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Repo;
use crate::cmd;
use crate::conformance;
use crate::server::{self, ToolSet, free_ports, http_get_status};
use crate::tools::Tools;

/// How many `shoal` replicas run behind the proxy.
const REPLICAS: usize = 3;
/// How many masters the Redis Cluster has.
const REDIS_MASTERS: usize = 3;
/// A Redis Cluster node's bus port is its client port plus this.
const CLUSTER_BUS_OFFSET: u16 = 10_000;
/// Redis Cluster client ports are picked from this range (bus ports stay below 65 000).
const CLUSTER_PORTS: std::ops::Range<u16> = 21_000..55_000;
/// Overrides the `redis-cli` binary.
const ENV_REDIS_CLI: &str = "SHOAL_REDIS_CLI";
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
const LOG_TAIL_LINES: usize = 40;

/// What the replicas share their sessions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedisMode {
    /// One `redis-server`, `redis://…`.
    Single,
    /// A three-master Redis Cluster, `redis-cluster://…`.
    Cluster,
}

impl RedisMode {
    /// The known-failures baseline, relative to the workspace root.
    fn expected_failures(self) -> &'static str {
        match self {
            Self::Single => "tests/conformance/expected-failures-cluster.yaml",
            Self::Cluster => "tests/conformance/expected-failures-redis-cluster.yaml",
        }
    }

    /// Where results go, relative to the target directory.
    fn results_dir(self) -> &'static str {
        match self {
            Self::Single => "conformance-results-cluster",
            Self::Cluster => "conformance-results-redis-cluster",
        }
    }

    /// Where the processes log, relative to the target directory.
    fn log_dir(self) -> &'static str {
        match self {
            Self::Single => "xtask/cluster",
            Self::Cluster => "xtask/redis-cluster",
        }
    }
}

/// Builds `shoal` and `rr-proxy`, starts Redis (one server or a Cluster, per `mode`), the
/// replicas and the proxy, and runs the suite (or only `scenario`) through the proxy.
pub(crate) fn run(
    repo: &Repo,
    tools: &Tools,
    scenario: Option<&str>,
    mode: RedisMode,
) -> Result<()> {
    let shoal = server::build(repo, tools)?;
    let proxy_binary = build_proxy(repo, tools)?;
    conformance::install(repo, tools)?;
    let redis_binary = redis_server()?;

    let log_dir = repo.target().join(mode.log_dir());
    fs::create_dir_all(&log_dir).with_context(|| format!("cannot create {}", log_dir.display()))?;
    let mut processes = Vec::new();

    let redis_url = match mode {
        RedisMode::Single => {
            let [redis_addr] = free_ports()?;
            let mut redis = Command::new(&redis_binary);
            redis
                .args(["--port", &redis_addr.port().to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .arg("--dir")
                .arg(&log_dir);
            let redis = Process::spawn("redis", &mut redis, &log_dir)?;
            processes.push(redis);
            wait_until(&mut processes[0], || redis_pings(redis_addr))?;
            format!("redis://{redis_addr}")
        }
        RedisMode::Cluster => start_redis_cluster(&redis_binary, &log_dir, &mut processes)?,
    };

    let mut backends = Vec::new();
    for i in 0..REPLICAS {
        let [listen, admin] = free_ports()?;
        let node_id = format!("replica-{i}");
        let mut replica = Command::new(&shoal);
        replica
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .arg("--tools")
            .arg(ToolSet::Conformance.to_string())
            .args(["--session-host", &redis_url])
            .args(["--node-id", &node_id])
            .current_dir(repo.root());
        processes.push(Process::spawn(&node_id, &mut replica, &log_dir)?);
        backends.push(format!("http://{listen}/mcp=http://{admin}"));
        let last = processes.len() - 1;
        wait_until(&mut processes[last], || {
            matches!(http_get_status(admin, "/readyz"), Ok(200))
        })?;
    }

    let [proxy_addr] = free_ports()?;
    let mut proxy = Command::new(&proxy_binary);
    proxy.arg("--listen").arg(proxy_addr.to_string());
    for backend in &backends {
        proxy.arg("--backend").arg(backend);
    }
    processes.push(Process::spawn("rr-proxy", &mut proxy, &log_dir)?);
    let last = processes.len() - 1;
    // Bound means ready: connections wait in its backlog until it has probed every replica.
    wait_until(&mut processes[last], || {
        TcpStream::connect_timeout(&proxy_addr, PROBE_TIMEOUT).is_ok()
    })?;
    let url = format!("http://{proxy_addr}/mcp");
    println!("{REPLICAS} shoal replicas on {redis_url} are ready behind {url}");

    let outcome = conformance::run_suite(
        repo,
        tools,
        &url,
        scenario,
        &repo.root().join(mode.expected_failures()),
        mode.results_dir(),
    );
    if outcome.is_err() {
        for process in &processes {
            eprintln!("{}", process.log_tail());
        }
    }
    // Stop the proxy first, then the replicas, then Redis.
    while let Some(mut process) = processes.pop() {
        process.stop();
    }
    outcome
}

/// Builds `rr-proxy` and returns its path.
pub(crate) fn build_proxy(repo: &Repo, tools: &Tools) -> Result<PathBuf> {
    cmd::run(tools.apply(&mut repo.cargo([
        "build",
        "--locked",
        "-p",
        "shoal-testkit",
        "--bin",
        "rr-proxy",
    ])))?;
    let binary = repo.target().join("debug").join("rr-proxy");
    if !binary.is_file() {
        bail!("cargo built rr-proxy but {} is missing", binary.display());
    }
    Ok(binary)
}

/// `$SHOAL_REDIS_SERVER`, else `redis-server` from `PATH` (the tools step installs it).
pub(crate) fn redis_server() -> Result<PathBuf> {
    if let Some(binary) = std::env::var_os(ENV_REDIS_SERVER).filter(|b| !b.is_empty()) {
        return Ok(binary.into());
    }
    cmd::which("redis-server").context(
        "redis-server is not on PATH: install it (`cargo xtask ci` does) or set SHOAL_REDIS_SERVER",
    )
}

/// Starts [`REDIS_MASTERS`] `redis-server --cluster-enabled yes` (each in its own directory
/// under `log_dir`, for its `nodes.conf`), joins them with `redis-cli --cluster create`, waits
/// for `cluster_state:ok` on each, and returns `redis-cluster://<first master>`.
fn start_redis_cluster(
    redis_binary: &Path,
    log_dir: &Path,
    processes: &mut Vec<Process>,
) -> Result<String> {
    let cli = redis_cli()?;
    let ports = cluster_ports(REDIS_MASTERS)?;
    let first = processes.len();
    for (i, port) in ports.iter().enumerate() {
        let dir = log_dir.join(format!("redis-{i}"));
        // A stale nodes.conf from an earlier run would name another cluster.
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut redis = Command::new(redis_binary);
        redis
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&dir);
        processes.push(Process::spawn(&format!("redis-{i}"), &mut redis, log_dir)?);
    }
    for (i, port) in ports.iter().enumerate() {
        let addr = SocketAddr::from(([127, 0, 0, 1], *port));
        wait_until(&mut processes[first + i], || redis_pings(addr))?;
    }
    let mut create = Command::new(&cli);
    create.args(["--cluster", "create"]);
    for port in &ports {
        create.arg(format!("127.0.0.1:{port}"));
    }
    create.args(["--cluster-replicas", "0", "--cluster-yes"]);
    cmd::run(&mut create)?;
    for (i, port) in ports.iter().enumerate() {
        let addr = SocketAddr::from(([127, 0, 0, 1], *port));
        wait_until(&mut processes[first + i], || cluster_ok(addr))?;
    }
    println!("a Redis Cluster of {REDIS_MASTERS} masters is ok on ports {ports:?}");
    Ok(format!("redis-cluster://127.0.0.1:{}", ports[0]))
}

/// `count` loopback ports in [`CLUSTER_PORTS`] that are free, and whose bus ports are too.
fn cluster_ports(count: usize) -> Result<Vec<u16>> {
    let span = CLUSTER_PORTS.end - CLUSTER_PORTS.start;
    // Start somewhere that differs between runs, so that parallel runs rarely collide.
    let seed = u16::try_from(std::process::id() % u32::from(span)).unwrap_or(0);
    let mut ports: Vec<u16> = Vec::with_capacity(count);
    for step in 0..span {
        let port = CLUSTER_PORTS.start + (seed + step) % span;
        let bus = port + CLUSTER_BUS_OFFSET;
        let clash = ports.iter().any(|&p| {
            p == port || p + CLUSTER_BUS_OFFSET == port || port + CLUSTER_BUS_OFFSET == p
        });
        if !clash && port_free(port) && port_free(bus) {
            ports.push(port);
            if ports.len() == count {
                return Ok(ports);
            }
        }
    }
    bail!("no {count} free loopback ports with free cluster bus ports (+{CLUSTER_BUS_OFFSET})")
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `$SHOAL_REDIS_CLI`, else `redis-cli` from `PATH` (the tools step installs it).
fn redis_cli() -> Result<PathBuf> {
    if let Some(binary) = std::env::var_os(ENV_REDIS_CLI).filter(|b| !b.is_empty()) {
        return Ok(binary.into());
    }
    cmd::which("redis-cli").context(
        "redis-cli is not on PATH: install redis-tools (`cargo xtask ci` does) or set SHOAL_REDIS_CLI",
    )
}

/// Whether the Redis Cluster node on `addr` reports `cluster_state:ok` and knows every master.
fn cluster_ok(addr: SocketAddr) -> bool {
    let attempt = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
        stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
        stream.write_all(b"CLUSTER INFO\r\n")?;
        let mut reply = Vec::new();
        let mut buf = [0_u8; 4096];
        // `$<len>\r\n<body>\r\n`: read until the whole bulk string is in.
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            if let Some((head, body)) = text.split_once("\r\n") {
                let len: usize = head.trim_start_matches('$').parse().unwrap_or(0);
                if body.len() >= len + 2 {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&reply);
        Ok(text.contains("cluster_state:ok")
            && text.contains(&format!("cluster_known_nodes:{REDIS_MASTERS}")))
    };
    attempt().unwrap_or(false)
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
