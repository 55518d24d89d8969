//! [`Checker`]: records what every client of a fault scenario sent and received, and judges it.
//!
//! One file on purpose (about 890 lines, 150 of them its unit tests): the rules below and the
//! bookkeeping that applies them must be read together to trust a "pass".
//!
//! Loss is defined from what the server acknowledged, never from what a client merely sent:
//!
//! - A `count {to}` call whose reply stream opened (its priming event came) must end with either
//!   its result, once, after progress `1..=to` exactly once each and in order; or a JSON-RPC
//!   error saying its handler was abandoned (a clean error), after a gapless prefix of that
//!   progress. Progress missing before the result is lost; a value seen twice is duplicated;
//!   a value below one already seen is reordered. No answer at all is "unanswered".
//! - An `announce` whose `tools/call` returned a result must appear exactly once on the
//!   session's standalone stream, in the order of the calls. An announce whose call failed
//!   (its replica died under it) may appear once or not at all.
//! - On every stream, a message event's sequence number must be above every one seen before
//!   on that stream (over however many connections fed it).
//!
//! Retries of refused requests (503, a connection that broke before any answer) are counted,
//! never treated as loss: the client was told, or knows, that nothing was acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use shoal_testkit::SseEvent;

/// How many events of one stream the checker keeps for a violation's message.
const EVENT_LOG_LIMIT: usize = 256;

/// The records of every client of one scenario; cheap to clone, shared by all its tasks.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    inner: Arc<Mutex<State>>,
}

/// One call, as [`Checker::start_call`] numbered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(usize);

/// What a call asked for, which says what its answer must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallKind {
    /// `count {to}` with a progress token: progress `1..=to`, then the result `to`.
    Count {
        /// The last number.
        to: u64,
    },
    /// `announce {text}`: the text must appear on the session's standalone stream.
    Announce {
        /// The number in the text, increasing per session.
        n: u64,
    },
    /// `echo {text}`: the result is the text.
    Echo {
        /// The text sent.
        text: String,
    },
}

/// Why a retry happened, for the counts in the [`Verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RetryCause {
    /// The proxy or a replica answered 503.
    Unavailable,
    /// The connection failed or broke before any answer.
    Connection,
    /// No answer within the request's bound.
    Timeout,
    /// A reply stream broke before its first event: nothing to resume from.
    BeforeFirstEvent,
}

/// What the checker concluded about one scenario.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Sessions opened.
    pub sessions: usize,
    /// Sessions that ended with a 404 (their client then opened another).
    pub sessions_ended: usize,
    /// Calls acknowledged by the server (a reply stream opened, or an answer came).
    pub requests: usize,
    /// Message events checked, on every stream.
    pub events_checked: usize,
    /// Acknowledged events never delivered (progress before a result, acknowledged announces).
    pub lost: usize,
    /// Acknowledged events never delivered because their session ended (404) first.
    pub lost_with_session: usize,
    /// Events delivered more than once.
    pub duplicated: usize,
    /// Events delivered out of order.
    pub reordered: usize,
    /// Calls whose result was delivered exactly once.
    pub results_once: usize,
    /// Calls answered with a clean error (handler abandoned).
    pub clean_errors: usize,
    /// The longest time from a call's start to its clean error.
    pub max_time_to_error: Option<Duration>,
    /// Calls never answered (no result, no error) within their bound.
    pub unanswered: usize,
    /// Reconnections of a stream with `Last-Event-ID`.
    pub resumes: usize,
    /// Requests retried, by cause.
    pub retries: BTreeMap<String, usize>,
    /// What broke a rule, with enough detail to debug.
    pub violations: Vec<String>,
}

/// Figures another judge reached (the listen and multi round-trip scenarios judge their own
/// load), added to the [`Verdict`]'s so that the results table shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judged {
    /// Requests acknowledged.
    pub requests: usize,
    /// Events (messages) checked.
    pub events_checked: usize,
    /// Owed events never delivered.
    pub lost: usize,
    /// Events delivered more than once.
    pub duplicated: usize,
    /// Calls whose result was delivered exactly once.
    pub results_once: usize,
}

