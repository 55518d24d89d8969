//! The servers under test, each started on free loopback ports and stopped (proxy, replicas,
//! then Redis) when its [`Deployment`] is dropped.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::probe;
use super::redis::Redis;
use crate::process::{self, Process};
use crate::server::{free_ports, http_get_status, post_initialize};

/// How many replicas the cluster target runs.
const REPLICAS: usize = 3;
/// The request-state key ring of every replica (`ID:KEY`, 32 zero bytes in base64): one key
/// shared by all, so that a multi round-trip retry succeeds on any replica, as in a deployment
/// that shares a Secret. A constant is enough on loopback: nothing here is secret.
const REQUEST_STATE_KEYS: &str = "bench:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
/// Connect timeout of the proxy's readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The binaries and scripts the harness runs.
#[derive(Debug)]
pub(crate) struct Binaries {
    pub(crate) shoal: PathBuf,
    pub(crate) shoal_load: PathBuf,
    pub(crate) rr_proxy: PathBuf,
    pub(crate) axum_echo: PathBuf,
    pub(crate) rmcp_echo: PathBuf,
    pub(crate) redis_server: PathBuf,
    pub(crate) node: PathBuf,
    /// `bench/ts-sdk-echo/server.mjs`.
    pub(crate) ts_server: PathBuf,
    /// `bench/ts2-sdk-echo/server.mjs`.
    pub(crate) ts2_server: PathBuf,
}

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `bench/axum-echo`: the loopback ceiling.
    Axum,
    /// `bench/rmcp-echo`: the official Rust SDK.
    Rmcp,
    /// `bench/ts-sdk-echo`: the official TypeScript SDK.
    TsSdk,
    /// `bench/ts2-sdk-echo`: the official TypeScript SDK 2.x, both eras on one endpoint.
    Ts2Sdk,
    /// One `shoal serve` with the memory host.
    ShoalMemory,
    /// One `shoal serve` on its own `redis-server`.
    ShoalRedis,
    /// Three `shoal serve` on one `redis-server` behind `rr-proxy`.
    ShoalCluster,
}

impl Target {
    pub(crate) const ALL: [Self; 7] = [
        Self::Axum,
        Self::Rmcp,
        Self::TsSdk,
        Self::Ts2Sdk,
        Self::ShoalMemory,
        Self::ShoalRedis,
        Self::ShoalCluster,
    ];

    /// The name `--only` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Rmcp => "rmcp",
            Self::TsSdk => "ts-sdk",
            Self::Ts2Sdk => "ts2-sdk",
            Self::ShoalMemory => "shoal-memory",
            Self::ShoalRedis => "shoal-redis",
            Self::ShoalCluster => "shoal-cluster",
        }
    }

    /// What the tables call it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Axum => "axum JSON echo (ceiling)",
            Self::Rmcp => "rmcp 3.9 (official Rust SDK)",
            Self::TsSdk => "TypeScript SDK 1.32.2",
            Self::Ts2Sdk => "TypeScript SDK 2.4.0 (server 2.4.0, node 2.1.2)",
            Self::ShoalMemory => "Shoal, memory host",
            Self::ShoalRedis => "Shoal, Redis host",
            Self::ShoalCluster => "Shoal, 3 replicas + rr-proxy",
        }
    }

    /// Whether it keeps its sessions in Redis.
    pub(crate) fn uses_redis(self) -> bool {
        matches!(self, Self::ShoalRedis | Self::ShoalCluster)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A started target.
#[derive(Debug)]
pub(crate) struct Deployment {
    pub(crate) target: Target,
    /// In start order; stopped in reverse.
    processes: Vec<Process>,
    /// Indices in `processes` of the MCP servers (whose memory counts).
    servers: Vec<usize>,
    /// Each replica's MCP URL (for client-side round robin).
    replica_urls: Vec<String>,
    /// The URL the load goes to (the proxy's for the cluster).
    pub(crate) url: String,
    /// Shoal's admin listeners (`/metrics`).
    admins: Vec<SocketAddr>,
    /// The Redis server, for the targets that use one.
    pub(crate) redis: Option<SocketAddr>,
}

/// Per-process settings some measurements need.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    /// Raise the servers' open-files soft limit to this (through `sh -c 'ulimit -n'`).
    pub(crate) open_files: Option<u64>,
    /// Shoal serves the conformance tools beside the demo ones (the listen trigger).
    pub(crate) conformance_tools: bool,
}

