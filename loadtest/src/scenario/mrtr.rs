//! `mrtr` (2026-07-28 only): one operation is a stateless `tools/call` of `--tool` (default
//! `ask_user`) answered `input_required`; the generator answers every `elicitation/create` it
//! asks for (`accept`, content `{"answer": ANSWER}`) and retries, with a new id, the answers
//! and the same `requestState`, on the next URL, until the result is complete. The final text
//! must be the answer. Latency covers every round; the summary reports rounds per operation.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{Context, Outcome, SetupFailed, StreamCounts};
use crate::cli::Scenario;
use crate::client::{McpClient, StatelessHead, result_of};
use crate::error::Error;
use crate::run::{self, Operation};
use crate::stats::EventCounts;
use crate::wire::{self, ToolResult};

/// What the generator answers every elicitation with, and the text the result must have.
const ANSWER: &str = "shoal-load";
/// A call still asking after this many rounds is a failure (a server that never completes).
const MAX_ROUNDS: u64 = 16;
/// The one kind of input request the generator answers.
const ELICITATION: &str = "elicitation/create";

pub(super) async fn run(ctx: &Context) -> Result<Outcome, SetupFailed> {
    let o = &ctx.options;
    let tool = o.tool(Scenario::Mrtr);
    let head = StatelessHead::tools_call(tool)
        .map_err(|error| SetupFailed::new(&error, "cannot call --tool"))?;
    let call = Arc::new(Call {
        head,
        tool: tool.to_owned(),
        arguments: o.arguments(Scenario::Mrtr),
        // The tool asks the user: the request must declare that it can be asked.
        meta: wire::stateless_meta(&json!({ "elicitation": {} })),
    });
    let operations = ctx
        .clients()
        .map(|client| Mrtr {
            client,
            call: call.clone(),
        })
        .collect();
    ctx.progress.say("measuring");
    let (recorder, measured) =
        run::drive(operations, ctx.plan(o.rate), o.timeout, &ctx.progress).await;
    Ok(Outcome {
        recorder,
        measured,
        sessions: 0,
        streams: StreamCounts::default(),
        notes: Vec::new(),
    })
}

/// What every operation calls.
#[derive(Debug)]
struct Call {
    head: StatelessHead,
    tool: String,
    arguments: Map<String, Value>,
    meta: Value,
}

/// One worker's multi round-trip calls.
struct Mrtr {
    client: McpClient,
    call: Arc<Call>,
}

/// The part of a 2026-07-28 result that says whether another round is needed.
#[derive(Debug, Deserialize)]
struct Step<'a> {
    #[serde(rename = "resultType", borrow, default)]
    result_type: Option<Cow<'a, str>>,
    #[serde(rename = "inputRequests", default)]
    input_requests: Option<Map<String, Value>>,
    #[serde(rename = "requestState", borrow, default)]
    request_state: Option<&'a RawValue>,
}

impl Operation for Mrtr {
    async fn run(
        &mut self,
        due: Instant,
        events: &mut EventCounts,
    ) -> Result<Option<Duration>, Error> {
        let call = &self.call;
        let mut params = json!({
            "name": call.tool,
            "arguments": call.arguments,
            "_meta": call.meta,
        });
        for _ in 0..MAX_ROUNDS {
            events.rounds += 1;
            let id = self.client.next_id();
            let body = wire::request(id, "tools/call", &params);
            // Each request goes to the next URL: the retry lands on another replica.
            let (message, read) = self.client.call_stateless(&call.head, body, id).await?;
            let result = result_of(&message, id)?;
            let step: Step<'_> = serde_json::from_str(result.get())
                .map_err(|e| Error::protocol(format!("not a tools/call result: {e}")))?;
            if step.result_type.as_deref() != Some("input_required") {
                ToolResult::parse(result)?
                    .expect_text(|| format!("{ANSWER:?}"), |text| text == ANSWER)?;
                return Ok(Some(read.saturating_duration_since(due)));
            }
            let responses = answers(step.input_requests.unwrap_or_default())?;
            params["inputResponses"] = Value::Object(responses);
            match step.request_state {
                Some(state) => {
                    params["requestState"] = serde_json::from_str(state.get())
                        .map_err(|e| Error::protocol(format!("requestState: {e}")))?;
                }
                None => {
                    if let Some(params) = params.as_object_mut() {
                        params.remove("requestState");
                    }
                }
            }
        }
        Err(Error::protocol(format!(
            "still input_required after {MAX_ROUNDS} rounds"
        )))
    }
}

/// The answers to a round's input requests: every elicitation accepted with [`ANSWER`].
fn answers(requests: Map<String, Value>) -> Result<Map<String, Value>, Error> {
    if requests.is_empty() {
        return Err(Error::protocol("input_required without inputRequests"));
    }
    requests
        .into_iter()
        .map(|(key, request)| {
            let method = request.get("method").and_then(Value::as_str);
            if method != Some(ELICITATION) {
                return Err(Error::protocol(format!(
                    "input request {key:?} is {method:?}: the generator answers only \
                     {ELICITATION}"
                )));
            }
            let answer = json!({ "action": "accept", "content": { "answer": ANSWER } });
            Ok((key, answer))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn accepts_every_elicitation_and_refuses_other_requests() {
        let requests = json!({
            "elicitation-1": { "method": "elicitation/create", "params": {} },
            "name": { "method": "elicitation/create", "params": {} },
        });
        let answered = answers(requests.as_object().unwrap().clone()).unwrap();
        assert_eq!(answered.len(), 2);
        assert_eq!(answered["name"]["content"]["answer"], ANSWER);
        let sampling = json!({ "s": { "method": "sampling/createMessage" } });
        let error = answers(sampling.as_object().unwrap().clone()).unwrap_err();
        assert!(
            error.to_string().contains("sampling/createMessage"),
            "{error}"
        );
        assert!(answers(Map::new()).is_err());
    }
}
