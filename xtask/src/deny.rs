//! `cargo xtask deny` and the CI `deny` step: cargo-deny's checks of the dependency trees
//! against `deny.toml`, offline.
//!
//! - cargo-deny is installed at a pinned version under `target/tools/` (`tools::cargo_tool`;
//!   it is compiled, which takes minutes the first time).
//! - `cargo fetch --locked` first, for the main workspace and `fuzz/`: cargo-deny reads every
//!   platform's crates offline, and a build downloads only this platform's.
//! - `licenses`, `bans` and `sources` of the main workspace. Duplicate versions are printed
//!   as warnings (`multiple-versions = "warn"`); advisories published only on GitHub (not in
//!   RustSec) are version bans in `deny.toml`, each with its advisory id.
//! - `advisories` of the main workspace and of `fuzz/`, against the offline snapshot of the
//!   RustSec database in `../shared/advisory-db/` (a git bundle; `$SHOAL_ADVISORY_DB`
//!   names another bundle or checkout). It is cloned into `target/deny/` anew on every run,
//!   under the directory name cargo-deny derives from the database URL, and read with
//!   `--frozen`: never fetched. A missing snapshot fails the step: a check that silently
//!   skips is no check. The snapshot's commit and date are printed.
//!
//! `bench/ts-sdk-echo` and `bench/ts2-sdk-echo` (npm) are not covered.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Repo;
use crate::{cmd, tools};

/// The policy file, relative to the workspace root.
const CONFIG: &str = "deny.toml";
/// The cargo-deny release this policy is written for.
const CARGO_DENY: tools::CargoTool = tools::CargoTool {
    name: "cargo-deny",
    version: "0.20.2",
};
/// Where the snapshot is, when it is not beside the repository.
const ENV_DB: &str = "SHOAL_ADVISORY_DB";
/// The snapshot beside the repository, relative to its parent directory.
const SHARED_BUNDLE: &str = "shared/advisory-db/rustsec-advisory-db.bundle";
/// The database cargo-deny reads when `deny.toml` names none.
const DEFAULT_DB_URL: &str = "https://github.com/rustsec/advisory-db";
/// The seed of the hash in cargo-deny's database directory names
/// (`advisories/helpers/db.rs`, `url_to_db_path`, in cargo-deny 0.20).
const DB_DIR_SEED: u64 = 0xca80_de71;

/// Installs cargo-deny if needed and runs its checks.
pub(crate) fn run(repo: &Repo) -> Result<()> {
    let cargo_deny = tools::cargo_tool(repo, CARGO_DENY)?;
    let fuzz = repo.root().join("fuzz").join("Cargo.toml");
    cmd::run(&mut repo.cargo(["fetch", "--locked"]))?;
    cmd::run(
        repo.cargo(["fetch", "--locked", "--manifest-path"])
            .arg(&fuzz),
    )?;

    // The duplicates' inclusion graphs run to a thousand lines; `cargo deny check` shows them.
    let mut policy = deny(repo, &cargo_deny);
    policy.args([
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]);
    cmd::run(&mut policy)?;

    let db_root = repo.target().join("deny").join("advisory-dbs");
    let snapshot = checkout_snapshot(repo, &db_root)?;
    println!("deny: advisory database {snapshot}");
    // The database's location only goes into the configuration: a copy of deny.toml that
    // names it.
    let config = repo.target().join("deny").join(CONFIG);
    let text = fs::read_to_string(repo.root().join(CONFIG))
        .with_context(|| format!("cannot read {CONFIG}"))?;
    fs::write(&config, with_db_path(&text, &db_root)?)
        .with_context(|| format!("cannot write {}", config.display()))?;
    for manifest in [None, Some(&fuzz)] {
        let mut advisories = deny(repo, &cargo_deny);
        // `--manifest-path` and `--config` are cargo-deny's global options: before `check`.
        if let Some(manifest) = manifest {
            advisories.arg("--manifest-path").arg(manifest);
        }
        advisories
            .arg("--config")
            .arg(&config)
            .args(["check", "advisories"]);
        cmd::run(&mut advisories)?;
    }
    Ok(())
}

