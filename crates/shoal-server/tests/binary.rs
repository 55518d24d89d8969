//! The `shoal` binary as an operator meets it: `--help`, bad configuration, health endpoints,
//! and the drain on SIGTERM.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{SHOAL, assert_serve_refuses, initialize, open_get, post, start};
use serde_json::{Value, json};

#[test]
fn help_documents_every_setting() {
    let output = Command::new(SHOAL)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in [
        "--listen",
        "--public-url",
        "--tools",
        "--admin-listen",
        "--allowed-origins",
        "--allowed-hosts",
        "--max-body-bytes",
        "--session-idle-timeout",
        "--session-max-lifetime",
        "--drain-timeout",
        "--node-id",
        "--allow-unauthenticated",
        "--log-format",
        "--config",
        "--shutdown-delay",
        "--session-host",
        "--redis-key-prefix",
        "SHOAL_SESSION_HOST",
        "SHOAL_LISTEN",
        "SHOAL_TOOLS",
        "SHOAL_SESSION_IDLE_TIMEOUT",
    ] {
        assert!(help.contains(setting), "--help lacks {setting}:\n{help}");
    }
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    assert_serve_refuses(&[
        (&["--tools", "nope"], "unknown tool set"),
        (&["--listen", "0.0.0.0:0"], "without authentication"),
        (&["--session-idle-timeout", "soon"], "session-idle-timeout"),
        (
            &["--config", "/nonexistent/shoal.toml"],
            "reading config file",
        ),
    ]);
}

/// What `shoal` prints, in full, when the image's default command runs with no authentication
/// configured: one line naming every way to configure it, and the explicit opt-out.
const IMAGE_REFUSAL: &str = "Error: refusing to listen on 0.0.0.0:8080 without authentication \
    (anyone who can reach it could use every tool): set --auth static with tokens in \
    SHOAL_AUTH_TOKENS or --auth-tokens-file, or --auth jwt --issuer URL (SHOAL_AUTH, \
    SHOAL_ISSUER), or pass --allow-unauthenticated (SHOAL_ALLOW_UNAUTHENTICATED=true) if a \
    gateway in front authenticates clients, or listen on a loopback address\n";

/// The arguments of the `CMD` of deploy/Containerfile (its exec form, a JSON array).
fn image_default_arguments() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/Containerfile");
    let containerfile = std::fs::read_to_string(path).unwrap();
    let cmd = containerfile
        .lines()
        .find_map(|line| line.strip_prefix("CMD "))
        .expect("deploy/Containerfile has a CMD");
    serde_json::from_str(cmd).expect("CMD in its exec form, a JSON array")
}

#[test]
fn the_image_default_command_refuses_to_start_without_authentication() {
    let args = image_default_arguments();
    assert_eq!(args[0], "serve", "{args:?}");
    assert!(
        !args.iter().any(|arg| arg == "--allow-unauthenticated"),
        "the image serves unauthenticated by default: {args:?}"
    );
    // The container's environment: nothing of the test runner's (no SHOAL_*, no
    // RUST_BACKTRACE, which would add a backtrace to the one line).
    let output = Command::new(SHOAL)
        .args(&args)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "");
    assert_eq!(String::from_utf8(output.stderr).unwrap(), IMAGE_REFUSAL);

    // Authentication configured the way the chart and README do it (the variables), or the
    // explicit opt-out, gets past the check: the same arguments then fail only at binding
    // addresses this test holds, so nothing is served.
    for env in [
        &[("SHOAL_AUTH", "static"), ("SHOAL_AUTH_TOKENS", "ops=tok-1")][..],
        &[("SHOAL_ALLOW_UNAUTHENTICATED", "true")][..],
    ] {
        let held = [0, 1].map(|_| std::net::TcpListener::bind("0.0.0.0:0").unwrap());
        let [mcp, admin] = held.each_ref().map(|l| l.local_addr().unwrap().to_string());
        let args: Vec<String> = args
            .iter()
            .map(|arg| {
                arg.replace("0.0.0.0:8080", &mcp)
                    .replace("0.0.0.0:9090", &admin)
            })
            .collect();
        let output = Command::new(SHOAL)
            .args(&args)
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{env:?}: {stderr}");
        assert!(
            stderr.contains(&format!("Error: binding {mcp}")),
            "{env:?}: {stderr}"
        );
    }
}

#[test]
fn environment_variables_configure_the_server() {
    let output = Command::new(SHOAL)
        .arg("serve")
        .env("SHOAL_TOOLS", "bogus")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"bogus\""));
}

#[tokio::test]
async fn health_endpoints_answer() {
    let server = start(&[]).await;
    let health = reqwest::get(format!("{}/healthz", server.admin))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/readyz", server.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn sigterm_closes_streams_with_retry_and_finishes_in_flight_calls() {
    let mut server = start(&["--drain-timeout", "5s"]).await;
    let client = reqwest::Client::new();
    let session = initialize(&client, &server.mcp).await;

    // A standalone stream, open while the server drains.
    let mut stream = open_get(&client, &server, &session).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let priming = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&priming).contains("retry:"));

    // An in-flight call that takes ~600 ms.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "count", "arguments": {"to": 3, "interval_ms": 200}}});
    let in_flight = tokio::spawn(post(&client, &server.mcp, Some(&session), call).send());
    tokio::time::sleep(Duration::from_millis(100)).await;

    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    let rest = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap();
    let rest = rest
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    assert!(
        rest.starts_with("retry:"),
        "the stream closes with retry: {rest:?}"
    );

    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "3", "{body}");

    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "did not exit within the drain timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
