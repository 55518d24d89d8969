//! The HTTP/1.1 client under the MCP client: a small one written for this load generator, so
//! that a request costs what wrk's does (hyper cost ~10 µs of CPU per request more here,
//! which on a machine shared with the server is throughput taken from the server).
//!
//! Each worker owns an [`Http`]: its idle keep-alive connections per URL, a round-robin cursor
//! (consecutive requests go to consecutive URLs) and one buffer requests are written from. A
//! request checks a connection out (an idle one, or a new one) and writes itself in one
//! system call; the response head is parsed in the connection's read buffer without
//! allocating. The caller gives the connection back with [`Http::checkin`] once the body has
//! been read to its end, or drops it, which closes it (that is also how a scenario "breaks"
//! a stream).
//!
//! One file (about 1,080 lines, 260 of them tests): connection pool, request writer and response
//! parser share the connection's buffers, and splitting them would widen those internals.
//!
//! What it speaks: requests with `Content-Length`; responses framed by `Content-Length`,
//! `chunked`, or the end of the connection; interim 1xx responses are skipped;
//! `Connection: close` and HTTP/1.0 are honoured. A kept-alive connection that the server
//! closed while idle is noticed when the reply is an immediate end of stream, and the request
//! is sent again once on a new connection (nothing of it was answered). `https://` targets get
//! TLS over the same connections ([`crate::tls`]: the server's certificate checked against the
//! system's trust roots, unless `--insecure`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Method, Uri};
use shoal_wire::header::MCP_SESSION_ID;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig};

use crate::error::Error;
use crate::tls;

/// What a POST accepts: either kind of reply.
const ACCEPT_POST: &[u8] = b"application/json, text/event-stream";
/// What a GET accepts.
const ACCEPT_STREAM: &[u8] = b"text/event-stream";

/// Idle connections kept per URL and worker: more are closed when given back.
const MAX_IDLE_PER_TARGET: usize = 4;
/// A response head longer than this is refused.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Room made in the read buffer before each read (replies are small; an idle stream's
/// connection keeps this much).
const READ_CHUNK: usize = 4 * 1024;

/// One MCP endpoint, resolved once.
#[derive(Debug)]
pub(crate) struct Target {
    /// The URL as given, for messages.
    pub(crate) url: Arc<str>,
    addr: SocketAddr,
    /// The `Host` header.
    authority: String,
    /// The request target: path and query.
    path: String,
    /// `https://`: the name the server's certificate must be valid for.
    tls: Option<ServerName<'static>>,
}

/// Every endpoint and what every request carries.
#[derive(Debug)]
pub(crate) struct Targets {
    list: Vec<Target>,
    /// `Bearer <token>`, when a token was given.
    authorization: Option<String>,
    /// The TLS client of the `https://` targets (`None` when there are none).
    tls: Option<Arc<ClientConfig>>,
}

/// The headers that vary between requests.
#[derive(Debug, Clone)]
pub(crate) struct Head<'a> {
    pub(crate) method: Method,
    pub(crate) session: Option<&'a HeaderValue>,
    pub(crate) version: Option<&'a HeaderValue>,
    pub(crate) last_event_id: Option<&'a HeaderValue>,
    /// 2026-07-28: `Mcp-Method`, and `Mcp-Name` (tool, prompt or URI) where the method has one.
    pub(crate) mcp_method: Option<&'a str>,
    pub(crate) mcp_name: Option<&'a HeaderValue>,
}

/// What a response's `Content-Type` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContentType {
    Json,
    EventStream,
    Other(Box<str>),
    Missing,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) content_type: ContentType,
    /// `Mcp-Session-Id`, if the response had one.
    pub(crate) session_id: Option<HeaderValue>,
    framing: Framing,
    /// The connection may carry another request after this response.
    keep_alive: bool,
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// One connection and the bytes read from it but not used yet.
#[derive(Debug)]
struct Connection {
    stream: Stream,
    buffer: Vec<u8>,
    /// `buffer[start..]` is unread.
    start: usize,
}

