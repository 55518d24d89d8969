//! The official authorization-server suite and the server suites against Shoal as the OAuth
//! 2.1 authorization server of its own endpoint (CI step `conformance-oauth`, `cargo xtask
//! conformance --oauth`).
//!
//! Everything runs on loopback, on the test kit (see [`crate::topology`]):
//!
//! 1. a `redis-server` (`shoal_testkit::redis::RedisServer`) and the `oidc-provider` fixture
//!    (`tests/auth/oidc`) with a login client for Shoal, whose redirect URI is
//!    `http://<proxy>/oauth/callback` (the proxy's port is picked first);
//! 2. three `shoal serve --tools conformance --auth oauth --upstream-issuer <provider>
//!    --upstream-client-id shoal-upstream --public-url http://<proxy>/mcp` on that Redis
//!    behind the test kit's round-robin proxy, the upstream secret in
//!    `SHOAL_UPSTREAM_CLIENT_SECRET` (never on a command line). The issuer is the proxy's
//!    origin, so every request of a flow lands on another replica than the one before;
//! 3. the suite's `authorization` command (both of its scenarios:
//!    `authorization-server-metadata-endpoint`, `authorization-code-grant`) with a public client
//!    registered by DCR for its callback `http://127.0.0.1:<port>/callback`. It prints the
//!    authorization URL and waits for a browser: xtask reads its output, walks that URL with
//!    `shoal_testkit::browser::HeadlessUser` (the upstream login, Shoal's consent page) up to
//!    the callback, and requests the callback itself. Every check must be `SUCCESS`: a
//!    `WARNING` fails the step too (the suite's exit code only counts failures);
//! 4. an access token by the same flow (DCR, authorization code with PKCE, code exchange);
//! 5. the replicas and the proxy started again on the same Redis, the proxy now adding
//!    `Authorization: Bearer <token>` to every request (its headers are fixed when it starts,
//!    and the token comes from the deployment itself). Clients, grants and signing keys live in
//!    Redis, so this also shows a token outliving a restart of every replica. Then a check that
//!    a replica refuses a request without the token (401 and a Bearer challenge), one that an
//!    `initialize` through the proxy succeeds, and the server suite at 2025-11-25 and at
//!    2026-07-28 through the proxy (baselines: `tests/conformance/expected-failures-oauth.yaml`
//!    at 2025-11-25 and the revision's own at 2026-07-28, when present).
//!
//! Logs go to `target/xtask/oauth/` (emptied first): `replica-<i>.log` (both deployments),
//! `authorization-suite.log` (the suite's output), `rr-proxy-<n>.log` (every request each
//! proxy answered) and `redis.log`; on a failure the replicas' and the provider's log tails are
//! printed. Results go to `target/conformance-results-oauth-authorization` (the
//! authorization-server suite), `target/conformance-results-oauth` and
//! `target/conformance-results-oauth-2026-07-28`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use reqwest::Url;
use serde_json::{Value, json};
use shoal_testkit::browser::{Decision, HeadlessUser};
use shoal_testkit::cluster::{ClusterBuilder, ShoalCluster};
use shoal_testkit::oidc::Pkce;
use shoal_testkit::proxy::header_pair;
use shoal_testkit::redis::RedisServer;

use crate::Repo;
use crate::auth::{check_authenticated, check_unauthenticated, ensure_jwt};
use crate::cmd;
use crate::conformance::{self, Revision};
use crate::process;
use crate::server::{self, ToolSet, free_ports};
use crate::tools::Tools;
use crate::topology::{
    Runtime, UPSTREAM_CLIENT, clear_dir, copy_log, log_tail, oauth_replicas, upstream_provider,
    write_proxy_log,
};

/// How many `shoal` replicas run behind the proxy.
const REPLICAS: usize = 3;
/// How often the suite's callback server is tried, and how long apart.
const CALLBACK_ATTEMPTS: u32 = 50;
const CALLBACK_RETRY_DELAY: Duration = Duration::from_millis(100);
/// The name the headless user types into the upstream login form.
const USER: &str = "conformance";
/// The authorization-server suite's scenarios; each must have run.
const SCENARIOS: [&str; 2] = [
    "authorization-server-metadata-endpoint",
    "authorization-code-grant",
];
/// The session era's known-failures baseline, relative to the workspace root (the stateless
/// era's is the revision's own).
const EXPECTED_FAILURES: &str = "tests/conformance/expected-failures-oauth.yaml";
/// Where results go, relative to the target directory: the server suites (plus the
/// revision's suffix) and the authorization-server suite.
const RESULTS_DIR: &str = "conformance-results-oauth";
const AS_RESULTS_DIR: &str = "conformance-results-oauth-authorization";
/// Where the processes log, relative to the target directory.
const LOG_DIR: &str = "xtask/oauth";

