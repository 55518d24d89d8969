//! The conformance prompts and the completion of their arguments.

use serde_json::{Map, Value};
use shoal_core::handler::{Completer, HandlerError, PromptSet, RequestContext, async_trait};
use shoal_core::model::{
    CompleteParams, Completion, CompletionReference, Content, GetPromptResult, Prompt,
    PromptArgument, PromptMessage, ResourceContents,
};

use crate::tools::assets::PNG_1X1;

/// The prompt whose arguments complete.
const PROMPT_WITH_ARGUMENTS: &str = "test_prompt_with_arguments";
/// What `arg1` of [`PROMPT_WITH_ARGUMENTS`] completes to.
const ARG1_CANDIDATES: [&str; 3] = ["testValue1", "test-one", "first"];
/// What `arg2` of [`PROMPT_WITH_ARGUMENTS`] completes to.
const ARG2_CANDIDATES: [&str; 3] = ["testValue2", "test-two", "second"];

/// The four prompts.
pub(super) fn prompt_set() -> PromptSet {
    PromptSet::new()
        .with(
            prompt(
                "test_simple_prompt",
                "Simple Test Prompt",
                "A simple prompt without arguments",
            ),
            |_ctx, _arguments| async {
                Ok(messages(vec![Content::text(
                    "This is a simple prompt for testing.",
                )]))
            },
        )
        .with(
            Prompt {
                arguments: vec![
                    required_argument("arg1", "First test argument"),
                    required_argument("arg2", "Second test argument"),
                ],
                ..prompt(
                    PROMPT_WITH_ARGUMENTS,
                    "Prompt With Arguments",
                    "A prompt with required arguments",
                )
            },
            |_ctx, arguments| async move {
                let arg1 = string_argument(&arguments, "arg1")?;
                let arg2 = string_argument(&arguments, "arg2")?;
                let text = format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'");
                Ok(messages(vec![Content::text(text)]))
            },
        )
        .with(
            Prompt {
                arguments: vec![required_argument(
                    "resourceUri",
                    "URI of the resource to embed",
                )],
                ..prompt(
                    "test_prompt_with_embedded_resource",
                    "Prompt With Embedded Resource",
                    "A prompt that includes an embedded resource",
                )
            },
            |_ctx, arguments| async move {
                let uri = string_argument(&arguments, "resourceUri")?;
                let text = "Embedded resource content for testing.";
                Ok(messages(vec![
                    Content::resource(ResourceContents::text(uri, "text/plain", text)),
                    Content::text("Please process the embedded resource above."),
                ]))
            },
        )
        .with(
            prompt(
                "test_prompt_with_image",
                "Prompt With Image",
                "A prompt that includes image content",
            ),
            |_ctx, _arguments| async {
                Ok(messages(vec![
                    Content::image(PNG_1X1, "image/png"),
                    Content::text("Please analyze the image above."),
                ]))
            },
        )
}

/// A prompt without arguments.
fn prompt(name: &str, title: &str, description: &str) -> Prompt {
    Prompt {
        name: name.into(),
        title: Some(title.into()),
        description: Some(description.into()),
        arguments: Vec::new(),
    }
}

fn required_argument(name: &str, description: &str) -> PromptArgument {
    PromptArgument {
        name: name.into(),
        description: Some(description.into()),
        required: Some(true),
    }
}

/// One user message per content block.
fn messages(contents: Vec<Content>) -> GetPromptResult {
    GetPromptResult {
        description: None,
        messages: contents.into_iter().map(PromptMessage::user).collect(),
    }
}

