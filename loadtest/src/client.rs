//! MCP over Streamable HTTP, as far as load scenarios need it: `initialize`, requests whose
//! reply is JSON or an event stream, notifications, responses to server requests, GET streams
//! (also resumed with `Last-Event-ID`) and DELETE. Works with any server: the session id and
//! the protocol version are sent only as the server gave them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method};
use serde_json::Value;
use shoal_wire::sse::{SseEvent, SseItem, SseParser};
use tokio::time::Instant;

use crate::error::Error;
use crate::http::{Body, ContentType, Head, Http, Lease, ResponseHead, Targets};
use crate::wire::{self, Message};

/// After the response it carried, how long a POST's event stream may take to end before its
/// connection is closed instead of reused.
const STREAM_END_GRACE: Duration = Duration::from_millis(100);

/// An initialized MCP session: what every later request carries.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// `Mcp-Session-Id`; `None` when the server is stateless and gave none.
    pub(crate) id: Option<HeaderValue>,
    /// `MCP-Protocol-Version`: what the server answered at initialize.
    pub(crate) version: HeaderValue,
}

/// The headers of a 2026-07-28 request besides `MCP-Protocol-Version` (no session).
#[derive(Debug, Clone)]
pub(crate) struct StatelessHead {
    /// `Mcp-Method`: the body's method.
    pub(crate) method: &'static str,
    /// `Mcp-Name`: the tool, prompt or URI, for the methods that name one.
    pub(crate) name: Option<HeaderValue>,
}

impl StatelessHead {
    /// The head of a `tools/call` of `tool`; an error when the name cannot be a header.
    pub(crate) fn tools_call(tool: &str) -> Result<Self, Error> {
        let name = HeaderValue::try_from(tool)
            .map_err(|_| Error::protocol(format!("tool name {tool:?} cannot be a header")))?;
        Ok(Self {
            method: "tools/call",
            name: Some(name),
        })
    }
}

/// The reply to a POSTed request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// `application/json`: the one message.
    Json(Bytes),
    /// `text/event-stream`: notifications, requests, and somewhere the response.
    Stream(Box<EventStream>),
}

/// What a DELETE did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// The session ended.
    Ended,
    /// 405: the server does not let clients end sessions.
    NotAllowed,
}

/// An open `text/event-stream` response, read one event at a time.
#[derive(Debug)]
pub(crate) struct EventStream {
    /// The body, on its connection (given back when the stream ended cleanly).
    body: Body,
    parser: SseParser,
    ended: bool,
}

/// An MCP client of one worker: its connections and its request ids.
#[derive(Debug)]
pub(crate) struct McpClient {
    http: Http,
    /// Request ids of the workers that share sessions never collide: worker `w` of `n` uses
    /// `w, w + n, w + 2n, ...`, which stays exact in a JavaScript server for any real run.
    next_id: u64,
    id_step: u64,
}

// === impl McpClient ===

impl McpClient {
    /// The client of worker `worker` of `workers`.
    pub(crate) fn new(targets: Arc<Targets>, worker: usize, workers: usize) -> Self {
        Self {
            http: Http::new(targets, worker),
            next_id: worker as u64,
            id_step: workers.max(1) as u64,
        }
    }

