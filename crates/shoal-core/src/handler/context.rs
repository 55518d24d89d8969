//! The per-request context a handler receives.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::engine::mrtr::{InputRound, Lookup};
use crate::engine::{Outbox, Shared};
use crate::error::Cause;
use crate::handler::input::{Answer, Answers, InputRequest, Inputs};
use crate::host::{Broadcast, HostError, NodeEvent, SharedHost, StreamEvent};
use crate::ids::SessionId;
use crate::jsonrpc::{self, RequestId, RpcError};
use crate::model::{
    CreateMessageRequest, CreateMessageResult, ElicitRequest, ElicitResult, ListRootsResult,
};
use crate::session::{LogLevel, Principal, SessionRecord};

/// Why a server→client request got no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The client did not declare the capability the request needs.
    #[error("the client does not support {0}")]
    CapabilityMissing(&'static str),
    /// The client did not answer in time.
    #[error("the client did not answer within {0:?}")]
    Timeout(Duration),
    /// The request being handled was cancelled while waiting.
    #[error("the request was cancelled")]
    Cancelled,
    /// The client answered with an error.
    #[error("the client answered with an error: {0}")]
    Rejected(RpcError),
    /// The client's answer does not have the expected shape.
    #[error("the client's answer is malformed: {0}")]
    InvalidResponse(#[source] Cause),
    /// The request's stream is gone (the session was deleted).
    #[error("the session's stream is closed")]
    Closed,
    /// The request is of the stateless era (2026-07-28), which has no server→client requests,
    /// and of a method that cannot answer `input_required` (only `tools/call`, `prompts/get` and
    /// `resources/read` can).
    #[error("the 2026-07-28 revision has no server-to-client requests")]
    Stateless,
    /// Stateless era: the client has not answered yet. Return this error (or anything): the
    /// client gets `input_required`, answers, and the handler runs again and gets the answer.
    #[error("the client's answer comes with its retry of the request")]
    InputRequired,
    /// The session host could not take the message (Redis down, say).
    #[error("the session host is unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// What a handler knows and can do while it serves one request.
///
/// Cheap to clone; clones share the request's stream and cancellation.
#[derive(Clone)]
pub struct RequestContext {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    session: Arc<SessionRecord>,
    principal: Option<Principal>,
    request_id: RequestId,
    progress_token: Option<Value>,
    cancel: CancellationToken,
    out: Outbox,
    /// Stateless era, methods that may ask: the answers this run may use.
    input: std::sync::Mutex<Option<InputRound>>,
}

impl RequestContext {
    pub(crate) fn new(
        shared: Arc<Shared>,
        session: Arc<SessionRecord>,
        principal: Option<Principal>,
        request_id: RequestId,
        progress_token: Option<Value>,
        cancel: CancellationToken,
        out: Outbox,
    ) -> Self {
        RequestContext {
            inner: Arc::new(Inner {
                shared,
                session,
                principal,
                request_id,
                progress_token,
                cancel,
                out,
                input: std::sync::Mutex::new(None),
            }),
        }
    }

    /// The era of the request: the stateless one when its protocol version is (then the
    /// session id names no stored session, and there are no server→client requests).
    pub fn era(&self) -> crate::era::Era {
        if crate::version::is_modern(&self.inner.session.protocol_version) {
            crate::era::Era::Modern
        } else {
            crate::era::Era::Session
        }
    }

    /// The session id.
    pub fn session_id(&self) -> &SessionId {
        &self.inner.session.id
    }

    /// The negotiated protocol revision.
    pub fn protocol_version(&self) -> &str {
        &self.inner.session.protocol_version
    }

    /// The client's `clientInfo`.
    pub fn client_info(&self) -> &Value {
        &self.inner.session.client_info
    }

    /// The client's declared capabilities.
    pub fn client_capabilities(&self) -> &Value {
        &self.inner.session.client_capabilities
    }

    /// Who is calling, when auth is on.
    pub fn principal(&self) -> Option<&Principal> {
        self.inner.principal.as_ref()
    }

    /// The client's id for this request.
    pub fn request_id(&self) -> &RequestId {
        &self.inner.request_id
    }

    /// Cancelled when the client sends `notifications/cancelled` for this request.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Whether the client cancelled this request.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// The client's `progressToken`, if it sent one.
    pub fn progress_token(&self) -> Option<&Value> {
        self.inner.progress_token.as_ref()
    }

    /// Whether the client asked for progress (sent a `progressToken`).
    pub fn wants_progress(&self) -> bool {
        self.inner.progress_token.is_some()
    }

    /// Sends `notifications/progress` when the client asked for progress; otherwise nothing.
    pub async fn progress(
        &self,
        progress: f64,
        total: Option<f64>,
        message: Option<&str>,
    ) -> Result<(), PeerError> {
        let Some(token) = &self.inner.progress_token else {
            return Ok(());
        };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.notify("notifications/progress", &params).await
    }

    /// The minimum level the client asked for with `logging/setLevel` (or, in the stateless
    /// era, in the request's `_meta`), if it did.
    pub fn log_level(&self) -> Option<LogLevel> {
        self.inner.session.log_level
    }

    /// Sends `notifications/message` when `level` passes the session's `logging/setLevel`; in
    /// the stateless era only when the request's `_meta` set a level it passes.
    pub async fn log(
        &self,
        level: LogLevel,
        logger: Option<&str>,
        data: Value,
    ) -> Result<(), PeerError> {
        let wanted = match self.log_level() {
            Some(min) => level >= min,
            // The session era sends every level until `logging/setLevel`; the stateless era only
            // what a request's `_meta` asks for.
            None => self.era() == crate::era::Era::Session,
        };
        if !wanted {
            return Ok(());
        }
        let mut params = json!({ "level": level, "data": data });
        if let Some(logger) = logger {
            params["logger"] = json!(logger);
        }
        self.notify("notifications/message", &params).await
    }

    /// Sends a notification on this request's stream.
    pub async fn notify<P: Serialize>(&self, method: &str, params: &P) -> Result<(), PeerError> {
        self.inner
            .out
            .message(jsonrpc::encode_notification(method, params))
            .await
            .map_err(|_| PeerError::Closed)
    }

    /// Sends a notification on the session's standalone stream (the client's `GET`), not on
    /// this request's: for messages about the session rather than this call. Like every event it
    /// is logged, so a client that resumes the standalone stream with `Last-Event-ID` gets it;
    /// a client with no standalone stream open sees it only if it resumes one.
    pub async fn notify_session<P: Serialize>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<(), PeerError> {
        let session = &self.inner.session;
        let message: Arc<str> = jsonrpc::encode_notification(method, params).into();
        self.inner
            .shared
            .host
            .append(
                &session.id,
                &session.standalone_stream,
                StreamEvent::Message(message),
            )
            .await
            .map(|_| ())
            .map_err(|error| match error {
                HostError::Unavailable(reason) => PeerError::Unavailable(reason),
                _ => PeerError::Closed,
            })
    }

    /// Closes the client's connection to this request's stream (turning the reply into a
    /// stream if it was not one); the client reconnects with `Last-Event-ID` and gets everything
    /// sent after this point. Lets long calls release connections (SSE polling, SEP-1699).
    pub async fn close_sse_stream(&self) -> Result<(), PeerError> {
        self.inner
            .out
            .disconnect()
            .await
            .map_err(|_| PeerError::Closed)
    }

    /// Asks the user through the client (`elicitation/create`) and waits for the answer. In the
    /// stateless era the answer comes with the client's retry (see [`ask`](Self::ask)).
    pub async fn elicit(&self, request: ElicitRequest) -> Result<ElicitResult, PeerError> {
        match self
            .ask_one("elicitation", InputRequest::Elicit(request))
            .await?
        {
            Answer::Elicit(result) => Ok(result),
            _ => Err(PeerError::Closed),
        }
    }

    /// Asks the client's model (`sampling/createMessage`) and waits for the reply. In the
    /// stateless era the reply comes with the client's retry (see [`ask`](Self::ask)).
    pub async fn create_message(
        &self,
        request: CreateMessageRequest,
    ) -> Result<CreateMessageResult, PeerError> {
        match self
            .ask_one("sampling", InputRequest::Sample(request))
            .await?
        {
            Answer::Sample(result) => Ok(result),
            _ => Err(PeerError::Closed),
        }
    }

    /// Asks the client for its roots (`roots/list`). In the stateless era they come with the
    /// client's retry (see [`ask`](Self::ask)).
    pub async fn list_roots(&self) -> Result<ListRootsResult, PeerError> {
        match self.ask_one("roots", InputRequest::ListRoots).await? {
            Answer::Roots(result) => Ok(result),
            _ => Err(PeerError::Closed),
        }
    }

    /// One ask under a key made up from its kind and order (a replay makes the same).
    async fn ask_one(
        &self,
        kind: &'static str,
        request: InputRequest,
    ) -> Result<Answer, PeerError> {
        let key = match self.era() {
            crate::era::Era::Session => kind.to_owned(),
            crate::era::Era::Modern => self
                .with_input_round(|round| round.auto_key(kind))
                .unwrap_or_else(|| kind.to_owned()),
        };
        let mut answers = self.ask(Inputs::new().with(key.clone(), request)).await?;
        answers.remove(&key).ok_or(PeerError::Closed)
    }

    /// Asks the client for everything in `inputs`, each under its key, and returns the answers.
    ///
    /// Session era: one server→client request after the other on this request's stream, each
    /// awaited. Stateless era (2026-07-28): the answers the client's retry brings; when one is
    /// missing this returns [`PeerError::InputRequired`] and the run ends with `input_required`
    /// listing what is missing, whatever the handler returns; the handler then runs again from
    /// the start with the answers (so everything before the ask runs once per round). An answer
    /// that is not what was asked for ends the request with an invalid-params error. Methods other
    /// than `tools/call`, `prompts/get` and `resources/read` cannot ask in the stateless era
    /// ([`PeerError::Stateless`]).
    ///
    /// Every input needs its client capability ([`PeerError::CapabilityMissing`] otherwise, before
    /// anything is asked): check [`supports`](Self::supports) to ask only what the client can
    /// answer.
    pub async fn ask(&self, inputs: Inputs) -> Result<Answers, PeerError> {
        for (_, request) in &inputs.requests {
            self.require_capability(request.capability())?;
        }
        let mut answers = Answers::default();
        if self.era() == crate::era::Era::Session {
            for (key, request) in inputs.requests {
                let value: Value = self.request(request.method(), &request.params()).await?;
                let answer = request
                    .answer(value)
                    .map_err(|e| PeerError::InvalidResponse(Cause::new(e)))?;
                answers.answers.insert(key, answer);
            }
            return Ok(answers);
        }
        let outcome = self.with_input_round(|round| {
            let mut complete = true;
            for (key, request) in &inputs.requests {
                match round.answer(key, request) {
                    Lookup::Answered(answer) => {
                        answers.answers.insert(key.clone(), answer);
                    }
                    Lookup::Missing => complete = false,
                    Lookup::Malformed => {
                        return Err(PeerError::InvalidResponse(Cause::new(
                            std::io::Error::other("the client's answer is not what was asked for"),
                        )));
                    }
                }
            }
            if complete {
                Ok(())
            } else {
                Err(PeerError::InputRequired)
            }
        });
        match outcome {
            None => Err(PeerError::Stateless),
            Some(outcome) => outcome.map(|()| answers),
        }
    }

    /// Whether the client declared `capability` (`elicitation`, `sampling`, `roots`, ...): in the
    /// session era at `initialize`, in the stateless era in this request's `_meta`.
    pub fn supports(&self, capability: &str) -> bool {
        self.inner.session.client_supports(capability)
    }

    /// Stateless era: which round of a multi round-trip request this run is (1 for the first;
    /// a retry whose `requestState` the engine checked and spent is 2 or more). `None` in the
    /// session era and for methods that cannot ask.
    pub fn input_round(&self) -> Option<u32> {
        self.with_input_round(|round| round.number())
    }

    fn with_input_round<T>(&self, f: impl FnOnce(&mut InputRound) -> T) -> Option<T> {
        // A poisoned lock means a handler panicked mid-ask; the round is still consistent.
        let mut input = self
            .inner
            .input
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        input.as_mut().map(f)
    }

    /// Whether this run asked for input it does not have (or got a malformed answer): what it
    /// returns then is not its outcome.
    pub(crate) fn awaits_input(&self) -> bool {
        self.with_input_round(|round| round.awaits_input())
            .unwrap_or(false)
    }

    /// Gives this run the answers of its round (the engine, before the handler runs).
    pub(crate) fn start_input_round(&self, round: InputRound) {
        *self
            .inner
            .input
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(round);
    }

    /// Takes the round back once the handler returned.
    pub(crate) fn end_input_round(&self) -> Option<InputRound> {
        self.inner
            .input
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn require_capability(&self, capability: &'static str) -> Result<(), PeerError> {
        if self.inner.session.client_supports(capability) {
            Ok(())
        } else {
            Err(PeerError::CapabilityMissing(capability))
        }
    }

    /// Sends a server→client request on this request's stream and waits for the answer, which
    /// may arrive at any replica: the id names this node so the answer is routed back here.
    pub async fn request<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, PeerError> {
        if self.era() == crate::era::Era::Modern {
            return Err(PeerError::Stateless);
        }
        let shared = &self.inner.shared;
        let (id, answer) = shared.pending.register(self.session_id());
        let _unregister = shared.pending.guard(self.session_id().clone(), id.clone());
        self.inner
            .out
            .message(jsonrpc::encode_request(&id, method, params))
            .await
            .map_err(|_| PeerError::Closed)?;
        let timeout = shared.config.client_request_timeout;
        let delivered = tokio::select! {
            answer = answer => answer.map_err(|_| PeerError::Closed)?,
            () = self.inner.cancel.cancelled() => return Err(PeerError::Cancelled),
            () = tokio::time::sleep(timeout) => return Err(PeerError::Timeout(timeout)),
        };
        // A child of the waiting handler's span, linked to the span of the node where the
        // answer arrived (which may be another replica, and another trace).
        let span = tracing::info_span!(
            "mcp.client_response",
            mcp.method.name = method,
            mcp.session.id = crate::engine::trace::session_hash(self.session_id()).as_str(),
            shoal.node = shared.host.node_id().as_str(),
            shoal.remote.traceparent = delivered.trace_context.as_deref(),
        );
        if let (Some(propagator), Some(remote)) = (
            crate::engine::trace::propagator(),
            delivered.trace_context.as_deref(),
        ) {
            propagator.add_link(&span, remote);
        }
        drop(span);
        match delivered.answer {
            Ok(result) => serde_json::from_value(result)
                .map_err(|e| PeerError::InvalidResponse(Cause::new(e))),
            Err(error) => Err(PeerError::Rejected(
                serde_json::from_value(error)
                    .unwrap_or_else(|e| jsonrpc::rpc_error(jsonrpc::INTERNAL_ERROR, e.to_string())),
            )),
        }
    }

    /// Tells sessions about changes to the server's lists and resources.
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.inner.shared.host.clone())
    }
}

/// Announces changes that concern many sessions, on every replica.
///
/// It holds the host alone, not the engine, so that a provider may keep one (a live set does)
/// without keeping its own engine alive.
#[derive(Clone)]
pub struct Notifier {
    host: SharedHost,
}

impl Notifier {
    pub(crate) fn new(host: SharedHost) -> Self {
        Notifier { host }
    }

    async fn broadcast(&self, event: Broadcast) -> Result<(), HostError> {
        self.host.broadcast(NodeEvent::Broadcast(event)).await
    }

    /// `notifications/tools/list_changed` to every session.
    pub async fn tools_list_changed(&self) -> Result<(), HostError> {
        self.broadcast(Broadcast::ToolsListChanged).await
    }

    /// `notifications/resources/list_changed` to every session.
    pub async fn resources_list_changed(&self) -> Result<(), HostError> {
        self.broadcast(Broadcast::ResourcesListChanged).await
    }

    /// `notifications/prompts/list_changed` to every session.
    pub async fn prompts_list_changed(&self) -> Result<(), HostError> {
        self.broadcast(Broadcast::PromptsListChanged).await
    }

    /// `notifications/resources/updated` to the sessions subscribed to `uri`.
    pub async fn resource_updated(&self, uri: impl Into<String>) -> Result<(), HostError> {
        self.broadcast(Broadcast::ResourceUpdated { uri: uri.into() })
            .await
    }
}
