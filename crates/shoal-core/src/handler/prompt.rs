//! Prompts: templates of messages the client can fill and show.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{Attachment, HandlerError, RequestContext};
use crate::model::{GetPromptResult, Prompt};
use crate::session::Principal;

/// A source of prompts. Lists may depend on the principal, never on the session.
#[async_trait::async_trait]
pub trait PromptProvider: Send + Sync + 'static {
    /// The prompts `principal` may see.
    async fn list(&self, principal: Option<&Principal>) -> Result<Vec<Prompt>, HandlerError>;
    /// Fills `name` with `arguments`; [`HandlerError::NotFound`] when this provider lacks it.
    async fn get(
        &self,
        ctx: RequestContext,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<GetPromptResult, HandlerError>;
    /// Called once by [`Engine::new`](crate::engine::Engine::new), before any request, with
    /// what the engine lends its providers. Does nothing unless overridden.
    fn attach(&self, _attachment: &Attachment) {}
}

type GetFn = Arc<
    dyn Fn(
            RequestContext,
            Map<String, Value>,
        ) -> BoxFuture<'static, Result<GetPromptResult, HandlerError>>
        + Send
        + Sync,
>;

/// A fixed set of prompts. Required arguments are checked before the prompt's function runs.
#[derive(Clone, Default)]
pub struct PromptSet {
    prompts: Vec<(Prompt, GetFn)>,
}

impl PromptSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a prompt filled by `get(ctx, arguments)`.
    pub fn with<F, Fut>(mut self, prompt: Prompt, get: F) -> Self
    where
        F: Fn(RequestContext, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<GetPromptResult, HandlerError>> + Send + 'static,
    {
        self.prompts
            .push((prompt, Arc::new(move |ctx, args| Box::pin(get(ctx, args)))));
        self
    }
}

#[async_trait::async_trait]
impl PromptProvider for PromptSet {
    async fn list(&self, _principal: Option<&Principal>) -> Result<Vec<Prompt>, HandlerError> {
        Ok(self.prompts.iter().map(|(p, _)| p.clone()).collect())
    }

    async fn get(
        &self,
        ctx: RequestContext,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<GetPromptResult, HandlerError> {
        let (prompt, get) = self
            .prompts
            .iter()
            .find(|(p, _)| p.name == name)
            .ok_or(HandlerError::NotFound)?;
        let missing: Vec<&str> = prompt
            .arguments
            .iter()
            .filter(|a| a.required == Some(true) && !arguments.contains_key(&a.name))
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(HandlerError::InvalidParams(format!(
                "missing required arguments: {}",
                missing.join(", ")
            )));
        }
        get(ctx, arguments).await
    }
}
