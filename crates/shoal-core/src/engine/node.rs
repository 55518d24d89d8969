//! What one node does for the others: the loop over its inbox and the broadcasts, cancellation
//! of the handlers it runs, and delivery of broadcast notifications to the standalone streams
//! whose connections it holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use tracing::Instrument;

use super::Shared;
use super::metrics;
use super::pending::node_of;
use super::trace;
use crate::host::{Broadcast, HostError, NodeEvent, StreamEvent};
use crate::ids::{SessionId, StreamId};
use crate::jsonrpc::{self, RequestId, Response};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Cancellation tokens of the requests this node is running, keyed by (session, request id).
#[derive(Default)]
pub(crate) struct Running(Mutex<HashMap<(SessionId, RequestId), CancellationToken>>);

impl Running {
    pub(crate) fn insert(&self, key: (SessionId, RequestId), token: CancellationToken) {
        lock(&self.0).insert(key, token);
    }

    pub(crate) fn remove(&self, key: &(SessionId, RequestId)) {
        lock(&self.0).remove(key);
    }

    /// Cancels every request of a session that is gone.
    fn cancel_session(&self, session: &SessionId) {
        lock(&self.0).retain(|(owner, _), token| {
            if owner == session {
                token.cancel();
            }
            owner != session
        });
    }

    /// Cancels the request if it runs here; returns whether it did.
    fn cancel(&self, session: &SessionId, id: &RequestId) -> bool {
        match lock(&self.0).remove(&(session.clone(), id.clone())) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// The stream connections this node holds. One connection per stream: a new one (a client
/// that reconnected, or resumed a POST reply) takes over and the older one ends, so that no
/// message is sent on two connections.
#[derive(Default)]
pub(crate) struct LocalStreams {
    connections: Arc<Mutex<HashMap<(SessionId, StreamId), Connection>>>,
    next_id: std::sync::atomic::AtomicU64,
}

struct Connection {
    id: u64,
    ended: CancellationToken,
    standalone: bool,
}

impl LocalStreams {
    /// Registers a connection to `stream`, ending the previous one; the guard unregisters it.
    pub(crate) fn connect(
        &self,
        session: SessionId,
        stream: StreamId,
        standalone: bool,
    ) -> ConnectedGuard {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ended = CancellationToken::new();
        let key = (session, stream);
        let previous = lock(&self.connections).insert(
            key.clone(),
            Connection {
                id,
                ended: ended.clone(),
                standalone,
            },
        );
        if let Some(previous) = previous {
            previous.ended.cancel();
        }
        ConnectedGuard {
            connections: Arc::downgrade(&self.connections),
            key,
            id,
            ended,
        }
    }

    /// The standalone streams connected here.
    fn standalone(&self) -> Vec<(SessionId, StreamId)> {
        lock(&self.connections)
            .iter()
            .filter(|(_, c)| c.standalone)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Ends every connection of a session that is gone.
    fn close_session(&self, session: &SessionId) {
        lock(&self.connections).retain(|(owner, _), connection| {
            if owner == session {
                connection.ended.cancel();
            }
            owner != session
        });
    }
}

/// Keeps a connection registered while it lives.
pub(crate) struct ConnectedGuard {
    connections: Weak<Mutex<HashMap<(SessionId, StreamId), Connection>>>,
    key: (SessionId, StreamId),
    id: u64,
    ended: CancellationToken,
}

impl ConnectedGuard {
    /// Cancelled when another connection takes the stream over.
    pub(crate) fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }
}

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        if let Some(connections) = self.connections.upgrade() {
            let mut connections = lock(&connections);
            if connections.get(&self.key).is_some_and(|c| c.id == self.id) {
                connections.remove(&self.key);
            }
        }
    }
}

/// Cancels a client request wherever it runs.
pub(crate) async fn cancel(
    shared: &Shared,
    session: &SessionId,
    request_id: RequestId,
) -> Result<(), HostError> {
    if shared.running.cancel(session, &request_id) {
        return Ok(());
    }
    shared
        .host
        .broadcast(NodeEvent::Cancel {
            session: session.clone(),
            request_id,
        })
        .await
}

