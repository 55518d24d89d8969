//! POST: one JSON-RPC message per request.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use shoal_core::engine::{InitializeError, Reply};
use shoal_core::era::{self, Era};
use shoal_core::ids::EventId;
use shoal_core::jsonrpc::{self, Message, Request};
use shoal_core::session::Principal;

use crate::AppState;
use crate::headers::{self, SESSION_ID};
use crate::modern;
use crate::rejection::{Limit, LimitExceeded, Rejection};
use crate::session::{host_rejection, require_session, serve_stream};

pub(crate) async fn handle(
    state: &AppState,
    request: axum::extract::Request,
) -> Result<Response, Rejection> {
    let (parts, body) = request.into_parts();
    let accepts = headers::accepts(&parts.headers);
    if !(accepts.json && accepts.sse) {
        return Err(Rejection::NotAcceptable(
            "the client must accept both application/json and text/event-stream",
        ));
    }
    headers::require_json_body(&parts.headers)?;
    let body = read_body(body, state.config.max_body_bytes).await?;
    let max_depth = state.config.max_json_depth;
    if jsonrpc::nesting_depth_exceeds(&body, max_depth) {
        return Err(Rejection::JsonTooDeep(max_depth));
    }
    let message = Message::parse(&body).map_err(Rejection::Parse)?;
    let principal = parts.extensions.get::<Principal>().cloned();
    match classify(&message, &parts.headers)? {
        Era::Modern => {
            return match message {
                Message::Request(request) => {
                    modern::handle(state, &parts.headers, principal, request).await
                }
                // Nothing to cancel or answer: this era has no sessions, and closing a
                // reply's stream is how a client cancels it.
                Message::Notification(_) | Message::Response(_) => {
                    Ok(StatusCode::ACCEPTED.into_response())
                }
            };
        }
        Era::Session => {}
    }
    headers::check_protocol_version(&parts.headers)?;
    let session_header = headers::session_id(&parts.headers);

    let request = match message {
        Message::Request(request) => request,
        Message::Notification(notification) => {
            let session = require_session(state, &parts.headers, principal.as_ref()).await?;
            let _slot = state.limits.in_flight_unchecked(session.id.as_str());
            state
                .engine
                .handle_notification(&session, notification)
                .await
                .map_err(host_rejection)?;
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        Message::Response(response) => {
            let session = require_session(state, &parts.headers, principal.as_ref()).await?;
            let _slot = state.limits.in_flight_unchecked(session.id.as_str());
            state
                .engine
                .handle_response(&session, response)
                .await
                .map_err(host_rejection)?;
            return Ok(StatusCode::ACCEPTED.into_response());
        }
    };
    if request.method == "initialize" {
        if session_header.is_some() {
            return Err(Rejection::InitializeWithSession);
        }
        return initialize(state, principal.as_ref(), &request).await;
    }
    let Some(_) = session_header else {
        return match state.engine.sessionless(&request) {
            Some(pong) => Ok(json(pong)),
            None => Err(Rejection::MissingSession),
        };
    };
    // Shared with the handler task: the fast path copies no session record.
    let session =
        std::sync::Arc::new(require_session(state, &parts.headers, principal.as_ref()).await?);
    // Held until the reply is written: for a streamed reply, until its body is dropped.
    let slot = state.limits.in_flight(session.id.as_str())?;
    check_tool_scopes(state, &request, principal.as_ref())?;
    let reply = state
        .engine
        .handle_request(session.clone(), principal, request)
        .await
        .map_err(host_rejection)?;
    match reply {
        Reply::Json(body) => Ok(json(body)),
        Reply::Stream(stream) => {
            let from = EventId { stream, seq: 0 };
            serve_stream(state, &session, &from, false, slot).await
        }
    }
}

async fn initialize(
    state: &AppState,
    principal: Option<&Principal>,
    request: &Request,
) -> Result<Response, Rejection> {
    let (session, body) = state
        .engine
        .initialize(principal, request)
        .await
        .map_err(|error| match error {
            InitializeError::Invalid(error) => Rejection::InvalidRequest {
                id: request.id.clone(),
                error,
            },
            InitializeError::Host(error) => host_rejection(error),
            // Counted in `shoal_limit_rejections_total` by `dispatch`, like every limit.
            InitializeError::TooManySessions { max } => {
                Rejection::Limit(LimitExceeded {
                    limit: Limit::SessionsPerPrincipal,
                    max: u64::try_from(max).unwrap_or(u64::MAX),
                    // A slot frees when a session is deleted or expires: no time to promise.
                    retry_after: None,
                    request_id: None,
                })
            }
            // A cause added to the engine later: refused as a failure of ours, and logged.
            error => {
                tracing::error!(%error, "initialize failed");
                Rejection::Internal
            }
        })?;
    let mut response = json(body);
    if let Ok(value) = HeaderValue::from_str(session.id.as_str()) {
        response.headers_mut().insert(SESSION_ID, value);
    }
    // The hash, as in spans: the id itself lets whoever reads the log use the session.
    tracing::debug!(
        session_hash = %shoal_core::engine::trace::session_hash(&session.id),
        version = %session.protocol_version,
        "session initialized"
    );
    Ok(response)
}

/// Per-tool authorization: a `tools/call` of a tool whose scopes the principal lacks is
/// refused (403) before its handler runs. A call without a tool name is left to the engine.
pub(crate) fn check_tool_scopes(
    state: &AppState,
    request: &Request,
    principal: Option<&Principal>,
) -> Result<(), Rejection> {
    let Some(check) = &state.config.tool_scopes else {
        return Ok(());
    };
    if request.method != "tools/call" {
        return Ok(());
    }
    let Some(tool) = request
        .params
        .as_ref()
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
    else {
        return Ok(());
    };
    check.check(tool, principal).map_err(Rejection::Auth)
}

/// A request of the stateless 2026-07-28 revision carries its version in `_meta`.
/// The era of a POSTed message (see `shoal_core::era`). Responses and notifications carry
/// their claim in `params._meta` as requests do; a response has no params and is of the
/// session era.
fn classify(message: &Message, headers: &http::HeaderMap) -> Result<Era, Rejection> {
    let (method, params, id) = match message {
        Message::Request(request) => (
            request.method.as_str(),
            request.params.as_ref(),
            Some(&request.id),
        ),
        Message::Notification(notification) => (
            notification.method.as_str(),
            notification.params.as_ref(),
            None,
        ),
        Message::Response(_) => return Ok(Era::Session),
    };
    let header = headers
        .get(headers::PROTOCOL_VERSION)
        .and_then(|value| value.to_str().ok());
    era::classify(method, params, header).map_err(|error| Rejection::Modern {
        status: StatusCode::BAD_REQUEST,
        id: id.cloned(),
        error: jsonrpc::rpc_error(shoal_core::codes::modern::INVALID_PARAMS, error.to_string()),
    })
}

pub(crate) fn json(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, Rejection> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Rejection::PayloadTooLarge(limit))
        }
        Err(_) => Err(Rejection::Parse(shoal_core::jsonrpc::ParseError::NotJson(
            "the body could not be read".into(),
        ))),
    }
}
