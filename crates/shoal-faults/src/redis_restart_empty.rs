//! `redis_restart_empty`: Redis without persistence killed (SIGKILL) and restarted, empty,
//! under the load. Every session is gone: requests in them end cleanly with 404 (counted, not
//! loss), clients open new sessions, and the replicas recover without being restarted.

use crate::redis_probe::ProbeAnswer;
use crate::{Env, Ran, RunFuture, Scenario};

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "redis_restart_empty",
        description: "Redis without persistence SIGKILLed, restarted empty: clean 404s, new sessions",
        sessions_survive: false,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let mut restarted = super::redis_restart::run(&env, false).await;
    let gone = restarted
        .records
        .iter()
        .filter(|r| matches!(r.answer, ProbeAnswer::SessionGone))
        .count();
    if gone == 0 {
        env.checker
            .violation("the probe's session outlived a Redis restart without persistence");
    }
    restarted.ran.notes.push(format!(
        "probe: {gone} × 404 for its lost session, then a new one"
    ));
    restarted.ran
}
