//! `calls`: one operation is one `tools/call` of `--tool` with `--arguments` on a session
//! initialized beforehand; with tool `echo`, the reply's text must be the argument's.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Context, Outcome, SessionCursor, SetupFailed, StreamCounts, ToolCall};
use crate::client::McpClient;
use crate::error::Error;
use crate::run::{self, Operation};
use crate::stats::EventCounts;

pub(super) async fn run(ctx: &Context) -> Result<Outcome, SetupFailed> {
    let o = &ctx.options;
    let sessions = ctx.open_sessions(o.sessions, json!({})).await?;
    let call = std::sync::Arc::new(ToolCall::new(o));
    let operations = ctx
        .clients()
        .enumerate()
        .map(|(worker, client)| Call {
            client,
            sessions: SessionCursor::new(sessions.clone(), worker),
            call: call.clone(),
        })
        .collect();
    ctx.progress.say("measuring");
    let (recorder, measured) =
        run::drive(operations, ctx.plan(o.rate), o.timeout, &ctx.progress).await;
    ctx.close_sessions(&sessions).await;
    Ok(Outcome {
        recorder,
        measured,
        sessions: sessions.len(),
        streams: StreamCounts::default(),
        notes: Vec::new(),
    })
}

/// One worker's calls.
struct Call {
    client: McpClient,
    sessions: SessionCursor,
    call: std::sync::Arc<ToolCall>,
}

impl Operation for Call {
    async fn run(&mut self, due: Instant, _: &mut EventCounts) -> Result<Option<Duration>, Error> {
        let session = self.sessions.next();
        let read = self.call.call(&mut self.client, session).await?;
        Ok(Some(read.saturating_duration_since(due)))
    }
}
