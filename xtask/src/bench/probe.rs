//! What the harness reads from outside the processes it measures: resident memory from
//! `/proc`, Prometheus counters from a replica's admin listener, the open-files limit, and the
//! machine the figures come from.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Connect, read and write timeout of one `/metrics` scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// The resident set size of process `pid`, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// The body of `GET path` on `addr` (HTTP/1.1, `Connection: close`, plain or chunked body).
pub(crate) fn http_get_body(addr: SocketAddr, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, SCRAPE_TIMEOUT)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    stream.set_write_timeout(Some(SCRAPE_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("cannot read GET {path} from {addr}"))?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("GET {path} from {addr}: no end of headers");
    };
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!(
            "GET {path} from {addr}: HTTP {status}: {}",
            head.lines().next().unwrap_or("")
        );
    }
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    if chunked {
        dechunk(body).with_context(|| format!("GET {path} from {addr}: bad chunked body"))
    } else {
        Ok(body.to_owned())
    }
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> Result<String> {
    let mut out = String::with_capacity(body.len());
    loop {
        let (size, rest) = body.split_once("\r\n").context("no chunk size line")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("not a chunk size: {size:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).context("truncated chunk")?;
        out.push_str(chunk);
        body = rest.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

/// The sum of the samples of `name` (exact metric name) whose labels include every pair of
/// `labels`, in a Prometheus text exposition.
pub(crate) fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, series_labels) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let matches = labels
                .iter()
                .all(|(key, want)| series_labels.contains(&format!("{key}=\"{want}\"")));
            if !matches {
                return None;
            }
            value.parse::<f64>().ok()
        })
        .sum()
}

/// The soft and hard limits on open files of this process (children inherit them).
pub(crate) fn open_files_limit() -> Result<(u64, u64)> {
    let limits =
        std::fs::read_to_string("/proc/self/limits").context("cannot read /proc/self/limits")?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .context("no `Max open files` in /proc/self/limits")?;
    let mut numbers = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|value| {
            if value == "unlimited" {
                Some(u64::MAX)
            } else {
                value.parse().ok()
            }
        });
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(soft), Some(hard)) => Ok((soft, hard)),
        _ => bail!("cannot read the open-files limit from {line:?}"),
    }
}

/// Where the figures were measured.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) kernel: String,
    /// UTC, `2025-01-31 12:34`.
    pub(crate) date: String,
}

// === impl Machine ===

impl Machine {
    pub(crate) fn describe() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|release| format!("Linux {}", release.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_owned());
        let date = cmd::probe(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
            .unwrap_or_else(|| "unknown date".to_owned());
        Self {
            cpus,
            cpu_model,
            kernel,
            date,
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} CPUs ({}), {}, {}",
            self.cpus, self.cpu_model, self.kernel, self.date
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_matching_series() {
        let text = "# HELP x y\n\
            mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"echo\"} 10\n\
            mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"announce\"} 5\n\
            mcp_server_operation_duration_seconds_count{mcp_method_name=\"initialize\"} 1\n\
            mcp_server_operation_duration_seconds_sum{mcp_method_name=\"tools/call\"} 99\n\
            shoal_redis_command_duration_seconds_count{command=\"session\"} 7\n\
            shoal_redis_command_duration_seconds_count{command=\"append\"} 3\n";
        let calls = "mcp_server_operation_duration_seconds_count";
        assert_eq!(
            metric_sum(text, calls, &[("mcp_method_name", "tools/call")]),
            15.0
        );
        assert_eq!(
            metric_sum(text, calls, &[("gen_ai_tool_name", "announce")]),
            5.0
        );
        assert_eq!(
            metric_sum(text, "shoal_redis_command_duration_seconds_count", &[]),
            10.0
        );
        assert_eq!(metric_sum(text, "missing", &[]), 0.0);
    }

    #[test]
    fn decodes_a_chunked_body() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").unwrap(),
            "hello world"
        );
        assert!(dechunk("5\r\nhel").is_err());
    }

    #[test]
    fn reads_our_own_rss_and_limits() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        let (soft, hard) = open_files_limit().unwrap();
        assert!(soft <= hard);
    }
}
