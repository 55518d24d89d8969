//! `cargo xtask image`: builds the container image of `deploy/Containerfile` with Debian's
//! `podman` and checks it for real.
//!
//! 1. A statically linked release `shoal` (`+crt-static`, `--target x86_64-unknown-linux-gnu`,
//!    profile `image-release`: `release` without debug info), checked to have no ELF
//!    interpreter.
//! 2. The build context under `target/image/`: that binary (without debug info when `strip`
//!    is there), the host's CA bundle, and
//!    `passwd`/`group` entries for `nonroot` (65532). The image is `FROM scratch`, so the build
//!    pulls nothing.
//! 3. `podman build` into xtask's own storage under `target/podman/` (driver `vfs`, runtime
//!    `runc`, cgroup manager `cgroupfs`, events to a file, default ulimits
//!    `nofile`/`nproc` 1024 because the host forbids raising them), set by the
//!    `containers.conf` and `storage.conf` written there.
//! 4. `podman run` of the image's default command, with nothing configured: `shoal` must refuse
//!    to listen on 0.0.0.0 without authentication, exiting 1 with one line that names the flags
//!    to set (the image never serves unauthenticated unless told to).
//! 5. `podman run` of the same command with static auth from an env file (as a Secret would
//!    give it): `/healthz` must answer 200, an MCP `initialize` without the token 401, and with
//!    it 200 with an `mcp-session-id`; the image must run as `65532:65532`.
//! 6. `podman stop -t 15` must end it with exit code 0 within the drain time (SIGTERM is
//!    handled by `shoal` itself as PID 1).
//! 7. `podman save --format oci-archive` to `target/image/shoal-image.tar`.
//!
//! The containers are removed at the end, also when a check fails.
//!
//! One file (about 650 lines): the steps above in order, one function each, and the small podman
//! wrapper only they use.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::Repo;
use crate::cmd;
use crate::server::{free_ports, http_get_status, post_initialize_as};
use crate::tools;

/// The image's name and tag.
const IMAGE: &str = "shoal:dev";
/// The Rust target of the static binary.
const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The cargo profile of the static binary (root `Cargo.toml`).
const PROFILE: &str = "image-release";
/// The CA bundle copied into the image.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The user (and group) the image runs as.
const NONROOT: u32 = 65532;
/// How long the container has to answer `/healthz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The drain bound `shoal` uses by default (`--drain-timeout`; `--shutdown-delay` is 0).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// What `podman stop` may add to the drain (the runtime's own work).
const STOP_SLACK: Duration = Duration::from_secs(3);
/// `podman stop -t`: seconds before SIGKILL, more than the drain so a kill shows as a failure.
const STOP_GRACE_SECONDS: u32 = 15;
/// How the refusal of the image's default command starts (anyhow's `Error: ` and the message
/// of `shoal`'s config.rs); the line must also name every flag in [`REFUSAL_NAMES`].
const REFUSAL: &str = "Error: refusing to listen on 0.0.0.0:8080 without authentication";
/// What the refusal must name: the ways to configure authentication, and the explicit opt-out.
const REFUSAL_NAMES: [&str; 5] = [
    "--auth static",
    "SHOAL_AUTH_TOKENS",
    "--auth jwt",
    "SHOAL_ISSUER",
    "--allow-unauthenticated",
];
/// The principal of the token the checked container is given.
const PRINCIPAL: &str = "xtask";

