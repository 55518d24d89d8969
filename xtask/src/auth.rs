//! The conformance suite against an OAuth-protected `shoal` (CI step `conformance-auth`,
//! `cargo xtask conformance --auth`), with a real access token.
//!
//! The suite cannot send an `Authorization` header, so `rr-proxy` adds one to every request:
//!
//! 1. the `oidc-provider` fixture (`tests/auth/oidc/server.mjs`) on a free loopback port, whose
//!    resource is the proxy's URL `http://127.0.0.1:<proxy port>/mcp`;
//! 2. an access token for that resource by the client-credentials grant
//!    (`tests/auth/oidc/token.mjs`; xtask captures it and never prints it);
//! 3. `shoal serve --tools conformance --auth jwt --issuer <issuer> --public-url <proxy URL>`;
//! 4. a check that the endpoint refuses a request without a token: 401 with
//!    `WWW-Authenticate: Bearer resource_metadata="<proxy origin>/.well-known/…"`;
//! 5. `rr-proxy --header-env Authorization=…` in front of it (the token reaches it through its
//!    environment, not its argv) and a check that an `initialize` through it succeeds;
//! 6. the whole suite through the proxy, with the baseline
//!    `tests/conformance/expected-failures-auth.yaml` when that file exists.
//!
//! Logs go to `target/xtask/auth/`, results to `target/conformance-results-auth`.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::Repo;
use crate::cmd;
use crate::conformance;
use crate::process::{Process, build_proxy, wait_until};
use crate::server::{self, ToolSet, free_ports, http_get_status, post_initialize};
use crate::tools::Tools;

