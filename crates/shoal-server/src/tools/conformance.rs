//! The `conformance` tool set: the tools, resources, prompts and completions the server scenarios
//! of the official MCP conformance suite (`@modelcontextprotocol/conformance`) call.
//!
//! Names, texts, MIME types, payloads and elicitation schemas follow the suite's checks and,
//! where the suite asserts nothing, its reference server (`everything-server.ts` in
//! `modelcontextprotocol/conformance`).
//!
//! # Layout
//!
//! - This file: the tools.
//!   - Content: `test_simple_text`, `test_image_content`, `test_audio_content`,
//!     `test_embedded_resource`, `test_multiple_content_types`, `test_error_handling`.
//!   - Notifications before the result: `test_tool_with_logging`, `test_tool_with_progress`;
//!     `test_reconnection` closes the client's connection mid-call (SEP-1699 polling).
//!   - Server→client requests: `test_sampling`, `test_elicitation`,
//!     `test_elicitation_sep1034_defaults`, `test_elicitation_sep1330_enums`.
//!   - Lists: `test_dynamic_tool` announces `notifications/tools/list_changed`;
//!     `json_schema_2020_12_tool` serves a hand-written 2020-12 input schema.
//! - `schemas`: the elicitation forms and that 2020-12 schema.
//! - `resources`: three `test://` resources and the template `test://template/{id}/data`.
//! - `prompts`: four prompts and the completion of `test_prompt_with_arguments`.
//! - `stateless`: the diagnostic tools of the 2026-07-28 `server-stateless` scenario.
//! - `input_required`: the tools and the prompt of the 2026-07-28 multi round-trip scenarios.

mod input_required;
mod prompts;
mod resources;
mod schemas;
mod stateless;

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use shoal_core::handler::{Handlers, PeerError, RequestContext, ToolError, ToolSet, typed_tool};
use shoal_core::model::{
    Content, CreateMessageRequest, ElicitAction, ElicitRequest, ElicitResult, JsonObject,
    ResourceContents, SamplingMessage,
};
use shoal_core::session::LogLevel;

use super::assets::{PNG_1X1, WAV_MINIMAL};

/// The pause between the notifications of the logging and progress tools.
const STEP: Duration = Duration::from_millis(50);
/// How long `test_reconnection` keeps working after closing the client's connection.
const RECONNECT_DELAY: Duration = Duration::from_millis(200);
/// `maxTokens` of the sampling request of `test_sampling`.
const SAMPLING_MAX_TOKENS: u32 = 100;

/// The conformance fixtures.
pub(super) fn handlers() -> Handlers {
    Handlers::new()
        .tools(tools())
        .tools(stateless::tools())
        .tools(input_required::tools())
        .resources(resources::resource_set())
        .prompts(prompts::prompt_set())
        .prompts(input_required::prompts())
        .completer(prompts::ArgumentCompleter)
}

// The arguments of a tool that takes none. A doc comment here would become the schema's
// `description`.
#[derive(Debug, Deserialize, JsonSchema)]
struct NoArgs {}

/// Arguments of `test_sampling`.
#[derive(Debug, Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the LLM
    prompt: String,
}

/// Arguments of `test_elicitation`.
#[derive(Debug, Deserialize, JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user
    message: String,
}

fn tools() -> ToolSet {
    ToolSet::new()
        .with(typed_tool(
            "test_simple_text",
            "Tests simple text content response",
            simple_text,
        ))
        .with(typed_tool(
            "test_image_content",
            "Tests image content response",
            image,
        ))
        .with(typed_tool(
            "test_audio_content",
            "Tests audio content response",
            audio,
        ))
        .with(typed_tool(
            "test_embedded_resource",
            "Tests embedded resource content response",
            embedded_resource,
        ))
        .with(typed_tool(
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
            multiple_content_types,
        ))
        .with(typed_tool(
            "test_tool_with_logging",
            "Tests tool that emits log messages during execution",
            with_logging,
        ))
        .with(typed_tool(
            "test_tool_with_progress",
            "Tests tool that reports progress notifications",
            with_progress,
        ))
        .with(typed_tool(
            "test_error_handling",
            "Tests error response handling",
            error,
        ))
        .with(typed_tool(
            "test_reconnection",
            "Tests SSE stream disconnection and client reconnection (SEP-1699): closes the \
             stream mid-call and sends the result after the client reconnects",
            reconnection,
        ))
        .with(typed_tool(
            "test_sampling",
            "Tests server-initiated sampling (LLM completion request)",
            sampling,
        ))
        .with(typed_tool(
            "test_elicitation",
            "Tests server-initiated elicitation (user input request)",
            elicitation,
        ))
        .with(typed_tool(
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values per SEP-1034",
            elicitation_sep1034,
        ))
        .with(typed_tool(
            "test_elicitation_sep1330_enums",
            "Tests elicitation with enum schema improvements per SEP-1330",
            elicitation_sep1330,
        ))
        .with(typed_tool(
            "test_dynamic_tool",
            "Tests list change notifications: announces notifications/tools/list_changed to \
             every session",
            dynamic,
        ))
        .with(
            typed_tool(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features",
                json_schema_2020_12,
            )
            .input_schema(schemas::json_schema_2020_12()),
        )
}