/// Builds `shoal`, starts Redis, the upstream provider and the replicas behind the proxy,
/// runs the authorization-server suite, then the server suites at `revisions` (or only
/// `scenario`) with a token of the deployment.
pub(crate) fn run(
    repo: &Repo,
    tools: &Tools,
    scenario: Option<&str>,
    revisions: &[Revision],
) -> Result<()> {
    let shoal = server::build(repo, tools)?;
    conformance::install(repo, tools)?;
    // The test kit finds it the same way; this says how to get it when it is missing.
    process::redis_server()?;
    let log_dir = repo.target().join(LOG_DIR);
    clear_dir(&log_dir)?;
    let [proxy_addr, callback_addr] = free_ports()?;
    let origin = format!("http://{proxy_addr}");
    let resource = format!("{origin}/mcp");

    // The proxy serves from the runtime's workers while this thread waits for the suites.
    let runtime = Runtime::new()?;
    let redis = runtime.run("redis-server did not start", RedisServer::start())?;
    let provider = match upstream_provider(&runtime, &origin, &resource) {
        Ok(provider) => provider,
        Err(error) => {
            runtime.stop(redis);
            return Err(error);
        }
    };
    println!(
        "oidc-provider is ready: issuer {}, login client {UPSTREAM_CLIENT}",
        provider.issuer()
    );
    let deployment = Deployment {
        builder: oauth_replicas(
            ShoalCluster::builder(&shoal)
                .replicas(REPLICAS)
                .tools(ToolSet::Conformance.to_string())
                .redis_url(redis.url()),
            &resource,
            &provider,
        )
        .proxy_addr(proxy_addr)
        .log_dir(&log_dir),
        origin,
        resource,
        callback: format!("http://{callback_addr}/callback"),
        callback_port: callback_addr.port(),
        proxy_addr,
        log_dir: log_dir.clone(),
    };

    let outcome = deployment.check(repo, tools, &runtime, scenario, revisions);
    if let Err(error) = copy_log(&redis.dir().join("redis.log"), &log_dir.join("redis.log")) {
        eprintln!("{error:#}");
    }
    if outcome.is_err() {
        for i in 0..REPLICAS {
            eprintln!("{}", log_tail(&log_dir.join(format!("replica-{i}.log"))));
        }
        eprintln!("{}", provider.log_tail());
    }
    runtime.stop(provider);
    runtime.stop(redis);
    outcome
}

/// How to start the replicas and the proxy, and the URLs they answer at.
struct Deployment {
    /// Everything but the proxy's header.
    builder: ClusterBuilder,
    /// The proxy's origin: the issuer.
    origin: String,
    /// The MCP endpoint's public URL: the resource.
    resource: String,
    /// The authorization-server suite's redirect URI, `http://127.0.0.1:<port>/callback`.
    callback: String,
    callback_port: u16,
    proxy_addr: SocketAddr,
    /// Where the replicas log, and the suite's transcript and the proxies' logs go.
    log_dir: PathBuf,
}

// === impl Deployment ===

impl Deployment {
    /// Steps 2 to 5 of the module docs.
    fn check(
        &self,
        repo: &Repo,
        tools: &Tools,
        runtime: &Runtime,
        scenario: Option<&str>,
        revisions: &[Revision],
    ) -> Result<()> {
        // 2. The authorization server, without a token in the proxy.
        let cluster = runtime.run("shoal did not start", self.builder.clone().start())?;
        println!(
            "{REPLICAS} shoal replicas with --auth oauth on Redis are ready behind {}",
            self.resource
        );
        let token = (|| -> Result<String> {
            // 3. The authorization-server suite.
            self.authorization_suite(repo, tools, runtime)?;
            // 4. A token for the server suites.
            let token = runtime.run("the token flow panicked", self.token())??;
            ensure_jwt(&token)?;
            println!(
                "got an access token for {} by the authorization code flow ({} bytes, not shown)",
                self.resource,
                token.len()
            );
            Ok(token)
        })();
        keep_proxy_log(&cluster, &self.log_dir, 1);
        runtime.stop(cluster);
        let token = token?;

        // 5. The same replicas again, behind a proxy that adds the token.
        let (name, value) = header_pair("Authorization", &format!("Bearer {token}"))
            .map_err(|error| anyhow!("the token does not fit in a header: {error}"))?;
        let cluster = runtime.run(
            "shoal did not start again",
            self.builder.clone().proxy_header(name, value).start(),
        )?;
        println!(
            "the replicas started again behind {}, which adds the token",
            self.resource
        );
        let outcome = (|| {
            check_unauthenticated(cluster.replica_addr(0), self.proxy_addr)?;
            check_authenticated(self.proxy_addr)?;
            // Every revision on the same replicas: both eras are served by one endpoint.
            revisions.iter().try_for_each(|&revision| {
                let expected_failures = match revision {
                    Revision::Session => EXPECTED_FAILURES,
                    Revision::Modern => revision.expected_failures(),
                };
                conformance::run_suite(
                    repo,
                    tools,
                    &self.resource,
                    scenario,
                    revision,
                    &repo.root().join(expected_failures),
                    &revision.results_dir(RESULTS_DIR),
                )
            })
        })();
        keep_proxy_log(&cluster, &self.log_dir, 2);
        runtime.stop(cluster);
        outcome
    }

