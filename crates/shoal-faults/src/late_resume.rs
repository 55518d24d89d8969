//! `late_resume`: clients that break their streams mid-way and resume much later, on a cluster
//! whose event retention is short (3 s), beside a lighter steady load.
//!
//! - Inside the window (resumed after 1 s): a `count` reply stream and the standalone stream
//!   (with announces sent while it was away) deliver everything, once, in order.
//! - Outside it (resumed 6 s after the last event): the GET is answered at once with a 400
//!   whose JSON-RPC error says the events are no longer retained. Never silence, never a stream
//!   that quietly skips what was trimmed. The announces sent while away are lost by design and
//!   the client is told: they are counted as the faults' cost, not as loss.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::checker::{CallKind, Checker};
use crate::workload::{Answer, Http, Refused, Session, is_response, open_session, read_call};
use crate::{Env, Faults, Ran, RunFuture, Scenario, Workload, WorkloadConfig};
use shoal_testkit::SseStream;

/// The cluster's `--event-retention`.
const RETENTION: Duration = Duration::from_secs(3);
/// A resume inside the window comes this long after the break.
const INSIDE_WAIT: Duration = Duration::from_secs(1);
/// A resume outside the window comes this long after the last event.
const OUTSIDE_WAIT: Duration = Duration::from_secs(6);
/// Bound on waiting for one expected event.
const EVENT_WAIT: Duration = Duration::from_secs(5);
/// Client numbers of the probes, apart from the load's.
const PROBE_CLIENT: usize = 100;

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "late_resume",
        description: "streams broken and resumed 1 s (inside 3 s retention) and 6 s (outside) later",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let cluster = env
        .cluster_builder()
        .arg("--event-retention")
        .arg(format!("{}s", RETENTION.as_secs()))
        .start()
        .await;
    let url = cluster.url();
    let config = WorkloadConfig {
        clients: 3,
        ..WorkloadConfig::default()
    };
    let load = Workload::start(&url, &env.checker, config);
    let mut faults = Faults::default();
    let mut refusals = Vec::new();
    let started = Instant::now();
    let mut round = 0;
    // A round takes about OUTSIDE_WAIT; start another while it ends within the duration.
    while round == 0 || started.elapsed() + OUTSIDE_WAIT < env.duration {
        let inside = probe_inside(&url, &env.checker, PROBE_CLIENT + 2 * round);
        let outside = probe_outside(&url, &env.checker, PROBE_CLIENT + 2 * round + 1);
        let ((), answered_in) = tokio::join!(inside, outside);
        faults.add("break, resume after 1 s");
        faults.add("break, resume after 1 s");
        faults.add("break, resume after 6 s");
        faults.add("break, resume after 6 s");
        refusals.extend(answered_in);
        round += 1;
    }
    let load = load.stop().await;
    let slowest = refusals.iter().max().copied().unwrap_or_default();
    Ran {
        load,
        faults,
        notes: vec![format!(
            "{} resumptions past retention refused with 400, the slowest in {slowest:.1?}",
            refusals.len()
        )],
    }
}

/// Opens a session for probe `client`, or records why it could not.
async fn probe_session(http: &Http, checker: &Checker, client: usize) -> Option<Session> {
    let never = AtomicBool::new(false);
    let opened = tokio::time::timeout(
        Duration::from_secs(15),
        open_session(http, &never, checker, 0),
    )
    .await;
    match opened {
        Ok(Some(session)) => {
            checker.session_started(client, 0);
            Some(session)
        }
        _ => {
            checker.violation(format!("probe {client}: no session within 15 s"));
            None
        }
    }
}

/// The standalone stream of `session`, read until its priming event (events recorded).
async fn open_standalone(
    http: &Http,
    checker: &Checker,
    client: usize,
    session: &Session,
    last_event_id: Option<&str>,
) -> Result<(SseStream, Option<String>), String> {
    let (answer, _) = http
        .get(session, last_event_id)
        .await
        .map_err(|refused| format!("GET {last_event_id:?}: {refused:?}"))?;
    let Answer::Stream(mut stream) = answer else {
        return Err("GET answered without a stream".into());
    };
    let event = stream
        .next_event_within(EVENT_WAIT)
        .await
        .map_err(|_| format!("no priming event within {EVENT_WAIT:?}"))?
        .ok_or("the stream ended before its priming event")?;
    checker.standalone_event(client, session.number, &event);
    Ok((*stream, event.id.clone()))
}

