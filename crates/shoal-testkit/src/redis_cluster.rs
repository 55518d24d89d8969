//! A throwaway three-master Redis Cluster for tests: three `redis-server --cluster-enabled yes`
//! on loopback ports of their own, joined by `redis-cli --cluster create` (no replicas, slots
//! split in three), in a temporary directory, killed on drop.
//!
//! [`RedisCluster::start_with_replicas`] adds one replica per master (six nodes, a
//! `cluster-node-timeout` of one second) and [`RedisCluster::failover`] promotes a master's
//! replica, gracefully (`CLUSTER FAILOVER` sent to the replica) or the hard way (the master
//! killed, the replica elected once the master is judged failed).
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

/// How many masters the cluster has.
pub const MASTERS: usize = 3;
/// How long the masters may take to answer `PING`, and the cluster to reach `cluster_state:ok`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a failover may take, until the cluster is ok again with the replica promoted.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// `cluster-node-timeout` without replicas (nothing fails over) and with them (fast failovers).
const NODE_TIMEOUT_MS: &str = "5000";
const NODE_TIMEOUT_WITH_REPLICAS_MS: &str = "1000";
/// The offset of the cluster bus port from the client port (fixed by Redis).
const BUS_OFFSET: u16 = 10_000;
/// Client ports are drawn from `LOW_PORT..HIGH_PORT` (bus ports then stay below 65 000).
const LOW_PORT: u16 = 20_000;
const HIGH_PORT: u16 = 55_000;

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// Three `redis-server` masters (and optionally a replica of each) forming one Redis Cluster
/// on `127.0.0.1`.
#[derive(Debug)]
pub struct RedisCluster {
    /// Client ports of the current masters, by shard (slot range, in slot order).
    ports: Vec<u16>,
    /// The replica of each shard's master, if it has a live one.
    replica_ports: Vec<Option<u16>>,
    with_replicas: bool,
    dir: PathBuf,
    /// Every node started, by port; `None` once killed.
    children: Vec<(u16, Option<Child>)>,
}

/// How [`RedisCluster::failover`] promotes a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// `CLUSTER FAILOVER` sent to the replica: it catches up with the master, which stops
    /// taking writes meanwhile, then takes over; the old master becomes its replica.
    Graceful,
    /// `kill -9` of the master: the replica is elected once the master is judged failed
    /// (after `cluster-node-timeout`); writes not yet replicated are lost.
    Hard,
}