/// Hands the client's answer to the waiting handler, here or on the node its id names.
pub(crate) async fn route_response(
    shared: &Shared,
    session: &SessionId,
    response: Response,
) -> Result<(), HostError> {
    let outcome = response
        .outcome
        .map_err(|error| serde_json::to_value(error).unwrap_or_default());
    let Some(node) = node_of(&response.id) else {
        tracing::debug!(id = %response.id, "answer to a request this server never sent");
        return Ok(());
    };
    // The span of the answer's arrival; its context travels with the answer to the waiting
    // handler, which links its own trace to it.
    let span = tracing::info_span!(
        "mcp.client_response.route",
        mcp.session.id = trace::session_hash(session).as_str(),
        shoal.node = shared.host.node_id().as_str(),
        shoal.target_node = node.as_str(),
    );
    let trace_context = trace::propagator().and_then(|p| p.traceparent(&span));
    let _entered = span.enter();
    if node == *shared.host.node_id() {
        if !shared
            .pending
            .complete(session, &response.id, outcome, trace_context)
        {
            tracing::debug!(id = %response.id, "answer nobody waits for");
        }
        return Ok(());
    }
    drop(_entered);
    shared
        .host
        .send_to_node(
            &node,
            NodeEvent::ClientResponse {
                session: session.clone(),
                id: response.id,
                outcome,
                trace_context,
            },
        )
        .instrument(span)
        .await
}

/// Starts the loop that serves this node's inbox and broadcasts. It holds only a weak
/// reference, so it ends when the engine is dropped (or the host's event stream ends).
pub(crate) fn spawn_loop(shared: &Arc<Shared>) {
    let mut events = shared.host.node_events();
    let weak = Arc::downgrade(shared);
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let Some(shared) = weak.upgrade() else { return };
            handle_event(&shared, event).await;
        }
    });
}

async fn handle_event(shared: &Arc<Shared>, event: NodeEvent) {
    if let NodeEvent::Broadcast(broadcast) = &event {
        // Before any delivery: a provider that drops cached state here serves the new state
        // to a client that reacts to the notification.
        for hook in &shared.broadcast_hooks {
            hook(broadcast);
        }
    }
    match event {
        NodeEvent::ClientResponse {
            session,
            id,
            outcome,
            trace_context,
        } => {
            metrics::inbox_delivery("client_response");
            shared
                .pending
                .complete(&session, &id, outcome, trace_context);
        }
        NodeEvent::Cancel {
            session,
            request_id,
        } => {
            metrics::inbox_delivery("cancel");
            shared.running.cancel(&session, &request_id);
        }
        NodeEvent::Broadcast(Broadcast::SessionClosed(session)) => {
            metrics::inbox_delivery("broadcast");
            // Nobody can read what the session's handlers would still produce.
            shared.running.cancel_session(&session);
            shared.local_streams.close_session(&session);
        }
        NodeEvent::Broadcast(Broadcast::PrincipalChanged(principal)) => {
            metrics::inbox_delivery("broadcast");
            shared.refusals.forget(&principal);
        }
        NodeEvent::Broadcast(broadcast) => {
            metrics::inbox_delivery("broadcast");
            shared.listeners.publish(&broadcast);
            deliver_broadcast(shared, broadcast).await;
        }
    }
}

/// Appends a broadcast notification to each standalone stream connected here, so that it gets
/// an event id like everything else on the stream.
async fn deliver_broadcast(shared: &Arc<Shared>, broadcast: Broadcast) {
    let (method, params, uri) = match broadcast {
        Broadcast::ToolsListChanged => ("notifications/tools/list_changed", None, None),
        Broadcast::ResourcesListChanged => ("notifications/resources/list_changed", None, None),
        Broadcast::PromptsListChanged => ("notifications/prompts/list_changed", None, None),
        Broadcast::ResourceUpdated { uri } => (
            "notifications/resources/updated",
            Some(json!({ "uri": uri })),
            Some(uri),
        ),
        Broadcast::SessionClosed(_) | Broadcast::PrincipalChanged(_) => return,
    };
    let message: Arc<str> = match &params {
        Some(params) => jsonrpc::encode_notification(method, params),
        None => jsonrpc::encode_notification(method, &json!({})),
    }
    .into();
    for (session, stream) in shared.local_streams.standalone() {
        if let Some(uri) = &uri {
            match shared.host.session(&session).await {
                Ok(Some(record)) if record.subscriptions.contains(uri) => {}
                _ => continue,
            }
        }
        if let Err(error) = shared
            .host
            .append(&session, &stream, StreamEvent::Message(message.clone()))
            .await
        {
            tracing::debug!(%error, "could not deliver a broadcast notification");
        }
    }
}
