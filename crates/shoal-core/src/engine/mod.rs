//! Lifecycle and dispatch: the engine turns a parsed message plus a session into results,
//! notifications and server→client requests, and keeps the ordered log of every streamed reply.
//!
//! The transport calls [`Engine`]; the engine calls the handlers and the
//! [`SessionHost`](crate::host::SessionHost).
//! A request whose handler sends nothing before its result is answered as plain JSON and touches
//! no log (the fast path). As soon as a handler sends something first (progress, a log message,
//! a server→client request), the reply becomes a stream: the engine mints a stream id and a pump
//! task appends every message, in order, to that stream's log, from which any replica can serve
//! and resume it.
//!
//! About 800 lines: the engine's API, one method per protocol entry point, and the shared state
//! they use; its settings, dispatch, listen streams, multi round-trip state, the operator's
//! handle, liveness, nodes, pagination, pending requests and tracing are submodules.

pub mod admin;
mod config;
mod dispatch;
mod listen;
mod liveness;
pub mod metrics;
pub(crate) mod mrtr;
mod node;
mod pagination;
mod pending;
pub mod trace;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codes;
use crate::error::Cause;
use crate::handler::{Attachment, BroadcastHook, Handlers, Notifier, RequestContext};
use crate::host::{HostError, ReadFrom, SharedHost, StreamEvent, Subscription};
use crate::ids::{EventId, SessionId, StreamId};
use crate::jsonrpc::{self, Notification, Request, RequestId, Response, RpcError};
use crate::session::{Principal, SessionRecord};
use crate::version;

pub use config::{DEFAULT_MAX_SESSIONS_PER_PRINCIPAL, DEFAULT_REQUEST_STATE_TTL, EngineConfig};
pub use listen::ListenStream;
use listen::Listeners;
use node::{LocalStreams, Running};
use pending::Pending;

/// How the transport should deliver a request's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The complete response, for a plain JSON body.
    Json(String),
    /// The reply is (being) written to this stream's log: serve it as SSE.
    Stream(StreamId),
}

/// How the transport should deliver a stateless-era request's reply.
#[derive(Debug)]
pub enum ModernReply {
    /// The complete response, for a plain JSON body.
    Json(String),
    /// A response that refuses the request for want of a client capability: JSON, 400.
    Refused(String),
    /// `subscriptions/listen`: an SSE stream that stays open, from its acknowledgement on.
    Listen(ListenStream),
    /// The handler sent something before its result: serve these messages as SSE, in order,
    /// as they come. The reply is not kept anywhere: a broken stream loses it, as the
    /// revision says, and cancels the handler.
    Live(LiveReply),
}

/// The messages of a stateless-era reply, straight from its handler: notifications (progress,
/// log messages), then the response. Dropping it cancels the handler.
pub struct LiveReply {
    first: Option<String>,
    rx: mpsc::Receiver<Outbound>,
    done: bool,
    _cancel_on_drop: tokio_util::sync::DropGuard,
    _in_flight: tokio_util::task::task_tracker::TaskTrackerToken,
}

impl std::fmt::Debug for LiveReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveReply")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl LiveReply {
    /// The next message; `None` after the response, or when the request was cancelled.
    pub async fn next(&mut self) -> Option<String> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        while !self.done {
            match self.rx.recv().await {
                Some(Outbound::Message(message)) => return Some(message),
                Some(Outbound::Final(response) | Outbound::Refused(response)) => {
                    self.done = true;
                    return Some(response);
                }
                // No resumption in this era: nothing to close for.
                Some(Outbound::Disconnect) => {}
                Some(Outbound::Abandoned) | None => self.done = true,
            }
        }
        None
    }
}

/// Why a request could not be tied to a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Unknown, expired, deleted, or bound to another principal.
    #[error("session not found")]
    NotFound,
    /// The host is unreachable.
    #[error(transparent)]
    Host(HostError),
}

/// What a handler task hands to the reply: messages, then the final response.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A notification or server→client request, before the response.
    Message(String),
    /// Close the client's connection now; it will resume with `Last-Event-ID`.
    Disconnect,
    /// The response; nothing follows.
    Final(String),
    /// A stateless-era response that is a refusal with an HTTP status of its own (a missing
    /// client capability: 400); nothing follows.
    Refused(String),
    /// The request was cancelled: no response will come.
    Abandoned,
}

