//! Resources: static ones, URI templates, and dynamic providers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Attachment, HandlerError, RequestContext};
use crate::model::{Resource, ResourceContents, ResourceTemplate};
use crate::session::Principal;

/// A source of resources. Lists may depend on the principal, never on the session.
#[async_trait::async_trait]
pub trait ResourceProvider: Send + Sync + 'static {
    /// The concrete resources `principal` may see.
    async fn list(&self, principal: Option<&Principal>) -> Result<Vec<Resource>, HandlerError>;
    /// The URI templates `principal` may see.
    async fn templates(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Vec<ResourceTemplate>, HandlerError>;
    /// Reads `uri`; [`HandlerError::NotFound`] when this provider does not serve it.
    async fn read(
        &self,
        ctx: RequestContext,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, HandlerError>;
    /// Called once by [`Engine::new`](crate::engine::Engine::new), before any request, with
    /// what the engine lends its providers. Does nothing unless overridden.
    fn attach(&self, _attachment: &Attachment) {}
}

type ReadFn = Arc<
    dyn Fn(
            RequestContext,
            String,
        ) -> BoxFuture<'static, Result<Vec<ResourceContents>, HandlerError>>
        + Send
        + Sync,
>;
type TemplateReadFn = Arc<
    dyn Fn(
            RequestContext,
            String,
            BTreeMap<String, String>,
        ) -> BoxFuture<'static, Result<Vec<ResourceContents>, HandlerError>>
        + Send
        + Sync,
>;

/// A fixed set of resources and templates.
#[derive(Clone, Default)]
pub struct ResourceSet {
    resources: Vec<(Resource, ReadFn)>,
    templates: Vec<(ResourceTemplate, TemplateReadFn)>,
}

impl ResourceSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A resource whose contents never change.
    pub fn fixed(self, resource: Resource, contents: ResourceContents) -> Self {
        self.with(resource, move |_ctx, _uri| {
            let contents = contents.clone();
            async move { Ok(vec![contents]) }
        })
    }

    /// A resource read by `read(ctx, uri)`.
    pub fn with<F, Fut>(mut self, resource: Resource, read: F) -> Self
    where
        F: Fn(RequestContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        self.resources
            .push((resource, Arc::new(move |ctx, uri| Box::pin(read(ctx, uri)))));
        self
    }

    /// A template; `read(ctx, uri, variables)` serves every URI that matches it.
    pub fn template<F, Fut>(mut self, template: ResourceTemplate, read: F) -> Self
    where
        F: Fn(RequestContext, String, BTreeMap<String, String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        self.templates.push((
            template,
            Arc::new(move |ctx, uri, vars| Box::pin(read(ctx, uri, vars))),
        ));
        self
    }
}

#[async_trait::async_trait]
impl ResourceProvider for ResourceSet {
    async fn list(&self, _principal: Option<&Principal>) -> Result<Vec<Resource>, HandlerError> {
        Ok(self.resources.iter().map(|(r, _)| r.clone()).collect())
    }

    async fn templates(
        &self,
        _principal: Option<&Principal>,
    ) -> Result<Vec<ResourceTemplate>, HandlerError> {
        Ok(self.templates.iter().map(|(t, _)| t.clone()).collect())
    }

    async fn read(
        &self,
        ctx: RequestContext,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, HandlerError> {
        if let Some((_, read)) = self.resources.iter().find(|(r, _)| r.uri == uri) {
            return read(ctx, uri.to_owned()).await;
        }
        for (template, read) in &self.templates {
            if let Some(vars) = match_template(&template.uri_template, uri) {
                return read(ctx, uri.to_owned(), vars).await;
            }
        }
        Err(HandlerError::NotFound)
    }
}

/// Matches `uri` against a level-1 RFC 6570 template (`{name}` expansions that stop at `/`).
/// Returns the variables, or `None` when it does not match.
pub fn match_template(template: &str, uri: &str) -> Option<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    let mut rest = uri;
    let mut tpl = template;
    while !tpl.is_empty() {
        if let Some(after_brace) = tpl.strip_prefix('{') {
            let close = after_brace.find('}')?;
            let name = &after_brace[..close];
            tpl = &after_brace[close + 1..];
            // The value runs to the next literal character of the template (or `/`, or the end).
            let stop = tpl.chars().next();
            let end = rest
                .char_indices()
                .find(|(_, c)| Some(*c) == stop || *c == '/')
                .map_or(rest.len(), |(i, _)| i);
            if end == 0 {
                return None;
            }
            vars.insert(name.to_owned(), rest[..end].to_owned());
            rest = &rest[end..];
        } else {
            let literal_end = tpl.find('{').unwrap_or(tpl.len());
            rest = rest.strip_prefix(&tpl[..literal_end])?;
            tpl = &tpl[literal_end..];
        }
    }
    rest.is_empty().then_some(vars)
}

#[cfg(test)]
mod tests {
    use super::match_template;

    #[test]
    fn matches_level_one_templates() {
        let vars = match_template("test://template/{id}/data", "test://template/42/data").unwrap();
        assert_eq!(vars["id"], "42");
        assert!(match_template("test://template/{id}/data", "test://template//data").is_none());
        assert!(match_template("test://template/{id}/data", "test://template/4/2/data").is_none());
        assert!(match_template("test://template/{id}/data", "test://template/42/datum").is_none());
        let vars = match_template("db://{table}/{row}", "db://users/7").unwrap();
        assert_eq!(
            (vars["table"].as_str(), vars["row"].as_str()),
            ("users", "7")
        );
    }
}
