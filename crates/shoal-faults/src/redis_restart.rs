//! What `redis_restart_aof` and `redis_restart_empty` share: Redis killed (SIGKILL) under the
//! load, down for a second, started again on the same port, with or without its append-only
//! file; a probe's pings before, while down and after.

use std::time::Duration;

use crate::redis_probe::{LoadAndProbe, ProbeAnswer, ProbeRecord, between, describe};
use crate::{Env, Faults, Ran};
use shoal_testkit::redis::RedisServer;

/// How long Redis stays down.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// After the restart, how long the replicas have to answer again.
const RECOVERY: Duration = Duration::from_secs(5);

/// What a restart scenario measured, for its own judgement.
pub(crate) struct Restarted {
    pub(crate) ran: Ran,
    pub(crate) records: Vec<ProbeRecord>,
}

/// Runs the load on 3 replicas on one Redis (`aof`: with `appendfsync always`), kills and
/// restarts Redis once in the middle.
pub(crate) async fn run(env: &Env, aof: bool) -> Restarted {
    let mut redis = RedisServer::builder().aof(aof).start().await;
    let cluster = env.cluster_builder().redis_url(redis.url()).start().await;
    let watched = LoadAndProbe::start(env, &cluster);
    let mut faults = Faults::default();
    let quiet = env.duration.saturating_sub(DOWN_FOR + RECOVERY) / 2;
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let down = watched.elapsed();
    redis.kill();
    faults.add(if aof {
        "SIGKILL Redis (AOF), restart 1 s later"
    } else {
        "SIGKILL Redis (no persistence), restart 1 s later"
    });
    tokio::time::sleep(DOWN_FOR).await;
    redis.restart().await;
    let back = watched.elapsed();
    tokio::time::sleep(RECOVERY.max(quiet)).await;
    let (records, load) = watched.stop().await;

    // While Redis was down and just after, a ping is answered, refused with 503, or (no
    // persistence) finds its session gone; nothing else, and never slowly.
    for record in &records {
        let clean = matches!(
            record.answer,
            ProbeAnswer::Ok | ProbeAnswer::Unavailable | ProbeAnswer::SessionGone
        );
        if !clean || record.took > Duration::from_secs(5) {
            env.checker.violation(format!(
                "a ping at {:.1?} was answered {} in {:.1?}",
                record.sent, record.answer, record.took
            ));
        }
    }
    let settled = back + Duration::from_secs(2);
    let after = between(&records, settled, Duration::MAX);
    if after.is_empty() || after.iter().any(|r| !matches!(r.answer, ProbeAnswer::Ok)) {
        env.checker.violation(format!(
            "pings 2 s after Redis came back were not all answered: {:?}",
            after.iter().map(|r| &r.answer).collect::<Vec<_>>()
        ));
    }
    let refused = records
        .iter()
        .filter(|r| matches!(r.answer, ProbeAnswer::Unavailable))
        .count();
    let first_ok = records
        .iter()
        .find(|r| r.sent >= back && matches!(r.answer, ProbeAnswer::Ok))
        .map(|r| r.sent + r.took - back);
    let notes = vec![
        format!(
            "ping before: {}",
            describe(&between(&records, Duration::ZERO, down))
        ),
        format!(
            "ping while down and restarting: {} ({refused} × 503 in all)",
            describe(&between(&records, down, back))
        ),
        format!(
            "first ping answered after Redis answered PING: {}",
            first_ok.map_or("none".into(), |t| format!("{t:.1?}"))
        ),
    ];
    Restarted {
        ran: Ran {
            load,
            faults,
            notes,
        },
        records,
    }
}