    /// Registers a client for the suite's callback, runs `conformance authorization`, walks
    /// the authorization URL it prints, and checks every result it wrote.
    fn authorization_suite(&self, repo: &Repo, tools: &Tools, runtime: &Runtime) -> Result<()> {
        let client_id = runtime.run(
            "the registration panicked",
            register(&self.origin, &self.callback, "MCP conformance suite"),
        )??;
        println!(
            "registered the suite's client {client_id} for {}",
            self.callback
        );

        let results = repo.target().join(AS_RESULTS_DIR);
        if results.exists() {
            fs::remove_dir_all(&results)
                .with_context(|| format!("cannot clear {}", results.display()))?;
        }
        let mut command = tools.command(tools.node());
        command
            .current_dir(repo.root().join(conformance::SUITE_DIR))
            .arg(conformance::SUITE_ENTRY)
            .arg("authorization")
            .args(["--url", &self.origin])
            .args(["--client-id", &client_id])
            .args(["--resource", &self.resource])
            .args(["--port", &self.callback_port.to_string()])
            .arg("-o")
            .arg(&results)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        println!("$ {}", cmd::display(&command));
        let child = command
            .spawn()
            .with_context(|| format!("could not start `{}`", cmd::display(&command)))?;
        let mut suite = Suite(child);
        let transcript = self.log_dir.join("authorization-suite.log");
        let walked = self.follow(runtime, &mut suite, &transcript)?;
        let status = suite
            .0
            .wait()
            .context("cannot wait for the authorization-server suite")?;

        let outcomes = read_results(&results)?;
        print_results(&outcomes, &results);
        ensure!(
            walked,
            "the authorization-server suite printed no authorization URL of {}/oauth/authorize \
             (see {})",
            self.origin,
            transcript.display()
        );
        check_results(&outcomes)?;
        ensure!(
            status.success(),
            "the authorization-server suite failed ({status}) although every check passed"
        );
        Ok(())
    }

    /// Echoes the suite's output (and copies it to `transcript`); when it prints the
    /// authorization URL, walks it as a user who approves and delivers the redirect to the
    /// suite's callback server. Returns whether it did.
    fn follow(&self, runtime: &Runtime, suite: &mut Suite, transcript: &Path) -> Result<bool> {
        let stdout = suite
            .0
            .stdout
            .take()
            .context("the suite's output is not piped")?;
        let mut log = fs::File::create(transcript)
            .with_context(|| format!("cannot create {}", transcript.display()))?;
        let authorize = format!("{}/oauth/authorize?", self.origin);
        let mut walked = false;
        for line in BufReader::new(stdout).lines() {
            let line = line.context("cannot read the suite's output")?;
            println!("{line}");
            let _ = writeln!(log, "{line}");
            if !line.starts_with(&authorize) {
                continue;
            }
            let delivered = runtime.run("the walk panicked", self.walk(line.trim().to_owned()))?;
            if let Err(error) = delivered {
                // The suite would wait five minutes for a callback that will not come.
                suite.kill();
                return Err(error);
            }
            walked = true;
        }
        Ok(walked)
    }

