//! The tables, the targets with PASS/MISS, and the results files (`results.json`, and
//! `results.md` for docs/performance.md).
//!
//! One file (about 1,080 lines): every table and target is a small function over the same results;
//! splitting by table would scatter the one place a reader checks what is reported.

use serde_json::{Value, json};

use super::load::Summary;
use super::measure::{
    Calls, Churn, CrossReplica, Era, IdleStreams, Listen, Long, Mrtr, RedisCost, mib, ratio,
};
use super::probe::Machine;
use super::targets::Target;
use super::{Results, Settings};

/// Redis commands per stateless `tools/call` still counted as none: the replicas' background
/// work, spread over the calls of the window.
const STATELESS_BACKGROUND: f64 = 0.01;
/// How the report states that goal.
const STATELESS_GOAL: &str = "0 (background < 0.01/call)";

/// A target's goal: how the measured value must compare.
#[derive(Debug, Clone, Copy)]
enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(min) => value >= min,
            Self::AtMost(max) => value <= max,
        }
    }
}

/// One target of the issue, with what this run measured.
#[derive(Debug, Clone)]
struct Verdict {
    what: &'static str,
    goal: String,
    /// `None` when the run did not measure it.
    measured: Option<(String, bool)>,
}

impl Verdict {
    fn new(what: &'static str, goal: &str) -> Self {
        Self {
            what,
            goal: goal.to_owned(),
            measured: None,
        }
    }

    /// Records `value` (shown as `shown`) against `goal`.
    fn check(mut self, value: Option<f64>, goal: Goal, shown: impl Fn(f64) -> String) -> Self {
        self.measured = value
            .filter(|v| v.is_finite())
            .map(|v| (shown(v), goal.met(v)));
        self
    }

    /// Records a measured text and an outcome computed elsewhere.
    fn set(mut self, measured: Option<(String, bool)>) -> Self {
        self.measured = measured;
        self
    }

    fn status(&self) -> &'static str {
        match &self.measured {
            None => "not run",
            Some((_, true)) => "PASS",
            Some((_, false)) => "MISS",
        }
    }
}

/// A table rendered as aligned text or Markdown: the first column left-aligned, the others
/// right-aligned unless [`Table::left_aligned`] says otherwise.
#[derive(Debug, Clone)]
struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Per column: left-aligned (text) rather than right-aligned (numbers).
    left: Vec<bool>,
}

