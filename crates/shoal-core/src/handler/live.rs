//! Live sets: tool, resource and prompt providers whose entries can be shown and hidden while
//! serving, the same on every replica. [`LiveSet`] says how.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::{
    Attachment, HandlerError, Notifier, PromptProvider, RequestContext, ResourceProvider,
    ToolError, ToolProvider, match_template,
};
use crate::host::{Broadcast, HostError, KeyValue, KvKey, KvNamespace, MAX_TTL};
use crate::model::{
    CallToolResult, GetPromptResult, JsonObject, Prompt, Resource, ResourceContents,
    ResourceTemplate, Tool,
};
use crate::session::Principal;

/// Where live sets keep their shared entries; the id is the set's name.
const LIVE_SETS: KvNamespace = KvNamespace::new("live-set");

/// How long a replica trusts its cached copy of a live set's entry without hearing a change:
/// the longest a lost broadcast can leave it stale.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// Compare-and-swap attempts before a change gives up: only a storm of concurrent changes to
/// one set exhausts them.
const MAX_SWAP_ATTEMPTS: usize = 64;

/// Why a live set could not be read or changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The set is not served yet: no engine attached it (it is attached by `Engine::new`).
    #[error("the live set is not attached to an engine")]
    Detached,
    /// The host failed. A change may or may not be stored; if it was, every replica sees it
    /// within the refresh interval.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The shared entry is not one a live set wrote.
    #[error("the shared entry of live set {name:?} is not valid: {detail}")]
    Corrupt {
        /// The set's name.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Other changes to the set won every attempt to swap its entry.
    #[error("live set {0:?} changed under every attempt to update it")]
    Contended(String),
}

/// Which lists a set belongs to, hence which `list_changed` it raises and hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tools,
    Resources,
    Prompts,
}

impl Kind {
    fn is_announced_by(self, broadcast: &Broadcast) -> bool {
        matches!(
            (self, broadcast),
            (Kind::Tools, Broadcast::ToolsListChanged)
                | (Kind::Resources, Broadcast::ResourcesListChanged)
                | (Kind::Prompts, Broadcast::PromptsListChanged)
        )
    }

    async fn announce(self, notifier: &Notifier) -> Result<(), HostError> {
        match self {
            Kind::Tools => notifier.tools_list_changed().await,
            Kind::Resources => notifier.resources_list_changed().await,
            Kind::Prompts => notifier.prompts_list_changed().await,
        }
    }
}

/// The shared entry of one live set, as stored.
#[derive(Serialize, Deserialize)]
struct Entry {
    hidden: BTreeSet<String>,
}

/// A tool, resource or prompt provider whose entries can be shown and hidden while serving, on
/// every replica at once.
///
/// The code of every entry is registered in every replica's process, as at start; which entries
/// are visible is shared state: one entry per live set in the host's key-value store (Redis on
/// the Redis host), named by the user. A change ([`LiveSet::show`], [`LiveSet::hide`],
/// [`LiveSet::set_hidden`]) swaps that entry atomically (a compare-and-swap loop, so that two
/// replicas changing one set at once both count), then raises the matching `list_changed`
/// through the [`Notifier`](super::Notifier): every session's GET stream and every
/// `subscriptions/listen` stream, on every replica, hears it.
///
/// Each replica caches the entry, so that lists and calls do not read the host. The cache is
/// dropped when the matching `list_changed` broadcast reaches the replica, in the node loop and
/// before the notification is delivered to any stream there (see
/// [`Attachment::on_broadcast`]): a client that lists again on hearing it gets the new list
/// from the replica it heard it from. Broadcasts are at-most-once, so the cache is also read
/// again after [`DEFAULT_REFRESH_INTERVAL`] (see [`LiveSet::refresh_after`]): a lost broadcast
/// leaves a replica stale for that long at most.
///
/// Lists leave hidden entries out; a call, get or read of a hidden one is not found, as if it
/// did not exist.
///
/// ```
/// use shoal_core::handler::{Handlers, LiveSet, ToolError, ToolSet, typed_tool};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct NoArgs {}
///
/// let tools = ToolSet::new().with(typed_tool("ping", "Answers pong", |_ctx, NoArgs {}| async {
///     Ok::<_, ToolError>("pong".to_owned())
/// }));
/// // Shown by default; `live.hide("ping").await` takes it away from every replica's clients.
/// let live = LiveSet::tools("ops-tools", tools);
/// let handlers = Handlers::new().tools(live.clone());
/// # let _ = handlers;
/// ```
///
/// Build one with [`LiveSet::tools`], [`LiveSet::resources`] or [`LiveSet::prompts`], hand a
/// clone to [`Handlers`](super::Handlers), and keep one to change it. Every replica must build
/// its live sets with the same names and code. One engine per live set: the first engine that
/// attaches it keeps it.
pub struct LiveSet<P> {
    inner: Arc<Inner<P>>,
}

