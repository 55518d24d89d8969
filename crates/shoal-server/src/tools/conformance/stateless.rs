//! The diagnostic tools the suite's 2026-07-28 `server-stateless` scenario calls: each shows
//! one rule of the stateless era on a real call.
//!
//! - `test_missing_capability` needs the client's `sampling` capability: a request that does
//!   not declare it gets `-32021` naming it (400), never a run that relies on it.
//! - `test_streaming_elicitation` sends progress, then asks the user: its reply stream carries
//!   notifications and the result only, never a server→client request.
//! - `test_logging_tool` logs three messages, which reach the client only when the request's
//!   `_meta` asked for a log level.
//! - `test_custom_headers` has an argument annotated `x-mcp-header`: a client mirrors it into
//!   `Mcp-Param-Region`, and the endpoint refuses a call whose header does not match it.
//! - `test_trigger_tool_change` and `test_trigger_prompt_change` announce a change of the tool
//!   or prompt list on every replica: `subscriptions/listen` streams that asked for it get it;
//!   `test_trigger_resource_update` announces an update of one resource the same way.

use schemars::JsonSchema;
use serde::Deserialize;
use shoal_core::handler::{RequestContext, ToolError, ToolSet, typed_tool};
use shoal_core::model::ElicitRequest;
use shoal_core::session::LogLevel;

use super::{NoArgs, schemas, stream_closed};

pub(super) fn tools() -> ToolSet {
    ToolSet::new()
        .with(typed_tool(
            "test_missing_capability",
            "Needs the client's sampling capability (diagnostic of -32021)",
            missing_capability,
        ))
        .with(typed_tool(
            "test_streaming_elicitation",
            "Reports progress, then asks the user for their name",
            streaming_elicitation,
        ))
        .with(typed_tool(
            "test_logging_tool",
            "Logs three info messages, then answers",
            logging,
        ))
        .with(typed_tool(
            "test_trigger_tool_change",
            "Announces notifications/tools/list_changed on every replica",
            trigger_tool_change,
        ))
        .with(typed_tool(
            "test_trigger_prompt_change",
            "Announces notifications/prompts/list_changed on every replica",
            trigger_prompt_change,
        ))
        .with(typed_tool(
            "test_trigger_resource_update",
            "Announces notifications/resources/updated for a URI on every replica",
            trigger_resource_update,
        ))
        .with(typed_tool(
            "test_custom_headers",
            "Echoes a region that clients mirror into the Mcp-Param-Region header",
            custom_headers,
        ))
}

/// Arguments of `test_custom_headers`.
#[derive(Debug, Deserialize, JsonSchema)]
struct RegionArgs {
    /// The region to echo
    #[schemars(extend("x-mcp-header" = "Region"))]
    region: String,
}

async fn custom_headers(_ctx: RequestContext, args: RegionArgs) -> Result<String, ToolError> {
    Ok(format!("Region: {}", args.region))
}

async fn missing_capability(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    ToolError::require_capability(&ctx, "sampling")?;
    Ok("The client declared sampling".into())
}

async fn streaming_elicitation(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    ctx.progress(1.0, Some(2.0), Some("asking the user"))
        .await
        .map_err(stream_closed)?;
    let answer = ctx
        .elicit(ElicitRequest {
            message: "What is your name?".into(),
            requested_schema: schemas::user_info(),
        })
        .await
        .map_err(|e| ToolError::failed(format!("elicitation failed: {e}")))?;
    Ok(format!("Elicitation answered: {:?}", answer.action))
}

async fn logging(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    for message in ["first", "second", "third"] {
        ctx.log(LogLevel::Info, None, serde_json::json!(message))
            .await
            .map_err(stream_closed)?;
    }
    Ok("Logged three messages".into())
}

async fn trigger_tool_change(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    ctx.notifier()
        .tools_list_changed()
        .await
        .map_err(|e| ToolError::Internal(format!("could not announce the change: {e}")))?;
    Ok("Announced notifications/tools/list_changed".into())
}

async fn trigger_prompt_change(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    ctx.notifier()
        .prompts_list_changed()
        .await
        .map_err(|e| ToolError::Internal(format!("could not announce the change: {e}")))?;
    Ok("Announced notifications/prompts/list_changed".into())
}

/// Arguments of `test_trigger_resource_update`.
#[derive(Debug, Deserialize, JsonSchema)]
struct UriArgs {
    /// The resource that changed
    uri: String,
}

async fn trigger_resource_update(ctx: RequestContext, args: UriArgs) -> Result<String, ToolError> {
    ctx.notifier()
        .resource_updated(args.uri.clone())
        .await
        .map_err(|e| ToolError::Internal(format!("could not announce the update: {e}")))?;
    Ok(format!(
        "Announced notifications/resources/updated for {}",
        args.uri
    ))
}