impl Table {
    fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            left: (0..headers.len()).map(|i| i == 0).collect(),
        }
    }

    /// Left-aligns every column.
    fn left_aligned(mut self) -> Self {
        self.left.fill(true);
        self
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                std::iter::once(&self.headers[i])
                    .chain(self.rows.iter().filter_map(|row| row.get(i)))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| -> String {
            let mut out = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = width - cell.chars().count();
                if i > 0 {
                    out.push_str("  ");
                }
                if self.left[i] {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad));
                } else {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = format!("{}\n{}\n", self.title, line(&self.headers));
        let total: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    fn markdown(&self) -> String {
        let mut out = format!("**{}**\n\n| {} |\n|", self.title, self.headers.join(" | "));
        for left in &self.left {
            out.push_str(if *left { ":---|" } else { "---:|" });
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }
}

/// Everything printed and written at the end of a run.
#[derive(Debug)]
pub(crate) struct Report {
    heading: String,
    tables: Vec<Table>,
    verdicts: Vec<Verdict>,
    failures: Vec<(String, String)>,
    json: Value,
}

// === impl Report ===

impl Report {
    pub(crate) fn new(results: &Results, settings: &Settings, machine: &Machine) -> Self {
        let heading = format!(
            "Measured on {machine}; shoal-load closed loop, {} per run, concurrency {}, {}, \
             loopback; throughput: the median of {} rounds, targets in turn.",
            settings.duration_text,
            settings.concurrency,
            settings.sessions_text(),
            settings.rounds
        );
        let mut tables = Vec::new();
        tables.extend(calls_table(results, settings));
        tables.extend(stateless_calls_table(results, settings));
        tables.extend(mrtr_table(results));
        tables.extend(listen_table(results));
        tables.extend(redis_table(results));
        tables.extend(idle_streams_table(results));
        tables.extend(cross_replica_table(results));
        tables.extend(churn_table(results));
        tables.extend(long_table(results));
        let verdicts = verdicts(results);
        let json = json!({
            "machine": {
                "cpus": machine.cpus,
                "cpu_model": machine.cpu_model,
                "kernel": machine.kernel,
                "date": machine.date,
            },
            "settings": {
                "duration_secs": settings.duration.as_secs_f64(),
                "concurrency": settings.concurrency,
                "sessions": settings.sessions,
                "idle_streams": settings.idle_streams,
                "rounds": settings.rounds,
            },
            "calls": era_calls(results, Era::Sessions).map(calls_json).collect::<Vec<_>>(),
            "stateless_calls": era_calls(results, Era::Stateless)
                .map(calls_json)
                .collect::<Vec<_>>(),
            "mrtr": results.mrtr.as_ref().map(|m| json!({
                "rounds_per_call": m.rounds_per_call,
                "redis": cost_json(&m.redis, "rounds"),
                "shoal_load": m.summary.raw,
            })),
            "listen": results.listen.as_ref().map(|l| json!({
                "redis": cost_json(&l.redis, "updates"),
                "shoal_load": l.summary.raw,
            })),
            "cross_replica": results.cross_replica.as_ref().map(|c| json!({
                "commands_per_event": c.redis.commands_per_op(),
                "round_trips_per_event": c.redis.round_trips_per_op(),
                "events_in_window": c.redis.operations,
                "shoal_load": c.summary.raw,
            })),
            "idle_streams": results.idle_streams.iter().map(|s| json!({
                "target": s.target.name(),
                "streams_requested": s.requested,
                "streams_open": s.open,
                "rss_before_kib": s.rss_before_kib,
                "rss_holding_kib": s.rss_after_kib,
                "kib_per_stream": s.kib_per_stream(),
                "redis_clients": s.redis_clients,
                "open_files_limit": s.open_files,
            })).collect::<Vec<_>>(),
            "churn": results.churn.as_ref().map(|c| json!({
                "sessions": c.summary.ok,
                "keys_before": c.keys_before,
                "keys_after": c.keys_after,
                "used_memory_before": c.memory_before,
                "used_memory_after": c.memory_after,
                "leftover_keys": c.leftovers.iter().map(|(pattern, count, expiring)| json!({
                    "pattern": pattern, "count": count, "expiring": expiring,
                })).collect::<Vec<_>>(),
                "shoal_load": c.summary.raw,
            })),
            "long_calls": results.long_calls.as_ref().map(long_json),
            "long_churn": results.long_churn.as_ref().map(long_json),
            "targets": verdicts.iter().map(|v| json!({
                "target": v.what,
                "goal": v.goal,
                "measured": v.measured.as_ref().map(|(m, _)| m),
                "status": v.status(),
            })).collect::<Vec<_>>(),
            "failures": results.failures.iter().map(|(name, error)| json!({
                "measurement": name, "error": error,
            })).collect::<Vec<_>>(),
        });
        Self {
            heading,
            tables,
            verdicts,
            failures: results.failures.clone(),
            json,
        }
    }

    /// The tables, then the targets, for the terminal.
    pub(crate) fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.heading);
        for table in &self.tables {
            out.push_str(&table.text());
            out.push('\n');
        }
        out.push_str(&self.verdict_table().text());
        for (name, error) in &self.failures {
            let first = error.lines().next().unwrap_or("");
            out.push_str(&format!("\nFAILED {name}: {first}"));
        }
        out
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = format!("{}\n\n", self.heading);
        for table in &self.tables {
            out.push_str(&table.markdown());
            out.push('\n');
        }
        out.push_str(&self.verdict_table().markdown());
        for (name, error) in &self.failures {
            let first = error.lines().next().unwrap_or("");
            out.push_str(&format!("\nFailed: {name}: {first}\n"));
        }
        out
    }

    pub(crate) fn json(&self) -> String {
        serde_json::to_string_pretty(&self.json).unwrap_or_else(|_| "{}".to_owned())
    }

    fn verdict_table(&self) -> Table {
        let mut table = Table::new("Targets", &["target", "goal", "measured", ""]).left_aligned();
        for verdict in &self.verdicts {
            table.row(vec![
                verdict.what.to_owned(),
                verdict.goal.clone(),
                verdict
                    .measured
                    .as_ref()
                    .map_or_else(|| "—".to_owned(), |(m, _)| m.clone()),
                verdict.status().to_owned(),
            ]);
        }
        table
    }
}

