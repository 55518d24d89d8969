//! `listen_kill9`: stateless-era listeners ([`ListenLoad`]) while the replica holding the most
//! listen streams is killed with SIGKILL every ~3 s and started again 1 s later, as in `kill9`. The streams it held
//! break; each listener listens again at once (on another replica) and must receive, exactly
//! once, every update raised after its new stream was acknowledged.

use std::time::{Duration, Instant};

use std::collections::BTreeSet;

use shoal_testkit::cluster::ShoalCluster;

use crate::kill9::Random;
use crate::listen_checker::ListenChecker;
use crate::listen_rolling_restart::{LISTENERS, TOOLS};
use crate::listen_workload::{ListenConfig, ListenLoad};
use crate::workload::tag_of;
use crate::{Env, Faults, Ran, RunFuture, Scenario};

/// The replica holding the most open listen streams (the proxy's log says where each was
/// opened), if any is open.
fn busiest(cluster: &ShoalCluster, checker: &ListenChecker) -> Option<usize> {
    let open: BTreeSet<String> = checker.open_stream_tags().into_iter().collect();
    let mut held = vec![0_usize; cluster.len()];
    for served in cluster.proxy().served() {
        if tag_of(&served).is_some_and(|tag| open.contains(tag)) {
            held[served.backend] += 1;
        }
    }
    (0..held.len())
        .filter(|&i| held[i] > 0)
        .max_by_key(|&i| held[i])
}

/// Pause between a kill and the restart of the same replica.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// Pause between a replica being ready again and the next kill.
const UP_FOR: Duration = Duration::from_secs(2);

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "listen_kill9",
        description: "listen streams (2026-07-28) while the replica holding most is SIGKILLed every ~3 s \
                      and restarted 1 s later; listeners listen again, nothing raised after is lost",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let mut cluster = env.cluster_builder().tools(TOOLS).start().await;
    let config = ListenConfig::for_duration(LISTENERS, env.duration);
    let started = Instant::now();
    let load = ListenLoad::start(&cluster.url(), &config).await;
    let mut faults = Faults::default();
    let mut random = Random::from_clock();
    let notes = vec![format!("random seed {}", random.0)];
    tokio::time::sleep(Duration::from_secs(1)).await;
    // At least one kill, then as many as the duration allows.
    while faults.total() == 0 || started.elapsed() + DOWN_FOR + UP_FOR <= env.duration {
        let victim =
            busiest(&cluster, load.checker()).unwrap_or_else(|| random.below(cluster.len()));
        load.checker().replica_killed(Instant::now());
        cluster.kill(victim);
        faults.add("SIGKILL replica");
        tokio::time::sleep(DOWN_FOR).await;
        cluster.restart(victim).await;
        tokio::time::sleep(UP_FOR).await;
    }
    let (ran, verdict) = load.finish(&env, started, faults, notes).await;
    if verdict.breaks == 0 {
        env.checker
            .violation("no listen stream broke under the kills: the scenario proved nothing");
    }
    ran
}
