//! The measurements: each starts what it measures, drives it with `shoal-load`, reads memory
//! and Redis counters around the run, and stops it.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::load::{Load, Running, Summary};
use super::redis::{self, Redis};
use super::targets::{Binaries, Deployment, Limits, Target};
use super::{Settings, probe};

/// Warmup of the throughput runs (not measured by `shoal-load`, but counted on both sides of
/// the Redis cost ratios, which come from server-side counters).
const CALLS_WARMUP: &str = "2s";
/// Warmup of the cross-replica streams run.
const STREAMS_WARMUP: Duration = Duration::from_secs(1);
/// Streams of the cross-replica run, and the announcements per second sent to them.
const CROSS_REPLICA_STREAMS: u32 = 100;
const CROSS_REPLICA_RATE: u32 = 200;
/// How long the idle streams are held once all are open.
const HOLD: &str = "5s";
/// How long opening every idle stream may take.
const OPEN_STREAMS_TIMEOUT: Duration = Duration::from_secs(300);
/// Pause after the streams are open (or sessions deleted) before reading memory or keys.
const SETTLE: Duration = Duration::from_secs(2);
/// Open files a process needs beyond one per stream.
const OPEN_FILES_MARGIN: u64 = 1024;
/// Most keys listed when looking for leaks.
const KEY_SCAN_LIMIT: usize = 200_000;
/// Listen streams of the listen run (round robin over the 3 replicas), and the resource
/// updates per second sent to them.
const LISTENERS: u32 = 100;
const LISTEN_TRIGGER_RATE: u32 = 50;
/// The tool that announces a resource update (`--tools conformance`).
const TRIGGER_TOOL: &str = "test_trigger_resource_update";
/// The tool of the mrtr run: it asks the user once, so each call takes two rounds.
const MRTR_TOOL: &str = "ask_user";
/// How often the long runs poll the replica's counters.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Redis work over a window, and the operations it served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedisCost {
    /// Operations served in the window (server-side count).
    pub(crate) operations: f64,
    /// Commands Redis executed (scripts' commands included), harness's own left out.
    pub(crate) commands: u64,
    /// Round trips the replicas made (`shoal_redis_command_duration_seconds_count`).
    pub(crate) round_trips: f64,
}

impl RedisCost {
    pub(crate) fn commands_per_op(&self) -> f64 {
        ratio(self.commands as f64, self.operations)
    }

    pub(crate) fn round_trips_per_op(&self) -> f64 {
        ratio(self.round_trips, self.operations)
    }
}

/// A point in time of the counters a [`RedisCost`] is a difference of.
#[derive(Debug, Clone, Copy)]
struct Counters {
    operations: f64,
    commands: u64,
    round_trips: f64,
}

impl Counters {
    fn read(deployment: &Deployment, redis: &mut Redis, tool: Option<&str>) -> Result<Self> {
        Ok(Self {
            operations: deployment.tool_calls(tool)?,
            commands: redis.commands_executed()?,
            round_trips: deployment.redis_round_trips()?,
        })
    }

    fn until(self, later: Self) -> RedisCost {
        RedisCost {
            operations: later.operations - self.operations,
            commands: later.commands.saturating_sub(self.commands),
            round_trips: later.round_trips - self.round_trips,
        }
    }
}

/// The protocol era a measurement speaks (`shoal-load --revision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// 2025-11-25: sessions.
    Sessions,
    /// 2026-07-28: stateless requests, no session.
    Stateless,
}

impl Era {
    /// `shoal-load --revision`.
    pub(crate) fn revision(self) -> &'static str {
        match self {
            Self::Sessions => "2025-11-25",
            Self::Stateless => "2026-07-28",
        }
    }
}

/// `tools/call` throughput of one target.
#[derive(Debug, Clone)]
pub(crate) struct Calls {
    pub(crate) target: Target,
    pub(crate) era: Era,
    pub(crate) summary: Summary,
    /// Resident memory of the server(s) after the run.
    pub(crate) rss_kib: u64,
    pub(crate) redis: Option<RedisCost>,
}

/// Announcements delivered to standalone streams held on other replicas.
#[derive(Debug, Clone)]
pub(crate) struct CrossReplica {
    pub(crate) summary: Summary,
    /// Per announcement, in a steady-state window.
    pub(crate) redis: RedisCost,
}