    /// Walks `url` as a user who logs in upstream and approves, then requests the redirect it
    /// ends at (the suite's callback server).
    async fn walk(&self, url: String) -> Result<()> {
        let user = HeadlessUser::new(USER);
        let walk = user
            .authorize(&url, &self.callback, Decision::Approve)
            .await
            .map_err(|error| anyhow!("the authorization walk failed: {error}"))?;
        println!(
            "xtask: walked the authorization URL in {} requests; delivering the redirect",
            walk.visits.len()
        );
        // The suite prints the URL right after asking Node to listen, which binds a moment
        // later: a refused connection is retried.
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            match user.http().get(&walk.redirect).send().await {
                Err(error) if error.is_connect() && attempts < CALLBACK_ATTEMPTS => {
                    tokio::time::sleep(CALLBACK_RETRY_DELAY).await;
                }
                other => break other.context("the suite's callback server did not answer")?,
            }
        };
        ensure!(
            response.status().is_success(),
            "the suite's callback server answered HTTP {}",
            response.status()
        );
        Ok(())
    }

    /// An access token for the resource: a public client registered by DCR, the
    /// authorization code flow walked by a user who approves, the code exchanged with its
    /// PKCE verifier.
    async fn token(&self) -> Result<String> {
        // Never requested: the walk stops at it.
        let redirect = "http://127.0.0.1:1/callback";
        let client_id = register(&self.origin, redirect, "xtask conformance-oauth").await?;
        let pkce = Pkce::new();
        let state = "xtask-state";
        let mut url = Url::parse(&format!("{}/oauth/authorize", self.origin))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &self.resource);
        let user = HeadlessUser::new(USER);
        let walk = user
            .authorize(url.as_str(), redirect, Decision::Approve)
            .await
            .map_err(|error| anyhow!("the authorization walk failed: {error}"))?;
        if let Some(error) = walk.param("error") {
            bail!(
                "the authorization ended with error={error} ({})",
                walk.param("error_description").unwrap_or_default()
            );
        }
        ensure!(
            walk.param("state").as_deref() == Some(state),
            "the authorization response lost the state: {}",
            walk.redirect
        );
        ensure!(
            walk.param("iss").as_deref() == Some(self.origin.as_str()),
            "the authorization response's iss is not {}: {}",
            self.origin,
            walk.redirect
        );
        let code = walk
            .param("code")
            .context("the authorization response has no code")?;

        let response = user
            .http()
            .post(format!("{}/oauth/token", self.origin))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &pkce.verifier),
                ("client_id", &client_id),
                ("resource", &self.resource),
            ])
            .send()
            .await
            .context("the token endpoint did not answer")?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(
            status.is_success(),
            "the token endpoint answered HTTP {status}: {}",
            redact(&body)
        );
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the token response has no access_token: {}", redact(&body)))
    }
}

