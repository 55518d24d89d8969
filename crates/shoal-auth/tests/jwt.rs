//! The jwt mode against a loopback authorization server: every acceptance and rejection,
//! with its status and exact `WWW-Authenticate`.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use shoal_auth::{Auth, AuthConfig, Error};
use shoal_core::session::Principal;

const INVALID: &str = "invalid_token";

#[tokio::test]
async fn valid_tokens_of_each_algorithm_yield_issuer_and_subject() {
    let (rsa, ed, ec) = (
        TestKey::rsa("rsa-1"),
        TestKey::ed25519("ed-1"),
        TestKey::p256("ec-1"),
    );
    let server = TestAs::simple(&[&rsa, &ed, &ec]).await;
    let (app, _auth) = start_app(AuthConfig::Jwt(server.config())).await;
    for key in [&rsa, &ed, &ec] {
        let mut claims = server.claims("mcp:read mcp:write");
        claims["scp"] = json!(["extra"]);
        let answer = bearer(&app, &key.sign(&claims)).await;
        assert_eq!(answer.status, 200, "{:?}: {answer:?}", key.alg);
        assert_eq!(
            answer.body["principal"],
            format!("{}|user-1", server.issuer)
        );
        assert_eq!(
            answer.body["scopes"],
            json!(["mcp:read", "mcp:write", "extra"])
        );
        assert_eq!(
            answer.body["token_forwarded"], false,
            "the token is not passed on"
        );
        assert_eq!(
            answer.body["claims"], claims,
            "the validated claims ride with the principal"
        );
    }
    // The audience may be one of several.
    let mut claims = server.claims("");
    claims["aud"] = json!(["https://other.example.com", PUBLIC_URL]);
    assert_eq!(bearer(&app, &ed.sign(&claims)).await.status, 200);
    assert_eq!(server.fetches(), 1, "keys are cached");
}

#[tokio::test]
async fn missing_and_malformed_tokens() {
    let key = TestKey::ed25519("k");
    let server = TestAs::simple(&[&key]).await;
    let mut config = server.config();
    config.required_scopes = vec!["mcp:read".into()];
    let (app, _auth) = start_app(AuthConfig::Jwt(config)).await;

    let answer = send(&app, &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.challenge.unwrap(),
        jwt_challenge(Some("mcp:read"), None)
    );
    assert_eq!(answer.body["error"]["code"], -32600);

    let malformed = (
        "invalid_request",
        "the Authorization header must be Bearer followed by one token",
    );
    for value in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a b",
        "token",
    ] {
        let answer = send(&app, &[("authorization", value)]).await;
        assert_eq!(answer.status, 400, "{value:?}");
        assert_eq!(
            answer.challenge.unwrap(),
            jwt_challenge(Some("mcp:read"), Some(malformed)),
            "{value:?}"
        );
    }
    let answer = send(
        &app,
        &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
    )
    .await;
    assert_eq!(answer.status, 400);

    let answer = bearer(&app, "not-a-jwt").await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.challenge.unwrap(),
        jwt_challenge(Some("mcp:read"), Some((INVALID, "the token is malformed")))
    );
    assert!(
        !answer.body.to_string().contains("not-a-jwt"),
        "the token is never echoed"
    );
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let rsa = TestKey::rsa("rsa-1");
    let ed = TestKey::ed25519("ed-1");
    let server = TestAs::simple(&[&rsa, &ed]).await;
    let (app, _auth) = start_app(AuthConfig::Jwt(server.config())).await;
    let claims = server.claims("");

    // Signed by another key under a known kid.
    let impostor = TestKey::ed25519("ed-1");
    let answer = bearer(&app, &impostor.sign(&claims)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.challenge.unwrap(),
        jwt_challenge(None, Some((INVALID, "the token signature is invalid")))
    );

    // alg: none, no signature.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"ed-1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let answer = bearer(&app, &format!("{header}.{payload}.")).await;
    assert_eq!(answer.status, 401);
    let not_allowed = jwt_challenge(None, Some((INVALID, "the token algorithm is not allowed")));
    assert_eq!(answer.challenge.unwrap(), not_allowed);

    // HMAC with the RSA public key as the secret (the classic key confusion).
    let public_pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/rsa-public.pem"
    ))
    .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(&public_pem).unwrap(),
    )
    .unwrap();
    let answer = bearer(&app, &token).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenge.unwrap(), not_allowed);

    // An allowed algorithm that does not fit the named key (ES256 against an RSA kid).
    let ec = TestKey::p256("rsa-1");
    let answer = bearer(&app, &ec.sign(&claims)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenge.unwrap(), not_allowed);

    // An algorithm outside the configured list.
    let mut config = server.config();
    config.algorithms = vec![Algorithm::ES256];
    let (strict, _auth) = start_app(AuthConfig::Jwt(config)).await;
    let answer = bearer(&strict, &rsa.sign(&claims)).await;
    assert_eq!(answer.challenge.unwrap(), not_allowed);
}