/// Stateless `tools/call`s answered `input_required` and retried with the answers on the next
/// replica, until complete.
#[derive(Debug, Clone)]
pub(crate) struct Mrtr {
    pub(crate) summary: Summary,
    /// Rounds (requests) per completed call, from `shoal-load`.
    pub(crate) rounds_per_call: f64,
    /// Per round: every round is one `tools/call` the replicas count.
    pub(crate) redis: RedisCost,
}

/// Resource updates delivered to `subscriptions/listen` streams spread over the replicas.
#[derive(Debug, Clone)]
pub(crate) struct Listen {
    pub(crate) summary: Summary,
    /// Per update (one trigger call, delivered to every stream).
    pub(crate) redis: RedisCost,
}

/// Idle standalone streams held by one server.
#[derive(Debug, Clone)]
pub(crate) struct IdleStreams {
    pub(crate) target: Target,
    pub(crate) requested: u64,
    pub(crate) open: u64,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
    /// `connected_clients` of Redis while holding them, the harness's connection left out.
    pub(crate) redis_clients: Option<u64>,
    /// The open-files soft limit the processes ran with.
    pub(crate) open_files: u64,
}

impl IdleStreams {
    pub(crate) fn kib_per_stream(&self) -> f64 {
        ratio(
            self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64,
            self.open as f64,
        )
    }
}

/// Sessions created and deleted on the Redis host, and what they left in Redis.
#[derive(Debug, Clone)]
pub(crate) struct Churn {
    pub(crate) summary: Summary,
    pub(crate) keys_before: u64,
    pub(crate) keys_after: u64,
    pub(crate) memory_before: u64,
    pub(crate) memory_after: u64,
    /// Keys that were not there before, by shape: (pattern, count, how many expire).
    pub(crate) leftovers: Vec<(String, u64, u64)>,
}

impl Churn {
    /// Leftover keys that never expire.
    pub(crate) fn leaked(&self) -> u64 {
        self.leftovers
            .iter()
            .map(|(_, count, expiring)| count - expiring)
            .sum()
    }
}

/// Resident memory of one replica at two points of a long run.
#[derive(Debug, Clone)]
pub(crate) struct Long {
    /// What the points count, e.g. "calls in one session".
    pub(crate) unit: &'static str,
    pub(crate) first_at: u64,
    pub(crate) first_kib: u64,
    pub(crate) last_at: u64,
    pub(crate) last_kib: u64,
    pub(crate) summary: Summary,
}

impl Long {
    /// Growth from the first point to the last, as a fraction of the first.
    pub(crate) fn growth(&self) -> f64 {
        ratio(
            self.last_kib as f64 - self.first_kib as f64,
            self.first_kib as f64,
        )
    }
}

/// Closed-loop `tools/call echo` against `target`: on one session, or (stateless) on none.
pub(crate) fn calls(
    target: Target,
    era: Era,
    bins: &Binaries,
    settings: &Settings,
) -> Result<Calls> {
    let name = match era {
        Era::Sessions => target.name().to_owned(),
        Era::Stateless => format!("stateless-{target}"),
    };
    let log_dir = settings.log_dir.join(&name);
    let mut deployment = Deployment::start(target, bins, &log_dir, Limits::default())?;
    let mut redis = match target.uses_redis() {
        true => Some(deployment.redis()?),
        false => None,
    };
    let before = match &mut redis {
        Some(redis) => Some(Counters::read(&deployment, redis, None)?),
        None => None,
    };
    let summary = Load::new(
        &bins.shoal_load,
        "calls",
        &format!("calls-{name}"),
        &log_dir,
    )
    .urls(&[&deployment.url])
    .opt("revision", era.revision())
    .opt("duration", &settings.duration_text)
    .opt("concurrency", settings.concurrency.to_string())
    .opt("sessions", settings.sessions.to_string())
    .opt("warmup", CALLS_WARMUP)
    .run()
    .with_context(|| deployment.log_tails())?;
    deployment.check_alive()?;
    let rss_kib = deployment.rss_kib()?;
    let redis = match (&mut redis, before) {
        (Some(redis), Some(before)) => {
            Some(before.until(Counters::read(&deployment, redis, None)?))
        }
        _ => None,
    };
    Ok(Calls {
        target,
        era,
        summary,
        rss_kib,
        redis,
    })
}