/// A prompt argument, which the protocol says is a string. ([`PromptSet`] has already checked
/// that required ones are there.)
fn string_argument(arguments: &Map<String, Value>, name: &str) -> Result<String, HandlerError> {
    match arguments.get(name) {
        Some(Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(HandlerError::InvalidParams(format!(
            "argument {name} must be a string"
        ))),
        None => Err(HandlerError::InvalidParams(format!(
            "missing required argument: {name}"
        ))),
    }
}

/// Completes `arg1` and `arg2` of `test_prompt_with_arguments`; anything else has no candidates.
pub(super) struct ArgumentCompleter;

#[async_trait]
impl Completer for ArgumentCompleter {
    async fn complete(
        &self,
        _ctx: RequestContext,
        params: CompleteParams,
    ) -> Result<Completion, HandlerError> {
        Ok(complete(&params))
    }
}

/// The candidates that start with what the user typed, ignoring case.
fn complete(params: &CompleteParams) -> Completion {
    let candidates: &[&str] = match (&params.reference, params.argument.name.as_str()) {
        (CompletionReference::Prompt { name }, argument) if name == PROMPT_WITH_ARGUMENTS => {
            match argument {
                "arg1" => &ARG1_CANDIDATES,
                "arg2" => &ARG2_CANDIDATES,
                _ => &[],
            }
        }
        _ => &[],
    };
    let typed = params.argument.value.to_lowercase();
    let values: Vec<String> = candidates
        .iter()
        .filter(|candidate| candidate.to_lowercase().starts_with(&typed))
        .map(|candidate| (*candidate).to_owned())
        .collect();
    Completion {
        total: Some(values.len() as u64),
        has_more: Some(false),
        values,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shoal_core::handler::PromptProvider;
    use shoal_core::testing::EngineClient;

    use super::*;
    use crate::tools::conformance::handlers;

    #[tokio::test]
    async fn lists_described_prompts() {
        let prompts = prompt_set().list(None).await.unwrap();
        let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
        let expected = [
            "test_simple_prompt",
            "test_prompt_with_arguments",
            "test_prompt_with_embedded_resource",
            "test_prompt_with_image",
        ];
        assert_eq!(names, expected);
        for prompt in &prompts {
            let description = prompt.description.as_deref();
            assert!(
                description.is_some_and(|d| !d.is_empty()),
                "{}",
                prompt.name
            );
        }
    }

    #[tokio::test]
    async fn prompts_without_arguments() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        // The suite sends no `arguments` for these two.
        let simple = client
            .result("prompts/get", json!({ "name": "test_simple_prompt" }))
            .await;
        let text = json!({ "type": "text", "text": "This is a simple prompt for testing." });
        assert_eq!(
            simple["messages"],
            json!([{ "role": "user", "content": text }])
        );

        let image = client
            .result("prompts/get", json!({ "name": "test_prompt_with_image" }))
            .await;
        let content = json!({ "type": "image", "data": PNG_1X1, "mimeType": "image/png" });
        assert_eq!(
            image["messages"][0],
            json!({ "role": "user", "content": content })
        );
        assert_eq!(
            image["messages"][1]["content"]["text"],
            "Please analyze the image above."
        );
    }

    #[tokio::test]
    async fn prompts_fill_in_their_arguments() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let arguments = json!({ "arg1": "testValue1", "arg2": "testValue2" });
        let params = json!({ "name": PROMPT_WITH_ARGUMENTS, "arguments": arguments });
        let filled = client.result("prompts/get", params).await;
        let expected = "Prompt with arguments: arg1='testValue1', arg2='testValue2'";
        assert_eq!(filled["messages"][0]["content"]["text"], expected);

        let arguments = json!({ "resourceUri": "test://example-resource" });
        let params =
            json!({ "name": "test_prompt_with_embedded_resource", "arguments": arguments });
        let embedded = client.result("prompts/get", params).await;
        let resource = json!({
            "uri": "test://example-resource",
            "mimeType": "text/plain",
            "text": "Embedded resource content for testing.",
        });
        assert_eq!(
            embedded["messages"][0]["content"],
            json!({ "type": "resource", "resource": resource })
        );
        let text = &embedded["messages"][1]["content"]["text"];
        assert_eq!(text, "Please process the embedded resource above.");
    }

    #[tokio::test]
    async fn rejects_missing_and_non_string_arguments() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        for arguments in [json!({ "arg1": "x" }), json!({ "arg1": 1, "arg2": "x" })] {
            let params = json!({ "name": PROMPT_WITH_ARGUMENTS, "arguments": arguments });
            let response = client.response("prompts/get", params).await;
            assert_eq!(response["error"]["code"], -32602, "{response}");
        }
    }

    #[tokio::test]
    async fn completes_prompt_arguments_by_prefix() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let complete = |reference: &Value, name: &str, value: &str| {
            let params = json!({ "ref": reference, "argument": { "name": name, "value": value } });
            client.result("completion/complete", params)
        };
        let prompt = json!({ "type": "ref/prompt", "name": PROMPT_WITH_ARGUMENTS });
        let expected =
            json!({ "values": ["testValue1", "test-one"], "total": 2, "hasMore": false });
        assert_eq!(
            complete(&prompt, "arg1", "test").await["completion"],
            expected
        );
        assert_eq!(
            complete(&prompt, "arg2", "SEC").await["completion"]["values"],
            json!(["second"])
        );
        let everything = complete(&prompt, "arg2", "").await;
        assert_eq!(everything["completion"]["values"], json!(ARG2_CANDIDATES));

        let nothing = json!({ "completion": { "values": [], "total": 0, "hasMore": false } });
        assert_eq!(complete(&prompt, "arg3", "").await, nothing);
        let other = json!({ "type": "ref/prompt", "name": "test_simple_prompt" });
        assert_eq!(complete(&other, "arg1", "").await, nothing);
        let template = json!({ "type": "ref/resource", "uri": "test://template/{id}/data" });
        assert_eq!(complete(&template, "id", "1").await, nothing);
    }
}
