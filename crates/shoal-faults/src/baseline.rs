//! `baseline`: the load with no fault at all. Proves the checker sees everything: every call
//! answered once, every event once and in order, nothing retried.

use crate::{Env, Faults, Ran, RunFuture, Scenario, Workload, WorkloadConfig};

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "baseline",
        description: "no fault: every result and event delivered exactly once, in order",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let cluster = env.cluster_builder().start().await;
    let load = Workload::start(&cluster.url(), &env.checker, WorkloadConfig::default());
    tokio::time::sleep(env.duration).await;
    let load = load.stop().await;
    Ran {
        load,
        faults: Faults::default(),
        notes: Vec::new(),
    }
}