/// The sending half of a request's reply.
#[derive(Clone)]
pub(crate) struct Outbox(mpsc::Sender<Outbound>);

impl Outbox {
    pub(crate) async fn message(&self, message: String) -> Result<(), ()> {
        self.0
            .send(Outbound::Message(message))
            .await
            .map_err(|_| ())
    }

    pub(crate) async fn disconnect(&self) -> Result<(), ()> {
        self.0.send(Outbound::Disconnect).await.map_err(|_| ())
    }
}

/// State shared by the engine, its handler tasks and its node loop.
pub(crate) struct Shared {
    pub(crate) host: SharedHost,
    pub(crate) handlers: Handlers,
    pub(crate) config: EngineConfig,
    pub(crate) pending: Pending,
    pub(crate) running: Running,
    /// Requests whose reply is not completely written yet (JSON returned, or stream ended).
    pub(crate) in_flight: TaskTracker,
    pub(crate) local_streams: LocalStreams,
    /// This node's `subscriptions/listen` streams.
    pub(crate) listeners: Listeners,
    /// What this node read of principals' refusals.
    pub(crate) refusals: admin::RefusalCache,
    /// What providers asked to run for every broadcast (see [`Attachment::on_broadcast`]).
    pub(crate) broadcast_hooks: Vec<BroadcastHook>,
}

