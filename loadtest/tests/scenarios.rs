//! Every scenario of the built `shoal-load` against a real `shoal serve`: one replica with the
//! memory host, and two replicas sharing a real Redis (round robin across both URLs, so
//! answers and resumptions land on the other replica); and `https://` through a TLS terminator
//! whose certificate comes from a private CA. The 2026-07-28 modes: stateless calls, and listen
//! and mrtr across two replicas on Redis. Short runs with `--fail-on-error`: what is
//! asserted is correctness and the JSON contract, never speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use shoal_testkit::redis::RedisServer;
use shoal_testkit::tls::{PrivateCa, TlsTerminator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The binary under test.
const LOAD: &str = env!("CARGO_BIN_EXE_shoal-load");
/// How long `shoal serve` may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// A bound on any one `shoal-load` run, so that a bug fails the test instead of hanging it.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Options of every short run.
const SHORT: &[&str] = &[
    "--json",
    "--fail-on-error",
    "--quiet",
    "--warmup",
    "200ms",
    "--duration",
    "1500ms",
    "--concurrency",
    "4",
    "--sessions",
    "2",
    "--streams",
    "20",
    "--timeout",
    "10s",
];

/// The `shoal` binary, built once per test process in the profile of this test (the build is
/// a no-op when it is fresh).
fn shoal_binary() -> &'static Path {
    static SHOAL: OnceLock<PathBuf> = OnceLock::new();
    SHOAL.get_or_init(|| {
        let profile_dir = Path::new(LOAD).parent().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "shoal-server", "--bin", "shoal"]);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some(profile) => {
                build.args(["--profile", profile]);
            }
        }
        let status = build.status().expect("running cargo build for shoal");
        assert!(status.success(), "cargo build -p shoal-server failed");
        let binary = profile_dir.join("shoal");
        assert!(binary.is_file(), "{} is missing", binary.display());
        binary
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `shoal serve` process on free loopback ports, killed on drop.
struct Shoal {
    child: Child,
    url: String,
    /// Where `url` listens.
    addr: SocketAddr,
}

