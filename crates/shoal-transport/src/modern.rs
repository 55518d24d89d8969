//! The stateless era (2026-07-28) at the HTTP edge: a POSTed request whose `_meta` claims it.
//!
//! Before the engine runs anything: the `_meta` keys (400, `-32602`), the `MCP-Protocol-Version`,
//! `Mcp-Method` and `Mcp-Name` headers against the body (400, `-32020`), the claimed version
//! (400, `-32022` with the supported and requested versions), the method (404,
//! `-32601` for one this era does not have, `initialize` and `ping` among them). Every refusal
//! names the request's id. The reply is JSON, or SSE without event ids when the handler sends
//! something first: this era does not resume, and a closed stream cancels the handler.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use shoal_core::codes::modern::{
    HEADER_MISMATCH, INVALID_PARAMS, METHOD_NOT_FOUND, UNSUPPORTED_VERSION,
};
use std::time::Duration;

use bytes::Bytes;
use shoal_core::engine::{ListenStream, ModernReply};
use shoal_core::era::{self, ModernMeta};
use shoal_core::jsonrpc::{Request, RpcError};
use shoal_core::session::Principal;
use shoal_core::version;
use shoal_wire::sse::KEEP_ALIVE;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::headers::PROTOCOL_VERSION;
use crate::limits::Slot;
use crate::metrics::{OpenStream, StreamKind};
use crate::rejection::Rejection;

/// `Mcp-Method`: the request's method, repeated where proxies can route on it.
const MCP_METHOD: &str = shoal_wire::header::MCP_METHOD;
/// `Mcp-Name`: the tool or prompt name, or the resource URI, of the request.
const MCP_NAME: &str = shoal_wire::header::MCP_NAME;

/// Serves one stateless-era request.
pub(crate) async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    principal: Option<Principal>,
    request: Request,
) -> Result<Response, Rejection> {
    let refuse =
        |status: StatusCode, code: i32, message: String, data: Option<Value>| Rejection::Modern {
            status,
            id: Some(request.id.clone()),
            error: RpcError {
                code,
                message,
                data,
            },
        };
    let meta = ModernMeta::parse(request.params.as_ref()).map_err(|error| {
        refuse(
            StatusCode::BAD_REQUEST,
            INVALID_PARAMS,
            error.to_string(),
            None,
        )
    })?;
    let header_params = match (request.method.as_str(), request.params.as_ref()) {
        ("tools/call", Some(params)) => match params.get("name").and_then(Value::as_str) {
            Some(name) => state.engine.header_params(principal.as_ref(), name).await,
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    if let Err(message) = check_headers(headers, &meta, &request, &header_params) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            HEADER_MISMATCH,
            message,
            None,
        ));
    }
    if !version::is_modern(&meta.version) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            UNSUPPORTED_VERSION,
            format!("unsupported protocol version: {}", meta.version),
            Some(json!({
                "supported": version::MODERN_VERSIONS,
                "requested": meta.version,
            })),
        ));
    }
    if !era::METHODS.contains(&request.method.as_str()) {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            METHOD_NOT_FOUND,
            format!("method not found: {}", request.method),
            None,
        ));
    }
    crate::post::check_tool_scopes(state, &request, principal.as_ref())?;
    // No sessions to count per: a principal's stateless requests and listen streams are
    // counted instead, against the per-session maxima.
    let slot = if request.method == "subscriptions/listen" {
        state.limits.principal_listen(principal.as_ref())
    } else {
        state.limits.principal_in_flight(principal.as_ref())
    }
    .map_err(|rejection| rejection.answering(&request.id))?;
    match state.engine.handle_modern(meta, principal, request).await {
        ModernReply::Json(body) => Ok(crate::post::json(body)),
        ModernReply::Refused(body) => {
            let mut response = crate::post::json(body);
            *response.status_mut() = StatusCode::BAD_REQUEST;
            Ok(response)
        }
        ModernReply::Live(reply) => Ok(live(reply, slot)),
        ModernReply::Listen(stream) => Ok(listen(state, stream, slot)),
    }
}