#[tokio::test]
async fn issuer_audience_and_lifetime_are_checked() {
    let key = TestKey::ed25519("k");
    let server = TestAs::simple(&[&key]).await;
    let (app, _auth) = start_app(AuthConfig::Jwt(server.config())).await;
    let refused = |description: &str| jwt_challenge(None, Some((INVALID, description)));
    let cases = [
        (
            "iss",
            json!("http://127.0.0.1:1"),
            "the token issuer is not accepted",
        ),
        (
            "aud",
            json!("https://mcp.example.com/mcp/"),
            "the token audience is not this resource",
        ),
        (
            "aud",
            json!("https://mcp.example.com"),
            "the token audience is not this resource",
        ),
        (
            "aud",
            json!(["https://mcp.example.com/mcp/"]),
            "the token audience is not this resource",
        ),
        ("exp", json!(now() - 120), "the token has expired"),
        ("nbf", json!(now() + 120), "the token is not yet valid"),
        (
            "iat",
            json!(now() + 120),
            "the token was issued in the future",
        ),
    ];
    for (claim, value, description) in cases {
        let mut claims = server.claims("");
        claims[claim] = value.clone();
        let answer = bearer(&app, &key.sign(&claims)).await;
        assert_eq!(answer.status, 401, "{claim}={value}");
        assert_eq!(
            answer.challenge.unwrap(),
            refused(description),
            "{claim}={value}"
        );
    }
    // Within the 30 s leeway.
    for (claim, value) in [
        ("exp", now() - 10),
        ("nbf", now() + 10),
        ("iat", now() + 10),
    ] {
        let mut claims = server.claims("");
        claims[claim] = json!(value);
        assert_eq!(
            bearer(&app, &key.sign(&claims)).await.status,
            200,
            "{claim}"
        );
    }
    for claim in ["exp", "sub", "aud"] {
        let mut claims = server.claims("");
        claims.as_object_mut().unwrap().remove(claim);
        let answer = bearer(&app, &key.sign(&claims)).await;
        assert_eq!(
            answer.challenge.unwrap(),
            refused("the token lacks a required claim"),
            "{claim}"
        );
    }
}

#[tokio::test]
async fn require_at_jwt_checks_typ() {
    let key = TestKey::ed25519("k");
    let server = TestAs::simple(&[&key]).await;
    let mut config = server.config();
    config.require_at_jwt = true;
    let (app, _auth) = start_app(AuthConfig::Jwt(config)).await;
    let claims = server.claims("");
    let answer = bearer(&app, &key.sign(&claims)).await; // typ JWT
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.challenge.unwrap(),
        jwt_challenge(None, Some((INVALID, "the token type must be at+jwt")))
    );
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let mut header = key.header();
        header.typ = Some(typ.into());
        assert_eq!(
            bearer(&app, &key.sign_with(header, &claims)).await.status,
            200,
            "{typ}"
        );
    }
}

#[tokio::test]
async fn required_scopes_globally_and_per_tool() {
    let key = TestKey::ed25519("k");
    let server = TestAs::simple(&[&key]).await;
    let mut config = server.config();
    config.required_scopes = vec!["mcp:read".into(), "mcp:use".into()];
    config
        .tool_scopes
        .insert("echo".into(), vec!["mcp:echo".into()]);
    let (app, auth) = start_app(AuthConfig::Jwt(config)).await;

    let answer = bearer(&app, &key.sign(&server.claims("mcp:read"))).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.challenge.unwrap(),
        jwt_challenge(
            Some("mcp:read mcp:use"),
            Some(("insufficient_scope", "the token lacks a required scope"))
        )
    );
    let answer = bearer(&app, &key.sign(&server.claims("mcp:use mcp:read"))).await;
    assert_eq!(answer.status, 200);

    let check = auth.tool_scopes().expect("tool scopes are configured");
    let mut principal = Principal::new("p");
    principal.scopes = vec!["mcp:read".into(), "mcp:use".into()];
    let refused = check.check("echo", Some(&principal)).unwrap_err();
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.www_authenticate,
        jwt_challenge(
            Some("mcp:echo"),
            Some((
                "insufficient_scope",
                "the token lacks a scope required by this tool"
            ))
        )
    );
    assert!(
        check.check("count", Some(&principal)).is_ok(),
        "no scope configured"
    );
    principal.scopes.push("mcp:echo".into());
    assert!(check.check("echo", Some(&principal)).is_ok());
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let old = TestKey::ed25519("old");
    let new = TestKey::rsa("new");
    let server = TestAs::simple(&[&old]).await;
    let interval = Duration::from_millis(600);
    let mut config = server.config();
    config.jwks_refetch_interval = interval;
    let (app, _auth) = start_app(AuthConfig::Jwt(config)).await;
    assert_eq!(server.fetches(), 1);
    let token = new.sign(&server.claims(""));
    let unknown = jwt_challenge(None, Some((INVALID, "the token signing key is unknown")));

    // Within the interval of the start-up fetch: no refetch.
    let answer = bearer(&app, &token).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenge.unwrap(), unknown);
    assert_eq!(server.fetches(), 1);

    tokio::time::sleep(interval).await;
    assert_eq!(bearer(&app, &token).await.status, 401);
    assert_eq!(server.fetches(), 2, "one refetch, still without the key");

    // The provider rotates; the next refetch is not due yet.
    server.add_key(&new);
    for _ in 0..5 {
        let answer = bearer(&app, &token).await;
        assert_eq!(answer.challenge.unwrap(), unknown);
    }
    assert_eq!(server.fetches(), 2, "rate-limited");

    tokio::time::sleep(interval).await;
    let answer = bearer(&app, &token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(server.fetches(), 3);
    // Old keys stay valid while the provider serves them.
    assert_eq!(
        bearer(&app, &old.sign(&server.claims(""))).await.status,
        200
    );
    assert_eq!(server.fetches(), 3);
}

