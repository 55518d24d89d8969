//! `calls`: one operation is one `tools/call` of `--tool` with `--arguments`: on a session
//! initialized beforehand, or (2026-07-28) on none, each request carrying its own `_meta`;
//! with tool `echo`, the reply's text must be the argument's.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Context, Outcome, SessionCursor, SetupFailed, StreamCounts, ToolCall};
use crate::cli::{Revision, Scenario};
use crate::client::McpClient;
use crate::error::Error;
use crate::run::{self, Operation};
use crate::stats::EventCounts;

pub(super) async fn run(ctx: &Context) -> Result<Outcome, SetupFailed> {
    let o = &ctx.options;
    let call = Arc::new(
        ToolCall::new(o, Scenario::Calls)
            .map_err(|error| SetupFailed::new(&error, "cannot call --tool"))?,
    );
    let stateless = o.revision(Scenario::Calls) == Revision::Stateless;
    let sessions = if stateless {
        Arc::from([])
    } else {
        ctx.open_sessions(o.sessions, json!({})).await?
    };
    let operations = ctx
        .clients()
        .enumerate()
        .map(|(worker, client)| Call {
            client,
            sessions: (!stateless).then(|| SessionCursor::new(sessions.clone(), worker)),
            call: call.clone(),
        })
        .collect();
    ctx.progress.say("measuring");
    let (recorder, measured) =
        run::drive(operations, ctx.plan(o.rate), o.timeout, &ctx.progress).await;
    ctx.close_sessions(&sessions).await;
    let notes = if stateless {
        vec!["2026-07-28: stateless tools/call, no sessions".to_owned()]
    } else {
        Vec::new()
    };
    Ok(Outcome {
        recorder,
        measured,
        sessions: sessions.len(),
        streams: StreamCounts::default(),
        notes,
    })
}

/// One worker's calls.
struct Call {
    client: McpClient,
    /// `None` with 2026-07-28.
    sessions: Option<SessionCursor>,
    call: Arc<ToolCall>,
}

impl Operation for Call {
    async fn run(&mut self, due: Instant, _: &mut EventCounts) -> Result<Option<Duration>, Error> {
        let session = self.sessions.as_mut().map(SessionCursor::next);
        let read = self.call.call(&mut self.client, session).await?;
        Ok(Some(read.saturating_duration_since(due)))
    }
}
