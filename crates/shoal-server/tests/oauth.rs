//! `shoal serve --auth oauth`: Shoal as the authorization server of its own endpoint, users
//! logging in at a real OpenID provider (the `oidc-provider` fixture, `tests/auth/oidc`), a
//! browser without a person ([`HeadlessUser`]) walking the login and consent pages, and every
//! request through the round-robin proxy, so that each step of a flow lands on another
//! replica.
//!
//! - The whole flow over three replicas on Redis: registration (RFC 7591), every replica
//!   restarted, authorization (PKCE S256, RFC 8707 resource, RFC 9207 iss), code exchange,
//!   MCP calls with the token, every replica restarted again, refresh with rotation, reuse of
//!   a replaced refresh token revoking the grant and its access tokens.
//! - A Client ID Metadata Document client signs in; the key file's first key signs.
//! - Every rejection is in `oauth_refusals.rs`.
//!
//! Node ≥ 22 comes from `$SHOAL_NODE` (`cargo xtask ci` sets it) or `PATH`.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oauth_common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shoal_testkit::oidc::Pkce;

use oauth_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_on_three_replicas_survives_restarts_of_every_replica() {
    bounded(async {
        let mut deployment = deploy(3, false, &[]).await;
        let origin = deployment.origin.clone();

        // Metadata by the book, from any replica.
        let metadata: Value = deployment
            .get_json("/.well-known/oauth-authorization-server")
            .await;
        assert_eq!(metadata["issuer"], origin);
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"])
        );
        assert_eq!(
            metadata["registration_endpoint"],
            format!("{origin}/oauth/register")
        );
        assert_eq!(
            metadata["authorization_response_iss_parameter_supported"],
            true
        );
        assert_eq!(metadata["client_id_metadata_document_supported"], true);
        let openid: Value = deployment
            .get_json("/.well-known/openid-configuration")
            .await;
        assert_eq!(openid, metadata);
        let prm: Value = deployment
            .get_json("/.well-known/oauth-protected-resource/mcp")
            .await;
        assert_eq!(prm["authorization_servers"], json!([origin]));
        assert_eq!(prm["resource"], deployment.resource);
        // No redirect between a path and its trailing-slash twin.
        let twin = deployment
            .http
            .get(deployment.url("/.well-known/oauth-authorization-server/"))
            .send()
            .await
            .unwrap();
        assert_eq!(twin.status(), StatusCode::NOT_FOUND);

        let client = deployment.register_public().await;
        // Nothing of it in any process: every replica starts again.
        for i in 0..3 {
            deployment.cluster.restart(i).await;
        }
        let authorized = deployment.authorize(&client.client_id, "alice").await;
        assert!(
            authorized
                .consent_page
                .contains("Test &lt;Client&gt; &amp; Co"),
            "the consent page names the client, escaped"
        );
        assert!(authorized.consent_page.contains("alice@example.test"));
        assert!(authorized.consent_page.contains("Call the tool echo"));
        let tokens = deployment.exchange(&client, &authorized).await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["scope"], "mcp:tools mcp:echo offline_access");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(header(&access)["typ"], "at+jwt");
        assert_eq!(header(&access)["alg"], "ES256");
        let access_claims = claims(&access);
        assert_eq!(access_claims["iss"], origin);
        assert_eq!(access_claims["aud"], deployment.resource);
        assert_eq!(access_claims["sub"], "alice");
        assert_eq!(access_claims["client_id"], client.client_id.as_str());

        let result = deployment.call_echo(&access).await.unwrap();
        assert_eq!(result["content"][0]["text"], "hi", "{result}");

        // A code is single-use, whichever replica sees the second try.
        let (status, _, body) = deployment.token(&code_exchange(&client, &authorized)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_grant", "already used");

        // The code's reuse revoked that grant; a fresh one goes on.
        let authorized = deployment.authorize(&client.client_id, "alice").await;
        let tokens = deployment.exchange(&client, &authorized).await;
        let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        for i in 0..3 {
            deployment.cluster.restart(i).await;
        }
        let (status, refreshed) = deployment.refresh(&client.client_id, &first_refresh).await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");
        let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(second_refresh, first_refresh, "rotated on every use");
        let second_access = refreshed["access_token"].as_str().unwrap().to_owned();
        deployment.call_echo(&second_access).await.unwrap();

        // The replaced token again: reuse, and the whole grant goes.
        let (status, body) = deployment.refresh(&client.client_id, &first_refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_grant", "already used");
        let (status, body) = deployment.refresh(&client.client_id, &second_refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_oauth_error(&body, "invalid_grant", "unknown, expired or revoked");
        let deadline = Instant::now() + REVOCATION_DELAY;
        loop {
            match deployment.probe(&second_access).await {
                StatusCode::UNAUTHORIZED => break,
                other => assert!(
                    Instant::now() < deadline,
                    "the revoked grant's access token still works: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
}

/// A page of the authorization endpoint: its status and that it says `says`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_metadata_document_client_signs_in_and_its_document_is_cached() {
    bounded(async {
        let documents = serve_documents().await;
        let client_id = format!("{}/client.json", documents.origin);
        // Loopback documents over http: only with the switch that tests and closed networks use.
        let deployment = deploy(1, true, &["--client-metadata-private-targets"]).await;
        let authorized = deployment.authorize(&client_id, "dana").await;
        assert!(
            authorized.consent_page.contains("Metadata Document Client"),
            "the consent page names the client from its document"
        );
        assert!(
            authorized.consent_page.contains("127.0.0.1"),
            "and where its id points"
        );
        let tokens = deployment
            .exchange(
                &Registered {
                    client_id: client_id.clone(),
                },
                &authorized,
            )
            .await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(claims(access)["client_id"], client_id.as_str());
        deployment.call_echo(access).await.unwrap();
        assert_eq!(
            documents.fetches.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "authorize, consent and token used one fetch: the document is cached"
        );

        // A document that names another client id is refused, on a page.
        let pkce = Pkce::new();
        let wrong = format!("{}/wrong.json", documents.origin);
        let url = deployment.authorization_url(&wrong, &pkce, &[]);
        let (status, body) = page(&deployment, &url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("client_id"), "{body}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_key_of_the_key_file_signs_and_every_key_is_published() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use base64::engine::general_purpose::STANDARD;

    bounded(async {
        let pem: String = (0..2)
            .map(|_| {
                let der = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .unwrap()
                    .to_pkcs8v1()
                    .unwrap();
                format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    STANDARD.encode(der.as_ref())
                )
            })
            .collect();
        let path =
            std::env::temp_dir().join(format!("shoal-oauth-keys-{}.pem", std::process::id()));
        std::fs::write(&path, pem).unwrap();
        let deployment = deploy(1, true, &["--signing-keys-file", path.to_str().unwrap()]).await;
        let jwks: Value = deployment.get_json("/oauth/jwks").await;
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids.len(), 2, "{jwks}");
        let client = deployment.register_public().await;
        let authorized = deployment.authorize(&client.client_id, "erin").await;
        let tokens = deployment.exchange(&client, &authorized).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(header(access)["kid"], kids[0], "the first key signs");
        deployment.call_echo(access).await.unwrap();
        let _ = std::fs::remove_file(&path);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_oauth2_upstream_names_the_user_through_its_userinfo_endpoint() {
    bounded(async {
        // GitHub-style: no discovery and no id_token; Shoal authenticates with
        // client_secret_post and asks the userinfo endpoint who logged in. Two replicas on
        // Redis, so the callback and the token request land on different ones.
        let deployment = deploy_with(2, false, UpstreamKind::PlainOAuth2, &[]).await;
        let client = deployment.register_public().await;
        let authorized = deployment.authorize(&client.client_id, "frank").await;
        assert!(
            authorized.consent_page.contains("frank"),
            "the consent page names the user the userinfo answer named"
        );
        let tokens = deployment.exchange(&client, &authorized).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(claims(access)["sub"], "frank");
        deployment.call_echo(access).await.unwrap();
        drop(deployment);

        // A userinfo answer without the configured field names no one: the sign-in ends at
        // the client with server_error, and nothing is issued.
        let deployment = deploy_with(
            1,
            true,
            UpstreamKind::PlainOAuth2,
            &["--upstream-subject-field", "id"],
        )
        .await;
        let client = deployment.register_public().await;
        let url = deployment.authorization_url(&client.client_id, &Pkce::new(), &[]);
        let walk = shoal_testkit::browser::HeadlessUser::new("grace")
            .authorize(&url, REDIRECT, shoal_testkit::browser::Decision::Approve)
            .await
            .unwrap_or_else(|e| panic!("the authorization walk failed: {e}"));
        let params = query(&walk.redirect);
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("server_error"),
            "{}",
            walk.redirect
        );
        assert_eq!(
            params.get("error_description").map(String::as_str),
            Some("the sign-in at the identity provider could not be verified")
        );
        assert_eq!(params.get("state").map(String::as_str), Some("state-123"));
        assert!(!params.contains_key("code"), "{}", walk.redirect);
    })
    .await;
}