/// A connection's bytes: plain TCP, or TLS over TCP.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A checked-out connection.
#[derive(Debug)]
pub(crate) struct Lease {
    target: usize,
    connection: Connection,
    /// The last response ended in a way that lets the connection carry another request.
    reusable: bool,
}

/// A response body read piece by piece.
#[derive(Debug)]
pub(crate) struct Body {
    lease: Lease,
    state: BodyState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    /// Bytes left of a `Content-Length` body.
    Length(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Bytes left of a chunk, then its CRLF.
    ChunkData(u64),
    ChunkEnd,
    /// Trailer lines up to the empty line.
    Trailers,
    UntilClose,
    Done,
}

/// A worker's connections to every target.
#[derive(Debug)]
pub(crate) struct Http {
    targets: Arc<Targets>,
    /// The target of the next request.
    cursor: usize,
    /// Idle connections, per target.
    idle: Vec<Vec<Connection>>,
    /// The request being written (reused: no allocation per request).
    out: Vec<u8>,
}

// === impl Targets ===

impl Targets {
    /// Parses and resolves every URL (`http[s]://host[:port][/path]`); `insecure` accepts any
    /// certificate from `https://` targets.
    pub(crate) async fn resolve(
        urls: &[String],
        token: Option<&str>,
        insecure: bool,
    ) -> Result<Self, String> {
        let mut list = Vec::with_capacity(urls.len());
        for url in urls {
            list.push(Target::resolve(url).await?);
        }
        // Only when needed: plain-http runs do not read the trust store.
        let tls = if list.iter().any(|target| target.tls.is_some()) {
            Some(tls::client_config(insecure)?)
        } else {
            None
        };
        let authorization = match token {
            Some(token)
                if token
                    .bytes()
                    .all(|b| b == b'\t' || (b' '..0x7f).contains(&b)) =>
            {
                Some(format!("Bearer {token}"))
            }
            Some(_) => return Err("--token contains characters not allowed in a header".into()),
            None => None,
        };
        Ok(Self {
            list,
            authorization,
            tls,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn get(&self, index: usize) -> &Target {
        &self.list[index % self.list.len()]
    }

    /// Opens a connection to target `index`: TCP with TCP_NODELAY, then TLS for `https://`.
    async fn connect(&self, index: usize) -> Result<Connection, Error> {
        let target = self.get(index);
        let connect_error = |source| Error::Connect {
            url: target.url.clone(),
            source,
        };
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(connect_error)?;
        tcp.set_nodelay(true).map_err(connect_error)?;
        let stream = match (&target.tls, &self.tls) {
            (Some(name), Some(config)) => {
                let tls = TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|error| match rustls_error(&error) {
                        Some(source) => Error::Tls {
                            url: target.url.clone(),
                            source: source.clone(),
                        },
                        None => connect_error(error),
                    })?;
                Stream::Tls(Box::new(tls))
            }
            _ => Stream::Plain(tcp),
        };
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(READ_CHUNK),
            start: 0,
        })
    }
}

/// The TLS error inside an I/O error of a handshake, if that is why it failed.
fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref()
}

// === impl Target ===

impl Target {
    async fn resolve(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("--url {url:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("--url {url:?} must start with http:// or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("--url {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            Some(tls::server_name(authority.host()).map_err(|e| format!("--url {url:?}: {e}"))?)
        } else {
            None
        };
        let addr = tokio::net::lookup_host((authority.host().trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("--url {url:?}: cannot resolve {}: {e}", authority.host()))?
            .next()
            .ok_or_else(|| format!("--url {url:?}: {} has no address", authority.host()))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Ok(Self {
            url: url.into(),
            addr,
            authority: authority.as_str().to_owned(),
            path,
            tls,
        })
    }
}

// === impl Http ===

impl Http {
    /// A worker's client; its first request goes to target `start` (spread workers out).
    pub(crate) fn new(targets: Arc<Targets>, start: usize) -> Self {
        let idle = (0..targets.len()).map(|_| Vec::new()).collect();
        Self {
            cursor: start % targets.len(),
            targets,
            idle,
            out: Vec::new(),
        }
    }

