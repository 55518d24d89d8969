//! The `observability` step: Shoal's alert rules and Grafana dashboard checked against a real
//! Prometheus scraping three real replicas.
//!
//! 1. `promtool check rules` and `promtool test rules` on `deploy/prometheus/shoal-alerts.yaml`
//!    and its unit tests `deploy/prometheus/shoal-alerts.test.yaml`.
//! 2. `redis-server`, three `shoal serve --tools demo --session-host redis://…
//!    --shutdown-delay 2s --drain-timeout 2s` and the round-robin proxy, started by the test
//!    kit's `ShoalCluster` as in [`crate::cluster`], the proxy serving its metrics on a second
//!    loopback listener (`RoundRobinProxy::serve_metrics`, labelled `backend="replica-<i>"`);
//!    then Debian's `prometheus` on a free loopback port with a generated configuration
//!    scraping the replicas' admin `/metrics` as job `shoal` and the proxy's `/metrics` as job
//!    `rr-proxy`, every second (TSDB under `target/xtask/observability/tsdb`). Logs go to
//!    `target/xtask/observability/` (emptied first): `replica-<i>.log`, `prometheus.log`, and
//!    when the step ends Redis's `redis.log` and `rr-proxy.log` (every request the proxy
//!    answered, and where).
//! 3. About [`LOAD_DURATION`] of load through the proxy: sessions that initialize, call `echo`,
//!    call a tool no provider knows (a JSON-RPC error), call `count` with a progress token (an
//!    SSE reply), resume that stream with `GET` + `Last-Event-ID`, and `DELETE`; meanwhile one
//!    replica is restarted (SIGTERM, drained, started again on the same ports, logging on in
//!    its `replica-<i>.log`).
//! 4. Every PromQL expression of `deploy/grafana/shoal-dashboard.json` and every alert `expr`
//!    goes to `/api/v1/query`, and each must return a non-empty result; so must the proxy's
//!    [`PROXY_EXPRS`], with one series per replica. A table of expression → result count is
//!    printed.
//!
//! Dashboard variables are substituted as Grafana would with "All" selected in a Prometheus
//! without a `namespace` label: `$job` → `shoal`, `$namespace` → `.*` (matches the absent
//! label), `$__rate_interval` → `1m`; `${datasource}` only names the data source.
//!
//! Alert expressions are mostly empty when nothing fires, so each is probed without its
//! threshold: it is split at top-level `and` / `unless`, and a trailing top-level comparison
//! with a number (`> 0.05`, `== 0`) is removed from each part; every part must return data.
//! This proves each selector, label and function matches what Shoal exports; the thresholds
//! themselves are covered by the promtool unit tests.
//!
//! The exception: the `shoal_oauth_*` counters exist only with `--auth oauth`, which this run
//! does not use. Expressions of them may return nothing
//! here (they are listed as such); instead every `shoal_oauth_*` name they use must be a string
//! literal in the auth crate's [`OAUTH_SOURCES`], which catches a misspelt metric.
//!
//! Everything runs on loopback, is bounded in time and is stopped when the step ends.
//!
//! One file (about 830 lines, over the 800 the project aims for: splitting would scatter one
//! step's private helpers across modules): the step above in order, and the small blocking HTTP client,
//! dashboard and rule readers and PromQL probe rewriting that only it uses, each unit-tested
//! below.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use shoal_testkit::cluster::ShoalCluster;

use crate::Repo;
use crate::cmd;
use crate::process::{self, Process, wait_until};
use crate::server::{self, ToolSet, free_ports, http_get_status};
use crate::tools::Tools;
use crate::topology::{Runtime, clear_dir, copy_log, log_tail, write_proxy_log};

