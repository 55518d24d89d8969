//! The command line: one scenario and options that may come before or after it.
//!
//! `cargo xtask bench` and the CI smoke step drive the binary through these flags and the
//! `--json` summary: add options freely, never rename or remove one.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

/// The MCP endpoint when no `--url` is given.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8080/mcp";
/// The measured phase when neither `--duration` nor `--requests` is given.
pub(crate) const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// `--tool` of calls and churn when none is given.
const DEFAULT_TOOL: &str = "echo";
/// `--tool` of mrtr when none is given: it asks the user once.
const DEFAULT_MRTR_TOOL: &str = "ask_user";
/// Environment variable of `--token`.
const ENV_TOKEN: &str = "SHOAL_LOAD_TOKEN";

/// An MCP-aware load generator for any Streamable HTTP server (Shoal, the official SDKs, ...).
#[derive(Debug, Parser)]
#[command(
    name = "shoal-load",
    version,
    about,
    after_help = "Exit status: 0 when the run completed; 1 with --fail-on-error when anything \
                  failed; 2 when it could not run (bad options, no session or stream set up)."
)]
pub(crate) struct Cli {
    /// What to measure.
    #[command(subcommand)]
    pub(crate) scenario: Scenario,

    #[command(flatten)]
    pub(crate) options: Options,
}

/// The load scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub(crate) enum Scenario {
    /// `tools/call` of --tool on sessions initialized beforehand (one operation = one call).
    Calls,
    /// Whole session lifecycles: initialize, initialized, --calls-per-session calls, DELETE.
    Churn,
    /// Idle standalone GET streams; one operation = one announcement delivered on one.
    Streams,
    /// `ask_user` answered through elicitation, the answer POSTed to the next URL.
    Roundtrip,
    /// `count` with progress, the stream dropped midway and resumed with Last-Event-ID.
    Resume,
    /// 2026-07-28: `subscriptions/listen` streams over the replicas; one operation = one
    /// resource update (--trigger-tool) delivered on one stream.
    Listen,
    /// 2026-07-28: a `tools/call` answered `input_required`, retried with the answers on the
    /// next URL until complete (one operation = every round of one call).
    Mrtr,
}

/// The MCP revision the generator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Revision {
    /// Sessions: initialize, Mcp-Session-Id, DELETE.
    #[value(name = "2025-11-25")]
    Sessions,
    /// The stateless era: no session, every request carries its `_meta` and MCP headers.
    #[value(name = "2026-07-28")]
    Stateless,
}

impl Scenario {
    /// The name used on the command line and in the JSON summary.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Calls => "calls",
            Self::Churn => "churn",
            Self::Streams => "streams",
            Self::Roundtrip => "roundtrip",
            Self::Resume => "resume",
            Self::Listen => "listen",
            Self::Mrtr => "mrtr",
        }
    }

    /// The revision it speaks when `--revision` is not given.
    fn default_revision(self) -> Revision {
        match self {
            Self::Listen | Self::Mrtr => Revision::Stateless,
            _ => Revision::Sessions,
        }
    }

    /// Whether it can speak `revision`.
    fn speaks(self, revision: Revision) -> bool {
        match self {
            Self::Calls => true,
            Self::Listen | Self::Mrtr => revision == Revision::Stateless,
            Self::Churn | Self::Streams | Self::Roundtrip | Self::Resume => {
                revision == Revision::Sessions
            }
        }
    }
}