/// Announcements through `rr-proxy` to streams held on other replicas than the one the
/// announcing POST lands on.
pub(crate) fn cross_replica(bins: &Binaries, settings: &Settings) -> Result<CrossReplica> {
    let log_dir = settings.log_dir.join("cross-replica");
    let deployment = Deployment::start(Target::ShoalCluster, bins, &log_dir, Limits::default())?;
    let mut redis = deployment.redis()?;
    let ready = log_dir.join("streams.ready");
    let _ = std::fs::remove_file(&ready);
    let mut running = Load::new(&bins.shoal_load, "streams", "cross-replica", &log_dir)
        .urls(&[&deployment.url])
        .opt("streams", CROSS_REPLICA_STREAMS.to_string())
        .opt("announce-rate", CROSS_REPLICA_RATE.to_string())
        .opt("duration", &settings.duration_text)
        .opt(
            "warmup",
            humantime::format_duration(STREAMS_WARMUP).to_string(),
        )
        .opt("concurrency", settings.concurrency.to_string())
        .opt("ready-file", &ready)
        .spawn()?;
    running.wait_for("all streams open", OPEN_STREAMS_TIMEOUT, || ready.exists())?;
    // A steady-state window inside the announcing phase: both sides of the ratio are counted
    // in it, so warmup, setup and teardown cost nothing here.
    let opened = Instant::now();
    thread::sleep(Duration::from_millis(500));
    let before = Counters::read(&deployment, &mut redis, Some("announce"))?;
    let end = STREAMS_WARMUP + settings.duration;
    thread::sleep(end.saturating_sub(opened.elapsed() + Duration::from_millis(500)));
    let after = Counters::read(&deployment, &mut redis, Some("announce"))?;
    let summary = running.wait().with_context(|| deployment.log_tails())?;
    Ok(CrossReplica {
        summary,
        redis: before.until(after),
    })
}

/// Multi round-trip calls of `ask_user` over the 3 replicas, client-side round robin (each
/// retry lands on the next replica); Redis counted per round over the whole run.
pub(crate) fn mrtr(bins: &Binaries, settings: &Settings) -> Result<Mrtr> {
    let log_dir = settings.log_dir.join("mrtr");
    let deployment = Deployment::start(Target::ShoalCluster, bins, &log_dir, Limits::default())?;
    let mut redis = deployment.redis()?;
    let before = Counters::read(&deployment, &mut redis, Some(MRTR_TOOL))?;
    let summary = Load::new(&bins.shoal_load, "mrtr", "mrtr", &log_dir)
        .urls(deployment.replica_urls())
        .opt("tool", MRTR_TOOL)
        .opt("duration", &settings.duration_text)
        .opt("concurrency", settings.concurrency.to_string())
        .opt("warmup", CALLS_WARMUP)
        .run()
        .with_context(|| deployment.log_tails())?;
    let after = Counters::read(&deployment, &mut redis, Some(MRTR_TOOL))?;
    let rounds_per_call = summary
        .raw
        .pointer("/mrtr/rounds_per_operation")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN);
    Ok(Mrtr {
        summary,
        rounds_per_call,
        redis: before.until(after),
    })
}

/// Listen streams spread over the 3 replicas, resource updates triggered on each replica in
/// turn; Redis counted per update in a steady-state window.
pub(crate) fn listen(bins: &Binaries, settings: &Settings) -> Result<Listen> {
    let log_dir = settings.log_dir.join("listen");
    let limits = Limits {
        conformance_tools: true,
        ..Limits::default()
    };
    let deployment = Deployment::start(Target::ShoalCluster, bins, &log_dir, limits)?;
    let mut redis = deployment.redis()?;
    let running = Load::new(&bins.shoal_load, "listen", "listen", &log_dir)
        .urls(deployment.replica_urls())
        .opt("listeners", LISTENERS.to_string())
        .opt("trigger-rate", LISTEN_TRIGGER_RATE.to_string())
        .opt("trigger-tool", TRIGGER_TOOL)
        .opt("duration", &settings.duration_text)
        .opt(
            "warmup",
            humantime::format_duration(STREAMS_WARMUP).to_string(),
        )
        .opt("concurrency", settings.concurrency.to_string())
        .spawn()?;
    // The streams open within the warmup at this size; the window starts after it, so that
    // neither opening nor teardown counts.
    let started = Instant::now();
    thread::sleep(STREAMS_WARMUP + Duration::from_millis(500));
    let before = Counters::read(&deployment, &mut redis, Some(TRIGGER_TOOL))?;
    let end = STREAMS_WARMUP + settings.duration;
    thread::sleep(end.saturating_sub(started.elapsed() + Duration::from_millis(500)));
    let after = Counters::read(&deployment, &mut redis, Some(TRIGGER_TOOL))?;
    let summary = running.wait().with_context(|| deployment.log_tails())?;
    Ok(Listen {
        summary,
        redis: before.until(after),
    })
}

