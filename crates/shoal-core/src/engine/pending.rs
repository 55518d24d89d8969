//! Server→client requests awaiting the client's answer on this node.
//!
//! Ids are strings `<node>.<n>`: the node part lets any replica route the answer here. Waiters
//! are keyed by (session, id), so a client cannot answer another session's request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::oneshot;

use crate::ids::{NodeId, SessionId};
use crate::jsonrpc::RequestId;

/// The client's answer: `result`, or the `error` object.
pub(crate) type Answer = Result<Value, Value>;

/// An answer as handed to its waiter, with the `traceparent` of the span that received it.
#[derive(Debug, PartialEq)]
pub(crate) struct Delivered {
    pub(crate) answer: Answer,
    pub(crate) trace_context: Option<String>,
}

type Key = (SessionId, RequestId);

pub(crate) struct Pending {
    node: NodeId,
    next: AtomicU64,
    waiters: Arc<Mutex<HashMap<Key, oneshot::Sender<Delivered>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pending {
    pub(crate) fn new(node: NodeId) -> Self {
        Pending {
            node,
            next: AtomicU64::new(1),
            waiters: Arc::default(),
        }
    }

    /// A fresh id and the receiver of its answer.
    pub(crate) fn register(
        &self,
        session: &SessionId,
    ) -> (RequestId, oneshot::Receiver<Delivered>) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = RequestId::String(format!("{}.{n}", self.node).into());
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert((session.clone(), id.clone()), tx);
        (id, rx)
    }

    /// Removes the waiter when the handler stops waiting, however it stops.
    pub(crate) fn guard(&self, session: SessionId, id: RequestId) -> PendingGuard {
        PendingGuard {
            waiters: self.waiters.clone(),
            key: Some((session, id)),
        }
    }

    /// Hands an answer to its waiter; false when nobody waits (late, duplicate or forged).
    pub(crate) fn complete(
        &self,
        session: &SessionId,
        id: &RequestId,
        answer: Answer,
        trace_context: Option<String>,
    ) -> bool {
        let waiter = lock(&self.waiters).remove(&(session.clone(), id.clone()));
        waiter.is_some_and(|tx| {
            tx.send(Delivered {
                answer,
                trace_context,
            })
            .is_ok()
        })
    }
}

/// The node a server→client request id names, if it is one of ours.
pub(crate) fn node_of(id: &RequestId) -> Option<NodeId> {
    match id {
        RequestId::String(s) => s.rsplit_once('.').map(|(node, _)| NodeId::new(node)),
        RequestId::Number(_) => None,
    }
}

pub(crate) struct PendingGuard {
    waiters: Arc<Mutex<HashMap<Key, oneshot::Sender<Delivered>>>>,
    key: Option<Key>,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.waiters).remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_reach_their_waiter_only() {
        let pending = Pending::new(NodeId::new("n1"));
        let (a, b) = (SessionId::random(), SessionId::random());
        let (id, rx) = pending.register(&a);
        assert_eq!(node_of(&id), Some(NodeId::new("n1")));
        assert!(
            !pending.complete(&b, &id, Ok(Value::Null), None),
            "another session cannot answer"
        );
        assert!(pending.complete(&a, &id, Ok(Value::Bool(true)), None));
        assert_eq!(rx.await.unwrap().answer, Ok(Value::Bool(true)));
        assert!(
            !pending.complete(&a, &id, Ok(Value::Null), None),
            "an id is answered once"
        );
    }

    #[test]
    fn guard_forgets_abandoned_waiters() {
        let pending = Pending::new(NodeId::new("n1"));
        let session = SessionId::random();
        let (id, _rx) = pending.register(&session);
        drop(pending.guard(session.clone(), id.clone()));
        assert!(!pending.complete(&session, &id, Ok(Value::Null), None));
    }
}