// === impl Deployment ===

impl Deployment {
    /// Starts `target` and waits until it answers `initialize`.
    pub(crate) fn start(
        target: Target,
        bins: &Binaries,
        log_dir: &Path,
        limits: Limits,
    ) -> Result<Self> {
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        let mut this = Self {
            target,
            processes: Vec::new(),
            servers: Vec::new(),
            replica_urls: Vec::new(),
            url: String::new(),
            admins: Vec::new(),
            redis: None,
        };
        match target {
            Target::Axum => {
                this.start_anchor("axum-echo", command(&bins.axum_echo, limits), log_dir)?
            }
            Target::Rmcp => {
                this.start_anchor("rmcp-echo", command(&bins.rmcp_echo, limits), log_dir)?
            }
            Target::TsSdk | Target::Ts2Sdk => {
                let (name, script) = match target {
                    Target::TsSdk => ("ts-sdk-echo", &bins.ts_server),
                    _ => ("ts2-sdk-echo", &bins.ts2_server),
                };
                let mut node = command(&bins.node, limits);
                node.arg(script);
                if let Some(dir) = script.parent() {
                    node.current_dir(dir);
                }
                this.start_anchor(name, node, log_dir)?;
            }
            Target::ShoalMemory => {
                this.start_replica(bins, "memory", 0, log_dir, limits)?;
            }
            Target::ShoalRedis => {
                let redis_url = this.start_redis(bins, log_dir)?;
                this.start_replica(bins, &redis_url, 0, log_dir, limits)?;
            }
            Target::ShoalCluster => {
                let redis_url = this.start_redis(bins, log_dir)?;
                let mut backends = Vec::new();
                for i in 0..REPLICAS {
                    let admin = this.start_replica(bins, &redis_url, i, log_dir, limits)?;
                    backends.push(format!("{}=http://{admin}", this.replica_urls[i]));
                }
                this.start_proxy(bins, &backends, log_dir)?;
            }
        }
        println!("{} is ready at {}", target.label(), this.url);
        Ok(this)
    }

    /// An anchor server: `--listen ADDR` (the TypeScript ones take it as their argument).
    fn start_anchor(&mut self, name: &str, mut command: Command, log_dir: &Path) -> Result<()> {
        let [listen] = free_ports()?;
        if matches!(self.target, Target::TsSdk | Target::Ts2Sdk) {
            command.arg(listen.to_string());
        } else {
            command.arg("--listen").arg(listen.to_string());
        }
        let process = Process::spawn(name, &mut command, log_dir)?;
        self.processes.push(process);
        self.servers.push(self.processes.len() - 1);
        self.wait_initialize(listen)?;
        self.url = format!("http://{listen}/mcp");
        self.replica_urls.push(self.url.clone());
        Ok(())
    }

