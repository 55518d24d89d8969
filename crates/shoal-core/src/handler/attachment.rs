//! What an engine lends its providers when it starts: the host's shared key-value store, the
//! [`Notifier`], and a hook into the broadcasts this node receives.
//!
//! Most providers ignore it (the provider traits' `attach` does nothing by default). A provider
//! whose answers depend on state shared by every replica, and cached here, uses it: a
//! [`LiveSet`](super::LiveSet) keeps which entries are visible in the key-value store and drops
//! its cached copy when the matching `list_changed` broadcast arrives.

use std::sync::{Arc, Mutex};

use super::Notifier;
use crate::host::{Broadcast, KeyValue, SharedHost};

/// A callback run by the node loop for every broadcast, before it reaches any stream.
pub(crate) type BroadcastHook = Arc<dyn Fn(&Broadcast) + Send + Sync>;

/// Handed to every provider's `attach` by [`Engine::new`](crate::engine::Engine::new), once.
pub struct Attachment {
    host: SharedHost,
    hooks: Mutex<Vec<BroadcastHook>>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("node", self.host.node_id())
            .finish_non_exhaustive()
    }
}

impl Attachment {
    pub(crate) fn new(host: SharedHost) -> Self {
        Attachment {
            host,
            hooks: Mutex::new(Vec::new()),
        }
    }

    /// The host's expiring key-value store, shared by every replica.
    pub fn key_value(&self) -> Arc<dyn KeyValue> {
        self.host.clone()
    }

    /// Announces list changes and resource updates to every session on every replica.
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.host.clone())
    }

    /// Runs `hook` for every broadcast this node receives (its own included), in the node
    /// loop, before the broadcast is delivered to any stream held here: state the hook drops
    /// is gone by the time a client of this node reads the notification. Keep it short and
    /// non-blocking: it delays every delivery.
    pub fn on_broadcast(&self, hook: impl Fn(&Broadcast) + Send + Sync + 'static) {
        self.hooks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::new(hook));
    }

    /// The hooks registered, for the node loop.
    pub(crate) fn into_hooks(self) -> Vec<BroadcastHook> {
        self.hooks
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
