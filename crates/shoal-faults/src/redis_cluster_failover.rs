//! `redis_cluster_failover` and `redis_cluster_failover_hard`: the replicas on a Redis Cluster
//! of three masters with one replica each; under the load one master is failed over to its
//! replica, gracefully (`CLUSTER FAILOVER`: the replica catches up first, nothing acknowledged
//! can be lost) or the hard way (the master SIGKILLed, its replica elected after the
//! one-second node timeout). Redis replicates asynchronously, so a hard failover may lose the
//! writes acknowledged just before the kill that had not reached the replica, bounded by the
//! replication lag; the hard scenario reports what it saw.

use std::time::Duration;

use crate::redis_probe::{
    LoadAndProbe, ProbeAnswer, between, check_answered_or_refused, phase_notes,
};
use crate::{Env, Faults, Ran, RunFuture, Scenario};
use shoal_testkit::redis_cluster::{Failover, RedisCluster};

/// After the failover, how long the replicas have to answer again.
const RECOVERY: Duration = Duration::from_secs(5);
/// The shard failed over.
const SHARD: usize = 0;

/// The graceful failover.
pub fn scenario() -> Scenario {
    Scenario {
        name: "redis_cluster_failover",
        description: "Redis Cluster master failed over to its replica (CLUSTER FAILOVER): no loss",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env, Failover::Graceful)) },
    }
}

/// The hard failover.
pub fn hard_scenario() -> Scenario {
    Scenario {
        name: "redis_cluster_failover_hard",
        description: "Redis Cluster master SIGKILLed, its replica elected: may lose the last \
                      unreplicated writes",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env, Failover::Hard)) },
    }
}

async fn run(env: Env, how: Failover) -> Ran {
    let mut redis = RedisCluster::start_with_replicas().await;
    let cluster = env
        .cluster_builder()
        .redis_url(redis.url_with_every_node())
        .start()
        .await;
    let watched = LoadAndProbe::start(&env, &cluster);
    let mut faults = Faults::default();
    let quiet = env.duration.saturating_sub(RECOVERY) / 2;
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let from = watched.elapsed();
    let report = redis.failover(SHARD, how).await;
    faults.add(match how {
        Failover::Graceful => "CLUSTER FAILOVER of a master",
        Failover::Hard => "SIGKILL of a master, replica elected",
    });
    let to = watched.elapsed();
    tokio::time::sleep(RECOVERY.max(quiet)).await;
    let (records, load) = watched.stop().await;

    let refused = check_answered_or_refused(&records, &env.checker);
    let after = between(&records, to + Duration::from_secs(2), Duration::MAX);
    if after.is_empty() || after.iter().any(|r| !matches!(r.answer, ProbeAnswer::Ok)) {
        env.checker.violation(format!(
            "pings 2 s after the failover were not all answered: {:?}",
            after.iter().map(|r| &r.answer).collect::<Vec<_>>()
        ));
    }
    let last_refusal = records
        .iter()
        .filter(|r| !matches!(r.answer, ProbeAnswer::Ok))
        .map(|r| r.sent + r.took)
        .max();
    let mut notes = vec![
        format!(
            "last ping not answered ended {}",
            last_refusal.map_or("never".into(), |t| if t >= to {
                format!("{:.1?} after the cluster was ok again", t - to)
            } else {
                format!("{:.1?} before the cluster was ok again", to - t)
            })
        ),
        format!(
            "master {} → replica {} promoted, cluster ok again after {:.1?}",
            report.old_master, report.new_master, report.took
        ),
    ];
    notes.extend(phase_notes(
        &records,
        from,
        to,
        "during the failover",
        &format!(" ({refused} × 503 in all)"),
    ));
    Ran {
        load,
        faults,
        notes,
    }
}
