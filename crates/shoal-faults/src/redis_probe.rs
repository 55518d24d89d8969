//! What the Redis scenarios share: [`FaultedRedis`], one Redis behind a [`TcpFaultProxy`] with
//! the replicas on the proxy; [`LoadAndProbe`], the steady load and a [`Probe`] started and
//! stopped together; and the checks and notes made of the probe's records.
//!
//! The [`Probe`] is one extra client beside the load that sends JSON-RPC `ping`s one after
//! another on each replica directly, in a session of its own there (not through the
//! round-robin proxy, whose own "no ready backend" 503 would hide the replicas' answers while
//! their readiness fails), and records how each was answered and how long it took (a `ping`
//! reads the session from Redis, so it sees every Redis fault).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::workload::{Answer, Http, Refused, Session, is_response, open_session};
use crate::{Checker, Env, LoadFigures, Workload, WorkloadConfig};
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::redis::RedisServer;
use shoal_testkit::tcp_fault::TcpFaultProxy;

/// Bound on one probe, stream included.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between two probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// One Redis behind a [`TcpFaultProxy`], and a cluster of replicas on the proxy: faults set on
/// [`FaultedRedis::fault`] act on every byte between the replicas and Redis.
#[derive(Debug)]
pub(crate) struct FaultedRedis {
    // Fields drop in this order: the replicas stop first, then the proxy, then Redis.
    pub(crate) cluster: ShoalCluster,
    pub(crate) fault: TcpFaultProxy,
    _redis: RedisServer,
}

impl FaultedRedis {
    /// Starts Redis, the fault proxy in front of it and `env`'s cluster on the proxy.
    pub(crate) async fn start(env: &Env) -> FaultedRedis {
        let redis = RedisServer::start().await;
        let fault = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
        let cluster = env.cluster_builder().redis_url(fault.url()).start().await;
        FaultedRedis {
            cluster,
            fault,
            _redis: redis,
        }
    }
}

/// The steady load through a cluster's proxy and a [`Probe`] on each of its replicas.
#[derive(Debug)]
pub(crate) struct LoadAndProbe {
    load: Workload,
    probe: Probe,
}

impl LoadAndProbe {
    /// Starts the load on `cluster` (recording to `env`'s checker), then the probe.
    pub(crate) fn start(env: &Env, cluster: &ShoalCluster) -> LoadAndProbe {
        let load = Workload::start(&cluster.url(), &env.checker, WorkloadConfig::default());
        let probe = Probe::start((0..cluster.len()).map(|i| cluster.replica_url(i)).collect());
        LoadAndProbe { load, probe }
    }

    /// Time since the probe started: the clock of [`ProbeRecord::sent`].
    pub(crate) fn elapsed(&self) -> Duration {
        self.probe.started.elapsed()
    }

    /// Stops the probe, then the load; the probe's records by time sent and the load's figures.
    pub(crate) async fn stop(self) -> (Vec<ProbeRecord>, LoadFigures) {
        let records = self.probe.stop().await;
        (records, self.load.stop().await)
    }
}

/// How one probe was answered.
#[derive(Debug, Clone)]
pub(crate) enum ProbeAnswer {
    /// A JSON-RPC response.
    Ok,
    /// 503 with a JSON-RPC error body (`jsonrpc`, `error.code`, `error.message`).
    Unavailable,
    /// 404: the probe's session is gone (Redis lost it); the probe opens another.
    SessionGone,
    /// Anything else (a 503 without a JSON-RPC error body included), with what it was.
    Other(String),
}

impl std::fmt::Display for ProbeAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeAnswer::Ok => f.write_str("ok"),
            ProbeAnswer::Unavailable => f.write_str("503 (JSON-RPC error)"),
            ProbeAnswer::SessionGone => f.write_str("404"),
            ProbeAnswer::Other(what) => f.write_str(what),
        }
    }
}

/// One probe: when it was sent (from the probe's start), how long it took, its answer.
#[derive(Debug, Clone)]
pub(crate) struct ProbeRecord {
    pub(crate) sent: Duration,
    pub(crate) took: Duration,
    pub(crate) answer: ProbeAnswer,
}

/// A client sending `ping`s until stopped; [`Probe::stop`] returns every record.
#[derive(Debug)]
pub(crate) struct Probe {
    stop: Arc<AtomicBool>,
    lanes: Vec<JoinHandle<Vec<ProbeRecord>>>,
    /// When the probe started: the origin of [`ProbeRecord::sent`].
    pub(crate) started: Instant,
}

impl Probe {
    /// Opens a session on each of `urls` (retrying while refused) and probes each in a lane
    /// of its own.
    pub(crate) fn start(urls: Vec<String>) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let lanes = urls
            .iter()
            .map(|url| tokio::spawn(probe_loop(Http::new(url), Arc::clone(&stop), started)))
            .collect();
        Probe {
            stop,
            lanes,
            started,
        }
    }

    /// Stops probing and returns the records of every lane, by time sent (bounded by one
    /// probe's timeout).
    pub(crate) async fn stop(self) -> Vec<ProbeRecord> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut records = Vec::new();
        for lane in self.lanes {
            let abort = lane.abort_handle();
            match tokio::time::timeout(PROBE_TIMEOUT + Duration::from_secs(5), lane).await {
                Ok(Ok(lane_records)) => records.extend(lane_records),
                _ => abort.abort(),
            }
        }
        records.sort_by_key(|r| r.sent);
        records
    }
}

