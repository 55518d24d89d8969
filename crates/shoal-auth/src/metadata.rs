//! The well-known documents: Protected Resource Metadata (RFC 9728) and the optional mirror of
//! the authorization server's metadata. Unauthenticated, readable from any origin (CORS).

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CONTENT_TYPE, HeaderValue,
};
use serde_json::{Value, json};

/// Where Protected Resource Metadata lives (RFC 9728 §3).
pub(crate) const PRM_PATH: &str = "/.well-known/oauth-protected-resource";
/// Where the authorization server metadata mirror lives (RFC 8414 §3).
pub(crate) const AS_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// The Protected Resource Metadata document.
pub(crate) fn protected_resource(
    resource: &str,
    issuer: &str,
    scopes_supported: Vec<String>,
    resource_name: Option<&str>,
) -> Value {
    let mut document = json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": scopes_supported,
        "bearer_methods_supported": ["header"],
    });
    if let (Some(name), Some(map)) = (resource_name, document.as_object_mut()) {
        map.insert("resource_name".into(), Value::String(name.to_owned()));
    }
    document
}

/// Serves `prm` at each of `paths`, and `mirror` (if any) at the authorization server path.
pub(crate) fn router(prm: Value, paths: &[String], mirror: Option<Value>) -> Router {
    let prm = serde_json::to_string(&prm).unwrap_or_default();
    let mut router = Router::new();
    for path in paths {
        let body = prm.clone();
        router = router.route(
            path,
            get(move || async move { document(body) }).options(preflight),
        );
    }
    if let Some(mirror) = mirror {
        let body = serde_json::to_string(&mirror).unwrap_or_default();
        router = router.route(
            AS_METADATA_PATH,
            get(move || async move { document(body) }).options(preflight),
        );
    }
    router
}

fn document(body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}
