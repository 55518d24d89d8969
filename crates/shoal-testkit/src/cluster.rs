//! [`ShoalCluster`]: several `shoal serve` processes sharing one Redis, behind a
//! [`RoundRobinProxy`], as replicas behind a Kubernetes Service.
//!
//! ```no_run
//! # async fn example() {
//! use shoal_testkit::McpClient;
//! use shoal_testkit::cluster::ShoalCluster;
//!
//! // In a test of the crate that builds the binary: env!("CARGO_BIN_EXE_shoal").
//! let cluster = ShoalCluster::builder("target/debug/shoal").replicas(3).start().await;
//! let client = McpClient::connect(cluster.url()).await;
//! # let _ = client;
//! # }
//! ```
//!
//! Each replica gets `--session-host redis://…`, `--node-id replica-<i>`, free `--listen` and
//! `--admin-listen` ports (kept across [`ShoalCluster::restart`]) and its own log file under a
//! temporary directory (or the one given to [`ClusterBuilder::log_dir`]). Redis is a fresh
//! [`RedisServer`] unless the builder is given a URL (or [`ClusterBuilder::memory_host`], for
//! one replica). The proxy listens on a free port unless given one
//! ([`ClusterBuilder::proxy_addr`], to know its URL before the replicas start) and can add
//! headers to every request ([`ClusterBuilder::proxy_header`]). Dropping the cluster kills
//! every process; the logs of a temporary directory are removed, except when the thread is
//! panicking (a failed test), when their directory is printed instead; those of a given
//! directory are kept.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::proxy::{Backend, RoundRobinProxy};
use crate::redis::RedisServer;

