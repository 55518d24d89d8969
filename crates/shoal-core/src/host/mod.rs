//! The `SessionHost` contract: where everything kept between two requests lives.
//!
//! The contract has four parts, each a trait: [`SessionStore`] (session records),
//! [`StreamLog`] (each stream's ordered log), [`NodeBus`] (node ids, liveness, messages between
//! nodes' engines) and [`KeyValue`] (an expiring key-value store for state that belongs to no
//! session). [`SessionHost`] is all four at once; the engine and the transport talk only to it,
//! and code that needs one part (auth keeping codes in the key-value store) takes that part.
//!
//! The in-memory host ([`MemoryHost`]) serves a single replica; the Redis host (crate
//! `shoal-redis`) implements the same semantics across replicas. Both build their subscriptions
//! with [`follow`], the reading loop they share, from a [`LogSource`] of their own. `suite`
//! (feature `test-suite`) is the test suite every host must pass.
//!
//! # Semantics every host keeps
//!
//! - A session record is visible to every later call on any node as soon as `create_session`
//!   returns; `delete_session` (or expiry) is seen by the very next call.
//! - Each stream has one ordered log. `append` returns the event's sequence number (1, 2, …);
//!   `subscribe` yields every event after a position, then live ones, in order, with no gap and
//!   no duplicate, and ends after a [`StreamEvent::End`] or when the session goes away.
//! - A stream belongs to one session: asking for it under another session is `UnknownStream`.
//! - Logs are bounded: resuming from a position that was trimmed is `EventExpired`.
//! - Nothing is appended after an event that ends a stream (`Last`, `End`): such an append is
//!   `StreamEnded`, so that of two replicas finishing one stream exactly one wins.
//! - A principal holds at most the `max_per_principal` given to `create_session` live sessions,
//!   counted across every node; deleting a session or its expiry frees its slot.
//! - Nodes prove they live with a heartbeat the host keeps; `node_alive` tells whether another
//!   node still does, so that a stream whose handler died can be answered for.
//! - `send_to_node` and `broadcast` are at-most-once wake-ups and control messages; nothing a
//!   client must receive travels only through them.
//! - Every key-value entry expires; an expired entry is absent. Each key-value operation is
//!   atomic on its key across nodes (`take` hands a value to exactly one caller), and keys of
//!   different namespaces never collide, with each other or with anything else the host keeps.

mod kv;
mod memory;
mod reader;
#[cfg(any(test, feature = "test-suite"))]
pub mod suite;

use std::sync::Arc;

use crate::jsonrpc::RequestId;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Cause;
use crate::ids::{NodeId, SessionId, StreamId};
use crate::session::{LogLevel, SessionRecord};

pub use kv::{KeyValue, KvKey, KvNamespace, MAX_TTL, MIN_TTL, clamp_ttl};
pub use memory::{MemoryHost, MemoryHostConfig};
pub use reader::{LogSource, follow};

/// Default idle timeout of a session, in every host.
pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// Default maximum lifetime of a session, however busy, in every host.
pub const DEFAULT_MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// Default number of events kept per stream, in every host.
pub const DEFAULT_MAX_EVENTS_PER_STREAM: usize = 1024;
/// Default age after which a stream's events are trimmed, in every host.
pub const DEFAULT_EVENT_RETENTION: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// A shared, type-erased host.
pub type SharedHost = Arc<dyn SessionHost>;

/// One entry of a stream's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamEvent {
    /// The id of the request whose reply this stream carries (JSON). The first event of every
    /// reply stream; never sent to the client. Lets any replica answer for a dead one.
    Request(Arc<str>),
    /// A serialized JSON-RPC message for the client.
    Message(Arc<str>),
    /// The final message (the response); nothing follows it.
    Last(Arc<str>),
    /// The handler asked to close the client's connection (SEP-1699 polling): the reader
    /// sends this event's id with `retry` and closes; the client resumes after it.
    Disconnect,
    /// The stream is complete without a final message (the request was cancelled).
    End,
}

impl StreamEvent {
    /// Whether nothing may follow this event.
    pub fn ends_stream(&self) -> bool {
        matches!(self, StreamEvent::Last(_) | StreamEvent::End)
    }
}

/// An event read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the stream, from 1.
    pub seq: u64,
    /// What was appended.
    pub event: StreamEvent,
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// Every event after this position (0: the whole stream).
    After(u64),
    /// Only events appended from now on.
    Tail,
}

/// A live read of one stream.
pub struct Subscription {
    /// The position the subscription starts after (for a priming event id).
    pub after: u64,
    /// The events, in order.
    pub events: BoxStream<'static, Result<StoredEvent, HostError>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// A change to a session record, applied atomically by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionUpdate {
    /// `logging/setLevel`.
    LogLevel(LogLevel),
    /// `resources/subscribe`.
    Subscribe(String),
    /// `resources/unsubscribe`.
    Unsubscribe(String),
}