/// Builds, checks and saves the image.
pub(crate) fn run(repo: &Repo) -> Result<()> {
    tools::ensure_podman()?;
    let podman = Podman::configure(repo)?;
    println!(
        "podman: {}",
        cmd::probe(podman.command().arg("--version")).unwrap_or_default()
    );

    let started = Instant::now();
    let binary = build_static(repo)?;
    println!("static build: {:.1}s", started.elapsed().as_secs_f64());

    let context = prepare_context(repo, &binary)?;

    let started = Instant::now();
    let revision = cmd::probe(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(repo.root()),
    )
    .unwrap_or_else(|| "unknown".to_owned());
    cmd::run(
        podman
            .command()
            .args(["build", "--runtime", "runc", "--file"])
            .arg(repo.root().join("deploy").join("Containerfile"))
            .args(["--tag", IMAGE])
            .arg("--build-arg")
            .arg(format!("VERSION={}", env!("CARGO_PKG_VERSION")))
            .arg("--build-arg")
            .arg(format!("REVISION={revision}"))
            .arg(&context),
    )?;
    println!("podman build: {:.1}s", started.elapsed().as_secs_f64());

    let user = podman.output(&["image", "inspect", "--format", "{{.Config.User}}", IMAGE])?;
    ensure!(
        user == format!("{NONROOT}:{NONROOT}"),
        "the image runs as user {user:?}, expected {NONROOT}:{NONROOT}"
    );
    println!("image user: {user}");

    let started = Instant::now();
    check_refuses_without_auth(&podman)?;
    check_container(&podman, &repo.target().join("podman"))?;
    println!("run checks: {:.1}s", started.elapsed().as_secs_f64());

    let archive = context.join("shoal-image.tar");
    if archive.exists() {
        fs::remove_file(&archive)
            .with_context(|| format!("cannot remove {}", archive.display()))?;
    }
    cmd::run(
        podman
            .command()
            .args(["save", "--format", "oci-archive", "--output"])
            .arg(&archive)
            .arg(IMAGE),
    )?;
    let size: u64 = podman
        .output(&["image", "inspect", "--format", "{{.Size}}", IMAGE])?
        .parse()
        .context("podman printed a size that is not a number")?;
    let archive_size = fs::metadata(&archive)
        .with_context(|| format!("cannot stat {}", archive.display()))?
        .len();
    println!("image {IMAGE}: {}", megabytes(size));
    println!(
        "OCI archive: {} ({}); load it with `podman load -i {}`",
        archive.display(),
        megabytes(archive_size),
        archive.display()
    );
    Ok(())
}

