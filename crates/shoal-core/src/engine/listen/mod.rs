//! `subscriptions/listen` (2026-07-28): a POST whose SSE reply stays open and carries the list
//! changes and resource updates the client opted in to.
//!
//! A change raised on any replica reaches every replica through the host's node bus (the same
//! broadcast that feeds the session era's GET streams: memory and Redis alike); each node hands
//! it to its local listen streams through one in-process channel, so a replica holding any
//! number of listen streams opens no connection for them. Each stream filters what it was asked
//! for and stamps its subscription id (the listen request's id). Delivery is at most once: a
//! stream broken meanwhile is listened again by its client, and misses what came in between.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::era::SUBSCRIPTION_ID;
use crate::handler::Handlers;
use crate::host::Broadcast;
use crate::jsonrpc::{self, INVALID_PARAMS, Request, RequestId, RpcError};

/// Changes a slow listen stream may fall behind by before it skips some (and is told that its
/// lists may have changed).
const BACKLOG: usize = 1024;

/// This node's listen streams' share of the broadcasts.
#[derive(Debug)]
pub(crate) struct Listeners {
    changes: broadcast::Sender<Broadcast>,
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            changes: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Listeners {
    /// Hands a broadcast to every listen stream of this node (none: nothing to do).
    pub(crate) fn publish(&self, change: &Broadcast) {
        if self.changes.receiver_count() > 0 {
            let _ = self.changes.send(change.clone());
        }
    }
}

/// What a stream asked for, as far as the server honours it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
    uris: BTreeSet<String>,
}

impl Filter {
    /// The `notifications` filter of a listen request, minus what this server cannot send.
    fn parse(params: Option<&Map<String, Value>>, handlers: &Handlers) -> Result<Filter, RpcError> {
        let invalid = |message: &str| jsonrpc::rpc_error(INVALID_PARAMS, message);
        let Some(Value::Object(wanted)) = params.and_then(|p| p.get("notifications")) else {
            return Err(invalid(
                "subscriptions/listen needs params.notifications, an object naming what to receive",
            ));
        };
        let flag = |name: &str| -> Result<bool, RpcError> {
            match wanted.get(name) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(on)) => Ok(*on),
                Some(_) => Err(invalid(&format!("notifications.{name} must be a boolean"))),
            }
        };
        let uris = match wanted.get("resourceSubscriptions") {
            None | Some(Value::Null) => BTreeSet::new(),
            Some(Value::Array(uris)) => uris
                .iter()
                .map(|uri| uri.as_str().map(str::to_owned))
                .collect::<Option<BTreeSet<_>>>()
                .ok_or_else(|| {
                    invalid("notifications.resourceSubscriptions must list URIs (strings)")
                })?,
            Some(_) => {
                return Err(invalid(
                    "notifications.resourceSubscriptions must list URIs (strings)",
                ));
            }
        };
        let has_resources = !handlers.resources.is_empty();
        Ok(Filter {
            tools: flag("toolsListChanged")? && !handlers.tools.is_empty(),
            prompts: flag("promptsListChanged")? && !handlers.prompts.is_empty(),
            resources: flag("resourcesListChanged")? && has_resources,
            uris: if has_resources { uris } else { BTreeSet::new() },
        })
    }

    /// The acknowledged filter, as the client sent it.
    fn to_json(&self) -> Value {
        let mut honoured = Map::new();
        for (name, on) in [
            ("toolsListChanged", self.tools),
            ("promptsListChanged", self.prompts),
            ("resourcesListChanged", self.resources),
        ] {
            if on {
                honoured.insert(name.into(), Value::Bool(true));
            }
        }
        if !self.uris.is_empty() {
            honoured.insert("resourceSubscriptions".into(), json!(self.uris));
        }
        Value::Object(honoured)
    }

    /// The notification `change` is for this stream, if it asked for it.
    fn admits<'c>(&self, change: &'c Broadcast) -> Option<(&'static str, Option<&'c str>)> {
        match change {
            Broadcast::ToolsListChanged if self.tools => {
                Some(("notifications/tools/list_changed", None))
            }
            Broadcast::PromptsListChanged if self.prompts => {
                Some(("notifications/prompts/list_changed", None))
            }
            Broadcast::ResourcesListChanged if self.resources => {
                Some(("notifications/resources/list_changed", None))
            }
            Broadcast::ResourceUpdated { uri } if self.uris.contains(uri) => {
                Some(("notifications/resources/updated", Some(uri)))
            }
            _ => None,
        }
    }
}

