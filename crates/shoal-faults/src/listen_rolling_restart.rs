//! `listen_rolling_restart`: stateless-era listeners ([`ListenLoad`]) while every replica is
//! restarted in turn with SIGTERM, as in `rolling_restart`. A draining replica ends its listen
//! streams with the graceful response; each listener listens again at once (on another
//! replica) and must receive, exactly once, every update raised after its new stream was
//! acknowledged.

use std::time::{Duration, Instant};

use crate::listen_workload::{ListenConfig, ListenLoad};
use crate::rolling_restart::roll;
use crate::{Env, Faults, Ran, RunFuture, Scenario};

/// Concurrent listeners.
pub(crate) const LISTENERS: usize = 8;
/// The tool sets every replica serves: `test_trigger_resource_update` is in `conformance`.
pub(crate) const TOOLS: &str = "demo,conformance";

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "listen_rolling_restart",
        description: "listen streams (2026-07-28) while each replica is SIGTERMed and restarted \
                      in turn; listeners listen again, nothing raised after is lost",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let mut cluster = env
        .cluster_builder()
        .tools(TOOLS)
        // Lets the proxy see `/readyz` fail before the replica stops taking requests.
        .arg("--shutdown-delay")
        .arg("500ms")
        .start()
        .await;
    let config = ListenConfig::for_duration(LISTENERS, env.duration);
    let started = Instant::now();
    let load = ListenLoad::start(&cluster.url(), &config).await;
    let mut faults = Faults::default();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let note = roll(&mut cluster, &env, &mut faults, started).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ran, verdict) = load.finish(&env, started, faults, vec![note]).await;
    if verdict.graceful_ends == 0 {
        env.checker.violation(
            "no listen stream ended gracefully under the restarts: the scenario proved nothing",
        );
    }
    ran
}
