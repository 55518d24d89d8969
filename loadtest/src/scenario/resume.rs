//! `resume`: one operation is a `tools/call` of `count` {"to":N,"interval_ms":I} with a
//! progress token. After a random k (1..N-1) of its progress notifications the connection is
//! dropped; a GET with `Last-Event-ID` (to the next URL) reads the rest. Over both pieces the
//! progress values must be exactly 1..N in order, and the result must be N.

use std::time::Duration;

use http::HeaderValue;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::time::Instant;

use super::{Context, Outcome, SessionCursor, SetupFailed, StreamCounts};
use crate::client::{EventStream, McpClient, Reply, Session, result_of};
use crate::error::{Error, SequenceError};
use crate::run::{self, Operation};
use crate::stats::EventCounts;
use crate::wire::{self, Message, ToolResult};

/// The tool that counts with progress.
const TOOL: &str = "count";

pub(super) async fn run(ctx: &Context) -> Result<Outcome, SetupFailed> {
    let o = &ctx.options;
    let sessions = ctx.open_sessions(o.sessions, json!({})).await?;
    let operations = ctx
        .clients()
        .enumerate()
        .map(|(worker, client)| Resume {
            client,
            sessions: SessionCursor::new(sessions.clone(), worker),
            to: o.count_to,
            interval_ms: o.interval_ms,
            rng: SmallRng::from_os_rng(),
        })
        .collect();
    ctx.progress.say("measuring");
    let (recorder, measured) =
        run::drive(operations, ctx.plan(o.rate), o.timeout, &ctx.progress).await;
    ctx.close_sessions(&sessions).await;
    Ok(Outcome {
        recorder,
        measured,
        sessions: sessions.len(),
        streams: StreamCounts::default(),
        notes: Vec::new(),
    })
}

/// One worker's interrupted counts.
struct Resume {
    client: McpClient,
    sessions: SessionCursor,
    to: u32,
    interval_ms: u64,
    rng: SmallRng,
}

impl Operation for Resume {
    async fn run(
        &mut self,
        due: Instant,
        events: &mut EventCounts,
    ) -> Result<Option<Duration>, Error> {
        let session = self.sessions.next();
        let id = self.client.next_id();
        let params = json!({
            "name": TOOL,
            "arguments": { "to": self.to, "interval_ms": self.interval_ms },
            "_meta": { "progressToken": format!("p{id}") },
        });
        let body = wire::request(id, "tools/call", &params);
        let Reply::Stream(stream) = self.client.post(session, body).await? else {
            return Err(Error::protocol(format!(
                "`{TOOL}` was answered with JSON, not an event stream: no progress to resume"
            )));
        };
        let mut reading = Reading::new(id, self.to);
        let break_after = self.rng.random_range(1..self.to);
        let response = match reading.read(*stream, Some(break_after), events).await? {
            Read::Response(data, stream) => {
                self.client.finish(*stream).await;
                data
            }
            Read::Broken => resume(&mut self.client, session, &mut reading, events).await?,
        };
        let read = Instant::now();
        let result = ToolResult::parse(result_of(response.as_bytes(), id)?)?;
        let expected = self.to.to_string();
        result.expect_text(|| format!("{expected:?}"), |text| text == expected)?;
        reading.progress.finish(events)?;
        Ok(Some(read.saturating_duration_since(due)))
    }
}

/// Reads the rest of the dropped stream from the event after the last one seen.
async fn resume(
    client: &mut McpClient,
    session: &Session,
    reading: &mut Reading,
    events: &mut EventCounts,
) -> Result<String, Error> {
    let last = reading.last_event_id.take().ok_or_else(|| {
        Error::protocol("the stream's events had no id: the server cannot resume it")
    })?;
    let last = HeaderValue::try_from(last)
        .map_err(|_| Error::protocol("an event id that cannot be sent as Last-Event-ID"))?;
    let stream = client.open_stream(session, Some(&last)).await?;
    match reading.read(stream, None, events).await? {
        Read::Response(data, stream) => {
            client.finish(*stream).await;
            Ok(data)
        }
        Read::Broken => Err(Error::StreamClosed),
    }
}

/// The state of one operation across both pieces of its stream.
struct Reading {
    id: u64,
    last_event_id: Option<String>,
    progress: Sequence,
}

/// How a piece of the stream ended.
enum Read {
    /// The response (its data) arrived; the stream is left to end.
    Response(String, Box<EventStream>),
    /// The stream was dropped on purpose, or ended without the response (the caller decides
    /// which is an error).
    Broken,
}

