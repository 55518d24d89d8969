//! Tools: typed tools with derived input schemas, tool sets, and dynamic providers.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Attachment, HandlerError, RequestContext};
use crate::model::{CallToolResult, Content, JsonObject, Tool};
use crate::session::Principal;

/// Why a tool call did not produce a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// No tool by that name (a protocol error, -32602).
    #[error("unknown tool")]
    NotFound,
    /// The arguments do not match the input schema (an `isError` result the model can act on).
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed (an `isError` result with this message).
    #[error("{0}")]
    Failed(String),
    /// A bug or outage (-32603; the detail is logged, not sent).
    #[error("internal error: {0}")]
    Internal(String),
    /// The tool needs a client capability (`sampling`, `elicitation`, `roots`) the client did
    /// not declare: in the stateless era a `-32021` error naming it (400 in HTTP), in the
    /// session era an `isError` result saying so.
    #[error("the client did not declare the {0} capability")]
    MissingCapability(String),
}

impl ToolError {
    /// Fails with [`ToolError::MissingCapability`] unless the client declared `capability`.
    pub fn require_capability(
        ctx: &super::RequestContext,
        capability: &str,
    ) -> Result<(), ToolError> {
        if ctx
            .client_capabilities()
            .get(capability)
            .is_some_and(|c| !c.is_null())
        {
            Ok(())
        } else {
            Err(ToolError::MissingCapability(capability.to_owned()))
        }
    }

    /// A failure the model should see.
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError::Failed(message.into())
    }
}

/// Something a tool can return.
pub trait IntoToolResult {
    /// The result.
    fn into_tool_result(self) -> CallToolResult;
    /// The output schema this type implies, if it is structured.
    fn output_schema() -> Option<JsonObject> {
        None
    }
}

impl IntoToolResult for CallToolResult {
    fn into_tool_result(self) -> CallToolResult {
        self
    }
}

impl IntoToolResult for String {
    fn into_tool_result(self) -> CallToolResult {
        CallToolResult::text(self)
    }
}

impl IntoToolResult for Vec<Content> {
    fn into_tool_result(self) -> CallToolResult {
        CallToolResult::success(self)
    }
}

/// Structured output: serialized into `structuredContent` (and, for older clients, as JSON text),
/// with `outputSchema` derived from `T`.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: Serialize + JsonSchema> IntoToolResult for Json<T> {
    fn into_tool_result(self) -> CallToolResult {
        match serde_json::to_value(&self.0) {
            Ok(value) => CallToolResult {
                content: vec![Content::text(value.to_string())],
                structured_content: Some(value),
                is_error: None,
            },
            Err(e) => CallToolResult::error(format!("could not serialize the result: {e}")),
        }
    }

    fn output_schema() -> Option<JsonObject> {
        Some(schema_object::<T>())
    }
}

/// The JSON Schema (2020-12) of `T` as an object.
pub(crate) fn schema_object<T: JsonSchema>() -> JsonObject {
    match serde_json::to_value(schemars::schema_for!(T)) {
        Ok(Value::Object(mut schema)) => {
            // Clients compare against the 2020-12 dialect by default; keep the keyword anyway so
            // the schema says what it is.
            schema.remove("title");
            schema
        }
        _ => JsonObject::new(),
    }
}

/// One tool: its definition and how to call it.
pub trait DynTool: Send + Sync + 'static {
    /// The definition shown by `tools/list`.
    fn definition(&self) -> &Tool;
    /// Runs the tool.
    fn call(
        &self,
        ctx: RequestContext,
        arguments: JsonObject,
    ) -> BoxFuture<'static, Result<CallToolResult, ToolError>>;
}

/// A tool whose arguments are the type `A`, derived from its schema and checked before `f` runs.
pub struct TypedTool<A, F> {
    definition: Tool,
    f: Arc<F>,
    _args: PhantomData<fn(A)>,
}