    /// Sends one request to the next target; returns the response head and the connection,
    /// whose body is still to be read.
    pub(crate) async fn send(
        &mut self,
        head: &Head<'_>,
        body: &[u8],
    ) -> Result<(ResponseHead, Lease), Error> {
        let target = self.cursor;
        self.cursor = (self.cursor + 1) % self.targets.len();
        self.write_request(target, head, body);
        if let Some(connection) = self.idle[target].pop() {
            let mut lease = Lease::new(target, connection);
            match lease.exchange(&self.out).await {
                Ok(response) => return Ok((response, lease)),
                // The server closed the idle connection before reading the request: send it
                // again, once, on a new connection.
                Err(Exchange::ClosedBeforeResponse(_)) => {}
                Err(error) => return Err(error.into_error(self.targets.get(target))),
            }
        }
        let connection = self.targets.connect(target).await?;
        let mut lease = Lease::new(target, connection);
        match lease.exchange(&self.out).await {
            Ok(response) => Ok((response, lease)),
            Err(error) => Err(error.into_error(self.targets.get(target))),
        }
    }

    /// Gives back a connection whose last response body was read to its end.
    pub(crate) fn checkin(&mut self, lease: Lease) {
        let idle = &mut self.idle[lease.target];
        if lease.reusable && idle.len() < MAX_IDLE_PER_TARGET {
            idle.push(lease.connection);
        }
    }

    /// The URL of a lease's target, for messages.
    pub(crate) fn url(&self, lease: &Lease) -> Arc<str> {
        self.targets.get(lease.target).url.clone()
    }

    /// Reads a whole body; gives the connection back when it may carry another request.
    pub(crate) async fn read_body(
        &mut self,
        head: &ResponseHead,
        lease: Lease,
    ) -> Result<Vec<u8>, Error> {
        let url = self.url(&lease);
        let mut body = Body::new(head, lease);
        let mut bytes = Vec::new();
        loop {
            match body.next().await {
                Ok(Some(piece)) => bytes.extend_from_slice(piece),
                Ok(None) => break,
                Err(source) => return Err(Error::Connection { url, source }),
            }
        }
        self.checkin(body.lease);
        Ok(bytes)
    }