/// Checks the `Mcp-*` headers against the body: each must be there and agree, the
/// `Mcp-Param-*` ones of the called tool's `x-mcp-header` arguments included.
fn check_headers(
    headers: &HeaderMap,
    meta: &ModernMeta,
    request: &Request,
    header_params: &[era::HeaderParam],
) -> Result<(), String> {
    let header = |name: &str| -> Result<Option<String>, String> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map_err(|_| format!("{name} is not visible ASCII"))
                .and_then(|text| {
                    shoal_wire::header::decode_value(text.trim())
                        .map(|value| Some(value.into_owned()))
                        .map_err(|error| format!("{name}: {error}"))
                }),
        }
    };
    let expect = |name: &str, expected: &str| -> Result<(), String> {
        match header(name)? {
            Some(value) if value == expected => Ok(()),
            Some(value) => Err(format!(
                "{name} header {value:?} does not match the body's {expected:?}"
            )),
            None => Err(format!(
                "the {name} header is required (it must be {expected:?})"
            )),
        }
    };
    expect(PROTOCOL_VERSION, &meta.version)?;
    expect(MCP_METHOD, &request.method)?;
    let name_key = match request.method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(key) = name_key {
        let expected = request
            .params
            .as_ref()
            .and_then(|params| params.get(key))
            .and_then(Value::as_str);
        // A body without the name is the handler's invalid params, not a header mismatch.
        if let Some(expected) = expected {
            expect(MCP_NAME, expected)?;
        }
    }
    let arguments = request
        .params
        .as_ref()
        .and_then(|params| params.get("arguments"))
        .and_then(Value::as_object);
    for param in header_params {
        let name = format!("{}{}", shoal_wire::header::MCP_PARAM_PREFIX, param.name);
        match param.value_in(arguments) {
            Some(value) => expect(&name, &value)?,
            None => {
                if header(&name)?.is_some() {
                    return Err(format!("{name} is set but the body has no value for it"));
                }
            }
        }
    }
    Ok(())
}

/// A listen stream as SSE: its messages as they come, keep-alive comments while idle, and the
/// response that ends it gracefully when the server drains.
fn listen(state: &AppState, stream: ListenStream, slot: Option<Slot>) -> Response {
    struct Open {
        stream: ListenStream,
        drain: CancellationToken,
        keep_alive: Duration,
        done: bool,
        _open: OpenStream,
        _slot: Option<Slot>,
    }
    let open = Open {
        stream,
        drain: state.drain.clone(),
        keep_alive: state.config.keep_alive,
        done: false,
        _open: OpenStream::open(StreamKind::Listen),
        _slot: slot,
    };
    let frames = futures::stream::unfold(open, |mut open| async move {
        if open.done {
            return None;
        }
        let frame = tokio::select! {
            biased;
            () = open.drain.cancelled() => {
                // What already arrived goes out before the end, so the client misses nothing
                // raised before the drain.
                open.done = true;
                let mut frames = bytes::BytesMut::new();
                for message in open.stream.ready() {
                    frames.extend_from_slice(&shoal_wire::sse::data(&message));
                }
                frames.extend_from_slice(&shoal_wire::sse::data(&open.stream.end()));
                frames.freeze()
            }
            message = open.stream.next() => shoal_wire::sse::data(&message?),
            () = tokio::time::sleep(open.keep_alive) => Bytes::from_static(KEEP_ALIVE),
        };
        Some((Ok::<_, std::convert::Infallible>(frame), open))
    });
    let mut response = Body::from_stream(frames).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A live reply as SSE: one `data` event per message, no ids (this era does not resume).
fn live(reply: shoal_core::engine::LiveReply, slot: Option<Slot>) -> Response {
    // The slot is held until the body is dropped: the reply is in flight until then.
    let events = futures::stream::unfold((reply, slot), |(mut reply, slot)| async move {
        let message = reply.next().await?;
        let frame = shoal_wire::sse::data(&message);
        Some((Ok::<_, std::convert::Infallible>(frame), (reply, slot)))
    });
    let mut response = Body::from_stream(events).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