#[derive(Debug, Default)]
struct State {
    started: Option<Instant>,
    judged: Judged,
    sessions: usize,
    sessions_ended: usize,
    resumes: usize,
    retries: BTreeMap<RetryCause, usize>,
    calls: Vec<Call>,
    /// Streams by (client, stream id).
    streams: BTreeMap<(usize, String), StreamLog>,
    /// Standalone streams' announces by (client, session number).
    sessions_log: BTreeMap<(usize, usize), SessionLog>,
    violations: Vec<String>,
    /// The sessions that ended with a 404, for the violation's message.
    ended_sessions: Vec<String>,
}

#[derive(Debug)]
struct Call {
    client: usize,
    session: usize,
    request_id: i64,
    kind: CallKind,
    started: Instant,
    acknowledged: bool,
    progress: Vec<u64>,
    results: Vec<Value>,
    errors: Vec<(Value, Duration)>,
    unanswered: Option<String>,
    /// A resumption refused with a 400 (past retention): its body, and how fast it came.
    refused: Option<(String, Duration)>,
    /// The reply stream, once known.
    stream: Option<String>,
}

#[derive(Debug, Default)]
struct StreamLog {
    last_seq: Option<u64>,
    seqs: BTreeSet<u64>,
    connections: usize,
    events: Vec<String>,
}

#[derive(Debug, Default)]
struct SessionLog {
    /// The standalone stream's id, once an event named it.
    stream: Option<String>,
    acked: Vec<u64>,
    received: Vec<u64>,
    ended: bool,
}

// === impl Checker ===