    /// Writes the request into `self.out`.
    fn write_request(&mut self, target: usize, head: &Head<'_>, body: &[u8]) {
        use std::io::Write as _;

        let target = self.targets.get(target);
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(head.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut header = |name: &[u8], value: &[u8]| {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        };
        header(b"Host", target.authority.as_bytes());
        let accept = if head.method == Method::GET {
            ACCEPT_STREAM
        } else {
            ACCEPT_POST
        };
        header(b"Accept", accept);
        if let Some(authorization) = &self.targets.authorization {
            header(b"Authorization", authorization.as_bytes());
        }
        if let Some(session) = head.session {
            header(b"Mcp-Session-Id", session.as_bytes());
        }
        if let Some(version) = head.version {
            header(b"MCP-Protocol-Version", version.as_bytes());
        }
        if let Some(last_event_id) = head.last_event_id {
            header(b"Last-Event-ID", last_event_id.as_bytes());
        }
        if let Some(method) = head.mcp_method {
            header(b"Mcp-Method", method.as_bytes());
        }
        if let Some(name) = head.mcp_name {
            header(b"Mcp-Name", name.as_bytes());
        }
        if !body.is_empty() || head.method == Method::POST {
            header(b"Content-Type", b"application/json");
            // Writing to a Vec cannot fail.
            let _ = write!(out, "Content-Length: {}\r\n", body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
    }
}

/// Why an exchange failed, before it becomes an [`Error`].
#[derive(Debug)]
enum Exchange {
    /// The connection ended before any byte of a response.
    ClosedBeforeResponse(io::Error),
    Io(io::Error),
    Malformed(String),
}

impl Exchange {
    fn into_error(self, target: &Target) -> Error {
        match self {
            Self::ClosedBeforeResponse(source) | Self::Io(source) => Error::Connection {
                url: target.url.clone(),
                source,
            },
            Self::Malformed(problem) => Error::protocol(format!(
                "{} sent a malformed HTTP response: {problem}",
                target.url
            )),
        }
    }
}

// === impl Lease ===

impl Lease {
    fn new(target: usize, connection: Connection) -> Self {
        Self {
            target,
            connection,
            reusable: false,
        }
    }

    /// Writes a request and reads the head of its (final) response.
    async fn exchange(&mut self, request: &[u8]) -> Result<ResponseHead, Exchange> {
        let connection = &mut self.connection;
        if let Err(error) = connection.stream.write_all(request).await {
            return Err(Exchange::ClosedBeforeResponse(error));
        }
        let mut answered = false;
        loop {
            match parse_head(connection.unread()) {
                Ok(Some((head, length))) => {
                    connection.consume(length);
                    // Interim responses (100 Continue, 103 Early Hints) precede the real one.
                    if (100..200).contains(&head.status) {
                        answered = true;
                        continue;
                    }
                    self.reusable = head.keep_alive;
                    return Ok(head);
                }
                Ok(None) => {}
                Err(problem) => return Err(Exchange::Malformed(problem)),
            }
            match connection.fill().await {
                Ok(0) if !answered && connection.unread().is_empty() => {
                    return Err(Exchange::ClosedBeforeResponse(
                        io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                Ok(0) => {
                    return Err(Exchange::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed in the middle of a response head",
                    )));
                }
                Ok(_) => answered = true,
                // TLS reports a close without close_notify as an unexpected end.
                Err(error)
                    if !answered
                        && matches!(
                            error.kind(),
                            io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
                        ) =>
                {
                    return Err(Exchange::ClosedBeforeResponse(error));
                }
                Err(error) => return Err(Exchange::Io(error)),
            }
        }
    }
}

// === impl Connection ===

impl Connection {
    fn unread(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Reads more bytes; 0 at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 0 && self.buffer.capacity() - self.buffer.len() < READ_CHUNK {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.reserve(READ_CHUNK);
        self.stream.read_buf(&mut self.buffer).await
    }
}

// === impl Stream ===

impl Stream {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(stream) => stream.write_all(bytes).await,
            Self::Tls(stream) => {
                stream.write_all(bytes).await?;
                // Records rustls has not handed to the socket yet go now.
                stream.flush().await
            }
        }
    }

    async fn read_buf(&mut self, buffer: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.read_buf(buffer).await,
            Self::Tls(stream) => stream.read_buf(buffer).await,
        }
    }
}

// === impl Body ===

impl Body {
    /// The body of the response `head` on `lease`.
    pub(crate) fn new(head: &ResponseHead, lease: Lease) -> Self {
        let state = match head.framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::ChunkSize,
            Framing::UntilClose => BodyState::UntilClose,
        };
        Self { lease, state }
    }

    /// The next piece of the body; `None` at its end.
    pub(crate) async fn next(&mut self) -> io::Result<Option<&[u8]>> {
        let connection = &mut self.lease.connection;
        loop {
            let unread = connection.unread();
            match self.state {
                BodyState::Done => return Ok(None),
                BodyState::Length(left) | BodyState::ChunkData(left) if !unread.is_empty() => {
                    let n = unread
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    let left = left - n as u64;
                    self.state = match self.state {
                        BodyState::Length(_) if left == 0 => BodyState::Done,
                        BodyState::Length(_) => BodyState::Length(left),
                        _ if left == 0 => BodyState::ChunkEnd,
                        _ => BodyState::ChunkData(left),
                    };
                    let start = connection.start;
                    connection.consume(n);
                    return Ok(Some(&connection.buffer[start..start + n]));
                }
                BodyState::UntilClose if !unread.is_empty() => {
                    let start = connection.start;
                    let n = unread.len();
                    connection.consume(n);
                    return Ok(Some(&connection.buffer[start..start + n]));
                }
                BodyState::ChunkSize | BodyState::ChunkEnd | BodyState::Trailers => {
                    if let Some(end) = find_line(unread) {
                        let line = trim_cr(&unread[..end]);
                        let next = match self.state {
                            BodyState::ChunkEnd if line.is_empty() => BodyState::ChunkSize,
                            BodyState::ChunkEnd => return Err(malformed("no CRLF after a chunk")),
                            BodyState::Trailers if line.is_empty() => BodyState::Done,
                            BodyState::Trailers => BodyState::Trailers,
                            _ => match chunk_size(line) {
                                Some(0) => BodyState::Trailers,
                                Some(size) => BodyState::ChunkData(size),
                                None => return Err(malformed("a bad chunk size")),
                            },
                        };
                        connection.consume(end + 1);
                        self.state = next;
                        continue;
                    }
                    if unread.len() > MAX_HEAD_BYTES {
                        return Err(malformed("a chunk-size line too long"));
                    }
                }
                _ => {}
            }
            if connection.fill().await? == 0 {
                return if self.state == BodyState::UntilClose {
                    self.state = BodyState::Done;
                    self.lease.reusable = false;
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed in the middle of a response body",
                    ))
                };
            }
        }
    }