/// One line after a throughput run.
pub(crate) fn calls_line(calls: &Calls) -> String {
    let s = &calls.summary;
    let mut line = format!(
        "{} ({}): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, RSS {}, errors {}",
        calls.target.label(),
        calls.era.revision(),
        s.throughput,
        s.p50_ms,
        s.p99_ms,
        mib(calls.rss_kib),
        s.errors_text()
    );
    if let Some(cost) = &calls.redis {
        line.push_str(&format!(
            "; Redis per tools/call: {:.2} commands, {:.2} round trips",
            cost.commands_per_op(),
            cost.round_trips_per_op()
        ));
    }
    line
}

pub(crate) fn mrtr_line(mrtr: &Mrtr) -> String {
    let s = &mrtr.summary;
    format!(
        "mrtr through 3 replicas: {:.0} calls/s, {:.2} rounds per call, p50 {:.2} ms, p99 {:.2} ms, \
         errors {}; Redis per round: {:.2} commands, {:.2} round trips",
        s.throughput,
        mrtr.rounds_per_call,
        s.p50_ms,
        s.p99_ms,
        s.errors_text(),
        mrtr.redis.commands_per_op(),
        mrtr.redis.round_trips_per_op()
    )
}

pub(crate) fn listen_line(listen: &Listen) -> String {
    delivery_line(
        "listen delivery across 3 replicas",
        ("deliveries", "update"),
        &listen.summary,
        &listen.redis,
    )
}

pub(crate) fn cross_replica_line(cross: &CrossReplica) -> String {
    delivery_line(
        "cross-replica delivery",
        ("events", "event"),
        &cross.summary,
        &cross.redis,
    )
}

/// One line after a delivery run; `(rate, unit)` name what is counted per second and what
/// the Redis cost is per.
fn delivery_line(what: &str, (rate, unit): (&str, &str), s: &Summary, redis: &RedisCost) -> String {
    format!(
        "{what}: {} streams open ({} failed), {:.0} {rate}/s, p50 {:.2} ms, p99 {:.2} ms, \
         errors {}, gaps/duplicates/reorders {}; Redis per {unit}: {:.2} commands, {:.2} round \
         trips",
        s.streams_open,
        s.streams_failed,
        s.throughput,
        s.p50_ms,
        s.p99_ms,
        s.errors_text(),
        s.event_faults,
        redis.commands_per_op(),
        redis.round_trips_per_op()
    )
}

pub(crate) fn idle_streams_line(idle: &IdleStreams) -> String {
    let mut line = format!(
        "{}: {} of {} streams open, RSS {} → {}, {:.1} KiB per stream",
        idle.target.label(),
        idle.open,
        idle.requested,
        mib(idle.rss_before_kib),
        mib(idle.rss_after_kib),
        idle.kib_per_stream()
    );
    if let Some(clients) = idle.redis_clients {
        line.push_str(&format!(", {clients} Redis connections"));
    }
    line
}

pub(crate) fn churn_line(churn: &Churn) -> String {
    format!(
        "churn: {} sessions ({:.0}/s), errors {}; Redis keys {} → {}, used_memory {} → {}, \
         {} leftover keys ({} never expire)",
        churn.summary.ok,
        churn.summary.throughput,
        churn.summary.errors_text(),
        churn.keys_before,
        churn.keys_after,
        bytes(churn.memory_before),
        bytes(churn.memory_after),
        churn.leftovers.iter().map(|(_, n, _)| n).sum::<u64>(),
        churn.leaked()
    )
}

pub(crate) fn long_line(long: &Long) -> String {
    format!(
        "{}: RSS {} at {}, {} at {} ({:+.1}%), errors {}",
        long.unit,
        mib(long.first_kib),
        long.first_at,
        mib(long.last_kib),
        long.last_at,
        long.growth() * 100.0,
        long.summary.errors_text()
    )
}

