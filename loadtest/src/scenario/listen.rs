//! `listen` (2026-07-28 only): `--listeners` `subscriptions/listen` streams, opened round robin
//! over the URLs (one per replica) and held, each subscribed to the resources `URI/0` to
//! `URI/3` (`--resource-uri`). One trigger loop calls `--trigger-tool` `{"uri": …}` one call at
//! a time, at `--trigger-rate`, on the URLs in turn; update k is of `URI/(k mod 4)`. One
//! operation is one update delivered on one stream; its latency runs from just before the
//! trigger's POST to the arrival.
//!
//! Updates carry no id, so each stream's deliveries are matched to triggers by order (triggers
//! are sequential, so a stream sees them in order): a delivery of `URI/u` is the trigger of
//! that URI nearest to the one the stream expects next. Every trigger missing on a stream is an
//! operation that failed (`gap`); one seen twice, or after a later one, is `duplicate` or
//! `out_of_order`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Context, Outcome, SetupFailed, StreamCounts};
use crate::client::{EventStream, McpClient, Reply, StatelessHead, result_of};
use crate::error::{Error, SequenceError};
use crate::run::Plan;
use crate::stats::Recorder;
use crate::wire::{self, Message, ToolResult};

/// Resources the streams subscribe to; consecutive updates rotate over them.
const URIS: u64 = 4;
/// How often the end of the run looks whether every delivery arrived.
const DELIVERY_POLL: Duration = Duration::from_millis(5);
/// The listen request's method (it names nothing: no `Mcp-Name`).
const LISTEN: &str = "subscriptions/listen";
/// The first message of a listen stream.
const ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";
/// What each trigger makes every stream receive.
const UPDATED: &str = "notifications/resources/updated";
/// Where the stream's id is in each notification's `_meta`.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

pub(super) async fn run(ctx: &Context) -> Result<Outcome, SetupFailed> {
    let o = &ctx.options;
    let uris: Arc<[String]> = (0..URIS)
        .map(|k| format!("{}/{k}", o.resource_uri))
        .collect();
    let trigger = StatelessHead::tools_call(&o.trigger_tool)
        .map_err(|error| SetupFailed::new(&error, "cannot call --trigger-tool"))?;
    let count = o.listeners;
    ctx.progress
        .say(format!("opening {count} listen stream(s)"));
    let mut setup = Recorder::new(Instant::now());
    let (stop, stopped) = watch::channel(false);
    let mut listeners = Vec::with_capacity(count);
    let mut opened = futures::stream::iter(0..count)
        .map(|i| open(ctx, i, count, &uris))
        .buffer_unordered(o.concurrency);
    while let Some(result) = opened.next().await {
        match result {
            Ok((stream, id)) => {
                let state = Arc::new(ListenerState::default());
                let reader = tokio::spawn(read(
                    stream,
                    id,
                    uris.clone(),
                    state.clone(),
                    stopped.clone(),
                ));
                listeners.push((state, reader));
                ctx.progress.say(format!(
                    "opened {} of {count} listen stream(s)",
                    listeners.len()
                ));
            }
            Err(error) => setup.record_side_error(&error),
        }
    }
    drop(opened);
    let failed_to_open = setup.side_errors;
    if listeners.is_empty() {
        return Err(SetupFailed::nothing_opened(setup, "listen stream"));
    }

    ctx.progress.say("measuring");
    let plan = ctx.plan(Some(o.trigger_rate));
    let (triggers, mut recorder) = trigger_loop(ctx, &trigger, &plan, &uris).await;
    let measured = Instant::now().saturating_duration_since(plan.measure_start);
    // The last updates are still on their way: wait for them, as long as one operation may take.
    let sent = triggers.len() as u64;
    let deadline = Instant::now() + o.timeout;
    while Instant::now() < deadline
        && listeners.iter().any(|(state, _)| {
            !state.closed.load(Ordering::Relaxed) && state.received.load(Ordering::Relaxed) < sent
        })
    {
        tokio::time::sleep(DELIVERY_POLL).await;
    }
    let end = Instant::now();
    let _ = stop.send(true);

    let mut closed_early = 0;
    for (_, reader) in listeners.iter_mut() {
        let deliveries = match reader.await {
            Ok(deliveries) => deliveries,
            Err(error) => {
                eprintln!("shoal-load: a listen stream's reader failed: {error}");
                continue;
            }
        };
        closed_early += u64::from(deliveries.closed);
        deliveries.score(&triggers, end, &mut recorder);
    }
    for _ in 0..closed_early {
        recorder.record_side_error(&Error::StreamClosed);
    }
    recorder.merge(setup);
    let open = listeners.len() as u64 - closed_early;
    let warmup = triggers.iter().filter(|t| !t.measured).count();
    Ok(Outcome {
        recorder,
        measured,
        sessions: 0,
        streams: StreamCounts {
            open,
            failed: failed_to_open + closed_early,
        },
        notes: vec![format!(
            "2026-07-28: {} listen stream(s) over {} URL(s), {} update(s) ({warmup} in the \
             warmup) at {}/s, each one operation per stream",
            listeners.len(),
            ctx.targets.len(),
            triggers.len(),
            o.trigger_rate
        )],
    })
}

