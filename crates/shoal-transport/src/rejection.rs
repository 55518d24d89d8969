//! Every way the endpoint refuses a request, each with its status code and a JSON-RPC error
//! body (without an `id` when the request's id is unknown, as the MCP schema allows).

use std::fmt;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
// The refusals below are the session era's and those both eras share: their codes come from the
// session era's table. A stateless-era request is refused with [`Rejection::Modern`], whose
// error the `modern` module builds from that era's table.
use shoal_core::codes::session::{
    INTERNAL_ERROR, INVALID_REQUEST, LIMIT_EXCEEDED, SESSION_NOT_FOUND,
};
use shoal_core::jsonrpc::{self, ParseError, RequestId, RpcError};

use crate::auth::Challenge;

/// A refused request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// 405: not POST, GET or DELETE.
    #[error("method not allowed: use POST, GET or DELETE")]
    MethodNotAllowed,
    /// 403: `Host` is not on the allow-list.
    #[error("forbidden: Host header not allowed")]
    ForbiddenHost,
    /// 403: `Origin` is not on the allow-list.
    #[error("forbidden: Origin not allowed")]
    ForbiddenOrigin,
    /// 406: the client must accept what the method answers with.
    #[error("not acceptable: {0}")]
    NotAcceptable(&'static str),
    /// 415: POST bodies are `application/json`.
    #[error("unsupported media type: Content-Type must be application/json")]
    UnsupportedMediaType,
    /// 413: the body exceeds the configured limit.
    #[error("payload too large: the limit is {0} bytes")]
    PayloadTooLarge(usize),
    /// 400: the body is not one JSON-RPC message.
    #[error("{0}")]
    Parse(ParseError),
    /// 400: `MCP-Protocol-Version` names a revision this server does not speak.
    #[error(
        "unsupported MCP-Protocol-Version: {0:?} (supported: 2025-11-25, 2025-06-18, 2025-03-26)"
    )]
    UnsupportedProtocolVersion(String),
    /// 400: a request other than initialize or ping without `Mcp-Session-Id`.
    #[error("bad request: Mcp-Session-Id header is required")]
    MissingSession,
    /// 400: initialize on an existing session.
    #[error("bad request: initialize must not carry Mcp-Session-Id")]
    InitializeWithSession,
    /// A stateless-era (2026-07-28) request refused with that era's status and code, and the
    /// request's id when it is known.
    #[error("{}", error.message)]
    Modern {
        /// 400 (bad `_meta`, headers or version), 404 (unknown method) or 405.
        status: StatusCode,
        /// The request's id.
        id: Option<RequestId>,
        /// The error, with a code of [`shoal_core::codes::modern`].
        error: RpcError,
    },
    /// 404: unknown, expired, deleted, or another principal's session; code
    /// [`SESSION_NOT_FOUND`].
    #[error("session not found")]
    SessionNotFound,
    /// 400: `Last-Event-ID` is malformed, of another stream, or no longer retained.
    #[error("bad request: {0}")]
    BadLastEventId(&'static str),
    /// 400: the JSON-RPC request is invalid (answered with its id).
    #[error("{}", .error.message)]
    InvalidRequest {
        /// The request's id.
        id: RequestId,
        /// The error.
        error: RpcError,
    },
    /// 500: a bug; the detail is logged, not sent.
    #[error("internal error")]
    Internal,
    /// 503: the session host is unreachable.
    #[error("service unavailable: the session store is unreachable")]
    Unavailable,
    /// 400, 401 or 403 from authentication or authorization, with its `WWW-Authenticate`.
    #[error("{}", .0.message)]
    Auth(Challenge),
    /// 503: the authenticator cannot decide now (`AuthError::Unavailable`); the cause is
    /// logged, not sent.
    #[error("service unavailable: authentication cannot be checked now")]
    AuthUnavailable,
    /// 431: the request headers exceed the configured limit.
    #[error("request header fields too large: the limit is {0} bytes")]
    HeadersTooLarge(usize),
    /// 400: the JSON body nests deeper than the configured limit.
    #[error("JSON nesting deeper than {0}")]
    JsonTooDeep(usize),
    /// 429: a count or rate limit, with `Retry-After` when known; code
    /// [`LIMIT_EXCEEDED`].
    #[error("{0}")]
    Limit(LimitExceeded),
}

/// A count or rate limit that refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// Which limit.
    pub limit: Limit,
    /// Its configured maximum (the burst for [`Limit::RatePerPrincipal`]).
    pub max: u64,
    /// Sent as `Retry-After` (whole seconds, rounded up) when set.
    pub retry_after: Option<Duration>,
    /// The refused request's id, echoed in the error (the stateless era asks for it; a
    /// session-era refusal answers with a null id, as before).
    pub request_id: Option<RequestId>,
}

/// The count and rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Open GET streams of one session on this replica.
    SseStreamsPerSession,
    /// Requests of one session being handled or streaming their reply on this replica.
    InFlightPerSession,
    /// Live sessions of one principal in the cluster.
    SessionsPerPrincipal,
    /// Requests of one principal per unit of time on this replica.
    RatePerPrincipal,
    /// Stateless requests (2026-07-28) of one principal being handled or streaming their
    /// reply on this replica.
    InFlightPerPrincipal,
    /// Open `subscriptions/listen` streams (2026-07-28) of one principal on this replica.
    ListenStreamsPerPrincipal,
}