fn calls_table(results: &Results, settings: &Settings) -> Option<Table> {
    let mut table = Table::new(
        format!(
            "tools/call echo: {}, concurrency {}, {} per target (the 3 replicas through \
             rr-proxy, a test proxy that logs every request)",
            settings.sessions_text(),
            settings.concurrency,
            settings.duration_text
        ),
        &[
            "target", "req/s", "p50 ms", "p99 ms", "× axum", "× rmcp", "RSS", "errors",
        ],
    );
    let axum = throughput_of(results, Target::Axum);
    let rmcp = throughput_of(results, Target::Rmcp);
    for calls in era_calls(results, Era::Sessions) {
        let s = &calls.summary;
        let rss = match calls.target {
            Target::ShoalCluster => format!("{} (3 replicas)", mib(calls.rss_kib)),
            _ => mib(calls.rss_kib),
        };
        table.row(vec![
            calls.target.label().to_owned(),
            format!("{:.0}", s.throughput),
            format!("{:.2}", s.p50_ms),
            format!("{:.2}", s.p99_ms),
            times(axum.map(|a| ratio(s.throughput, a))),
            times(rmcp.map(|r| ratio(s.throughput, r))),
            rss,
            s.error_count().to_string(),
        ]);
    }
    (!table.rows.is_empty()).then_some(table)
}

fn stateless_calls_table(results: &Results, settings: &Settings) -> Option<Table> {
    let mut table = Table::new(
        format!(
            "Stateless tools/call echo (2026-07-28, no session), concurrency {}, {} per target \
             (the 3 replicas through rr-proxy)",
            settings.concurrency, settings.duration_text
        ),
        &[
            "target",
            "req/s",
            "p50 ms",
            "p99 ms",
            "× TS SDK 2.x",
            "× its 2025-11-25",
            "RSS",
            "errors",
        ],
    );
    let ts2 = era_calls(results, Era::Stateless)
        .find(|c| c.target == Target::Ts2Sdk)
        .map(|c| c.summary.throughput);
    for calls in era_calls(results, Era::Stateless) {
        let s = &calls.summary;
        let sessions = throughput_of(results, calls.target);
        table.row(vec![
            calls.target.label().to_owned(),
            format!("{:.0}", s.throughput),
            format!("{:.2}", s.p50_ms),
            format!("{:.2}", s.p99_ms),
            times(ts2.map(|t| ratio(s.throughput, t))),
            times(sessions.map(|t| ratio(s.throughput, t))),
            mib(calls.rss_kib),
            s.error_count().to_string(),
        ]);
    }
    (!table.rows.is_empty()).then_some(table)
}

fn mrtr_table(results: &Results) -> Option<Table> {
    let mrtr = results.mrtr.as_ref()?;
    let s = &mrtr.summary;
    let mut table = Table::new(
        "Multi round-trip tools/call (ask_user: input_required, answered and retried on the next \
         replica), 3 replicas on one Redis, client-side round robin",
        &[
            "calls/s",
            "rounds/call",
            "p50 ms",
            "p99 ms",
            "Redis commands/round",
            "round trips/round",
            "errors",
        ],
    );
    table.row(vec![
        format!("{:.0}", s.throughput),
        format!("{:.2}", mrtr.rounds_per_call),
        format!("{:.2}", s.p50_ms),
        format!("{:.2}", s.p99_ms),
        format!("{:.2}", mrtr.redis.commands_per_op()),
        format!("{:.2}", mrtr.redis.round_trips_per_op()),
        s.error_count().to_string(),
    ]);
    Some(table)
}

fn listen_table(results: &Results) -> Option<Table> {
    let listen = results.listen.as_ref()?;
    Some(delivery_table(
        "subscriptions/listen delivery: streams round robin over 3 replicas, resource updates \
         triggered on each replica in turn; latency trigger POST → update on each stream",
        "deliveries/s",
        &listen.summary,
    ))
}