/// The alert rules, relative to the workspace root.
const RULES: &str = "deploy/prometheus/shoal-alerts.yaml";
/// Their promtool unit tests.
const RULE_TESTS: &str = "deploy/prometheus/shoal-alerts.test.yaml";
/// The Grafana dashboard.
const DASHBOARD: &str = "deploy/grafana/shoal-dashboard.json";
/// How many replicas run.
const REPLICAS: usize = 3;
/// How long load is driven through the proxy.
const LOAD_DURATION: Duration = Duration::from_secs(15);
/// When, after the load started, a replica is restarted.
const RESTART_AFTER: Duration = Duration::from_secs(5);
/// Bound on one HTTP exchange (connect, write, read to the end).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The protocol version the load speaks (streams start with a priming event id).
const PROTOCOL_VERSION: &str = "2025-11-25";
/// Queries of the proxy's own metrics (job `rr-proxy`): each must return one series per
/// replica.
const PROXY_EXPRS: [&str; 2] = [
    "sum by (backend) (rate(rr_proxy_requests_total[1m]))",
    "rr_proxy_backend_ready",
];
/// The prefix of the metrics that only `--auth oauth` exports (see the module docs).
const OAUTH_PREFIX: &str = "shoal_oauth_";
/// Where those metrics are named, relative to the workspace root.
const OAUTH_SOURCES: &str = "crates/shoal-auth/src/server";
/// The variable values of the local run (see the module docs).
const SUBSTITUTIONS: [(&str, &str); 4] = [
    ("${job}", "shoal"),
    ("$job", "shoal"),
    ("$namespace", ".*"),
    ("$__rate_interval", "1m"),
];

/// Runs the step.
pub(crate) fn run(repo: &Repo, tools: &Tools) -> Result<()> {
    let promtool = cmd::which("promtool")
        .context("promtool is not on PATH (the tools step installs Debian's prometheus)")?;
    let prometheus = cmd::which("prometheus")
        .context("prometheus is not on PATH (the tools step installs Debian's prometheus)")?;
    cmd::run(
        Command::new(&promtool)
            .current_dir(repo.root())
            .args(["check", "rules", RULES]),
    )?;
    cmd::run(
        Command::new(&promtool)
            .current_dir(repo.root())
            .args(["test", "rules", RULE_TESTS]),
    )?;

    let dashboard = dashboard_exprs(&repo.root().join(DASHBOARD))?;
    let alerts = alert_exprs(&repo.root().join(RULES))?;
    check_oauth_names(
        &repo.root().join(OAUTH_SOURCES),
        dashboard.iter().chain(&alerts),
    )?;

    let shoal = server::build(repo, tools)?;
    // The test kit finds it the same way; this says how to get it when it is missing.
    process::redis_server()?;
    let dir = repo.target().join("xtask").join("observability");
    clear_dir(&dir)?;

    // The proxy serves from the runtime's workers while this thread drives the load.
    let runtime = Runtime::new()?;
    let cluster = ShoalCluster::builder(shoal)
        .replicas(REPLICAS)
        .tools(ToolSet::Demo.to_string())
        // Long enough for a 1 s scrape to see shoal_draining = 1.
        .arg("--shutdown-delay")
        .arg("2s")
        .arg("--drain-timeout")
        .arg("2s")
        .log_dir(&dir);
    let mut cluster = runtime.run("the cluster did not start", cluster.start())?;
    let mut prometheus_process = None;
    let outcome = run_cluster(
        &runtime,
        &mut cluster,
        &prometheus,
        &dir,
        &mut prometheus_process,
        &dashboard,
        &alerts,
    );
    if let Err(error) = keep_logs(&cluster, &dir) {
        eprintln!("{error:#}");
    }
    if outcome.is_err() {
        for i in 0..cluster.len() {
            eprintln!(
                "{}",
                log_tail(&dir.join(format!("{}.log", cluster.node_id(i))))
            );
        }
        if let Some(process) = &prometheus_process {
            eprintln!("{}", process.log_tail());
        }
    }
    // Stop Prometheus, then the proxy and the replicas, then Redis.
    drop(prometheus_process);
    runtime.stop(cluster);
    outcome
}

