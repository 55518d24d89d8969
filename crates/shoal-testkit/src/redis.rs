//! A throwaway `redis-server` for tests: its own loopback port and temporary directory, killed
//! on drop. No persistence unless built with [`RedisServerBuilder::aof`] (append-only file,
//! `appendfsync always`: every acknowledged write is on disk before the reply).
//!
//! ```no_run
//! # async fn example() {
//! let redis = shoal_testkit::redis::RedisServer::start().await;
//! let url = redis.url(); // redis://127.0.0.1:<port>
//! # let _ = url;
//! # }
//! ```
//!
//! [`RedisServer::restart`] keeps the data directory: with AOF the data comes back, without it
//! the server comes back empty; [`RedisServer::restart_empty`] wipes the directory first.
//!
//! The binary is `$SHOAL_REDIS_SERVER` if set, else `redis-server` from `PATH`.
//!
//! [`command`] sends one inline command to a Redis on loopback (this one, a cluster node) and
//! reads its reply, for tests that check what Redis holds.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a fresh server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A `redis-server` child process on `127.0.0.1:<port>`.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    aof: bool,
    child: Option<Child>,
}

/// How to start a [`RedisServer`]; from [`RedisServer::builder`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisServerBuilder {
    aof: bool,
}

impl RedisServerBuilder {
    /// Persistence in an append-only file in the server's directory (`appendonly yes`,
    /// `appendfsync always`), reloaded by [`RedisServer::restart`]. Default off.
    pub fn aof(mut self, aof: bool) -> Self {
        self.aof = aof;
        self
    }

    /// Starts the server; see [`RedisServer::start`].
    ///
    /// # Panics
    ///
    /// When `redis-server` cannot be started or does not answer within 10 s.
    pub async fn start(self) -> RedisServer {
        RedisServer::start_with(self).await
    }
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` cannot be started or does not answer within 10 s.
    pub async fn start() -> Self {
        Self::start_with(RedisServerBuilder::default()).await
    }

    /// Options beyond [`start`](Self::start): persistence.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// [`start`](Self::start) with an append-only file (`appendfsync always`).
    ///
    /// # Panics
    ///
    /// When `redis-server` cannot be started or does not answer within 10 s.
    pub async fn start_with_aof() -> Self {
        Self::builder().aof(true).start().await
    }

    async fn start_with(options: RedisServerBuilder) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "shoal-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory for redis-server");
        // The port is free when probed; another process may take it before Redis binds it,
        // so try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                port,
                dir: dir.clone(),
                aof: options.aof,
                child: None,
            };
            if server.spawn_and_wait().await {
                return server;
            }
        }
        panic!("redis-server did not start (see {})", dir.display());
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server persists to an append-only file.
    pub fn aof(&self) -> bool {
        self.aof
    }

    /// The server's directory (`redis.log`, and with AOF `appendonlydir/`).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Kills the server (SIGKILL): every connection breaks; without AOF every key is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (if running) and starts it again on the same port and directory;
    /// waits until it answers `PING`, which Redis does only once the AOF (if any) is loaded.
    /// Without AOF it comes back empty.
    ///
    /// # Panics
    ///
    /// When it does not come back within 10 s.
    pub async fn restart(&mut self) {
        self.kill();
        self.respawn().await;
    }

    /// Kills the server (if running), deletes its data files, and starts it again on the same
    /// port, empty, whatever its persistence.
    ///
    /// # Panics
    ///
    /// When the data cannot be deleted or the server does not come back within 10 s.
    pub async fn restart_empty(&mut self) {
        self.kill();
        for data in ["appendonlydir", "dump.rdb"] {
            let path = self.dir.join(data);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed {
                assert!(
                    e.kind() == std::io::ErrorKind::NotFound,
                    "deleting {}: {e}",
                    path.display()
                );
            }
        }
        self.respawn().await;
    }

    async fn respawn(&mut self) {
        assert!(
            self.spawn_and_wait().await,
            "redis-server did not restart on port {} (see {})",
            self.port,
            self.dir.display()
        );
    }

    /// Whether the server answers `PING` now.
    pub async fn answers_ping(&self) -> bool {
        ping(self.port).await
    }

    /// Spawns the server on `self.port`; true once it answers `PING`.
    async fn spawn_and_wait(&mut self) -> bool {
        let binary =
            std::env::var_os("SHOAL_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (install it or set SHOAL_REDIS_SERVER)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let pid = self.child.as_ref().map(Child::id);
        while tokio::time::Instant::now() < deadline {
            // Another process's server may answer on a port we lost the race for: check that
            // the one answering is ours.
            if ping(self.port).await && server_pid(self.port).await == pid {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                // Most likely the port was taken.
                self.child = None;
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One `PING` over a fresh connection, bounded to one second.
pub(crate) async fn ping(port: u16) -> bool {
    command(port, "PING", Duration::from_secs(1))
        .await
        .is_ok_and(|reply| reply == "+PONG\r\n")
}

/// The `process_id` of the server answering on `port` (`INFO server`), bounded to one second.
async fn server_pid(port: u16) -> Option<u32> {
    let info = command(port, "INFO server", Duration::from_secs(1))
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
}

/// Sends one inline command (`line`, without its `\r\n`) to the Redis on `127.0.0.1:port` over
/// a fresh connection, and returns the first whole reply as text: a line, or a bulk string (its
/// header line and the bytes it announces).
///
/// # Errors
///
/// The connection's error, [`std::io::ErrorKind::UnexpectedEof`] when it closes before a whole
/// reply, [`std::io::ErrorKind::TimedOut`] when none came `within`.
pub async fn command(port: u16, line: &str, within: Duration) -> std::io::Result<String> {
    let attempt = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        conn.write_all(format!("{line}\r\n").as_bytes()).await?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !is_whole_reply(&reply) {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            reply.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    };
    tokio::time::timeout(within, attempt)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Whether `reply` holds one whole reply: a line, or a bulk string's header line and as many
/// bytes as it announces (none for `$-1`). Anything else, an array included, counts as whole
/// once what came ends a line: enough for the short replies read here, on loopback.
fn is_whole_reply(reply: &[u8]) -> bool {
    let Some(header_end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    let Some(len) = reply[..header_end].strip_prefix(b"$") else {
        return reply.ends_with(b"\r\n");
    };
    match std::str::from_utf8(len)
        .ok()
        .and_then(|l| l.parse::<i64>().ok())
    {
        Some(len) => match usize::try_from(len) {
            Ok(len) => reply.len() >= header_end + 2 + len + 2,
            // `$-1`: no value.
            Err(_) => true,
        },
        // Not RESP: read on until the caller's bound.
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_whole_reply;

    #[test]
    fn a_reply_is_whole_once_its_line_or_announced_bytes_are_in() {
        assert!(!is_whole_reply(b""));
        assert!(!is_whole_reply(b"+OK"));
        assert!(is_whole_reply(b"+OK\r\n"));
        assert!(is_whole_reply(b"$-1\r\n"));
        assert!(!is_whole_reply(b"$3\r\n"));
        assert!(!is_whole_reply(b"$8\r\nab\r\ncd"));
        assert!(is_whole_reply(b"$8\r\nab\r\ncdef\r\n"));
        assert!(!is_whole_reply(b"$x\r\n"));
    }
}
