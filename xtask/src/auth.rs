//! The conformance suite against an OAuth-protected `shoal` (CI step `conformance-auth`,
//! `cargo xtask conformance --auth`), with a real access token.
//!
//! The suite cannot send an `Authorization` header, so the test kit's round-robin proxy adds
//! one to every request. Everything runs on loopback, on the test kit (see
//! [`crate::topology`]):
//!
//! 1. the `oidc-provider` fixture (`shoal_testkit::oidc::OidcProvider`, `tests/auth/oidc`),
//!    whose resource is the proxy's URL `http://127.0.0.1:<proxy port>/mcp` (a free port
//!    picked first);
//! 2. an access token for that resource by the client-credentials grant (xtask checks that it
//!    is a JWT and never prints it);
//! 3. one `shoal serve --tools conformance --auth jwt --issuer <issuer> --public-url <proxy
//!    URL>` on the memory host, behind the proxy, which adds `Authorization: Bearer <token>`
//!    (`shoal_testkit::cluster::ShoalCluster` with one replica: the token never reaches a
//!    command line);
//! 4. a check that shoal itself, without the proxy, refuses a request without a token: 401
//!    with `WWW-Authenticate: Bearer resource_metadata="<proxy origin>/.well-known/…"`;
//! 5. a check that an `initialize` through the proxy succeeds;
//! 6. the whole suite through the proxy, with the baseline
//!    `tests/conformance/expected-failures-auth.yaml` when that file exists.
//!
//! Logs go to `target/xtask/auth/` (emptied first): `replica-0.log`, and when the step ends
//! `rr-proxy.log` (every request the proxy answered); on a failure the provider's log is
//! printed. Results go to `target/conformance-results-auth`.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail, ensure};
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::oidc::OidcProvider;
use shoal_testkit::proxy::header_pair;

use crate::Repo;
use crate::conformance;
use crate::server::{self, ToolSet, free_ports, post_initialize};
use crate::tools::Tools;
use crate::topology::{Runtime, clear_dir, log_tail, write_proxy_log};

/// The scopes the provider's clients may ask for (the fixture's defaults); the token asks for
/// none of them.
const SCOPES: [&str; 3] = ["mcp:tools", "mcp:echo", "mcp:admin"];
/// The known-failures baseline, relative to the workspace root.
const EXPECTED_FAILURES: &str = "tests/conformance/expected-failures-auth.yaml";
/// Where results go, relative to the target directory.
const RESULTS_DIR: &str = "conformance-results-auth";
/// Where the processes log, relative to the target directory.
const LOG_DIR: &str = "xtask/auth";

/// Builds `shoal`, starts the authorization server, `shoal` with JWT auth behind the proxy
/// that adds the token, checks both, and runs the suite (or only `scenario`).
pub(crate) fn run(repo: &Repo, tools: &Tools, scenario: Option<&str>) -> Result<()> {
    let shoal = server::build(repo, tools)?;
    conformance::install(repo, tools)?;
    let log_dir = repo.target().join(LOG_DIR);
    clear_dir(&log_dir)?;
    let [proxy_addr] = free_ports()?;
    let resource = format!("http://{proxy_addr}/mcp");

    // The proxy serves from the runtime's workers while this thread waits for the suite.
    let runtime = Runtime::new()?;
    // 1. The authorization server (the test kit runs `npm ci` for it when needed).
    let provider = runtime.run(
        "the oidc-provider fixture did not start",
        OidcProvider::start(&resource, &SCOPES),
    )?;
    println!(
        "oidc-provider is ready: issuer {}, resource {resource}",
        provider.issuer()
    );
    let started = (|| {
        // 2. The token, by the client-credentials grant for the resource.
        let token = runtime.run(
            "the oidc-provider fixture issued no token",
            provider.token(&[]),
        )?;
        ensure_jwt(&token)?;
        println!(
            "got an access token for {resource} ({} bytes, not shown)",
            token.len()
        );

        // 3. shoal, whose public URL is the proxy's, behind the proxy that adds the token.
        let (name, value) = header_pair("Authorization", &format!("Bearer {token}"))
            .map_err(|error| anyhow!("the token does not fit in a header: {error}"))?;
        let cluster = ShoalCluster::builder(&shoal)
            .replicas(1)
            .tools(ToolSet::Conformance.to_string())
            .memory_host()
            .arg("--auth")
            .arg("jwt")
            .arg("--issuer")
            .arg(provider.issuer())
            .arg("--public-url")
            .arg(&resource)
            .proxy_addr(proxy_addr)
            .proxy_header(name, value)
            .log_dir(&log_dir);
        runtime.run("shoal did not start", cluster.start())
    })();
    let cluster = match started {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("{}", provider.log_tail());
            runtime.stop(provider);
            return Err(error);
        }
    };

    let outcome = (|| {
        // 4. Without the proxy's header, the endpoint asks for a token.
        check_unauthenticated(cluster.replica_addr(0), proxy_addr)?;
        // 5. Through the proxy, with the token.
        check_authenticated(proxy_addr)?;
        println!("shoal with JWT auth is ready behind {resource}, which adds the token");

        // 6. The suite.
        conformance::run_suite(
            repo,
            tools,
            &resource,
            scenario,
            conformance::Revision::Session,
            &repo.root().join(EXPECTED_FAILURES),
            RESULTS_DIR,
        )
    })();
    if let Err(error) = write_proxy_log(cluster.proxy(), &log_dir.join("rr-proxy.log")) {
        eprintln!("{error:#}");
    }
    if outcome.is_err() {
        eprintln!(
            "{}",
            log_tail(&log_dir.join(format!("{}.log", cluster.node_id(0))))
        );
        eprintln!("{}", provider.log_tail());
    }
    // Stop the proxy and shoal, then the authorization server.
    runtime.stop(cluster);
    runtime.stop(provider);
    outcome
}

/// Fails unless `token` is a JWS compact serialization: three base64url segments.
pub(crate) fn ensure_jwt(token: &str) -> Result<()> {
    let jws = token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ensure!(jws, "the provider issued something that is not a JWT");
    Ok(())
}

/// `POST /mcp` (an `initialize`) straight to shoal with the proxy's `Host` and no token must
/// get 401 with a Bearer challenge that points at the proxy's Protected Resource Metadata.
pub(crate) fn check_unauthenticated(shoal: SocketAddr, proxy: SocketAddr) -> Result<()> {
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
pub(crate) fn check_authenticated(proxy: SocketAddr) -> Result<()> {
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
    fn takes_only_a_jwt() {
        assert!(ensure_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_").is_ok());
        assert!(ensure_jwt("not a token").is_err());
        assert!(ensure_jwt("a.b").is_err());
        assert!(ensure_jwt("a.b.c\n").is_err());
    }
}
