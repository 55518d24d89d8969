//! `cargo xtask deny` and the CI `deny` step: cargo-deny's checks of the main workspace's
//! dependency tree against `deny.toml`, offline.
//!
//! - cargo-deny is installed once into `target/tools/cargo-deny` (`tools::cargo_tool`;
//!   it is compiled, which takes minutes the first time).
//! - `licenses`, `bans` and `sources` need every platform's crates in cargo's cache, which
//!   `cargo fetch` makes sure of first: they always run.
//!   Duplicate versions are printed as warnings (`multiple-versions = "warn"`).
//! - `advisories` needs the RustSec database, which cannot be fetched offline: it runs only when
//!   a copy exists at `$CARGO_DENY_DB`, or else at cargo-deny's default
//!   `$CARGO_HOME/advisory-dbs`; otherwise one line says it was skipped and why.
//!
//! The `fuzz/` workspace and `bench/ts-sdk-echo` (npm) are not covered.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::Repo;
use crate::{cmd, tools};

/// The policy file, relative to the workspace root.
const CONFIG: &str = "deny.toml";
/// Where the advisory database is, when it is not cargo-deny's default.
const ENV_DB: &str = "CARGO_DENY_DB";

/// Installs cargo-deny if needed and runs its checks.
pub(crate) fn run(repo: &Repo) -> Result<()> {
    let cargo_deny = tools::cargo_tool(repo, "cargo-deny")?;
    // cargo-deny reads the metadata of every platform's dependencies offline, and a build
    // downloads only this platform's: fetch the rest first (nothing when all are cached).
    cmd::run(&mut repo.cargo(["fetch"]))?;
    let mut check = deny(repo, &cargo_deny);
    // The duplicates' inclusion graphs run to a thousand lines; `cargo deny check` shows them.
    check.args([
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]);
    cmd::run(&mut check)?;

    let db = advisory_db();
    if !has_database(&db) {
        println!(
            "deny: advisories skipped: no advisory database at {} (set {ENV_DB}, or run \
             `cargo deny fetch` where the network allows it)",
            db.display()
        );
        return Ok(());
    }
    // The database's location only goes into the configuration: a copy of deny.toml that
    // names it.
    let config = repo.target().join("deny").join(CONFIG);
    let policy = fs::read_to_string(repo.root().join(CONFIG))
        .with_context(|| format!("cannot read {CONFIG}"))?;
    fs::create_dir_all(config.parent().unwrap_or(repo.target()))
        .with_context(|| format!("cannot create the directory of {}", config.display()))?;
    fs::write(&config, with_db_path(&policy, &db)?)
        .with_context(|| format!("cannot write {}", config.display()))?;
    let mut advisories = deny(repo, &cargo_deny);
    advisories
        .arg("--config")
        .arg(&config)
        .args(["check", "advisories"]);
    cmd::run(&mut advisories)
}

/// `cargo-deny --offline` in the workspace root.
fn deny(repo: &Repo, cargo_deny: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(cargo_deny);
    command.arg("--offline").current_dir(repo.root());
    command
}

/// `$CARGO_DENY_DB`, or cargo-deny's default `$CARGO_HOME/advisory-dbs`.
fn advisory_db() -> PathBuf {
    if let Some(db) = std::env::var_os(ENV_DB).filter(|db| !db.is_empty()) {
        return PathBuf::from(db);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    cargo_home.join("advisory-dbs")
}

/// True when `db` holds at least one database: a git checkout with a `crates` directory (one
/// per database URL).
fn has_database(db: &Path) -> bool {
    fs::read_dir(db).is_ok_and(|mut entries| {
        entries.any(|entry| {
            entry.is_ok_and(|e| e.path().join("crates").is_dir() && e.path().join(".git").exists())
        })
    })
}

/// `policy` with `db-path = "<db>"` as the first key of its `[advisories]` table.
fn with_db_path(policy: &str, db: &Path) -> Result<String> {
    let Some(db) = db.to_str() else {
        bail!("the advisory database path {} is not UTF-8", db.display());
    };
    let quoted = db.replace('\\', "\\\\").replace('"', "\\\"");
    let mut found = false;
    let mut out = String::with_capacity(policy.len() + db.len() + 16);
    for line in policy.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[advisories]" {
            out.push_str(&format!("db-path = \"{quoted}\"\n"));
            found = true;
        }
    }
    if !found {
        out.push_str(&format!("\n[advisories]\ndb-path = \"{quoted}\"\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_path_goes_into_the_advisories_table() {
        let policy = "[graph]\nall-features = false\n\n[advisories]\nversion = 2\n";
        let config = with_db_path(policy, Path::new("/db/\"x\"")).unwrap();
        assert_eq!(
            config,
            "[graph]\nall-features = false\n\n[advisories]\ndb-path = \"/db/\\\"x\\\"\"\nversion = 2\n"
        );
        let config = with_db_path("[bans]\n", Path::new("/db")).unwrap();
        assert_eq!(config, "[bans]\n\n[advisories]\ndb-path = \"/db\"\n");
    }

    #[test]
    fn a_missing_or_empty_directory_has_no_database() {
        assert!(!has_database(Path::new("/nonexistent/advisory-dbs")));
        let empty = std::env::temp_dir().join(format!("xtask-deny-{}", std::process::id()));
        fs::create_dir_all(&empty).unwrap();
        assert!(!has_database(&empty));
        let db = empty.join("advisory-db-0123");
        fs::create_dir_all(db.join("crates")).unwrap();
        assert!(!has_database(&empty), "not a git checkout");
        fs::create_dir_all(db.join(".git")).unwrap();
        assert!(has_database(&empty));
        fs::remove_dir_all(&empty).unwrap();
    }
}
