//! `redis_latency`: 50 ms added to every chunk between the replicas and Redis, both ways, for
//! ~5 s, then none. Everything is slower, nothing is lost or duplicated; the probe's times
//! before, during and after are in the notes.

use std::time::Duration;

use crate::redis_probe::{FaultedRedis, LoadAndProbe, ProbeAnswer, between, phase_notes};
use crate::{Env, Faults, Ran, RunFuture, Scenario};

/// The latency added.
const LATENCY: Duration = Duration::from_millis(50);
/// How long it is held.
const HELD_FOR: Duration = Duration::from_secs(5);

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "redis_latency",
        description: "50 ms added each way between replicas and Redis for 5 s: slower, no loss",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let redis = FaultedRedis::start(&env).await;
    let watched = LoadAndProbe::start(&env, &redis.cluster);
    let mut faults = Faults::default();
    let quiet = env.duration.saturating_sub(HELD_FOR) / 2;
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let from = watched.elapsed();
    redis.fault.set_latency(LATENCY);
    faults.add("50 ms Redis latency for 5 s");
    tokio::time::sleep(HELD_FOR).await;
    redis.fault.set_latency(Duration::ZERO);
    let to = watched.elapsed();
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let (records, load) = watched.stop().await;
    let failed: Vec<_> = between(&records, Duration::ZERO, Duration::MAX)
        .into_iter()
        .filter(|r| !matches!(r.answer, ProbeAnswer::Ok))
        .collect();
    for record in &failed {
        env.checker.violation(format!(
            "a ping at {:.1?} under Redis latency was answered {} in {:.1?}",
            record.sent, record.answer, record.took
        ));
    }
    let mut notes = Vec::from(phase_notes(&records, from, to, "with 50 ms latency", ""));
    notes.push(format!("fault proxy: {:?}", redis.fault.stats()));
    Ran {
        load,
        faults,
        notes,
    }
}