/// Starts the proxy's metrics listener and Prometheus (into `prometheus_process`), drives the
/// load with a restart, and queries every expression.
fn run_cluster(
    runtime: &Runtime,
    cluster: &mut ShoalCluster,
    prometheus: &Path,
    dir: &Path,
    prometheus_process: &mut Option<Process>,
    dashboard: &[(String, String)],
    alerts: &[(String, String)],
) -> Result<()> {
    let proxy_addr = cluster.proxy().addr();
    let proxy_metrics_addr = runtime
        .run(
            "the proxy's metrics did not start",
            cluster
                .proxy_mut()
                .serve_metrics((Ipv4Addr::LOCALHOST, 0).into()),
        )?
        .context("cannot serve the proxy's metrics")?;

    let [prometheus_addr] = free_ports()?;
    let config = dir.join("prometheus.yml");
    let targets: Vec<String> = (0..cluster.len())
        .map(|i| format!("'{}'", cluster.admin_addr(i)))
        .collect();
    fs::write(
        &config,
        format!(
            "# Generated by `cargo xtask observability`.\nglobal:\n  scrape_interval: 1s\n  \
             scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shoal\n    \
             static_configs:\n      - targets: [{}]\n  - job_name: rr-proxy\n    \
             static_configs:\n      - targets: ['{proxy_metrics_addr}']\n",
            targets.join(", ")
        ),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let tsdb = dir.join("tsdb");
    let mut command = Command::new(prometheus);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={prometheus_addr}"))
        .arg("--storage.tsdb.retention.time=1h")
        .current_dir(dir);
    let process = prometheus_process.insert(Process::spawn("prometheus", &mut command, dir)?);
    wait_until(process, || {
        matches!(http_get_status(prometheus_addr, "/-/ready"), Ok(200))
    })?;
    println!(
        "prometheus on http://{prometheus_addr} scrapes {REPLICAS} replicas behind http://{proxy_addr}/mcp \
         and the proxy's http://{proxy_metrics_addr}/metrics"
    );

    // Load, with one replica restarted part-way.
    let started = Instant::now();
    let mut stats = LoadStats::default();
    let mut restarted = false;
    while started.elapsed() < LOAD_DURATION {
        if !restarted && started.elapsed() >= RESTART_AFTER {
            restarted = true;
            let i = 1;
            println!("restarting replica-{i} (SIGTERM, drain, start again)");
            runtime.run(&format!("replica-{i} did not restart"), async {
                cluster.terminate(i).await;
                cluster.restart(i).await;
            })?;
        }
        match session(proxy_addr) {
            Ok(()) => stats.ok += 1,
            Err(error) => {
                stats.failed += 1;
                if stats.failed <= 3 {
                    println!("a load session failed (tolerated): {error:#}");
                }
            }
        }
    }
    println!(
        "load: {} sessions completed, {} failed",
        stats.ok, stats.failed
    );
    if stats.ok == 0 {
        bail!("no load session completed");
    }
    // Two more scrapes after the last request.
    thread::sleep(Duration::from_secs(3));

    let mut table = String::new();
    let mut empty = Vec::new();
    let mut oauth_only = 0;
    for (source, expr) in dashboard.iter().chain(alerts) {
        let count = query(prometheus_addr, expr).with_context(|| format!("{source}: {expr}"))?;
        let _ = writeln!(table, "{count:>6}  {source}: {}", one_line(expr));
        if count == 0 {
            if oauth_metric_names(expr).is_empty() {
                empty.push(format!("{source}: {expr}"));
            } else {
                // Not exported without --auth oauth; its names were checked against the source.
                oauth_only += 1;
            }
        }
    }
    let mut short = Vec::new();
    for expr in PROXY_EXPRS {
        let count = query(prometheus_addr, expr).with_context(|| format!("rr-proxy: {expr}"))?;
        let _ = writeln!(table, "{count:>6}  rr-proxy: {expr}");
        if count != REPLICAS {
            short.push(format!(
                "rr-proxy: {expr} returned {count} series, not one per replica ({REPLICAS})"
            ));
        }
    }
    println!(
        "results  expression (variables: $job=shoal, $namespace=.*, $__rate_interval=1m)\n{table}"
    );
    if !short.is_empty() {
        bail!("{}", short.join("\n"));
    }
    if !empty.is_empty() {
        bail!(
            "{} expressions returned no data:\n{}",
            empty.len(),
            empty.join("\n")
        );
    }
    println!(
        "all {} dashboard, {} alert and {} rr-proxy expressions returned data, but {oauth_only} \
         of shoal_oauth_* metrics (--auth oauth only; their names are in {OAUTH_SOURCES})",
        dashboard.len(),
        alerts.len(),
        PROXY_EXPRS.len()
    );
    Ok(())
}

#[derive(Debug, Default)]
struct LoadStats {
    ok: usize,
    failed: usize,
}

/// One session's worth of load through the proxy at `addr`.
fn session(addr: SocketAddr) -> Result<()> {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
        "clientInfo": {"name": "xtask-observability", "version": "0"}}});
    let reply = mcp(addr, "POST", None, &[], Some(&init))?;
    let sid = reply
        .header("mcp-session-id")
        .context("initialize returned no Mcp-Session-Id")?
        .to_owned();
    let sid = Some(sid.as_str());
    mcp(
        addr,
        "POST",
        sid,
        &[],
        Some(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
    )?;
    let echo = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hello"}}});
    mcp(addr, "POST", sid, &[], Some(&echo))?;
    let unknown = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "no_such_tool", "arguments": {}}});
    mcp(addr, "POST", sid, &[], Some(&unknown))?;
    let count = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "count", "arguments": {"to": 3, "interval_ms": 50},
                   "_meta": {"progressToken": "p4"}}});
    let streamed = mcp(addr, "POST", sid, &[], Some(&count))?;
    let first_id = streamed
        .body
        .lines()
        .find_map(|line| line.strip_prefix("id:"))
        .map(str::trim)
        .context("count's SSE reply has no event id")?
        .to_owned();
    mcp(addr, "GET", sid, &[("Last-Event-ID", &first_id)], None)?;
    mcp(addr, "DELETE", sid, &[], None)?;
    Ok(())
}