impl Reading {
    fn new(id: u64, to: u32) -> Self {
        Self {
            id,
            last_event_id: None,
            progress: Sequence::new(to),
        }
    }

    /// Reads `stream` until the response, or until `break_after` progress notifications of
    /// this piece, when the stream is dropped (which closes its connection).
    async fn read(
        &mut self,
        mut stream: EventStream,
        break_after: Option<u32>,
        events: &mut EventCounts,
    ) -> Result<Read, Error> {
        let mut progress_seen = 0;
        while let Some(event) = stream.next_event().await? {
            if let Some(id) = event.id {
                self.last_event_id = Some(id);
            }
            let Some(data) = event.data.filter(|data| !data.is_empty()) else {
                continue;
            };
            events.received += 1;
            let message = Message::parse_str(&data)?;
            if message.is_response_to(self.id) {
                return Ok(Read::Response(data, Box::new(stream)));
            }
            if let Some(progress) = message.progress() {
                self.progress.see(progress);
                progress_seen += 1;
                if Some(progress_seen) == break_after {
                    return Ok(Read::Broken);
                }
            }
        }
        if break_after.is_some() {
            // Ended before the break: resuming reads whatever is left.
            Ok(Read::Broken)
        } else {
            Err(Error::StreamClosed)
        }
    }
}

/// Progress values 1..=N as they arrive.
#[derive(Debug)]
struct Sequence {
    /// `seen[v]`: value `v` arrived (index 0 unused).
    seen: Vec<bool>,
    greatest: usize,
    duplicates: u64,
    out_of_order: u64,
    /// Values that are not one of 1..=N.
    strange: Option<f64>,
}

impl Sequence {
    fn new(to: u32) -> Self {
        Self {
            seen: vec![false; to as usize + 1],
            greatest: 0,
            duplicates: 0,
            out_of_order: 0,
            strange: None,
        }
    }

    fn see(&mut self, progress: f64) {
        let value = progress as usize;
        if progress.fract() != 0.0 || value == 0 || value >= self.seen.len() {
            self.strange.get_or_insert(progress);
            return;
        }
        if std::mem::replace(&mut self.seen[value], true) {
            self.duplicates += 1;
        } else if value < self.greatest {
            self.out_of_order += 1;
        }
        self.greatest = self.greatest.max(value);
    }

    /// Adds the counts to `events`; fails on the first kind of problem seen.
    fn finish(&self, events: &mut EventCounts) -> Result<(), Error> {
        let missing = self.seen[1..].iter().filter(|seen| !**seen).count() as u64;
        events.gaps += missing;
        events.duplicates += self.duplicates;
        events.out_of_order += self.out_of_order;
        if let Some(value) = self.strange {
            return Err(Error::protocol(format!(
                "progress {value} is not one of 1..={}",
                self.seen.len() - 1
            )));
        }
        if missing > 0 {
            return Err(Error::Sequence(SequenceError::Gap { missing }));
        }
        if self.duplicates > 0 {
            return Err(Error::Sequence(SequenceError::Duplicate {
                repeated: self.duplicates,
            }));
        }
        if self.out_of_order > 0 {
            return Err(Error::Sequence(SequenceError::OutOfOrder {
                late: self.out_of_order,
            }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn check(values: &[f64]) -> (EventCounts, Option<ErrorKind>) {
        let mut sequence = Sequence::new(5);
        for &value in values {
            sequence.see(value);
        }
        let mut events = EventCounts::default();
        let error = sequence.finish(&mut events).err().map(|e| e.kind());
        (events, error)
    }

    #[test]
    fn an_exact_sequence_passes() {
        assert_eq!(
            check(&[1.0, 2.0, 3.0, 4.0, 5.0]),
            (EventCounts::default(), None)
        );
    }

    #[test]
    fn counts_gaps_duplicates_and_reordering() {
        let (events, error) = check(&[1.0, 2.0, 2.0, 4.0, 5.0]);
        assert_eq!(
            (events.gaps, events.duplicates, events.out_of_order),
            (1, 1, 0)
        );
        assert_eq!(error, Some(ErrorKind::Gap));
        let (events, error) = check(&[1.0, 3.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            (events.gaps, events.duplicates, events.out_of_order),
            (0, 1, 1)
        );
        assert_eq!(error, Some(ErrorKind::Duplicate));
        let (events, error) = check(&[2.0, 1.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            (events.gaps, events.duplicates, events.out_of_order),
            (0, 0, 1)
        );
        assert_eq!(error, Some(ErrorKind::OutOfOrder));
        let (_, error) = check(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(error, Some(ErrorKind::Protocol));
    }
}
