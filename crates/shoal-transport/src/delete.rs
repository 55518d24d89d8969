//! DELETE: ends the session everywhere at once.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use shoal_core::session::Principal;

use crate::AppState;
use crate::headers;
use crate::rejection::Rejection;
use crate::session::{host_rejection, resolve_session};

pub(crate) async fn handle(
    state: &AppState,
    request: axum::extract::Request,
) -> Result<Response, Rejection> {
    headers::refuse_modern_get_or_delete(request.headers())?;
    let id = headers::session_id(request.headers()).ok_or(Rejection::MissingSession)?;
    let principal = request.extensions().get::<Principal>();
    let session = resolve_session(state, id, principal).await?;
    if !state
        .engine
        .delete_session(&session)
        .await
        .map_err(host_rejection)?
    {
        return Err(Rejection::SessionNotFound);
    }
    // The hash, as in spans: never the id (a credential of the session).
    tracing::debug!(
        session_hash = %shoal_core::engine::trace::session_hash(&session.id),
        "session deleted"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