async fn simple_text(_ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    Ok("This is a simple text response for testing.".into())
}

async fn image(_ctx: RequestContext, _: NoArgs) -> Result<Vec<Content>, ToolError> {
    Ok(vec![Content::image(PNG_1X1, "image/png")])
}

async fn audio(_ctx: RequestContext, _: NoArgs) -> Result<Vec<Content>, ToolError> {
    Ok(vec![Content::audio(WAV_MINIMAL, "audio/wav")])
}

async fn embedded_resource(_ctx: RequestContext, _: NoArgs) -> Result<Vec<Content>, ToolError> {
    Ok(vec![Content::resource(ResourceContents::text(
        "test://embedded-resource",
        "text/plain",
        "This is an embedded resource content.",
    ))])
}

async fn multiple_content_types(
    _ctx: RequestContext,
    _: NoArgs,
) -> Result<Vec<Content>, ToolError> {
    Ok(vec![
        Content::text("Multiple content types test:"),
        Content::image(PNG_1X1, "image/png"),
        Content::resource(ResourceContents::text(
            "test://mixed-content-resource",
            "application/json",
            r#"{"test":"data","value":123}"#,
        )),
    ])
}

/// Three `info` log messages, 50 ms apart (subject to the session's `logging/setLevel`).
async fn with_logging(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let messages = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    for (i, message) in messages.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        ctx.log(LogLevel::Info, None, json!(message))
            .await
            .map_err(stream_closed)?;
    }
    Ok("Tool with logging executed successfully".into())
}

/// Progress 0, 50 and 100 of 100, 50 ms apart; the notifications go out only when the client
/// sent a progress token.
async fn with_progress(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    const TOTAL: f64 = 100.0;
    for (i, progress) in [0.0, 50.0, TOTAL].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        let message = format!("Completed step {progress} of {TOTAL}");
        ctx.progress(progress, Some(TOTAL), Some(&message))
            .await
            .map_err(stream_closed)?;
    }
    Ok("Progress test completed: reported 0, 50 and 100 of 100".into())
}

/// A failed call: an `isError` result, not a JSON-RPC error.
async fn error(_ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    Err(ToolError::failed(
        "This tool intentionally returns an error for testing",
    ))
}

/// Closes the client's connection, then answers: the client gets the result by resuming the
/// stream with `Last-Event-ID`.
async fn reconnection(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    ctx.close_sse_stream().await.map_err(stream_closed)?;
    tokio::time::sleep(RECONNECT_DELAY).await;
    Ok(
        "Reconnection test completed successfully. If you received this, the client properly \
        reconnected after stream closure."
            .into(),
    )
}

async fn sampling(ctx: RequestContext, args: SamplingArgs) -> Result<String, ToolError> {
    let request = CreateMessageRequest {
        messages: vec![SamplingMessage::user_text(args.prompt)],
        max_tokens: SAMPLING_MAX_TOKENS,
        ..Default::default()
    };
    let result = ctx
        .create_message(request)
        .await
        .map_err(|e| ToolError::failed(format!("sampling failed: {e}")))?;
    let text = result
        .text()
        .ok_or_else(|| ToolError::failed("the model's reply has no text"))?;
    Ok(format!("LLM response: {text}"))
}

async fn elicitation(ctx: RequestContext, args: ElicitationArgs) -> Result<String, ToolError> {
    let result = elicit(&ctx, args.message, schemas::user_info()).await?;
    Ok(describe_elicitation("User response", &result))
}

async fn elicitation_sep1034(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let message = "Please review and update the form fields with defaults";
    let result = elicit(&ctx, message.into(), schemas::sep1034_defaults()).await?;
    Ok(describe_elicitation("Elicitation completed", &result))
}

async fn elicitation_sep1330(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let message = "Please select options from the enum fields";
    let result = elicit(&ctx, message.into(), schemas::sep1330_enums()).await?;
    Ok(describe_elicitation("Elicitation completed", &result))
}

