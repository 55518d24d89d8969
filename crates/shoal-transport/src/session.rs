//! The session a request names: resolving it (shared by GET, POST and DELETE), mapping host
//! failures to answers, and serving one of its streams. Its own module so that the method
//! handlers depend on it and not on each other.

use axum::response::Response;
use http::HeaderMap;
use shoal_core::engine::SessionError;
use shoal_core::host::HostError;
use shoal_core::ids::EventId;
use shoal_core::session::{Principal, SessionRecord};
use shoal_core::version;

use crate::AppState;
use crate::headers;
use crate::limits::Slot;
use crate::metrics::StreamKind;
use crate::rejection::Rejection;
use crate::sse::{self, SseOptions};

/// The session `id` names, if it is live and `principal`'s.
pub(crate) async fn resolve_session(
    state: &AppState,
    id: &str,
    principal: Option<&Principal>,
) -> Result<SessionRecord, Rejection> {
    state
        .engine
        .resolve_session(id, principal)
        .await
        .map_err(|error| match error {
            SessionError::NotFound => Rejection::SessionNotFound,
            SessionError::Host(error) => host_rejection(error),
            // A cause added to the engine later: refused as a failure of ours, and logged.
            error => {
                tracing::error!(%error, "session resolution failed");
                Rejection::Internal
            }
        })
}

/// The session the `Mcp-Session-Id` header names; refused when the header is missing.
pub(crate) async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
    principal: Option<&Principal>,
) -> Result<SessionRecord, Rejection> {
    let id = headers::session_id(headers).ok_or(Rejection::MissingSession)?;
    resolve_session(state, id, principal).await
}

/// Serves the stream `from` names, after that position (the priming event stands for it, with
/// an id of its own); `resumed` when the client asked for it with `Last-Event-ID`. `slot` (an in-flight or stream slot) is held until the body is dropped.
pub(crate) async fn serve_stream(
    state: &AppState,
    session: &SessionRecord,
    from: &EventId,
    resumed: bool,
    slot: Slot,
) -> Result<Response, Rejection> {
    let kind = if from.stream == session.standalone_stream {
        StreamKind::Standalone
    } else {
        StreamKind::Request
    };
    let subscription = state
        .engine
        .resume(session, from)
        .await
        .map_err(host_rejection)?;
    Ok(sse::response(
        from.stream.clone(),
        subscription,
        options(state, session, kind, resumed),
        slot,
    ))
}

/// The SSE settings for one of `session`'s streams.
pub(crate) fn options(
    state: &AppState,
    session: &SessionRecord,
    kind: StreamKind,
    resumed: bool,
) -> SseOptions {
    SseOptions {
        // Priming events arrived with 2025-11-25; older clients may choke on empty data.
        priming: version::at_least(&session.protocol_version, "2025-11-25"),
        keep_alive: state.config.keep_alive,
        retry: state.config.retry,
        drain: state.drain.clone(),
        kind,
        resumed,
    }
}

/// The answer to a host failure.
pub(crate) fn host_rejection(error: HostError) -> Rejection {
    match error {
        HostError::SessionNotFound => Rejection::SessionNotFound,
        HostError::Unavailable(detail) => {
            tracing::warn!(%detail, "session host unavailable");
            Rejection::Unavailable
        }
        HostError::UnknownStream => {
            Rejection::BadLastEventId("Last-Event-ID names no stream of this session")
        }
        HostError::EventExpired => Rejection::BadLastEventId(
            "the event is no longer retained; the stream cannot be resumed",
        ),
        HostError::EventFromTheFuture => {
            Rejection::BadLastEventId("Last-Event-ID is ahead of its stream")
        }
        // Only `initialize` creates sessions, and it maps this refusal itself.
        HostError::PrincipalAtLimit => {
            tracing::error!("session limit refusal outside initialize");
            Rejection::Internal
        }
        // Only a brand-new stream is appended to here: an ended one is a bug, not bad input.
        HostError::StreamEnded => {
            tracing::error!("append to an ended stream while opening a reply");
            Rejection::Internal
        }
        // A failure added to the host contract later: like `Unavailable`, worth a retry.
        error => {
            tracing::warn!(%error, "session host failed");
            Rejection::Unavailable
        }
    }
}