/// Reads `stream` until announce `n` arrived; returns the last event id.
async fn read_announces_until(
    stream: &mut SseStream,
    checker: &Checker,
    client: usize,
    session: &Session,
    n: u64,
    mut last_event_id: Option<String>,
) -> Result<Option<String>, String> {
    let deadline = Instant::now() + EVENT_WAIT;
    while !checker.announce_received(client, session.number, n) {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.next_event_within(left).await {
            Ok(Some(event)) => {
                if event.id.is_some() {
                    last_event_id = event.id.clone();
                }
                checker.standalone_event(client, session.number, &event);
            }
            Ok(None) => return Err(format!("the stream ended before announce n{n}")),
            Err(_) => {
                return Err(format!(
                    "announce n{n} did not arrive within {EVENT_WAIT:?}"
                ));
            }
        }
    }
    Ok(last_event_id)
}

/// Sends announce `n` of `session`; true when acknowledged (then recorded as such when
/// `must_arrive`).
async fn announce(
    http: &Http,
    checker: &Checker,
    client: usize,
    session: &Session,
    n: u64,
    must_arrive: bool,
) -> bool {
    let id = http.next_id();
    let message = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "announce", "arguments": { "text": format!("c{client} s0 n{n}") } }
    });
    let call = checker.start_call(client, session.number, id, CallKind::Announce { n });
    let never = AtomicBool::new(false);
    read_call(http, checker, session, call, &message, EVENT_WAIT, &never).await;
    let acked = checker.call_succeeded(call);
    if acked && must_arrive {
        checker.announce_acked(client, session.number, n);
    }
    acked
}

/// Starts `count {to}` and reads its stream until progress `until`; returns the call, the
/// last event id and how many progress events were read.
async fn count_until(
    http: &Http,
    checker: &Checker,
    client: usize,
    session: &Session,
    to: u64,
    interval_ms: u64,
    until: u64,
) -> Result<(super::checker::CallId, String), String> {
    let id = http.next_id();
    let message = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": "count",
            "arguments": { "to": to, "interval_ms": interval_ms },
            "_meta": { "progressToken": format!("p{client}") }
        }
    });
    let call = checker.start_call(client, session.number, id, CallKind::Count { to });
    let (answer, _) = http
        .post(Some(session), &message)
        .await
        .map_err(|refused| format!("count: {refused:?}"))?;
    let Answer::Stream(mut stream) = answer else {
        return Err("count answered without a stream".into());
    };
    checker.call_connection(call, None);
    let mut last = None;
    loop {
        let event = stream
            .next_event_within(EVENT_WAIT)
            .await
            .map_err(|_| format!("count: no event within {EVENT_WAIT:?}"))?
            .ok_or("count: the stream ended early")?;
        if event.id.is_some() {
            last = event.id.clone();
        }
        checker.call_event(call, &event);
        let progress = event
            .json()
            .filter(|m| m["method"] == "notifications/progress")
            .and_then(|m| m["params"]["progress"].as_f64());
        if progress.is_some_and(|p| p >= until as f64) {
            break;
        }
    }
    // The connection breaks here: the client goes away.
    drop(stream);
    Ok((call, last.ok_or("count: no event id")?))
}