impl Checker {
    /// An empty record.
    pub fn new() -> Self {
        Checker::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session of `client`, numbered `session` by that client.
    pub fn session_started(&self, client: usize, session: usize) {
        let mut state = self.state();
        state.started.get_or_insert_with(Instant::now);
        state.sessions += 1;
        state.sessions_log.entry((client, session)).or_default();
    }

    /// The session answered 404 to `request` (what the client was doing): its client drops
    /// it. Named in the violation when sessions must survive.
    pub fn session_ended(&self, client: usize, session: usize, request: &str) {
        let mut state = self.state();
        state.sessions_ended += 1;
        state
            .sessions_log
            .entry((client, session))
            .or_default()
            .ended = true;
        state
            .ended_sessions
            .push(format!("client {client} session {session} ({request})"));
    }

    /// A request retried (nothing acknowledged).
    pub fn retry(&self, cause: RetryCause) {
        *self.state().retries.entry(cause).or_default() += 1;
    }

    /// A stream reconnected with `Last-Event-ID`.
    pub fn resumed(&self) {
        self.state().resumes += 1;
    }

    /// A call sent by `client` in its session `session`, as JSON-RPC request `request_id`.
    pub fn start_call(
        &self,
        client: usize,
        session: usize,
        request_id: i64,
        kind: CallKind,
    ) -> CallId {
        let mut state = self.state();
        state.calls.push(Call {
            client,
            session,
            request_id,
            kind,
            started: Instant::now(),
            acknowledged: false,
            progress: Vec::new(),
            results: Vec::new(),
            errors: Vec::new(),
            unanswered: None,
            refused: None,
            stream: None,
        });
        CallId(state.calls.len() - 1)
    }

    /// The call broke before anything acknowledged it (no event came): it is counted as a
    /// retry and not judged.
    pub fn abandon_call(&self, call: CallId, cause: RetryCause) {
        let mut state = self.state();
        *state.retries.entry(cause).or_default() += 1;
        if let Some(call) = state.calls.get_mut(call.0) {
            call.acknowledged = false;
        }
    }

    /// One event of `call`'s reply stream (on any connection), checked as it comes.
    pub fn call_event(&self, call_id: CallId, event: &SseEvent) {
        let mut state = self.state();
        let State {
            calls,
            streams,
            violations,
            ..
        } = &mut *state;
        let Some(call) = calls.get_mut(call_id.0) else {
            return;
        };
        call.acknowledged = true;
        let client = call.client;
        if let Some(stream) = event.stream() {
            call.stream.get_or_insert_with(|| stream.to_owned());
        }
        let what = format!(
            "client {client} call #{} ({:?})",
            call.request_id, call.kind
        );
        record_stream_event(streams, violations, client, event, &what);
        let Some(message) = event.json() else {
            return;
        };
        if message["method"] == "notifications/progress" {
            // A JSON number, 1.0 as often as 1: whole and non-negative.
            let value = message["params"]["progress"]
                .as_f64()
                .filter(|p| p.fract() == 0.0 && *p >= 0.0);
            match value.map(|p| p as u64) {
                Some(value) => call.progress.push(value),
                None => violations.push(format!("{what}: progress not a whole number: {message}")),
            }
        } else if message.get("method").is_none() {
            if message["id"] != call.request_id {
                violations.push(format!("{what}: a response to another request: {message}"));
            } else if message.get("error").is_some() {
                call.errors.push((message, call.started.elapsed()));
            } else {
                call.results.push(message);
            }
        } else {
            violations.push(format!("{what}: an unexpected message: {message}"));
        }
    }

    /// A stream of `call`'s reply (re)connected.
    pub fn call_connection(&self, call_id: CallId, stream: Option<&str>) {
        let mut state = self.state();
        let client = match state.calls.get(call_id.0) {
            Some(call) => call.client,
            None => return,
        };
        if let Some(stream) = stream {
            state
                .streams
                .entry((client, stream.to_owned()))
                .or_default()
                .connections += 1;
        }
    }

    /// `call` was answered with a JSON body (no stream).
    pub fn call_answered(&self, call_id: CallId, message: Value) {
        let mut state = self.state();
        let Some(call) = state.calls.get_mut(call_id.0) else {
            return;
        };
        call.acknowledged = true;
        if message.get("error").is_some() {
            let elapsed = call.started.elapsed();
            call.errors.push((message, elapsed));
        } else {
            call.results.push(message);
        }
    }

    /// Resuming `call`'s reply stream was refused with a 400 whose body is `body` (the events
    /// were past retention), `answered_in` after the GET was sent: a clean error when the body
    /// says so.
    pub fn call_refused_resume(&self, call_id: CallId, body: &str, answered_in: Duration) {
        let mut state = self.state();
        if let Some(call) = state.calls.get_mut(call_id.0) {
            call.acknowledged = true;
            call.refused = Some((body.to_owned(), answered_in));
        }
    }

    /// Whether `call` has a result (not an error).
    pub fn call_succeeded(&self, call_id: CallId) -> bool {
        self.state()
            .calls
            .get(call_id.0)
            // A tool error (`isError`, e.g. "could not announce" when Redis failed under the
            // call) acknowledges nothing.
            .is_some_and(|call| {
                call.results
                    .first()
                    .is_some_and(|r| r["result"]["isError"] != true)
            })
    }

    /// `call` was acknowledged but got no answer within its bound.
    pub fn call_unanswered(&self, call_id: CallId, why: impl Into<String>) {
        let mut state = self.state();
        if let Some(call) = state.calls.get_mut(call_id.0) {
            call.acknowledged = true;
            call.unanswered = Some(why.into());
        }
    }

    /// Adds figures another judge reached; its violations come through
    /// [`Checker::violation`].
    pub fn add_judged(&self, judged: Judged) {
        let mut state = self.state();
        let total = &mut state.judged;
        total.requests += judged.requests;
        total.events_checked += judged.events_checked;
        total.lost += judged.lost;
        total.duplicated += judged.duplicated;
        total.results_once += judged.results_once;
    }

    /// A rule broken that only the caller can see (a 400 where none was due, say).
    pub fn violation(&self, detail: impl Into<String>) {
        self.state().violations.push(detail.into());
    }

    /// An announce of `client`'s session `session` was acknowledged (its call returned a result).
    pub fn announce_acked(&self, client: usize, session: usize, n: u64) {
        self.state()
            .sessions_log
            .entry((client, session))
            .or_default()
            .acked
            .push(n);
    }

    /// One event of `client`'s standalone stream of session `session`.
    pub fn standalone_event(&self, client: usize, session: usize, event: &SseEvent) {
        let mut state = self.state();
        let State {
            streams,
            sessions_log,
            violations,
            ..
        } = &mut *state;
        let what = format!("client {client} session {session} standalone stream");
        record_stream_event(streams, violations, client, event, &what);
        if let Some(stream) = event.stream() {
            sessions_log
                .entry((client, session))
                .or_default()
                .stream
                .get_or_insert_with(|| stream.to_owned());
        }
        let Some(message) = event.json() else {
            return;
        };
        if message["method"] != "notifications/message" {
            return;
        }
        let n = message["params"]["data"]
            .as_str()
            .and_then(|text| text.rsplit_once(" n"))
            .and_then(|(_, n)| n.parse::<u64>().ok());
        match n {
            Some(n) => sessions_log
                .entry((client, session))
                .or_default()
                .received
                .push(n),
            None => violations.push(format!("{what}: an unexpected log message: {message}")),
        }
    }

    /// Whether announce `n` of `client`'s session `session` has arrived.
    pub fn announce_received(&self, client: usize, session: usize, n: u64) -> bool {
        self.state()
            .sessions_log
            .get(&(client, session))
            .is_some_and(|log| log.received.contains(&n))
    }

    /// Whether every acknowledged announce of `client`'s session `session` has arrived.
    pub fn announces_delivered(&self, client: usize, session: usize) -> bool {
        let state = self.state();
        state
            .sessions_log
            .get(&(client, session))
            .is_none_or(|log| {
                let received: BTreeSet<u64> = log.received.iter().copied().collect();
                log.acked.iter().all(|n| received.contains(n))
            })
    }

    /// Judges everything recorded so far. `sessions_survive`: whether a session ending (404)
    /// is itself a violation (it is under replica faults, where Redis keeps every session).
    pub fn report(&self, sessions_survive: bool) -> Verdict {
        let state = self.state();
        let mut verdict = Verdict {
            requests: state.judged.requests,
            events_checked: state.judged.events_checked,
            lost: state.judged.lost,
            duplicated: state.judged.duplicated,
            results_once: state.judged.results_once,
            sessions: state.sessions,
            sessions_ended: state.sessions_ended,
            resumes: state.resumes,
            retries: state
                .retries
                .iter()
                .map(|(cause, n)| (format!("{cause:?}"), *n))
                .collect(),
            violations: state.violations.clone(),
            ..Verdict::default()
        };
        if sessions_survive && state.sessions_ended > 0 {
            verdict.violations.push(format!(
                "{} sessions ended with 404 although sessions must survive this fault: {}",
                state.sessions_ended,
                state.ended_sessions.join(", ")
            ));
        }
        for log in state.streams.values() {
            verdict.events_checked += log.seqs.len();
        }
        for call in &state.calls {
            if !call.acknowledged {
                continue;
            }
            verdict.requests += 1;
            judge_call(call, &state, &mut verdict);
        }
        for ((client, session), log) in &state.sessions_log {
            let events = log
                .stream
                .as_ref()
                .and_then(|s| state.streams.get(&(*client, s.clone())))
                .map(|stream| stream.events.join("\n"))
                .unwrap_or_default();
            judge_announces(*client, *session, log, &events, &mut verdict);
        }
        verdict
    }
}

/// Records one event of a stream and checks its sequence number against the stream's past.
fn record_stream_event(
    streams: &mut BTreeMap<(usize, String), StreamLog>,
    violations: &mut Vec<String>,
    client: usize,
    event: &SseEvent,
    what: &str,
) {
    let (Some(stream), Some(seq)) = (event.stream(), event.seq()) else {
        if event.id.is_some() {
            violations.push(format!(
                "{what}: event id {:?} is not <stream>.<seq>",
                event.id
            ));
        }
        return;
    };
    let log = streams.entry((client, stream.to_owned())).or_default();
    if log.events.len() < EVENT_LOG_LIMIT {
        log.events.push(format!(
            "[conn {}] id={} data={:?}",
            log.connections,
            event.id.as_deref().unwrap_or(""),
            event.data.as_deref().map(|d| truncate(d, 120))
        ));
    }
    let is_message = event.data.as_deref().is_some_and(|d| !d.is_empty());
    if is_message {
        if log.seqs.contains(&seq) {
            violations.push(format!(
                "{what}: event {stream}.{seq} delivered twice\n{}",
                log.events.join("\n")
            ));
        } else if log.last_seq.is_some_and(|last| seq <= last) {
            violations.push(format!(
                "{what}: event {stream}.{seq} after {stream}.{:?}: out of order\n{}",
                log.last_seq,
                log.events.join("\n")
            ));
        }
        log.seqs.insert(seq);
    } else if log.last_seq.is_some_and(|last| seq < last) {
        violations.push(format!(
            "{what}: priming event {stream}.{seq} goes back before {:?}",
            log.last_seq
        ));
    }
    log.last_seq = Some(log.last_seq.map_or(seq, |last| last.max(seq)));
}

fn judge_call(call: &Call, state: &State, verdict: &mut Verdict) {
    let what = format!(
        "client {} session {} call #{} ({:?})",
        call.client, call.session, call.request_id, call.kind
    );
    let events = || {
        call.stream
            .as_ref()
            .and_then(|s| state.streams.get(&(call.client, s.clone())))
            .map(|log| log.events.join("\n"))
            .unwrap_or_default()
    };
    // Progress: a gapless prefix of 1.., each once, in order.
    let mut highest = 0;
    let mut seen = BTreeSet::new();
    for &value in &call.progress {
        if !seen.insert(value) {
            verdict.duplicated += 1;
            verdict
                .violations
                .push(format!("{what}: progress {value} twice\n{}", events()));
        } else if value < highest {
            verdict.reordered += 1;
            verdict.violations.push(format!(
                "{what}: progress {value} after {highest}\n{}",
                events()
            ));
        }
        highest = highest.max(value);
    }
    let gaps = (1..=highest).filter(|v| !seen.contains(v)).count();
    if gaps > 0 {
        verdict.lost += gaps;
        verdict.violations.push(format!(
            "{what}: {gaps} progress values missing below {highest}: {:?}\n{}",
            call.progress,
            events()
        ));
    }
    if call.results.len() > 1
        || call.errors.len() > 1
        || (call.results.len() + call.errors.len() > 1)
    {
        verdict.duplicated += call.results.len() + call.errors.len() - 1;
        verdict.violations.push(format!(
            "{what}: answered {} times: {:?} {:?}",
            call.results.len() + call.errors.len(),
            call.results,
            call.errors
        ));
    }
    if let Some(result) = call.results.first() {
        verdict.results_once += usize::from(call.results.len() == 1);
        match &call.kind {
            CallKind::Count { to } => {
                if result["result"]["content"][0]["text"].as_str() != Some(to.to_string().as_str())
                {
                    verdict
                        .violations
                        .push(format!("{what}: wrong result {result}"));
                }
                let missing = (1..=*to).filter(|v| !seen.contains(v)).count();
                if missing > gaps {
                    verdict.lost += missing - gaps;
                    verdict.violations.push(format!(
                        "{what}: result after progress {:?}: {} values lost\n{}",
                        call.progress,
                        missing - gaps,
                        events()
                    ));
                }
            }
            CallKind::Echo { text } => {
                if result["result"]["content"][0]["text"] != text.as_str() {
                    verdict
                        .violations
                        .push(format!("{what}: wrong result {result}"));
                }
            }
            CallKind::Announce { .. } => {}
        }
    } else if let Some((error, elapsed)) = call.errors.first() {
        let message = error["error"]["message"].as_str().unwrap_or_default();
        if error["error"]["code"] == -32603 && message.contains("abandoned") {
            verdict.clean_errors += 1;
            verdict.max_time_to_error = verdict.max_time_to_error.max(Some(*elapsed));
        } else {
            verdict.violations.push(format!(
                "{what}: an unclear error after {elapsed:?}: {error}"
            ));
        }
    } else if let Some((body, elapsed)) = &call.refused {
        let error: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let message = error["error"]["message"].as_str().unwrap_or_default();
        if message.contains("Last-Event-ID") || message.contains("retained") {
            verdict.clean_errors += 1;
            verdict.max_time_to_error = verdict.max_time_to_error.max(Some(*elapsed));
        } else {
            verdict.violations.push(format!(
                "{what}: resumption refused with an unclear body after {elapsed:?}: {body}"
            ));
        }
    } else if state
        .sessions_log
        .get(&(call.client, call.session))
        .is_some_and(|log| log.ended)
    {
        // Its session ended (404) under it: the answer died with the session, which
        // `report` already judges (a violation unless the fault may lose sessions).
        verdict.lost_with_session += 1;
    } else {
        verdict.unanswered += 1;
        verdict.violations.push(format!(
            "{what}: never answered ({})\n{}",
            call.unanswered.as_deref().unwrap_or("no reason recorded"),
            events()
        ));
    }
}

/// `events`: the standalone stream's events as received, for the violation's message.
fn judge_announces(
    client: usize,
    session: usize,
    log: &SessionLog,
    events: &str,
    verdict: &mut Verdict,
) {
    let what = format!("client {client} session {session} announces");
    let mut seen = BTreeSet::new();
    let mut highest = None;
    for &n in &log.received {
        if !seen.insert(n) {
            verdict.duplicated += 1;
            verdict
                .violations
                .push(format!("{what}: n{n} twice (received {:?})", log.received));
        } else if highest.is_some_and(|h| n < h) {
            verdict.reordered += 1;
            verdict.violations.push(format!(
                "{what}: n{n} after n{highest:?} (received {:?})",
                log.received
            ));
        }
        highest = highest.max(Some(n));
    }
    let missing: Vec<u64> = log
        .acked
        .iter()
        .copied()
        .filter(|n| !seen.contains(n))
        .collect();
    if missing.is_empty() {
        return;
    }
    if log.ended {
        verdict.lost_with_session += missing.len();
    } else {
        verdict.lost += missing.len();
        verdict.violations.push(format!(
            "{what}: acknowledged but never delivered: {missing:?} (acked {:?}, received {:?})\n\
             {events}",
            log.acked, log.received
        ));
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text[..end].to_owned();
    let _ = write!(out, "…");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str, message: &Value) -> SseEvent {
        SseEvent {
            id: Some(id.to_owned()),
            data: Some(message.to_string()),
            ..SseEvent::default()
        }
    }

    fn progress(n: u64) -> Value {
        json!({ "jsonrpc": "2.0", "method": "notifications/progress",
                "params": { "progressToken": "t", "progress": n as f64 } })
    }

    fn result(id: i64, text: &str) -> Value {
        json!({ "jsonrpc": "2.0", "id": id, "result": { "content": [{ "type": "text", "text": text }] } })
    }

    #[test]
    fn a_whole_count_passes_and_a_gap_a_duplicate_and_silence_do_not() {
        let checker = Checker::new();
        checker.session_started(0, 0);
        let whole = checker.start_call(0, 0, 1, CallKind::Count { to: 2 });
        checker.call_event(whole, &event("a.1", &progress(1)));
        checker.call_event(whole, &event("a.2", &progress(2)));
        checker.call_event(whole, &event("a.3", &result(1, "2")));
        let verdict = checker.report(true);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!((verdict.requests, verdict.results_once), (1, 1));

        let gap = checker.start_call(0, 0, 2, CallKind::Count { to: 3 });
        checker.call_event(gap, &event("b.1", &progress(1)));
        checker.call_event(gap, &event("b.3", &progress(3)));
        checker.call_event(gap, &event("b.3", &progress(3)));
        checker.call_event(gap, &event("b.4", &result(2, "3")));
        let silent = checker.start_call(0, 0, 3, CallKind::Count { to: 3 });
        checker.call_event(silent, &event("c.1", &progress(1)));
        checker.call_unanswered(silent, "no event within 5s");
        let verdict = checker.report(true);
        assert_eq!(verdict.lost, 1, "{:?}", verdict.violations);
        assert!(verdict.duplicated >= 1, "{:?}", verdict.violations);
        assert_eq!(verdict.unanswered, 1);
    }

    #[test]
    fn acknowledged_announces_must_arrive_once_in_order() {
        let checker = Checker::new();
        checker.session_started(1, 0);
        for n in 1..=3 {
            checker.announce_acked(1, 0, n);
        }
        let log = |n: u64| {
            json!({ "jsonrpc": "2.0", "method": "notifications/message",
                    "params": { "level": "info", "data": format!("c1 s0 n{n}") } })
        };
        checker.standalone_event(1, 0, &event("s.1", &log(1)));
        checker.standalone_event(1, 0, &event("s.2", &log(3)));
        assert!(!checker.announces_delivered(1, 0));
        let verdict = checker.report(true);
        assert_eq!(verdict.lost, 1, "{:?}", verdict.violations);
        checker.standalone_event(1, 0, &event("s.3", &log(2)));
        let verdict = checker.report(true);
        assert_eq!((verdict.lost, verdict.reordered), (0, 1));
    }

    #[test]
    fn a_call_cut_off_by_its_session_ending_died_with_it() {
        let checker = Checker::new();
        checker.session_started(3, 0);
        let cut = checker.start_call(3, 0, 1, CallKind::Count { to: 5 });
        checker.call_event(cut, &event("d.1", &progress(1)));
        checker.session_ended(3, 0, "404");
        let verdict = checker.report(false);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!((verdict.unanswered, verdict.lost_with_session), (0, 1));
        // The same silence in a live session is unanswered.
        checker.session_started(3, 1);
        let silent = checker.start_call(3, 1, 2, CallKind::Count { to: 5 });
        checker.call_event(silent, &event("e.1", &progress(1)));
        assert_eq!(checker.report(false).unanswered, 1);
    }

    #[test]
    fn a_tool_error_acknowledges_nothing() {
        let checker = Checker::new();
        checker.session_started(4, 0);
        let failed = checker.start_call(4, 0, 1, CallKind::Announce { n: 1 });
        let error = json!({ "jsonrpc": "2.0", "id": 1, "result": {
            "content": [{ "type": "text", "text": "could not announce: unavailable" }],
            "isError": true } });
        checker.call_answered(failed, error);
        assert!(!checker.call_succeeded(failed));
        let announced = checker.start_call(4, 0, 2, CallKind::Announce { n: 2 });
        checker.call_answered(announced, result(2, "announced"));
        assert!(checker.call_succeeded(announced));
    }

    #[test]
    fn a_session_that_ended_is_a_violation_only_when_sessions_must_survive() {
        let checker = Checker::new();
        checker.session_started(2, 0);
        checker.announce_acked(2, 0, 1);
        checker.session_ended(2, 0, "404");
        let tolerated = checker.report(false);
        assert!(
            tolerated.violations.is_empty(),
            "{:?}",
            tolerated.violations
        );
        assert_eq!((tolerated.lost, tolerated.lost_with_session), (0, 1));
        let strict = checker.report(true);
        assert_eq!(strict.violations.len(), 1, "{:?}", strict.violations);
        assert_eq!(strict.sessions_ended, 1);
    }

    #[test]
    fn a_resumption_refused_past_retention_is_clean_only_when_it_says_why() {
        let checker = Checker::new();
        let clear = checker.start_call(0, 0, 1, CallKind::Count { to: 3 });
        let body = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32600,
            "message": "bad request: the event is no longer retained; the stream cannot be resumed" } });
        checker.call_refused_resume(clear, &body.to_string(), Duration::from_millis(5));
        let verdict = checker.report(true);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!(verdict.clean_errors, 1);
        let vague = checker.start_call(0, 0, 2, CallKind::Count { to: 3 });
        checker.call_refused_resume(vague, "bad request", Duration::from_millis(5));
        let verdict = checker.report(true);
        assert_eq!(verdict.violations.len(), 1, "{:?}", verdict.violations);
    }

    #[test]
    fn an_abandoned_error_is_clean_and_timed() {
        let checker = Checker::new();
        let call = checker.start_call(0, 0, 9, CallKind::Count { to: 5 });
        checker.call_event(call, &event("d.1", &progress(1)));
        let error = json!({ "jsonrpc": "2.0", "id": 9,
            "error": { "code": -32603, "message": "request abandoned: the server replica running it (r) stopped before it finished" } });
        checker.call_event(call, &event("d.2", &error));
        let verdict = checker.report(true);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!(verdict.clean_errors, 1);
        assert!(verdict.max_time_to_error.is_some());
    }
}