/// One MCP HTTP exchange; fails on a status other than 2xx, except for the unknown tool's.
fn mcp(
    addr: SocketAddr,
    method: &str,
    session: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<Response> {
    let mut headers = vec![
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", PROTOCOL_VERSION),
    ];
    if let Some(session) = session {
        headers.push(("Mcp-Session-Id", session));
    }
    headers.extend_from_slice(extra);
    let body = body.map(Value::to_string);
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let response = http(addr, method, "/mcp", &headers, body.as_deref())?;
    if !(200..300).contains(&response.status) {
        bail!(
            "{method} /mcp answered {}: {}",
            response.status,
            response.body
        );
    }
    Ok(response)
}

/// Runs `expr` as an instant query and returns how many series or samples it returned.
fn query(prometheus: SocketAddr, expr: &str) -> Result<usize> {
    let path = format!("/api/v1/query?query={}", percent_encode(expr));
    let response = http(prometheus, "GET", &path, &[], None)?;
    let reply: Value = serde_json::from_str(&response.body)
        .with_context(|| format!("not JSON ({}): {}", response.status, response.body))?;
    if reply["status"] != "success" {
        bail!("query failed: {reply}");
    }
    match &reply["data"]["result"] {
        Value::Array(items) => Ok(items.len()),
        // A scalar or string result is one value.
        Value::Null => bail!("no result in {reply}"),
        _ => Ok(1),
    }
}

/// `(source, expr)` of every dashboard target, with the local variable values.
fn dashboard_exprs(path: &Path) -> Result<Vec<(String, String)>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dashboard: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let mut exprs = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                if !(expr.contains("$job") && expr.contains("$namespace")) {
                    bail!(
                        "panel {:?}: {expr} does not use $job and $namespace",
                        panel["title"]
                    );
                }
                let source = format!(
                    "panel {:?} {}",
                    panel["title"].as_str().unwrap_or("?"),
                    target["refId"].as_str().unwrap_or("?")
                );
                exprs.push((source, substitute(expr)));
            }
        }
    }
    if exprs.is_empty() {
        bail!("{} has no PromQL targets", path.display());
    }
    Ok(exprs)
}

/// The `shoal_oauth_*` metric names `expr` uses.
fn oauth_metric_names(expr: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find(OAUTH_PREFIX) {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(&tail[..end]);
        rest = &tail[end..];
    }
    names
}

