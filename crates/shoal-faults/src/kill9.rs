//! `kill9`: SIGKILL a random replica every ~3 s under the load, and start it again ~1 s later
//! with the same `--node-id`, as the kubelet restarts a crashed container in its pod (the Helm
//! chart's node id is the pod name). Streams the dead replica held are resumed on another;
//! calls whose handler died there must be answered with a clean "abandoned" error, never
//! silence. (This scenario found that a process restarted under its predecessor's node id
//! kept the dead one's calls unanswered: every process now adds a random suffix to its
//! configured node id.)

use std::time::{Duration, Instant};

use crate::{Env, Faults, Ran, RunFuture, Scenario, Workload, WorkloadConfig};

/// Pause between a kill and the restart of the same replica.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// Pause between a replica being ready again and the next kill.
const UP_FOR: Duration = Duration::from_secs(2);

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "kill9",
        description: "SIGKILL a random replica every ~3 s, restart it 1 s later (same --node-id)",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let mut cluster = env.cluster_builder().start().await;
    let load = Workload::start(&cluster.url(), &env.checker, WorkloadConfig::default());
    let mut faults = Faults::default();
    let mut random = Random::from_clock();
    let mut notes = vec![format!("random seed {}", random.0)];
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut back_up = Vec::new();
    while started.elapsed() + DOWN_FOR + UP_FOR <= env.duration {
        let victim = random.below(cluster.len());
        cluster.kill(victim);
        faults.add("SIGKILL replica");
        tokio::time::sleep(DOWN_FOR).await;
        let restarting = Instant::now();
        cluster.restart(victim).await;
        back_up.push(restarting.elapsed());
        tokio::time::sleep(UP_FOR).await;
    }
    let load = load.stop().await;
    if let Some(slowest) = back_up.iter().max() {
        notes.push(format!("slowest restart to ready: {slowest:.1?}"));
    }
    Ran {
        load,
        faults,
        notes,
    }
}

/// A xorshift generator: enough to pick victims, and its seed is printed to replay a run.
#[derive(Debug)]
pub(crate) struct Random(pub(crate) u64);

impl Random {
    pub(crate) fn from_clock() -> Random {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Random(nanos | 1)
    }

    /// A number in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n as u64) as usize
    }
}