/// Opens listen stream `i` of `count` (on URL `i mod URLs`) and reads its acknowledgement;
/// returns the stream and the listen request's id.
async fn open(
    ctx: &Context,
    i: usize,
    count: usize,
    uris: &[String],
) -> Result<(EventStream, u64), Error> {
    let timeout = ctx.options.timeout;
    let mut client = McpClient::new(ctx.targets.clone(), i, count);
    let id = client.next_id();
    let body = wire::request(
        id,
        LISTEN,
        &json!({
            "_meta": wire::stateless_meta(&json!({})),
            "notifications": { "resourceSubscriptions": uris },
        }),
    );
    let head = StatelessHead {
        method: LISTEN,
        name: None,
    };
    let open = async {
        let mut stream = match client.post_stateless(&head, body).await? {
            Reply::Stream(stream) => stream,
            Reply::Json(message) => {
                result_of(&message, id)?;
                return Err(Error::protocol("a listen answered with JSON, not a stream"));
            }
        };
        let first = stream.next_message().await?.ok_or(Error::StreamClosed)?;
        let ack = Message::parse_str(&first)?;
        if ack.method.as_deref() != Some(ACKNOWLEDGED) {
            return Err(Error::protocol(format!(
                "a listen stream began with {:?}, not {ACKNOWLEDGED}",
                ack.method
            )));
        }
        let honoured: Value = ack
            .params
            .and_then(|params| serde_json::from_str(params.get()).ok())
            .unwrap_or_default();
        let subscribed = honoured
            .pointer("/notifications/resourceSubscriptions")
            .or_else(|| honoured.get("resourceSubscriptions"));
        let all = subscribed
            .and_then(Value::as_array)
            .is_some_and(|list| uris.iter().all(|uri| list.iter().any(|u| u == uri)));
        if !all {
            return Err(Error::protocol(format!(
                "the listen acknowledgement does not list every resource subscribed to (does \
                 the server serve resources?): {honoured}"
            )));
        }
        Ok((*stream, id))
    };
    tokio::time::timeout(timeout, open)
        .await
        .unwrap_or(Err(Error::Timeout(timeout)))
}

/// One trigger, in the order sent.
#[derive(Debug, Clone, Copy)]
struct Trigger {
    /// Just before its POST.
    sent: Instant,
    measured: bool,
    /// Its call failed: no stream is expected to see it.
    failed: bool,
}

