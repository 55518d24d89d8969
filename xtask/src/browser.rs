//! The pages a person sees, in a real browser (CI step `browser`, `cargo xtask browser`):
//! Debian's Chromium, headless, driven by `tests/browser/consent.mjs` (playwright-core)
//! through the upstream login, Shoal's consent page (allow, then deny) and its error page.
//!
//! 1. the `oidc-provider` fixture with a login client for Shoal;
//! 2. one `shoal serve --auth oauth` on the memory host behind the round-robin proxy (whose
//!    URL is the public URL: the issuer is its origin);
//! 3. the script, which registers a client, walks the pages, checks what they say and their
//!    headers, and saves `consent.png` and `error.png` in `target/xtask/browser/` for a
//!    person to look at.
//!
//! Chromium comes from Debian's `chromium` package, installed when `/usr/bin/chromium` is
//! missing.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use shoal_testkit::cluster::ShoalCluster;

use crate::Repo;
use crate::cmd;
use crate::server::{self, ToolSet, free_ports};
use crate::tools::{self, Tools};
use crate::topology::{Runtime, clear_dir, log_tail, oauth_replicas, upstream_provider};

/// The script's package directory, relative to the workspace root.
const BROWSER_DIR: &str = "tests/browser";
/// Where the logs and screenshots go, relative to the target directory.
const OUT_DIR: &str = "xtask/browser";

/// Builds shoal, starts the provider and shoal, and runs the browser script.
pub(crate) fn run(repo: &Repo, tools: &Tools) -> Result<()> {
    let chromium = tools::ensure_chromium()?;
    let shoal = server::build(repo, tools)?;
    let dir = repo.root().join(BROWSER_DIR);
    cmd::run(&mut tools.npm(&dir, &["ci", "--no-audit", "--no-fund"]))?;
    let out = repo.target().join(OUT_DIR);
    clear_dir(&out)?;
    let [proxy_addr] = free_ports()?;
    let origin = format!("http://{proxy_addr}");
    let resource = format!("{origin}/mcp");

    let runtime = Runtime::new()?;
    let provider = upstream_provider(&runtime, &origin, &resource)?;
    let replicas = ShoalCluster::builder(&shoal)
        .replicas(1)
        .memory_host()
        .tools(ToolSet::Demo.to_string())
        .proxy_addr(proxy_addr);
    let cluster = runtime.run(
        "shoal did not start",
        oauth_replicas(replicas, &resource, &provider)
            .arg("--required-scopes")
            .arg("mcp:tools")
            .arg("--tool-scope")
            .arg("echo=mcp:echo")
            .arg("--resource-name")
            .arg("Shoal demo tools")
            .log_dir(&out)
            .start(),
    )?;
    println!(
        "shoal --auth oauth is ready behind {resource}; Chromium: {}",
        chromium.display()
    );
    let outcome = cmd::run(
        tools
            .command(tools.node())
            .current_dir(&dir)
            .env("SHOAL_CHROMIUM", &chromium)
            .arg("consent.mjs")
            .args(["--origin", &origin, "--resource", &resource])
            .arg("--out")
            .arg(&out),
    )
    .and_then(|()| {
        for page in ["consent.png", "error.png"] {
            let path = out.join(page);
            let size = std::fs::metadata(&path)
                .with_context(|| format!("no screenshot {}", path.display()))?
                .len();
            if size == 0 {
                bail!("the screenshot {} is empty", path.display());
            }
            println!("screenshot: {} ({size} bytes)", path.display());
        }
        Ok(())
    });
    if outcome.is_err() {
        eprintln!(
            "{}",
            log_tail(&out.join(format!("{}.log", cluster.node_id(0))))
        );
        eprintln!("{}", provider.log_tail());
    }
    runtime.stop(cluster);
    runtime.stop(provider);
    outcome
}

/// Debian's Chromium, for [`tools::ensure_chromium`].
pub(crate) fn chromium_path() -> PathBuf {
    PathBuf::from("/usr/bin/chromium")
}
