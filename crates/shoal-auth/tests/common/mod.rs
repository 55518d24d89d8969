//! Test fixtures: a loopback authorization server (metadata + JWKS), keys made at test time
//! (Ed25519, P-256) or checked in (RSA, see `tests/data/gen-keys.sh`), token signing, and the
//! app under test (the auth layer in front of a handler that reports its principal).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shoal_auth::{Auth, AuthConfig, JwtConfig};
use shoal_core::session::Principal;
use tower::ServiceExt;

pub const PUBLIC_URL: &str = "https://mcp.example.com/mcp";
/// Where the endpoint listens: the transport's default, the path of [`PUBLIC_URL`].
pub const ENDPOINT_PATH: &str = shoal_transport::config::DEFAULT_PATH;
pub const RESOURCE_METADATA: &str =
    "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// A signing key and its public JWK.
#[derive(Clone)]
pub struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    pub fn rsa(kid: &str) -> TestKey {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
        let pem = std::fs::read(format!("{data}rsa-private.pem")).unwrap();
        let n = std::fs::read_to_string(format!("{data}rsa-n.txt")).unwrap();
        let e = std::fs::read_to_string(format!("{data}rsa-e.txt")).unwrap();
        TestKey {
            alg: Algorithm::RS256,
            kid: kid.into(),
            encoding: EncodingKey::from_rsa_pem(&pem).unwrap(),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n.trim(), "e": e.trim()}),
        }
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        TestKey {
            alg: Algorithm::EdDSA,
            kid: kid.into(),
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}),
        }
    }

    pub fn p256(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        TestKey {
            alg: Algorithm::ES256,
            kid: kid.into(),
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}),
        }
    }

    pub fn header(&self) -> Header {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(self.header(), claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A loopback authorization server serving RFC 8414 metadata for its issuer and a JWKS that
/// tests can change, counting JWKS fetches.
pub struct TestAs {
    pub addr: SocketAddr,
    pub issuer: String,
    pub jwks: Arc<Mutex<Vec<Value>>>,
    pub fetches: Arc<AtomicUsize>,
}

impl TestAs {
    /// Serves metadata for issuer `http://127.0.0.1:<port><issuer_path>` at `metadata_path`
    /// (a path, with `{issuer_path}` replaced).
    pub async fn start(issuer_path: &str, metadata_path: &str, keys: &[&TestKey]) -> TestAs {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}{issuer_path}");
        let jwks = Arc::new(Mutex::new(
            keys.iter().map(|k| k.jwk.clone()).collect::<Vec<Value>>(),
        ));
        let fetches = Arc::new(AtomicUsize::new(0));
        let metadata = json!({
            "issuer": issuer,
            "jwks_uri": format!("http://{addr}/jwks"),
            "token_endpoint": format!("http://{addr}/token"),
        });
        let (served, counter) = (jwks.clone(), fetches.clone());
        let router = Router::new()
            .route(
                metadata_path,
                get(move || {
                    let metadata = metadata.clone();
                    async move { axum::Json(metadata) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let keys = served.lock().unwrap().clone();
                    async move { axum::Json(json!({ "keys": keys })) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestAs {
            addr,
            issuer,
            jwks,
            fetches,
        }
    }

    /// An issuer without a path, metadata at the RFC 8414 location.
    pub async fn simple(keys: &[&TestKey]) -> TestAs {
        TestAs::start("", "/.well-known/oauth-authorization-server", keys).await
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn add_key(&self, key: &TestKey) {
        self.jwks.lock().unwrap().push(key.jwk.clone());
    }

    pub fn config(&self) -> JwtConfig {
        JwtConfig::new(&self.issuer, PUBLIC_URL)
    }

    /// Valid claims for this issuer and the test resource.
    pub fn claims(&self, scope: &str) -> Value {
        json!({
            "iss": self.issuer,
            "sub": "user-1",
            "aud": PUBLIC_URL,
            "iat": now(),
            "exp": now() + 300,
            "scope": scope,
        })
    }
}

/// The app under test: the auth layer in front of `/mcp`, whose handler answers with the
/// principal it got (and whether the token header reached it); the well-known routes beside.
pub async fn start_app(config: AuthConfig) -> (Router, Auth) {
    let auth = Auth::start(config, PUBLIC_URL, ENDPOINT_PATH)
        .await
        .unwrap();
    let router = Router::new()
        .route("/mcp", post(whoami))
        .layer(auth.layer())
        .merge(auth.routes());
    (router, auth)
}

async fn whoami(request: Request) -> axum::Json<Value> {
    let principal = request.extensions().get::<Principal>().cloned();
    axum::Json(json!({
        "principal": principal.as_ref().map(|p| p.id.clone()),
        "scopes": principal.as_ref().map(|p| p.scopes.clone()).unwrap_or_default(),
        "claims": principal.map(|p| p.claims).unwrap_or_default(),
        "token_forwarded": request.headers().contains_key(AUTHORIZATION)
            || request.headers().contains_key("x-api-key"),
    }))
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub challenge: Option<String>,
    pub headers: http::HeaderMap,
    pub body: Value,
}

pub async fn send(router: &Router, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::post("/mcp");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    call(router, request.body(Body::from("{}")).unwrap()).await
}

pub async fn bearer(router: &Router, token: &str) -> Answer {
    send(router, &[("authorization", &format!("Bearer {token}"))]).await
}

pub async fn call(router: &Router, request: Request) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let challenge = headers
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        challenge,
        headers,
        body,
    }
}

/// `Bearer resource_metadata="…"[, scope="…"]` followed by `extra` (e.g. an error).
pub fn jwt_challenge(scope: Option<&str>, extra: Option<(&str, &str)>) -> String {
    let mut out = format!("Bearer resource_metadata=\"{RESOURCE_METADATA}\"");
    if let Some(scope) = scope {
        out.push_str(&format!(", scope=\"{scope}\""));
    }
    if let Some((error, description)) = extra {
        out.push_str(&format!(
            ", error=\"{error}\", error_description=\"{description}\""
        ));
    }
    out
}