/// Calls `--trigger-tool` sequentially at the plan's rate, on the URLs in turn; failed calls
/// are recorded (not operations: the deliveries are).
async fn trigger_loop(
    ctx: &Context,
    head: &StatelessHead,
    plan: &Plan,
    uris: &[String],
) -> (Vec<Trigger>, Recorder) {
    let o = &ctx.options;
    let meta = wire::stateless_meta(&json!({}));
    let mut client = McpClient::new(ctx.targets.clone(), 0, 1);
    let mut recorder = Recorder::new(plan.measure_start);
    let mut triggers = Vec::new();
    while let Some(slot) = plan.next_slot() {
        if let Some(due) = slot.due {
            tokio::time::sleep_until(due).await;
        }
        let uri = &uris[triggers.len() % uris.len()];
        let id = client.next_id();
        let body = wire::request(
            id,
            "tools/call",
            &json!({ "name": o.trigger_tool, "arguments": { "uri": uri }, "_meta": meta }),
        );
        let sent = Instant::now();
        let call = async {
            let (message, _) = client.call_stateless(head, body, id).await?;
            ToolResult::parse(result_of(&message, id)?).map(drop)
        };
        let result = tokio::time::timeout(o.timeout, call)
            .await
            .unwrap_or(Err(Error::Timeout(o.timeout)));
        if let Err(error) = &result
            && slot.measured
        {
            recorder.record_side_error(error);
        }
        triggers.push(Trigger {
            sent,
            measured: slot.measured,
            failed: result.is_err(),
        });
    }
    (triggers, recorder)
}

/// What the end of the run reads off a reader while it runs.
#[derive(Debug, Default)]
struct ListenerState {
    /// Updates delivered so far.
    received: AtomicU64,
    /// The stream ended or broke.
    closed: AtomicBool,
}

/// What one stream received, in order: (the trigger it answers, when it arrived).
#[derive(Debug, Default)]
struct Deliveries {
    arrivals: Vec<(u64, Instant)>,
    /// Messages that should not be on the stream (another subscription's id, a URI not
    /// subscribed to, a message that does not parse).
    strange: Vec<Error>,
    closed: bool,
}

/// The part of a notification's params that is checked.
#[derive(Debug, Deserialize)]
struct UpdatedParams {
    #[serde(default)]
    uri: Option<String>,
    #[serde(rename = "_meta", default)]
    meta: Option<serde_json::Map<String, Value>>,
}

/// Reads a listen stream until it ends or `stop` is set.
async fn read(
    mut stream: EventStream,
    id: u64,
    uris: Arc<[String]>,
    state: Arc<ListenerState>,
    mut stop: watch::Receiver<bool>,
) -> Deliveries {
    let mut deliveries = Deliveries::default();
    let mut next = 0;
    loop {
        let data = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            data = stream.next_message() => data,
        };
        let Ok(Some(data)) = data else {
            deliveries.closed = true;
            state.closed.store(true, Ordering::Relaxed);
            break;
        };
        let arrived = Instant::now();
        let message = match Message::parse_str(&data) {
            Ok(message) => message,
            Err(error) => {
                deliveries.strange.push(error);
                continue;
            }
        };
        // Anything else (the listen request's response when the server drains) is not an
        // update; a stream that then ends counts as closed early.
        if message.method.as_deref() != Some(UPDATED) {
            continue;
        }
        let params: Option<UpdatedParams> = message
            .params
            .and_then(|params| serde_json::from_str(params.get()).ok());
        let Some(params) = params else {
            deliveries
                .strange
                .push(Error::protocol("an update without params"));
            continue;
        };
        let subscription = params.meta.as_ref().and_then(|m| m.get(SUBSCRIPTION_ID));
        if subscription.and_then(Value::as_u64) != Some(id) {
            deliveries.strange.push(Error::protocol(format!(
                "an update for subscription {subscription:?} on the stream of listen request {id}"
            )));
            continue;
        }
        let position = params
            .uri
            .as_ref()
            .and_then(|uri| uris.iter().position(|u| u == uri));
        let Some(position) = position else {
            deliveries.strange.push(Error::protocol(format!(
                "an update of {:?}, which this stream did not subscribe to",
                params.uri
            )));
            continue;
        };
        let trigger = nearest_trigger(next, position as u64);
        next = next.max(trigger + 1);
        deliveries.arrivals.push((trigger, arrived));
        state.received.fetch_add(1, Ordering::Relaxed);
    }
    deliveries
}

/// The trigger of resource `position` nearest to `expected` (the next one a stream should
/// see): at most half a rotation before it, or less than half after.
fn nearest_trigger(expected: u64, position: u64) -> u64 {
    let ahead = (position + URIS - expected % URIS) % URIS;
    if ahead < URIS / 2 || expected + ahead < URIS {
        expected + ahead
    } else {
        expected + ahead - URIS
    }
}