    /// Whether the whole body was read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// The connection, once the body was read (reuse it only then).
    pub(crate) fn into_lease(self) -> Lease {
        self.lease
    }
}

fn malformed(problem: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed chunked body: {problem}"),
    )
}

/// The index of the first `\n`.
fn find_line(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The size of a `chunk-size [; extensions]` line.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let digits = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(digits, 16).ok()
}

/// Parses a response head at the start of `bytes`: `None` while incomplete; the head and its
/// length in bytes when complete.
fn parse_head(bytes: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
    // The head ends at the first empty line (CRLF CRLF, or bare LFs from a lax server).
    let mut end = None;
    let mut line_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if byte == b'\n' {
            if trim_cr(&bytes[line_start..i]).is_empty() && line_start > 0 {
                end = Some((line_start, i + 1));
                break;
            }
            line_start = i + 1;
        }
    }
    let Some((head_end, length)) = end else {
        return if bytes.len() > MAX_HEAD_BYTES {
            Err(format!("a head longer than {MAX_HEAD_BYTES} bytes"))
        } else {
            Ok(None)
        };
    };
    let mut lines = bytes[..head_end]
        .split(|&b| b == b'\n')
        .map(trim_cr)
        .filter(|line| !line.is_empty());
    let status_line = lines.next().ok_or("an empty head")?;
    let (http_1_0, status) = match status_line {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor,
            b' ',
            a,
            b,
            c,
            ..,
        ] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            let status = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            (*minor == b'0', status)
        }
        _ => {
            return Err(format!(
                "a bad status line {:?}",
                String::from_utf8_lossy(&status_line[..status_line.len().min(80)])
            ));
        }
    };
    let mut head = ResponseHead {
        status,
        content_type: ContentType::Missing,
        session_id: None,
        framing: Framing::UntilClose,
        keep_alive: !http_1_0,
    };
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(format!(
                "a header line without a colon: {:?}",
                String::from_utf8_lossy(line)
            ));
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
            content_length = Some(parsed.ok_or("a bad Content-Length")?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"content-type") {
            head.content_type = content_type(value);
        } else if name.eq_ignore_ascii_case(MCP_SESSION_ID.as_bytes()) {
            head.session_id = HeaderValue::from_bytes(value).ok();
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if option.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if option.eq_ignore_ascii_case(b"keep-alive") && http_1_0 {
                    head.keep_alive = true;
                }
            }
        }
    }
    head.framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(content_length) = content_length {
        Framing::Length(content_length)
    } else {
        head.keep_alive = false;
        Framing::UntilClose
    };
    Ok(Some((head, length)))
}