/// Breaks a `count` stream and the standalone stream, waits 1 s, resumes both: everything
/// must arrive.
async fn probe_inside(url: &str, checker: &Checker, client: usize) {
    let http = Http::new(url);
    let Some(session) = probe_session(&http, checker, client).await else {
        return;
    };
    let outcome = async {
        let (mut standalone, last) =
            open_standalone(&http, checker, client, &session, None).await?;
        if !announce(&http, checker, client, &session, 1, true).await {
            return Err("announce n1 was not acknowledged".to_owned());
        }
        let last = read_announces_until(&mut standalone, checker, client, &session, 1, last)
            .await?
            .ok_or("no event id on the standalone stream")?;
        drop(standalone);
        let (call, from) = count_until(&http, checker, client, &session, 12, 150, 3).await?;
        for n in 2..=3 {
            if !announce(&http, checker, client, &session, n, true).await {
                return Err(format!("announce n{n} was not acknowledged"));
            }
        }
        tokio::time::sleep(INSIDE_WAIT).await;

        let (mut standalone, _) =
            open_standalone(&http, checker, client, &session, Some(&last)).await?;
        checker.resumed();
        read_announces_until(&mut standalone, checker, client, &session, 3, Some(last)).await?;
        drop(standalone);

        let (answer, _) = http
            .get(&session, Some(&from))
            .await
            .map_err(|refused| format!("resuming {from} inside retention: {refused:?}"))?;
        let Answer::Stream(mut stream) = answer else {
            return Err(format!("resuming {from}: not a stream"));
        };
        checker.resumed();
        checker.call_connection(call, shoal_testkit::sse::id_stream(&from));
        loop {
            match stream.next_event_within(EVENT_WAIT).await {
                Ok(Some(event)) => {
                    checker.call_event(call, &event);
                    if is_response(&event) {
                        return Ok(());
                    }
                }
                Ok(None) | Err(_) => {
                    checker.call_unanswered(call, "the resumed stream ended or stalled");
                    return Ok(());
                }
            }
        }
    }
    .await;
    if let Err(why) = outcome {
        checker.violation(format!("probe {client} (inside retention): {why}"));
    }
}

/// Breaks a `count` stream and the standalone stream, waits 6 s (past retention), resumes
/// both: each must be refused at once with a clear 400. Returns how fast the refusals came.
async fn probe_outside(url: &str, checker: &Checker, client: usize) -> Vec<Duration> {
    let http = Http::new(url);
    let Some(session) = probe_session(&http, checker, client).await else {
        return Vec::new();
    };
    let mut answered_in = Vec::new();
    let outcome = async {
        let (mut standalone, last) =
            open_standalone(&http, checker, client, &session, None).await?;
        if !announce(&http, checker, client, &session, 1, true).await {
            return Err("announce n1 was not acknowledged".to_owned());
        }
        let last = read_announces_until(&mut standalone, checker, client, &session, 1, last)
            .await?
            .ok_or("no event id on the standalone stream")?;
        drop(standalone);
        // Past retention, by design: not recorded as acknowledged.
        announce(&http, checker, client, &session, 2, false).await;
        let (call, from) = count_until(&http, checker, client, &session, 3, 100, 1).await?;
        tokio::time::sleep(OUTSIDE_WAIT).await;

        for (what, from, call) in [("standalone", &last, None), ("count", &from, Some(call))] {
            let asked = Instant::now();
            match http.get(&session, Some(from)).await {
                Err(Refused::Unexpected(StatusCode::BAD_REQUEST, body)) => {
                    let took = asked.elapsed();
                    answered_in.push(took);
                    check_refusal(checker, client, what, &body);
                    if let Some(call) = call {
                        checker.call_refused_resume(call, &body, took);
                    }
                }
                Ok((Answer::Stream(mut stream), _)) => {
                    let first = stream.next_event_within(Duration::from_secs(1)).await;
                    return Err(format!(
                        "resuming the {what} stream from {from} past retention opened a stream \
                         (first event {first:?}) instead of a 400"
                    ));
                }
                other => {
                    return Err(format!(
                        "resuming the {what} stream from {from} past retention: {:?}",
                        other.map(|(_, headers)| headers)
                    ));
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(why) = outcome {
        checker.violation(format!("probe {client} (outside retention): {why}"));
    }
    answered_in
}

/// A refusal of a late resume must be a JSON-RPC error saying why.
fn check_refusal(checker: &Checker, client: usize, what: &str, body: &str) {
    let error: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = error["error"]["message"].as_str().unwrap_or_default();
    if error["jsonrpc"] != "2.0" || !message.contains("no longer retained") {
        checker.violation(format!(
            "probe {client}: the {what} stream resumed past retention was refused with an \
             unclear body: {body}"
        ));
    }
}
