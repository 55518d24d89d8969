//! [`TcpFaultProxy`]: a TCP forwarder on a loopback port in front of a server (Redis, say),
//! whose faults are switched at run time: added latency, a stall (forwarding paused, connections
//! held open), every connection dropped, new connections refused.
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use shoal_testkit::redis::RedisServer;
//! use shoal_testkit::tcp_fault::TcpFaultProxy;
//!
//! let redis = RedisServer::start().await;
//! let proxy = TcpFaultProxy::start(("127.0.0.1", redis.port())).await;
//! let url = proxy.url(); // give this to the client instead of redis.url()
//! proxy.set_latency(Duration::from_millis(50));
//! proxy.pause(); // a stall: bytes stop both ways, connections stay open
//! proxy.resume();
//! proxy.drop_connections(); // every current connection is closed
//! # let _ = url;
//! # }
//! ```
//!
//! Each direction of a connection is a reader that stamps every chunk with the time it was read
//! and a writer that forwards it once `stamp + latency` has passed and forwarding is not
//! paused: order is kept and latency does not pile up on pipelined chunks. At most
//! [`CHUNKS_IN_FLIGHT`] chunks wait per direction; then the reader stops reading (TCP
//! backpressure). Dropping the proxy stops its listener and closes every connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Chunks buffered per direction of a connection before its reader stops reading.
pub const CHUNKS_IN_FLIGHT: usize = 64;
/// Bound on connecting to the target for one accepted connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Size of one read.
const CHUNK_SIZE: usize = 16 * 1024;

/// Counters of a [`TcpFaultProxy`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFaultStats {
    /// Connections accepted (refused ones included).
    pub accepted: u64,
    /// Connections closed at once because [`TcpFaultProxy::refuse`] was on.
    pub refused: u64,
    /// Connections open now (both sides connected).
    pub open: u64,
    /// Connections closed by [`TcpFaultProxy::drop_connections`].
    pub dropped: u64,
    /// Bytes forwarded from clients to the target.
    pub bytes_to_target: u64,
    /// Bytes forwarded from the target to clients.
    pub bytes_to_client: u64,
}

/// A TCP forwarder on `127.0.0.1:<free port>` with run-time faults; stopped on drop.
#[derive(Debug)]
pub struct TcpFaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    latency: Mutex<Duration>,
    /// True while forwarding is paused; writers wait for it to turn false.
    paused: watch::Sender<bool>,
    /// Bumped by `drop_connections` (and on drop): every connection of an older generation ends.
    generation: watch::Sender<u64>,
    refuse: AtomicBool,
    accepted: AtomicU64,
    refused: AtomicU64,
    open: AtomicU64,
    dropped: AtomicU64,
    bytes_to_target: AtomicU64,
    bytes_to_client: AtomicU64,
}

impl TcpFaultProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    ///
    /// # Panics
    ///
    /// When `target` does not resolve or no loopback port can be bound.
    pub async fn start(target: impl ToSocketAddrs) -> Self {
        let target = tokio::net::lookup_host(target)
            .await
            .expect("the fault proxy's target resolves")
            .next()
            .expect("the fault proxy's target has an address");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the fault proxy");
        let addr = listener.local_addr().expect("the fault proxy's address");
        let shared = Arc::new(Shared {
            target,
            latency: Mutex::new(Duration::ZERO),
            paused: watch::channel(false).0,
            generation: watch::channel(0).0,
            refuse: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            open: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            bytes_to_target: AtomicU64::new(0),
            bytes_to_client: AtomicU64::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        TcpFaultProxy {
            addr,
            shared,
            accept_task,
        }
    }

    /// `redis://127.0.0.1:<port>`: the proxy as a Redis URL.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// The loopback port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address connections are forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Delays every chunk, both directions, by `latency` from when it was read
    /// (`Duration::ZERO` to stop). Applies to chunks read from now on.
    pub fn set_latency(&self, latency: Duration) {
        *self
            .shared
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = latency;
    }

    /// The latency set now.
    pub fn latency(&self) -> Duration {
        *self
            .shared
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Stops forwarding bytes both ways; connections stay open (new ones are accepted and
    /// connected, and stall too). Undone by [`resume`](Self::resume).
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Forwards again, first what was held back, in order.
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Whether forwarding is paused.
    pub fn is_paused(&self) -> bool {
        *self.shared.paused.borrow()
    }

    /// Closes every current connection, both its sides; bytes held back are lost. New
    /// connections are accepted as before.
    pub fn drop_connections(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// While on, every new connection is closed as soon as it is accepted (current ones are
    /// untouched: pair it with [`drop_connections`](Self::drop_connections) for an outage).
    pub fn refuse(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// The counters now.
    pub fn stats(&self) -> TcpFaultStats {
        let s = &self.shared;
        TcpFaultStats {
            accepted: s.accepted.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            open: s.open.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            bytes_to_target: s.bytes_to_target.load(Ordering::Relaxed),
            bytes_to_client: s.bytes_to_client.load(Ordering::Relaxed),
        }
    }
}

impl Drop for TcpFaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        // Ends every connection task; they hold the `Shared`, not the proxy.
        self.drop_connections();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors, say: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        if shared.refuse.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        }
        tokio::spawn(connection(client, Arc::clone(&shared)));
    }
}

/// Forwards one client connection until either side closes or its generation is dropped.
async fn connection(client: TcpStream, shared: Arc<Shared>) {
    let mut generation = shared.generation.subscribe();
    let born = *generation.borrow_and_update();
    let dropped = async {
        // Ends when the generation moves on (or the proxy is gone).
        let _ = generation.wait_for(|g| *g != born).await;
    };
    tokio::pin!(dropped);
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.target));
    let server = tokio::select! {
        connected = connect => match connected {
            Ok(Ok(server)) => server,
            _ => return,
        },
        () = &mut dropped => return,
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    shared.open.fetch_add(1, Ordering::Relaxed);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pipe(client_read, server_write, &shared, &shared.bytes_to_target);
    let down = pipe(server_read, client_write, &shared, &shared.bytes_to_client);
    tokio::select! {
        // One direction ending (EOF or error) ends the connection: Redis clients do not
        // half-close, and a stalled half would hide the close from the other side.
        () = up => {}
        () = down => {}
        () = &mut dropped => {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    shared.open.fetch_sub(1, Ordering::Relaxed);
    // Both halves of both sockets drop here: each peer sees its connection closed.
}

/// One direction: a reader stamping chunks, a writer forwarding them after the latency and
/// while not paused. Returns when the reader hits EOF or an error and everything read has
/// been written, or when the writer fails.
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    shared: &Shared,
    counter: &AtomicU64,
) {
    let (chunks, mut ready) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_IN_FLIGHT);
    let read = async move {
        let mut buf = vec![0u8; CHUNK_SIZE];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let latency = *shared.latency.lock().unwrap_or_else(|e| e.into_inner());
            if chunks
                .send((Instant::now() + latency, buf[..n].to_vec()))
                .await
                .is_err()
            {
                break;
            }
        }
        // Dropping `chunks` tells the writer to finish.
    };
    let write = async move {
        let mut paused = shared.paused.subscribe();
        while let Some((due, chunk)) = ready.recv().await {
            tokio::time::sleep_until(due).await;
            if paused.wait_for(|p| !*p).await.is_err() {
                return;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown().await;
    };
    // The writer ends after the reader (the channel closes) or on its own failure.
    let (_, ()) = tokio::join!(read, write);
}
