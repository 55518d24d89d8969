//! `shoal-faults`: the fault-injection suite (see the `shoal_faults` library) as a process, for
//! `cargo xtask faults` and CI.
//!
//! ```text
//! shoal-faults --shoal target/debug/shoal [--scenario NAME]... [--duration 20s] [--report DIR]
//! ```
//!
//! Runs the named scenarios (default: all) one after another, each holding its load for
//! `--duration`, prints the results table, writes `results.md` and `results.json` to
//! `--report DIR` when given, and exits 1 when any scenario failed (after printing its
//! violations), unless `shoal_faults::known_issue` names the reason it fails.
//! `redis-server` must be on `PATH` (or `$SHOAL_REDIS_SERVER`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use shoal_faults::{self as faults, Scenario};

const USAGE: &str = "usage: shoal-faults --shoal PATH [--scenario NAME]... [--duration SECONDS[s]] \
                     [--report DIR]";
/// Load held per scenario unless `--duration` says otherwise.
const DEFAULT_DURATION: Duration = Duration::from_secs(20);
/// How many violations of one scenario are printed in full.
const VIOLATIONS_SHOWN: usize = 20;

/// What the command line asks for.
#[derive(Debug)]
struct Args {
    shoal: PathBuf,
    scenarios: Vec<Scenario>,
    duration: Duration,
    report: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = parse(std::env::args().skip(1));
    shoal_testkit::cli::main("shoal-faults", USAGE, args, run)
}

/// Runs the scenarios and reports them; the error says where the report could not be written.
async fn run(args: Args) -> Result<ExitCode, String> {
    let started = Instant::now();
    let outcomes = faults::run(&args.scenarios, args.shoal, args.duration).await;
    let table = faults::markdown_table(&outcomes);
    println!("\n{table}");
    for outcome in &outcomes {
        for note in &outcome.ran.notes {
            println!("{}: {note}", outcome.scenario);
        }
    }
    println!("{} scenarios in {:.1?}", outcomes.len(), started.elapsed());
    if let Some(dir) = &args.report {
        let json = faults::json_report(&outcomes);
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join("results.md"), &table))
            .and_then(|()| {
                std::fs::write(
                    dir.join("results.json"),
                    serde_json::to_string_pretty(&json).unwrap_or_default(),
                )
            });
        written.map_err(|error| format!("writing the report to {}: {error}", dir.display()))?;
        println!("report written to {}", dir.display());
    }
    let mut failed = false;
    for outcome in outcomes.iter().filter(|o| !o.passed) {
        match outcome.known_issue {
            Some(issue) => eprintln!("\n{} failed, a known issue: {issue}", outcome.scenario),
            None => failed = true,
        }
        let violations = &outcome.verdict.violations;
        eprintln!(
            "\n{} FAILED: {} violations",
            outcome.scenario,
            violations.len()
        );
        for violation in violations.iter().take(VIOLATIONS_SHOWN) {
            eprintln!("- {violation}");
        }
        if violations.len() > VIOLATIONS_SHOWN {
            eprintln!("… and {} more", violations.len() - VIOLATIONS_SHOWN);
        }
    }
    // The failures are printed above: exit 1 without another line.
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut shoal = None;
    let mut names = Vec::new();
    let mut duration = DEFAULT_DURATION;
    let mut report = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--shoal" => shoal = Some(PathBuf::from(value("--shoal")?)),
            "--scenario" => names.push(value("--scenario")?),
            "--duration" => duration = parse_seconds(&value("--duration")?)?,
            "--report" => report = Some(PathBuf::from(value("--report")?)),
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let all = faults::all();
    let scenarios = if names.is_empty() {
        all
    } else {
        names
            .iter()
            .map(|name| {
                all.iter().find(|s| s.name == name).cloned().ok_or_else(|| {
                    let known: Vec<_> = all.iter().map(|s| s.name).collect();
                    format!("unknown scenario {name:?}; known: {}", known.join(", "))
                })
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Args {
        shoal: shoal.ok_or("--shoal is required")?,
        scenarios,
        duration,
        report,
    })
}

/// `20` or `20s`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.strip_suffix('s')
        .unwrap_or(text)
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or(format!(
            "--duration {text:?} is not a whole number of seconds"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_to_every_scenario() {
        let parsed = args(&["--shoal", "x"]).unwrap();
        assert_eq!(parsed.scenarios.len(), faults::all().len());
        assert_eq!(parsed.duration, DEFAULT_DURATION);
    }

    #[test]
    fn refuses_unknown_scenarios_and_bad_durations() {
        let error = args(&["--shoal", "x", "--scenario", "nope"]).unwrap_err();
        assert!(error.contains("unknown scenario \"nope\""), "{error}");
        let error = args(&["--shoal", "x", "--duration", "ten"]).unwrap_err();
        assert!(error.contains("--duration"), "{error}");
        assert!(
            args(&["--scenario", "kill9"])
                .unwrap_err()
                .contains("--shoal")
        );
        let parsed = args(&["--shoal", "x", "--scenario", "kill9", "--duration", "5s"]).unwrap();
        assert_eq!(parsed.scenarios[0].name, "kill9");
        assert_eq!(parsed.duration, Duration::from_secs(5));
    }
}
