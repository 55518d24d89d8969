//! The operator API on the admin listener (never on the MCP port): end sessions and refuse
//! principals on every replica, behind a token of its own (`SHOAL_ADMIN_TOKEN`, a variable
//! only, so that it never shows in a process list). Without that token the routes are not
//! served.
//!
//! | route | does |
//! |---|---|
//! | `DELETE /admin/sessions/{id}` | ends one session: 204, or 404 |
//! | `DELETE /admin/principals/{principal}/sessions` | ends every session of a principal: 200 `{"ended": n}` |
//! | `PUT /admin/principals/{principal}/refusal` | refuses a principal: body `{"duration": "1h"}`, optionally `"issued_before": <unix seconds>` (only older credentials); 200 `{"principal", "refusal", "until", "sessions_ended"}` |
//! | `GET /admin/principals/{principal}/refusal` | the refusal in force: 200, or 404 |
//! | `DELETE /admin/principals/{principal}/refusal` | lifts it: 204, or 404 |
//!
//! A principal is a path segment: percent-encode it (`https%3A%2F%2Fissuer%7Calice`). Every
//! error is JSON `{"error": "..."}`: 401 without the token (with `WWW-Authenticate`), 400 for a
//! bad body, 503 when the session host cannot be reached.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, put};
use serde::Deserialize;
use serde_json::json;
use shoal_auth::StaticTokens;
use shoal_core::engine::admin::{Admin, Refusal, StoredRefusal};
use shoal_core::host::HostError;
use shoal_core::ids::SessionId;

/// The operator's token, kept hashed; never printed.
#[derive(Clone)]
pub struct AdminToken(StaticTokens);

impl AdminToken {
    /// The token `token`.
    ///
    /// # Errors
    ///
    /// When it is not a usable bearer token (empty, white space, control characters).
    pub fn new(token: &str) -> Result<AdminToken, shoal_auth::Error> {
        let mut tokens = StaticTokens::new();
        tokens.insert("operator", token)?;
        tokens.check_bearer_syntax()?;
        Ok(AdminToken(tokens))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The operator routes, each behind `token`.
pub(crate) fn router(admin: Admin, token: AdminToken) -> Router {
    Router::new()
        .route("/admin/sessions/{id}", delete(end_session))
        .route(
            "/admin/principals/{principal}/sessions",
            delete(end_sessions),
        )
        .route(
            "/admin/principals/{principal}/refusal",
            put(refuse).get(refusal).delete(lift),
        )
        .layer(middleware::from_fn_with_state(token, require_token))
        .with_state(admin)
}

/// An operator API answer that is not a success.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<HostError> for Failure {
    fn from(error: HostError) -> Self {
        tracing::warn!(%error, "operator action failed: the session host is unreachable");
        Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "the session host is unreachable; nothing or part of it was done, retry".into(),
        )
    }
}

async fn require_token(State(token): State<AdminToken>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if presented.is_some_and(|presented| token.0.verify(presented.trim()).is_some()) {
        return next.run(request).await;
    }
    let mut response = Failure(
        StatusCode::UNAUTHORIZED,
        "the operator API needs Authorization: Bearer <SHOAL_ADMIN_TOKEN>".into(),
    )
    .into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"shoal-admin\""),
    );
    response
}

async fn end_session(
    State(admin): State<Admin>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    let Ok(id) = id.parse::<SessionId>() else {
        return Err(Failure(StatusCode::NOT_FOUND, "no such session".into()));
    };
    if admin.end_session(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure(StatusCode::NOT_FOUND, "no such session".into()))
    }
}

async fn end_sessions(
    State(admin): State<Admin>,
    Path(principal): Path<String>,
) -> Result<Response, Failure> {
    let ended = admin.end_sessions_of(&principal).await?;
    Ok(Json(json!({ "principal": principal, "ended": ended })).into_response())
}

/// The body of `PUT .../refusal`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefuseBody {
    /// How long, e.g. `"1h"`.
    duration: String,
    /// Only credentials issued before this (seconds since the epoch).
    #[serde(default)]
    issued_before: Option<u64>,
}

async fn refuse(
    State(admin): State<Admin>,
    Path(principal): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let bad = |message: String| Failure(StatusCode::BAD_REQUEST, message);
    let body: RefuseBody = serde_json::from_slice(&body).map_err(|error| {
        bad(format!(
            "the body must be {{\"duration\": \"1h\", \"issued_before\": <unix seconds, optional>}}: {error}"
        ))
    })?;
    let duration = humantime::parse_duration(&body.duration).map_err(|error| {
        bad(format!(
            "duration {:?} is not a duration such as 30m or 1h: {error}",
            body.duration
        ))
    })?;
    if duration.is_zero() || duration > MAX_REFUSAL {
        return Err(bad("duration must be between 1s and 365d".to_owned()));
    }
    let refusal = body
        .issued_before
        .map_or(Refusal::All, Refusal::IssuedBefore);
    let ended = admin.refuse(&principal, refusal, duration).await?;
    let stored = admin.refusal_of(&principal).await?;
    Ok(Json(json!({
        "principal": principal,
        "refusal": stored.map(|s| s.refusal),
        "until": stored.map(|s| s.until),
        "sessions_ended": ended,
    }))
    .into_response())
}

/// The longest refusal: a year (a longer one is a decision for the identity provider).
const MAX_REFUSAL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

async fn refusal(
    State(admin): State<Admin>,
    Path(principal): Path<String>,
) -> Result<Response, Failure> {
    match admin.refusal_of(&principal).await? {
        Some(StoredRefusal { refusal, until }) => Ok(Json(json!({
            "principal": principal,
            "refusal": refusal,
            "until": until,
        }))
        .into_response()),
        None => Err(Failure(
            StatusCode::NOT_FOUND,
            "this principal is not refused".into(),
        )),
    }
}

async fn lift(
    State(admin): State<Admin>,
    Path(principal): Path<String>,
) -> Result<StatusCode, Failure> {
    if admin.lift(&principal).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure(
            StatusCode::NOT_FOUND,
            "this principal is not refused".into(),
        ))
    }
}