impl Limit {
    /// The snake_case name, used in the error's `data.limit` and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::SseStreamsPerSession => "sse_streams_per_session",
            Limit::InFlightPerSession => "in_flight_per_session",
            Limit::SessionsPerPrincipal => "sessions_per_principal",
            Limit::RatePerPrincipal => "rate_per_principal",
            Limit::InFlightPerPrincipal => "in_flight_per_principal",
            Limit::ListenStreamsPerPrincipal => "listen_streams_per_principal",
        }
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = self.max;
        match self.limit {
            Limit::SseStreamsPerSession => write!(
                f,
                "too many open streams for this session on this replica (max {max})"
            ),
            Limit::InFlightPerSession => write!(
                f,
                "too many requests in flight for this session on this replica (max {max})"
            ),
            Limit::SessionsPerPrincipal => {
                write!(f, "too many sessions for this principal (max {max})")
            }
            Limit::RatePerPrincipal => write!(
                f,
                "rate limit exceeded for this principal on this replica (burst of {max} requests)"
            ),
            Limit::InFlightPerPrincipal => write!(
                f,
                "too many requests in flight for this principal on this replica (max {max})"
            ),
            Limit::ListenStreamsPerPrincipal => write!(
                f,
                "too many listen streams for this principal on this replica (max {max})"
            ),
        }
    }
}

impl LimitExceeded {
    /// The `Retry-After` value: whole seconds, rounded up, at least 1.
    fn retry_after_seconds(&self) -> Option<u64> {
        let wait = self.retry_after?;
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Some(seconds.max(1))
    }
}

impl Rejection {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::ForbiddenHost | Rejection::ForbiddenOrigin => StatusCode::FORBIDDEN,
            Rejection::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Rejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::SessionNotFound => StatusCode::NOT_FOUND,
            Rejection::Unavailable | Rejection::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::Modern { status, .. } => *status,
            Rejection::Auth(challenge) => challenge.status,
            Rejection::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Rejection::Limit(_) => StatusCode::TOO_MANY_REQUESTS,
            Rejection::JsonTooDeep(_) => StatusCode::BAD_REQUEST,
            Rejection::Parse(_)
            | Rejection::UnsupportedProtocolVersion(_)
            | Rejection::MissingSession
            | Rejection::InitializeWithSession
            | Rejection::BadLastEventId(_)
            | Rejection::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The same refusal, answering the request `id` (limits refuse before anything reads the
    /// body, hence without it).
    pub(crate) fn answering(self, id: &RequestId) -> Rejection {
        match self {
            Rejection::Limit(exceeded) => Rejection::Limit(LimitExceeded {
                request_id: Some(id.clone()),
                ..exceeded
            }),
            other => other,
        }
    }

    /// The `limit` label of `shoal_limit_rejections_total` when a limit refused the request.
    pub fn limit_label(&self) -> Option<&'static str> {
        match self {
            Rejection::PayloadTooLarge(_) => Some("body_bytes"),
            Rejection::HeadersTooLarge(_) => Some("header_bytes"),
            Rejection::JsonTooDeep(_) => Some("json_depth"),
            Rejection::Limit(exceeded) => Some(exceeded.limit.as_str()),
            _ => None,
        }
    }

    /// The JSON-RPC error in the body.
    pub fn rpc_error(&self) -> RpcError {
        let code = match self {
            Rejection::Parse(error) => return error.to_rpc_error(),
            Rejection::InvalidRequest { error, .. } | Rejection::Modern { error, .. } => {
                return error.clone();
            }
            Rejection::SessionNotFound => SESSION_NOT_FOUND,
            Rejection::Unavailable | Rejection::AuthUnavailable | Rejection::Internal => {
                INTERNAL_ERROR
            }
            Rejection::Limit(exceeded) => {
                let mut error = jsonrpc::rpc_error(LIMIT_EXCEEDED, exceeded.to_string());
                error.data = Some(serde_json::json!({
                    "limit": exceeded.limit.as_str(),
                    "max": exceeded.max,
                }));
                return error;
            }
            _ => INVALID_REQUEST,
        };
        jsonrpc::rpc_error(code, self.to_string())
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let id = match &self {
            Rejection::InvalidRequest { id, .. } => Some(id),
            Rejection::Modern { id, .. } => id.as_ref(),
            Rejection::Limit(exceeded) => exceeded.request_id.as_ref(),
            _ => None,
        };
        let body = jsonrpc::encode_error(id, &self.rpc_error());
        let mut response = (self.status(), body).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Rejection::Auth(challenge) = &self
            && let Ok(value) = HeaderValue::from_str(&challenge.www_authenticate)
        {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        if let Rejection::Limit(exceeded) = &self
            && let Some(seconds) = exceeded.retry_after_seconds()
        {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self == Rejection::MethodNotAllowed {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
        }
        if matches!(&self, Rejection::Modern { status, .. } if *status == StatusCode::METHOD_NOT_ALLOWED)
        {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}