/// `RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile PROFILE … --target
/// TARGET`, and the check that the result has no ELF interpreter (is statically linked).
fn build_static(repo: &Repo) -> Result<PathBuf> {
    cmd::run(
        repo.cargo([
            "build",
            "--locked",
            "--profile",
            PROFILE,
            "-p",
            "shoal-server",
            "--bin",
            "shoal",
            "--target",
            TARGET,
        ])
        .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )?;
    let binary = repo.target().join(TARGET).join(PROFILE).join("shoal");
    let elf = fs::read(&binary).with_context(|| format!("cannot read {}", binary.display()))?;
    ensure!(
        !has_interpreter(&elf)?,
        "{} is dynamically linked (it has a PT_INTERP)",
        binary.display()
    );
    if let Some(file) = cmd::probe(Command::new("file").arg("--brief").arg(&binary)) {
        println!("{}: {file}", binary.display());
    }
    Ok(binary)
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header.
fn has_interpreter(elf: &[u8]) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    ensure!(
        elf.len() >= 64 && elf.starts_with(b"\x7fELF") && elf[4] == 2 && elf[5] == 1,
        "not a 64-bit little-endian ELF file"
    );
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
    let phoff = usize::try_from(u64::from_le_bytes(elf[0x20..0x28].try_into()?))?;
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = elf
            .get(at..at + 4)
            .context("truncated program header table")?;
        if u32::from_le_bytes(p_type.try_into()?) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A fresh `target/image/` with the binary, the CA bundle, `passwd` and `group`.
fn prepare_context(repo: &Repo, binary: &Path) -> Result<PathBuf> {
    let context = repo.target().join("image");
    if context.exists() {
        fs::remove_dir_all(&context)
            .with_context(|| format!("cannot remove {}", context.display()))?;
    }
    fs::create_dir_all(&context).with_context(|| format!("cannot create {}", context.display()))?;
    let shoal = context.join("shoal");
    fs::copy(binary, &shoal).with_context(|| format!("cannot copy {}", binary.display()))?;
    // Cargo already leaves no debug info in this profile's binary; stripping again is cheap
    // and keeps the image without it if the profile changes (symbols stay, for backtraces).
    if cmd::which("strip").is_some() {
        cmd::run(Command::new("strip").arg("--strip-debug").arg(&shoal))?;
    }
    let size = fs::metadata(&shoal)
        .with_context(|| format!("cannot stat {}", shoal.display()))?
        .len();
    println!("shoal in the image: {}", megabytes(size));
    fs::copy(CA_BUNDLE, context.join("ca-certificates.crt"))
        .with_context(|| format!("cannot copy {CA_BUNDLE} (install Debian's ca-certificates)"))?;
    fs::write(
        context.join("passwd"),
        format!("nonroot:x:{NONROOT}:{NONROOT}:nonroot:/nonexistent:/sbin/nologin\n"),
    )
    .context("cannot write passwd")?;
    fs::write(context.join("group"), format!("nonroot:x:{NONROOT}:\n"))
        .context("cannot write group")?;
    println!("build context: {}", context.display());
    Ok(context)
}

/// Runs the image's default command with nothing configured: it must exit 1 at once, its whole
/// output one line naming how to configure authentication.
fn check_refuses_without_auth(podman: &Podman) -> Result<()> {
    let name = format!("shoal-xtask-image-{}-noauth", std::process::id());
    let container = Container {
        podman,
        name: name.clone(),
    };
    container.remove();
    cmd::run(podman.run_command(&name).arg(IMAGE))?;
    let outcome = (|| {
        let state = container.wait_exited()?;
        // Both streams, the container's alone (`podman run` would mix in its own warnings).
        let mut logs = podman.command();
        logs.args(["logs", &name]).stdin(Stdio::null());
        let output = logs
            .output()
            .with_context(|| format!("could not start `{}`", cmd::display(&logs)))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect();
        ensure!(
            state == "exited 1",
            "the default command without authentication is `{state}`, expected `exited 1`; its \
             output:\n{text}"
        );
        ensure!(
            lines.len() == 1 && lines[0].starts_with(REFUSAL),
            "the default command without authentication printed {} lines, expected one \
             starting `{REFUSAL}`:\n{text}",
            lines.len()
        );
        let missing: Vec<&str> = REFUSAL_NAMES
            .into_iter()
            .filter(|name| !lines[0].contains(name))
            .collect();
        ensure!(
            missing.is_empty(),
            "the refusal does not name {missing:?}: {}",
            lines[0]
        );
        println!("default command without auth: {state}: {}", lines[0]);
        Ok(())
    })();
    if outcome.is_err() {
        container.print_logs();
    }
    outcome
}

/// Runs the image's default command with static auth from an env file, checks it answers
/// (401 without the token, 200 with it) and runs as non-root, stops it and checks the drain.
fn check_container(podman: &Podman, dir: &Path) -> Result<()> {
    let [mcp, admin] = free_ports()?;
    let name = format!("shoal-xtask-image-{}", std::process::id());
    let container = Container {
        podman,
        name: name.clone(),
    };
    // A leftover of an interrupted run with the same name would make `run` fail.
    container.remove();
    let token = random_token()?;
    let env_file = EnvFile::write(
        &dir.join("shoal-auth.env"),
        &format!("SHOAL_AUTH=static\nSHOAL_AUTH_TOKENS={PRINCIPAL}={token}\n"),
    )?;
    cmd::run(
        podman
            .run_command(&name)
            .arg("--env-file")
            .arg(&env_file.path)
            .arg("--publish")
            .arg(format!("{mcp}:8080"))
            .arg("--publish")
            .arg(format!("{admin}:9090"))
            .arg(IMAGE),
    )?;
    let outcome = (|| {
        wait_healthy(&container, admin)?;
        println!("GET http://{admin}/healthz: 200");
        let (status, head) = post_initialize_as(mcp, mcp, None)
            .with_context(|| format!("cannot POST an initialize to {mcp}"))?;
        ensure!(
            status == 401 && header(&head, "www-authenticate").is_some(),
            "initialize without a token got HTTP {status}; expected 401 with a \
             WWW-Authenticate\n{head}"
        );
        println!("POST http://{mcp}/mcp initialize without a token: 401");
        let (status, head) = post_initialize_as(mcp, mcp, Some(&token))
            .with_context(|| format!("cannot POST an initialize to {mcp}"))?;
        let session = header(&head, "mcp-session-id");
        ensure!(
            status == 200 && session.is_some(),
            "initialize got HTTP {status} (mcp-session-id {session:?}); expected 200 with a \
             session id\n{head}"
        );
        println!(
            "POST http://{mcp}/mcp initialize as {PRINCIPAL}: 200, mcp-session-id {}",
            session.unwrap_or_default()
        );
        let user = podman.output(&[
            "container",
            "inspect",
            "--format",
            "{{.Config.User}}",
            &name,
        ])?;
        ensure!(
            user == format!("{NONROOT}:{NONROOT}"),
            "the container runs as user {user:?}, expected {NONROOT}:{NONROOT}"
        );
        println!("container user: {user}");

        let started = Instant::now();
        cmd::run(podman.command().args([
            "stop",
            "--time",
            &STOP_GRACE_SECONDS.to_string(),
            &name,
        ]))?;
        let stopped = started.elapsed();
        let state = podman.output(&[
            "container",
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            &name,
        ])?;
        println!(
            "podman stop: {:.1}s, state and exit code: {state}",
            stopped.as_secs_f64()
        );
        ensure!(
            state == "exited 0",
            "after SIGTERM the container is `{state}`, expected `exited 0`"
        );
        ensure!(
            stopped <= DRAIN_TIMEOUT + STOP_SLACK,
            "the container took {:.1}s to stop, more than the {}s drain",
            stopped.as_secs_f64(),
            DRAIN_TIMEOUT.as_secs()
        );
        Ok(())
    })();
    if outcome.is_err() {
        container.print_logs();
    }
    outcome
}

fn wait_healthy(container: &Container<'_>, admin: SocketAddr) -> Result<()> {
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    while started.elapsed() < READY_TIMEOUT {
        let state = container.podman.output(&[
            "container",
            "inspect",
            "--format",
            "{{.State.Status}}",
            &container.name,
        ])?;
        if state != "running" {
            bail!("the container is {state} before /healthz answered");
        }
        match http_get_status(admin, "/healthz") {
            Ok(200) => return Ok(()),
            Ok(status) => last = format!("HTTP {status}"),
            Err(error) => last = error.to_string(),
        }
        thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "/healthz did not answer 200 within {}s (last: {last})",
        READY_TIMEOUT.as_secs()
    )
}

/// 24 random bytes from the kernel, in hex: the container's token.
fn random_token() -> Result<String> {
    let mut bytes = [0_u8; 24];
    fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    }))
}