/// How long a replica has to answer `/readyz` with 200 after it starts.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a replica has to exit after SIGTERM ([`ShoalCluster::terminate`]).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends `child` SIGTERM, as an orchestrator stopping it does, and waits for it to exit:
/// its status, or `None` after [`EXIT_TIMEOUT`].
///
/// # Panics
///
/// When the signal cannot be sent (it exited already) or the child cannot be waited for.
pub(crate) async fn sigterm_and_wait(child: &mut Child) -> Option<ExitStatus> {
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap_or_else(|e| panic!("running `kill -TERM {pid}`: {e}"));
    assert!(sent.success(), "`kill -TERM {pid}` failed: {sent}");
    let deadline = tokio::time::Instant::now() + EXIT_TIMEOUT;
    loop {
        let polled = child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for {pid}: {e}"));
        if polled.is_some() || tokio::time::Instant::now() >= deadline {
            return polled;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
/// How many lines of a replica's log a failure message shows.
const LOG_TAIL_LINES: usize = 40;
/// How many times [`ClusterBuilder::start`] starts a replica on fresh ports when one of its
/// ports was taken between picking it and binding it.
const PORT_ATTEMPTS: usize = 5;

/// `--session-host` of [`ClusterBuilder::memory_host`].
const MEMORY_HOST: &str = "memory";

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// How to start a [`ShoalCluster`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    binary: PathBuf,
    replicas: usize,
    tools: String,
    redis_url: Option<String>,
    args: Vec<OsString>,
    log_dir: Option<PathBuf>,
    /// Where the proxy listens (default: a free loopback port).
    proxy_addr: Option<SocketAddr>,
    /// What the proxy adds to every request that lacks it.
    proxy_headers: HeaderMap,
    /// `SHOAL_REQUEST_STATE_KEYS` of every replica: one random key per cluster, so that a
    /// multi round-trip retry succeeds on any replica, as in a deployment that shares a Secret.
    request_state_keys: String,
    /// More environment variables of every `shoal serve` (secrets such as
    /// `SHOAL_AUTH_TOKENS`, which have no flag).
    env: Vec<(OsString, OsString)>,
}

/// `shoal serve` replicas on one Redis behind a round-robin proxy; killed on drop.
#[derive(Debug)]
pub struct ShoalCluster {
    config: ClusterBuilder,
    redis: Option<RedisServer>,
    redis_url: String,
    dir: PathBuf,
    /// Whether `dir` was given ([`ClusterBuilder::log_dir`]): kept on drop.
    keep_logs: bool,
    replicas: Vec<Replica>,
    proxy: RoundRobinProxy,
}

#[derive(Debug)]
struct Replica {
    node_id: String,
    listen: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
    /// Where the log of the current process starts in `log`.
    log_start: u64,
    child: Option<Child>,
}

// === impl ClusterBuilder ===

impl ClusterBuilder {
    /// How many replicas (default 3).
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// `--tools` of every replica (default `demo`).
    pub fn tools(mut self, tools: impl Into<String>) -> Self {
        self.tools = tools.into();
        self
    }

    /// Use the Redis at `url` instead of starting one.
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Keep sessions in each replica's memory (`--session-host memory`) and start no Redis:
    /// for one replica behind the proxy, since replicas then share nothing.
    pub fn memory_host(self) -> Self {
        self.redis_url(MEMORY_HOST)
    }

    /// One more environment variable for every `shoal serve` (`SHOAL_AUTH_TOKENS`, say).
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// One more argument for every `shoal serve` (`--drain-timeout`, say).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Bind the proxy to `addr` instead of a free loopback port: its URL is then known before
    /// the replicas start (for their `--public-url`, say).
    pub fn proxy_addr(mut self, addr: SocketAddr) -> Self {
        self.proxy_addr = Some(addr);
        self
    }

    /// A header the proxy adds to every forwarded request that has none of that name (see
    /// [`RoundRobinProxy::bind_with_headers`]); its value is never logged.
    pub fn proxy_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.proxy_headers.append(name, value);
        self
    }

    /// Where the replicas log (`replica-<i>.log`, appended to), kept after the cluster is
    /// dropped (default: a temporary directory, removed on drop unless the thread panics).
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// Starts Redis (unless given a URL), every replica and the proxy; returns once every
    /// replica answers `/readyz` with 200 and the proxy has seen them ready.
    ///
    /// # Panics
    ///
    /// When a process cannot start, a replica is not ready within [`READY_TIMEOUT`] (the
    /// message carries the tail of its log) or the proxy cannot bind its address.
    pub async fn start(self) -> ShoalCluster {
        assert!(self.replicas > 0, "a cluster needs at least one replica");
        let (redis, redis_url) = match &self.redis_url {
            Some(url) => (None, url.clone()),
            None => {
                let redis = RedisServer::start().await;
                let url = redis.url();
                (Some(redis), url)
            }
        };
        let keep_logs = self.log_dir.is_some();
        let dir = self.log_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "shoal-cluster-{}-{}",
                std::process::id(),
                NEXT_DIR.fetch_add(1, Ordering::Relaxed)
            ))
        });
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("creating the log directory {}: {e}", dir.display()));
        let mut replicas = Vec::with_capacity(self.replicas);
        for i in 0..self.replicas {
            let [listen, admin] = free_ports();
            let mut replica = Replica {
                node_id: format!("replica-{i}"),
                listen,
                admin,
                log: dir.join(format!("replica-{i}.log")),
                log_start: 0,
                child: None,
            };
            replica.spawn(&self, &redis_url);
            replicas.push(replica);
        }
        for replica in &mut replicas {
            // A free port may be taken (by another test's process, or as the local port of an
            // outgoing connection) before the replica binds it: start it on other ports. The
            // proxy does not know the ports yet.
            let mut attempts = 1;
            while !replica.wait_ready().await {
                assert!(
                    attempts < PORT_ATTEMPTS,
                    "{} found its ports taken {PORT_ATTEMPTS} times\n{}",
                    replica.node_id,
                    replica.log_tail()
                );
                attempts += 1;
                [replica.listen, replica.admin] = free_ports();
                replica.spawn(&self, &redis_url);
            }
        }
        let backends = replicas
            .iter()
            .map(|r| {
                Backend::new(
                    r.node_id.clone(),
                    &format!("http://{}/mcp", r.listen),
                    &format!("http://{}", r.admin),
                )
            })
            .collect();
        let proxy_addr = self
            .proxy_addr
            .unwrap_or_else(|| (Ipv4Addr::LOCALHOST, 0).into());
        let proxy = RoundRobinProxy::bind_with_headers(
            proxy_addr,
            backends,
            false,
            self.proxy_headers.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("binding the proxy to {proxy_addr}: {e}"));
        for i in 0..replicas.len() {
            proxy.wait_ready(i, true, READY_TIMEOUT).await;
        }
        ShoalCluster {
            config: self,
            redis,
            redis_url,
            dir,
            keep_logs,
            replicas,
            proxy,
        }
    }
}

