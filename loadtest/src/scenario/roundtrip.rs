//! `roundtrip`: one operation is a `tools/call` of `ask_user` `{"question":"q<n>"}` whose
//! event stream carries an `elicitation/create` request; the answer
//! `{"action":"accept","content":{"answer":"a<n>"}}` is POSTed to the next URL (usually another
//! replica), and the call's result must contain `"a<n>"`.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Context, Outcome, SessionCursor, SetupFailed, StreamCounts, call_body};
use crate::client::{McpClient, Reply, result_of};
use crate::error::Error;
use crate::run::{self, Operation};
use crate::stats::EventCounts;
use crate::wire::{self, Message, ToolResult};

/// The tool that asks the user.
const TOOL: &str = "ask_user";

pub(super) async fn run(ctx: &Context) -> Result<Outcome, SetupFailed> {
    let o = &ctx.options;
    let sessions = ctx
        .open_sessions(o.sessions, json!({ "elicitation": {} }))
        .await?;
    let operations = ctx
        .clients()
        .enumerate()
        .map(|(worker, client)| Roundtrip {
            client,
            sessions: SessionCursor::new(sessions.clone(), worker),
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

/// One worker's round trips.
struct Roundtrip {
    client: McpClient,
    sessions: SessionCursor,
}

impl Operation for Roundtrip {
    async fn run(
        &mut self,
        due: Instant,
        events: &mut EventCounts,
    ) -> Result<Option<Duration>, Error> {
        let session = self.sessions.next();
        let id = self.client.next_id();
        let answer = format!("a{id}");
        let body = call_body(id, TOOL, json!({ "question": format!("q{id}") }));
        let (message, read) = match self.client.post(session, body).await? {
            // No elicitation happened: the result can only be an error.
            Reply::Json(message) => (message, Instant::now()),
            Reply::Stream(mut stream) => loop {
                let Some(data) = stream.next_message().await? else {
                    return Err(Error::StreamClosed);
                };
                events.received += 1;
                let message = Message::parse_str(&data)?;
                if message.is_response_to(id) {
                    let read = Instant::now();
                    self.client.finish(*stream).await;
                    break (bytes::Bytes::from(data), read);
                }
                if let (true, Some(request_id)) =
                    (message.is_request("elicitation/create"), message.id)
                {
                    let result = json!({ "action": "accept", "content": { "answer": answer } });
                    let reply = wire::response(request_id, &result);
                    self.client.notify(session, reply).await?;
                }
            },
        };
        let result = ToolResult::parse(result_of(&message, id)?)?;
        result.expect_text(
            || format!("a text containing {answer:?}"),
            |text| text.contains(&answer),
        )?;
        Ok(Some(read.saturating_duration_since(due)))
    }
}