impl Shoal {
    /// Starts `shoal serve` with the demo tools and `extra` arguments; waits until ready.
    async fn start(extra: &[&str]) -> Self {
        let (port, admin_port) = (free_port(), free_port());
        let child = Command::new(shoal_binary())
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .args(["--tools", "demo"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let shoal = Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if ready(admin_port).await {
                return shoal;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("shoal serve did not become ready on port {admin_port}");
    }
}

impl Drop for Shoal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `/readyz` answers 200.
async fn ready(admin_port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", admin_port)).await else {
        return false;
    };
    let request = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    response.starts_with(b"HTTP/1.1 200")
}

/// What one run of `shoal-load` did.
struct Run {
    code: Option<i32>,
    summary: Value,
    stderr: String,
}

/// Runs `shoal-load` with `args` and reads its JSON summary.
async fn load(args: &[&str]) -> Run {
    load_with_env(args, &[]).await
}

/// [`load`] with environment variables set for `shoal-load`.
async fn load_with_env(args: &[&str], env: &[(&str, &OsStr)]) -> Run {
    let output = tokio::process::Command::new(LOAD)
        .args(args)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_TIMEOUT, output)
        .await
        .unwrap_or_else(|_| panic!("shoal-load {args:?} ran longer than {RUN_TIMEOUT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("shoal-load {args:?}: stdout is not one JSON object ({e}): {stdout}\n{stderr}")
    });
    Run {
        code: output.status.code(),
        summary,
        stderr,
    }
}

/// Runs `scenario` briefly against `urls` and checks it passed with the contract's shape.
async fn passes(scenario: &str, urls: &[&str]) -> Value {
    passes_with(scenario, urls, &[], &[]).await.summary
}

/// [`passes`] with `extra` arguments and environment variables; the whole run.
async fn passes_with(scenario: &str, urls: &[&str], extra: &[&str], env: &[(&str, &OsStr)]) -> Run {
    let mut args = vec![scenario];
    for url in urls {
        args.extend(["--url", url]);
    }
    args.extend(SHORT);
    args.extend(extra);
    let run = load_with_env(&args, env).await;
    let s = &run.summary;
    assert_eq!(run.code, Some(0), "{scenario}: {s}\n{}", run.stderr);
    assert_contract_shape(s);
    assert_eq!(s["scenario"], scenario);
    assert_eq!(s["errors"], serde_json::json!({}), "{scenario}: {s}");
    let operations = s["operations"].as_u64().unwrap();
    assert!(operations > 0, "{scenario}: nothing ran: {s}");
    assert_eq!(s["ok"].as_u64().unwrap(), operations, "{scenario}: {s}");
    assert!(s["throughput_per_sec"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{s}");
    let timeline_ok: u64 = s["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|second| second["ok"].as_u64().unwrap())
        .sum();
    assert_eq!(
        timeline_ok, operations,
        "{scenario}: the timeline adds up: {s}"
    );
    for counter in ["gaps", "duplicates", "out_of_order"] {
        assert_eq!(s["events"][counter], 0, "{scenario}: {s}");
    }
    run
}

/// Every key of the JSON contract, with the right type.
fn assert_contract_shape(s: &Value) {
    assert!(s["scenario"].is_string(), "{s}");
    assert!(
        s["urls"]
            .as_array()
            .is_some_and(|u| u.iter().all(Value::is_string)),
        "{s}"
    );
    for key in ["concurrency", "sessions", "operations", "ok"] {
        assert!(s[key].is_u64(), "{key}: {s}");
    }
    for key in ["duration_secs", "throughput_per_sec"] {
        assert!(s[key].is_f64(), "{key}: {s}");
    }
    assert!(
        s["errors"]
            .as_object()
            .is_some_and(|e| e.values().all(Value::is_u64)),
        "{s}"
    );
    for key in ["mean", "p50", "p90", "p99", "p999", "max"] {
        assert!(s["latency_ms"][key].is_number(), "latency_ms.{key}: {s}");
    }
    for key in ["open", "failed"] {
        assert!(s["streams"][key].is_u64(), "streams.{key}: {s}");
    }
    for key in ["received", "gaps", "duplicates", "out_of_order"] {
        assert!(s["events"][key].is_u64(), "events.{key}: {s}");
    }
    for second in s["timeline"].as_array().expect("timeline") {
        for key in ["second", "ok", "errors"] {
            assert!(second[key].is_u64(), "timeline.{key}: {s}");
        }
    }
}

/// Checks what only some scenarios report.
fn assert_scenario_counters(scenario: &str, s: &Value, streams: u64) {
    match scenario {
        "streams" => {
            assert_eq!(s["streams"]["open"], streams, "{s}");
            assert_eq!(s["streams"]["failed"], 0, "{s}");
            assert_eq!(s["events"]["received"], s["operations"], "{s}");
        }
        "roundtrip" | "resume" => {
            assert!(s["events"]["received"].as_u64().unwrap() > 0, "{s}");
            assert_eq!(s["streams"]["open"], 0, "{s}");
        }
        _ => assert_eq!(s["streams"]["open"], 0, "{s}"),
    }
}

const SCENARIOS: [&str; 5] = ["calls", "churn", "streams", "roundtrip", "resume"];

#[tokio::test(flavor = "multi_thread")]
async fn every_scenario_passes_on_the_memory_host() {
    let shoal = Shoal::start(&[]).await;
    for scenario in SCENARIOS {
        let summary = passes(scenario, &[&shoal.url]).await;
        assert_scenario_counters(scenario, &summary, 20);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scenario_passes_across_two_replicas_on_redis() {
    let redis = RedisServer::start().await;
    let redis_url = redis.url();
    let a = Shoal::start(&["--session-host", &redis_url, "--node-id", "load-a"]).await;
    let b = Shoal::start(&["--session-host", &redis_url, "--node-id", "load-b"]).await;
    for scenario in SCENARIOS {
        let summary = passes(scenario, &[&a.url, &b.url]).await;
        assert_scenario_counters(scenario, &summary, 20);
        assert_eq!(summary["urls"], serde_json::json!([a.url, b.url]));
    }
}

/// Two replicas on one Redis with the conformance tools (the listen trigger) beside the demo
/// ones, sharing a request-state key ring so that a multi round-trip retry succeeds on the
/// other replica.
async fn two_stateless_replicas(name: &str) -> (RedisServer, Shoal, Shoal, PathBuf) {
    let redis = RedisServer::start().await;
    let redis_url = redis.url();
    let dir = std::env::temp_dir().join(format!("shoal-load-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("request-state-keys");
    // 32 zero bytes: a test key, both replicas the same.
    std::fs::write(&keys, "test:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let keys_path = keys.to_str().unwrap();
    let mut replicas = Vec::new();
    for node in ["a", "b"] {
        let node_id = format!("{name}-{node}");
        replicas.push(
            Shoal::start(&[
                "--tools",
                "conformance",
                "--session-host",
                &redis_url,
                "--node-id",
                &node_id,
                "--request-state-keys-file",
                keys_path,
            ])
            .await,
        );
    }
    let b = replicas.pop().unwrap();
    let a = replicas.pop().unwrap();
    (redis, a, b, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_calls_pass_on_the_memory_host_without_sessions() {
    let shoal = Shoal::start(&[]).await;
    let run = passes_with("calls", &[&shoal.url], &["--revision", "2026-07-28"], &[]).await;
    let s = &run.summary;
    assert_eq!(s["sessions"], 0, "{s}");
    assert!(
        s["notes"][0].as_str().unwrap().contains("2026-07-28"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_delivers_every_update_to_streams_on_both_replicas() {
    let (_redis, a, b, dir) = two_stateless_replicas("listen").await;
    let run = passes_with(
        "listen",
        &[&a.url, &b.url],
        &["--listeners", "10", "--trigger-rate", "40"],
        &[],
    )
    .await;
    let s = &run.summary;
    assert_eq!(s["streams"]["open"], 10, "{s}");
    assert_eq!(s["streams"]["failed"], 0, "{s}");
    // Every measured update reached all 10 streams (warmup updates are received, not counted).
    let operations = s["operations"].as_u64().unwrap();
    assert_eq!(operations % 10, 0, "{s}");
    assert!(
        s["events"]["received"].as_u64().unwrap() >= operations,
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn mrtr_answers_input_required_across_both_replicas() {
    let (_redis, a, b, dir) = two_stateless_replicas("mrtr").await;
    let run = passes_with("mrtr", &[&a.url, &b.url], &[], &[]).await;
    let s = &run.summary;
    assert_eq!(s["sessions"], 0, "{s}");
    // ask_user asks once: a first round and one retry, on the other replica.
    assert_eq!(s["mrtr"]["rounds_per_operation"], 2.0, "{s}");
    assert_eq!(
        s["mrtr"]["rounds"].as_u64().unwrap(),
        2 * s["operations"].as_u64().unwrap(),
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_and_mrtr_refuse_the_session_era() {
    for scenario in ["listen", "mrtr"] {
        let output = tokio::process::Command::new(LOAD)
            .args([scenario, "--revision", "2025-11-25"])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{scenario} is a 2026-07-28 scenario")),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_keeps_the_streams_open_and_writes_the_ready_file() {
    let shoal = Shoal::start(&[]).await;
    let dir = std::env::temp_dir().join(format!("shoal-load-hold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ready_file = dir.join("ready");
    let ready_path = ready_file.to_str().unwrap();
    let run = load(&[
        "streams",
        "--url",
        &shoal.url,
        "--hold",
        "--streams",
        "30",
        "--duration",
        "500ms",
        "--ready-file",
        ready_path,
        "--json",
        "--fail-on-error",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.summary, run.stderr);
    assert_contract_shape(&run.summary);
    assert_eq!(run.summary["streams"]["open"], 30, "{}", run.summary);
    assert_eq!(run.summary["operations"], 0);
    assert_eq!(std::fs::read_to_string(&ready_file).unwrap(), "30");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_writes_a_page_with_two_charts() {
    let shoal = Shoal::start(&[]).await;
    let dir = std::env::temp_dir().join(format!("shoal-load-report-{}", std::process::id()));
    let report = dir.to_str().unwrap();
    let run = load(&[
        "calls",
        "--url",
        &shoal.url,
        "--requests",
        "300",
        "--warmup",
        "0s",
        "--concurrency",
        "4",
        "--report",
        report,
        "--json",
        "--fail-on-error",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.summary, run.stderr);
    assert_eq!(run.summary["operations"], 300, "--requests bounds the run");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 2, "{html}");
    assert!(html.contains("calls") && html.contains("p99"), "{html}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_port_fails_clearly_with_the_connect_kind() {
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let run = load(&[
        "calls",
        "--url",
        &url,
        "--duration",
        "1s",
        "--json",
        "--quiet",
    ])
    .await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.summary, run.stderr);
    assert_contract_shape(&run.summary);
    assert!(
        run.summary["errors"]["connect"].as_u64().unwrap() >= 1,
        "{}",
        run.summary
    );
    assert!(
        run.stderr.contains("could not connect") && run.stderr.contains(&url),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_is_verified_against_ssl_cert_file_unless_insecure() {
    let shoal = Shoal::start(&[]).await;
    let ca = PrivateCa::new();
    let tls = TlsTerminator::start(&ca, shoal.addr).await;
    let url = tls.https_url("/mcp");
    let dir = std::env::temp_dir().join(format!("shoal-load-tls-{}", std::process::id()));
    let trusted = ca.write_ca_pem(&dir.join("trusted"));
    // SSL_CERT_FILE replaces the system's roots: with another CA's file, nothing that signed
    // the terminator's certificate is trusted, whatever this machine's CA bundle holds.
    let other = PrivateCa::new().write_ca_pem(&dir.join("other"));
    // An empty SSL_CERT_DIR, so that one set in this environment adds no CA either.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let trusted_env = [
        ("SSL_CERT_FILE", trusted.as_os_str()),
        ("SSL_CERT_DIR", empty.as_os_str()),
    ];
    let other_env = [
        ("SSL_CERT_FILE", other.as_os_str()),
        ("SSL_CERT_DIR", empty.as_os_str()),
    ];

    // The private CA in SSL_CERT_FILE: verified, and every request succeeds; `resume` also
    // drops connections midway, so new handshakes happen during the run.
    for scenario in ["calls", "resume"] {
        let run = passes_with(scenario, &[&url], &[], &trusted_env).await;
        assert_scenario_counters(scenario, &run.summary, 20);
        assert!(!run.stderr.contains("--insecure"), "{}", run.stderr);
    }

    // Another CA only: refused at the handshake, and the message says it was the certificate.
    let run = load_with_env(
        &[
            "calls",
            "--url",
            &url,
            "--duration",
            "1s",
            "--json",
            "--quiet",
        ],
        &other_env,
    )
    .await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.summary, run.stderr);
    assert_contract_shape(&run.summary);
    assert_eq!(run.summary["ok"], 0, "{}", run.summary);
    assert!(
        run.summary["errors"]["connect"].as_u64().unwrap() >= 1,
        "{}",
        run.summary
    );
    let expected = format!("could not connect to {url}: certificate not trusted: UnknownIssuer: ");
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(
        run.stderr.contains("set SSL_CERT_FILE") && run.stderr.contains("pass --insecure"),
        "{}",
        run.stderr
    );

    // --insecure: the same untrusted certificate is accepted, with a warning.
    let run = passes_with("calls", &[&url], &["--insecure"], &other_env).await;
    assert!(
        run.stderr
            .contains("shoal-load: warning: --insecure: server certificates are not verified"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
