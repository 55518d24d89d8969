//! The static mode: bearer tokens and a custom header, each refusal with its exact challenge.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::HeaderName;
use serde_json::json;
use shoal_auth::{AuthConfig, StaticConfig, StaticTokens};

fn tokens() -> StaticTokens {
    let mut tokens = StaticTokens::new();
    tokens
        .insert_file_text("tokens", "# ci\nalice alice-token-1\nbob bob-token-2\n")
        .unwrap();
    tokens
}

#[tokio::test]
async fn bearer_tokens() {
    let (app, auth) = start_app(AuthConfig::Static(StaticConfig {
        tokens: tokens(),
        header: None,
    }))
    .await;
    assert!(auth.tool_scopes().is_none());
    let answer = bearer(&app, "bob-token-2").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["principal"], "bob");
    assert_eq!(
        answer.body["claims"],
        json!({}),
        "static tokens have no claims"
    );
    assert_eq!(answer.body["token_forwarded"], false);

    let answer = send(&app, &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenge.unwrap(), "Bearer");

    for wrong in ["bob-token-", "bob-token-22", "alice-token-2", "x"] {
        let answer = bearer(&app, wrong).await;
        assert_eq!(answer.status, 401, "{wrong}");
        assert_eq!(
            answer.challenge.unwrap(),
            "Bearer error=\"invalid_token\", error_description=\"the token is not valid\""
        );
    }
    let answer = send(
        &app,
        &[("authorization", "Bearer alice-token-1 bob-token-2")],
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.challenge.unwrap(),
        "Bearer error=\"invalid_request\", error_description=\"the Authorization header must be Bearer followed by one token\""
    );

    // The well-known documents exist in jwt mode only.
    let prm = call(
        &app,
        axum::extract::Request::get("/.well-known/oauth-protected-resource/mcp")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(prm.status, 404);
}

#[tokio::test]
async fn custom_header() {
    let (app, _auth) = start_app(AuthConfig::Static(StaticConfig {
        tokens: tokens(),
        header: Some(HeaderName::from_static("x-api-key")),
    }))
    .await;
    let answer = send(&app, &[("x-api-key", "alice-token-1")]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["principal"], "alice");
    assert_eq!(answer.body["token_forwarded"], false);

    let answer = send(&app, &[("authorization", "Bearer alice-token-1")]).await;
    assert_eq!(answer.status, 401, "only the configured header counts");
    assert_eq!(answer.challenge.unwrap(), "Bearer");

    let answer = send(&app, &[("x-api-key", "nope")]).await;
    assert_eq!(answer.status, 401);

    let answer = send(&app, &[("x-api-key", "a b")]).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.challenge.unwrap(),
        "Bearer error=\"invalid_request\", error_description=\"the token header must carry exactly one token\""
    );
}