/// Fails unless every `shoal_oauth_*` name of `exprs` is a string literal (`"name"`) in a `.rs`
/// file under `dir`.
fn check_oauth_names<'a>(
    dir: &Path,
    exprs: impl Iterator<Item = &'a (String, String)>,
) -> Result<()> {
    let mut sources = String::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                sources.push_str(
                    &fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                );
            }
        }
    }
    let mut unknown = Vec::new();
    for (source, expr) in exprs {
        for name in oauth_metric_names(expr) {
            if !sources.contains(&format!("\"{name}\"")) {
                unknown.push(format!("{source}: {name}"));
            }
        }
    }
    if !unknown.is_empty() {
        bail!(
            "metrics that {} does not name:\n{}",
            dir.display(),
            unknown.join("\n")
        );
    }
    Ok(())
}

/// Writes what the proxy served to `rr-proxy.log` and copies Redis's log (which lives in the
/// test kit's temporary directory, removed on drop) into `dir`.
fn keep_logs(cluster: &ShoalCluster, dir: &Path) -> Result<()> {
    write_proxy_log(cluster.proxy(), &dir.join("rr-proxy.log"))?;
    if let Some(redis) = cluster.redis() {
        copy_log(&redis.dir().join("redis.log"), &dir.join("redis.log"))?;
    }
    Ok(())
}

fn substitute(expr: &str) -> String {
    SUBSTITUTIONS
        .iter()
        .fold(expr.to_owned(), |expr, (from, to)| expr.replace(from, to))
}

/// `(source, probe)` for every alert of the rule file: each top-level `and`/`unless` operand
/// of its expression, without a trailing comparison with a number.
fn alert_exprs(path: &Path) -> Result<Vec<(String, String)>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut probes = Vec::new();
    for (alert, expr) in parse_rules(&text) {
        let parts = split_top_level(&expr);
        let many = parts.len() > 1;
        for (i, part) in parts.iter().enumerate() {
            let source = if many {
                format!("alert {alert} (operand {})", i + 1)
            } else {
                format!("alert {alert}")
            };
            probes.push((source, strip_comparison(part).to_owned()));
        }
    }
    if probes.is_empty() {
        bail!("{} has no alerts", path.display());
    }
    Ok(probes)
}

/// `(alert, expr)` pairs of a rule file laid out as ours is: `- alert: NAME` then `expr:` with
/// the expression inline or as a `|` block.
fn parse_rules(text: &str) -> Vec<(String, String)> {
    let mut rules = Vec::new();
    let mut alert: Option<String> = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alert = Some(name.trim().to_owned());
        } else if let Some(rest) = trimmed.strip_prefix("expr:") {
            let Some(name) = alert.take() else { continue };
            let rest = rest.trim();
            if rest.starts_with('|') || rest.starts_with('>') {
                let indent = line.len() - trimmed.len();
                let mut block = Vec::new();
                while let Some(next) = lines.peek() {
                    let next_indent = next.len() - next.trim_start().len();
                    if !next.trim().is_empty() && next_indent <= indent {
                        break;
                    }
                    block.push(next.trim());
                    lines.next();
                }
                rules.push((name, block.join(" ").trim().to_owned()));
            } else {
                rules.push((name, rest.to_owned()));
            }
        }
    }
    rules
}

/// Splits `expr` at `and` / `unless` outside parentheses, braces, brackets and quotes.
fn split_top_level(expr: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0_i32;
    let mut quoted = false;
    let words: Vec<&str> = expr.split_whitespace().collect();
    for word in words {
        if depth == 0 && !quoted && (word == "and" || word == "unless") {
            parts.push(current.trim().to_owned());
            current.clear();
            continue;
        }
        for c in word.chars() {
            match c {
                '"' => quoted = !quoted,
                '(' | '{' | '[' if !quoted => depth += 1,
                ')' | '}' | ']' if !quoted => depth -= 1,
                _ => {}
            }
        }
        current.push_str(word);
        current.push(' ');
    }
    parts.push(current.trim().to_owned());
    parts
}