impl<P> Clone for LiveSet<P> {
    fn clone(&self) -> Self {
        LiveSet {
            inner: self.inner.clone(),
        }
    }
}

impl<P> std::fmt::Debug for LiveSet<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSet")
            .field("name", &self.inner.key.id())
            .field("kind", &self.inner.kind)
            .finish_non_exhaustive()
    }
}

struct Inner<P> {
    key: KvKey,
    kind: Kind,
    provider: P,
    /// The host's store and notifier, from the engine that attached the set.
    attached: OnceLock<(Arc<dyn KeyValue>, Notifier)>,
    state: Mutex<State>,
}

struct State {
    /// What is hidden while the shared entry does not exist (every replica has the same).
    initially_hidden: BTreeSet<String>,
    refresh_after: Duration,
    /// Bumped by every invalidation, so that a read that raced with one does not cache what
    /// it read before it.
    generation: u64,
    cached: Option<(Arc<BTreeSet<String>>, Instant)>,
}

// === impl LiveSet ===

impl<P: ToolProvider> LiveSet<P> {
    /// A live tool set named `name` (its key in the host's store: unique among the live sets
    /// of one deployment) over `provider`; hiding raises `notifications/tools/list_changed`.
    pub fn tools(name: impl Into<String>, provider: P) -> Self {
        Self::new(name.into(), Kind::Tools, provider)
    }
}

impl<P: ResourceProvider> LiveSet<P> {
    /// A live resource set over `provider`: entries are resource URIs and template strings
    /// (a hidden template hides every URI it matches); hiding raises
    /// `notifications/resources/list_changed`.
    pub fn resources(name: impl Into<String>, provider: P) -> Self {
        Self::new(name.into(), Kind::Resources, provider)
    }
}

impl<P: PromptProvider> LiveSet<P> {
    /// A live prompt set over `provider`; hiding raises `notifications/prompts/list_changed`.
    pub fn prompts(name: impl Into<String>, provider: P) -> Self {
        Self::new(name.into(), Kind::Prompts, provider)
    }
}

impl<P> LiveSet<P> {
    fn new(name: String, kind: Kind, provider: P) -> Self {
        LiveSet {
            inner: Arc::new(Inner {
                key: KvKey::new(LIVE_SETS, name),
                kind,
                provider,
                attached: OnceLock::new(),
                state: Mutex::new(State {
                    initially_hidden: BTreeSet::new(),
                    refresh_after: DEFAULT_REFRESH_INTERVAL,
                    generation: 0,
                    cached: None,
                }),
            }),
        }
    }

    /// Hides `names` until the set is first changed (every replica must say the same).
    pub fn initially_hidden<I, S>(self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        {
            let mut state = self.inner.state();
            state.initially_hidden = names.into_iter().map(Into::into).collect();
            state.cached = None;
        }
        self
    }

    /// How long a cached copy is trusted without a broadcast (default
    /// [`DEFAULT_REFRESH_INTERVAL`]).
    pub fn refresh_after(self, interval: Duration) -> Self {
        self.inner.state().refresh_after = interval;
        self
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        self.inner.key.id()
    }

    /// The provider it wraps.
    pub fn provider(&self) -> &P {
        &self.inner.provider
    }

    /// The names (URIs and templates, for resources) hidden now, as this replica knows them.
    ///
    /// # Errors
    ///
    /// [`LiveError::Detached`] before an engine attached the set; a host failure or an invalid
    /// entry when the cache must be read again.
    pub async fn hidden(&self) -> Result<BTreeSet<String>, LiveError> {
        Ok(self.inner.hidden().await?.as_ref().clone())
    }