    /// A fresh `redis-server` without persistence; returns its URL.
    fn start_redis(&mut self, bins: &Binaries, log_dir: &Path) -> Result<String> {
        let [addr] = free_ports()?;
        let mut redis = Command::new(&bins.redis_server);
        redis
            .args(["--port", &addr.port().to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            // 10,000 streams of one replica must not need 10,000 Redis clients, but if they
            // do, that is a figure to report, not a refusal.
            .args(["--maxclients", "20000"])
            .arg("--dir")
            .arg(log_dir);
        let mut process = Process::spawn("redis", &mut redis, log_dir)?;
        process::wait_until(&mut process, || process::redis_pings(addr))?;
        self.processes.push(process);
        self.redis = Some(addr);
        Ok(format!("redis://{addr}"))
    }

    /// `shoal serve --tools demo` (and `conformance` when `limits` asks) on `session_host`,
    /// with the shared request-state key ring; returns its admin address.
    fn start_replica(
        &mut self,
        bins: &Binaries,
        session_host: &str,
        index: usize,
        log_dir: &Path,
        limits: Limits,
    ) -> Result<SocketAddr> {
        let [listen, admin] = free_ports()?;
        let node_id = format!("bench-{index}");
        let tools = if limits.conformance_tools {
            "demo,conformance"
        } else {
            "demo"
        };
        let mut shoal = command(&bins.shoal, limits);
        shoal
            .arg("serve")
            .args(["--listen", &listen.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .args(["--tools", tools])
            .args(["--session-host", session_host])
            .args(["--node-id", &node_id])
            .env("SHOAL_REQUEST_STATE_KEYS", REQUEST_STATE_KEYS);
        let name = format!("shoal-{index}");
        let mut process = Process::spawn(&name, &mut shoal, log_dir)?;
        process::wait_until(&mut process, || {
            matches!(http_get_status(admin, "/readyz"), Ok(200))
        })?;
        self.processes.push(process);
        self.servers.push(self.processes.len() - 1);
        self.wait_initialize(listen)?;
        let url = format!("http://{listen}/mcp");
        self.url.clone_from(&url);
        self.replica_urls.push(url);
        self.admins.push(admin);
        Ok(admin)
    }

    fn start_proxy(&mut self, bins: &Binaries, backends: &[String], log_dir: &Path) -> Result<()> {
        let [listen] = free_ports()?;
        let mut proxy = Command::new(&bins.rr_proxy);
        proxy.args(["--listen", &listen.to_string()]);
        for backend in backends {
            proxy.args(["--backend", backend]);
        }
        let mut process = Process::spawn("rr-proxy", &mut proxy, log_dir)?;
        process::wait_until(&mut process, || {
            TcpStream::connect_timeout(&listen, PROBE_TIMEOUT).is_ok()
        })?;
        self.processes.push(process);
        self.wait_initialize(listen)?;
        self.url = format!("http://{listen}/mcp");
        Ok(())
    }

    /// Polls `initialize` on `addr` until it answers 200.
    fn wait_initialize(&mut self, addr: SocketAddr) -> Result<()> {
        let last = self.processes.len() - 1;
        process::wait_until(&mut self.processes[last], || {
            matches!(post_initialize(addr, addr), Ok((200, _)))
        })
    }

    /// Each replica's own URL (one for a single server), for client-side round robin.
    pub(crate) fn replica_urls(&self) -> &[String] {
        &self.replica_urls
    }

    /// The summed resident memory of the MCP server processes, in KiB.
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        self.servers
            .iter()
            .map(|&i| probe::rss_kib(self.processes[i].id()))
            .sum()
    }

    /// The sum over replicas of the samples of metric `name` with `labels` (0 for targets
    /// without an admin listener).
    pub(crate) fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        let mut sum = 0.0;
        for admin in &self.admins {
            let text = probe::http_get_body(*admin, "/metrics")?;
            sum += probe::metric_sum(&text, name, labels);
        }
        Ok(sum)
    }

    /// `tools/call` requests the replicas answered, all tools or only `tool`.
    pub(crate) fn tool_calls(&self, tool: Option<&str>) -> Result<f64> {
        let mut labels = vec![("mcp_method_name", "tools/call")];
        if let Some(tool) = tool {
            labels.push(("gen_ai_tool_name", tool));
        }
        self.metric("mcp_server_operation_duration_seconds_count", &labels)
    }

    /// `initialize` requests the replicas answered.
    pub(crate) fn initializes(&self) -> Result<f64> {
        self.metric(
            "mcp_server_operation_duration_seconds_count",
            &[("mcp_method_name", "initialize")],
        )
    }

    /// Redis round trips the replicas made.
    pub(crate) fn redis_round_trips(&self) -> Result<f64> {
        self.metric("shoal_redis_command_duration_seconds_count", &[])
    }

    /// A connection to this target's Redis.
    pub(crate) fn redis(&self) -> Result<Redis> {
        let addr = self
            .redis
            .with_context(|| format!("{} uses no Redis", self.target))?;
        Redis::connect(addr)
    }

    /// Whether every process still runs.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        for process in &mut self.processes {
            if process.has_exited() {
                anyhow::bail!(
                    "a process of {} exited\n{}",
                    self.target,
                    process.log_tail()
                );
            }
        }
        Ok(())
    }

    /// The tails of every process's log, for a failed measurement.
    pub(crate) fn log_tails(&self) -> String {
        self.processes
            .iter()
            .map(Process::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        while let Some(mut process) = self.processes.pop() {
            process.stop();
        }
    }
}

/// `program`, or `sh -c 'ulimit -n N && exec program'` when `limits` raises the open-files
/// limit; arguments added later go to `program` either way.
fn command(program: &Path, limits: Limits) -> Command {
    match limits.open_files {
        None => Command::new(program),
        Some(limit) => {
            let mut command = Command::new("sh");
            command
                .args(["-c", r#"ulimit -n "$0" && exec "$@""#])
                .arg(limit.to_string())
                .arg(program);
            command
        }
    }
}
