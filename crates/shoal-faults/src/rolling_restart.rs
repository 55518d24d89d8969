//! `rolling_restart`: SIGTERM replica 0, wait for its exit, start it again, wait until it is
//! ready, then the next one, round after round, under the load. A draining replica closes its
//! streams with `retry` and clients resume elsewhere: nothing may be lost, and since every
//! handler finishes its drain, no call should even be abandoned.

use std::time::{Duration, Instant};

use shoal_testkit::cluster::ShoalCluster;

use crate::{Env, Faults, Ran, RunFuture, Scenario, Workload, WorkloadConfig};

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "rolling_restart",
        description: "SIGTERM each replica in turn, wait for exit, restart, wait ready",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let mut cluster = env
        .cluster_builder()
        // Lets the proxy see `/readyz` fail before the replica stops taking requests.
        .arg("--shutdown-delay")
        .arg("500ms")
        .start()
        .await;
    let load = Workload::start(&cluster.url(), &env.checker, WorkloadConfig::default());
    let mut faults = Faults::default();
    let mut notes = Vec::new();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let note = roll(&mut cluster, &env, &mut faults, started).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let load = load.stop().await;
    notes.push(note);
    Ran {
        load,
        faults,
        notes,
    }
}

/// SIGTERMs replica 0, waits for its exit, restarts it and waits until it is ready, then the
/// next one: at least one whole round, then as many replicas as `env.duration` since `started`
/// allows. Counts each in `faults`; an exit other than success is a violation. Returns the
/// note: how many restarts, the slowest exit.
pub(crate) async fn roll(
    cluster: &mut ShoalCluster,
    env: &Env,
    faults: &mut Faults,
    started: Instant,
) -> String {
    let mut i = 0;
    let mut slowest_exit = Duration::ZERO;
    while i < cluster.len() || started.elapsed() < env.duration {
        let replica = i % cluster.len();
        let stopping = Instant::now();
        let status = cluster.terminate(replica).await;
        slowest_exit = slowest_exit.max(stopping.elapsed());
        faults.add("SIGTERM replica");
        if !status.success() {
            env.checker.violation(format!(
                "{} exited with {status} after SIGTERM",
                cluster.node_id(replica)
            ));
        }
        cluster.restart(replica).await;
        i += 1;
    }
    format!("{i} restarts; slowest exit after SIGTERM {slowest_exit:.1?}")
}
