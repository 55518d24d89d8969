//! The test kit's topologies driven from xtask's blocking steps: Redis, `shoal serve` replicas
//! and the round-robin proxy (`shoal_testkit::cluster::ShoalCluster`), the `oidc-provider`
//! fixture (`shoal_testkit::oidc::OidcProvider`).
//!
//! [`Runtime`] runs the test kit's async helpers to their end and turns the panic with which a
//! helper fails (a process that does not start or get ready, with the tail of its log) into an
//! error. Between two calls its workers keep serving what lives in this process, the proxy
//! above all, while the step's own thread blocks on an external program (the conformance
//! suite) or on its own requests. The test kit's processes stop when their handles are dropped
//! ([`Runtime::stop`]); its temporary directories go with them, so [`write_proxy_log`] and
//! [`copy_log`] keep what the proxy and Redis saw under `target/xtask/`, and [`log_tail`]
//! frames a log for a failed step.

use std::any::Any;
use std::fmt::Write as _;
use std::fs;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use anyhow::{Context, Result, bail};
use shoal_testkit::cluster::ClusterBuilder;
use shoal_testkit::oidc::{LoginClient, OidcProvider, Options};
use shoal_testkit::proxy::RoundRobinProxy;

use crate::process::LOG_TAIL_LINES;

/// A tokio runtime for the test kit's helpers.
#[derive(Debug)]
pub(crate) struct Runtime {
    runtime: tokio::runtime::Runtime,
}

// === impl Runtime ===

impl Runtime {
    pub(crate) fn new() -> Result<Self> {
        let runtime = tokio::runtime::Runtime::new().context("cannot start a tokio runtime")?;
        Ok(Self { runtime })
    }

    /// Runs `future` to its end on this thread; a panic in it becomes the error
    /// `{what}: {message}`.
    pub(crate) fn run<F: Future>(&self, what: &str, future: F) -> Result<F::Output> {
        // A helper that panics has already dropped what it started (its processes die with
        // their handles), and the caller drops the rest: nothing half-done is used again.
        match panic::catch_unwind(AssertUnwindSafe(|| self.runtime.block_on(future))) {
            Ok(output) => Ok(output),
            Err(panic) => bail!("{what}: {}", panic_message(&*panic)),
        }
    }

    /// Drops `value` (a cluster, a provider) inside the runtime: its processes are killed and
    /// the proxy's tasks end.
    pub(crate) fn stop<T>(&self, value: T) {
        let _guard = self.runtime.enter();
        drop(value);
    }
}

/// The message of a panic (`panic!` with a format or a literal).
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// Empties `dir` (the replicas append to their logs there) and creates it again.
pub(crate) fn clear_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes every request the proxy answered, and where it landed, to `path` (one line each, as
/// the `rr-proxy` binary logs them).
pub(crate) fn write_proxy_log(proxy: &RoundRobinProxy, path: &Path) -> Result<()> {
    let mut served = String::new();
    for s in proxy.served() {
        let _ = writeln!(
            served,
            "rr-proxy: #{} {} {} -> {} {}",
            s.pick,
            s.method,
            s.path,
            s.name,
            s.status.as_u16()
        );
    }
    fs::write(path, served).with_context(|| format!("cannot write {}", path.display()))
}

/// Copies a log out of the test kit's temporary directory.
pub(crate) fn copy_log(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

/// The last [`LOG_TAIL_LINES`] lines of the log at `path`, framed.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => return format!("(cannot read {}: {error})", path.display()),
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!(
        "--- last {} lines of {} ---\n{}\n--- end ---",
        tail.len(),
        path.display(),
        tail.join("\n")
    )
}

/// Shoal's client at the upstream provider of the `--auth oauth` checks.
pub(crate) const UPSTREAM_CLIENT: &str = "shoal-upstream";
/// Its secret, given to shoal in `SHOAL_UPSTREAM_CLIENT_SECRET` (never on a command line).
pub(crate) const UPSTREAM_SECRET: &str = "shoal-upstream-secret";

/// The `oidc-provider` fixture as the upstream provider of `shoal --auth oauth` whose public
/// URL is `resource` (its origin is the issuer): one login client for Shoal, whose redirect URI
/// is `<origin>/oauth/callback`.
pub(crate) fn upstream_provider(
    runtime: &Runtime,
    origin: &str,
    resource: &str,
) -> Result<OidcProvider> {
    runtime.run(
        "the oidc-provider fixture did not start",
        OidcProvider::start_with(Options::new(resource, &[]).login_client(LoginClient::new(
            UPSTREAM_CLIENT,
            UPSTREAM_SECRET,
            [format!("{origin}/oauth/callback")],
        ))),
    )
}

/// `builder`'s replicas as `shoal serve --auth oauth` at `resource`, users signing in at
/// `provider`.
pub(crate) fn oauth_replicas(
    builder: ClusterBuilder,
    resource: &str,
    provider: &OidcProvider,
) -> ClusterBuilder {
    builder
        .env("SHOAL_UPSTREAM_CLIENT_SECRET", UPSTREAM_SECRET)
        .arg("--public-url")
        .arg(resource)
        .arg("--auth")
        .arg("oauth")
        .arg("--upstream-issuer")
        .arg(provider.issuer())
        .arg("--upstream-client-id")
        .arg(UPSTREAM_CLIENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_error() {
        let runtime = Runtime::new().unwrap();
        assert_eq!(runtime.run("adding", async { 1 + 1 }).unwrap(), 2);
        let error = runtime
            .run("starting", async {
                panic!("replica-0 exited");
            })
            .unwrap_err();
        assert_eq!(error.to_string(), "starting: replica-0 exited");
        let error = runtime
            .run("starting", async {
                let port = 1;
                panic!("port {port} taken");
            })
            .unwrap_err();
        assert_eq!(error.to_string(), "starting: port 1 taken");
    }
}