#[tokio::test]
async fn protected_resource_metadata_and_mirror() {
    let key = TestKey::ed25519("k");
    let server = TestAs::simple(&[&key]).await;
    let mut config = server.config();
    config.required_scopes = vec!["mcp:use".into()];
    config
        .tool_scopes
        .insert("echo".into(), vec!["mcp:echo".into(), "mcp:use".into()]);
    config.mirror_authorization_server_metadata = true;
    config.resource_name = Some("Shoal test".into());
    let (app, _auth) = start_app(AuthConfig::Jwt(config)).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let answer = call(
            &app,
            axum::extract::Request::get(path)
                .body(Default::default())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.headers["access-control-allow-origin"], "*");
        assert_eq!(answer.headers["content-type"], "application/json");
        assert_eq!(
            answer.body,
            json!({
                "resource": PUBLIC_URL,
                "authorization_servers": [server.issuer],
                "scopes_supported": ["mcp:echo", "mcp:use"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Shoal test",
            })
        );
        let preflight = call(
            &app,
            axum::extract::Request::options(path)
                .header("origin", "https://app.example.com")
                .header("access-control-request-method", "GET")
                .body(Default::default())
                .unwrap(),
        )
        .await;
        assert_eq!(preflight.status, 204);
        assert_eq!(preflight.headers["access-control-allow-origin"], "*");
    }
    let mirror = call(
        &app,
        axum::extract::Request::get("/.well-known/oauth-authorization-server")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(mirror.status, 200);
    assert_eq!(mirror.body["issuer"], server.issuer);
}

#[tokio::test]
async fn discovery_follows_the_spec_order_and_checks_the_issuer() {
    let key = TestKey::ed25519("k");
    // Only the OIDC location with the path appended answers.
    let server = TestAs::start(
        "/realms/mcp",
        "/realms/mcp/.well-known/openid-configuration",
        &[&key],
    )
    .await;
    let (app, _auth) = start_app(AuthConfig::Jwt(server.config())).await;
    assert_eq!(
        bearer(&app, &key.sign(&server.claims(""))).await.status,
        200
    );

    // Metadata naming another issuer is not used.
    let liar = TestAs::start("", "/.well-known/oauth-authorization-server", &[&key]).await;
    let mut config = liar.config();
    config.issuer = format!("{}/", liar.issuer);
    let error = Auth::start(AuthConfig::Jwt(config), PUBLIC_URL, ENDPOINT_PATH)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Discovery { .. }), "{error}");

    // A configured JWKS URL skips discovery.
    let mut config = liar.config();
    config.issuer = "https://as.invalid/".into();
    config.jwks_url = Some(format!("http://{}/jwks", liar.addr));
    let (app, _auth) = start_app(AuthConfig::Jwt(config)).await;
    let mut claims = liar.claims("");
    claims["iss"] = json!("https://as.invalid/");
    assert_eq!(bearer(&app, &key.sign(&claims)).await.status, 200);

    // Plain HTTP only on loopback.
    let mut config = liar.config();
    config.issuer = "http://as.example.com".into();
    let error = Auth::start(AuthConfig::Jwt(config), PUBLIC_URL, ENDPOINT_PATH)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InsecureUrl(_)), "{error}");
}