/// Registers a public client (no secret) for `redirect_uri` by Dynamic Client Registration at
/// `origin`; returns its `client_id`.
async fn register(origin: &str, redirect_uri: &str, name: &str) -> Result<String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("cannot build an HTTP client")?;
    let response = http
        .post(format!("{origin}/oauth/register"))
        .json(&json!({
            "client_name": name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .context("the registration endpoint did not answer")?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    ensure!(
        status.as_u16() == 201,
        "the registration endpoint answered HTTP {status}: {body}"
    );
    body["client_id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the registration response has no client_id: {body}"))
}

/// A token response without its tokens, for an error message.
fn redact(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(fields) = body.as_object_mut() {
        for name in ["access_token", "refresh_token", "id_token"] {
            if let Some(value) = fields.get_mut(name) {
                *value = Value::from("(not shown)");
            }
        }
    }
    body
}

/// Writes what the `n`th proxy answered to `rr-proxy-<n>.log`.
fn keep_proxy_log(cluster: &ShoalCluster, log_dir: &Path, n: usize) {
    let path = log_dir.join(format!("rr-proxy-{n}.log"));
    if let Err(error) = write_proxy_log(cluster.proxy(), &path) {
        eprintln!("{error:#}");
    }
}

/// The running suite, killed on drop unless it has exited.
struct Suite(Child);

impl Suite {
    fn kill(&mut self) {
        // It may have exited already; either way it is reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// One check of the suite's results.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check {
    id: String,
    status: String,
    message: Option<String>,
}

/// The checks of each scenario, from `authorization-server-SCENARIO-TIMESTAMP/checks.json`
/// under `results`.
fn read_results(results: &Path) -> Result<BTreeMap<String, Vec<Check>>> {
    let mut outcomes = BTreeMap::new();
    if !results.exists() {
        return Ok(outcomes);
    }
    let entries =
        fs::read_dir(results).with_context(|| format!("cannot list {}", results.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", results.display()))?;
        let path: PathBuf = entry.path().join("checks.json");
        if !path.is_file() {
            continue;
        }
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let checks: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let checks = parse_checks(&checks)
            .with_context(|| format!("{} is not a list of checks", path.display()))?;
        outcomes.insert(scenario_of(&dir_name).to_owned(), checks);
    }
    Ok(outcomes)
}

/// `authorization-server-authorization-code-grant-2026-01-02T03-04-05-678Z` →
/// `authorization-code-grant`.
fn scenario_of(dir_name: &str) -> &str {
    let name = dir_name
        .strip_prefix("authorization-server-")
        .unwrap_or(dir_name);
    SCENARIOS
        .into_iter()
        .find(|scenario| {
            name.strip_prefix(scenario)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
        .unwrap_or(name)
}

fn parse_checks(checks: &Value) -> Option<Vec<Check>> {
    checks
        .as_array()?
        .iter()
        .map(|check| {
            Some(Check {
                id: check.get("id")?.as_str()?.to_owned(),
                status: check.get("status")?.as_str()?.to_owned(),
                message: check
                    .get("errorMessage")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect()
}

fn print_results(outcomes: &BTreeMap<String, Vec<Check>>, results: &Path) {
    println!();
    println!(
        "authorization-server checks per scenario (from {}):",
        results.display()
    );
    let mut total = 0;
    let mut passed = 0;
    for (scenario, checks) in outcomes {
        let ok = checks.iter().filter(|c| c.status == "SUCCESS").count();
        let mark = if ok == checks.len() { "ok  " } else { "FAIL" };
        println!(
            "  {mark} {scenario:<40} passed {ok:>2} of {:>2}",
            checks.len()
        );
        total += checks.len();
        passed += ok;
    }
    println!(
        "  total over {} scenarios: passed {passed} of {total}",
        outcomes.len()
    );
}

/// Fails unless every scenario of [`SCENARIOS`] ran and every check is `SUCCESS`, naming each
/// one that is not.
fn check_results(outcomes: &BTreeMap<String, Vec<Check>>) -> Result<()> {
    let mut problems = Vec::new();
    for scenario in SCENARIOS {
        match outcomes.get(scenario) {
            None => problems.push(format!("{scenario}: no results")),
            Some(checks) if checks.is_empty() => problems.push(format!("{scenario}: no check")),
            Some(_) => {}
        }
    }
    for (scenario, checks) in outcomes {
        for check in checks.iter().filter(|c| c.status != "SUCCESS") {
            problems.push(format!(
                "{scenario}: {} {}: {}",
                check.id,
                check.status,
                check.message.as_deref().unwrap_or("(no message)")
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the authorization-server suite did not pass:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_scenarios_by_their_result_dirs() {
        assert_eq!(
            scenario_of("authorization-server-authorization-code-grant-2026-01-02T03-04-05-678Z"),
            "authorization-code-grant"
        );
        assert_eq!(
            scenario_of(
                "authorization-server-authorization-server-metadata-endpoint-2026-01-02T03-04-05-678Z"
            ),
            "authorization-server-metadata-endpoint"
        );
        assert_eq!(scenario_of("odd"), "odd");
    }

    #[test]
    fn a_warning_fails_like_a_failure() {
        let check = |id: &str, status: &str| Check {
            id: id.into(),
            status: status.into(),
            message: (status != "SUCCESS").then(|| format!("{id} said no")),
        };
        let mut outcomes = BTreeMap::from([
            (
                SCENARIOS[0].to_owned(),
                vec![check("metadata", "SUCCESS"), check("cimd", "SUCCESS")],
            ),
            (SCENARIOS[1].to_owned(), vec![check("grant", "SUCCESS")]),
        ]);
        assert!(check_results(&outcomes).is_ok());

        outcomes.get_mut(SCENARIOS[0]).unwrap()[1] = check("cimd", "WARNING");
        let error = check_results(&outcomes).unwrap_err().to_string();
        assert!(
            error.contains("authorization-server-metadata-endpoint: cimd WARNING: cimd said no"),
            "{error}"
        );

        outcomes.remove(SCENARIOS[1]);
        let error = check_results(&outcomes).unwrap_err().to_string();
        assert!(
            error.contains("authorization-code-grant: no results"),
            "{error}"
        );
    }

    #[test]
    fn reads_checks() {
        let checks = json!([
            {"id": "a", "status": "SUCCESS"},
            {"id": "b", "status": "FAILURE", "errorMessage": "Invalid issuer: x"},
        ]);
        assert_eq!(
            parse_checks(&checks).unwrap(),
            vec![
                Check {
                    id: "a".into(),
                    status: "SUCCESS".into(),
                    message: None
                },
                Check {
                    id: "b".into(),
                    status: "FAILURE".into(),
                    message: Some("Invalid issuer: x".into())
                },
            ]
        );
        assert!(parse_checks(&json!([{"status": "SUCCESS"}])).is_none());
    }

    #[test]
    fn hides_tokens() {
        let body = json!({"access_token": "secret", "error": "x"});
        assert_eq!(
            redact(&body),
            json!({"access_token": "(not shown)", "error": "x"})
        );
    }
}