/// Options shared by every scenario (each applies where its help says).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// MCP endpoint, `http://` or `https://`; repeat for several replicas (all on the same side of the scenario): every
    /// HTTP request goes to the next URL in turn (client-side round robin).
    #[arg(long = "url", value_name = "URL", global = true, default_value = DEFAULT_URL)]
    pub(crate) urls: Vec<String>,

    /// Testing only: accept any certificate from `https://` targets (a warning is printed).
    /// Without it, certificates are verified against the system's trust store, or only the CAs
    /// in SSL_CERT_FILE / SSL_CERT_DIR when either is set.
    #[arg(long, global = true)]
    pub(crate) insecure: bool,

    /// Bearer token, sent as `Authorization: Bearer <TOKEN>`.
    #[arg(long, env = ENV_TOKEN, global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,

    /// How long the measured phase lasts, e.g. 30s, 2m [default: 10s, or unbounded when only
    /// --requests is given].
    #[arg(long, value_name = "DURATION", global = true, value_parser = humantime::parse_duration)]
    pub(crate) duration: Option<Duration>,

    /// Stop after this many measured operations (whichever of --duration and --requests comes
    /// first when both are given).
    #[arg(long, value_name = "N", global = true)]
    pub(crate) requests: Option<u64>,

    /// Run the same load this long before measuring, without recording it.
    #[arg(long, value_name = "DURATION", global = true, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) warmup: Duration,

    /// Concurrent workers, each with its own keep-alive HTTP/1.1 connection(s).
    #[arg(long, value_name = "N", global = true, default_value_t = 50)]
    pub(crate) concurrency: usize,

    /// Threads of the load generator's runtime [default: one per CPU core].
    #[arg(long, value_name = "N", global = true)]
    pub(crate) threads: Option<usize>,

    /// MCP sessions shared round-robin by the workers (calls, roundtrip, resume).
    #[arg(long, value_name = "N", global = true, default_value_t = 1)]
    pub(crate) sessions: usize,

    /// Open loop at this total rate of operations per second, latency counted from each
    /// operation's intended send time (no coordinated omission). Without it: closed loop, each
    /// worker sends its next operation when the previous one is done (calls, churn, roundtrip,
    /// resume).
    #[arg(long, value_name = "PER_SEC", global = true)]
    pub(crate) rate: Option<f64>,

    /// The MCP revision: 2025-11-25 (sessions) or 2026-07-28 (stateless: no session, each
    /// request carries its own `_meta` and MCP headers) [default: 2026-07-28 for listen and
    /// mrtr, which have no 2025-11-25 form; 2025-11-25 otherwise]. calls speaks both; churn,
    /// streams, roundtrip and resume only 2025-11-25.
    #[arg(long, value_name = "REVISION", global = true)]
    pub(crate) revision: Option<Revision>,

    /// The tool to call (calls, churn, mrtr) [default: echo; mrtr: ask_user].
    #[arg(long, value_name = "NAME", global = true)]
    tool: Option<String>,

    /// The tool's arguments, a JSON object (calls, churn, mrtr). With tool `echo`, the reply's
    /// text must equal `text` [default: {"text":"hello"}; mrtr: {"question":"..."}].
    #[arg(long, value_name = "JSON", global = true, value_parser = parse_arguments)]
    arguments: Option<Map<String, Value>>,

    /// Tool calls per session lifecycle (churn).
    #[arg(long, value_name = "K", global = true, default_value_t = 3)]
    pub(crate) calls_per_session: u32,

    /// Idle standalone GET streams to open, one session each (streams).
    #[arg(long, value_name = "N", global = true, default_value_t = 100)]
    pub(crate) streams: usize,

    /// Announcements per second, each sent to a random stream's session (streams).
    #[arg(long, value_name = "PER_SEC", global = true, default_value_t = 20.0)]
    pub(crate) announce_rate: f64,

    /// The tool that sends `text` as a log message to the caller's GET stream (streams).
    #[arg(long, value_name = "NAME", global = true, default_value = "announce")]
    pub(crate) announce_tool: String,

    /// Open the streams and hold them for --duration without announcements, e.g. to measure
    /// the server's memory per stream (streams).
    #[arg(long, global = true)]
    pub(crate) hold: bool,

    /// Write this file, containing the number of open streams, once all streams are open
    /// (streams).
    #[arg(long, value_name = "PATH", global = true)]
    pub(crate) ready_file: Option<PathBuf>,

    /// `subscriptions/listen` streams to open, round robin over the URLs and held open
    /// (listen).
    #[arg(long, value_name = "N", global = true, default_value_t = 100)]
    pub(crate) listeners: usize,

    /// Resource updates per second, sent one at a time on the URLs in turn (listen).
    #[arg(long, value_name = "PER_SEC", global = true, default_value_t = 20.0)]
    pub(crate) trigger_rate: f64,

    /// The tool that announces `notifications/resources/updated` for its argument `uri` on
    /// every replica (listen).
    #[arg(
        long,
        value_name = "NAME",
        global = true,
        default_value = "test_trigger_resource_update"
    )]
    pub(crate) trigger_tool: String,

    /// The resources the listen streams subscribe to: `URI/0` to `URI/3`; update k is of
    /// `URI/(k mod 4)`, so that deliveries swapped on a stream show (listen).
    #[arg(long, value_name = "URI", global = true, default_value = "load://tick")]
    pub(crate) resource_uri: String,

    /// `to` of tool `count` (resume).
    #[arg(long, value_name = "N", global = true, default_value_t = 10)]
    pub(crate) count_to: u32,

    /// `interval_ms` of tool `count` (resume).
    #[arg(long, value_name = "MS", global = true, default_value_t = 2)]
    pub(crate) interval_ms: u64,

    /// Print the summary as one JSON object on stdout, and nothing else there.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Write DIR/index.html: the summary, a latency histogram and throughput over time.
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) report: Option<PathBuf>,

    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long, global = true)]
    pub(crate) quiet: bool,

    /// Exit with code 1 when any operation failed or any gap, duplicate or reordering was seen.
    #[arg(long, global = true)]
    pub(crate) fail_on_error: bool,

    /// Per-operation timeout; an operation that takes longer counts as error `timeout`.
    #[arg(long, value_name = "DURATION", global = true, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
}