/// One open `subscriptions/listen`: the acknowledgement, then every change it asked for, until
/// the client closes it (drop it) or the server ends it ([`ListenStream::end`]).
#[derive(Debug)]
pub struct ListenStream {
    id: RequestId,
    filter: Filter,
    ack: Option<String>,
    changes: broadcast::Receiver<Broadcast>,
    /// What a fallen-behind stream still owes its client.
    owed: Vec<String>,
}

impl ListenStream {
    /// Opens a stream for `request`, or says what is wrong with its filter.
    pub(crate) fn open(
        listeners: &Listeners,
        handlers: &Handlers,
        request: &Request,
    ) -> Result<ListenStream, RpcError> {
        let filter = Filter::parse(request.params.as_ref(), handlers)?;
        let id = request.id.clone();
        // Subscribed before the acknowledgement is sent: nothing raised after the client reads
        // it is missed.
        let changes = listeners.changes.subscribe();
        let ack = jsonrpc::encode_notification(
            "notifications/subscriptions/acknowledged",
            &json!({
                "_meta": { SUBSCRIPTION_ID: id },
                "notifications": filter.to_json(),
            }),
        );
        Ok(ListenStream {
            id,
            filter,
            ack: Some(ack),
            changes,
            owed: Vec::new(),
        })
    }

    /// The subscription id: the listen request's id.
    pub fn id(&self) -> &RequestId {
        &self.id
    }

    /// The next message: the acknowledgement first, then each change the stream asked for.
    /// `None` once the node's engine is gone.
    pub async fn next(&mut self) -> Option<String> {
        if let Some(ack) = self.ack.take() {
            return Some(ack);
        }
        loop {
            if let Some(owed) = self.owed.pop() {
                return Some(owed);
            }
            match self.changes.recv().await {
                Ok(change) => {
                    if let Some(message) = self.message(&change) {
                        return Some(message);
                    }
                }
                // Fell behind: the skipped changes are unknown, so every list it watches may
                // have changed, and every resource it watches may have been updated.
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "a listen stream fell behind");
                    self.owed = self.everything_watched();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The messages already received and not yet taken, without waiting: what a stream that
    /// is about to end still owes its client.
    pub fn ready(&mut self) -> Vec<String> {
        let mut ready: Vec<String> = self.ack.take().into_iter().collect();
        ready.extend(self.owed.drain(..).rev());
        loop {
            match self.changes.try_recv() {
                Ok(change) => ready.extend(self.message(&change)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    ready.extend(self.everything_watched().into_iter().rev());
                }
                Err(_) => return ready,
            }
        }
    }

    /// The response that ends the subscription gracefully (server shutdown, say).
    pub fn end(&self) -> String {
        jsonrpc::encode_result(
            &self.id,
            &json!({ "resultType": "complete", "_meta": { SUBSCRIPTION_ID: self.id } }),
        )
    }

    fn message(&self, change: &Broadcast) -> Option<String> {
        let (method, uri) = self.filter.admits(change)?;
        let mut params = json!({ "_meta": { SUBSCRIPTION_ID: self.id } });
        if let Some(uri) = uri {
            params["uri"] = json!(uri);
        }
        Some(jsonrpc::encode_notification(method, &params))
    }

    fn everything_watched(&self) -> Vec<String> {
        let mut changes = vec![
            Broadcast::ToolsListChanged,
            Broadcast::PromptsListChanged,
            Broadcast::ResourcesListChanged,
        ];
        changes.extend(
            self.filter
                .uris
                .iter()
                .map(|uri| Broadcast::ResourceUpdated { uri: uri.clone() }),
        );
        changes
            .iter()
            .rev()
            .filter_map(|change| self.message(change))
            .collect()
    }
}

#[cfg(test)]
mod tests;
