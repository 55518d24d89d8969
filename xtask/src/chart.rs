//! The offline checks of the Helm chart `helm/shoal` and the kustomize manifests in `deploy/`:
//! `tests/chart/check_chart.py`, run by the venv's Python (which has the pinned
//! `helm-python-sdk`, Helm's Go SDK as a native library, and `kubernetes-validate`).
//!
//! It lints the chart (`helm lint --strict`), renders it for the defaults and every
//! `helm/shoal/ci/*-values.yaml`, validates each manifest against the Kubernetes schemas,
//! asserts what operators rely on (the HPA targets the Deployment, probes on the admin port,
//! secrets by reference, a restricted securityContext, the checksum annotation) and that bad
//! values are refused. No cluster, no network, no helm binary.

use anyhow::Result;

use crate::Repo;
use crate::cmd;
use crate::tools::Tools;

/// The check script, relative to the workspace root.
const SCRIPT: &str = "tests/chart/check_chart.py";

/// Runs the chart checks.
pub(crate) fn run(repo: &Repo, tools: &Tools) -> Result<()> {
    let mut python = tools.command(tools.python()?);
    python
        .current_dir(repo.root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(SCRIPT)
        .arg("--repo")
        .arg(repo.root());
    cmd::run(&mut python)
}