/// `cargo-deny --frozen` (`--locked` and `--offline`) in the workspace root.
fn deny(repo: &Repo, cargo_deny: &Path) -> Command {
    let mut command = Command::new(cargo_deny);
    command.arg("--frozen").current_dir(repo.root());
    command
}

/// Clones the snapshot into `db_root`, under the name cargo-deny gives the default database,
/// and returns its commit and date for the log.
fn checkout_snapshot(repo: &Repo, db_root: &Path) -> Result<String> {
    let source = snapshot_source(repo)?;
    let checkout = db_root.join(db_dir_name(DEFAULT_DB_URL));
    if db_root.exists() {
        fs::remove_dir_all(db_root)
            .with_context(|| format!("cannot remove the old copy {}", db_root.display()))?;
    }
    fs::create_dir_all(db_root).with_context(|| format!("cannot create {}", db_root.display()))?;
    cmd::run(
        Command::new("git")
            .args(["-c", "init.defaultBranch=main", "clone", "--quiet"])
            .arg(&source)
            .arg(&checkout),
    )?;
    // The commit says what the snapshot was taken of; its newest advisory, how current it is.
    let commit = cmd::probe(Command::new("git").arg("-C").arg(&checkout).args([
        "show",
        "-s",
        "--format=%h of %cs: %s",
    ]))
    .context("the advisory database snapshot has no readable HEAD commit")?;
    let newest = newest_advisory_date(&checkout.join("crates"))
        .context("the advisory database snapshot has no advisory under crates/")?;
    Ok(format!(
        "{commit}; newest advisory {newest} ({})",
        source.display()
    ))
}

/// The latest `date = "YYYY-MM-DD"` of the advisories under `crates/<name>/*.md`.
fn newest_advisory_date(crates: &Path) -> Option<String> {
    let mut newest: Option<String> = None;
    for krate in fs::read_dir(crates).ok()?.flatten() {
        for advisory in fs::read_dir(krate.path()).into_iter().flatten().flatten() {
            let Ok(text) = fs::read_to_string(advisory.path()) else {
                continue;
            };
            let date = text.lines().find_map(|line| {
                let value = line.strip_prefix("date = \"")?.strip_suffix('"')?;
                (value.len() == 10).then(|| value.to_owned())
            });
            if let Some(date) = date
                && newest.as_ref().is_none_or(|seen| date > *seen)
            {
                newest = Some(date);
            }
        }
    }
    newest
}

/// `$SHOAL_ADVISORY_DB`, or the shared snapshot beside the repository.
fn snapshot_source(repo: &Repo) -> Result<PathBuf> {
    if let Some(db) = std::env::var_os(ENV_DB).filter(|db| !db.is_empty()) {
        return Ok(PathBuf::from(db));
    }
    let beside = repo
        .root()
        .parent()
        .map(|parent| parent.join(SHARED_BUNDLE))
        .filter(|bundle| bundle.is_file());
    match beside {
        Some(bundle) => Ok(bundle),
        None => bail!(
            "no advisory database snapshot: expected ../{SHARED_BUNDLE} beside the repository, \
             or {ENV_DB} naming a bundle or checkout of the RustSec advisory database"
        ),
    }
}

/// The directory cargo-deny opens for the database at `url`: the URL's last path segment and
/// the 64-bit xxHash of the lowercased URL.
fn db_dir_name(url: &str) -> String {
    let url = url.to_lowercase();
    let name = url.rsplit('/').next().unwrap_or("empty_");
    let hash = twox_hash::XxHash64::oneshot(DB_DIR_SEED, url.as_bytes());
    format!("{name}-{hash:016x}")
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
    fn the_database_directory_is_named_as_cargo_deny_names_it() {
        // The name cargo-deny 0.20 gives the default database (its own `fetch` writes it).
        assert_eq!(
            db_dir_name("https://github.com/RustSec/advisory-db"),
            "advisory-db-3157b0e258782691"
        );
    }
}
