//! Serving HTTP/1 connections with hyper directly (instead of `axum::serve`), so that the
//! connection-level limits are configurable: header size (hyper answers 431 itself beyond its
//! backstop), the idle and header read timeout, and the write timeout that closes a connection
//! whose client stopped reading.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// The connection-level limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// The transport refuses larger headers with a JSON 431; hyper's own limit is a backstop
    /// above it (see [`hyper_header_limit`]).
    pub(crate) max_header_bytes: usize,
    /// Keep-alive idle time, and time to read a request's headers.
    pub(crate) idle_timeout: Duration,
    /// Time a write may stay blocked.
    pub(crate) write_timeout: Duration,
}

/// hyper's header limit: twice the transport's plus room for the request line and the
/// per-header framing, so that the transport sees (and answers with JSON) every request just
/// over its limit, while a flood of headers is cut by hyper before it is buffered.
pub(crate) fn hyper_header_limit(max_header_bytes: usize) -> usize {
    max_header_bytes.saturating_mul(2).max(16 * 1024) + 8 * 1024
}

/// Accepts connections until `shutdown`, then stops accepting, lets every connection finish
/// its in-flight requests (hyper's graceful shutdown), and returns once all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(hyper_header_limit(limits.max_header_bytes).max(64 * 1024))
        .max_header_size(hyper_header_limit(limits.max_header_bytes));
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(5);
                accepted
            }
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(%error, retry_in = ?backoff, "failed to accept");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        // Replies are written in several frames; without TCP_NODELAY, Nagle plus delayed ACKs
        // stalls them for ~40 ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let io = TokioIo::new(WriteTimeout::new(tcp, limits.write_timeout));
        // The peer address, where `axum::serve` would put it: authenticators read it.
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            },
        ));
        let connection = builder.serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A TCP stream whose writes fail with `TimedOut` once they have been blocked (the socket
/// buffer full because the client does not read) for the timeout. hyper then closes the
/// connection and drops the response body, which ends the stream and frees its limit slots:
/// what the client did not read stays in the stream log, and it resumes with `Last-Event-ID`.
/// Memory per connection stays bounded meanwhile: hyper polls the body only when its write
/// buffer has room, and a stream reads its log only when polled.
struct WriteTimeout {
    inner: TcpStream,
    timeout: Duration,
    /// Armed when a write returns `Pending`; reset by any write that makes progress.
    blocked_since: Option<Pin<Box<Sleep>>>,
}

impl WriteTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        WriteTimeout {
            inner,
            timeout,
            blocked_since: None,
        }
    }

    /// Maps a write's poll result through the timeout.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.blocked_since = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let deadline = self
                    .blocked_since
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(deadline.as_mut().poll(cx));
                self.blocked_since = None;
                shoal_transport::metrics::slow_client_closed();
                tracing::debug!(
                    ?timeout,
                    "closing a connection whose client stopped reading"
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "write blocked for the write timeout",
                )))
            }
        }
    }
}

impl AsyncRead for WriteTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
