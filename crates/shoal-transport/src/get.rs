//! GET: the session's standalone stream, or the resumption of any of its streams.

use axum::response::Response;
use shoal_core::engine::SessionError;
use shoal_core::ids::{EventId, LastEventId};
use shoal_core::session::{Principal, SessionRecord};
use shoal_core::version;

use crate::AppState;
use crate::headers::{self, LAST_EVENT_ID};
use crate::limits::Slot;
use crate::metrics::StreamKind;
use crate::post::host_rejection;
use crate::rejection::Rejection;
use crate::sse::{self, SseOptions};

pub(crate) async fn handle(
    state: &AppState,
    request: axum::extract::Request,
) -> Result<Response, Rejection> {
    let headers = request.headers();
    if !headers::accepts(headers).sse {
        return Err(Rejection::NotAcceptable(
            "GET opens an event stream: the client must accept text/event-stream",
        ));
    }
    headers::check_protocol_version(headers)?;
    let id = headers::session_id(headers).ok_or(Rejection::MissingSession)?;
    let principal = request.extensions().get::<Principal>();
    let session = resolve_session(state, id, principal).await?;
    let slot = state.limits.stream(session.id.as_str())?;
    match headers.get(LAST_EVENT_ID) {
        Some(last) => {
            // A stored event's id or a priming event's: either names the position to resume
            // after.
            let last: LastEventId = last
                .to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(Rejection::BadLastEventId("malformed Last-Event-ID"))?;
            serve_stream(state, &session, last.position(), true, slot).await
        }
        None => {
            let subscription = state
                .engine
                .open_standalone(&session)
                .await
                .map_err(host_rejection)?;
            Ok(sse::response(
                session.standalone_stream.clone(),
                subscription,
                options(state, &session, StreamKind::Standalone, false),
                slot,
            ))
        }
    }
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

fn options(
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
        })
}
