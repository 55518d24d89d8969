//! Answering for a dead replica: a reader of a reply stream written by another node checks,
//! while the stream is quiet, that the writer's heartbeat is still fresh. When it is not, the
//! request can never finish, and the reader ends the stream with a JSON-RPC error, so that the
//! client gets an answer within a bounded time instead of waiting for ever.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;

use super::Shared;
use crate::host::{HostError, ReadFrom, StoredEvent, StreamEvent};
use crate::ids::{NodeId, SessionId, StreamId};
use crate::jsonrpc::{self, RequestId};

/// Wraps `events` so that a quiet stream whose writer died gets its final error.
pub(crate) fn watch(
    shared: Arc<Shared>,
    session: SessionId,
    stream: StreamId,
    writer: NodeId,
    events: BoxStream<'static, Result<StoredEvent, HostError>>,
) -> BoxStream<'static, Result<StoredEvent, HostError>> {
    let state = Watch {
        target: Target {
            shared,
            session,
            stream,
            writer,
        },
        events,
        answered: false,
    };
    futures::stream::unfold(state, Watch::next).boxed()
}

struct Watch {
    target: Target,
    events: BoxStream<'static, Result<StoredEvent, HostError>>,
    /// The error was appended (by us or another reader): only wait for it now.
    answered: bool,
}

impl Watch {
    async fn next(mut self) -> Option<(Result<StoredEvent, HostError>, Self)> {
        loop {
            let interval = self.target.shared.config.liveness_check_interval;
            tokio::select! {
                event = self.events.next() => return event.map(|event| (event, self)),
                () = tokio::time::sleep(interval), if !self.answered => {
                    if let Ok(false) = self.target.shared.host.node_alive(&self.target.writer).await {
                        self.answered = self.target.abandon().await;
                    }
                }
            }
        }
    }
}

/// The stream being watched.
struct Target {
    shared: Arc<Shared>,
    session: SessionId,
    stream: StreamId,
    writer: NodeId,
}

impl Target {
    /// Appends the error response; true when the stream is now ended (by us or anyone).
    async fn abandon(&self) -> bool {
        let Some(request_id) = self.request_id().await else {
            return false;
        };
        let error = jsonrpc::rpc_error(
            jsonrpc::INTERNAL_ERROR,
            format!(
                "request abandoned: the server replica running it ({}) stopped before it finished",
                self.writer
            ),
        );
        let response = jsonrpc::encode_error(Some(&request_id), &error);
        match self
            .shared
            .host
            .append(
                &self.session,
                &self.stream,
                StreamEvent::Last(response.into()),
            )
            .await
        {
            Ok(_) => {
                super::metrics::request_abandoned();
                tracing::info!(node = %self.writer, "answered for a request whose replica died");
                true
            }
            // Another reader answered first.
            Err(HostError::StreamEnded) => true,
            Err(error) => {
                tracing::debug!(%error, "could not answer for a dead replica");
                false
            }
        }
    }

    /// The request id, from the stream's first event.
    async fn request_id(&self) -> Option<RequestId> {
        let mut from_start = self
            .shared
            .host
            .subscribe(&self.session, &self.stream, ReadFrom::After(0))
            .await
            .ok()?;
        let first = tokio::time::timeout(
            self.shared.config.liveness_check_interval,
            from_start.events.next(),
        )
        .await;
        match first {
            Ok(Some(Ok(StoredEvent {
                event: StreamEvent::Request(id),
                ..
            }))) => serde_json::from_str(&id).ok(),
            _ => None,
        }
    }
}