// === impl ShoalCluster ===

impl ShoalCluster {
    /// A cluster of the `shoal` binary at `binary` (3 replicas, `--tools demo`, a fresh Redis).
    pub fn builder(binary: impl Into<PathBuf>) -> ClusterBuilder {
        ClusterBuilder {
            binary: binary.into(),
            replicas: 3,
            tools: "demo".into(),
            redis_url: None,
            args: Vec::new(),
            log_dir: None,
            request_state_keys: format!(
                "cluster:{}",
                base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
            ),
            env: Vec::new(),
            proxy_addr: None,
            proxy_headers: HeaderMap::new(),
        }
    }

    /// The MCP endpoint through the proxy, `http://127.0.0.1:<port>/mcp`.
    pub fn url(&self) -> String {
        self.proxy.url()
    }

    /// The proxy, whose [`RoundRobinProxy::served`] says where each request landed.
    pub fn proxy(&self) -> &RoundRobinProxy {
        &self.proxy
    }

    /// The proxy, to serve its metrics ([`RoundRobinProxy::serve_metrics`]).
    pub fn proxy_mut(&mut self) -> &mut RoundRobinProxy {
        &mut self.proxy
    }

    /// How many replicas the cluster has.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether the cluster has no replica (never: [`ClusterBuilder::start`] needs one).
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Replica `i`'s node id, `replica-<i>`.
    pub fn node_id(&self, i: usize) -> &str {
        &self.replicas[i].node_id
    }

    /// Replica `i`'s own MCP endpoint, bypassing the proxy.
    pub fn replica_url(&self, i: usize) -> String {
        format!("http://{}/mcp", self.replicas[i].listen)
    }

    /// Replica `i`'s MCP listener (its endpoint is [`ShoalCluster::replica_url`]).
    pub fn replica_addr(&self, i: usize) -> SocketAddr {
        self.replicas[i].listen
    }

    /// Replica `i`'s admin listener, `http://127.0.0.1:<port>`.
    pub fn admin_url(&self, i: usize) -> String {
        format!("http://{}", self.replicas[i].admin)
    }

    /// Replica `i`'s admin listener's address (`/readyz`, `/metrics`).
    pub fn admin_addr(&self, i: usize) -> SocketAddr {
        self.replicas[i].admin
    }

    /// The Redis URL every replica uses (`memory` with [`ClusterBuilder::memory_host`]).
    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    /// The Redis the cluster started (`None` when it was given a URL).
    pub fn redis(&self) -> Option<&RedisServer> {
        self.redis.as_ref()
    }

    /// The Redis the cluster started, to kill or restart it.
    pub fn redis_mut(&mut self) -> Option<&mut RedisServer> {
        self.redis.as_mut()
    }

    /// Where the replicas' logs are.
    pub fn log_dir(&self) -> &Path {
        &self.dir
    }