/// The protocol engine of one node.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// An engine over `host` serving `handlers`. Attaches every provider (see
    /// [`Attachment`]), then spawns the node loop, so call it inside a Tokio runtime; the loop
    /// ends when the last clone of the engine is dropped.
    pub fn new(host: SharedHost, handlers: Handlers, config: EngineConfig) -> Self {
        let attachment = Attachment::new(host.clone());
        for provider in &handlers.tools {
            provider.attach(&attachment);
        }
        for provider in &handlers.resources {
            provider.attach(&attachment);
        }
        for provider in &handlers.prompts {
            provider.attach(&attachment);
        }
        let shared = Arc::new(Shared {
            broadcast_hooks: attachment.into_hooks(),
            pending: Pending::new(host.node_id().clone()),
            host,
            handlers,
            config,
            running: Running::default(),
            in_flight: TaskTracker::new(),
            local_streams: LocalStreams::default(),
            listeners: Listeners::default(),
            refusals: admin::RefusalCache::default(),
        });
        node::spawn_loop(&shared);
        Engine { shared }
    }

    /// The session host.
    pub fn host(&self) -> &SharedHost {
        &self.shared.host
    }

    /// Announces list and resource changes to every session, on every replica.
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.shared.host.clone())
    }

    /// The operator's handle: end sessions, refuse principals, on every replica.
    pub fn admin(&self) -> admin::Admin {
        admin::Admin::new(self.shared.clone())
    }

    /// Handles `initialize`: negotiates the revision and creates the session.
    /// On failure, returns the JSON-RPC error to answer with.
    pub async fn initialize(
        &self,
        principal: Option<&Principal>,
        request: &Request,
    ) -> Result<(SessionRecord, String), InitializeError> {
        let started = tokio::time::Instant::now();
        let span =
            trace::operation_span("initialize", request, self.shared.host.node_id().as_str());
        let result = tracing::Instrument::instrument(
            self.initialize_session(principal, request),
            span.clone(),
        )
        .await;
        if let Ok((record, _)) = &result {
            trace::record_session(&span, Some(&record.id), &record.protocol_version);
        }
        let mut operation = metrics::Operation::default();
        match &result {
            Ok((record, _)) => {
                operation.protocol_version = Some(metrics::version_label(&record.protocol_version));
                metrics::session_initialized();
            }
            Err(InitializeError::Invalid(error)) => {
                operation.error = Some(metrics::error_code_label(error.code));
            }
            Err(InitializeError::Host(_)) => {
                operation.error = Some(metrics::error_code_label(jsonrpc::INTERNAL_ERROR));
            }
            Err(InitializeError::TooManySessions { .. }) => {
                // The code the transport answers it with.
                operation.error = Some(metrics::error_code_label(codes::session::LIMIT_EXCEEDED));
            }
        }
        if let (Some(code), Err(error)) = (&operation.error, &result) {
            let message: &dyn std::fmt::Display = match error {
                InitializeError::Invalid(error) => &error.message,
                error => error,
            };
            trace::record_failure(&span, trace::Failure::Rpc { code, message });
        }
        operation.record("initialize", started.elapsed().as_secs_f64());
        result
    }

    async fn initialize_session(
        &self,
        principal: Option<&Principal>,
        request: &Request,
    ) -> Result<(SessionRecord, String), InitializeError> {
        let params = request.params.clone().unwrap_or_default();
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        let capabilities = params.get("capabilities").filter(|c| c.is_object());
        let client_info = params
            .get("clientInfo")
            .filter(|c| c.get("name").is_some_and(Value::is_string));
        let (Some(requested), Some(capabilities), Some(client_info)) =
            (requested, capabilities, client_info)
        else {
            return Err(InitializeError::Invalid(jsonrpc::rpc_error(
                jsonrpc::INVALID_PARAMS,
                "initialize needs protocolVersion, capabilities and clientInfo.name",
            )));
        };
        let negotiated = version::negotiate(requested);
        let record = SessionRecord::new(
            principal.map(|p| p.id.clone()),
            negotiated,
            capabilities.clone(),
            client_info.clone(),
        );
        let config = &self.shared.config;
        let max = config.max_sessions_per_principal;
        self.shared
            .host
            .create_session(&record, max)
            .await
            .map_err(|error| match error {
                HostError::PrincipalAtLimit => InitializeError::TooManySessions { max },
                error => InitializeError::Host(error),
            })?;
        let mut result = json!({
            "protocolVersion": negotiated,
            "capabilities": dispatch::server_capabilities(&self.shared.handlers),
            "serverInfo": config.server_info,
        });
        if let Some(instructions) = &config.instructions {
            result["instructions"] = json!(instructions);
        }
        Ok((record, jsonrpc::encode_result(&request.id, &result)))
    }

    /// Answers a request that came without a session: only `ping` is allowed before initialize.
    pub fn sessionless(&self, request: &Request) -> Option<String> {
        (request.method == "ping").then(|| jsonrpc::encode_result(&request.id, &json!({})))
    }

    /// Finds the session `id` for `principal`. A session bound to another principal is
    /// reported as not found: its existence is not revealed.
    pub async fn resolve_session(
        &self,
        id: &str,
        principal: Option<&Principal>,
    ) -> Result<SessionRecord, SessionError> {
        let id: SessionId = id.parse().map_err(|_| SessionError::NotFound)?;
        let record = self
            .shared
            .host
            .session(&id)
            .await
            .map_err(SessionError::Host)?
            .ok_or(SessionError::NotFound)?;
        if record.principal.as_deref() != principal.map(|p| p.id.as_str()) {
            return Err(SessionError::NotFound);
        }
        Ok(record)
    }

    /// Requests whose reply is not completely written yet.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.len()
    }

    /// Waits until every request in flight has its reply written (for a graceful drain; bound it
    /// with a timeout). Requests that arrive meanwhile are waited for too.
    pub async fn wait_idle(&self) {
        // A closed tracker's `wait` ends when its last token is dropped; closing does not stop
        // new tokens, so the engine keeps serving while it drains.
        self.shared.in_flight.close();
        self.shared.in_flight.wait().await;
    }

    /// Runs a request of an established session. A handler that sends nothing before its result
    /// is answered as [`Reply::Json`] (the fast path: no stream log); otherwise the reply is a
    /// stream.
    pub async fn handle_request(
        &self,
        session: impl Into<Arc<SessionRecord>>,
        principal: Option<Principal>,
        request: Request,
    ) -> Result<Reply, HostError> {
        let in_flight = self.shared.in_flight.token();
        let (tx, mut rx) = mpsc::channel(64);
        let outbox = Outbox(tx);
        let cancel = CancellationToken::new();
        let cancel_on_host_failure = cancel.clone();
        let session: Arc<SessionRecord> = session.into();
        let running_key = (session.id.clone(), request.id.clone());
        let request_id = request.id.clone();
        self.shared
            .running
            .insert(running_key.clone(), cancel.clone());
        let ctx = RequestContext::new(
            self.shared.clone(),
            session.clone(),
            principal,
            request.id.clone(),
            request.progress_token(),
            cancel.clone(),
            outbox.clone(),
        );
        let running = self.shared.clone();
        let answered_cancel = cancel.clone();
        self.spawn_handler(
            ctx,
            request,
            cancel.clone(),
            outbox,
            // A cancelled request gets no response, even when its handler noticed the
            // cancellation and returned something in the same instant.
            move |response, _| {
                if answered_cancel.is_cancelled() {
                    Outbound::Abandoned
                } else {
                    Outbound::Final(response)
                }
            },
            move || {
                running.running.remove(&running_key);
            },
        );

        let first = rx.recv().await.unwrap_or(Outbound::Abandoned);
        if let Outbound::Final(response) = &first {
            return Ok(Reply::Json(response.clone()));
        }
        let stream = StreamId::for_node(self.shared.host.node_id());
        let host = self.shared.host.clone();
        // Log the request id and the first message before answering, so that the stream exists
        // when read and any replica can answer for this one if it dies.
        host.append(
            &session.id,
            &stream,
            StreamEvent::Request(
                serde_json::to_string(&request_id)
                    .unwrap_or_default()
                    .into(),
            ),
        )
        .await?;
        let done = append(&host, &session.id, &stream, first).await?;
        if !done {
            let (session_id, stream) = (session.id.clone(), stream.clone());
            tokio::spawn(async move {
                let _in_flight = in_flight;
                while let Some(outbound) = rx.recv().await {
                    match append(&host, &session_id, &stream, outbound).await {
                        Ok(false) => continue,
                        Ok(true) => return,
                        Err(HostError::Unavailable(detail)) => {
                            // The failed message may or may not be stored, so nothing after it
                            // can be written in order: stop the handler and end the stream with
                            // an error once the host answers again, rather than leave every
                            // reader of the stream waiting for an answer that never comes.
                            cancel_on_host_failure.cancel();
                            abandon_after_host_failure(
                                &host,
                                &session_id,
                                &stream,
                                &request_id,
                                &detail,
                            )
                            .await;
                            return;
                        }
                        Err(error) => {
                            tracing::debug!(%error, "stream closed while a handler was writing");
                            return;
                        }
                    }
                }
                // The handler task died without a final message (a panic): say so.
                let error = jsonrpc::rpc_error(jsonrpc::INTERNAL_ERROR, "internal error");
                let _ = append(
                    &host,
                    &session_id,
                    &stream,
                    Outbound::Final(jsonrpc::encode_error(None, &error)),
                )
                .await;
            });
        }
        Ok(Reply::Stream(stream))
    }

    /// Runs `request`'s handler on a task of its own, the operation's span a child of the
    /// request's: its messages go to `outbox`, then `finish`'s message for its answer (the
    /// response and its error code), or `Abandoned` when `cancel` fires first. `after` runs once
    /// the handler ended, either way.
    fn spawn_handler(
        &self,
        ctx: RequestContext,
        request: Request,
        cancel: CancellationToken,
        outbox: Outbox,
        finish: impl FnOnce(String, Option<i32>) -> Outbound + Send + 'static,
        after: impl FnOnce() + Send + 'static,
    ) {
        let shared = self.shared.clone();
        let handler = async move {
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => Outbound::Abandoned,
                (response, code) = dispatch::answer(&shared, ctx, &request) => finish(response, code),
            };
            after();
            let _ = outbox.0.send(outcome).await;
        };
        tokio::spawn(tracing::Instrument::instrument(
            handler,
            tracing::Span::current(),
        ));
    }

    /// Runs a stateless-era request: what a session record holds comes from its `_meta`, and
    /// nothing is stored. A handler that sends nothing before its result is answered as
    /// [`ModernReply::Json`]; otherwise its messages are handed over live.
    pub async fn handle_modern(
        &self,
        meta: crate::era::ModernMeta,
        principal: Option<Principal>,
        request: Request,
    ) -> ModernReply {
        if request.method == "subscriptions/listen" {
            // Long-lived: not a request in flight, which a drain would wait for.
            return match ListenStream::open(&self.shared.listeners, &self.shared.handlers, &request)
            {
                Ok(stream) => ModernReply::Listen(stream),
                Err(error) => ModernReply::Json(jsonrpc::encode_error(Some(&request.id), &error)),
            };
        }
        let in_flight = self.shared.in_flight.token();
        let mut record = SessionRecord::new(
            principal.as_ref().map(|p| p.id.clone()),
            meta.version,
            meta.client_capabilities,
            meta.client_info,
        );
        record.log_level = meta.log_level;
        let (tx, mut rx) = mpsc::channel(64);
        let outbox = Outbox(tx);
        let cancel = CancellationToken::new();
        let ctx = RequestContext::new(
            self.shared.clone(),
            Arc::new(record),
            principal,
            request.id.clone(),
            request.progress_token(),
            cancel.clone(),
            outbox.clone(),
        );
        self.spawn_handler(
            ctx,
            request,
            cancel.clone(),
            outbox,
            |response, code| {
                if code == Some(codes::modern::MISSING_CAPABILITY) {
                    Outbound::Refused(response)
                } else {
                    Outbound::Final(response)
                }
            },
            || {},
        );
        match rx.recv().await {
            Some(Outbound::Final(response)) => ModernReply::Json(response),
            Some(Outbound::Refused(response)) => ModernReply::Refused(response),
            first => {
                let first = match first {
                    Some(Outbound::Message(message)) => Some(message),
                    _ => None,
                };
                ModernReply::Live(LiveReply {
                    first,
                    rx,
                    done: false,
                    _cancel_on_drop: cancel.drop_guard(),
                    _in_flight: in_flight,
                })
            }
        }
    }

    /// The arguments of tool `name` that a stateless-era client mirrors into `Mcp-Param-*`
    /// headers, as `principal` sees the tool list (empty for an unknown tool: the call then
    /// fails on its own).
    pub async fn header_params(
        &self,
        principal: Option<&Principal>,
        name: &str,
    ) -> Vec<crate::era::HeaderParam> {
        for provider in &self.shared.handlers.tools {
            let Ok(tools) = provider.list(principal).await else {
                continue;
            };
            if let Some(tool) = tools.iter().find(|tool| tool.name == name) {
                return crate::era::HeaderParam::of_schema(&tool.input_schema);
            }
        }
        Vec::new()
    }

    /// Handles a notification from the client.
    pub async fn handle_notification(
        &self,
        session: &SessionRecord,
        notification: Notification,
    ) -> Result<(), HostError> {
        match notification.method.as_str() {
            "notifications/cancelled" => {
                let request_id = notification
                    .params
                    .as_ref()
                    .and_then(|p| p.get("requestId"))
                    .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
                match request_id {
                    Some(request_id) => node::cancel(&self.shared, &session.id, request_id).await,
                    None => Ok(()),
                }
            }
            // initialized, roots/list_changed, progress: nothing to do.
            _ => Ok(()),
        }
    }

    /// Routes the client's answer to a server→client request to the node whose handler waits.
    pub async fn handle_response(
        &self,
        session: &SessionRecord,
        response: Response,
    ) -> Result<(), HostError> {
        node::route_response(&self.shared, &session.id, response).await
    }

    /// Opens the session's standalone stream (GET without `Last-Event-ID`): only new events.
    pub async fn open_standalone(
        &self,
        session: &SessionRecord,
    ) -> Result<Subscription, HostError> {
        let subscription = self
            .shared
            .host
            .subscribe(&session.id, &session.standalone_stream, ReadFrom::Tail)
            .await?;
        Ok(self.track(session, &session.standalone_stream, subscription))
    }

    /// Serves the stream `last_event` names, after that event (seq 0: the whole stream). Only
    /// streams of `session` can be read; anything else is `UnknownStream`. A connection that
    /// reads a stream ends the previous connection to it.
    pub async fn resume(
        &self,
        session: &SessionRecord,
        last_event: &EventId,
    ) -> Result<Subscription, HostError> {
        let mut subscription = self
            .shared
            .host
            .subscribe(
                &session.id,
                &last_event.stream,
                ReadFrom::After(last_event.seq),
            )
            .await?;
        let writer = last_event
            .stream
            .writer()
            .filter(|w| w != self.shared.host.node_id());
        if let Some(writer) = writer {
            subscription.events = liveness::watch(
                self.shared.clone(),
                session.id.clone(),
                last_event.stream.clone(),
                writer,
                subscription.events,
            );
        }
        Ok(self.track(session, &last_event.stream, subscription))
    }

    fn track(
        &self,
        session: &SessionRecord,
        stream: &StreamId,
        subscription: Subscription,
    ) -> Subscription {
        let standalone = *stream == session.standalone_stream;
        let guard =
            self.shared
                .local_streams
                .connect(session.id.clone(), stream.clone(), standalone);
        let events = subscription
            .events
            .take_until(guard.ended().cancelled_owned())
            .map(move |event| {
                let _connected = &guard;
                event
            })
            .boxed();
        Subscription {
            after: subscription.after,
            events,
        }
    }

    /// Ends a session everywhere. A session this call deleted is counted and its lifetime
    /// observed (whole seconds: records keep their creation time in seconds).
    pub async fn delete_session(&self, session: &SessionRecord) -> Result<bool, HostError> {
        let deleted = self.shared.host.delete_session(&session.id).await?;
        if deleted {
            let lifetime = crate::session::unix_now().saturating_sub(session.created_at);
            metrics::session_deleted(lifetime);
        }
        Ok(deleted)
    }
}

