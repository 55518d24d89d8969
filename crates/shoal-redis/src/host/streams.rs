//! [`StreamLog`] on Redis: one Redis Stream per stream, its position counter in the session
//! hash, and readers that re-read their log on each wake-up.

use std::sync::Arc;

use futures::StreamExt;
use shoal_core::host::{
    HostError, LogSource, ReadFrom, StoredEvent, StreamEvent, StreamLog, Subscription, follow,
};
use shoal_core::ids::{SessionId, StreamId};

use super::{Inner, RedisHost, millis};
use crate::codec::{self, DecodeError};
use crate::keys::SessionKeys;
use crate::wake::Wake;

/// Events read per `read` round trip.
const READ_BATCH: usize = 256;

/// What a `read` found.
enum ReadOutcome {
    /// The session is gone.
    Gone,
    /// Events after the cursor (maybe none), and the position of `End` (0: none yet).
    Batch {
        events: Vec<StoredEvent>,
        ended: u64,
    },
}

impl Inner {
    async fn read(
        &self,
        session: &SessionKeys,
        stream: &StreamId,
        cursor: u64,
    ) -> Result<ReadOutcome, HostError> {
        let reply = self
            .eval(
                "read",
                &self.scripts.read,
                &[&session.session, &session.stream(stream)],
                vec![
                    stream.as_str().to_owned(),
                    (cursor + 1).to_string(),
                    READ_BATCH.to_string(),
                ],
            )
            .await?;
        let mut items = codec::array(reply)?.into_iter();
        let status = items.next().ok_or(DecodeError::Reply)?;
        if codec::integer(&status)? < 0 {
            return Ok(ReadOutcome::Gone);
        }
        let last = codec::position(&items.next().ok_or(DecodeError::Reply)?)?;
        let ended = codec::position(&items.next().ok_or(DecodeError::Reply)?)?;
        let mut events = Vec::new();
        while let (Some(seq), Some(payload)) = (items.next(), items.next()) {
            let seq = codec::position(&seq)?;
            let event = codec::decode_event(&codec::text(payload)?)?;
            events.push(StoredEvent { seq, event });
        }
        let next_retained = events.first().map_or(last + 1, |e| e.seq);
        if cursor < last && next_retained > cursor + 1 {
            // Trimmed past this reader while it was away.
            return Err(HostError::EventExpired);
        }
        Ok(ReadOutcome::Batch { events, ended })
    }
}

#[async_trait::async_trait]
impl StreamLog for RedisHost {
    async fn append(
        &self,
        session: &SessionId,
        stream: &StreamId,
        event: StreamEvent,
    ) -> Result<u64, HostError> {
        let inner = &self.inner;
        let keys = inner.keys.session(session);
        let mut args = inner.common_args(session, &keys)?;
        args.push(stream.as_str().to_owned());
        args.push(codec::encode_event(&event));
        args.push(inner.config.max_events_per_stream.to_string());
        args.push(millis(inner.config.event_retention));
        args.push(if event.ends_stream() { "1" } else { "0" }.to_owned());
        let reply = inner
            .eval(
                "append",
                &inner.scripts.append,
                &[&keys.session, &keys.stream(stream)],
                args,
            )
            .await?;
        match codec::integer(&reply)? {
            seq if seq > 0 => Ok(seq as u64),
            -2 => Err(HostError::StreamEnded),
            _ => Err(HostError::SessionNotFound),
        }
    }

    async fn subscribe(
        &self,
        session: &SessionId,
        stream: &StreamId,
        from: ReadFrom,
    ) -> Result<Subscription, HostError> {
        let inner = &self.inner;
        let keys = inner.keys.session(session);
        let mut args = inner.common_args(session, &keys)?;
        args.push(stream.as_str().to_owned());
        let reply = inner
            .eval(
                "subscribe",
                &inner.scripts.open,
                &[&keys.session, &keys.stream(stream)],
                args,
            )
            .await?;
        let reply = codec::array(reply)?;
        match reply.first().map(codec::integer).transpose()? {
            Some(-1) => return Err(HostError::SessionNotFound),
            Some(-2) => return Err(HostError::UnknownStream),
            Some(0) if reply.len() == 3 => {}
            _ => return Err(DecodeError::Reply.into()),
        }
        let last = codec::position(&reply[1])?;
        let first = codec::position(&reply[2])?;
        let after = match from {
            ReadFrom::Tail => last,
            ReadFrom::After(seq) if seq > last => return Err(HostError::EventFromTheFuture),
            ReadFrom::After(seq) if seq + 1 < first => return Err(HostError::EventExpired),
            ReadFrom::After(seq) => seq,
        };
        // Everything appended from here on is seen: the reader reads once after subscribing.
        let wake = inner.wakeups.acquire(keys.wake(stream)).await?;
        let reader = LogReader {
            inner: inner.clone(),
            keys,
            stream: stream.clone(),
            wake,
        };
        let events = follow(reader, after).boxed();
        Ok(Subscription { after, events })
    }
}

/// One stream's log as one subscription reads it: re-read on each wake-up, and every
/// `reread_interval` in case a wake-up was lost.
struct LogReader {
    inner: Arc<Inner>,
    keys: SessionKeys,
    stream: StreamId,
    wake: Wake,
}

impl LogSource for LogReader {
    async fn read_after(&mut self, cursor: u64) -> Result<Option<Vec<StoredEvent>>, HostError> {
        self.wake.mark_seen();
        // Boxed: fred's futures are large, and this one would otherwise stay inlined in the
        // future of every idle reader (about 14 KiB each) while it waits for a change.
        let read = Box::pin(self.inner.read(&self.keys, &self.stream, cursor));
        match read.await? {
            ReadOutcome::Gone => Ok(None),
            // Read up to the stream's end: nothing can be appended after it.
            ReadOutcome::Batch { events, ended }
                if events.is_empty() && ended != 0 && cursor >= ended =>
            {
                Ok(None)
            }
            ReadOutcome::Batch { events, .. } => Ok(Some(events)),
        }
    }

    async fn changed(&mut self) -> bool {
        let reread = tokio::time::sleep(self.inner.config.reread_interval);
        tokio::select! {
            alive = self.wake.changed() => alive,
            () = reread => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what a two-argument function returns, without calling it.
    fn returned_size<A, B, R>(_: fn(A, B) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn an_idle_reader_holds_a_small_future() {
        // Every idle standalone stream holds one of these for as long as it is open: 10,000
        // streams at the 14.8 KiB it took before the read was boxed cost 145 MiB. The stream
        // holds the reader's future while it waits.
        let size = returned_size(follow::<LogReader>);
        assert!(size <= 2048, "a subscription's stream is {size} bytes");
    }
}