fn content_type(value: &[u8]) -> ContentType {
    let essence = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or(value)
        .trim_ascii();
    if essence.eq_ignore_ascii_case(b"application/json") {
        ContentType::Json
    } else if essence.eq_ignore_ascii_case(b"text/event-stream") {
        ContentType::EventStream
    } else {
        ContentType::Other(String::from_utf8_lossy(value).into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn resolves_http_and_https_urls_and_refuses_others() {
        let target = Target::resolve("http://127.0.0.1:8080/mcp?x=1")
            .await
            .unwrap();
        assert_eq!(target.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(target.authority, "127.0.0.1:8080");
        assert_eq!(target.path, "/mcp?x=1");
        assert_eq!(target.tls, None);
        let target = Target::resolve("http://[::1]").await.unwrap();
        assert_eq!(target.addr, "[::1]:80".parse().unwrap());
        assert_eq!(target.path, "/");
        let target = Target::resolve("https://127.0.0.1/mcp").await.unwrap();
        assert_eq!(target.addr, "127.0.0.1:443".parse().unwrap());
        assert_eq!(target.tls, Some(ServerName::try_from("127.0.0.1").unwrap()));
        let target = Target::resolve("https://[::1]:8443/").await.unwrap();
        assert_eq!(target.addr, "[::1]:8443".parse().unwrap());
        assert_eq!(target.authority, "[::1]:8443");
        assert_eq!(target.tls, Some(ServerName::try_from("::1").unwrap()));
        let target = Target::resolve("https://localhost:8443/mcp").await.unwrap();
        assert_eq!(target.tls, Some(ServerName::try_from("localhost").unwrap()));
        for (url, expected) in [
            ("ftp://127.0.0.1/mcp", "must start with http:// or https://"),
            ("/mcp", "must start with http:// or https://"),
            ("http://exa mple/", "is not a URL"),
        ] {
            let error = Target::resolve(url).await.unwrap_err();
            assert!(error.contains(expected), "{url}: {error}");
        }
    }

    #[test]
    fn parses_heads_and_their_framing() {
        let bytes = b"HTTP/1.1 200 OK\r\ncontent-type: Application/JSON; charset=utf-8\r\n\
            Mcp-Session-Id: abc\r\nContent-Length: 12\r\n\r\n{\"rest\":1}";
        let (head, length) = parse_head(bytes).unwrap().unwrap();
        assert_eq!(&bytes[length..], b"{\"rest\":1}");
        assert_eq!(head.status, 200);
        assert_eq!(head.content_type, ContentType::Json);
        assert_eq!(head.session_id.unwrap(), "abc");
        assert_eq!((head.framing, head.keep_alive), (Framing::Length(12), true));

        let (head, _) = parse_head(
            b"HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\nContent-Length: 3\n\
              Content-Type: text/event-stream\nConnection: close\n\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.content_type, ContentType::EventStream);
        assert_eq!((head.framing, head.keep_alive), (Framing::Chunked, false));

        let (head, _) = parse_head(b"HTTP/1.0 202 Accepted\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.framing, head.keep_alive),
            (Framing::UntilClose, false)
        );
        let (head, _) = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.framing, head.keep_alive), (Framing::Empty, true));

        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Len")
                .unwrap()
                .is_none()
        );
        assert!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")
                .unwrap_err()
                .contains("status line")
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    /// Serves each of `responses` (raw bytes, written in small pieces) to one request on one
    /// connection; `None` closes the connection instead of answering.
    async fn serve(responses: Vec<Option<Vec<u8>>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            for response in responses {
                let mut request = Vec::new();
                let mut byte = [0u8; 1024];
                // Enough for these tests: read until the request's blank line and its body.
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut byte).await.unwrap();
                    request.extend_from_slice(&byte[..n]);
                }
                let Some(response) = response else {
                    drop(stream);
                    let (next, _) = listener.accept().await.unwrap();
                    stream = next;
                    continue;
                };
                for piece in response.chunks(7) {
                    stream.write_all(piece).await.unwrap();
                    stream.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        url
    }

    fn post() -> Head<'static> {
        Head {
            method: Method::POST,
            session: None,
            version: None,
            last_event_id: None,
            mcp_method: None,
            mcp_name: None,
        }
    }

    #[tokio::test]
    async fn reads_length_chunked_and_interim_responses_on_one_connection() {
        let url = serve(vec![
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec()),
            Some(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n"
                    .to_vec(),
            ),
            Some(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ])
        .await;
        let targets = Arc::new(Targets::resolve(&[url], None, false).await.unwrap());
        let mut http = Http::new(targets, 0);
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let (head, lease) = http.send(&post(), b"{}").await.unwrap();
            bodies.push((head.status, http.read_body(&head, lease).await.unwrap()));
        }
        assert_eq!(
            bodies,
            [
                (200, b"hello".to_vec()),
                (200, b"abc0123456789abcdef".to_vec()),
                (202, Vec::new())
            ]
        );
        assert_eq!(http.idle[0].len(), 1, "one connection served all three");
    }

    #[tokio::test]
    async fn a_request_on_a_connection_closed_while_idle_goes_again_on_a_new_one() {
        let url = serve(vec![
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            None,
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain".to_vec()),
        ])
        .await;
        let targets = Arc::new(Targets::resolve(&[url], None, false).await.unwrap());
        let mut http = Http::new(targets, 0);
        for expected in [&b"ok"[..], b"again"] {
            let (head, lease) = http.send(&post(), b"{}").await.unwrap();
            assert_eq!(http.read_body(&head, lease).await.unwrap(), expected);
        }
    }

    #[tokio::test]
    async fn speaks_through_tls_and_sends_again_after_a_close_while_idle() {
        use shoal_testkit::tls::{PrivateCa, TlsTerminator};

        // The server closes the first connection after one reply: over TLS the client sees
        // close_notify (or a bare end) where the next reply should be, and tries once more.
        let url = serve(vec![
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            None,
            Some(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nagain\r\n0\r\n\r\n"
                    .to_vec(),
            ),
        ])
        .await;
        let upstream = url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .parse()
            .unwrap();
        let ca = PrivateCa::new();
        let terminator = TlsTerminator::start(&ca, upstream).await;
        // The test CA is not in this process's trust store: `--insecure`'s configuration.
        let targets = Targets::resolve(&[terminator.https_url("/mcp")], None, true)
            .await
            .unwrap();
        let mut http = Http::new(Arc::new(targets), 0);
        for expected in [&b"ok"[..], b"again"] {
            let (head, lease) = http.send(&post(), b"{}").await.unwrap();
            assert!(matches!(lease.connection.stream, Stream::Tls(_)));
            assert_eq!(http.read_body(&head, lease).await.unwrap(), expected);
        }
        assert_eq!(http.idle[0].len(), 1, "the second connection is kept");
    }

    #[tokio::test]
    async fn writes_the_headers_a_client_must_send() {
        let targets = Arc::new(
            Targets::resolve(&["http://127.0.0.1:9/mcp".to_owned()], Some("t0k"), false)
                .await
                .unwrap(),
        );
        let mut http = Http::new(targets, 0);
        let session = HeaderValue::from_static("s1");
        let version = HeaderValue::from_static("2025-11-25");
        let head = Head {
            session: Some(&session),
            version: Some(&version),
            ..post()
        };
        http.write_request(0, &head, b"{\"a\":1}");
        assert_eq!(
            String::from_utf8(http.out.clone()).unwrap(),
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\
             Accept: application/json, text/event-stream\r\nAuthorization: Bearer t0k\r\n\
             Mcp-Session-Id: s1\r\nMCP-Protocol-Version: 2025-11-25\r\n\
             Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
        let id = HeaderValue::from_static("s.3");
        let get = Head {
            method: Method::GET,
            last_event_id: Some(&id),
            ..head
        };
        http.write_request(0, &get, b"");
        let request = String::from_utf8(http.out.clone()).unwrap();
        assert!(request.starts_with("GET /mcp HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains("Accept: text/event-stream\r\n"),
            "{request}"
        );
        assert!(request.ends_with("Last-Event-ID: s.3\r\n\r\n"), "{request}");
        let version = HeaderValue::from_static("2026-07-28");
        let name = HeaderValue::from_static("echo");
        let stateless = Head {
            version: Some(&version),
            mcp_method: Some("tools/call"),
            mcp_name: Some(&name),
            ..post()
        };
        http.write_request(0, &stateless, b"{}");
        let request = String::from_utf8(http.out.clone()).unwrap();
        assert!(
            request.contains(
                "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n"
            ),
            "{request}"
        );
        assert!(!request.contains("Mcp-Session-Id"), "{request}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_that_names_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/mcp");
        let targets = Arc::new(
            Targets::resolve(std::slice::from_ref(&url), None, false)
                .await
                .unwrap(),
        );
        let mut http = Http::new(targets, 0);
        let error = http.send(&post(), b"{}").await.unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::Connect);
        assert!(error.to_string().contains(&url), "{error}");
    }
}