async fn probe_loop(http: Http, stop: Arc<AtomicBool>, started: Instant) -> Vec<ProbeRecord> {
    // The probe's own retries are not the load's: a private checker takes them.
    let private = Checker::new();
    let mut records = Vec::new();
    let mut number = 0;
    let mut session = None;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let current = match session.take() {
            Some(current) => current,
            None => {
                let Some(opened) = open_session(&http, &stop, &private, number).await else {
                    break;
                };
                number += 1;
                opened
            }
        };
        let sent = started.elapsed();
        let begun = Instant::now();
        let answer = match tokio::time::timeout(PROBE_TIMEOUT, ping(&http, &current)).await {
            Ok(answer) => answer,
            Err(_) => ProbeAnswer::Other(format!("no answer within {PROBE_TIMEOUT:?}")),
        };
        let took = begun.elapsed();
        if !matches!(answer, ProbeAnswer::SessionGone) {
            session = Some(current);
        }
        records.push(ProbeRecord { sent, took, answer });
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    records
}

async fn ping(http: &Http, session: &Session) -> ProbeAnswer {
    let message = json!({ "jsonrpc": "2.0", "id": http.next_id(), "method": "ping" });
    match http.post(Some(session), &message).await {
        Ok((Answer::Json(response), _)) if response.get("result").is_some() => ProbeAnswer::Ok,
        Ok((Answer::Json(response), _)) => ProbeAnswer::Other(format!("answered {response}")),
        Ok((Answer::Stream(mut stream), _)) => loop {
            match stream.next_event_within(PROBE_TIMEOUT).await {
                Ok(Some(event)) if is_response(&event) => break ProbeAnswer::Ok,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break ProbeAnswer::Other("the reply stream broke".into()),
            }
        },
        Ok((Answer::Accepted, _)) => ProbeAnswer::Other("202 to a request".into()),
        Err(Refused::Retry(super::checker::RetryCause::Unavailable, body)) => {
            if is_rpc_error(&body) {
                ProbeAnswer::Unavailable
            } else {
                ProbeAnswer::Other(format!("503 without a JSON-RPC error: {body}"))
            }
        }
        Err(Refused::Retry(cause, why)) => ProbeAnswer::Other(format!("{cause:?}: {why}")),
        Err(Refused::SessionGone) => ProbeAnswer::SessionGone,
        Err(Refused::Unexpected(status, body)) => ProbeAnswer::Other(format!("{status}: {body}")),
    }
}

/// Whether `body` is a JSON-RPC error response.
fn is_rpc_error(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| {
        v["jsonrpc"] == "2.0" && v["error"]["code"].is_i64() && v["error"]["message"].is_string()
    })
}

/// The `q` quantile (0..=1) of `times`, nearest rank; `None` when empty.
pub(crate) fn quantile(times: &[Duration], q: f64) -> Option<Duration> {
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

/// `n probes, p50 …, p99 …, max …` of `records`' times.
pub(crate) fn describe(records: &[&ProbeRecord]) -> String {
    let times: Vec<Duration> = records.iter().map(|r| r.took).collect();
    match (
        quantile(&times, 0.5),
        quantile(&times, 0.99),
        times.iter().max(),
    ) {
        (Some(p50), Some(p99), Some(max)) => format!(
            "{} probes, p50 {p50:.1?}, p99 {p99:.1?}, max {max:.1?}",
            times.len()
        ),
        _ => "no probes".into(),
    }
}

/// Records a violation on `checker` for every ping neither answered nor refused with a 503 and
/// a JSON-RPC error; returns how many were refused so.
pub(crate) fn check_answered_or_refused(records: &[ProbeRecord], checker: &Checker) -> usize {
    for record in records {
        let clean = matches!(record.answer, ProbeAnswer::Ok | ProbeAnswer::Unavailable);
        if !clean {
            checker.violation(format!(
                "a ping at {:.1?} was answered {} in {:.1?}",
                record.sent, record.answer, record.took
            ));
        }
    }
    records
        .iter()
        .filter(|r| matches!(r.answer, ProbeAnswer::Unavailable))
        .count()
}

/// Three notes on the probe's times: `ping before: …` (before `from`), `ping {during}: …{extra}`
/// (within `from..to`) and `ping after: …` (from `to` on).
pub(crate) fn phase_notes(
    records: &[ProbeRecord],
    from: Duration,
    to: Duration,
    during: &str,
    extra: &str,
) -> [String; 3] {
    [
        format!(
            "ping before: {}",
            describe(&between(records, Duration::ZERO, from))
        ),
        format!(
            "ping {during}: {}{extra}",
            describe(&between(records, from, to))
        ),
        format!(
            "ping after: {}",
            describe(&between(records, to, Duration::MAX))
        ),
    ]
}

/// Records sent within `from..to` (from the probe's start).
pub(crate) fn between(records: &[ProbeRecord], from: Duration, to: Duration) -> Vec<&ProbeRecord> {
    records
        .iter()
        .filter(|r| r.sent >= from && r.sent < to)
        .collect()
}
