//! `shoal serve --auth oauth`: every rejection of the authorization, token, registration and
//! revocation endpoints asserts its status and body; a client metadata document on loopback is
//! refused unless the operator allows private targets. The deployment and the client's steps
//! are in `oauth_common` (see `oauth.rs` for the flows that succeed).
//!
//! Node ≥ 22 comes from `$SHOAL_NODE` (`cargo xtask ci` sets it) or `PATH`.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oauth_common;

use reqwest::StatusCode;
use serde_json::json;
use shoal_testkit::browser::{Decision, HeadlessUser};
use shoal_testkit::oidc::Pkce;

use oauth_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_says_why() {
    bounded(async {
        let deployment = deploy(1, true, &["--registrations-per-minute", "8"]).await;
        let client = deployment.register_public().await;
        let pkce = Pkce::new();

        // Before the client and its redirect URI are known good: a page, never a redirect.
        for (extra, says) in [
            (vec![("client_id", Some("nobody"))], "not registered"),
            (vec![("client_id", None)], "no client_id"),
            (
                vec![("redirect_uri", Some("http://127.0.0.1:9/elsewhere"))],
                "not one of the client",
            ),
        ] {
            let url = deployment.authorization_url(&client.client_id, &pkce, &extra);
            let (status, body) = page(&deployment, &url).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?}");
            assert!(body.contains(says), "{says:?} not in {body}");
        }
        let doubled = format!(
            "{}&state=again",
            deployment.authorization_url(&client.client_id, &pkce, &[])
        );
        let (status, body) = page(&deployment, &doubled).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("more than once"), "{body}");

        // After: back to the client with the error, state and iss.
        for (extra, error, says) in [
            (
                vec![("response_type", Some("token"))],
                "unsupported_response_type",
                "response_type=code",
            ),
            (
                vec![("response_type", None)],
                "invalid_request",
                "response_type is required",
            ),
            (
                vec![("code_challenge", None)],
                "invalid_request",
                "code_challenge is required",
            ),
            (
                vec![("code_challenge_method", Some("plain"))],
                "invalid_request",
                "must be S256",
            ),
            (
                vec![("code_challenge", Some("short"))],
                "invalid_request",
                "43 characters",
            ),
            (
                vec![("resource", None)],
                "invalid_request",
                "resource is required",
            ),
            (
                vec![("resource", Some("https://elsewhere.example/mcp"))],
                "invalid_target",
                "issues tokens for",
            ),
            (
                vec![("scope", Some("mcp:tools root"))],
                "invalid_scope",
                "\"root\" is not offered",
            ),
        ] {
            let url = deployment.authorization_url(&client.client_id, &pkce, &extra);
            let (got, description) = refused_at_client(&deployment, &url).await;
            assert_eq!(got, error, "{extra:?}: {description}");
            assert!(
                description.contains(says),
                "{says:?} not in {description:?}"
            );
        }

        // The user says no.
        let url = deployment.authorization_url(&client.client_id, &pkce, &[]);
        let walk = HeadlessUser::new("bob")
            .authorize(&url, REDIRECT, Decision::Deny)
            .await
            .unwrap();
        assert_eq!(walk.param("error").as_deref(), Some("access_denied"));
        assert_eq!(walk.param("state").as_deref(), Some("state-123"));

        // A consent decision without the page's anti-forgery token.
        let response = deployment
            .http
            .post(deployment.url("/oauth/consent"))
            .form(&[("request", "x"), ("csrf", "y"), ("decision", "approve")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("expired or was already completed")
        );

        // The token endpoint.
        let authorized = deployment.authorize(&client.client_id, "carol").await;
        let code_form = |code: &'static str| -> Vec<(&'static str, String)> {
            vec![
                ("grant_type", "authorization_code".into()),
                ("code", code.into()),
                ("redirect_uri", REDIRECT.into()),
                ("code_verifier", authorized.verifier.clone()),
                ("client_id", client.client_id.clone()),
            ]
        };
        // (form, status, error, what the description says)
        type Case = (
            Vec<(&'static str, String)>,
            StatusCode,
            &'static str,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                vec![],
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            ),
            (
                vec![("grant_type", "password".into())],
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "\"password\" is not supported",
            ),
            (
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("client_id", "nobody".into()),
                ],
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "not registered",
            ),
            (
                vec![("grant_type", "authorization_code".into())],
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required",
            ),
            (
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("client_id", client.client_id.clone()),
                    ("client_secret", "guess".into()),
                ],
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "public",
            ),
            (
                code_form("unknown-code"),
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "unknown, expired or already used",
            ),
            (
                {
                    let mut form = code_form("unused");
                    form.retain(|(n, _)| *n != "code_verifier");
                    form
                },
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "code_verifier is required",
            ),
        ];
        for (form, status, error, says) in cases {
            let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let (got, headers, body) = deployment.token(&form).await;
            assert_eq!(got, status, "{form:?}: {body}");
            assert_oauth_error(&body, error, says);
            assert_eq!(headers["cache-control"], "no-store");
            if status == StatusCode::UNAUTHORIZED {
                assert!(headers.contains_key("www-authenticate"), "{form:?}");
            }
        }
        // Not a form.
        let response = deployment
            .http
            .post(deployment.url("/oauth/token"))
            .json(&json!({ "grant_type": "authorization_code" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_oauth_error(
            &response.json().await.unwrap(),
            "invalid_request",
            "application/x-www-form-urlencoded",
        );
        // The real code with a wrong verifier, then a wrong redirect URI, then a wrong
        // resource: each spends it (a code is tried once).
        for (name, value, error, says) in [
            (
                "code_verifier",
                "x".repeat(43),
                "invalid_grant",
                "does not match",
            ),
            (
                "redirect_uri",
                "http://127.0.0.1:53682/other".to_owned(),
                "invalid_grant",
                "redirect_uri",
            ),
        ] {
            let authorized = deployment.authorize(&client.client_id, "carol").await;
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", authorized.code.clone()),
                ("redirect_uri", REDIRECT.to_owned()),
                ("code_verifier", authorized.verifier.clone()),
                ("client_id", client.client_id.clone()),
            ];
            form.retain(|(n, _)| *n != name);
            form.push((name, value));
            let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let (status, _, body) = deployment.token(&form).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
            assert_oauth_error(&body, error, says);
        }
        let tokens = deployment.exchange(&client, &authorized).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        // A refresh may narrow the scope, never widen it, and must name this resource.
        let (status, _, body) = deployment
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client.client_id),
                ("scope", "mcp:tools mcp:admin"),
            ])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_scope", "\"mcp:admin\" was not granted");
        let (status, _, body) = deployment
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client.client_id),
                ("resource", "https://elsewhere.example/mcp"),
            ])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_target", "issues tokens for");

        // A client that registered no refresh grant may not refresh.
        let (status, body) = deployment
            .register(json!({
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "client_secret_post",
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (secret_id, secret) = (
            body["client_id"].as_str().unwrap().to_owned(),
            body["client_secret"].as_str().unwrap().to_owned(),
        );
        let (status, _, body) = deployment
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &secret_id),
                ("client_secret", &secret),
            ])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "unauthorized_client", "refresh_token grant");
        let (status, _, body) = deployment
            .token_with(
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                Some((&secret_id, "wrong")),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_oauth_error(&body, "invalid_client", "secret is wrong");

        // Revocation (RFC 7009): the refresh token, hence its grant and access tokens.
        let revoke = |form: Vec<(&'static str, String)>| {
            let request = deployment
                .http
                .post(deployment.url("/oauth/revoke"))
                .form(&form);
            async move { request.send().await.unwrap() }
        };
        let response = revoke(vec![("token", refresh.clone())]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_oauth_error(
            &response.json().await.unwrap(),
            "invalid_client",
            "client authentication is required",
        );
        let response = revoke(vec![("client_id", client.client_id.clone())]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_oauth_error(
            &response.json().await.unwrap(),
            "invalid_request",
            "token is required",
        );
        // Another client's revocation of it does nothing (and says nothing).
        let response = revoke(vec![
            ("token", refresh.clone()),
            ("client_id", secret_id.clone()),
            ("client_secret", secret.clone()),
        ])
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(deployment.probe(&access).await, StatusCode::OK);
        let response = revoke(vec![
            ("token", refresh.clone()),
            ("client_id", client.client_id.clone()),
        ])
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(deployment.probe(&access).await, StatusCode::UNAUTHORIZED);
        let (status, body) = deployment.refresh(&client.client_id, &refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_grant", "revoked");

        // Registration.
        for (metadata, error, says) in [
            (
                json!({ "redirect_uris": ["http://evil.example/cb"] }),
                "invalid_redirect_uri",
                "evil.example",
            ),
            (
                json!({ "redirect_uris": [] }),
                "invalid_client_metadata",
                "redirect_uris",
            ),
            (
                json!({ "redirect_uris": [REDIRECT], "grant_types": ["password"] }),
                "invalid_client_metadata",
                "password",
            ),
            (
                json!(["not", "an", "object"]),
                "invalid_client_metadata",
                "object",
            ),
        ] {
            let (status, body) = deployment.register(metadata.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{metadata}: {body}");
            assert_oauth_error(&body, error, says);
        }
        let response = deployment
            .http
            .post(deployment.url("/oauth/register"))
            .body("redirect_uris=x")
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_oauth_error(
            &response.json().await.unwrap(),
            "invalid_client_metadata",
            "application/json",
        );
        // The registrations of this minute (8 allowed) run out, even if a new minute begins
        // on the way.
        let mut limited = None;
        for _ in 0..10 {
            let (status, body) = deployment
                .register(json!({ "redirect_uris": [REDIRECT] }))
                .await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(body);
                break;
            }
        }
        let body = limited.expect("the registration rate limit never answered 429");
        assert_oauth_error(&body, "slow_down", "too many registrations");
    })
    .await;
}

/// Registers from `forwarded_for` until refused: the refusal's body, within `attempts`.
async fn register_until_limited(
    deployment: &Deployment,
    forwarded_for: impl Fn(usize) -> String,
    attempts: usize,
) -> Option<serde_json::Value> {
    for attempt in 0..attempts {
        let (status, body) = deployment
            .register_forwarded(
                json!({ "redirect_uris": [REDIRECT] }),
                Some(&forwarded_for(attempt)),
            )
            .await;
        match status {
            StatusCode::CREATED => {}
            StatusCode::TOO_MANY_REQUESTS => return Some(body),
            other => panic!("{other}: {body}"),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registration_limit_is_per_client_behind_a_trusted_proxy_and_per_peer_otherwise() {
    bounded(async {
        // The round-robin proxy (127.0.0.1) is the balancer Shoal trusts; two replicas on
        // Redis count together.
        let deployment = deploy(
            2,
            false,
            &[
                "--registrations-per-minute",
                "3",
                "--trusted-proxies",
                "127.0.0.1",
            ],
        )
        .await;
        // One client runs out (a new minute may begin on the way: twice the limit and one).
        let body = register_until_limited(&deployment, |_| "203.0.113.7".into(), 7)
            .await
            .expect("one client's registrations were never limited");
        assert_oauth_error(&body, "slow_down", "too many registrations");
        // Another client behind the same balancer is not held back by it, and neither is one
        // that puts the first client's address left of its own.
        let (status, body) = deployment
            .register_forwarded(json!({ "redirect_uris": [REDIRECT] }), Some("203.0.113.8"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = deployment
            .register_forwarded(
                json!({ "redirect_uris": [REDIRECT] }),
                Some("203.0.113.7, 198.51.100.9"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        drop(deployment);

        // Without --trusted-proxies the header is a client's word and is ignored: a new
        // address in every request does not escape the limit of the peer.
        let deployment = deploy(1, true, &["--registrations-per-minute", "3"]).await;
        let body = register_until_limited(&deployment, |attempt| format!("203.0.113.{attempt}"), 7)
            .await
            .expect("forged X-Forwarded-For addresses escaped the limit");
        assert_oauth_error(&body, "slow_down", "too many registrations");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_documents_are_refused_by_default() {
    bounded(async {
        let documents = serve_documents().await;
        let deployment = deploy(1, true, &[]).await;
        let pkce = Pkce::new();
        let url =
            deployment.authorization_url(&format!("{}/client.json", documents.origin), &pkce, &[]);
        let (status, body) = page(&deployment, &url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("https"), "{body}");
        assert_eq!(
            documents.fetches.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nothing was fetched"
        );
    })
    .await;
}