    /// Shows `name` on every replica; whether it was hidden. A change raises the set's
    /// `list_changed`.
    ///
    /// # Errors
    ///
    /// As [`LiveSet::set_hidden`].
    pub async fn show(&self, name: &str) -> Result<bool, LiveError> {
        self.inner
            .update(|hidden| {
                hidden.remove(name);
            })
            .await
    }

    /// Hides `name` on every replica; whether it was shown. A change raises the set's
    /// `list_changed`.
    ///
    /// # Errors
    ///
    /// As [`LiveSet::set_hidden`].
    pub async fn hide(&self, name: &str) -> Result<bool, LiveError> {
        self.inner
            .update(|hidden| {
                hidden.insert(name.to_owned());
            })
            .await
    }

    /// Hides exactly `names` and shows everything else, on every replica; whether anything
    /// changed. A change raises the set's `list_changed`.
    ///
    /// # Errors
    ///
    /// [`LiveError::Detached`] before an engine attached the set; a host failure (the change
    /// may be stored but not announced); an invalid stored entry; [`LiveError::Contended`].
    pub async fn set_hidden<I, S>(&self, names: I) -> Result<bool, LiveError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        self.inner.update(|hidden| hidden.clone_from(&names)).await
    }

    /// Registers the set with the engine that attaches it: its host, and the hook that drops
    /// the cache when the set's `list_changed` is heard.
    fn attach_to(&self, attachment: &Attachment)
    where
        P: Send + Sync + 'static,
    {
        if self
            .inner
            .attached
            .set((attachment.key_value(), attachment.notifier()))
            .is_err()
        {
            tracing::warn!(
                live_set = self.name(),
                "live set attached by a second engine; it keeps the first engine's host"
            );
            return;
        }
        let inner = self.inner.clone();
        attachment.on_broadcast(move |broadcast| {
            if inner.kind.is_announced_by(broadcast) {
                inner.invalidate();
            }
        });
    }
}

// === impl Inner ===

impl<P> Inner<P> {
    fn state(&self) -> MutexGuard<'_, State> {
        // No await while it is held; a panic under it leaves consistent fields.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn attached(&self) -> Result<&(Arc<dyn KeyValue>, Notifier), LiveError> {
        self.attached.get().ok_or(LiveError::Detached)
    }

    fn invalidate(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.cached = None;
    }

    fn decode(&self, stored: Option<&[u8]>) -> Result<BTreeSet<String>, LiveError> {
        match stored {
            None => Ok(self.state().initially_hidden.clone()),
            Some(bytes) => serde_json::from_slice::<Entry>(bytes)
                .map(|entry| entry.hidden)
                .map_err(|error| LiveError::Corrupt {
                    name: self.key.id().to_owned(),
                    detail: error.to_string(),
                }),
        }
    }

    /// The hidden names: the cached copy while it is fresh, else the shared entry.
    async fn hidden(&self) -> Result<Arc<BTreeSet<String>>, LiveError> {
        let (store, _) = self.attached()?;
        let generation = {
            let state = self.state();
            if let Some((hidden, at)) = &state.cached
                && at.elapsed() < state.refresh_after
            {
                return Ok(hidden.clone());
            }
            state.generation
        };
        let stored = store.get(&self.key).await?;
        let hidden = Arc::new(self.decode(stored.as_deref())?);
        let mut state = self.state();
        if state.generation == generation {
            state.cached = Some((hidden.clone(), Instant::now()));
        }
        Ok(hidden)
    }

    async fn update(&self, change: impl Fn(&mut BTreeSet<String>)) -> Result<bool, LiveError> {
        let (store, notifier) = self.attached()?;
        for _ in 0..MAX_SWAP_ATTEMPTS {
            let stored = store.get(&self.key).await?;
            let before = self.decode(stored.as_deref())?;
            let mut hidden = before.clone();
            change(&mut hidden);
            if hidden == before {
                return Ok(false);
            }
            let encoded =
                serde_json::to_vec(&Entry { hidden }).map_err(|error| LiveError::Corrupt {
                    name: self.key.id().to_owned(),
                    detail: error.to_string(),
                })?;
            let swapped = store
                .compare_and_swap(&self.key, stored.as_deref(), Some(encoded.into()), MAX_TTL)
                .await?;
            if swapped {
                // This replica reads the new entry at once; the others on hearing the change.
                self.invalidate();
                self.kind.announce(notifier).await?;
                return Ok(true);
            }
        }
        Err(LiveError::Contended(self.key.id().to_owned()))
    }

    async fn is_hidden(&self, name: &str) -> Result<bool, LiveError> {
        Ok(self.hidden().await?.contains(name))
    }
}

