//! [`SseStream`]: an open `text/event-stream` response, read one item at a time with a bound
//! on every wait.

use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::time::error::Elapsed;

use crate::sse::{SseEvent, SseItem, SseParser};

/// An open `text/event-stream` response, read one item at a time.
///
/// Dropping it closes the connection, as a client whose network broke would.
pub struct SseStream {
    status: StatusCode,
    headers: HeaderMap,
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    parser: SseParser,
    ended: bool,
    error: Option<String>,
    comments: usize,
    timeout: Duration,
}

impl fmt::Debug for SseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseStream")
            .field("status", &self.status)
            .field("last_event_id", &self.parser.last_event_id())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl SseStream {
    /// Reads `response`'s body as SSE, waiting at most `timeout` for each event (for clients
    /// other than [`McpClient`](crate::McpClient), such as the fault suite's load).
    pub fn new(response: reqwest::Response, timeout: Duration) -> Self {
        SseStream {
            status: response.status(),
            headers: response.headers().clone(),
            body: response
                .bytes_stream()
                .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
                .boxed(),
            parser: SseParser::new(),
            ended: false,
            error: None,
            comments: 0,
            timeout,
        }
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The last `id` received: what to send as `Last-Event-ID` to resume.
    pub fn last_event_id(&self) -> Option<&str> {
        self.parser.last_event_id()
    }

    /// How many comment lines (keep-alives) were read so far.
    pub fn comments_seen(&self) -> usize {
        self.comments
    }

    /// Why the body ended with an error, if it did (a reset connection).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The next event or comment, `Ok(None)` at the end of the stream, or `Err` after
    /// `timeout` without one.
    pub async fn next_item_within(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<SseItem>, Elapsed> {
        let item = tokio::time::timeout(timeout, self.fill()).await?;
        if let Some(SseItem::Comment(_)) = item {
            self.comments += 1;
        }
        Ok(item)
    }

    /// The next event (comments are counted and skipped), `Ok(None)` at the end of the
    /// stream, or `Err` after `timeout` without one.
    pub async fn next_event_within(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<SseEvent>, Elapsed> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_item_within(left).await? {
                Some(SseItem::Event(event)) => return Ok(Some(event)),
                Some(SseItem::Comment(_)) => continue,
                None => return Ok(None),
            }
        }
    }

    /// The next event or comment, `None` at the end of the stream.
    ///
    /// # Panics
    ///
    /// After the client's timeout without one.
    pub async fn next_item(&mut self) -> Option<SseItem> {
        let timeout = self.timeout;
        self.next_item_within(timeout)
            .await
            .unwrap_or_else(|_| panic!("no SSE item within {timeout:?} ({self:?})"))
    }

    /// The next event (comments are counted and skipped), `None` at the end of the stream.
    ///
    /// # Panics
    ///
    /// After the client's timeout without one.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        let timeout = self.timeout;
        self.next_event_within(timeout)
            .await
            .unwrap_or_else(|_| panic!("no SSE event within {timeout:?} ({self:?})"))
    }

    /// The next event, which must exist.
    ///
    /// # Panics
    ///
    /// At the end of the stream, or after the client's timeout.
    pub async fn expect_event(&mut self) -> SseEvent {
        match self.next_event().await {
            Some(event) => event,
            None => panic!("the stream ended, an event was expected ({self:?})"),
        }
    }

    /// Every remaining event, until the stream ends.
    ///
    /// # Panics
    ///
    /// When any event takes longer than the client's timeout.
    pub async fn collect_events(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            events.push(event);
        }
        events
    }

    /// Asserts that the stream ends with no further event.
    ///
    /// # Panics
    ///
    /// When an event arrives, or the stream stays open past the client's timeout.
    pub async fn expect_end(&mut self) {
        if let Some(event) = self.next_event().await {
            panic!("the stream should have ended, got {event:?}");
        }
    }

    /// Reads until an item is ready or the body ends. Cancel-safe: a chunk is parsed only
    /// once it has been received whole.
    async fn fill(&mut self) -> Option<SseItem> {
        loop {
            if let Some(item) = self.parser.next_item() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.parser.push(&chunk),
                Some(Err(error)) => {
                    self.error = Some(error.to_string());
                    self.ended = true;
                    self.parser.finish();
                }
                None => {
                    self.ended = true;
                    self.parser.finish();
                }
            }
        }
    }
}
