//! Server-Sent Events framing of a stream log.
//!
//! Every event carries its id (`<stream>.<seq>`). A stream opens with a priming event (an id and
//! empty data, plus `retry`) so that a client whose connection breaks before the first real
//! event can still resume. Its id, `<stream>.<seq>.<nonce>`, names the position the connection
//! starts after plus a nonce of this connection: connections that start at one position (two
//! resumptions from one id; a GET after the last stored event) must not send one id twice, and
//! a resumption from it starts at that position, on any replica.
//!
//! Idle streams get keep-alive comments. When the server drains, or a handler asks to close the
//! connection, the stream ends with `retry` and the client resumes elsewhere from the last id it
//! saw.
//!
//! The bytes of each frame are `shoal_wire::sse`'s, the format every client of ours reads.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use shoal_core::host::{HostError, StoredEvent, StreamEvent, Subscription};
use shoal_core::ids::{EventId, PrimingId, StreamId};
use shoal_wire::sse::{KEEP_ALIVE, event};
use tokio_util::sync::CancellationToken;

use crate::limits::Slot;
use crate::metrics::{self, OpenStream, StreamKind};

/// How a stream is served.
pub(crate) struct SseOptions {
    /// Send the priming event (clients of 2025-11-25 and later expect it; older ones may not).
    pub(crate) priming: bool,
    pub(crate) keep_alive: Duration,
    pub(crate) retry: Duration,
    pub(crate) drain: CancellationToken,
    /// What the stream is, for `shoal_sse_streams_open`.
    pub(crate) kind: StreamKind,
    /// The client resumed with `Last-Event-ID`: events count as `shoal_events_replayed_total`.
    pub(crate) resumed: bool,
}

struct State {
    events: BoxStream<'static, Result<StoredEvent, HostError>>,
    stream: StreamId,
    options: SseOptions,
    first: Option<Bytes>,
    done: bool,
    /// Counts the connection as open until the body is dropped.
    _open: OpenStream,
    /// The limit slot (in flight or stream) the connection holds until the body is dropped.
    _slot: Slot,
}

/// The HTTP response that serves `subscription` of `stream`, holding `slot` while it is open.
pub(crate) fn response(
    stream: StreamId,
    subscription: Subscription,
    options: SseOptions,
    slot: Slot,
) -> Response {
    let first = options.priming.then(|| {
        let position = EventId {
            stream: stream.clone(),
            seq: subscription.after,
        };
        event(&PrimingId::new(position), Some(options.retry), "")
    });
    let state = State {
        _open: OpenStream::open(options.kind),
        _slot: slot,
        events: subscription.events,
        stream,
        options,
        first,
        done: false,
    };
    let body = futures::stream::unfold(state, next_frame).map(Ok::<_, Infallible>);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn next_frame(mut state: State) -> Option<(Bytes, State)> {
    if let Some(first) = state.first.take() {
        return Some((first, state));
    }
    loop {
        if state.done {
            return None;
        }
        tokio::select! {
            biased;
            () = state.options.drain.cancelled() => {
                state.done = true;
                return Some((shoal_wire::sse::retry(state.options.retry), state));
            }
            next = state.events.next() => {
                let stored = match next {
                    Some(Ok(stored)) => stored,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "stream ended by the host");
                        return None;
                    }
                    None => return None,
                };
                let id = EventId { stream: state.stream.clone(), seq: stored.seq };
                if state.options.resumed && !matches!(stored.event, StreamEvent::Request(_) | StreamEvent::End) {
                    metrics::event_replayed();
                }
                match stored.event {
                    // Bookkeeping for the server, not for the client.
                    StreamEvent::Request(_) => continue,
                    StreamEvent::Message(data) => return Some((event(&id, None, &data), state)),
                    StreamEvent::Last(data) => {
                        state.done = true;
                        return Some((event(&id, None, &data), state));
                    }
                    StreamEvent::Disconnect => {
                        state.done = true;
                        return Some((event(&id, Some(state.options.retry), ""), state));
                    }
                    StreamEvent::End => return None,
                }
            }
            () = tokio::time::sleep(state.options.keep_alive) => {
                return Some((Bytes::from_static(KEEP_ALIVE), state));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_events_and_priming() {
        let id: EventId = "aaaaaaaaaaaaaaaa.3".parse().unwrap();
        assert_eq!(
            event(&id, None, "{}"),
            Bytes::from("id: aaaaaaaaaaaaaaaa.3\ndata: {}\n\n")
        );
        let priming: PrimingId = "aaaaaaaaaaaaaaaa.3.AAAAAAAAAAAAAAAA".parse().unwrap();
        assert_eq!(
            event(&priming, Some(Duration::from_millis(500)), ""),
            Bytes::from("id: aaaaaaaaaaaaaaaa.3.AAAAAAAAAAAAAAAA\nretry: 500\ndata: \n\n")
        );
    }
}
