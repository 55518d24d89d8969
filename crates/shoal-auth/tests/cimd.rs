//! Client ID Metadata Documents fetched over real HTTP on loopback: a small axum server serves
//! good and bad documents and counts the requests of each path, the in-memory host is the
//! cache. Loopback is a private target, so these tests allow private targets and `http`, except
//! those that check the refusal. The fuzz target's seeds run through its entry point here too.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shoal_auth::fuzzing::oauth::{
    CimdError, CimdResolver, ClientOrigin, FetchPolicy, RedirectPolicy, TokenEndpointAuthMethod,
};
use shoal_core::host::{KeyValue, MemoryHost, MemoryHostConfig};
use shoal_core::ids::NodeId;
use shoal_testkit::{TestServer, spawn_router};

/// Requests per path.
type Hits = Arc<Mutex<HashMap<String, usize>>>;

struct Fixture {
    server: TestServer,
    hits: Hits,
    cache: Arc<dyn KeyValue>,
}

impl Fixture {
    async fn start() -> Fixture {
        let hits = Hits::default();
        let router = Router::new().fallback(serve).with_state(hits.clone());
        let server = spawn_router(router).await;
        let cache: Arc<dyn KeyValue> = Arc::new(MemoryHost::new(
            NodeId::new("cimd"),
            MemoryHostConfig::default(),
        ));
        Fixture {
            server,
            hits,
            cache,
        }
    }

    fn resolver(&self, policy: FetchPolicy) -> CimdResolver {
        CimdResolver::new(policy, self.cache.clone()).unwrap()
    }

    /// A resolver that may fetch from loopback over http.
    fn open(&self) -> CimdResolver {
        self.resolver(open_policy())
    }