    /// A fresh request id.
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += self.id_step;
        id
    }

    /// `initialize` with `capabilities`, then `notifications/initialized`.
    pub(crate) async fn initialize(&mut self, capabilities: &Value) -> Result<Session, Error> {
        let id = self.next_id();
        let body = wire::request(id, "initialize", &wire::initialize_params(capabilities));
        let (response, lease) = self.send(Method::POST, None, None, body).await?;
        let session_id = response.session_id.clone();
        let reply = self.reply(response, lease).await?;
        let (message, _) = self.response(reply, id).await?;
        let version = wire::negotiated_version(result_of(&message, id)?)?;
        let version = HeaderValue::try_from(version.as_str()).map_err(|_| {
            Error::protocol(format!("protocolVersion {version:?} cannot be a header"))
        })?;
        let session = Session {
            id: session_id,
            version,
        };
        self.notify(&session, wire::notification("notifications/initialized"))
            .await?;
        Ok(session)
    }

    /// POSTs a request; its reply is JSON or an event stream.
    pub(crate) async fn post(&mut self, session: &Session, body: Bytes) -> Result<Reply, Error> {
        let (response, lease) = self.send(Method::POST, Some(session), None, body).await?;
        self.reply(response, lease).await
    }

    /// POSTs a 2026-07-28 request: no session, the revision and `head` in headers.
    pub(crate) async fn post_stateless(
        &mut self,
        head: &StatelessHead,
        body: Bytes,
    ) -> Result<Reply, Error> {
        let version = HeaderValue::from_static(wire::STATELESS_VERSION);
        let head = Head {
            method: Method::POST,
            session: None,
            version: Some(&version),
            last_event_id: None,
            mcp_method: Some(head.method),
            mcp_name: head.name.as_ref(),
        };
        let (response, lease) = self.http.send(&head, &body).await?;
        self.reply(response, lease).await
    }

    /// [`Self::call`] of a 2026-07-28 request.
    pub(crate) async fn call_stateless(
        &mut self,
        head: &StatelessHead,
        body: Bytes,
        id: u64,
    ) -> Result<(Bytes, Instant), Error> {
        let reply = self.post_stateless(head, body).await?;
        self.response(reply, id).await
    }

    /// POSTs request `id` and waits for its response, skipping whatever comes before it on an
    /// event stream. Returns the response message and when it was read (a stream may take a
    /// moment more to end).
    pub(crate) async fn call(
        &mut self,
        session: &Session,
        body: Bytes,
        id: u64,
    ) -> Result<(Bytes, Instant), Error> {
        let reply = self.post(session, body).await?;
        self.response(reply, id).await
    }

    /// The response to request `id` in a reply.
    pub(crate) async fn response(
        &mut self,
        reply: Reply,
        id: u64,
    ) -> Result<(Bytes, Instant), Error> {
        match reply {
            Reply::Json(message) => Ok((message, Instant::now())),
            Reply::Stream(mut stream) => loop {
                let Some(data) = stream.next_message().await? else {
                    return Err(Error::StreamClosed);
                };
                if Message::parse_str(&data)?.is_response_to(id) {
                    let read = Instant::now();
                    self.finish(*stream).await;
                    return Ok((Bytes::from(data), read));
                }
            },
        }
    }

    /// POSTs a notification or a response to a server request: 2xx (202) with no body.
    pub(crate) async fn notify(&mut self, session: &Session, body: Bytes) -> Result<(), Error> {
        let (response, lease) = self.send(Method::POST, Some(session), None, body).await?;
        let url = self.http.url(&lease);
        let body = self.http.read_body(&response, lease).await?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(Error::Http {
                url,
                status: response.status,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        }
    }

    /// Opens the session's standalone GET stream, or resumes a stream after `last_event_id`.
    pub(crate) async fn open_stream(
        &mut self,
        session: &Session,
        last_event_id: Option<&HeaderValue>,
    ) -> Result<EventStream, Error> {
        let (response, lease) = self
            .send(Method::GET, Some(session), last_event_id, Bytes::new())
            .await?;
        match self.reply(response, lease).await? {
            Reply::Stream(stream) => Ok(*stream),
            Reply::Json(_) => Err(Error::protocol("a GET answered with JSON, not a stream")),
        }
    }

    /// DELETEs the session: any 2xx ends it; 405 says the server does not let clients end
    /// sessions.
    pub(crate) async fn delete(&mut self, session: &Session) -> Result<Deleted, Error> {
        let (response, lease) = self
            .send(Method::DELETE, Some(session), None, Bytes::new())
            .await?;
        let url = self.http.url(&lease);
        let body = self.http.read_body(&response, lease).await?;
        match response.status {
            200..=299 => Ok(Deleted::Ended),
            405 => Ok(Deleted::NotAllowed),
            status => Err(Error::Http {
                url,
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            }),
        }
    }

    /// Gives a stream's connection back for reuse once the stream ends, if it does so soon;
    /// otherwise closes it.
    pub(crate) async fn finish(&mut self, mut stream: EventStream) {
        if !stream.ended {
            match tokio::time::timeout(STREAM_END_GRACE, stream.drain()).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        if stream.body.is_done() {
            self.http.checkin(stream.body.into_lease());
        }
    }

    async fn send(
        &mut self,
        method: Method,
        session: Option<&Session>,
        last_event_id: Option<&HeaderValue>,
        body: Bytes,
    ) -> Result<(ResponseHead, Lease), Error> {
        let head = Head {
            method,
            session: session.and_then(|s| s.id.as_ref()),
            version: session.map(|s| &s.version),
            last_event_id,
            mcp_method: None,
            mcp_name: None,
        };
        self.http.send(&head, &body).await
    }

    /// Sorts a request's response into JSON, a stream, or an error.
    async fn reply(&mut self, response: ResponseHead, lease: Lease) -> Result<Reply, Error> {
        if response.status != 200 {
            let url = self.http.url(&lease);
            let body = self.http.read_body(&response, lease).await?;
            return Err(Error::Http {
                url,
                status: response.status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        match &response.content_type {
            ContentType::EventStream => Ok(Reply::Stream(Box::new(EventStream {
                body: Body::new(&response, lease),
                parser: SseParser::new(),
                ended: false,
            }))),
            ContentType::Json => Ok(Reply::Json(Bytes::from(
                self.http.read_body(&response, lease).await?,
            ))),
            other => Err(Error::protocol(format!(
                "HTTP 200 with content type {other:?}, neither JSON nor an event stream"
            ))),
        }
    }
}

/// The result of response `id` in `message`.
pub(crate) fn result_of(message: &[u8], id: u64) -> Result<&serde_json::value::RawValue, Error> {
    let message = Message::parse(message)?;
    if !message.is_response_to(id) {
        return Err(Error::protocol(format!(
            "expected the response to request {id}, got another message"
        )));
    }
    message.into_result()
}

// === impl EventStream ===

impl EventStream {
    /// The next event (comments are skipped); `None` when the stream ended.
    pub(crate) async fn next_event(&mut self) -> Result<Option<SseEvent>, Error> {
        loop {
            while let Some(item) = self.parser.next_item() {
                match item {
                    SseItem::Event(event) => return Ok(Some(event)),
                    SseItem::Comment(_) => {}
                }
            }
            if self.ended {
                return Ok(None);
            }
            match self.body.next().await {
                Ok(Some(piece)) => self.parser.push(piece),
                Ok(None) => {
                    self.ended = true;
                    self.parser.finish();
                }
                Err(_) => return Err(Error::StreamClosed),
            }
        }
    }

    /// The data of the next event that carries a message (priming events are skipped).
    pub(crate) async fn next_message(&mut self) -> Result<Option<String>, Error> {
        while let Some(event) = self.next_event().await? {
            match event.data {
                Some(data) if !data.is_empty() => return Ok(Some(data)),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Reads and discards the rest of the stream.
    async fn drain(&mut self) -> Result<(), Error> {
        while self.next_event().await?.is_some() {}
        Ok(())
    }
}
