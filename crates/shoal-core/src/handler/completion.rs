//! Argument completion for prompts and resource templates.

use super::{HandlerError, RequestContext};
use crate::model::{CompleteParams, Completion};

/// Answers `completion/complete`.
#[async_trait::async_trait]
pub trait Completer: Send + Sync + 'static {
    /// Candidates for `params.argument`, at most 100.
    async fn complete(
        &self,
        ctx: RequestContext,
        params: CompleteParams,
    ) -> Result<Completion, HandlerError>;
}