/// A message for the engine of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NodeEvent {
    /// The client answered a server→client request that a handler on this node awaits.
    ClientResponse {
        /// The session the answer came on.
        session: SessionId,
        /// The server's request id.
        id: RequestId,
        /// The `result`, or the `error` object, as the client sent it.
        outcome: Result<Value, Value>,
        /// The W3C `traceparent` of the span that received the answer, so that the waiting
        /// handler's trace links to it (absent in messages of older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace_context: Option<String>,
    },
    /// The client cancelled one of its requests (sent to every node: only one runs it).
    Cancel {
        /// The session.
        session: SessionId,
        /// The client's request id.
        request_id: RequestId,
    },
    /// Something that concerns many sessions changed.
    Broadcast(Broadcast),
}

/// A change that concerns many sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Broadcast {
    /// `notifications/tools/list_changed`.
    ToolsListChanged,
    /// `notifications/resources/list_changed`.
    ResourcesListChanged,
    /// `notifications/prompts/list_changed`.
    PromptsListChanged,
    /// `notifications/resources/updated` for sessions subscribed to `uri`.
    ResourceUpdated {
        /// The resource that changed.
        uri: String,
    },
    /// The session was deleted or expired: close its streams.
    SessionClosed(SessionId),
    /// An operator refused this principal, or lifted its refusal: forget what was read of it.
    PrincipalChanged(String),
}

/// What can go wrong in a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The session does not exist (never did, expired, or deleted).
    #[error("session not found")]
    SessionNotFound,
    /// The stream is not one of this session's.
    #[error("unknown stream")]
    UnknownStream,
    /// The position asked for is no longer retained.
    #[error("event no longer retained")]
    EventExpired,
    /// The position asked for was never written.
    #[error("event not yet written")]
    EventFromTheFuture,
    /// The stream already ended: nothing can be appended (the first final message wins).
    #[error("stream already ended")]
    StreamEnded,
    /// The session's principal already holds the maximum number of live sessions (see
    /// [`SessionStore::create_session`]); nothing was created.
    #[error("the principal holds the maximum number of sessions")]
    PrincipalAtLimit,
    /// The backing store is unreachable or failed.
    #[error("session host unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// Where sessions, stream logs, node inboxes, broadcasts and expiring key-value entries live:
/// every part of the host contract at once.
///
/// Implemented for every type that implements the four parts ([`SessionStore`],
/// [`StreamLog`], [`NodeBus`], [`KeyValue`]); a host implements those, never this. Code that
/// needs one part takes it alone (`&dyn KeyValue`); the engine and the transport take a
/// [`SharedHost`].
pub trait SessionHost: SessionStore + StreamLog + NodeBus + KeyValue {}

impl<T: SessionStore + StreamLog + NodeBus + KeyValue> SessionHost for T {}

/// Session records: created, read, changed and deleted atomically, visible to every node.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session, unless its principal already holds `max_per_principal` live
    /// sessions on any node (`PrincipalAtLimit`). The limit is checked and the session counted
    /// atomically, so concurrent creates on many nodes cannot overshoot it. A deleted or expired
    /// session frees its slot. `0`, or a record without a principal, is not limited.
    async fn create_session(
        &self,
        record: &SessionRecord,
        max_per_principal: usize,
    ) -> Result<(), HostError>;

    /// Reads a session and refreshes its idle timer; `None` when it does not exist.
    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, HostError>;

    /// Applies a change to a session; `SessionNotFound` when it is gone.
    async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<(), HostError>;

    /// Deletes a session and its streams; returns whether it existed. Every node is told.
    async fn delete_session(&self, id: &SessionId) -> Result<bool, HostError>;

    /// The sessions of `principal` on every node, for an operator who ends them all. A session
    /// that expired while idle may still be listed until the host notices: deleting it is
    /// harmless.
    async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionId>, HostError>;
}

/// The ordered, bounded, resumable log of each stream of a session.
#[async_trait::async_trait]
pub trait StreamLog: Send + Sync + 'static {
    /// Appends to a stream's log, creating it on first use; returns the new event's position.
    async fn append(
        &self,
        session: &SessionId,
        stream: &StreamId,
        event: StreamEvent,
    ) -> Result<u64, HostError>;

    /// Reads a stream from a position, then follows it live.
    async fn subscribe(
        &self,
        session: &SessionId,
        stream: &StreamId,
        from: ReadFrom,
    ) -> Result<Subscription, HostError>;
}

/// The nodes sharing the host: who this one is, which others live, and at-most-once messages
/// between their engines. Also whether the host as a whole answers.
#[async_trait::async_trait]
pub trait NodeBus: Send + Sync + 'static {
    /// This process's node id.
    fn node_id(&self) -> &NodeId;

    /// Delivers a message to one node's engine.
    async fn send_to_node(&self, node: &NodeId, event: NodeEvent) -> Result<(), HostError>;

    /// Delivers a message to every node's engine (this one included).
    async fn broadcast(&self, event: NodeEvent) -> Result<(), HostError>;

    /// The messages for this node. Called once by the engine.
    fn node_events(&self) -> BoxStream<'static, NodeEvent>;

    /// Whether `node` is alive (its heartbeat is recent). This node is always alive.
    async fn node_alive(&self, node: &NodeId) -> Result<bool, HostError>;

    /// Whether the backing store answers and this node is connected to the others (for
    /// `/readyz`). Here rather than in a part of its own: a node that cannot reach the bus is
    /// not ready, and every host has exactly one bus.
    async fn ping(&self) -> Result<(), HostError>;
}
