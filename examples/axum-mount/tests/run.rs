//! The example binary as a user runs it: the app's own route and the MCP endpoint answer on
//! one port, both through the app's middleware.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use shoal_testkit::McpClient;
use shoal_testkit::example::Example;

#[tokio::test]
async fn the_apps_route_and_mcp_share_one_port_and_its_middleware() {
    let mut example = Example::start(
        env!("CARGO_BIN_EXE_example-axum-mount"),
        &[("SHOAL_SHUTDOWN_DELAY", "300ms")],
    )
    .await;
    let mcp_url = example.mcp_url();
    let admin_url = example.admin_url();
    let root = mcp_url.trim_end_matches("/mcp");

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let page = http.get(format!("{root}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-served-by"], "example-axum-mount");
    assert!(page.text().await.unwrap().contains("MCP is at /mcp"));

    let client = McpClient::connect(mcp_url.clone()).await;
    let greeted = client.call_tool("greet", json!({ "name": "Ada" })).await;
    assert_eq!(
        greeted["content"][0]["text"], "hello, Ada, from the app",
        "{greeted}"
    );
    let ping = client
        .post_raw(
            json!({ "jsonrpc": "2.0", "id": 5, "method": "ping" }),
            |_| {},
        )
        .await;
    assert_eq!(
        ping.header("x-served-by"),
        Some("example-axum-mount"),
        "{ping}"
    );

    // Routes neither the app nor Shoal has are the app's 404.
    let missing = http.get(format!("{root}/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // The app's shutdown drains Shoal: not ready at once, then the open stream ends with a
    // retry hint (its client resumes elsewhere), then the process exits cleanly.
    let mut stream = client.get_stream(None).await;
    let sigterm = tokio::spawn(async move {
        let status = example.terminate().await;
        (example, status)
    });
    let readyz = format!("{admin}/readyz", admin = admin_url);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match http.get(&readyz).send().await {
            Ok(response) if response.status() == 503 => break,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reported not ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Priming and the closing retry hint carry no message; nothing else comes before the end.
    let events = stream.collect_events().await;
    assert!(
        events.iter().all(|event| event.json().is_none()),
        "{events:?}"
    );
    let (_example, status) = sigterm.await.unwrap();
    assert!(status.success(), "{status}");
}