/// Why `initialize` failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InitializeError {
    /// The params are wrong: answer with this error.
    #[error("{0}")]
    Invalid(RpcError),
    /// The host failed.
    #[error(transparent)]
    Host(HostError),
    /// The principal already holds [`EngineConfig::max_sessions_per_principal`] live sessions.
    #[error("too many sessions for this principal (max {max})")]
    TooManySessions {
        /// The configured limit.
        max: usize,
    },
}

/// How long the writer of a reply stream keeps trying to end it with an error after the host
/// failed under it (see [`abandon_after_host_failure`]), and how often.
const ABANDON_PATIENCE: Duration = Duration::from_secs(60);
const ABANDON_RETRY: Duration = Duration::from_millis(250);

/// Ends `stream` with a "request abandoned" error for `request_id`, retrying while the host is
/// unavailable (at most [`ABANDON_PATIENCE`]). Appending a final event is idempotent: a retry
/// of one that was stored after all is `StreamEnded`.
async fn abandon_after_host_failure(
    host: &SharedHost,
    session: &SessionId,
    stream: &StreamId,
    request_id: &RequestId,
    detail: &Cause,
) {
    tracing::warn!(%detail, "session host failed while a reply was written; abandoning the request");
    let error = jsonrpc::rpc_error(
        jsonrpc::INTERNAL_ERROR,
        "request abandoned: the session store failed while its reply was being written",
    );
    let response = jsonrpc::encode_error(Some(request_id), &error);
    let deadline = tokio::time::Instant::now() + ABANDON_PATIENCE;
    loop {
        let event = StreamEvent::Last(response.clone().into());
        match host.append(session, stream, event).await {
            Ok(_) => {
                metrics::request_abandoned();
                return;
            }
            Err(HostError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(ABANDON_RETRY).await;
            }
            Err(error) => {
                tracing::warn!(%error, "could not end a reply stream after a session host failure");
                return;
            }
        }
    }
}

/// Appends one outbound item; returns whether the stream is complete.
async fn append(
    host: &SharedHost,
    session: &SessionId,
    stream: &StreamId,
    outbound: Outbound,
) -> Result<bool, HostError> {
    match outbound {
        Outbound::Message(message) => {
            host.append(session, stream, StreamEvent::Message(message.into()))
                .await?;
            Ok(false)
        }
        Outbound::Disconnect => {
            host.append(session, stream, StreamEvent::Disconnect)
                .await?;
            Ok(false)
        }
        // Only stateless replies are refused; a stored stream ends with the response either way.
        Outbound::Final(response) | Outbound::Refused(response) => {
            host.append(session, stream, StreamEvent::Last(response.into()))
                .await?;
            Ok(true)
        }
        Outbound::Abandoned => {
            host.append(session, stream, StreamEvent::End).await?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests;
