//! The method tables of both eras: one function per method, each turning params into a result
//! or a JSON-RPC error. The stateless era shares every method it keeps with the session era;
//! its results are then shaped for it ([`modern_result`]): `resultType`, the server's identity
//! in `_meta`, and cache hints on discovery, the lists and reads.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use tracing::Instrument;

use super::Shared;
use super::metrics::{self as m, Operation};
use super::mrtr;
use super::pagination::page;
use super::trace::{self, Failure};
use crate::era::{self, Era};
use crate::handler::{HandlerError, Handlers, RequestContext, ToolError};
use crate::host::SessionUpdate;
use crate::jsonrpc::{self, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Request, RpcError};
use crate::model::{CallToolResult, CompleteParams, Completion, JsonObject};
use crate::session::LogLevel;

type Outcome = Result<Value, RpcError>;

/// What a handler that asked for input it lacks stands for: nothing, neither a result nor a
/// failure; [`mrtr::finish`] answers `input_required` instead.
const AWAITING_INPUT: Value = Value::Null;

/// The `capabilities` this server declares in `initialize` and `server/discover`. Both eras
/// announce list changes and resource updates: the session era on its GET stream (updates after
/// `resources/subscribe`), the stateless one on `subscriptions/listen` streams.
pub(crate) fn server_capabilities(handlers: &Handlers) -> Value {
    let mut capabilities = json!({ "logging": {} });
    if !handlers.tools.is_empty() {
        capabilities["tools"] = json!({ "listChanged": true });
    }
    if !handlers.resources.is_empty() {
        capabilities["resources"] = json!({ "subscribe": true, "listChanged": true });
    }
    if !handlers.prompts.is_empty() {
        capabilities["prompts"] = json!({ "listChanged": true });
    }
    if handlers.completer.is_some() {
        capabilities["completions"] = json!({});
    }
    capabilities
}

/// Runs one request and encodes its response, with the error code when it is an error (the
/// stateless era answers some of them with an HTTP status of their own); records its duration
/// as `mcp_server_operation_duration_seconds` (a request cancelled before it finishes is not
/// observed: its future is dropped).
pub(crate) async fn answer(
    shared: &Arc<Shared>,
    ctx: RequestContext,
    request: &Request,
) -> (String, Option<i32>) {
    let started = tokio::time::Instant::now();
    let method = m::method_label(&request.method);
    let mut operation = Operation::of(method);
    operation.protocol_version = Some(m::version_label(ctx.protocol_version()));
    let span = trace::operation_span(method, request, shared.host.node_id().as_str());
    let ctx_era = ctx.era();
    // A stateless request has no session: its record's id is made up for it alone.
    let session = (ctx_era == Era::Session).then(|| ctx.session_id());
    trace::record_session(&span, session, ctx.protocol_version());
    let outcome = match ctx_era {
        Era::Session => {
            dispatch(shared, ctx, request, &mut operation)
                .instrument(span.clone())
                .await
        }
        Era::Modern => {
            dispatch_modern(shared, ctx, request, &mut operation)
                .instrument(span.clone())
                .await
        }
    };
    // Only a name a provider knows (not `_unknown`) names the span.
    if let Some(target) = operation.tool.as_deref().or(operation.prompt.as_deref())
        && target != m::UNKNOWN
    {
        trace::record_target(&span, method, target);
    }
    match &outcome {
        Err(error) => {
            let code = m::error_code_label(error.code);
            let message = &error.message;
            trace::record_failure(
                &span,
                Failure::Rpc {
                    code: &code,
                    message,
                },
            );
            operation.error = Some(code);
        }
        Ok(_) => {
            if let Some(error_type) = &operation.error {
                trace::record_failure(&span, Failure::InResult { error_type });
            }
        }
    }
    operation.record(method, started.elapsed().as_secs_f64());
    let outcome = match ctx_era {
        Era::Session => outcome,
        Era::Modern => outcome.map(|result| modern_result(shared, &request.method, result)),
    };
    match outcome {
        Ok(result) => (jsonrpc::encode_result(&request.id, &result), None),
        Err(error) => (
            jsonrpc::encode_error(Some(&request.id), &error),
            Some(error.code),
        ),
    }
}

/// How long a client may cache a discovery, list or read result, and for whom: not at all
/// (lists may change at any time and may differ between principals).
const CACHE_HINTS: (u64, &str) = (0, "private");