/// `streams` idle standalone streams held by `target`: memory before and while holding them.
pub(crate) fn idle_streams(
    target: Target,
    bins: &Binaries,
    settings: &Settings,
) -> Result<IdleStreams> {
    let log_dir = settings.log_dir.join(format!("idle-streams-{target}"));
    let (soft, hard) = probe::open_files_limit()?;
    let wanted = u64::from(settings.idle_streams);
    let streams = wanted.min(hard.saturating_sub(OPEN_FILES_MARGIN));
    if streams == 0 {
        bail!("the open-files hard limit ({hard}) leaves no room for streams");
    }
    let needed = streams + OPEN_FILES_MARGIN;
    let open_files = (soft < needed).then_some(needed.min(hard));
    if streams < wanted {
        println!(
            "the open-files hard limit is {hard}: holding {streams} streams instead of {wanted}"
        );
    }
    let limits = Limits {
        open_files,
        ..Limits::default()
    };
    let deployment = Deployment::start(target, bins, &log_dir, limits)?;
    let mut redis = match target.uses_redis() {
        true => Some(deployment.redis()?),
        false => None,
    };
    thread::sleep(Duration::from_millis(500));
    let rss_before_kib = deployment.rss_kib()?;
    let ready = log_dir.join("streams.ready");
    let _ = std::fs::remove_file(&ready);
    let name = format!("idle-streams-{target}");
    let load = match open_files {
        Some(limit) => Load::with_open_files(&bins.shoal_load, limit, "streams", &name, &log_dir),
        None => Load::new(&bins.shoal_load, "streams", &name, &log_dir),
    };
    let mut running = load
        .urls(&[&deployment.url])
        .flag("hold")
        .opt("streams", streams.to_string())
        .opt("duration", HOLD)
        .opt("warmup", "0s")
        .opt("concurrency", settings.concurrency.to_string())
        .opt("timeout", "60s")
        .opt("ready-file", &ready)
        .spawn()?;
    running
        .wait_for("all streams open", OPEN_STREAMS_TIMEOUT, || ready.exists())
        .with_context(|| deployment.log_tails())?;
    thread::sleep(SETTLE);
    let rss_after_kib = deployment.rss_kib()?;
    let redis_clients = match &mut redis {
        // Our own connection is one of them.
        Some(redis) => Some(
            redis
                .info_number("clients", "connected_clients")?
                .saturating_sub(1),
        ),
        None => None,
    };
    let summary = running.wait().with_context(|| deployment.log_tails())?;
    Ok(IdleStreams {
        target,
        requested: streams,
        open: summary.streams_open,
        rss_before_kib,
        rss_after_kib,
        redis_clients,
        open_files: open_files.unwrap_or(soft),
    })
}

/// Whole session lifecycles on the Redis host for the run's duration; then what is left.
pub(crate) fn churn(bins: &Binaries, settings: &Settings) -> Result<Churn> {
    let log_dir = settings.log_dir.join("churn");
    let deployment = Deployment::start(Target::ShoalRedis, bins, &log_dir, Limits::default())?;
    let mut redis = deployment.redis()?;
    thread::sleep(Duration::from_secs(1));
    let keys_before = redis.dbsize()?;
    let memory_before = redis.info_number("memory", "used_memory")?;
    let baseline: BTreeSet<String> = redis.keys(KEY_SCAN_LIMIT)?.into_iter().collect();
    let summary = Load::new(&bins.shoal_load, "churn", "churn", &log_dir)
        .urls(&[&deployment.url])
        .opt("duration", &settings.duration_text)
        .opt("warmup", "0s")
        .opt("concurrency", settings.concurrency.to_string())
        .run()
        .with_context(|| deployment.log_tails())?;
    thread::sleep(SETTLE);
    let keys_after = redis.dbsize()?;
    let memory_after = redis.info_number("memory", "used_memory")?;
    let mut leftovers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for key in redis.keys(KEY_SCAN_LIMIT)? {
        if baseline.contains(&key) {
            continue;
        }
        let expires = redis.ttl(&key)?.is_some();
        let entry = leftovers.entry(redis::key_pattern(&key)).or_default();
        entry.0 += 1;
        entry.1 += u64::from(expires);
    }
    Ok(Churn {
        summary,
        keys_before,
        keys_after,
        memory_before,
        memory_after,
        leftovers: leftovers
            .into_iter()
            .map(|(pattern, (count, expiring))| (pattern, count, expiring))
            .collect(),
    })
}

