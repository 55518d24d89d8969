//! GET: the session's standalone stream, or the resumption of any of its streams.

use axum::response::Response;
use shoal_core::ids::LastEventId;
use shoal_core::session::Principal;

use crate::AppState;
use crate::headers::{self, LAST_EVENT_ID};
use crate::metrics::StreamKind;
use crate::rejection::Rejection;
use crate::session::{host_rejection, options, resolve_session, serve_stream};
use crate::sse;

pub(crate) async fn handle(
    state: &AppState,
    request: axum::extract::Request,
) -> Result<Response, Rejection> {
    let headers = request.headers();
    headers::refuse_modern_get_or_delete(headers)?;
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
