//! The `demo` tool set: small tools for trying Shoal out, for scripts and for load tests.
//!
//! - `echo` answers at once with its input: the fast path (a plain JSON reply, no stream log).
//! - `count` takes as long as asked and reports progress: streams, progress, cancellation.
//! - `ask_user` and `ask_model` send a server→client request (elicitation, sampling) and wait for
//!   the answer, which may reach any replica.
//! - `announce` sends a log message to the caller's standalone stream, wherever that is held:
//!   delivery latency across replicas (`shoal-load streams`).
//!
//! Scripts and load scenarios depend on these names, arguments and replies: change them only
//! together with whatever calls them.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use shoal_core::handler::{Handlers, PeerError, RequestContext, ToolError, ToolSet, typed_tool};
use shoal_core::model::{CreateMessageRequest, ElicitAction, ElicitRequest, SamplingMessage};
use shoal_core::session::LogLevel;

/// The largest `to` of `count`.
const MAX_COUNT: u32 = 10_000;
/// The longest pause of `count`, in milliseconds.
const MAX_INTERVAL_MS: u64 = 60_000;
/// The pause of `count` when the client gives none, in milliseconds.
const DEFAULT_INTERVAL_MS: i64 = 100;
/// `max_tokens` of `ask_model` when the client gives none.
const DEFAULT_MAX_TOKENS: u32 = 100;

/// The demo tools.
pub(super) fn handlers() -> Handlers {
    Handlers::new().tools(tools())
}

fn tools() -> ToolSet {
    ToolSet::new()
        .with(
            typed_tool("echo", "Returns `text` unchanged, as one text block.", echo)
                .annotations(json!({ "readOnlyHint": true, "openWorldHint": false })),
        )
        .with(
            typed_tool(
                "count",
                "Counts from 1 to `to`, waiting `interval_ms` before each number and reporting \
                 progress when the client asks for it; returns the total. Stops when cancelled.",
                count,
            )
            .annotations(json!({ "readOnlyHint": true, "openWorldHint": false })),
        )
        .with(typed_tool(
            "ask_user",
            "Asks the user `question` through the client (elicitation) and returns the answer, \
             or \"(declined)\" or \"(cancelled)\".",
            ask_user,
        ))
        .with(typed_tool(
            "ask_model",
            "Asks the client's model to answer `prompt` (sampling) and returns its reply.",
            ask_model,
        ))
        .with(
            typed_tool(
                "announce",
                "Sends `text` as an info log message (`notifications/message`, logger \
                 \"announce\") to the caller's standalone stream (its GET), on whichever replica \
                 holds it; returns once the message is logged. For delivery-latency measurements.",
                announce,
            )
            .annotations(json!({ "readOnlyHint": true, "openWorldHint": false })),
        )
}

// === echo ===

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

async fn echo(_ctx: RequestContext, args: EchoArgs) -> Result<String, ToolError> {
    Ok(args.text)
}

// === count ===

/// Arguments of `count`.
#[derive(Debug, Deserialize, JsonSchema)]
struct CountArgs {
    /// How far to count, from 0 to 10000.
    #[schemars(range(min = 0, max = MAX_COUNT))]
    to: i64,
    /// Milliseconds to wait before each number, from 0 to 60000.
    #[serde(default = "default_interval_ms")]
    #[schemars(range(min = 0, max = MAX_INTERVAL_MS))]
    interval_ms: i64,
}

fn default_interval_ms() -> i64 {
    DEFAULT_INTERVAL_MS
}

impl CountArgs {
    /// The count and the pause, within their limits.
    fn checked(&self) -> Result<(u32, Duration), ToolError> {
        let to = u32::try_from(self.to)
            .ok()
            .filter(|to| *to <= MAX_COUNT)
            .ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "`to` must be between 0 and {MAX_COUNT}, got {}",
                    self.to
                ))
            })?;
        let interval_ms = u64::try_from(self.interval_ms)
            .ok()
            .filter(|ms| *ms <= MAX_INTERVAL_MS)
            .ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "`interval_ms` must be between 0 and {MAX_INTERVAL_MS}, got {}",
                    self.interval_ms
                ))
            })?;
        Ok((to, Duration::from_millis(interval_ms)))
    }
}