/// Builds a typed tool: `A`'s JSON Schema becomes the input schema, the arguments are
/// deserialized into `A` before `f` runs (a mismatch is an `isError` result that says what is
/// wrong), and `R`'s output schema, if structured, becomes the output schema.
pub fn typed_tool<A, F, Fut, R>(
    name: impl Into<String>,
    description: impl Into<String>,
    f: F,
) -> TypedTool<A, F>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(RequestContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ToolError>> + Send + 'static,
    R: IntoToolResult,
{
    let mut input_schema = schema_object::<A>();
    // A tool without arguments derives `{"type":"null"}` from `()`; the spec wants an object.
    if input_schema.get("type") != Some(&Value::String("object".into())) {
        input_schema = JsonObject::new();
        input_schema.insert("type".into(), "object".into());
    }
    // schemars leaves `properties` out for a struct without fields; clients expect it.
    input_schema
        .entry("properties")
        .or_insert_with(|| Value::Object(JsonObject::new()));
    TypedTool {
        definition: Tool {
            name: name.into(),
            description: Some(description.into()),
            input_schema,
            output_schema: R::output_schema(),
            ..Default::default()
        },
        f: Arc::new(f),
        _args: PhantomData,
    }
}

impl<A, F> TypedTool<A, F> {
    /// Sets the display title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.definition.title = Some(title.into());
        self
    }

    /// Sets behaviour hints (`{"readOnlyHint": true}`, …).
    pub fn annotations(mut self, annotations: Value) -> Self {
        self.definition.annotations = Some(annotations);
        self
    }

    /// Replaces the derived input schema (for schemas `schemars` cannot express).
    pub fn input_schema(mut self, schema: JsonObject) -> Self {
        self.definition.input_schema = schema;
        self
    }
}

impl<A, F, Fut, R> DynTool for TypedTool<A, F>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(RequestContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ToolError>> + Send + 'static,
    R: IntoToolResult,
{
    fn definition(&self) -> &Tool {
        &self.definition
    }

    fn call(
        &self,
        ctx: RequestContext,
        arguments: JsonObject,
    ) -> BoxFuture<'static, Result<CallToolResult, ToolError>> {
        let f = self.f.clone();
        Box::pin(async move {
            let args: A = serde_json::from_value(Value::Object(arguments))
                .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
            f(ctx, args).await.map(IntoToolResult::into_tool_result)
        })
    }
}

/// A source of tools. Lists may depend on the principal, never on the session.
#[async_trait::async_trait]
pub trait ToolProvider: Send + Sync + 'static {
    /// The tools `principal` may see.
    async fn list(&self, principal: Option<&Principal>) -> Result<Vec<Tool>, HandlerError>;
    /// Calls `name`; [`ToolError::NotFound`] when this provider has no such tool.
    async fn call(
        &self,
        ctx: RequestContext,
        name: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ToolError>;
    /// Called once by [`Engine::new`](crate::engine::Engine::new), before any request, with
    /// what the engine lends its providers. Does nothing unless overridden.
    fn attach(&self, _attachment: &Attachment) {}
}

/// A fixed set of tools.
#[derive(Clone, Default)]
pub struct ToolSet {
    tools: Vec<Arc<dyn DynTool>>,
}

impl ToolSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool.
    pub fn with(mut self, tool: impl DynTool) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }

    /// The tool named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynTool>> {
        self.tools.iter().find(|t| t.definition().name == name)
    }
}

#[async_trait::async_trait]
impl ToolProvider for ToolSet {
    async fn list(&self, _principal: Option<&Principal>) -> Result<Vec<Tool>, HandlerError> {
        Ok(self.tools.iter().map(|t| t.definition().clone()).collect())
    }

    async fn call(
        &self,
        ctx: RequestContext,
        name: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        match self.get(name) {
            Some(tool) => tool.call(ctx, arguments).await,
            None => Err(ToolError::NotFound),
        }
    }
}
