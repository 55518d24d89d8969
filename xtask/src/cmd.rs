//! Running child processes: echo the command, check its exit status, name it in errors.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail};

/// Runs `command` with inherited stdio and fails unless it exits successfully.
pub(crate) fn run(command: &mut Command) -> Result<()> {
    let status = status(command)?;
    if !status.success() {
        bail!("`{}` failed: {status}", display(command));
    }
    Ok(())
}

/// Runs `command` with inherited stdio and returns its exit status, whatever it is.
pub(crate) fn status(command: &mut Command) -> Result<ExitStatus> {
    println!("$ {}", display(command));
    command
        .status()
        .with_context(|| format!("could not start `{}`", display(command)))
}

/// Runs `command` quietly and returns its trimmed stdout, or `None` if it could not start or
/// did not exit successfully. For probes such as `node --version`.
pub(crate) fn probe(command: &mut Command) -> Option<String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The first executable called `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// `program arg…` as a shell would show it, prefixed by `(cd DIR && …)` when it runs in
/// another directory than xtask. The cargo running xtask shows as plain `cargo`.
pub(crate) fn display(command: &Command) -> String {
    let program = command.get_program();
    let mut line = if std::env::var_os("CARGO").is_some_and(|cargo| cargo == program) {
        "cargo".to_owned()
    } else {
        program.to_string_lossy().into_owned()
    };
    for arg in command.get_args() {
        let arg = arg.to_string_lossy();
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            line.push('\'');
            line.push_str(&arg.replace('\'', r"'\''"));
            line.push('\'');
        } else {
            line.push_str(&arg);
        }
    }
    match command.get_current_dir() {
        Some(dir) if std::env::current_dir().ok().as_deref() != Some(dir) => {
            format!("(cd {} && {line})", dir.display())
        }
        _ => line,
    }
}
