//! `redis_pause`: forwarding between the replicas and Redis stops for 3 s (connections held
//! open: a stall, not an outage), longer than the replicas' Redis command timeout (2 s, the
//! default). Requests meanwhile fail fast with 503 and a JSON-RPC error body, none hangs past
//! the command timeout plus a margin; after the resume every client goes on and nothing
//! acknowledged is lost.

use std::time::Duration;

use crate::redis_probe::{FaultedRedis, LoadAndProbe, ProbeAnswer, between, describe};
use crate::{Env, Faults, Ran, RunFuture, Scenario};

/// How long forwarding stops.
const PAUSED_FOR: Duration = Duration::from_secs(3);
/// The replicas' Redis command timeout (`shoal_redis::config::DEFAULT_COMMAND_TIMEOUT`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// What a refusal may take beyond the command timeout (a proxy hop, scheduling).
const MARGIN: Duration = Duration::from_millis(1500);
/// After the resume, how long the replicas have to answer again.
const RECOVERY: Duration = Duration::from_secs(5);

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "redis_pause",
        description: "Redis stalled 3 s (bytes held both ways): fast 503s meanwhile, then all resume",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let redis = FaultedRedis::start(&env).await;
    let watched = LoadAndProbe::start(&env, &redis.cluster);
    let mut faults = Faults::default();
    let quiet = env.duration.saturating_sub(PAUSED_FOR + RECOVERY) / 2;
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let from = watched.elapsed();
    redis.fault.pause();
    faults.add("Redis stalled 3 s");
    tokio::time::sleep(PAUSED_FOR).await;
    redis.fault.resume();
    let to = watched.elapsed();
    tokio::time::sleep(RECOVERY.max(quiet)).await;
    let (records, load) = watched.stop().await;

    // Every ping the stall touched: sent during it, or before it and still waiting.
    let during: Vec<_> = records
        .iter()
        .filter(|r| r.sent < to && r.sent + r.took > from)
        .collect();
    let refused = during
        .iter()
        .filter(|r| matches!(r.answer, ProbeAnswer::Unavailable))
        .count();
    if refused == 0 {
        env.checker
            .violation("no ping was refused with 503 while Redis was stalled");
    }
    for record in &during {
        let clean = matches!(record.answer, ProbeAnswer::Ok | ProbeAnswer::Unavailable);
        if !clean || record.took > COMMAND_TIMEOUT + MARGIN {
            env.checker.violation(format!(
                "a ping at {:.1?} during the stall was answered {} in {:.1?} (bound {:.1?})",
                record.sent,
                record.answer,
                record.took,
                COMMAND_TIMEOUT + MARGIN
            ));
        }
    }
    // Once the held bytes are through, the replicas answer again.
    let settled = to + Duration::from_secs(2);
    let after = between(&records, settled, Duration::MAX);
    if after.is_empty() {
        env.checker.violation("no ping after the stall");
    }
    for record in &after {
        if !matches!(record.answer, ProbeAnswer::Ok) {
            env.checker.violation(format!(
                "a ping at {:.1?}, 2 s after the stall, was answered {} in {:.1?}",
                record.sent, record.answer, record.took
            ));
        }
    }
    let first_ok = records
        .iter()
        .find(|r| r.sent >= to && matches!(r.answer, ProbeAnswer::Ok))
        .map(|r| r.sent + r.took - to);
    let notes = vec![
        format!(
            "ping before: {}",
            describe(&between(&records, Duration::ZERO, from))
        ),
        format!(
            "ping during the stall: {} ({refused} × 503 with a JSON-RPC error)",
            describe(&during)
        ),
        format!(
            "first ping answered after the resume: {}",
            first_ok.map_or("none".into(), |t| format!("{t:.1?} after it"))
        ),
        format!("fault proxy: {:?}", redis.fault.stats()),
    ];
    Ran {
        load,
        faults,
        notes,
    }
}