/// One row of a delivery run: streams, rate, latency and faults.
fn delivery_table(title: &str, rate: &str, s: &Summary) -> Table {
    let mut table = Table::new(
        title,
        &[
            "streams",
            rate,
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "gaps/dups/reorders",
        ],
    );
    table.row(vec![
        s.streams_open.to_string(),
        format!("{:.0}", s.throughput),
        format!("{:.2}", s.p50_ms),
        format!("{:.2}", s.p99_ms),
        s.raw
            .pointer("/latency_ms/max")
            .and_then(Value::as_f64)
            .map_or_else(|| "—".to_owned(), |max| format!("{max:.2}")),
        s.error_count().to_string(),
        s.event_faults.to_string(),
    ]);
    table
}

fn redis_table(results: &Results) -> Option<Table> {
    let mut table = Table::new(
        "Redis cost (server-side counts over the same window)",
        &["workload", "operations", "commands/op", "round trips/op"],
    );
    let mut row = |workload: String, cost: &RedisCost| {
        table.row(vec![
            workload,
            format!("{:.0}", cost.operations),
            per_op(cost.commands_per_op()),
            per_op(cost.round_trips_per_op()),
        ]);
    };
    for calls in &results.calls {
        if let Some(cost) = &calls.redis {
            let workload = match calls.era {
                Era::Sessions => "tools/call",
                Era::Stateless => "stateless tools/call",
            };
            row(format!("{workload}, {}", calls.target.label()), cost);
        }
    }
    if let Some(mrtr) = &results.mrtr {
        row(
            "multi round-trip round (ask_user), 3 replicas".to_owned(),
            &mrtr.redis,
        );
    }
    if let Some(listen) = &results.listen {
        row(
            "resource update → listen streams, 3 replicas".to_owned(),
            &listen.redis,
        );
    }
    if let Some(cross) = &results.cross_replica {
        table.row(vec![
            "announce → standalone stream, 3 replicas".to_owned(),
            format!("{:.0}", cross.redis.operations),
            format!("{:.2}", cross.redis.commands_per_op()),
            format!("{:.2}", cross.redis.round_trips_per_op()),
        ]);
    }
    (!table.rows.is_empty()).then_some(table)
}

fn idle_streams_table(results: &Results) -> Option<Table> {
    let first = results.idle_streams.first()?;
    let mut table = Table::new(
        format!(
            "Idle standalone SSE streams held by one process (open-files limit {})",
            first.open_files
        ),
        &[
            "server",
            "streams",
            "RSS before",
            "RSS holding",
            "KiB/stream",
            "× axum",
            "Redis connections",
        ],
    );
    let axum = results
        .idle_streams
        .iter()
        .find(|s| s.target == Target::Axum)
        .map(IdleStreams::kib_per_stream);
    for idle in &results.idle_streams {
        let per_stream = idle.kib_per_stream();
        table.row(vec![
            idle.target.label().to_owned(),
            format!("{}/{}", idle.open, idle.requested),
            mib(idle.rss_before_kib),
            mib(idle.rss_after_kib),
            format!("{per_stream:.1}"),
            times(axum.map(|a| ratio(per_stream, a))),
            idle.redis_clients
                .map_or_else(|| "—".to_owned(), |n| n.to_string()),
        ]);
    }
    Some(table)
}

fn cross_replica_table(results: &Results) -> Option<Table> {
    let cross = results.cross_replica.as_ref()?;
    Some(delivery_table(
        "Cross-replica delivery: 3 replicas behind rr-proxy, standalone GET streams and \
         `announce` POSTs spread round robin over them; latency POST → notification",
        "events/s",
        &cross.summary,
    ))
}