async fn elicit(
    ctx: &RequestContext,
    message: String,
    requested_schema: Value,
) -> Result<ElicitResult, ToolError> {
    ctx.elicit(ElicitRequest {
        message,
        requested_schema,
    })
    .await
    .map_err(|e| ToolError::failed(format!("elicitation failed: {e}")))
}

/// `<prefix>: action=accept, content={...}`, worded as the reference server does.
fn describe_elicitation(prefix: &str, result: &ElicitResult) -> String {
    let action = match result.action {
        ElicitAction::Accept => "accept",
        ElicitAction::Decline => "decline",
        ElicitAction::Cancel => "cancel",
    };
    let content = Value::Object(result.content.clone().unwrap_or_default());
    format!("{prefix}: action={action}, content={content}")
}

async fn dynamic(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    ctx.notifier().tools_list_changed().await.map_err(|e| {
        ToolError::Internal(format!("could not announce the tool list change: {e}"))
    })?;
    Ok("Sent notifications/tools/list_changed to every session".into())
}

async fn json_schema_2020_12(_ctx: RequestContext, args: JsonObject) -> Result<String, ToolError> {
    Ok(format!(
        "JSON Schema 2020-12 tool called with: {}",
        Value::Object(args)
    ))
}

/// A notification could not be sent: the request's stream is gone with its session.
fn stream_closed(error: PeerError) -> ToolError {
    ToolError::Internal(format!("could not send a notification: {error}"))
}

#[cfg(test)]
mod tests {
    use shoal_core::handler::ToolProvider;
    use shoal_core::model::{CallToolResult, Tool};
    use shoal_core::testing::EngineClient;

    use super::*;
    use crate::tools::tests::only_text;

    /// The tools the suite calls, in listing order.
    const TOOLS: [&str; 15] = [
        "test_simple_text",
        "test_image_content",
        "test_audio_content",
        "test_embedded_resource",
        "test_multiple_content_types",
        "test_tool_with_logging",
        "test_tool_with_progress",
        "test_error_handling",
        "test_reconnection",
        "test_sampling",
        "test_elicitation",
        "test_elicitation_sep1034_defaults",
        "test_elicitation_sep1330_enums",
        "test_dynamic_tool",
        "json_schema_2020_12_tool",
    ];

    async fn listed() -> Vec<Tool> {
        tools().list(None).await.unwrap()
    }

    fn schema_of(tools: &[Tool], name: &str) -> Value {
        Value::Object(
            tools
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .input_schema
                .clone(),
        )
    }

    async fn client() -> EngineClient {
        EngineClient::serving(handlers(), json!({})).await
    }