async fn count(ctx: RequestContext, args: CountArgs) -> Result<String, ToolError> {
    let (to, interval) = args.checked()?;
    for i in 1..=to {
        tokio::select! {
            () = ctx.cancellation().cancelled() => {
                return Err(ToolError::failed(format!("cancelled after counting {} of {to}", i - 1)));
            }
            () = tokio::time::sleep(interval) => {}
        }
        ctx.progress(
            f64::from(i),
            Some(f64::from(to)),
            Some(&format!("counted {i} of {to}")),
        )
        .await
        .map_err(stream_closed)?;
    }
    Ok(to.to_string())
}

/// A notification could not be sent: the request's stream is gone with its session.
fn stream_closed(error: PeerError) -> ToolError {
    ToolError::Internal(format!("could not send a notification: {error}"))
}

// === ask_user ===

/// Arguments of `ask_user`.
#[derive(Debug, Deserialize, JsonSchema)]
struct AskUserArgs {
    /// The question to show the user.
    question: String,
}

async fn ask_user(ctx: RequestContext, args: AskUserArgs) -> Result<String, ToolError> {
    let request = ElicitRequest {
        message: args.question,
        requested_schema: json!({
            "type": "object",
            "properties": { "answer": { "type": "string", "description": "Your answer" } },
            "required": ["answer"],
        }),
    };
    let result = ctx
        .elicit(request)
        .await
        .map_err(|e| ToolError::failed(format!("could not ask the user: {e}")))?;
    match result.action {
        ElicitAction::Accept => result
            .content
            .as_ref()
            .and_then(|content| content.get("answer"))
            .and_then(|answer| answer.as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                ToolError::failed("the client accepted the question but sent no answer")
            }),
        ElicitAction::Decline => Ok("(declined)".into()),
        ElicitAction::Cancel => Ok("(cancelled)".into()),
    }
}

// === announce ===

/// Arguments of `announce`.
#[derive(Debug, Deserialize, JsonSchema)]
struct AnnounceArgs {
    /// The text to send to the caller's standalone stream.
    text: String,
}

async fn announce(ctx: RequestContext, args: AnnounceArgs) -> Result<String, ToolError> {
    if ctx.log_level().is_some_and(|min| LogLevel::Info < min) {
        return Ok("not sent: below the session's logging level".into());
    }
    let params = json!({ "level": LogLevel::Info, "logger": "announce", "data": args.text });
    ctx.notify_session("notifications/message", &params)
        .await
        .map_err(|e| ToolError::failed(format!("could not announce: {e}")))?;
    Ok("announced".into())
}

// === ask_model ===

/// Arguments of `ask_model`.
#[derive(Debug, Deserialize, JsonSchema)]
struct AskModelArgs {
    /// What to ask the model.
    prompt: String,
    /// The most tokens the reply may have.
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 1))]
    max_tokens: u32,
}

fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}

