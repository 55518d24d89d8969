//! The API tool authors write against.
//!
//! A server is a [`Handlers`] value: tool, resource and prompt providers plus an optional
//! completer. Static sets ([`ToolSet`], [`ResourceSet`], [`PromptSet`]) cover the common case;
//! implement a provider trait directly for a dynamic one (tools listed from a database, say).
//! Wrap any provider in a [`LiveSet`] to show and hide its entries while serving, on every
//! replica at once. Every handler gets a [`RequestContext`]: who is calling, progress, logging, cancellation and
//! the server→client requests (`elicit`, `create_message`, `list_roots`).
//!
//! ```
//! use shoal_core::handler::{Handlers, ToolSet, ToolError, typed_tool};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Add { a: i64, b: i64 }
//!
//! let tools = ToolSet::new().with(typed_tool("add", "Adds two integers", |_ctx, Add { a, b }| async move {
//!     Ok::<_, ToolError>(format!("{}", a + b))
//! }));
//! let handlers = Handlers::new().tools(tools);
//! # let _ = handlers;
//! ```

/// Implementing a provider trait needs this attribute; re-exported so that tool crates need no
/// direct dependency on `async-trait`.
pub use async_trait::async_trait;

mod attachment;
mod completion;
mod context;
mod input;
mod live;
mod prompt;
mod resource;
mod tool;

use std::sync::Arc;

pub use attachment::Attachment;
pub(crate) use attachment::BroadcastHook;
pub use completion::Completer;
pub use context::{Notifier, PeerError, RequestContext};
pub use input::{Answer, Answers, InputRequest, Inputs};
pub use live::{DEFAULT_REFRESH_INTERVAL, LiveError, LiveSet};
pub use prompt::{PromptProvider, PromptSet};
pub use resource::{ResourceProvider, ResourceSet, match_template};
pub use tool::{
    DynTool, IntoToolResult, Json, ToolError, ToolProvider, ToolSet, TypedTool, typed_tool,
};

/// Why a list, read, get or completion failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// Nothing by that name or URI here.
    #[error("not found")]
    NotFound,
    /// The request's arguments are wrong; the message says how.
    #[error("{0}")]
    InvalidParams(String),
    /// The handler failed; the message is logged, not shown to the client.
    #[error("{0}")]
    Internal(String),
}

/// Everything a server offers.
#[derive(Clone, Default)]
pub struct Handlers {
    pub(crate) tools: Vec<Arc<dyn ToolProvider>>,
    pub(crate) resources: Vec<Arc<dyn ResourceProvider>>,
    pub(crate) prompts: Vec<Arc<dyn PromptProvider>>,
    pub(crate) completer: Option<Arc<dyn Completer>>,
}

impl Handlers {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool provider; earlier providers win on a name clash.
    pub fn tools(mut self, provider: impl ToolProvider) -> Self {
        self.tools.push(Arc::new(provider));
        self
    }

    /// Adds a resource provider.
    pub fn resources(mut self, provider: impl ResourceProvider) -> Self {
        self.resources.push(Arc::new(provider));
        self
    }

    /// Adds a prompt provider.
    pub fn prompts(mut self, provider: impl PromptProvider) -> Self {
        self.prompts.push(Arc::new(provider));
        self
    }

    /// Sets the completer for `completion/complete`.
    pub fn completer(mut self, completer: impl Completer) -> Self {
        self.completer = Some(Arc::new(completer));
        self
    }

    /// Merges another set of handlers into this one.
    pub fn merge(mut self, other: Handlers) -> Self {
        self.tools.extend(other.tools);
        self.resources.extend(other.resources);
        self.prompts.extend(other.prompts);
        self.completer = self.completer.or(other.completer);
        self
    }
}