/// An owner-only env file (it holds a token), removed on drop.
struct EnvFile {
    path: PathBuf,
}

impl EnvFile {
    fn write(path: &Path, contents: &str) -> Result<Self> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        // A leftover of an interrupted run would keep its wider mode through `create`.
        let _ = fs::remove_file(path);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut file| file.write_all(contents.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

impl Drop for EnvFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The value of header `name` in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

fn megabytes(bytes: u64) -> String {
    let mut text = String::new();
    // Display only: the precision lost converting to f64 does not matter.
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1_000_000.0;
    let _ = write!(text, "{mb:.1} MB ({bytes} bytes)");
    text
}

/// `podman` with xtask's own configuration and storage under `target/podman/`.
#[derive(Debug)]
struct Podman {
    containers_conf: PathBuf,
    storage_conf: PathBuf,
}

// === impl Podman ===

impl Podman {
    /// Writes `containers.conf` and `storage.conf` under `target/podman/`.
    fn configure(repo: &Repo) -> Result<Self> {
        let dir = repo.target().join("podman");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let containers_conf = dir.join("containers.conf");
        let storage_conf = dir.join("storage.conf");
        fs::write(
            &containers_conf,
            "[containers]\n\
             # The host forbids raising these limits above its own.\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             \n\
             [engine]\n\
             runtime = \"runc\"\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n",
        )
        .with_context(|| format!("cannot write {}", containers_conf.display()))?;
        fs::write(
            &storage_conf,
            format!(
                "[storage]\n\
                 driver = \"vfs\"\n\
                 graphroot = \"{}\"\n\
                 runroot = \"{}\"\n",
                dir.join("storage").display(),
                dir.join("run").display()
            ),
        )
        .with_context(|| format!("cannot write {}", storage_conf.display()))?;
        Ok(Self {
            containers_conf,
            storage_conf,
        })
    }

    /// `podman run --detach --name NAME` with the runtime and ulimits the host allows; the
    /// caller adds options and the image.
    fn run_command(&self, name: &str) -> Command {
        let mut command = self.command();
        command
            .args(["run", "--detach", "--name", name, "--runtime", "runc"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ]);
        command
    }

    fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .env("CONTAINERS_CONF", &self.containers_conf)
            .env("CONTAINERS_STORAGE_CONF", &self.storage_conf);
        command
    }

    /// The trimmed stdout of `podman ARGS`, which must succeed.
    fn output(&self, args: &[&str]) -> Result<String> {
        let mut command = self.command();
        command.args(args).stdin(Stdio::null());
        let output = command
            .output()
            .with_context(|| format!("could not start `{}`", cmd::display(&command)))?;
        if !output.status.success() {
            bail!(
                "`{}` failed: {}\n{}",
                cmd::display(&command),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// The check's container, removed on drop.
struct Container<'a> {
    podman: &'a Podman,
    name: String,
}

impl Container<'_> {
    /// Waits until the container has exited; returns `"exited <code>"`.
    fn wait_exited(&self) -> Result<String> {
        let started = Instant::now();
        loop {
            let state = self.podman.output(&[
                "container",
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                &self.name,
            ])?;
            if state.starts_with("exited") {
                return Ok(state);
            }
            if started.elapsed() >= READY_TIMEOUT {
                bail!(
                    "the container is still `{state}` after {}s; expected it to exit",
                    READY_TIMEOUT.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn print_logs(&self) {
        eprintln!("--- podman logs {} ---", self.name);
        let _ = self
            .podman
            .command()
            .args(["logs", "--tail", "60", &self.name])
            .stdin(Stdio::null())
            .status();
        eprintln!("--- end of container log ---");
    }

    fn remove(&self) {
        let _ = self
            .podman
            .command()
            .args(["rm", "--force", "--ignore", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_interpreter_of_a_dynamic_executable() {
        let mut elf = vec![0_u8; 64 + 2 * 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64_u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56_u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2_u16.to_le_bytes());
        elf[64..68].copy_from_slice(&6_u32.to_le_bytes()); // PT_PHDR
        assert!(!has_interpreter(&elf).unwrap());
        elf[64 + 56..64 + 60].copy_from_slice(&3_u32.to_le_bytes()); // PT_INTERP
        assert!(has_interpreter(&elf).unwrap());
        assert!(has_interpreter(b"not an elf file").is_err());
    }

    #[test]
    fn reads_a_header() {
        let head = "HTTP/1.1 200 OK\r\nMcp-Session-Id: abc\r\ncontent-type: text/event-stream";
        assert_eq!(header(head, "mcp-session-id"), Some("abc"));
        assert_eq!(header(head, "missing"), None);
    }
}
