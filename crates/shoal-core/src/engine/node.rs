//! What one node does for the others: the loop over its inbox and the broadcasts, cancellation
//! of the handlers it runs, and delivery of broadcast notifications to the standalone streams
//! whose connections it holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::pending::node_of;
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

/// The standalone streams whose client connection this node holds, with a count per session
/// (a connection and its replacement may overlap for a moment).
#[derive(Default)]
pub(crate) struct LocalStreams(Arc<Mutex<HashMap<SessionId, (StreamId, usize)>>>);

impl LocalStreams {
    pub(crate) fn connect(&self, session: SessionId, stream: StreamId) -> ConnectedGuard {
        lock(&self.0)
            .entry(session.clone())
            .or_insert((stream, 0))
            .1 += 1;
        ConnectedGuard {
            streams: Arc::downgrade(&self.0),
            session,
        }
    }

    fn snapshot(&self) -> Vec<(SessionId, StreamId)> {
        lock(&self.0)
            .iter()
            .map(|(session, (stream, _))| (session.clone(), stream.clone()))
            .collect()
    }
}

pub(crate) struct ConnectedGuard {
    streams: Weak<Mutex<HashMap<SessionId, (StreamId, usize)>>>,
    session: SessionId,
}

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        if let Some(streams) = self.streams.upgrade() {
            let mut streams = lock(&streams);
            if let Some(entry) = streams.get_mut(&self.session) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    streams.remove(&self.session);
                }
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
    if node == *shared.host.node_id() {
        if !shared.pending.complete(session, &response.id, outcome) {
            tracing::debug!(id = %response.id, "answer nobody waits for");
        }
        return Ok(());
    }
    shared
        .host
        .send_to_node(
            &node,
            NodeEvent::ClientResponse {
                session: session.clone(),
                id: response.id,
                outcome,
            },
        )
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
    match event {
        NodeEvent::ClientResponse {
            session,
            id,
            outcome,
        } => {
            shared.pending.complete(&session, &id, outcome);
        }
        NodeEvent::Cancel {
            session,
            request_id,
        } => {
            shared.running.cancel(&session, &request_id);
        }
        NodeEvent::Broadcast(broadcast) => deliver_broadcast(shared, broadcast).await,
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
        Broadcast::SessionClosed(_) => return,
    };
    let message: Arc<str> = match &params {
        Some(params) => jsonrpc::encode_notification(method, params),
        None => jsonrpc::encode_notification(method, &json!({})),
    }
    .into();
    for (session, stream) in shared.local_streams.snapshot() {
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