/// The fixture's directory, relative to the workspace root.
const OIDC_DIR: &str = "tests/auth/oidc";
/// The lifetime of the token, in seconds: longer than the whole suite takes.
const TOKEN_TTL_SECS: u32 = 3600;
/// The environment variable that hands `rr-proxy` the `Authorization` value.
const ENV_PROXY_AUTHORIZATION: &str = "SHOAL_PROXY_AUTHORIZATION";
/// The known-failures baseline, relative to the workspace root.
const EXPECTED_FAILURES: &str = "tests/conformance/expected-failures-auth.yaml";
/// Where results go, relative to the target directory.
const RESULTS_DIR: &str = "conformance-results-auth";
/// Where the processes log, relative to the target directory.
const LOG_DIR: &str = "xtask/auth";
/// Connect, read and write timeout of one probe or request.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds `shoal` and `rr-proxy`, starts the authorization server, `shoal` with JWT auth and
/// the proxy that adds the token, checks both, and runs the suite (or only `scenario`).
pub(crate) fn run(repo: &Repo, tools: &Tools, scenario: Option<&str>) -> Result<()> {
    let shoal = server::build(repo, tools)?;
    let proxy_binary = build_proxy(repo, tools)?;
    conformance::install(repo, tools)?;
    let oidc_dir = repo.root().join(OIDC_DIR);
    if !oidc_dir.join("node_modules").is_dir() {
        cmd::run(&mut tools.npm(&oidc_dir, &["ci", "--no-audit", "--no-fund"]))?;
    }

    let log_dir = repo.target().join(LOG_DIR);
    fs::create_dir_all(&log_dir).with_context(|| format!("cannot create {}", log_dir.display()))?;
    let [proxy_addr, listen, admin] = free_ports()?;
    let resource = format!("http://{proxy_addr}/mcp");
    let mut processes = Vec::new();
    let outcome = (|| {
        // 1. The authorization server; its ready line is the first JSON line of its log.
        let mut oidc = tools.command(tools.node());
        oidc.current_dir(&oidc_dir)
            .arg("server.mjs")
            .args(["--port", "0"])
            .args(["--resource", &resource])
            .args(["--ttl", &TOKEN_TTL_SECS.to_string()]);
        processes.push(Process::spawn("oidc-provider", &mut oidc, &log_dir)?);
        let mut ready_line = None;
        wait_until(&mut processes[0], || {
            ready_line = oidc_ready_line(&log_dir.join("oidc-provider.log"));
            ready_line.is_some()
        })?;
        let ready = ready_line.context("the provider printed no ready line")?;
        let issuer = ready["issuer"]
            .as_str()
            .context("the provider's ready line has no issuer")?
            .to_owned();
        let token_endpoint = ready["token_endpoint"]
            .as_str()
            .context("the provider's ready line has no token_endpoint")?
            .to_owned();
        println!("oidc-provider is ready: issuer {issuer}, resource {resource}");

        // 2. The token, by the client-credentials grant for the resource.
        let token = fetch_token(tools, &oidc_dir, &token_endpoint, &resource)?;
        println!(
            "got an access token for {resource} ({} bytes, not shown)",
            token.len()
        );

        // 3. shoal, whose public URL is the proxy's.
        let mut shoal_command = Command::new(&shoal);
        shoal_command
            .arg("serve")
            .args(["--listen", &listen.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .args(["--tools", &ToolSet::Conformance.to_string()])
            .args(["--auth", "jwt", "--issuer", &issuer])
            .args(["--public-url", &resource])
            .current_dir(repo.root());
        processes.push(Process::spawn("shoal", &mut shoal_command, &log_dir)?);
        let last = processes.len() - 1;
        wait_until(&mut processes[last], || {
            matches!(http_get_status(admin, "/readyz"), Ok(200))
        })?;

        // 4. Without the proxy's header, the endpoint asks for a token.
        check_unauthenticated(listen, proxy_addr)?;

        // 5. The proxy, with the token from its environment.
        let mut proxy = Command::new(&proxy_binary);
        proxy
            .args(["--listen", &proxy_addr.to_string()])
            .args(["--backend", &format!("http://{listen}/mcp=http://{admin}")])
            .args([
                "--header-env",
                &format!("Authorization={ENV_PROXY_AUTHORIZATION}"),
            ])
            .env(ENV_PROXY_AUTHORIZATION, format!("Bearer {token}"));
        processes.push(Process::spawn("rr-proxy", &mut proxy, &log_dir)?);
        let last = processes.len() - 1;
        wait_until(&mut processes[last], || {
            TcpStream::connect_timeout(&proxy_addr, IO_TIMEOUT).is_ok()
        })?;
        check_authenticated(proxy_addr)?;
        println!("shoal with JWT auth is ready behind {resource}, which adds the token");

        // 6. The suite.
        conformance::run_suite(
            repo,
            tools,
            &resource,
            scenario,
            &repo.root().join(EXPECTED_FAILURES),
            RESULTS_DIR,
        )
    })();
    if outcome.is_err() {
        for process in &processes {
            eprintln!("{}", process.log_tail());
        }
    }
    // Stop the proxy first, then shoal, then the authorization server.
    while let Some(mut process) = processes.pop() {
        process.stop();
    }
    outcome
}

/// The provider's ready line (`{"port":…,"issuer":…,…}`) once its log has it.
fn oidc_ready_line(log: &Path) -> Option<Value> {
    let text = fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| value.get("issuer").is_some())
}

/// Runs `token.mjs`; returns the access token it prints, which is never echoed.
fn fetch_token(
    tools: &Tools,
    oidc_dir: &Path,
    token_endpoint: &str,
    resource: &str,
) -> Result<String> {
    let mut command = tools.command(tools.node());
    command
        .current_dir(oidc_dir)
        .arg("token.mjs")
        .args(["--token-endpoint", token_endpoint])
        .args(["--resource", resource])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    println!("$ {}", cmd::display(&command));
    let output = command
        .output()
        .with_context(|| format!("could not start `{}`", cmd::display(&command)))?;
    if !output.status.success() {
        bail!("getting an access token failed ({})", output.status);
    }
    let token = String::from_utf8(output.stdout)
        .context("the access token is not UTF-8")?
        .trim()
        .to_owned();
    // A JWS compact serialization: three base64url segments.
    let jws = token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ensure!(jws, "token.mjs printed something that is not a JWT");
    Ok(token)
}

/// `POST /mcp` (an `initialize`) straight to shoal with the proxy's `Host` and no token must
/// get 401 with a Bearer challenge that points at the proxy's Protected Resource Metadata.
fn check_unauthenticated(shoal: SocketAddr, proxy: SocketAddr) -> Result<()> {
    let (status, head) = post_initialize(shoal, proxy)
        .with_context(|| format!("cannot POST an initialize to shoal on {shoal}"))?;
    let challenge = header(&head, "www-authenticate").unwrap_or_default();
    let metadata =
        format!("resource_metadata=\"http://{proxy}/.well-known/oauth-protected-resource");
    if status != 401 || !challenge.starts_with("Bearer ") || !challenge.contains(&metadata) {
        bail!(
            "without a token shoal answered HTTP {status} with WWW-Authenticate {challenge:?}; \
             expected 401 and a Bearer challenge with {metadata}…\""
        );
    }
    println!("without a token: HTTP 401, WWW-Authenticate: {challenge}");
    Ok(())
}

/// The same `initialize` through the proxy, which adds the token, must succeed.
fn check_authenticated(proxy: SocketAddr) -> Result<()> {
    let (status, head) = post_initialize(proxy, proxy)
        .with_context(|| format!("cannot POST an initialize through rr-proxy on {proxy}"))?;
    if status != 200 {
        let challenge = header(&head, "www-authenticate").unwrap_or_default();
        bail!(
            "through rr-proxy, with the token, initialize got HTTP {status} \
             (WWW-Authenticate {challenge:?}); expected 200"
        );
    }
    println!("with the token (through rr-proxy): HTTP 200");
    Ok(())
}

/// The first value of header `name` in a response head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_headers_case_insensitively() {
        let head = "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer resource_metadata=\"x\"\r\ncontent-length: 0";
        assert_eq!(
            header(head, "WWW-Authenticate").as_deref(),
            Some("Bearer resource_metadata=\"x\"")
        );
        assert_eq!(header(head, "x-missing"), None);
    }

    #[test]
    fn reads_the_ready_line() {
        let dir = std::env::temp_dir().join(format!("xtask-auth-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("oidc.log");
        fs::write(&log, "warning: something\n").unwrap();
        assert!(oidc_ready_line(&log).is_none());
        fs::write(
            &log,
            "warning: something\n{\"port\":1,\"issuer\":\"http://127.0.0.1:1\"}\n",
        )
        .unwrap();
        assert_eq!(
            oidc_ready_line(&log).unwrap()["issuer"],
            "http://127.0.0.1:1"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