/// `expr` without a trailing top-level `OP number` (OP one of `==`, `!=`, `>=`, `<=`, `>`, `<`).
fn strip_comparison(expr: &str) -> &str {
    let mut depth = 0_i32;
    let mut quoted = false;
    let bytes = expr.as_bytes();
    let mut cut = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'(' | b'{' | b'[' if !quoted => depth += 1,
            b')' | b'}' | b']' if !quoted => depth -= 1,
            b'>' | b'<' | b'=' | b'!' if !quoted && depth == 0 => {
                let op_len = if bytes.get(i + 1) == Some(&b'=') {
                    2
                } else {
                    1
                };
                if (b == b'=' || b == b'!') && op_len == 1 {
                    continue;
                }
                let rest = expr[i + op_len..].trim();
                if rest.parse::<f64>().is_ok() {
                    cut = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    cut.map_or(expr, |i| expr[..i].trim_end())
}

fn one_line(expr: &str) -> String {
    expr.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An HTTP response, body de-chunked.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One HTTP/1.1 exchange with `Connection: close`, read until the peer closes or
/// [`HTTP_TIMEOUT`] passes (what arrived by then is the body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Response> {
    let deadline = Instant::now() + HTTP_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        let _ = write!(request, "Content-Length: {}\r\n", body.len());
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;

    let mut raw = Vec::new();
    let mut buf = [0_u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(e).context("reading the response"),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("{method} {path}: incomplete response ({} bytes)", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response: {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The payload of a chunked body (as much as arrived).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = end + 2;
        let stop = (start + size).min(data.len());
        out.extend_from_slice(&data[start..stop]);
        data = data.get(stop + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_oauth_metric_names() {
        assert_eq!(
            oauth_metric_names(
                "sum(rate(shoal_oauth_cimd_cache_hits_total{job=~\"$job\"}[1m])) / sum(rate(shoal_oauth_cimd_fetches_total[1m]))"
            ),
            [
                "shoal_oauth_cimd_cache_hits_total",
                "shoal_oauth_cimd_fetches_total"
            ]
        );
        assert!(oauth_metric_names("sum(rate(shoal_sessions_initialized_total[1m]))").is_empty());
    }

    #[test]
    fn the_oauth_names_of_the_dashboard_and_alerts_are_exported() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dashboard = dashboard_exprs(&root.join(DASHBOARD)).unwrap();
        let alerts = alert_exprs(&root.join(RULES)).unwrap();
        assert!(
            dashboard
                .iter()
                .chain(&alerts)
                .any(|(_, e)| !oauth_metric_names(e).is_empty())
        );
        check_oauth_names(&root.join(OAUTH_SOURCES), dashboard.iter().chain(&alerts)).unwrap();
        let misspelt = [(
            "test".to_owned(),
            "shoal_oauth_tokens_issue_total".to_owned(),
        )];
        assert!(check_oauth_names(&root.join(OAUTH_SOURCES), misspelt.iter()).is_err());
    }

    #[test]
    fn strips_a_trailing_threshold_only() {
        assert_eq!(
            strip_comparison("up{job=\"shoal\"} == 0"),
            "up{job=\"shoal\"}"
        );
        assert_eq!(
            strip_comparison("sum(rate(x{code=~\"5..\"}[5m])) / sum(rate(x[5m])) > 0.05"),
            "sum(rate(x{code=~\"5..\"}[5m])) / sum(rate(x[5m]))"
        );
        assert_eq!(strip_comparison("max(x) > y"), "max(x) > y");
    }

    #[test]
    fn splits_at_top_level_and() {
        let parts = split_top_level("a{x=\"and\"} > 1 and (b and c) > 2");
        assert_eq!(parts, ["a{x=\"and\"} > 1", "(b and c) > 2"]);
    }

    #[test]
    fn reads_inline_and_block_exprs() {
        let text = "rules:\n  - alert: A\n    expr: up == 0\n    for: 1m\n  - alert: B\n    expr: |\n      sum(x)\n        > 1\n    for: 2m\n";
        assert_eq!(
            parse_rules(text),
            [
                ("A".to_owned(), "up == 0".to_owned()),
                ("B".to_owned(), "sum(x) > 1".to_owned())
            ]
        );
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
