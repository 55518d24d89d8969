//! The tools and the prompt the suite's 2026-07-28 `input-required-result-*` scenarios call:
//! each asks the client for input under the keys the scenarios name, through
//! [`RequestContext::ask`], so the same code sends real server→client requests in the session
//! era and answers `input_required` (then completes on the retry) in the stateless one.

use serde_json::{Value, json};
use shoal_core::handler::{
    Answers, HandlerError, Inputs, PeerError, PromptSet, RequestContext, ToolError, ToolSet,
    typed_tool,
};
use shoal_core::model::{
    Content, CreateMessageRequest, ElicitRequest, GetPromptResult, Prompt, PromptMessage,
    SamplingMessage,
};

use super::NoArgs;

pub(super) fn tools() -> ToolSet {
    ToolSet::new()
        .with(typed_tool(
            "test_input_required_result_elicitation",
            "Asks the user's name (user_name), then greets them",
            elicitation,
        ))
        .with(typed_tool(
            "test_input_required_result_sampling",
            "Asks the client's model for the capital of France (capital_question)",
            sampling,
        ))
        .with(typed_tool(
            "test_input_required_result_list_roots",
            "Asks for the client's roots (client_roots), then lists them",
            list_roots,
        ))
        .with(typed_tool(
            "test_input_required_result_request_state",
            "Asks for a confirmation (confirm); says state-ok once a checked requestState came back",
            request_state,
        ))
        .with(typed_tool(
            "test_input_required_result_multiple_inputs",
            "Asks a name, a greeting and the roots at once",
            multiple_inputs,
        ))
        .with(typed_tool(
            "test_input_required_result_multi_round",
            "Asks a name (step1), then a favourite colour (step2)",
            multi_round,
        ))
        .with(typed_tool(
            "test_input_required_result_tampered_state",
            "Asks for an approval; a retry whose requestState was altered is refused",
            tampered_state,
        ))
        .with(typed_tool(
            "test_input_required_result_capabilities",
            "Asks only for the inputs the client declared it can give",
            capabilities,
        ))
}

/// The prompt of the `non-tool-request` scenario: `prompts/get` that asks first.
pub(super) fn prompts() -> PromptSet {
    PromptSet::new().with(
        Prompt {
            name: "test_input_required_result_prompt".into(),
            title: Some("Prompt That Asks For Context".into()),
            description: Some("Asks the user what context to use (user_context)".into()),
            arguments: Vec::new(),
        },
        |ctx, _arguments| async move {
            let answers = ctx
                .ask(Inputs::new().elicit(
                    "user_context",
                    form("What context should the prompt use?", "context", "string"),
                ))
                .await
                .map_err(|e| HandlerError::Internal(format!("elicitation failed: {e}")))?;
            let context = field(&answers, "user_context", "context");
            Ok(GetPromptResult {
                description: None,
                messages: vec![PromptMessage::user(Content::text(format!(
                    "Answer with this context in mind: {}",
                    text(&context)
                )))],
            })
        },
    )
}

/// A form of one required field.
fn form(message: &str, field: &str, kind: &str) -> ElicitRequest {
    ElicitRequest {
        message: message.into(),
        requested_schema: json!({
            "type": "object",
            "properties": { field: { "type": kind } },
            "required": [field],
        }),
    }
}

fn question(text: &str, max_tokens: u32) -> CreateMessageRequest {
    CreateMessageRequest {
        messages: vec![SamplingMessage::user_text(text)],
        system_prompt: None,
        max_tokens,
        model_preferences: None,
        temperature: None,
    }
}

fn failed(error: PeerError) -> ToolError {
    ToolError::failed(format!("asking the client failed: {error}"))
}

