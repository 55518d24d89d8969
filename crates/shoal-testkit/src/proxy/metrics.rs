//! The proxy's Prometheus metrics: the separate `GET /metrics` listener and the text it
//! serves (the names and labels are in the module docs of [`super`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{STATUS_CLASSES, Shared, plain};

/// Answers `GET /metrics` with the metrics until the task is aborted; anything else is `404`.
pub(super) async fn serve_metrics(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let shared = shared.clone();
                            async move {
                                if request.method() != Method::GET || request.uri().path() != "/metrics" {
                                    return Ok::<_, Infallible>(plain(StatusCode::NOT_FOUND, "not found"));
                                }
                                let mut response = Response::new(
                                    Full::new(Bytes::from(shared.render_metrics()))
                                        .map_err(|never| match never {})
                                        .boxed(),
                                );
                                response.headers_mut().insert(
                                    header::CONTENT_TYPE,
                                    header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                                );
                                Ok(response)
                            }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

// === impl Shared ===

impl Shared {
    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub(super) fn render_metrics(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP rr_proxy_requests_total Requests answered with a backend's response, by \
             status class (error: the exchange failed after the connect).\n\
             # TYPE rr_proxy_requests_total counter"
        );
        for state in &self.backends {
            let backend = label_value(&state.backend.name);
            for (class, count) in STATUS_CLASSES.iter().zip(&state.requests) {
                let _ = writeln!(
                    out,
                    "rr_proxy_requests_total{{backend=\"{backend}\",status=\"{class}\"}} {}",
                    count.load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP rr_proxy_connect_failures_total Connects to a backend that failed (the \
             request was retried on the next backend).\n\
             # TYPE rr_proxy_connect_failures_total counter"
        );
        for state in &self.backends {
            let _ = writeln!(
                out,
                "rr_proxy_connect_failures_total{{backend=\"{}\"}} {}",
                label_value(&state.backend.name),
                state.connect_failures.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rr_proxy_backend_ready Whether the backend gets requests (1: its last /readyz \
             probe answered 200 and no connect failed since).\n\
             # TYPE rr_proxy_backend_ready gauge"
        );
        for state in &self.backends {
            let _ = writeln!(
                out,
                "rr_proxy_backend_ready{{backend=\"{}\"}} {}",
                label_value(&state.backend.name),
                u8::from(state.ready.load(Ordering::SeqCst))
            );
        }
        out
    }
}

/// `value` escaped for a label value of the Prometheus text format.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
