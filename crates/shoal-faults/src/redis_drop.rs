//! `redis_drop`: every connection between the replicas and Redis closed, three times, 3 s
//! apart. The replicas reconnect; requests caught by a drop are refused cleanly (503) or
//! answered; nothing acknowledged is lost.

use std::time::Duration;

use crate::redis_probe::{FaultedRedis, LoadAndProbe, check_answered_or_refused, phase_notes};
use crate::{Env, Faults, Ran, RunFuture, Scenario};

/// How many drops.
const DROPS: usize = 3;
/// Pause after each drop.
const APART: Duration = Duration::from_secs(3);

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "redis_drop",
        description: "every Redis connection closed 3 times, 3 s apart: replicas reconnect, no loss",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let redis = FaultedRedis::start(&env).await;
    let watched = LoadAndProbe::start(&env, &redis.cluster);
    let mut faults = Faults::default();
    let quiet = env
        .duration
        .saturating_sub(APART * u32::try_from(DROPS).unwrap_or(3))
        / 2;
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let first = watched.elapsed();
    let mut before_drop = Vec::new();
    for _ in 0..DROPS {
        before_drop.push(redis.fault.stats().open);
        redis.fault.drop_connections();
        faults.add("every Redis connection closed");
        tokio::time::sleep(APART).await;
    }
    let last = watched.elapsed();
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let (records, load) = watched.stop().await;

    let refused = check_answered_or_refused(&records, &env.checker);
    let mut notes = vec![format!(
        "Redis connections open at each drop: {before_drop:?}; fault proxy: {:?}",
        redis.fault.stats()
    )];
    notes.extend(phase_notes(
        &records,
        first,
        last,
        "across the drops",
        &format!(" ({refused} × 503)"),
    ));
    Ran {
        load,
        faults,
        notes,
    }
}