// === impl Deliveries ===

impl Deliveries {
    /// Records one operation per measured trigger that did not fail: ok with its latency when
    /// it arrived in order, else the kind of fault; counts what arrived in `events`.
    fn score(&self, triggers: &[Trigger], end: Instant, recorder: &mut Recorder) {
        let mut seen = vec![false; triggers.len()];
        let mut greatest = None;
        recorder.events.received += self.arrivals.len() as u64;
        for &(index, arrived) in &self.arrivals {
            let Some(trigger) = usize::try_from(index).ok().and_then(|i| triggers.get(i)) else {
                // More deliveries than triggers: one came twice.
                recorder.events.duplicates += 1;
                recorder
                    .record_side_error(&Error::Sequence(SequenceError::Duplicate { repeated: 1 }));
                continue;
            };
            let index = index as usize;
            if std::mem::replace(&mut seen[index], true) {
                recorder.events.duplicates += 1;
                recorder
                    .record_side_error(&Error::Sequence(SequenceError::Duplicate { repeated: 1 }));
                continue;
            }
            let late = greatest.is_some_and(|greatest| index < greatest);
            greatest = greatest.max(Some(index));
            if late {
                recorder.events.out_of_order += 1;
            }
            if !trigger.measured {
                continue;
            }
            if late {
                let error = Error::Sequence(SequenceError::OutOfOrder { late: 1 });
                recorder.record_error(&error, arrived);
            } else {
                recorder.record_ok(arrived.saturating_duration_since(trigger.sent), arrived);
            }
        }
        let missing = triggers
            .iter()
            .zip(&seen)
            .filter(|(trigger, seen)| trigger.measured && !trigger.failed && !**seen)
            .count();
        for _ in 0..missing {
            recorder.events.gaps += 1;
            recorder.record_error(&Error::Sequence(SequenceError::Gap { missing: 1 }), end);
        }
        for error in &self.strange {
            recorder.record_side_error(error);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn deliveries_match_the_nearest_trigger_of_their_resource() {
        // In order: the expected one.
        assert_eq!(nearest_trigger(0, 0), 0);
        assert_eq!(nearest_trigger(5, 1), 5);
        // One skipped: the one after.
        assert_eq!(nearest_trigger(5, 2), 6);
        // Late: the one before the expected one.
        assert_eq!(nearest_trigger(6, 1), 5);
        assert_eq!(nearest_trigger(6, 0), 4);
        // Nothing before the first trigger.
        assert_eq!(nearest_trigger(0, 3), 3);
        assert_eq!(nearest_trigger(1, 3), 3);
    }

    #[test]
    fn scores_gaps_duplicates_and_reordering() {
        let start = Instant::now();
        let trigger = |ms| Trigger {
            sent: start + Duration::from_millis(ms),
            measured: true,
            failed: false,
        };
        let triggers = [trigger(0), trigger(10), trigger(20), trigger(30)];
        let at = |ms| start + Duration::from_millis(ms);
        let deliveries = Deliveries {
            // 1 twice, 3 before 2... and 0 never.
            arrivals: vec![
                (1, at(12)),
                (1, at(13)),
                (3, at(31)),
                (2, at(32)),
                (9, at(40)),
            ],
            strange: Vec::new(),
            closed: false,
        };
        let mut recorder = Recorder::new(start);
        deliveries.score(&triggers, at(50), &mut recorder);
        let e = recorder.events;
        assert_eq!(
            (e.received, e.gaps, e.duplicates, e.out_of_order),
            (5, 1, 2, 1)
        );
        assert_eq!(recorder.ok, 2);
        assert_eq!(recorder.errors[&ErrorKind::Gap], 1);
        assert_eq!(recorder.errors[&ErrorKind::Duplicate], 2);
        assert_eq!(recorder.errors[&ErrorKind::OutOfOrder], 1);
        assert_eq!(recorder.failed_operations(), 2, "the gap and the late one");
        assert_eq!(recorder.histogram.len(), 2);
        let max = recorder.histogram.max();
        assert!(
            (1995..=2005).contains(&max),
            "1 took 2 ms, 3 took 1 ms: {max}"
        );
    }
}
