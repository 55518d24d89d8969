//! The conformance suite against three `shoal` replicas sharing one Redis, behind the
//! testkit's round-robin proxy: every request of every scenario lands on another replica than
//! the one before, as behind a Kubernetes Service at its worst.
//!
//! The topology is the test kit's own (`shoal_testkit::cluster::ShoalCluster` on a
//! `shoal_testkit::redis::RedisServer` or `redis_cluster::RedisCluster`), the code the fault
//! suite and the tests use, run here on [`crate::topology::Runtime`] while the suite (a
//! blocking child process) drives it. What runs, each on free loopback ports: `redis-server` (no
//! persistence), three `shoal serve --tools conformance --session-host redis://… --node-id
//! replica-<i>`, and the round-robin proxy in front of them (in this process). Logs go under
//! `target/xtask/cluster/`: `replica-<i>.log`, Redis's log (copied from its temporary
//! directory when the run ends) and `rr-proxy.log` (every request the proxy answered, and where).
//! The suite's baseline is `tests/conformance/expected-failures-cluster.yaml` (when present):
//! the scenarios that fail only because requests move across replicas. Results go to
//! `target/conformance-results-cluster`.
//!
//! With [`RedisMode::Cluster`] (CI step `conformance-redis-cluster`) the one `redis-server` is
//! replaced by a three-master Redis Cluster (`redis-server --cluster-enabled yes` ×3 joined by
//! `redis-cli --cluster create`, no replicas) and the replicas get `--session-host
//! redis-cluster://…`; logs go to `target/xtask/redis-cluster/`, the baseline is
//! `tests/conformance/expected-failures-redis-cluster.yaml`, results go to
//! `target/conformance-results-redis-cluster`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::redis::RedisServer;
use shoal_testkit::redis_cluster::RedisCluster;

use crate::Repo;
use crate::conformance::{self, Revision};
use crate::process;
use crate::server::{self, ToolSet};
use crate::tools::Tools;
use crate::topology::{Runtime, clear_dir, copy_log, log_tail, write_proxy_log};

/// How many `shoal` replicas run behind the proxy.
const REPLICAS: usize = 3;

/// What the replicas share their sessions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedisMode {
    /// One `redis-server`, `redis://…`.
    Single,
    /// A three-master Redis Cluster, `redis-cluster://…`.
    Cluster,
}

impl RedisMode {
    /// The session era's known-failures baseline, relative to the workspace root (the stateless
    /// era's is the same on every topology).
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

/// The Redis the replicas share; stopped on drop (after the cluster, see [`Topology`]).
enum Redis {
    Single(RedisServer),
    Cluster(RedisCluster),
}

/// Everything [`run`] started. Fields drop in order: the replicas and the proxy, then Redis.
struct Topology {
    cluster: ShoalCluster,
    redis: Redis,
}

/// Builds `shoal`, starts Redis (one server or a Cluster, per `mode`), the replicas and the
/// proxy, and runs the suite at each of `revisions` (or only `scenario`) through the proxy.
pub(crate) fn run(
    repo: &Repo,
    tools: &Tools,
    scenario: Option<&str>,
    mode: RedisMode,
    revisions: &[Revision],
) -> Result<()> {
    let shoal = server::build(repo, tools)?;
    conformance::install(repo, tools)?;
    // The test kit finds it the same way; this says how to get it when it is missing.
    process::redis_server()?;

    let log_dir = repo.target().join(mode.log_dir());
    clear_dir(&log_dir)?;

    // The proxy serves from the runtime's workers while this thread waits for the suite.
    let runtime = Runtime::new()?;
    let topology = runtime.run(
        "the cluster did not start",
        start(shoal, mode, log_dir.clone()),
    )?;
    let url = topology.cluster.url();
    println!(
        "{REPLICAS} shoal replicas on {} are ready behind {url}",
        topology.cluster.redis_url()
    );

    // Every revision on the same replicas: both eras are served by one endpoint.
    let outcome = revisions.iter().try_for_each(|&revision| {
        let expected_failures = match revision {
            Revision::Session => mode.expected_failures(),
            Revision::Modern => revision.expected_failures(),
        };
        conformance::run_suite(
            repo,
            tools,
            &url,
            scenario,
            revision,
            &repo.root().join(expected_failures),
            &revision.results_dir(mode.results_dir()),
        )
    });
    if let Err(error) = keep_logs(&topology, &log_dir) {
        eprintln!("{error:#}");
    }
    if outcome.is_err() {
        for i in 0..topology.cluster.len() {
            eprintln!(
                "{}",
                log_tail(&log_dir.join(format!("{}.log", topology.cluster.node_id(i))))
            );
        }
    }
    // Stop the proxy and the replicas, then Redis.
    runtime.stop(topology);
    outcome
}

/// Starts Redis, the replicas (logging into `log_dir`) and the proxy on the test kit.
///
/// # Panics
///
/// As the test kit's helpers do, when a process does not start or get ready.
async fn start(shoal: PathBuf, mode: RedisMode, log_dir: PathBuf) -> Topology {
    let (redis, url) = match mode {
        RedisMode::Single => {
            let redis = RedisServer::start().await;
            let url = redis.url();
            (Redis::Single(redis), url)
        }
        RedisMode::Cluster => {
            let cluster = RedisCluster::start().await;
            println!(
                "a Redis Cluster of {} masters is ok on ports {:?}",
                shoal_testkit::redis_cluster::MASTERS,
                cluster.ports()
            );
            let url = cluster.url();
            (Redis::Cluster(cluster), url)
        }
    };
    let cluster = ShoalCluster::builder(shoal)
        .replicas(REPLICAS)
        .tools(ToolSet::Conformance.to_string())
        .redis_url(url)
        .log_dir(log_dir)
        .start()
        .await;
    Topology { cluster, redis }
}

/// Writes what the proxy served to `rr-proxy.log` and copies Redis's logs (which live in the
/// test kit's temporary directories, removed on drop) into `log_dir`.
fn keep_logs(topology: &Topology, log_dir: &Path) -> Result<()> {
    write_proxy_log(topology.cluster.proxy(), &log_dir.join("rr-proxy.log"))?;
    let logs: Vec<(PathBuf, String)> = match &topology.redis {
        Redis::Single(redis) => vec![(redis.dir().join("redis.log"), "redis.log".to_owned())],
        Redis::Cluster(cluster) => cluster
            .ports()
            .iter()
            .enumerate()
            .map(|(i, port)| {
                (
                    cluster.dir().join(port.to_string()).join("redis.log"),
                    format!("redis-{i}.log"),
                )
            })
            .collect(),
    };
    for (from, name) in logs {
        copy_log(&from, &log_dir.join(name))?;
    }
    Ok(())
}
