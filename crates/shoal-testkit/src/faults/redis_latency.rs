//! `redis_latency`: 50 ms added to every chunk between the replicas and Redis, both ways, for
//! ~5 s, then none. Everything is slower, nothing is lost or duplicated; the probe's times
//! before, during and after are in the notes.

use std::time::Duration;

use super::redis_probe::{Probe, between, describe};
use super::{Env, Faults, Ran, RunFuture, Scenario, Workload, WorkloadConfig};
use crate::redis::RedisServer;
use crate::tcp_fault::TcpFaultProxy;

/// The latency added.
const LATENCY: Duration = Duration::from_millis(50);
/// How long it is held.
const HELD_FOR: Duration = Duration::from_secs(5);

/// The scenario.
pub fn scenario() -> Scenario {
    Scenario {
        name: "redis_latency",
        description: "50 ms added each way between replicas and Redis for 5 s: slower, no loss",
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
    let quiet = env.duration.saturating_sub(HELD_FOR) / 2;
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let from = probe.started.elapsed();
    fault.set_latency(LATENCY);
    faults.add("50 ms Redis latency for 5 s");
    tokio::time::sleep(HELD_FOR).await;
    fault.set_latency(Duration::ZERO);
    let to = probe.started.elapsed();
    tokio::time::sleep(quiet.max(Duration::from_secs(2))).await;
    let records = probe.stop().await;
    let load = load.stop().await;
    let failed: Vec<_> = between(&records, Duration::ZERO, Duration::MAX)
        .into_iter()
        .filter(|r| !matches!(r.answer, super::redis_probe::ProbeAnswer::Ok))
        .collect();
    for record in &failed {
        env.checker.violation(format!(
            "a ping at {:.1?} under Redis latency was answered {} in {:.1?}",
            record.sent, record.answer, record.took
        ));
    }
    let notes = vec![
        format!(
            "ping before: {}",
            describe(&between(&records, Duration::ZERO, from))
        ),
        format!(
            "ping with 50 ms latency: {}",
            describe(&between(&records, from, to))
        ),
        format!(
            "ping after: {}",
            describe(&between(&records, to, Duration::MAX))
        ),
        format!("fault proxy: {:?}", fault.stats()),
    ];
    Ran {
        load,
        faults,
        notes,
    }
}