fn churn_table(results: &Results) -> Option<Table> {
    let churn = results.churn.as_ref()?;
    let mut table = Table::new(
        "Session churn on Redis (initialize, 3 calls, DELETE), then 2 s to settle",
        &[
            "sessions",
            "sessions/s",
            "keys before",
            "keys after",
            "used_memory before",
            "after",
            "leftover keys",
        ],
    );
    let leftovers = if churn.leftovers.is_empty() {
        "none".to_owned()
    } else {
        churn
            .leftovers
            .iter()
            .map(|(pattern, count, expiring)| format!("{pattern} ×{count} ({expiring} expiring)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    table.row(vec![
        churn.summary.ok.to_string(),
        format!("{:.0}", churn.summary.throughput),
        churn.keys_before.to_string(),
        churn.keys_after.to_string(),
        bytes(churn.memory_before),
        bytes(churn.memory_after),
        leftovers,
    ]);
    Some(table)
}

fn long_table(results: &Results) -> Option<Table> {
    let mut table = Table::new(
        "Long runs: one replica, memory host",
        &["run", "first point", "RSS", "last point", "RSS", "growth"],
    );
    for long in [&results.long_calls, &results.long_churn]
        .into_iter()
        .flatten()
    {
        table.row(vec![
            long.unit.to_owned(),
            long.first_at.to_string(),
            mib(long.first_kib),
            long.last_at.to_string(),
            mib(long.last_kib),
            format!("{:+.1}%", long.growth() * 100.0),
        ]);
    }
    (!table.rows.is_empty()).then_some(table)
}

fn verdicts(results: &Results) -> Vec<Verdict> {
    let calls = |target| era_calls(results, Era::Sessions).find(|c| c.target == target);
    // The replicas' own background work (node heartbeats) runs whatever the load: a few
    // commands in the whole window. A call that used Redis would cost at least one each, so
    // "none per call" is judged as fewer than one per hundred calls, the counts shown.
    let stateless_cost = |target| {
        era_calls(results, Era::Stateless)
            .find(|c| c.target == target)
            .and_then(|c| c.redis)
            .map(|cost| {
                let per_call = cost.commands_per_op();
                (
                    format!(
                        "{per_call:.5} ({} commands in {:.0} calls)",
                        cost.commands, cost.operations
                    ),
                    Goal::AtMost(STATELESS_BACKGROUND).met(per_call),
                )
            })
    };
    let throughput = |target| throughput_of(results, target);
    let memory = throughput(Target::ShoalMemory);
    let vs = |other| Some(ratio(memory?, throughput(other)?));
    let shown_times = |v: f64| format!("{v:.2}×");
    let redis_cost = calls(Target::ShoalRedis).and_then(|c| c.redis);
    let idle = |target| {
        results
            .idle_streams
            .iter()
            .find(|s| s.target == target)
            .map(IdleStreams::kib_per_stream)
    };
    let idle_vs_axum = |target| Some(ratio(idle(target)?, idle(Target::Axum)?));

    let p99 = match (calls(Target::ShoalMemory), calls(Target::Rmcp)) {
        (Some(shoal), Some(rmcp)) => Some((
            format!(
                "{:.2} ms vs {:.2} ms",
                shoal.summary.p99_ms, rmcp.summary.p99_ms
            ),
            shoal.summary.p99_ms <= rmcp.summary.p99_ms,
        )),
        _ => None,
    };
    let clients = results
        .idle_streams
        .iter()
        .find(|s| s.target == Target::ShoalRedis)
        .and_then(|s| Some((s.redis_clients?, s.open)))
        .map(|(clients, open)| {
            (
                format!("{clients} for {open} streams"),
                clients.saturating_mul(100) <= open,
            )
        });
    let leaked = results.churn.as_ref().map(|churn| {
        let leftover: u64 = churn.leftovers.iter().map(|(_, n, _)| n).sum();
        (
            format!(
                "{} leaked, {} expiring, of {} sessions",
                churn.leaked(),
                leftover - churn.leaked(),
                churn.summary.ok
            ),
            churn.leaked() == 0,
        )
    });
    let memory_back = results.churn.as_ref().map(|churn| {
        let growth = ratio(
            churn.memory_after as f64 - churn.memory_before as f64,
            churn.memory_before as f64,
        );
        (
            format!(
                "{} → {} ({:+.1}%)",
                bytes(churn.memory_before),
                bytes(churn.memory_after),
                growth * 100.0
            ),
            growth <= 0.10,
        )
    });
    let flat = |long: &Option<Long>| {
        long.as_ref().map(|long| {
            (
                format!(
                    "{} → {} ({:+.1}%)",
                    mib(long.first_kib),
                    mib(long.last_kib),
                    long.growth() * 100.0
                ),
                long.growth().abs() <= 0.10,
            )
        })
    };

    vec![
        Verdict::new("Shoal memory tools/call throughput vs rmcp", "≥ 1.0×").check(
            vs(Target::Rmcp),
            Goal::AtLeast(1.0),
            shown_times,
        ),
        Verdict::new("Shoal memory tools/call p99 vs rmcp", "no worse").set(p99),
        Verdict::new("Shoal memory tools/call throughput vs axum", "≥ 0.6×").check(
            vs(Target::Axum),
            Goal::AtLeast(0.6),
            shown_times,
        ),
        Verdict::new("Shoal memory tools/call throughput vs TS SDK", "≥ 10×").check(
            vs(Target::TsSdk),
            Goal::AtLeast(10.0),
            shown_times,
        ),
        Verdict::new("Shoal Redis throughput vs Shoal memory", "≥ 0.7×").check(
            throughput(Target::ShoalRedis).and_then(|r| Some(ratio(r, memory?))),
            Goal::AtLeast(0.7),
            shown_times,
        ),
        Verdict::new("Redis round trips per tools/call", "≤ 2").check(
            redis_cost.map(|c| c.round_trips_per_op()),
            Goal::AtMost(2.0),
            |v| format!("{v:.2}"),
        ),
        Verdict::new("Redis commands per tools/call", "≤ 4").check(
            redis_cost.map(|c| c.commands_per_op()),
            Goal::AtMost(4.0),
            |v| format!("{v:.2}"),
        ),
        Verdict::new(
            "Redis commands per stateless tools/call, Redis host",
            STATELESS_GOAL,
        )
        .set(stateless_cost(Target::ShoalRedis)),
        Verdict::new(
            "Redis commands per stateless tools/call, 3 replicas",
            STATELESS_GOAL,
        )
        .set(stateless_cost(Target::ShoalCluster)),
        Verdict::new(
            "Redis round trips per multi round-trip round, 3 replicas",
            "≤ 2",
        )
        .check(
            results.mrtr.as_ref().map(|m| m.redis.round_trips_per_op()),
            Goal::AtMost(2.0),
            |v| format!("{v:.2}"),
        ),
        Verdict::new("Listen delivery p99 across 3 replicas", "≤ 5 ms").check(
            results.listen.as_ref().map(|l| l.summary.p99_ms),
            Goal::AtMost(5.0),
            |v| format!("{v:.2} ms"),
        ),
        Verdict::new("Cross-replica event delivery p99", "≤ 5 ms").check(
            results.cross_replica.as_ref().map(|c| c.summary.p99_ms),
            Goal::AtMost(5.0),
            |v| format!("{v:.2} ms"),
        ),
        Verdict::new(
            "RSS per idle stream, Shoal memory vs bare axum SSE",
            "≤ 1.15×",
        )
        .check(
            idle_vs_axum(Target::ShoalMemory),
            Goal::AtMost(1.15),
            shown_times,
        ),
        Verdict::new(
            "RSS per idle stream, Shoal Redis vs bare axum SSE",
            "≤ 1.15×",
        )
        .check(
            idle_vs_axum(Target::ShoalRedis),
            Goal::AtMost(1.15),
            shown_times,
        ),
        Verdict::new(
            "Redis connections of a replica holding the idle streams",
            "bounded (≤ 1% of streams)",
        )
        .set(clients),
        Verdict::new(
            "Session churn: no leaked Redis keys",
            "0 keys without expiry",
        )
        .set(leaked),
        Verdict::new(
            "Session churn: Redis used_memory back to baseline",
            "within 10%",
        )
        .set(memory_back),
        Verdict::new(
            "Replica RSS from 100k to 1M calls in one session",
            "flat (within 10%)",
        )
        .set(flat(&results.long_calls)),
        Verdict::new(
            "Replica RSS from 10k to 100k sessions created and deleted",
            "flat (within 10%)",
        )
        .set(flat(&results.long_churn)),
    ]
}

/// The session-era throughput of `target`.
fn throughput_of(results: &Results, target: Target) -> Option<f64> {
    era_calls(results, Era::Sessions)
        .find(|c| c.target == target)
        .map(|c| c.summary.throughput)
}

/// The throughput runs of one era.
fn era_calls(results: &Results, era: Era) -> impl Iterator<Item = &Calls> {
    results.calls.iter().filter(move |c| c.era == era)
}

/// A Redis cost in the results file, its operations called `unit`.
fn cost_json(cost: &RedisCost, unit: &str) -> Value {
    json!({
        unit: cost.operations,
        "commands": cost.commands,
        "round_trips": cost.round_trips,
        "commands_per_op": cost.commands_per_op(),
        "round_trips_per_op": cost.round_trips_per_op(),
    })
}

fn calls_json(calls: &Calls) -> Value {
    json!({
        "target": calls.target.name(),
        "label": calls.target.label(),
        "revision": calls.era.revision(),
        "throughput_per_sec": calls.summary.throughput,
        "p50_ms": calls.summary.p50_ms,
        "p99_ms": calls.summary.p99_ms,
        "rss_kib": calls.rss_kib,
        "redis": calls.redis.map(|c| json!({
            "tools_calls": c.operations,
            "commands": c.commands,
            "round_trips": c.round_trips,
            "commands_per_call": c.commands_per_op(),
            "round_trips_per_call": c.round_trips_per_op(),
        })),
        "shoal_load": calls.summary.raw,
    })
}

fn long_json(long: &Long) -> Value {
    json!({
        "unit": long.unit,
        "first_at": long.first_at,
        "first_rss_kib": long.first_kib,
        "last_at": long.last_at,
        "last_rss_kib": long.last_kib,
        "growth": long.growth(),
        "shoal_load": long.summary.raw,
    })
}

/// A cost per operation: two decimals, or five for a small one that is not zero (background
/// work spread over many operations must not read as none).
fn per_op(value: f64) -> String {
    if value > 0.0 && value < 0.005 {
        format!("{value:.5}")
    } else {
        format!("{value:.2}")
    }
}

/// `1.23×`, or `—` when unknown.
fn times(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.2}×"),
        _ => "—".to_owned(),
    }
}