/// What a [`RedisCluster::failover`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverReport {
    /// The shard's master before.
    pub old_master: u16,
    /// The replica promoted.
    pub new_master: u16,
    /// From the fault (command sent, or kill) until every live node reported
    /// `cluster_state:ok` with the replica as master.
    pub took: Duration,
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
        Self::start_inner(false).await
    }

    /// Starts three masters and three replicas (`--cluster-replicas 1`, `cluster-node-timeout`
    /// 1000 ms), waits until the cluster is ok and every replica is in sync with its master.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and when a replica does not sync within 20 s.
    pub async fn start_with_replicas() -> Self {
        Self::start_inner(true).await
    }

    async fn start_inner(with_replicas: bool) -> Self {
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
                replica_ports: Vec::new(),
                with_replicas,
                dir: dir.clone(),
                children: Vec::new(),
            };
            // Ports free when probed may be taken before Redis binds them: start over.
            if cluster.spawn_nodes(attempt).await {
                cluster.create();
                cluster.wait_ok().await;
                if with_replicas {
                    cluster.learn_shards().await;
                    cluster.wait_replicas_synced().await;
                }
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

    /// [`url`](Self::url) naming every node as a seed (`?node=127.0.0.1:<port>&…`): a client
    /// that loses the first one can still ask the others for the topology.
    pub fn url_with_every_node(&self) -> String {
        let others: Vec<String> = self
            .children
            .iter()
            .map(|(port, _)| *port)
            .filter(|port| *port != self.ports[0])
            .map(|port| format!("node=127.0.0.1:{port}"))
            .collect();
        if others.is_empty() {
            self.url()
        } else {
            format!("{}?{}", self.url(), others.join("&"))
        }
    }

    /// `redis://127.0.0.1:<port>` of each master, for inspecting one node alone.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The client ports of the current masters, by shard (in slot order; a failover replaces
    /// its shard's entry).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The client port of the live replica of each shard's master (`None` without replicas, or
    /// after a hard failover until [`rejoin`](Self::rejoin)).
    pub fn replica_ports(&self) -> &[Option<u16>] {
        &self.replica_ports
    }

    /// Kills every node (SIGKILL).
    pub fn kill(&mut self) {
        for (_, child) in &mut self.children {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Promotes the replica of shard `shard`'s master (`0..MASTERS`) and waits until every live
    /// node reports `cluster_state:ok` with it as master, at most [`FAILOVER_TIMEOUT`].
    /// Afterwards [`ports`](Self::ports)`[shard]` is the new master; after a graceful failover
    /// the old master is its replica, after a hard one the shard has no replica until
    /// [`rejoin`](Self::rejoin).
    ///
    /// # Panics
    ///
    /// Without a live replica for the shard, or when the failover does not complete in time.
    pub async fn failover(&mut self, shard: usize, how: Failover) -> FailoverReport {
        let old_master = self.ports[shard];
        let new_master = self.replica_ports[shard]
            .unwrap_or_else(|| panic!("shard {shard} (master {old_master}) has no live replica"));
        let started = Instant::now();
        match how {
            Failover::Graceful => {
                let reply = command(new_master, "CLUSTER FAILOVER").await;
                assert!(
                    reply.as_deref().is_some_and(|r| r.starts_with("+OK")),
                    "CLUSTER FAILOVER on {new_master}: {reply:?}"
                );
            }
            Failover::Hard => self.kill_node(old_master),
        }
        let deadline = started + FAILOVER_TIMEOUT;
        self.wait_role(new_master, "master", deadline).await;
        self.ports[shard] = new_master;
        self.replica_ports[shard] = match how {
            Failover::Graceful => {
                self.wait_role(old_master, "slave", deadline).await;
                Some(old_master)
            }
            Failover::Hard => None,
        };
        self.wait_live_ok(deadline).await;
        FailoverReport {
            old_master,
            new_master,
            took: started.elapsed(),
        }
    }

    /// Starts the killed former master of shard `shard` again (same port, same `nodes.conf`):
    /// it rejoins as the replica of the promoted one; waits until it is in sync.
    ///
    /// # Panics
    ///
    /// When the shard has a live replica, no killed node, or the node does not sync in 20 s.
    pub async fn rejoin(&mut self, shard: usize) {
        assert!(
            self.replica_ports[shard].is_none(),
            "shard {shard} already has a replica"
        );
        let index = self
            .children
            .iter()
            .position(|(port, child)| child.is_none() && !self.ports.contains(port))
            .unwrap_or_else(|| panic!("no killed node to rejoin shard {shard}"));
        let port = self.children[index].0;
        self.children[index].1 = Some(self.spawn_node(port));
        let deadline = Instant::now() + START_TIMEOUT;
        self.wait_role(port, "slave", deadline).await;
        self.replica_ports[shard] = Some(port);
        self.wait_replicas_synced().await;
    }

    /// Kills one node (SIGKILL).
    fn kill_node(&mut self, port: u16) {
        if let Some((_, child)) = self.children.iter_mut().find(|(p, _)| *p == port)
            && let Some(mut child) = child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn_node(&self, port: u16) -> Child {
        let binary =
            std::env::var_os("SHOAL_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let node_dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("a directory per node");
        let node_timeout = if self.with_replicas {
            NODE_TIMEOUT_WITH_REPLICAS_MS
        } else {
            NODE_TIMEOUT_MS
        };
        Command::new(&binary)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", node_timeout])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .args(["--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (install it or set SHOAL_REDIS_SERVER)")
    }

    /// Spawns every node on fresh ports; true once each answers `PING`.
    async fn spawn_nodes(&mut self, attempt: usize) -> bool {
        let count = self.node_count();
        let ports = free_port_pairs(count, attempt);
        if ports.len() < count {
            return false;
        }
        for &port in &ports {
            let child = self.spawn_node(port);
            self.children.push((port, Some(child)));
        }
        // Until `learn_shards`: the first three are the masters (`redis-cli` makes them so).
        self.ports = ports[..MASTERS].to_vec();
        self.replica_ports = vec![None; MASTERS];
        let deadline = Instant::now() + START_TIMEOUT;
        for (port, child) in &mut self.children {
            loop {
                if crate::redis::ping(*port).await {
                    break;
                }
                let exited = child
                    .as_mut()
                    .is_none_or(|c| c.try_wait().ok().flatten().is_some());
                if exited || Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        true
    }

    fn node_count(&self) -> usize {
        if self.with_replicas {
            2 * MASTERS
        } else {
            MASTERS
        }
    }

    /// Reads `CLUSTER NODES` until it lists each master with slots and a replica for each: a
    /// replica shows as a master without slots until its role has spread through the cluster.
    async fn learn_shards(&mut self) {
        let port = self.ports[0];
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let nodes = command(port, "CLUSTER NODES")
                .await
                .unwrap_or_else(|| panic!("CLUSTER NODES on {port} did not answer"));
            if let Some((ports, replica_ports)) = shards(&nodes) {
                self.ports = ports;
                self.replica_ports = replica_ports.into_iter().map(Some).collect();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "CLUSTER NODES on {port} did not settle on {MASTERS} masters with slots and a \
                 replica each within {}s:\n{nodes}",
                START_TIMEOUT.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until each live replica reports its link to the master up and no sync running.
    async fn wait_replicas_synced(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        for &port in self.replica_ports.iter().flatten() {
            loop {
                let info = command(port, "INFO replication").await.unwrap_or_default();
                if info.contains("master_link_status:up")
                    && info.contains("master_sync_in_progress:0")
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "replica {port} not in sync within {}s: {info}\n(see {})",
                    START_TIMEOUT.as_secs(),
                    self.dir.display()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Waits until the node on `port` reports `role:<role>` (`master` or `slave`).
    async fn wait_role(&self, port: u16, role: &str, deadline: Instant) {
        let wanted = format!("role:{role}");
        loop {
            let info = command(port, "INFO replication").await.unwrap_or_default();
            if info.contains(&wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {port} is not {role} in time: {info}\n(see {})",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every live node reports `cluster_state:ok` and lists the current masters as
    /// masters.
    async fn wait_live_ok(&self, deadline: Instant) {
        let live: Vec<u16> = self
            .children
            .iter()
            .filter(|(_, child)| child.is_some())
            .map(|(port, _)| *port)
            .collect();
        for port in live {
            loop {
                let info = command(port, "CLUSTER INFO").await.unwrap_or_default();
                let nodes = command(port, "CLUSTER NODES").await.unwrap_or_default();
                let masters_known = self.ports.iter().all(|master| {
                    nodes.lines().any(|line| {
                        line.contains(&format!("127.0.0.1:{master}@"))
                            && line.contains("master")
                            && !line.contains("fail")
                    })
                });
                if info.contains("cluster_state:ok") && masters_known {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {port} does not see the cluster ok with masters {:?}: {info}\n{nodes}\n(see {})",
                    self.ports,
                    self.dir.display()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`.
    fn create(&self) {
        let cli = std::env::var_os("SHOAL_REDIS_CLI").unwrap_or_else(|| "redis-cli".into());
        let mut command = Command::new(cli);
        command.args(["--cluster", "create"]);
        for (port, _) in &self.children {
            command.arg(format!("127.0.0.1:{port}"));
        }
        let replicas = if self.with_replicas { "1" } else { "0" };
        let output = command
            .args(["--cluster-replicas", replicas, "--cluster-yes"])
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

    /// Waits until every node reports `cluster_state:ok` and knows all the nodes.
    async fn wait_ok(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let count = self.node_count();
        for &(port, _) in &self.children {
            loop {
                let info = command(port, "CLUSTER INFO").await.unwrap_or_default();
                let ok = info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{count}"));
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

    /// The directory the nodes log in (`<port>/redis.log`).
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

/// The masters with slots of a `CLUSTER NODES` reply, in slot order, and each one's replica;
/// `None` unless there are exactly [`MASTERS`] of them, each with a replica.
fn shards(nodes: &str) -> Option<(Vec<u16>, Vec<u16>)> {
    // `<id> <ip:port@bus[,hostname]> <flags> <master id or -> … <slot ranges…>`
    let mut masters = Vec::new();
    let mut replicas = Vec::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let Some(node_port) = fields[1]
            .split(['@', ','])
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
        else {
            continue;
        };
        let first_slot = fields
            .get(8)
            .and_then(|r| r.split('-').next())
            .and_then(|s| s.parse::<u32>().ok());
        match first_slot {
            Some(slot) if fields[2].contains("master") => {
                masters.push((slot, fields[0], node_port));
            }
            _ if fields[2].contains("slave") => replicas.push((fields[3], node_port)),
            _ => {}
        }
    }
    if masters.len() != MASTERS {
        return None;
    }
    masters.sort();
    let replica_ports = masters
        .iter()
        .map(|(_, id, _)| {
            replicas
                .iter()
                .find(|(master, _)| master == id)
                .map(|(_, port)| *port)
        })
        .collect::<Option<Vec<u16>>>()?;
    Some((
        masters.iter().map(|(_, _, port)| *port).collect(),
        replica_ports,
    ))
}

/// One inline command over a fresh connection; the first whole reply read within one second.
async fn command(port: u16, line: &str) -> Option<String> {
    crate::redis::command(port, line, Duration::from_secs(1))
        .await
        .ok()
}
