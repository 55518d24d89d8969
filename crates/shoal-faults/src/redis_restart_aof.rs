//! `redis_restart_aof`: Redis with an append-only file (`appendfsync always`) killed (SIGKILL)
//! and restarted under the load: every session survives, nothing acknowledged is lost, streams
//! resume across it.

use crate::redis_probe::ProbeAnswer;
use crate::{Env, Ran, RunFuture, Scenario};

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "redis_restart_aof",
        description: "Redis with AOF (fsync always) SIGKILLed, restarted 1 s later: sessions survive, no loss",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let restarted = super::redis_restart::run(&env, true).await;
    if restarted
        .records
        .iter()
        .any(|r| matches!(r.answer, ProbeAnswer::SessionGone))
    {
        env.checker
            .violation("the probe's session was gone after Redis restarted from its AOF");
    }
    restarted.ran
}