/// A field of the elicitation answer under `key` (`null` when declined or absent).
fn field(answers: &Answers, key: &str, name: &str) -> Value {
    answers
        .elicitation(key)
        .and_then(|answer| answer.content.as_ref())
        .and_then(|content| content.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A string as itself, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The text of the model's reply under `key`.
fn reply(answers: &Answers, key: &str) -> String {
    answers
        .sampling(key)
        .and_then(|reply| reply.content.get("text"))
        .map(text)
        .unwrap_or_default()
}

/// The roots under `key`, as their URIs.
fn roots(answers: &Answers, key: &str) -> String {
    answers
        .roots(key)
        .map(|roots| {
            roots
                .roots
                .iter()
                .map(|root| root.uri.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

async fn elicitation(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let answers = ctx
        .ask(Inputs::new().elicit("user_name", form("What is your name?", "name", "string")))
        .await
        .map_err(failed)?;
    Ok(format!(
        "Hello, {}!",
        text(&field(&answers, "user_name", "name"))
    ))
}

async fn sampling(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let answers = ctx
        .ask(Inputs::new().sample(
            "capital_question",
            question("What is the capital of France?", 100),
        ))
        .await
        .map_err(failed)?;
    Ok(format!(
        "The model answered: {}",
        reply(&answers, "capital_question")
    ))
}

async fn list_roots(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let answers = ctx
        .ask(Inputs::new().list_roots("client_roots"))
        .await
        .map_err(failed)?;
    Ok(format!(
        "The client's roots: {}",
        roots(&answers, "client_roots")
    ))
}

async fn request_state(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let answers = ctx
        .ask(Inputs::new().elicit("confirm", form("Please confirm", "ok", "boolean")))
        .await
        .map_err(failed)?;
    let confirmed = field(&answers, "confirm", "ok");
    // Round 2 or later means the engine opened, checked and spent the requestState of round 1.
    Ok(match ctx.input_round() {
        Some(round) if round >= 2 => format!("state-ok: round {round}, confirmed={confirmed}"),
        Some(_) => format!("answered without a requestState: confirmed={confirmed}"),
        None => format!("confirmed={confirmed} (session era: no requestState)"),
    })
}

async fn multiple_inputs(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let answers = ctx
        .ask(
            Inputs::new()
                .elicit("user_name", form("What is your name?", "name", "string"))
                .sample("greeting", question("Generate a greeting", 50))
                .list_roots("client_roots"),
        )
        .await
        .map_err(failed)?;
    Ok(format!(
        "name={}, greeting={}, roots={}",
        text(&field(&answers, "user_name", "name")),
        reply(&answers, "greeting"),
        roots(&answers, "client_roots")
    ))
}

async fn multi_round(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let name = ctx
        .ask(Inputs::new().elicit(
            "step1",
            form("Step 1: What is your name?", "name", "string"),
        ))
        .await
        .map_err(failed)?;
    let colour = ctx
        .ask(Inputs::new().elicit(
            "step2",
            form("Step 2: What is your favorite color?", "color", "string"),
        ))
        .await
        .map_err(failed)?;
    Ok(format!(
        "{} likes {}",
        text(&field(&name, "step1", "name")),
        text(&field(&colour, "step2", "color"))
    ))
}

async fn tampered_state(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let answers = ctx
        .ask(Inputs::new().elicit("approval", form("Approve the transfer?", "ok", "boolean")))
        .await
        .map_err(failed)?;
    Ok(format!("approved={}", field(&answers, "approval", "ok")))
}

async fn capabilities(ctx: RequestContext, _: NoArgs) -> Result<String, ToolError> {
    let mut inputs = Inputs::new();
    if ctx.supports("elicitation") {
        inputs = inputs.elicit("user_name", form("What is your name?", "name", "string"));
    }
    if ctx.supports("sampling") {
        inputs = inputs.sample(
            "capital_question",
            question("What is the capital of France?", 100),
        );
    }
    if ctx.supports("roots") {
        inputs = inputs.list_roots("client_roots");
    }
    if inputs.is_empty() {
        return Ok("The client declared none of elicitation, sampling and roots".into());
    }
    let answers = ctx.ask(inputs).await.map_err(failed)?;
    let mut answered: Vec<&str> = ["user_name", "capital_question", "client_roots"]
        .into_iter()
        .filter(|key| answers.get(key).is_some())
        .collect();
    answered.sort_unstable();
    Ok(format!("Answered: {}", answered.join(", ")))
}
