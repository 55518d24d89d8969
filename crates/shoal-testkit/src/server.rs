//! [`spawn_router`]: serve an axum [`Router`] on a loopback port for the length of a test.

use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A router served on `127.0.0.1` at a free port. Dropping it stops accepting connections and
/// shuts the open ones down gracefully, without waiting.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

/// Serves `router` on `127.0.0.1:0` in a background task.
///
/// # Panics
///
/// When no loopback port can be bound. Call it inside a Tokio runtime.
pub async fn spawn_router(router: Router) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    // SSE frames are small; without TCP_NODELAY, Nagle and delayed ACKs hold them ~40 ms.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (shutdown, stop) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stop.await;
        });
        if let Err(error) = serve.await {
            panic!("the test server failed: {error}");
        }
    });
    TestServer {
        addr,
        shutdown: Some(shutdown),
    }
}

impl TestServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The URL of the default MCP endpoint, `/mcp`.
    pub fn mcp_url(&self) -> String {
        self.url("/mcp")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