fn parse_arguments(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("must be a JSON object, got {other}")),
        Err(error) => Err(format!("is not valid JSON: {error}")),
    }
}

// === impl Options ===

impl Options {
    /// Checks what clap cannot: every mistake at once, one per line.
    pub(crate) fn validate(&self, scenario: Scenario) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.urls.is_empty() {
            problems.push("--url: give at least one URL".to_owned());
        }
        if self.concurrency == 0 {
            problems.push("--concurrency must be at least 1".to_owned());
        }
        if self.threads == Some(0) {
            problems.push("--threads must be at least 1".to_owned());
        }
        if self.sessions == 0 {
            problems.push("--sessions must be at least 1".to_owned());
        }
        if self.requests == Some(0) {
            problems.push("--requests must be at least 1".to_owned());
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            problems.push("--duration must be longer than 0s".to_owned());
        }
        if self.timeout.is_zero() {
            problems.push("--timeout must be longer than 0s".to_owned());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            problems.push(format!("--rate must be a positive number, got {rate}"));
        }
        let revision = self.revision(scenario);
        if !scenario.speaks(revision) {
            problems.push(match revision {
                Revision::Sessions => format!(
                    "{} is a 2026-07-28 scenario (the 2025-11-25 revision has no such \
                     request): drop --revision 2025-11-25",
                    scenario.name()
                ),
                Revision::Stateless => format!(
                    "{} needs sessions, which 2026-07-28 does not have: use --revision \
                     2025-11-25 (calls, listen and mrtr speak 2026-07-28)",
                    scenario.name()
                ),
            });
        }
        if revision == Revision::Stateless {
            // Tool names go into the Mcp-Name header as they are.
            for (flag, value) in [
                ("--tool", self.tool(scenario)),
                ("--trigger-tool", &self.trigger_tool),
            ] {
                if !value.bytes().all(|b| (b' '..0x7f).contains(&b)) || value.is_empty() {
                    problems.push(format!(
                        "{flag} {value:?}: with 2026-07-28 it goes into a header: printable \
                         ASCII only"
                    ));
                }
            }
        }
        match scenario {
            Scenario::Listen => {
                if self.listeners == 0 {
                    problems.push("--listeners must be at least 1".to_owned());
                }
                if !(self.trigger_rate.is_finite() && self.trigger_rate > 0.0) {
                    problems.push(format!(
                        "--trigger-rate must be a positive number, got {}",
                        self.trigger_rate
                    ));
                }
            }
            Scenario::Streams => {
                if self.streams == 0 {
                    problems.push("--streams must be at least 1".to_owned());
                }
                if !(self.announce_rate.is_finite() && self.announce_rate > 0.0) {
                    problems.push(format!(
                        "--announce-rate must be a positive number, got {}",
                        self.announce_rate
                    ));
                }
            }
            Scenario::Resume if self.count_to < 2 => problems.push(format!(
                "--count-to must be at least 2 (the stream is dropped after 1..N-1 progress \
                 notifications), got {}",
                self.count_to
            )),
            _ => {}
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The revision `scenario` runs with.
    pub(crate) fn revision(&self, scenario: Scenario) -> Revision {
        self.revision.unwrap_or_else(|| scenario.default_revision())
    }

    /// The tool `scenario` calls.
    pub(crate) fn tool(&self, scenario: Scenario) -> &str {
        match (&self.tool, scenario) {
            (Some(tool), _) => tool,
            (None, Scenario::Mrtr) => DEFAULT_MRTR_TOOL,
            (None, _) => DEFAULT_TOOL,
        }
    }

    /// The arguments of the tool `scenario` calls.
    pub(crate) fn arguments(&self, scenario: Scenario) -> Map<String, Value> {
        match (&self.arguments, scenario) {
            (Some(arguments), _) => arguments.clone(),
            (None, Scenario::Mrtr) => {
                let mut arguments = Map::new();
                arguments.insert("question".into(), "What is your name?".into());
                arguments
            }
            (None, _) => {
                let mut arguments = Map::new();
                arguments.insert("text".into(), "hello".into());
                arguments
            }
        }
    }

    /// How long the measured phase lasts at most: `None` when only `--requests` bounds it.
    pub(crate) fn measure_for(&self) -> Option<Duration> {
        match (self.duration, self.requests) {
            (Some(duration), _) => Some(duration),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_DURATION),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("shoal-load").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn options_go_before_or_after_the_scenario() {
        let before = parse(&["--concurrency", "7", "--url", "http://a/mcp", "calls"]);
        let after = parse(&["calls", "--concurrency", "7", "--url", "http://a/mcp"]);
        for cli in [before, after] {
            assert_eq!(cli.scenario, Scenario::Calls);
            assert_eq!(cli.options.concurrency, 7);
            assert_eq!(cli.options.urls, ["http://a/mcp"]);
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let cli = parse(&["churn"]);
        let o = &cli.options;
        assert_eq!(o.urls, [DEFAULT_URL]);
        assert_eq!(o.measure_for(), Some(Duration::from_secs(10)));
        assert_eq!(o.warmup, Duration::from_secs(1));
        assert_eq!((o.concurrency, o.sessions, o.calls_per_session), (50, 1, 3));
        assert_eq!(o.tool(Scenario::Churn), "echo");
        assert_eq!(
            Value::Object(o.arguments(Scenario::Churn)),
            serde_json::json!({"text": "hello"})
        );
        assert_eq!(o.revision(Scenario::Churn), Revision::Sessions);
        assert_eq!(o.tool(Scenario::Mrtr), "ask_user");
        assert_eq!(o.revision(Scenario::Mrtr), Revision::Stateless);
        assert_eq!(o.revision(Scenario::Listen), Revision::Stateless);
        assert_eq!((o.listeners, o.trigger_rate), (100, 20.0));
        assert_eq!(o.trigger_tool, "test_trigger_resource_update");
        assert_eq!((o.streams, o.announce_rate), (100, 20.0));
        assert_eq!((o.count_to, o.interval_ms), (10, 2));
        assert_eq!(o.timeout, Duration::from_secs(10));
    }

    #[test]
    fn urls_repeat_and_requests_alone_leave_the_duration_open() {
        // clap keeps the values of one side only: those after the scenario.
        let cli = parse(&["calls", "--url", "http://a/mcp", "--url", "http://b/mcp"]);
        assert_eq!(cli.options.urls, ["http://a/mcp", "http://b/mcp"]);
        let cli = parse(&[
            "--url",
            "http://a/mcp",
            "--url",
            "http://b/mcp",
            "calls",
            "--requests",
            "5",
        ]);
        assert_eq!(cli.options.urls, ["http://a/mcp", "http://b/mcp"]);
        assert_eq!(cli.options.measure_for(), None);
        let cli = parse(&["calls", "--requests", "5", "--duration", "3s"]);
        assert_eq!(cli.options.measure_for(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn rejects_bad_values_with_every_reason() {
        assert!(Cli::try_parse_from(["shoal-load", "calls", "--arguments", "[1]"]).is_err());
        assert!(Cli::try_parse_from(["shoal-load", "calls", "--duration", "ten"]).is_err());
        let cli = parse(&[
            "resume",
            "--concurrency",
            "0",
            "--count-to",
            "1",
            "--rate=-1",
        ]);
        let problems = cli.options.validate(cli.scenario).unwrap_err();
        assert_eq!(problems.lines().count(), 3, "{problems}");
        assert!(problems.contains("--count-to"), "{problems}");
    }

    #[test]
    fn listen_and_mrtr_refuse_the_session_era_and_session_scenarios_the_stateless_one() {
        for scenario in ["listen", "mrtr"] {
            let cli = parse(&[scenario, "--revision", "2025-11-25"]);
            let problems = cli.options.validate(cli.scenario).unwrap_err();
            assert!(problems.contains("is a 2026-07-28 scenario"), "{problems}");
            let cli = parse(&[scenario]);
            assert_eq!(cli.options.validate(cli.scenario), Ok(()));
        }
        let cli = parse(&["churn", "--revision", "2026-07-28"]);
        let problems = cli.options.validate(cli.scenario).unwrap_err();
        assert!(problems.contains("needs sessions"), "{problems}");
        let cli = parse(&["calls", "--revision", "2026-07-28", "--tool", "bad\ntool"]);
        let problems = cli.options.validate(cli.scenario).unwrap_err();
        assert!(problems.contains("printable ASCII"), "{problems}");
        assert!(Cli::try_parse_from(["shoal-load", "calls", "--revision", "2024-01-01"]).is_err());
    }
}