async fn ask_model(ctx: RequestContext, args: AskModelArgs) -> Result<String, ToolError> {
    if args.max_tokens == 0 {
        return Err(ToolError::InvalidArguments(
            "`max_tokens` must be at least 1".into(),
        ));
    }
    let request = CreateMessageRequest {
        messages: vec![SamplingMessage::user_text(args.prompt)],
        max_tokens: args.max_tokens,
        ..Default::default()
    };
    let result = ctx
        .create_message(request)
        .await
        .map_err(|e| ToolError::failed(format!("could not ask the model: {e}")))?;
    result
        .text()
        .map(str::to_owned)
        .ok_or_else(|| ToolError::failed("the model's reply has no text"))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use shoal_core::handler::ToolProvider;
    use shoal_core::testing::EngineClient;

    use super::*;
    use crate::tools::tests::only_text;

    #[tokio::test]
    async fn lists_the_five_tools_with_descriptions_and_object_schemas() {
        let tools = tools().list(None).await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["echo", "count", "ask_user", "ask_model", "announce"]
        );
        for tool in &tools {
            assert!(
                tool.description.as_deref().is_some_and(|d| !d.is_empty()),
                "{} has no description",
                tool.name
            );
            assert_eq!(
                tool.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                tool.name
            );
        }
    }

    #[tokio::test]
    async fn schemas_describe_arguments_and_limits() {
        let tools = tools().list(None).await.unwrap();
        let schema = |name: &str| {
            Value::Object(
                tools
                    .iter()
                    .find(|t| t.name == name)
                    .unwrap()
                    .input_schema
                    .clone(),
            )
        };
        let echo = schema("echo");
        assert_eq!(echo["required"], json!(["text"]));
        assert_eq!(
            echo["properties"]["text"]["description"],
            "The text to send back."
        );
        let count = schema("count");
        assert_eq!(count["required"], json!(["to"]));
        assert_eq!(
            (
                &count["properties"]["to"]["minimum"],
                &count["properties"]["to"]["maximum"]
            ),
            (&json!(0), &json!(10_000))
        );
        assert_eq!(count["properties"]["interval_ms"]["default"], json!(100));
        assert_eq!(count["properties"]["interval_ms"]["maximum"], json!(60_000));
        assert_eq!(schema("ask_user")["required"], json!(["question"]));
        let ask_model = schema("ask_model");
        assert_eq!(ask_model["required"], json!(["prompt"]));
        assert_eq!(ask_model["properties"]["max_tokens"]["default"], json!(100));
    }

    #[tokio::test]
    async fn echo_returns_its_text() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let result = client
            .call_tool_result("echo", json!({ "text": "hello, shoal" }))
            .await;
        assert_eq!(result.is_error, None);
        assert_eq!(only_text(&result), "hello, shoal");
        let result = client.call_tool_result("echo", json!({})).await;
        assert_eq!(result.is_error, Some(true));
    }

    #[tokio::test]
    async fn announce_sends_its_text_to_the_standalone_stream() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let mut standalone = std::pin::pin!(client.standalone().await);
        let result = client
            .call_tool_result("announce", json!({ "text": "tick 7" }))
            .await;
        assert_eq!(only_text(&result), "announced");
        let message = futures::StreamExt::next(&mut standalone).await.unwrap();
        assert_eq!(message["method"], "notifications/message");
        assert_eq!(
            message["params"],
            json!({ "level": "info", "logger": "announce", "data": "tick 7" })
        );

        client
            .result("logging/setLevel", json!({ "level": "warning" }))
            .await;
        let result = client
            .call_tool_result("announce", json!({ "text": "quiet" }))
            .await;
        assert_eq!(
            only_text(&result),
            "not sent: below the session's logging level"
        );
    }

    #[tokio::test]
    async fn count_returns_the_total() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let result = client
            .call_tool_result("count", json!({ "to": 3, "interval_ms": 1 }))
            .await;
        assert_eq!((result.is_error, only_text(&result)), (None, "3"));
        let result = client.call_tool_result("count", json!({ "to": 0 })).await;
        assert_eq!((result.is_error, only_text(&result)), (None, "0"));
    }

    #[tokio::test]
    async fn count_rejects_out_of_range_arguments() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        for (arguments, expected) in [
            (
                json!({ "to": -1 }),
                "`to` must be between 0 and 10000, got -1",
            ),
            (
                json!({ "to": 10_001 }),
                "`to` must be between 0 and 10000, got 10001",
            ),
            (
                json!({ "to": 1, "interval_ms": -5 }),
                "`interval_ms` must be between 0 and 60000, got -5",
            ),
            (
                json!({ "to": 1, "interval_ms": 60_001 }),
                "`interval_ms` must be between 0 and 60000, got 60001",
            ),
        ] {
            let result = client.call_tool_result("count", arguments.clone()).await;
            assert_eq!(result.is_error, Some(true), "{arguments}");
            assert!(
                only_text(&result).contains(expected),
                "{arguments}: {}",
                only_text(&result)
            );
        }
    }

    #[test]
    fn count_limits_are_inclusive() {
        let args = CountArgs {
            to: 10_000,
            interval_ms: 60_000,
        };
        assert_eq!(args.checked().unwrap(), (10_000, Duration::from_secs(60)));
    }

    #[tokio::test]
    async fn client_requests_fail_cleanly_without_the_capability() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let result = client
            .call_tool_result("ask_user", json!({ "question": "Why?" }))
            .await;
        assert_eq!(result.is_error, Some(true));
        assert!(
            only_text(&result).contains("elicitation"),
            "{}",
            only_text(&result)
        );
        let result = client
            .call_tool_result("ask_model", json!({ "prompt": "Why?" }))
            .await;
        assert_eq!(result.is_error, Some(true));
        assert!(
            only_text(&result).contains("sampling"),
            "{}",
            only_text(&result)
        );
    }
}
