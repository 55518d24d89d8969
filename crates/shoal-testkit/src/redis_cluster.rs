//! A throwaway three-master Redis Cluster for tests: three `redis-server --cluster-enabled yes`
//! on loopback ports of their own, joined by `redis-cli --cluster create` (no replicas, slots
//! split in three), in a temporary directory, killed on drop.
//!
//! ```no_run
//! # async fn example() {
//! let cluster = shoal_testkit::redis_cluster::RedisCluster::start().await;
//! let url = cluster.url(); // redis-cluster://127.0.0.1:<port of the first master>
//! # let _ = url;
//! # }
//! ```
//!
//! The binaries are `$SHOAL_REDIS_SERVER` and `$SHOAL_REDIS_CLI` if set, else `redis-server`
//! and `redis-cli` from `PATH`. Each master's cluster bus listens on its port + 10000, so ports
//! are picked from the range 20000–54999 such that both are free.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How many masters the cluster has.
pub const MASTERS: usize = 3;
/// How long the masters may take to answer `PING`, and the cluster to reach `cluster_state:ok`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The offset of the cluster bus port from the client port (fixed by Redis).
const BUS_OFFSET: u16 = 10_000;
/// Client ports are drawn from `LOW_PORT..HIGH_PORT` (bus ports then stay below 65 000).
const LOW_PORT: u16 = 20_000;
const HIGH_PORT: u16 = 55_000;

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// Three `redis-server` masters forming one Redis Cluster on `127.0.0.1`.
#[derive(Debug)]
pub struct RedisCluster {
    ports: Vec<u16>,
    dir: PathBuf,
    children: Vec<Child>,
}

impl RedisCluster {
    /// Starts three masters, creates the cluster and waits until every master reports
    /// `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When a binary is missing, a server does not start, `redis-cli --cluster create` fails,
    /// or the cluster is not ok within 20 s.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "shoal-redis-cluster-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        for attempt in 0..5 {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("a temporary directory for the cluster");
            let mut cluster = RedisCluster {
                ports: Vec::new(),
                dir: dir.clone(),
                children: Vec::new(),
            };
            // Ports free when probed may be taken before Redis binds them: start over.
            if cluster.spawn_masters(attempt).await {
                cluster.create();
                cluster.wait_ok().await;
                return cluster;
            }
            cluster.kill();
        }
        panic!("the Redis Cluster did not start (see {})", dir.display());
    }

    /// `redis-cluster://127.0.0.1:<port of the first master>`: `fred` finds the others.
    pub fn url(&self) -> String {
        format!("redis-cluster://127.0.0.1:{}", self.ports[0])
    }

    /// `redis://127.0.0.1:<port>` of each master, for inspecting one node alone.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The client ports of the masters.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Kills every master (SIGKILL).
    pub fn kill(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Spawns the masters on fresh ports; true once each answers `PING`.
    async fn spawn_masters(&mut self, attempt: usize) -> bool {
        let binary =
            std::env::var_os("SHOAL_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        self.ports = free_port_pairs(MASTERS, attempt);
        if self.ports.len() < MASTERS {
            return false;
        }
        for port in self.ports.clone() {
            let node_dir = self.dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("a directory per master");
            let child = Command::new(&binary)
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "5000"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .arg("--dir")
                .arg(&node_dir)
                .args(["--logfile", "redis.log"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs (install it or set SHOAL_REDIS_SERVER)");
            self.children.push(child);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for (i, &port) in self.ports.iter().enumerate() {
            loop {
                if ping(port).await {
                    break;
                }
                let exited = self.children[i].try_wait().ok().flatten().is_some();
                if exited || Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        true
    }

    /// `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`.
    fn create(&self) {
        let cli = std::env::var_os("SHOAL_REDIS_CLI").unwrap_or_else(|| "redis-cli".into());
        let mut command = Command::new(cli);
        command.args(["--cluster", "create"]);
        for port in &self.ports {
            command.arg(format!("127.0.0.1:{port}"));
        }
        let output = command
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs (install redis-tools or set SHOAL_REDIS_CLI)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits until every master reports `cluster_state:ok` and knows all the masters.
    async fn wait_ok(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        for &port in &self.ports {
            loop {
                let info = command(port, b"CLUSTER INFO\r\n").await.unwrap_or_default();
                let ok = info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{MASTERS}"));
                if ok {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster is not ok on port {port} within {}s: {info}\n(see {})",
                    START_TIMEOUT.as_secs(),
                    self.dir.display()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The directory the masters log in (`<port>/redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `count` ports in `LOW_PORT..HIGH_PORT` whose bus ports (+10000) are free too, starting at
/// a point that varies with the process, the time and `attempt` (parallel tests spread out).
fn free_port_pairs(count: usize, attempt: usize) -> Vec<u16> {
    let span = usize::from(HIGH_PORT - LOW_PORT);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    let seed = (std::process::id() as usize)
        .wrapping_mul(7919)
        .wrapping_add(nanos)
        .wrapping_add(attempt.wrapping_mul(104_729));
    let mut ports = Vec::with_capacity(count);
    for step in 0..span {
        let offset = u16::try_from((seed + step * 97) % span).unwrap_or(0);
        let port = LOW_PORT + offset;
        if ports
            .iter()
            .any(|&p: &u16| p == port || p + BUS_OFFSET == port || port + BUS_OFFSET == p)
        {
            continue;
        }
        if is_free(port) && is_free(port + BUS_OFFSET) {
            ports.push(port);
            if ports.len() == count {
                break;
            }
        }
    }
    ports
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// One `PING` over a fresh connection, bounded to one second.
async fn ping(port: u16) -> bool {
    command(port, b"PING\r\n")
        .await
        .is_some_and(|reply| reply.starts_with("+PONG"))
}

/// One inline command over a fresh connection; the first reply read within one second.
async fn command(port: u16, line: &[u8]) -> Option<String> {
    let attempt = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        conn.write_all(line).await?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if complete(&reply) {
                break;
            }
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .and_then(Result::ok)
}

/// Whether `reply` holds one whole RESP simple string, error or bulk string.
fn complete(reply: &[u8]) -> bool {
    let Some(line_end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match reply.first() {
        Some(b'$') => {
            let len: usize = std::str::from_utf8(&reply[1..line_end])
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            reply.len() >= line_end + 2 + len + 2
        }
        _ => true,
    }
}