    /// Everything replica `i` has logged so far (across restarts).
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(&self.replicas[i].log).unwrap_or_default()
    }

    /// Kills replica `i` (SIGKILL) and reaps it; returns at once, before the proxy notices.
    pub fn kill(&mut self, i: usize) {
        self.replicas[i].kill();
    }

    /// Sends replica `i` SIGTERM and waits until it exits (it drains first).
    ///
    /// # Panics
    ///
    /// When it is not running, or does not exit within [`EXIT_TIMEOUT`].
    pub async fn terminate(&mut self, i: usize) -> ExitStatus {
        let replica = &mut self.replicas[i];
        let child = replica
            .child
            .as_mut()
            .unwrap_or_else(|| panic!("{} is not running", replica.node_id));
        match sigterm_and_wait(child).await {
            Some(status) => {
                replica.child = None;
                status
            }
            None => panic!(
                "{} did not exit within {EXIT_TIMEOUT:?} of SIGTERM\n{}",
                replica.node_id,
                replica.log_tail()
            ),
        }
    }

    /// Starts replica `i` again (killing it first if it runs) on the same ports, and waits
    /// until it is ready and the proxy has seen it ready.
    ///
    /// # Panics
    ///
    /// When it is not ready within [`READY_TIMEOUT`].
    pub async fn restart(&mut self, i: usize) {
        let replica = &mut self.replicas[i];
        replica.kill();
        replica.spawn(&self.config, &self.redis_url);
        // The proxy knows its ports: another process that took one is a failure.
        assert!(
            replica.wait_ready().await,
            "{} cannot bind its ports again\n{}",
            replica.node_id,
            replica.log_tail()
        );
        self.proxy.wait_ready(i, true, READY_TIMEOUT).await;
    }
}

impl Drop for ShoalCluster {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            replica.kill();
        }
        // A directory the caller gave is theirs to keep.
        if self.keep_logs {
            return;
        }
        if std::thread::panicking() {
            eprintln!("shoal cluster logs are kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// === impl Replica ===

/// A replica whose cluster never finished starting (a panic in [`ClusterBuilder::start`])
/// must not outlive the test either.
impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Replica {
    fn spawn(&mut self, config: &ClusterBuilder, redis_url: &str) {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log.display()));
        self.log_start = log.metadata().map_or(0, |m| m.len());
        let _ = writeln!(
            log,
            "--- shoal-testkit: starting {} on {} (admin {}) ---",
            self.node_id, self.listen, self.admin
        );
        let stderr = log
            .try_clone()
            .unwrap_or_else(|e| panic!("sharing {}: {e}", self.log.display()));
        let child = Command::new(&config.binary)
            .arg("serve")
            .arg("--listen")
            .arg(self.listen.to_string())
            .arg("--admin-listen")
            .arg(self.admin.to_string())
            .args(["--session-host", redis_url])
            .args(["--node-id", &self.node_id])
            .args(["--tools", &config.tools])
            .args(&config.args)
            .env("SHOAL_REQUEST_STATE_KEYS", &config.request_state_keys)
            .envs(config.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", config.binary.display()));
        self.child = Some(child);
    }

    /// Polls `/readyz` until 200: true then; false when the process exited because one of
    /// its ports was in use.
    ///
    /// # Panics
    ///
    /// When it exits for another reason, or is not ready within [`READY_TIMEOUT`].
    async fn wait_ready(&mut self) -> bool {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("building the HTTP client");
        let url = format!("http://{}/readyz", self.admin);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let exited = self.child.as_mut().map(|c| c.try_wait().ok().flatten());
            match exited {
                None => panic!("{} is not running", self.node_id),
                Some(Some(_)) if self.port_was_taken() => {
                    self.child = None;
                    return false;
                }
                Some(Some(status)) => panic!(
                    "{} exited before it was ready ({status})\n{}",
                    self.node_id,
                    self.log_tail()
                ),
                Some(None) => {}
            }
            let last = match http.get(&url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return true,
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => error.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{} was not ready within {READY_TIMEOUT:?} (last /readyz: {last})\n{}",
                    self.node_id,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean it is already gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the current process's log says a port was in use (`shoal serve` fails with
    /// "binding `<addr>`: Address already in use").
    fn port_was_taken(&self) -> bool {
        let text = fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(self.log_start)
            .unwrap_or(usize::MAX)
            .min(text.len());
        String::from_utf8_lossy(&text[start..]).contains("Address already in use")
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "--- last {} lines of {} ---\n{}\n--- end ---",
            tail.len(),
            self.log.display(),
            tail.join("\n")
        )
    }
}

/// Two distinct free loopback ports (both bound before either is released).
pub(crate) fn free_ports() -> [SocketAddr; 2] {
    let bind =
        || TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a free loopback port");
    let (first, second) = (bind(), bind());
    [
        first.local_addr().expect("the bound address"),
        second.local_addr().expect("the bound address"),
    ]
}
