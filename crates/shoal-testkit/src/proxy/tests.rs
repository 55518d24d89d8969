//! The proxy's tests: real backends (axum routers on loopback) behind it.

use std::sync::atomic::AtomicUsize;

use axum::Router;
use axum::body::Body as AxumBody;
use axum::routing::get;
use futures::StreamExt;
use http::header::HeaderName;
use tokio::sync::mpsc;

use super::*;
use crate::server::{TestServer, spawn_router};

/// A backend whose `/mcp` answers its name (POST echoes the body after it) and whose
/// `/readyz` answers 200 while `ready` is set.
async fn backend(name: &'static str, ready: Arc<AtomicBool>) -> (TestServer, TestServer) {
    let mcp = Router::new().route(
        "/mcp",
        get(move || async move { name })
            .post(move |body: String| async move { format!("{name}:{body}") }),
    );
    let admin = Router::new().route(
        "/readyz",
        get(move || async move {
            if ready.load(Ordering::SeqCst) {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }),
    );
    (spawn_router(mcp).await, spawn_router(admin).await)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

#[tokio::test]
async fn spreads_requests_and_skips_unready_and_refusing_backends() {
    let readiness: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::new(AtomicBool::new(true))).collect();
    let mut servers = Vec::new();
    let mut backends = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let (mcp, admin) = backend(name, readiness[i].clone()).await;
        backends.push(Backend::new(
            name,
            &mcp.mcp_url(),
            &format!("http://{}", admin.addr()),
        ));
        servers.push((mcp, admin));
    }
    let proxy = RoundRobinProxy::start(backends).await;
    let client = http();
    let mut answers = Vec::new();
    for i in 0..6 {
        let text = client
            .post(proxy.url())
            .body(format!("{i}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        answers.push(text);
    }
    assert_eq!(answers, ["a:0", "b:1", "c:2", "a:3", "b:4", "c:5"]);

    // b reports not ready: skipped once the proxy has probed it.
    readiness[1].store(false, Ordering::SeqCst);
    proxy.wait_ready(1, false, Duration::from_secs(2)).await;
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(
            client
                .get(proxy.url())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    assert_eq!(names, ["a", "c", "a", "c"]);

    // c stops listening while still "ready": its requests go to the next backend.
    readiness[1].store(true, Ordering::SeqCst);
    proxy.wait_ready(1, true, Duration::from_secs(2)).await;
    let c_index = 2;
    let (c_mcp, _c_admin) = servers.pop().unwrap();
    drop(c_mcp);
    // Let the graceful shutdown close the pooled connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.take_served();
    for _ in 0..6 {
        let response = client.get(proxy.url()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let served = proxy.take_served();
    assert!(served.iter().all(|s| s.backend != c_index), "{served:#?}");
    assert!(
        served.windows(2).all(|w| w[0].backend != w[1].backend),
        "{served:#?}"
    );
}

#[tokio::test]
async fn metrics_count_forwarded_requests() {
    let ready = Arc::new(AtomicBool::new(true));
    let (a_mcp, a_admin) = backend("a", ready.clone()).await;
    let (b_mcp, b_admin) = backend("b", Arc::new(AtomicBool::new(false))).await;
    // c refuses connections: its listener is gone, but it answers /readyz.
    let (c_mcp, c_admin) = backend("c", ready.clone()).await;
    let c_url = c_mcp.mcp_url();
    drop(c_mcp);
    let mut proxy = RoundRobinProxy::start(vec![
        Backend::new("a", &a_mcp.mcp_url(), &format!("http://{}", a_admin.addr())),
        Backend::new("b", &b_mcp.mcp_url(), &format!("http://{}", b_admin.addr())),
        Backend::new("c\"1", &c_url, &format!("http://{}", c_admin.addr())),
    ])
    .await;
    let metrics_addr = proxy
        .serve_metrics((Ipv4Addr::LOCALHOST, 0).into())
        .await
        .unwrap();
    // Let the graceful shutdown of c's listener finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = http();
    for _ in 0..3 {
        let response = client.get(proxy.url()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = client
        .post(format!("http://{}{}", proxy.addr(), "/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    let text = response.text().await.unwrap();
    let sample = |line: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(line)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {line} in\n{text}"))
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(
        sample("rr_proxy_requests_total{backend=\"a\",status=\"2xx\"}"),
        3
    );
    assert_eq!(
        sample("rr_proxy_requests_total{backend=\"a\",status=\"4xx\"}"),
        1
    );
    assert_eq!(
        sample("rr_proxy_requests_total{backend=\"b\",status=\"2xx\"}"),
        0
    );
    assert_eq!(
        sample("rr_proxy_requests_total{backend=\"c\\\"1\",status=\"2xx\"}"),
        0
    );
    // c's connect failed once and marked it down until a probe found it ready again.
    assert!(sample("rr_proxy_connect_failures_total{backend=\"c\\\"1\"}") >= 1);
    assert_eq!(sample("rr_proxy_connect_failures_total{backend=\"a\"}"), 0);
    assert_eq!(sample("rr_proxy_backend_ready{backend=\"a\"}"), 1);
    assert_eq!(sample("rr_proxy_backend_ready{backend=\"b\"}"), 0);
    for name in [
        "rr_proxy_requests_total",
        "rr_proxy_connect_failures_total",
        "rr_proxy_backend_ready",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{text}");
        assert!(text.contains(&format!("# TYPE {name} ")), "{text}");
    }
    // The same families are rendered in-process.
    assert!(
        proxy
            .metrics()
            .starts_with("# HELP rr_proxy_requests_total ")
    );
    let missing = client
        .get(format!("http://{metrics_addr}/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn streams_events_as_they_are_written() {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let rx = Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let requests = Arc::new(AtomicUsize::new(0));
    let mcp = Router::new().route(
        "/mcp",
        get(move || {
            let rx = rx.clone();
            requests.fetch_add(1, Ordering::SeqCst);
            async move {
                let rx = rx.lock().await.take().expect("one stream");
                let events = tokio_stream_from(rx);
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .body(AxumBody::from_stream(events))
                    .unwrap()
            }
        }),
    );
    let admin = Router::new().route("/readyz", get(|| async { "ready" }));
    let (mcp, admin) = (spawn_router(mcp).await, spawn_router(admin).await);
    let proxy = RoundRobinProxy::start(vec![Backend::new(
        "only",
        &mcp.mcp_url(),
        &format!("http://{}", admin.addr()),
    )])
    .await;
    let response = http().get(proxy.url()).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    for i in 0..3 {
        let event = Bytes::from(format!("data: {i}\n\n"));
        tx.send(event.clone()).await.unwrap();
        // The next event is only written once this one came through.
        let chunk = tokio::time::timeout(Duration::from_secs(2), body.next())
            .await
            .expect("the event is forwarded at once")
            .unwrap()
            .unwrap();
        assert_eq!(chunk, event);
    }
}

fn tokio_stream_from(
    rx: mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok(bytes), rx))
    })
}

#[test]
fn drops_hop_by_hop_headers() {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONNECTION, "keep-alive, x-private".parse().unwrap());
    headers.insert("keep-alive", "timeout=5".parse().unwrap());
    headers.insert("x-private", "1".parse().unwrap());
    headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
    headers.insert("mcp-session-id", "s".parse().unwrap());
    headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    remove_hop_by_hop(&mut headers);
    let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    left.sort_unstable();
    assert_eq!(left, ["content-type", "mcp-session-id"]);
}

#[tokio::test]
async fn adds_configured_headers_to_requests_that_lack_them() {
    // The backend answers the Authorization and X-Tenant headers it got.
    let mcp = Router::new().route(
        "/mcp",
        get(|headers: HeaderMap| async move {
            let show = |name: &str| {
                headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap_or("?").to_owned())
                    .collect::<Vec<_>>()
                    .join("+")
            };
            format!("{}|{}", show("authorization"), show("x-tenant"))
        }),
    );
    let admin = Router::new().route("/readyz", get(|| async { "ready" }));
    let (mcp, admin) = (spawn_router(mcp).await, spawn_router(admin).await);
    let mut inject = HeaderMap::new();
    let (name, value) = parse_header("Authorization: Bearer injected").unwrap();
    inject.insert(name, value);
    let (name, value) = header_pair("x-tenant", "t1").unwrap();
    inject.append(name.clone(), value);
    inject.append(name, header::HeaderValue::from_static("t2"));
    let proxy = RoundRobinProxy::bind_with_headers(
        (Ipv4Addr::LOCALHOST, 0).into(),
        vec![Backend::new(
            "only",
            &mcp.mcp_url(),
            &format!("http://{}", admin.addr()),
        )],
        false,
        inject,
    )
    .await
    .unwrap();
    let client = http();
    let get = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().text().await.unwrap()
    };
    assert_eq!(get(client.get(proxy.url())).await, "Bearer injected|t1+t2");
    // A request's own header wins, name by name.
    assert_eq!(
        get(client
            .get(proxy.url())
            .header("authorization", "Bearer mine"))
        .await,
        "Bearer mine|t1+t2"
    );
    assert_eq!(
        get(client.get(proxy.url()).header("X-Tenant", "own")).await,
        "Bearer injected|own"
    );
    // The values stay out of debug output.
    assert!(!format!("{:?}", proxy.shared.inject).contains("injected"));
}

#[test]
fn parses_header_specs() {
    let (name, value) = parse_header("Authorization:  Bearer a b ").unwrap();
    assert_eq!(name, header::AUTHORIZATION);
    assert_eq!(value, "Bearer a b");
    assert!(value.is_sensitive());
    assert!(parse_header("no colon").is_err());
    assert!(parse_header("bad name: x").is_err());
    let error = parse_header("x-secret: s3\u{1}cret")
        .map(|_| ())
        .unwrap_err();
    assert!(!error.contains("s3"), "{error}");
}

#[test]
fn parses_backend_specs() {
    let backend = Backend::parse("http://127.0.0.1:8081/mcp=http://127.0.0.1:9091").unwrap();
    assert_eq!(backend.name(), "127.0.0.1:8081");
    assert_eq!(backend.readyz().to_string(), "http://127.0.0.1:9091/readyz");
    assert!(Backend::parse("http://127.0.0.1:8081/mcp").is_err());
    assert!(Backend::parse("ftp://x/mcp=http://y").is_err());
}
