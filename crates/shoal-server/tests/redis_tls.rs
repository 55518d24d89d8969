//! `rediss://` with a username and password: shoal reaches a TLS-only, ACL-protected
//! redis-server, trusting its CA through the standard `SSL_CERT_FILE`; a wrong password keeps
//! the replica not ready instead of serving.
//!
//! Certificates are made at test time with the `openssl` command.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{SHOAL, free_port};

fn run(dir: &Path, program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        status
            .unwrap_or_else(|e| panic!("{program} cannot run: {e}"))
            .success(),
        "{program} {args:?} failed"
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=shoal-test-ca",
        ],
    );
    run(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    );
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn shoal(dir: &Path, url: &str) -> (Killed, u16, u16) {
    let (port, admin) = (free_port(), free_port());
    let child = Command::new(SHOAL)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .args(["--session-host", url])
        .env("SSL_CERT_FILE", dir.join("ca.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Killed(child), port, admin)
}

async fn ready(admin: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{admin}/readyz")).await
            && response.status() == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn rediss_with_username_and_password() {
    let dir = std::env::temp_dir().join(format!("shoal-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let redis_port = free_port();
    // ACL users need a config file: a `user` directive has spaces.
    std::fs::write(
        dir.join("redis.conf"),
        "user default off\nuser shoal on >s3cret ~* &* +@all\n",
    )
    .unwrap();
    let redis = Command::new("redis-server")
        .arg("redis.conf")
        .args([
            "--port",
            "0",
            "--tls-port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.pem",
        ])
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _redis = Killed(redis);

    let (_good, port, admin) = shoal(
        &dir,
        &format!("rediss://shoal:s3cret@127.0.0.1:{redis_port}"),
    );
    assert!(
        ready(admin, Duration::from_secs(20)).await,
        "shoal became ready over TLS"
    );
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "a session was stored in the TLS Redis"
    );

    let (_bad, _, bad_admin) = shoal(
        &dir,
        &format!("rediss://shoal:wrong@127.0.0.1:{redis_port}"),
    );
    assert!(
        !ready(bad_admin, Duration::from_secs(3)).await,
        "a wrong password never serves"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