    #[tokio::test]
    async fn lists_every_tool_the_suite_calls() {
        let tools = listed().await;
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, TOOLS);
    }

    #[tokio::test]
    async fn tools_have_valid_names_descriptions_and_object_schemas() {
        for tool in listed().await {
            let name = &tool.name;
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
            assert!(
                (1..=128).contains(&name.len()) && name.chars().all(allowed),
                "{name}"
            );
            let description = tool.description.as_deref();
            assert!(
                description.is_some_and(|d| !d.is_empty()),
                "{name} has no description"
            );
            assert_eq!(
                tool.input_schema.get("type"),
                Some(&json!("object")),
                "{name}"
            );
            if let Some(properties) = tool.input_schema.get("properties") {
                let properties = properties.as_object().unwrap();
                assert!(properties.values().all(Value::is_object), "{name}");
            }
            assert_eq!(tool.output_schema, None, "{name}");
        }
    }

    #[tokio::test]
    async fn argument_schemas_match_the_reference_server() {
        let tools = listed().await;
        let empty = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {},
        });
        assert_eq!(schema_of(&tools, "test_simple_text"), empty);
        let sampling = schema_of(&tools, "test_sampling");
        let prompt = json!({ "type": "string", "description": "The prompt to send to the LLM" });
        assert_eq!(sampling["properties"], json!({ "prompt": prompt }));
        assert_eq!(sampling["required"], json!(["prompt"]));
        let elicitation = schema_of(&tools, "test_elicitation");
        let message = json!({ "type": "string", "description": "The message to show the user" });
        assert_eq!(elicitation["properties"], json!({ "message": message }));
        assert_eq!(elicitation["required"], json!(["message"]));
        let json_schema = schema_of(&tools, "json_schema_2020_12_tool");
        assert_eq!(json_schema, Value::Object(schemas::json_schema_2020_12()));
    }

    #[tokio::test]
    async fn content_tools_return_the_reference_content() {
        let client = client().await;
        // The suite sends no `arguments` at all for this one.
        let result = client
            .result("tools/call", json!({ "name": "test_simple_text" }))
            .await;
        let text = json!({ "type": "text", "text": "This is a simple text response for testing." });
        assert_eq!(result, json!({ "content": [text] }));

        let result = client
            .call_tool_result("test_image_content", json!({}))
            .await;
        assert_eq!(result.content, [Content::image(PNG_1X1, "image/png")]);
        let result = client
            .call_tool_result("test_audio_content", json!({}))
            .await;
        assert_eq!(result.content, [Content::audio(WAV_MINIMAL, "audio/wav")]);

        let params = json!({ "name": "test_embedded_resource", "arguments": {} });
        let resource = json!({
            "uri": "test://embedded-resource",
            "mimeType": "text/plain",
            "text": "This is an embedded resource content.",
        });
        let expected = json!({ "content": [{ "type": "resource", "resource": resource }] });
        assert_eq!(client.result("tools/call", params).await, expected);

        let params = json!({ "name": "test_multiple_content_types", "arguments": {} });
        let resource = json!({
            "uri": "test://mixed-content-resource",
            "mimeType": "application/json",
            "text": "{\"test\":\"data\",\"value\":123}",
        });
        let expected = json!({ "content": [
            { "type": "text", "text": "Multiple content types test:" },
            { "type": "image", "data": PNG_1X1, "mimeType": "image/png" },
            { "type": "resource", "resource": resource },
        ] });
        assert_eq!(client.result("tools/call", params).await, expected);
    }

    #[tokio::test]
    async fn error_tool_returns_an_error_result_not_a_protocol_error() {
        let params = json!({ "name": "test_error_handling", "arguments": {} });
        let result = client().await.result("tools/call", params).await;
        let text = "This tool intentionally returns an error for testing";
        let expected = json!({ "content": [{ "type": "text", "text": text }], "isError": true });
        assert_eq!(result, expected);
    }

    #[tokio::test]
    async fn client_request_tools_fail_cleanly_without_the_capability() {
        let client = client().await;
        let failed = |result: &CallToolResult, needle: &str| {
            result.is_error == Some(true) && only_text(result).contains(needle)
        };
        let result = client
            .call_tool_result("test_sampling", json!({ "prompt": "Hi" }))
            .await;
        assert!(failed(&result, "sampling"), "{result:?}");
        let result = client
            .call_tool_result("test_elicitation", json!({ "message": "Hi" }))
            .await;
        assert!(failed(&result, "elicitation"), "{result:?}");
        for name in [
            "test_elicitation_sep1034_defaults",
            "test_elicitation_sep1330_enums",
        ] {
            let result = client.call_tool_result(name, json!({})).await;
            assert!(failed(&result, "elicitation"), "{name}: {result:?}");
        }
    }

    #[tokio::test]
    async fn dynamic_tool_announces_a_list_change() {
        let result = client()
            .await
            .call_tool_result("test_dynamic_tool", json!({}))
            .await;
        assert_eq!(result.is_error, None);
        assert!(only_text(&result).contains("notifications/tools/list_changed"));
    }

    #[tokio::test]
    async fn json_schema_tool_echoes_its_arguments() {
        let arguments = json!({ "name": "Ada" });
        let result = client()
            .await
            .call_tool_result("json_schema_2020_12_tool", arguments)
            .await;
        let expected = r#"JSON Schema 2020-12 tool called with: {"name":"Ada"}"#;
        assert_eq!(only_text(&result), expected);
    }

    #[test]
    fn describes_elicitation_results_like_the_reference_server() {
        let content = json!({ "username": "testuser", "email": "test@example.com" });
        let accepted = ElicitResult {
            action: ElicitAction::Accept,
            content: content.as_object().cloned(),
        };
        assert_eq!(
            describe_elicitation("User response", &accepted),
            r#"User response: action=accept, content={"email":"test@example.com","username":"testuser"}"#
        );
        let declined = ElicitResult {
            action: ElicitAction::Decline,
            content: None,
        };
        assert_eq!(
            describe_elicitation("Elicitation completed", &declined),
            "Elicitation completed: action=decline, content={}"
        );
        let cancelled = ElicitResult {
            action: ElicitAction::Cancel,
            content: None,
        };
        assert!(describe_elicitation("x", &cancelled).starts_with("x: action=cancel,"));
    }
}
