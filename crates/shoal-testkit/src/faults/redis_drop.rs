//! `redis_drop`: every connection between the replicas and Redis closed, three times, 3 s
//! apart. The replicas reconnect; requests caught by a drop are refused cleanly (503) or
//! answered; nothing acknowledged is lost.

use std::time::Duration;

use super::redis_probe::{Probe, ProbeAnswer, between, describe};
use super::{Env, Faults, Ran, RunFuture, Scenario, Workload, WorkloadConfig};
use crate::redis::RedisServer;
use crate::tcp_fault::TcpFaultProxy;

/// How many drops.
const DROPS: usize = 3;
/// Pause after each drop.
const APART: Duration = Duration::from_secs(3);

/// The scenario.
pub fn scenario() -> Scenario {
    Scenario {
        name: "redis_drop",
        description: "every Redis connection closed 3 times, 3 s apart: replicas reconnect, no loss",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let redis = RedisServer::start().await;
    let fault = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
    let cluster = env.cluster_builder().redis_url(fault.url()).start().await;
    let load = Workload::start(&cluster.url(), &env.checker, WorkloadConfig::default());
    let probe = Probe::start((0..cluster.len()).map(|i| cluster.replica_url(i)).collect());
    let mut faults = Faults::default();
    let quiet = env
        .duration
        .saturating_sub(APART * u32::try_from(DROPS).unwrap_or(3))
        / 2;
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let first = probe.started.elapsed();
    let mut before_drop = Vec::new();
    for _ in 0..DROPS {
        before_drop.push(fault.stats().open);
        fault.drop_connections();
        faults.add("every Redis connection closed");
        tokio::time::sleep(APART).await;
    }
    let last = probe.started.elapsed();
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let records = probe.stop().await;
    let load = load.stop().await;

    for record in &records {
        let clean = matches!(record.answer, ProbeAnswer::Ok | ProbeAnswer::Unavailable);
        if !clean {
            env.checker.violation(format!(
                "a ping at {:.1?} was answered {} in {:.1?}",
                record.sent, record.answer, record.took
            ));
        }
    }
    let refused = records
        .iter()
        .filter(|r| matches!(r.answer, ProbeAnswer::Unavailable))
        .count();
    let notes = vec![
        format!(
            "Redis connections open at each drop: {before_drop:?}; fault proxy: {:?}",
            fault.stats()
        ),
        format!(
            "ping before: {}",
            describe(&between(&records, Duration::ZERO, first))
        ),
        format!(
            "ping across the drops: {} ({refused} × 503)",
            describe(&between(&records, first, last))
        ),
        format!(
            "ping after: {}",
            describe(&between(&records, last, Duration::MAX))
        ),
    ];
    Ran {
        load,
        faults,
        notes,
    }
}