/// Bytes as `1.2 MiB` or `345.6 KiB`.
fn bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.2} MiB", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_render_markdown() {
        let mut table = Table::new("T", &["name", "n"]);
        table.row(vec!["a".to_owned(), "1.00×".to_owned()]);
        table.row(vec!["bbb".to_owned(), "22".to_owned()]);
        assert_eq!(
            table.text(),
            "T\nname      n\n-----------\na     1.00×\nbbb      22\n"
        );
        assert_eq!(
            table.markdown(),
            "**T**\n\n| name | n |\n|:---|---:|\n| a | 1.00× |\n| bbb | 22 |\n"
        );
    }

    #[test]
    fn goals_compare_both_ways() {
        assert!(Goal::AtLeast(1.0).met(1.0));
        assert!(!Goal::AtLeast(1.0).met(0.99));
        assert!(Goal::AtMost(2.0).met(2.0));
        assert!(!Goal::AtMost(2.0).met(2.01));
    }

    #[test]
    fn stateless_calls_pass_with_background_commands_only() {
        let summary = Summary::parse(r#"{"operations":1000,"throughput_per_sec":100.0}"#).unwrap();
        let run = |commands| Calls {
            target: Target::ShoalRedis,
            era: Era::Stateless,
            summary: summary.clone(),
            rss_kib: 1024,
            redis: Some(RedisCost {
                operations: 100_000.0,
                commands,
                round_trips: commands as f64,
            }),
        };
        let status = |commands| {
            let results = Results {
                calls: vec![run(commands)],
                ..Results::default()
            };
            let verdicts = verdicts(&results);
            let verdict = verdicts
                .iter()
                .find(|v| v.what == "Redis commands per stateless tools/call, Redis host")
                .unwrap();
            (verdict.status(), verdict.measured.clone().unwrap().0)
        };
        assert_eq!(
            status(7),
            ("PASS", "0.00007 (7 commands in 100000 calls)".to_owned())
        );
        assert_eq!(status(100_000).0, "MISS");
        assert_eq!(per_op(0.00007), "0.00007");
        assert_eq!(per_op(0.0), "0.00");
        assert_eq!(per_op(0.5), "0.50");
    }

    #[test]
    fn unmeasured_targets_are_not_run() {
        let verdicts = verdicts(&Results::default());
        assert_eq!(verdicts.len(), 19);
        assert!(verdicts.iter().all(|v| v.status() == "not run"));
    }
}