    fn id(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn open_policy() -> FetchPolicy {
    FetchPolicy {
        allow_private_targets: true,
        allow_http: true,
        ..FetchPolicy::default()
    }
}

fn document(client_id: &str) -> serde_json::Value {
    json!({
        "client_id": client_id,
        "client_name": "Loopback test client",
        "client_uri": "https://app.example.com",
        "redirect_uris": ["http://127.0.0.1:33418/callback", "https://app.example.com/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

fn json_response(value: &serde_json::Value, headers: &[(header::HeaderName, &str)]) -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name.clone(), value.parse().unwrap());
    }
    response
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

async fn serve(State(hits): State<Hits>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let own_id = format!("http://{host}{path}");
    match path.as_str() {
        "/good" | "/client.json" => json_response(&document(&own_id), &[]),
        "/no-store" => json_response(&document(&own_id), &[(header::CACHE_CONTROL, "no-store")]),
        "/max-age" => json_response(
            &document(&own_id),
            &[(header::CACHE_CONTROL, "public, max-age=600")],
        ),
        "/json-type" => {
            let mut response = json_response(&document(&own_id), &[]);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/oauth-client+json; charset=utf-8"
                    .parse()
                    .unwrap(),
            );
            response
        }
        "/wrong-id" => json_response(&document(&format!("http://{host}/other")), &[]),
        "/secret" => {
            let mut doc = document(&own_id);
            doc["client_secret"] = "shh".into();
            json_response(&doc, &[])
        }
        "/basic" => {
            let mut doc = document(&own_id);
            doc["token_endpoint_auth_method"] = "client_secret_basic".into();
            json_response(&doc, &[])
        }
        "/bad-redirect" => {
            let mut doc = document(&own_id);
            doc["redirect_uris"] = json!(["http://evil.example/cb"]);
            json_response(&doc, &[])
        }
        "/big" => {
            // Streamed in chunks without a Content-Length: the cap applies as it arrives.
            let mut doc = document(&own_id);
            doc["padding"] = "x".repeat(8 * 1024).into();
            let text = doc.to_string();
            let chunks: Vec<Result<String, std::io::Error>> = text
                .as_bytes()
                .chunks(1000)
                .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
                .collect();
            let mut response = Response::new(Body::from_stream(futures_stream(chunks)));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            response
        }
        "/big-declared" => {
            let mut doc = document(&own_id);
            doc["padding"] = "x".repeat(8 * 1024).into();
            json_response(&doc, &[])
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json_response(&document(&own_id), &[])
        }
        "/html" => ([(header::CONTENT_TYPE, "text/html")], "<html></html>").into_response(),
        "/untyped" => Response::new(Body::from(document(&own_id).to_string())),
        "/missing" => StatusCode::NOT_FOUND.into_response(),
        "/hop/0" => json_response(&document(&format!("http://{host}/hop/3")), &[]),
        "/hop/1" => redirect("/hop/0"),
        "/hop/2" => redirect(&format!("http://{host}/hop/1")),
        "/hop/3" => redirect("2"),
        "/to-file" => redirect("file:///etc/passwd"),
        "/to-userinfo" => redirect(&format!("http://user:pw@{host}/good")),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A stream of ready items (axum's `Body::from_stream` wants a `TryStream`).
fn futures_stream(
    items: Vec<Result<String, std::io::Error>>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> + Send + 'static {
    futures::stream::iter(items)
}

fn assert_refusal(
    result: Result<shoal_auth::fuzzing::oauth::Client, CimdError>,
    description: &str,
) {
    let error = result.unwrap_err();
    assert_eq!(error.code(), "invalid_client");
    assert_eq!(error.description(), description);
}

#[tokio::test]
async fn a_good_document_is_fetched_once_then_served_from_the_cache() {
    let fixture = Fixture::start().await;
    let resolver = fixture.open();
    let id = fixture.id("/good");
    let client = resolver
        .resolve(&id, &RedirectPolicy::default())
        .await
        .unwrap();
    assert_eq!(client.client_id, id);
    assert_eq!(client.origin, ClientOrigin::MetadataDocument);
    assert_eq!(
        client.token_endpoint_auth_method,
        TokenEndpointAuthMethod::None
    );
    assert_eq!(client.client_name.as_deref(), Some("Loopback test client"));
    assert_eq!(
        client.redirect_uris,
        [
            "http://127.0.0.1:33418/callback",
            "https://app.example.com/cb"
        ]
    );
    assert_eq!(fixture.hits("/good"), 1);

    let again = resolver
        .resolve(&id, &RedirectPolicy::default())
        .await
        .unwrap();
    assert_eq!(again, client);
    assert_eq!(
        fixture.hits("/good"),
        1,
        "the cached document was fetched again"
    );

    // Another resolver on the same store (another replica) uses the cache too.
    let other = fixture.open();
    other
        .resolve(&id, &RedirectPolicy::default())
        .await
        .unwrap();
    assert_eq!(fixture.hits("/good"), 1);

    let max_age = fixture.id("/max-age");
    resolver
        .resolve(&max_age, &RedirectPolicy::default())
        .await
        .unwrap();
    resolver
        .resolve(&max_age, &RedirectPolicy::default())
        .await
        .unwrap();
    assert_eq!(fixture.hits("/max-age"), 1);

    let typed = fixture.id("/json-type");
    resolver
        .resolve(&typed, &RedirectPolicy::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_no_store_document_is_fetched_every_time() {
    let fixture = Fixture::start().await;
    let resolver = fixture.open();
    let id = fixture.id("/no-store");
    resolver
        .resolve(&id, &RedirectPolicy::default())
        .await
        .unwrap();
    resolver
        .resolve(&id, &RedirectPolicy::default())
        .await
        .unwrap();
    assert_eq!(fixture.hits("/no-store"), 2);
}

#[tokio::test]
async fn a_cached_client_is_checked_against_the_current_policy() {
    let fixture = Fixture::start().await;
    let resolver = fixture.open();
    let id = fixture.id("/good");
    resolver
        .resolve(&id, &RedirectPolicy::default())
        .await
        .unwrap();
    let narrow = RedirectPolicy::new(["https://app.example.com/cb"]).unwrap();
    assert_refusal(
        resolver.resolve(&id, &narrow).await,
        "the client metadata document is invalid: redirect URI \"http://127.0.0.1:33418/callback\" \
         is refused: the server's redirect URI policy does not allow it",
    );
    assert_eq!(fixture.hits("/good"), 2, "a narrowed policy refetches");
}

#[tokio::test]
async fn loopback_targets_are_refused_unless_allowed() {
    let fixture = Fixture::start().await;
    let resolver = fixture.resolver(FetchPolicy {
        allow_http: true,
        ..FetchPolicy::default()
    });
    let port = fixture.server.addr().port();
    for (id, host) in [
        (fixture.id("/good"), "127.0.0.1"),
        (format!("http://localhost:{port}/good"), "localhost"),
        (
            format!("http://[::ffff:7f00:1]:{port}/good"),
            "[::ffff:7f00:1]",
        ),
        (format!("http://[::1]:{port}/good"), "[::1]"),
    ] {
        assert_refusal(
            resolver.resolve(&id, &RedirectPolicy::default()).await,
            &format!(
                "the client metadata document's host {host} is refused: it is not a public address"
            ),
        );
    }
    assert_eq!(fixture.hits("/good"), 0, "a refused target was contacted");

    // The same documents with private targets allowed.
    let open = fixture.open();
    open.resolve(&fixture.id("/good"), &RedirectPolicy::default())
        .await
        .unwrap();
    open.resolve(
        &format!("http://localhost:{port}/client.json"),
        &RedirectPolicy::default(),
    )
    .await
    .unwrap();
    assert_eq!(fixture.hits("/client.json"), 1);
}

#[tokio::test]
async fn http_client_ids_are_refused_by_default() {
    let fixture = Fixture::start().await;
    let resolver = fixture.resolver(FetchPolicy {
        allow_private_targets: true,
        ..FetchPolicy::default()
    });
    let id = fixture.id("/good");
    assert_refusal(
        resolver.resolve(&id, &RedirectPolicy::default()).await,
        &format!("client_id {id:?} is not a client metadata document URL: it must be an https URL"),
    );
    assert_eq!(fixture.hits("/good"), 0);
}

#[tokio::test]
async fn bad_documents_are_refused() {
    let fixture = Fixture::start().await;
    let resolver = fixture.open();
    let port = fixture.server.addr().port();
    let cases = [
        (
            "/wrong-id",
            format!(
                "the client metadata document's client_id \"http://127.0.0.1:{port}/other\" is not \
                 the URL it was fetched from"
            ),
        ),
        (
            "/secret",
            "the client metadata document uses a shared secret (client_secret); a metadata \
             document client authenticates with none (or private_key_jwt, unsupported here)"
                .to_owned(),
        ),
        (
            "/basic",
            "the client metadata document uses a shared secret (client_secret_basic); a metadata \
             document client authenticates with none (or private_key_jwt, unsupported here)"
                .to_owned(),
        ),
        (
            "/bad-redirect",
            "the client metadata document is invalid: redirect URI \"http://evil.example/cb\" is \
             refused: http is allowed for loopback hosts (127.0.0.1, [::1], localhost) only: use https"
                .to_owned(),
        ),
        (
            "/big",
            "the client metadata document is larger than 5120 bytes".to_owned(),
        ),
        (
            "/big-declared",
            "the client metadata document is larger than 5120 bytes".to_owned(),
        ),
        (
            "/html",
            "the client metadata document is served as \"text/html\", not application/json (or a \
             +json type)"
                .to_owned(),
        ),
        (
            "/untyped",
            "the client metadata document is served as no content type, not application/json (or \
             a +json type)"
                .to_owned(),
        ),
        (
            "/missing",
            "the client metadata document URL answered HTTP 404, not 200".to_owned(),
        ),
    ];
    for (path, description) in cases {
        assert_refusal(
            resolver
                .resolve(&fixture.id(path), &RedirectPolicy::default())
                .await,
            &description,
        );
        // A refused document is not cached: asked again, it is fetched again.
        let _ = resolver
            .resolve(&fixture.id(path), &RedirectPolicy::default())
            .await;
        assert_eq!(fixture.hits(path), 2, "{path}");
    }
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let fixture = Fixture::start().await;
    let resolver = fixture.resolver(FetchPolicy {
        timeout: Duration::from_millis(300),
        ..open_policy()
    });
    assert_refusal(
        resolver
            .resolve(&fixture.id("/slow"), &RedirectPolicy::default())
            .await,
        "fetching the client metadata document took longer than 300ms",
    );
}

#[tokio::test]
async fn an_unreachable_host_is_named() {
    // A port nobody listens on: bind one, then close it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let fixture = Fixture::start().await;
    assert_refusal(
        fixture
            .open()
            .resolve(
                &format!("http://127.0.0.1:{port}/c"),
                &RedirectPolicy::default(),
            )
            .await,
        "the client metadata document at 127.0.0.1 could not be fetched: no connection",
    );
}

#[tokio::test]
async fn redirects_are_bounded_and_checked() {
    let fixture = Fixture::start().await;
    // Three redirects (relative, absolute, relative to the directory) are the default limit.
    let id = fixture.id("/hop/3");
    let client = fixture
        .open()
        .resolve(&id, &RedirectPolicy::default())
        .await
        .unwrap();
    assert_eq!(client.client_id, id);
    for hop in ["/hop/3", "/hop/2", "/hop/1", "/hop/0"] {
        assert_eq!(fixture.hits(hop), 1, "{hop}");
    }

    let fresh = Fixture::start().await;
    let strict_fresh = fresh.resolver(FetchPolicy {
        max_redirects: 2,
        ..open_policy()
    });
    assert_refusal(
        strict_fresh
            .resolve(&fresh.id("/hop/3"), &RedirectPolicy::default())
            .await,
        "the client metadata document is behind more than 2 redirects",
    );
    assert_eq!(
        fresh.hits("/hop/0"),
        0,
        "a redirect past the limit was followed"
    );

    let cases = [
        (
            "/to-file",
            "the client metadata document redirects to a refused URL: it is not an https URL",
        ),
        (
            "/to-userinfo",
            "the client metadata document redirects to a refused URL: it has userinfo",
        ),
    ];
    for (path, description) in cases {
        assert_refusal(
            fixture
                .open()
                .resolve(&fixture.id(path), &RedirectPolicy::default())
                .await,
            description,
        );
    }
    assert_eq!(fixture.hits("/good"), 0);
}

/// The seeds of the `oauth_client_metadata` fuzz target through its entry point, on stable:
/// a broken invariant shows in `cargo test`, not only under the fuzzer.
#[test]
fn the_fuzz_seeds_keep_the_invariants() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/oauth_client_metadata");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        shoal_auth::fuzzing::client_metadata(&data);
        seeds += 1;
    }
    assert!(seeds >= 6, "{seeds} seeds in {}", dir.display());
}
