//! The subscription loop every host shares: [`follow`] turns a host's [`LogSource`] into the
//! events of a [`Subscription`](super::Subscription).
//!
//! The loop keeps the contract's reading rules in one place: events come in order from a
//! cursor, the stream ends after an event that [ends it](super::StreamEvent::ends_stream), and
//! an error is yielded once and ends the stream. A host supplies only how to read its log and
//! how to wait for it to change.

use std::collections::VecDeque;
use std::future::Future;

use futures::Stream;

use super::{HostError, StoredEvent};

/// One stream's log as one subscription reads it: the two steps of [`follow`]'s loop that
/// differ between hosts.
pub trait LogSource: Send + 'static {
    /// The events after position `cursor`, in order (maybe none), or `None` when the log will
    /// yield nothing more: the session is gone, or the stream ended and `cursor` is at its end.
    ///
    /// `EventExpired` when events after `cursor` were trimmed.
    fn read_after(
        &mut self,
        cursor: u64,
    ) -> impl Future<Output = Result<Option<Vec<StoredEvent>>, HostError>> + Send;

    /// Waits until the log may have changed since the last [`read_after`](Self::read_after)
    /// began; false when it never will. Waking without a change is fine: the loop reads again
    /// and finds nothing.
    fn changed(&mut self) -> impl Future<Output = bool> + Send;
}

/// The events of `source` after position `after`, then live ones, until one ends the stream,
/// the log yields nothing more, or an error (yielded, then the end).
///
/// Not boxed, so that a host can measure what an idle subscription holds; box it for a
/// [`Subscription`](super::Subscription).
pub fn follow<S: LogSource>(
    source: S,
    after: u64,
) -> impl Stream<Item = Result<StoredEvent, HostError>> + Send + 'static {
    let reader = Reader {
        source,
        cursor: after,
        pending: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(reader, Reader::next)
}

/// A subscription's cursor over one log.
struct Reader<S> {
    source: S,
    /// The position of the last event yielded.
    cursor: u64,
    /// Events read but not yet yielded.
    pending: VecDeque<StoredEvent>,
    /// An event ended the stream or an error was yielded: nothing follows.
    done: bool,
}

impl<S: LogSource> Reader<S> {
    /// The next event: buffered, else read from the log, else wait for a change.
    async fn next(mut self) -> Option<(Result<StoredEvent, HostError>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                self.cursor = event.seq;
                self.done = event.event.ends_stream();
                return Some((Ok(event), self));
            }
            match self.source.read_after(self.cursor).await {
                Err(e) => {
                    self.done = true;
                    return Some((Err(e), self));
                }
                Ok(None) => return None,
                Ok(Some(batch)) if !batch.is_empty() => self.pending.extend(batch),
                Ok(Some(_)) => {
                    if !self.source.changed().await {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures::StreamExt;

    use super::*;
    use crate::host::StreamEvent;

    /// A log scripted step by step: each read takes the next answer, each wait the next flag.
    struct Script {
        reads: VecDeque<Result<Option<Vec<StoredEvent>>, HostError>>,
        waits: VecDeque<bool>,
        /// The cursors the loop read after, in order.
        cursors: Arc<Mutex<Vec<u64>>>,
    }

    impl LogSource for Script {
        async fn read_after(&mut self, cursor: u64) -> Result<Option<Vec<StoredEvent>>, HostError> {
            self.cursors.lock().unwrap().push(cursor);
            self.reads.pop_front().unwrap_or(Ok(None))
        }

        async fn changed(&mut self) -> bool {
            self.waits.pop_front().unwrap_or(false)
        }
    }

    fn script(reads: Vec<Result<Option<Vec<StoredEvent>>, HostError>>, waits: Vec<bool>) -> Script {
        Script {
            reads: reads.into(),
            waits: waits.into(),
            cursors: Arc::default(),
        }
    }

    fn message(seq: u64) -> StoredEvent {
        StoredEvent {
            seq,
            event: StreamEvent::Message(Arc::from("{}")),
        }
    }

    fn last(seq: u64) -> StoredEvent {
        StoredEvent {
            seq,
            event: StreamEvent::Last(Arc::from("{}")),
        }
    }

    async fn collect(script: Script, after: u64) -> Vec<Result<StoredEvent, HostError>> {
        follow(script, after).collect().await
    }

    #[tokio::test]
    async fn reads_after_the_last_event_yielded_and_waits_when_there_is_none() {
        let reads = vec![
            Ok(Some(vec![message(4), message(5)])),
            Ok(Some(vec![])),
            Ok(Some(vec![message(6)])),
            Ok(None),
        ];
        let script = script(reads, vec![true]);
        let cursors = script.cursors.clone();
        let events = collect(script, 3).await;
        assert_eq!(events, vec![Ok(message(4)), Ok(message(5)), Ok(message(6))]);
        assert_eq!(*cursors.lock().unwrap(), vec![3, 5, 5, 6]);
    }

    #[tokio::test]
    async fn stops_after_an_event_that_ends_the_stream() {
        let reads = vec![Ok(Some(vec![message(1), last(2), message(3)]))];
        let events = collect(script(reads, vec![]), 0).await;
        assert_eq!(events, vec![Ok(message(1)), Ok(last(2))]);
    }

    #[tokio::test]
    async fn yields_an_error_once_then_ends() {
        let reads = vec![Err(HostError::EventExpired), Ok(Some(vec![message(1)]))];
        let events = collect(script(reads, vec![]), 0).await;
        assert_eq!(events, vec![Err(HostError::EventExpired)]);
    }

    #[tokio::test]
    async fn ends_when_the_log_can_no_longer_change() {
        let reads = vec![Ok(Some(vec![])), Ok(Some(vec![message(1)]))];
        let events = collect(script(reads, vec![false]), 0).await;
        assert_eq!(events, vec![]);
    }
}