/// One session, `last` calls: the replica's memory once `first` calls are done and at the end.
pub(crate) fn long_calls(
    bins: &Binaries,
    settings: &Settings,
    first: u64,
    last: u64,
) -> Result<Long> {
    let log_dir = settings.log_dir.join("long-calls");
    let deployment = Deployment::start(Target::ShoalMemory, bins, &log_dir, Limits::default())?;
    let running = Load::new(&bins.shoal_load, "calls", "long-calls", &log_dir)
        .urls(&[&deployment.url])
        .opt("requests", last.to_string())
        .opt("sessions", "1")
        .opt("warmup", "0s")
        .opt("concurrency", settings.concurrency.to_string())
        .spawn()?;
    long_run(
        &deployment,
        running,
        "calls in one session",
        (first, last),
        || deployment.tool_calls(None),
    )
}

/// `last` whole session lifecycles: the replica's memory after `first` of them and at the end.
pub(crate) fn long_churn(
    bins: &Binaries,
    settings: &Settings,
    first: u64,
    last: u64,
) -> Result<Long> {
    let log_dir = settings.log_dir.join("long-churn");
    let deployment = Deployment::start(Target::ShoalMemory, bins, &log_dir, Limits::default())?;
    let running = Load::new(&bins.shoal_load, "churn", "long-churn", &log_dir)
        .urls(&[&deployment.url])
        .opt("requests", last.to_string())
        .opt("warmup", "0s")
        .opt("concurrency", settings.concurrency.to_string())
        .spawn()?;
    long_run(
        &deployment,
        running,
        "sessions created and deleted",
        (first, last),
        || deployment.initializes(),
    )
}

/// Polls the replica's RSS while the load runs. One sample is noise: the allocator returns and
/// takes pages by the megabyte under load (RSS swung 21-31 MiB from second to second over 1.5M
/// calls with no trend). So each point is the median of the samples around it: from half of
/// `first` to `first`, and over the last tenth of the `last` operations.
fn long_run(
    deployment: &Deployment,
    mut running: Running,
    unit: &'static str,
    (first, last): (u64, u64),
    mut progress: impl FnMut() -> Result<f64>,
) -> Result<Long> {
    let started = Instant::now();
    let mut early = Vec::new();
    let mut late = Vec::new();
    let mut first_at = None;
    while running.try_wait()?.is_none() {
        let done = progress()?;
        let kib = deployment.rss_kib()?;
        if done >= first as f64 / 2.0 && first_at.is_none() {
            early.push(kib);
            if done >= first as f64 {
                println!(
                    "{done:.0} {unit} after {:.0}s: RSS {} (median of {} samples)",
                    started.elapsed().as_secs_f64(),
                    mib(median(&early)),
                    early.len()
                );
                first_at = Some(done as u64);
            }
        }
        if done >= last as f64 * 0.9 {
            late.push(kib);
        }
        thread::sleep(POLL_INTERVAL);
    }
    if late.is_empty() {
        late.push(deployment.rss_kib()?);
    }
    let last_at = progress()? as u64;
    let summary = running.wait().with_context(|| deployment.log_tails())?;
    let first_at =
        first_at.with_context(|| format!("the run ended before {first} {unit} were counted"))?;
    Ok(Long {
        unit,
        first_at,
        first_kib: median(&early),
        last_at,
        last_kib: median(&late),
        summary,
    })
}

/// The median of `samples` (the lower one of an even count); 0 for none.
fn median(samples: &[u64]) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

/// `a / b`, NaN when `b` is zero.
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

/// Resident memory as `12.3 MiB`.
pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