fn internal(error: LiveError) -> HandlerError {
    HandlerError::Internal(error.to_string())
}

/// Whether `uri` is hidden: by name, or by a hidden template that matches it.
fn uri_hidden(hidden: &BTreeSet<String>, uri: &str) -> bool {
    hidden.contains(uri)
        || hidden
            .iter()
            .any(|entry| entry.contains('{') && match_template(entry, uri).is_some())
}

// === impl ToolProvider for LiveSet ===

#[async_trait::async_trait]
impl<P: ToolProvider> ToolProvider for LiveSet<P> {
    async fn list(&self, principal: Option<&Principal>) -> Result<Vec<Tool>, HandlerError> {
        let hidden = self.inner.hidden().await.map_err(internal)?;
        let mut tools = self.inner.provider.list(principal).await?;
        tools.retain(|tool| !hidden.contains(&tool.name));
        Ok(tools)
    }

    async fn call(
        &self,
        ctx: RequestContext,
        name: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        match self.inner.is_hidden(name).await {
            Ok(true) => Err(ToolError::NotFound),
            Ok(false) => self.inner.provider.call(ctx, name, arguments).await,
            Err(error) => Err(ToolError::Internal(error.to_string())),
        }
    }

    fn attach(&self, attachment: &Attachment) {
        self.attach_to(attachment);
        self.inner.provider.attach(attachment);
    }
}

// === impl ResourceProvider for LiveSet ===

#[async_trait::async_trait]
impl<P: ResourceProvider> ResourceProvider for LiveSet<P> {
    async fn list(&self, principal: Option<&Principal>) -> Result<Vec<Resource>, HandlerError> {
        let hidden = self.inner.hidden().await.map_err(internal)?;
        let mut resources = self.inner.provider.list(principal).await?;
        resources.retain(|resource| !uri_hidden(&hidden, &resource.uri));
        Ok(resources)
    }

    async fn templates(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Vec<ResourceTemplate>, HandlerError> {
        let hidden = self.inner.hidden().await.map_err(internal)?;
        let mut templates = self.inner.provider.templates(principal).await?;
        templates.retain(|template| !hidden.contains(&template.uri_template));
        Ok(templates)
    }

    async fn read(
        &self,
        ctx: RequestContext,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, HandlerError> {
        let hidden = self.inner.hidden().await.map_err(internal)?;
        if uri_hidden(&hidden, uri) {
            return Err(HandlerError::NotFound);
        }
        self.inner.provider.read(ctx, uri).await
    }

    fn attach(&self, attachment: &Attachment) {
        self.attach_to(attachment);
        self.inner.provider.attach(attachment);
    }
}

// === impl PromptProvider for LiveSet ===

#[async_trait::async_trait]
impl<P: PromptProvider> PromptProvider for LiveSet<P> {
    async fn list(&self, principal: Option<&Principal>) -> Result<Vec<Prompt>, HandlerError> {
        let hidden = self.inner.hidden().await.map_err(internal)?;
        let mut prompts = self.inner.provider.list(principal).await?;
        prompts.retain(|prompt| !hidden.contains(&prompt.name));
        Ok(prompts)
    }

    async fn get(
        &self,
        ctx: RequestContext,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<GetPromptResult, HandlerError> {
        if self.inner.is_hidden(name).await.map_err(internal)? {
            return Err(HandlerError::NotFound);
        }
        self.inner.provider.get(ctx, name, arguments).await
    }

    fn attach(&self, attachment: &Attachment) {
        self.attach_to(attachment);
        self.inner.provider.attach(attachment);
    }
}

#[cfg(test)]
mod tests;
