//! `churn`: one operation is a whole session lifecycle: `initialize`,
//! `notifications/initialized`, `--calls-per-session` calls of `--tool`, and `DELETE`.
//! A server that answers DELETE with 405 (clients may not end sessions) passes, with a note;
//! so does a stateless one, which gives no session to delete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Context, Outcome, SetupFailed, StreamCounts, ToolCall};
use crate::cli::Scenario;
use crate::client::{Deleted, McpClient};
use crate::error::Error;
use crate::run::{self, Operation};
use crate::stats::EventCounts;

pub(super) async fn run(ctx: &Context) -> Result<Outcome, SetupFailed> {
    let o = &ctx.options;
    let call = Arc::new(
        ToolCall::new(o, Scenario::Churn)
            .map_err(|error| SetupFailed::new(&error, "cannot call --tool"))?,
    );
    let seen = Arc::new(Seen::default());
    let operations = ctx
        .clients()
        .map(|client| Lifecycle {
            client,
            call: call.clone(),
            calls: o.calls_per_session,
            seen: seen.clone(),
        })
        .collect();
    ctx.progress.say("measuring");
    let (recorder, measured) =
        run::drive(operations, ctx.plan(o.rate), o.timeout, &ctx.progress).await;
    let mut notes = Vec::new();
    if seen.delete_not_allowed.load(Ordering::Relaxed) {
        notes.push(
            "the server answered DELETE with 405 (clients may not end sessions); counted as ok"
                .to_owned(),
        );
    }
    if seen.stateless.load(Ordering::Relaxed) {
        notes.push("the server gave no session id (stateless): no DELETE was sent".to_owned());
    }
    Ok(Outcome {
        recorder,
        measured,
        sessions: 0,
        streams: StreamCounts::default(),
        notes,
    })
}

/// What the workers noticed about the server.
#[derive(Debug, Default)]
struct Seen {
    delete_not_allowed: AtomicBool,
    stateless: AtomicBool,
}

/// One worker's lifecycles.
struct Lifecycle {
    client: McpClient,
    call: Arc<ToolCall>,
    calls: u32,
    seen: Arc<Seen>,
}

impl Operation for Lifecycle {
    async fn run(&mut self, _: Instant, _: &mut EventCounts) -> Result<Option<Duration>, Error> {
        let session = self.client.initialize(&json!({})).await?;
        for _ in 0..self.calls {
            self.call.call(&mut self.client, Some(&session)).await?;
        }
        if session.id.is_none() {
            self.seen.stateless.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        if self.client.delete(&session).await? == Deleted::NotAllowed {
            self.seen.delete_not_allowed.store(true, Ordering::Relaxed);
        }
        Ok(None)
    }
}