/// A stateless-era result: `resultType`, the server's identity in `_meta`, and the cache hints
/// the revision asks for on discovery, the lists and reads.
fn modern_result(shared: &Shared, method: &str, mut result: Value) -> Value {
    let Value::Object(fields) = &mut result else {
        return result;
    };
    fields
        .entry("resultType")
        .or_insert_with(|| Value::String("complete".into()));
    let meta = fields
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(
            era::SERVER_INFO.into(),
            serde_json::to_value(&shared.config.server_info).unwrap_or(Value::Null),
        );
    }
    let complete = fields.get("resultType").and_then(Value::as_str) == Some("complete");
    if complete
        && matches!(
            method,
            "server/discover"
                | "tools/list"
                | "resources/list"
                | "resources/templates/list"
                | "resources/read"
                | "prompts/list"
        )
    {
        let (ttl_ms, scope) = CACHE_HINTS;
        fields.insert("ttlMs".into(), json!(ttl_ms));
        fields.insert("cacheScope".into(), json!(scope));
    }
    result
}

async fn dispatch(
    shared: &Arc<Shared>,
    ctx: RequestContext,
    request: &Request,
    operation: &mut Operation,
) -> Outcome {
    match request.method.as_str() {
        "ping" => Ok(json!({})),
        "initialize" => Err(jsonrpc::rpc_error(
            INVALID_REQUEST,
            "the session is already initialized",
        )),
        "tools/list" => list_tools(shared, &ctx, request).await,
        "tools/call" => call_tool(shared, ctx, request, operation).await,
        "resources/list" => list_resources(shared, &ctx, request).await,
        "resources/templates/list" => list_templates(shared, &ctx, request).await,
        "resources/read" => read_resource(shared, ctx, request).await,
        "resources/subscribe" => subscribe(shared, &ctx, request, true).await,
        "resources/unsubscribe" => subscribe(shared, &ctx, request, false).await,
        "prompts/list" => list_prompts(shared, &ctx, request).await,
        "prompts/get" => get_prompt(shared, ctx, request, operation).await,
        "completion/complete" => complete(shared, ctx, request).await,
        "logging/setLevel" => set_level(shared, &ctx, request).await,
        method => Err(jsonrpc::rpc_error(
            METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    }
}

async fn dispatch_modern(
    shared: &Arc<Shared>,
    ctx: RequestContext,
    request: &Request,
    operation: &mut Operation,
) -> Outcome {
    match request.method.as_str() {
        "server/discover" => Ok(discover(shared)),
        "tools/list" => list_tools(shared, &ctx, request).await,
        "resources/list" => list_resources(shared, &ctx, request).await,
        "resources/templates/list" => list_templates(shared, &ctx, request).await,
        "prompts/list" => list_prompts(shared, &ctx, request).await,
        "completion/complete" => complete(shared, ctx, request).await,
        method if mrtr::may_ask(method) => {
            let round = mrtr::begin(shared, ctx.principal(), request).await?;
            ctx.start_input_round(round);
            let outcome = match method {
                "tools/call" => call_tool(shared, ctx.clone(), request, operation).await,
                "prompts/get" => get_prompt(shared, ctx.clone(), request, operation).await,
                _ => read_resource(shared, ctx.clone(), request).await,
            };
            // An ask without its answer ends the run with `input_required`, whatever the
            // handler made of the error.
            ctx.end_input_round()
                .and_then(|round| mrtr::finish(shared, ctx.principal(), request, round))
                .unwrap_or(outcome)
        }
        method => Err(jsonrpc::rpc_error(
            METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    }
}

/// `server/discover`: the stateless era's revisions and this server's capabilities.
fn discover(shared: &Shared) -> Value {
    let mut result = json!({
        "supportedVersions": crate::version::MODERN_VERSIONS,
        "capabilities": server_capabilities(&shared.handlers),
    });
    if let Some(instructions) = &shared.config.instructions {
        result["instructions"] = json!(instructions);
    }
    result
}

fn to_value<T: Serialize>(value: &T) -> Outcome {
    serde_json::to_value(value).map_err(|e| internal(e.to_string()))
}

fn internal(detail: String) -> RpcError {
    tracing::error!(%detail, "handler failed");
    jsonrpc::rpc_error(jsonrpc::INTERNAL_ERROR, "internal error")
}

fn handler_error(error: HandlerError, not_found: RpcError) -> RpcError {
    match error {
        HandlerError::NotFound => not_found,
        HandlerError::InvalidParams(message) => jsonrpc::rpc_error(INVALID_PARAMS, message),
        HandlerError::Internal(detail) => internal(detail),
    }
}

fn params<T: DeserializeOwned>(request: &Request) -> Result<T, RpcError> {
    request.params_as()
}

fn cursor(request: &Request) -> Option<&str> {
    request.params.as_ref()?.get("cursor")?.as_str()
}

/// Pages `items` and wraps them as `{<key>: [...], nextCursor?}`.
fn paged<T: Serialize>(shared: &Shared, request: &Request, key: &str, items: Vec<T>) -> Outcome {
    let (items, next) = page(items, cursor(request), shared.config.page_size)?;
    let mut result = Map::new();
    result.insert(key.to_owned(), to_value(&items)?);
    if let Some(next) = next {
        result.insert("nextCursor".into(), Value::String(next));
    }
    Ok(Value::Object(result))
}

async fn list_tools(shared: &Shared, ctx: &RequestContext, request: &Request) -> Outcome {
    let mut tools = Vec::new();
    for provider in &shared.handlers.tools {
        tools.extend(
            provider
                .list(ctx.principal())
                .await
                .map_err(|e| handler_error(e, internal("tool list".into())))?,
        );
    }
    paged(shared, request, "tools", tools)
}

#[derive(serde::Deserialize)]
struct CallParams {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
}

/// Runs a tool. The tool's name becomes the `gen_ai_tool_name` label only once a provider
/// has run it (so only registered names are labels); an `isError` result is a `tool_error`.
async fn call_tool(
    shared: &Shared,
    ctx: RequestContext,
    request: &Request,
    operation: &mut Operation,
) -> Outcome {
    let CallParams { name, arguments } = params(request)?;
    let arguments = arguments.unwrap_or_default();
    for provider in &shared.handlers.tools {
        let outcome = provider.call(ctx.clone(), &name, arguments.clone()).await;
        if !matches!(outcome, Err(ToolError::NotFound)) {
            operation.tool = Some(name.clone().into());
        }
        if ctx.awaits_input() {
            return Ok(AWAITING_INPUT);
        }
        let result = match outcome {
            Err(ToolError::NotFound) => continue,
            Ok(result) => result,
            Err(ToolError::InvalidArguments(message)) => {
                CallToolResult::error(format!("invalid arguments for tool {name}: {message}"))
            }
            Err(ToolError::Failed(message)) => CallToolResult::error(message),
            Err(ToolError::Internal(detail)) => return Err(internal(detail)),
            Err(ToolError::MissingCapability(capability)) => match ctx.era() {
                Era::Session => CallToolResult::error(format!(
                    "the client did not declare the {capability} capability"
                )),
                Era::Modern => {
                    return Err(RpcError {
                        code: crate::codes::modern::MISSING_CAPABILITY,
                        message: format!("the client did not declare the {capability} capability"),
                        data: Some(json!({ "requiredCapabilities": { capability: {} } })),
                    });
                }
            },
        };
        if result.is_error == Some(true) {
            operation.error = Some(m::SharedString::const_str(m::TOOL_ERROR));
        }
        return to_value(&result);
    }
    Err(jsonrpc::rpc_error(
        INVALID_PARAMS,
        format!("unknown tool: {name}"),
    ))
}

async fn list_resources(shared: &Shared, ctx: &RequestContext, request: &Request) -> Outcome {
    let mut resources = Vec::new();
    for provider in &shared.handlers.resources {
        resources.extend(
            provider
                .list(ctx.principal())
                .await
                .map_err(|e| handler_error(e, internal("resource list".into())))?,
        );
    }
    paged(shared, request, "resources", resources)
}

async fn list_templates(shared: &Shared, ctx: &RequestContext, request: &Request) -> Outcome {
    let mut templates = Vec::new();
    for provider in &shared.handlers.resources {
        templates.extend(
            provider
                .templates(ctx.principal())
                .await
                .map_err(|e| handler_error(e, internal("template list".into())))?,
        );
    }
    paged(shared, request, "resourceTemplates", templates)
}

#[derive(serde::Deserialize)]
struct UriParams {
    uri: String,
}

/// A resource nobody serves: its own code in the session era, invalid params in the stateless
/// one.
fn resource_not_found(uri: &str, era: Era) -> RpcError {
    let code = match era {
        Era::Session => crate::codes::session::RESOURCE_NOT_FOUND,
        Era::Modern => crate::codes::modern::RESOURCE_NOT_FOUND,
    };
    RpcError {
        code,
        message: "resource not found".into(),
        data: Some(json!({ "uri": uri })),
    }
}

async fn read_resource(shared: &Shared, ctx: RequestContext, request: &Request) -> Outcome {
    let UriParams { uri } = params(request)?;
    let era = ctx.era();
    for provider in &shared.handlers.resources {
        let outcome = provider.read(ctx.clone(), &uri).await;
        if ctx.awaits_input() {
            return Ok(AWAITING_INPUT);
        }
        match outcome {
            Err(HandlerError::NotFound) => continue,
            Ok(contents) => return Ok(json!({ "contents": to_value(&contents)? })),
            Err(error) => return Err(handler_error(error, resource_not_found(&uri, era))),
        }
    }
    Err(resource_not_found(&uri, era))
}

async fn subscribe(shared: &Shared, ctx: &RequestContext, request: &Request, on: bool) -> Outcome {
    let UriParams { uri } = params(request)?;
    let update = if on {
        SessionUpdate::Subscribe(uri)
    } else {
        SessionUpdate::Unsubscribe(uri)
    };
    shared
        .host
        .update_session(ctx.session_id(), update)
        .await
        .map_err(|e| internal(e.to_string()))?;
    Ok(json!({}))
}

async fn list_prompts(shared: &Shared, ctx: &RequestContext, request: &Request) -> Outcome {
    let mut prompts = Vec::new();
    for provider in &shared.handlers.prompts {
        prompts.extend(
            provider
                .list(ctx.principal())
                .await
                .map_err(|e| handler_error(e, internal("prompt list".into())))?,
        );
    }
    paged(shared, request, "prompts", prompts)
}

#[derive(serde::Deserialize)]
struct GetPromptParams {
    name: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
}

/// Gets a prompt. Its name becomes the `gen_ai_prompt_name` label only once a provider knows
/// it, as a tool's does.
async fn get_prompt(
    shared: &Shared,
    ctx: RequestContext,
    request: &Request,
    operation: &mut Operation,
) -> Outcome {
    let GetPromptParams { name, arguments } = params(request)?;
    let arguments = arguments.unwrap_or_default();
    let unknown = || jsonrpc::rpc_error(INVALID_PARAMS, format!("unknown prompt: {name}"));
    for provider in &shared.handlers.prompts {
        let outcome = provider.get(ctx.clone(), &name, arguments.clone()).await;
        if !matches!(outcome, Err(HandlerError::NotFound)) {
            operation.prompt = Some(name.clone().into());
        }
        if ctx.awaits_input() {
            return Ok(AWAITING_INPUT);
        }
        match outcome {
            Err(HandlerError::NotFound) => continue,
            Ok(result) => return to_value(&result),
            Err(error) => return Err(handler_error(error, unknown())),
        }
    }
    Err(unknown())
}

async fn complete(shared: &Shared, ctx: RequestContext, request: &Request) -> Outcome {
    let params: CompleteParams = params(request)?;
    let completion = match &shared.handlers.completer {
        Some(completer) => completer.complete(ctx, params).await.map_err(|e| {
            handler_error(
                e,
                jsonrpc::rpc_error(INVALID_PARAMS, "nothing to complete there"),
            )
        })?,
        None => Completion::default(),
    };
    let mut completion = completion;
    completion.values.truncate(100);
    Ok(json!({ "completion": to_value(&completion)? }))
}

#[derive(serde::Deserialize)]
struct SetLevelParams {
    level: LogLevel,
}

async fn set_level(shared: &Shared, ctx: &RequestContext, request: &Request) -> Outcome {
    let SetLevelParams { level } = params(request)?;
    shared
        .host
        .update_session(ctx.session_id(), SessionUpdate::LogLevel(level))
        .await
        .map_err(|e| internal(e.to_string()))?;
    Ok(json!({}))
}
