//! `mrtr_kill9`: stateless multi round-trip calls (2026-07-28) of the demo tool `ask_user`
//! whose first round ran on a replica that is then killed with SIGKILL.
//!
//! Each client, through the proxy, no session: round 1 answers `input_required` with a sealed
//! `requestState`; after a think time (a user answering) the client retries with a new id,
//! `inputResponses` (its own answer) and the same `requestState`. Every ~3 s the scenario kills
//! the replica that served the latest round 1 (the proxy's log says which: every request carries
//! a `?fault=<tag>` the server ignores) and restarts it 1 s later. Retries still to come whose
//! round 1 ran there must complete on another replica with the right answer.
//!
//! A retry whose exchange broke (its replica died under it) may be sent again once; if that one
//! is refused with -32602 reason `spent` (the dead replica spent the state before dying), the
//! client starts over from round 1: counted as restarted, never as lost. A round 1 refused or
//! broken is simply sent again (it holds nothing).
//!
//! Judged: every call completes with its answer; some retries crossed a kill (their round 1's
//! replica was killed between that round and the retry) and completed on another replica.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::checker::{Judged, RetryCause};
use crate::kill9::Random;
use crate::workload::{Answer, Http, Refused, backoff, is_response, tag_of};
use crate::{Env, Faults, LoadFigures, Ran, RunFuture, Scenario};
use shoal_testkit::modern;

/// Concurrent clients.
const CLIENTS: usize = 8;
/// A client's think time between round 1 and its retry ranges over this many milliseconds…
const THINK_MS: u64 = 1000;
/// …above this.
const THINK_MIN: Duration = Duration::from_millis(200);
/// Pause between a kill and the restart of the same replica.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// Pause between a replica being ready again and the next kill.
const UP_FOR: Duration = Duration::from_secs(2);
/// Bound on one round (its refusals and backoff included).
const ROUND_BOUND: Duration = Duration::from_secs(20);
/// How many times one call may start over before it counts as failed.
const MAX_RESTARTS: usize = 3;
/// The elicitation `ask_user` sends, by the key the server gives it.
const ELICITATION: &str = "elicitation-1";

/// This module's scenario: its name (what `--scenario` takes), what it proves, and how it
/// runs; [`all`](crate::all) lists it.
pub fn scenario() -> Scenario {
    Scenario {
        name: "mrtr_kill9",
        description: "multi round-trip ask_user calls (2026-07-28) whose round 1 ran on a replica \
                      SIGKILLed before the retry; every call completes with its answer",
        sessions_survive: true,
        run: |env| -> RunFuture { Box::pin(run(env)) },
    }
}

async fn run(env: Env) -> Ran {
    let mut cluster = env.cluster_builder().start().await;
    let started = Instant::now();
    let load = MrtrLoad::start(&cluster.url());
    let mut faults = Faults::default();
    let mut random = Random::from_clock();
    let mut kills = Vec::new();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    while faults.total() == 0 || started.elapsed() + DOWN_FOR + UP_FOR <= env.duration {
        // The replica that served the latest round 1: some retries are still to come there.
        let victim = cluster
            .proxy()
            .served()
            .iter()
            .rev()
            .find(|s| tag_of(s).is_some_and(|tag| tag.ends_with("-r1")))
            .map_or_else(|| random.below(cluster.len()), |s| s.backend);
        kills.push((Instant::now(), victim));
        cluster.kill(victim);
        faults.add("SIGKILL replica that served a round 1");
        tokio::time::sleep(DOWN_FOR).await;
        cluster.restart(victim).await;
        tokio::time::sleep(UP_FOR).await;
    }
    let elapsed = started.elapsed();
    let calls = load.stop(&env).await;
    let served: HashMap<String, usize> = cluster
        .proxy()
        .served()
        .iter()
        .filter_map(|s| tag_of(s).map(|tag| (tag.to_owned(), s.backend)))
        .collect();
    let verdict = judge(&calls, &kills, &served);
    env.checker.add_judged(Judged {
        requests: verdict.rounds,
        events_checked: 0,
        lost: verdict.calls - verdict.completed,
        duplicated: 0,
        results_once: verdict.completed,
    });
    for violation in &verdict.violations {
        env.checker.violation(violation.clone());
    }
    Ran {
        load: LoadFigures {
            clients: CLIENTS,
            requests_per_second: verdict.rounds as f64 / elapsed.as_secs_f64(),
            elapsed,
        },
        faults,
        notes: vec![format!(
            "calls {}, completed with the right answer {}, retries whose round 1's replica was \
             killed before them {} ({} completed on another replica), restarted from round 1 {}, \
             retries sent again after a break {}",
            verdict.calls,
            verdict.completed,
            verdict.crossed,
            verdict.crossed_elsewhere,
            verdict.restarted,
            verdict.resent
        )],
    }
}

/// One call, as its client recorded it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallRecord {
    client: usize,
    call: u64,
    /// The answer the client gives, which the result must carry.
    expected: String,
    /// Each start (the first, then one per restart).
    rounds: Vec<Attempt>,
    /// The completing result's text, or why the call failed.
    outcome: Option<Result<String, String>>,
}

/// One start of a call: its round 1 and the retries that used its state.
#[derive(Debug, Clone)]
struct Attempt {
    /// Round 1's tag, and when its `input_required` came.
    round1: (String, Instant),
    /// Each retry sent with this state: its tag, and when it was sent.
    retries: Vec<(String, Instant)>,
}

/// What the scenario concluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MrtrVerdict {
    calls: usize,
    completed: usize,
    /// Requests sent (rounds 1 and retries).
    rounds: usize,
    /// Completed calls whose round 1's replica was killed between that round and the retry
    /// that completed it.
    crossed: usize,
    /// Of those, the ones completed on another replica.
    crossed_elsewhere: usize,
    restarted: usize,
    resent: usize,
    violations: Vec<String>,
}

/// Judges `calls` against the `kills` (when, which replica) and the proxy's log (`served`: tag
/// → replica).
fn judge(
    calls: &[CallRecord],
    kills: &[(Instant, usize)],
    served: &HashMap<String, usize>,
) -> MrtrVerdict {
    let mut verdict = MrtrVerdict {
        calls: calls.len(),
        ..MrtrVerdict::default()
    };
    for call in calls {
        let what = format!("client {} call {}", call.client, call.call);
        verdict.restarted += call.rounds.len().saturating_sub(1);
        verdict.rounds += call
            .rounds
            .iter()
            .map(|a| 1 + a.retries.len())
            .sum::<usize>();
        verdict.resent += call
            .rounds
            .iter()
            .map(|a| a.retries.len().saturating_sub(1))
            .sum::<usize>();
        let completed = matches!(&call.outcome, Some(Ok(text)) if *text == call.expected);
        match &call.outcome {
            _ if completed => verdict.completed += 1,
            Some(Ok(text)) => verdict.violations.push(format!(
                "{what}: completed with {text:?}, expected {:?}",
                call.expected
            )),
            Some(Err(why)) => verdict.violations.push(format!("{what}: failed: {why}")),
            None => verdict.violations.push(format!("{what}: never finished")),
        }
        let (true, Some(last)) = (completed, call.rounds.last()) else {
            continue;
        };
        let (Some(round1_replica), Some((retry_tag, retry_sent))) =
            (served.get(&last.round1.0), last.retries.last())
        else {
            continue;
        };
        let crossed = kills.iter().any(|(at, victim)| {
            victim == round1_replica && last.round1.1 <= *at && at <= retry_sent
        });
        if crossed {
            verdict.crossed += 1;
            if served.get(retry_tag).is_some_and(|r| r != round1_replica) {
                verdict.crossed_elsewhere += 1;
            }
        }
    }
    if verdict.crossed_elsewhere == 0 {
        verdict.violations.push(format!(
            "no completed retry had its round 1 on a replica killed before it and completed on \
             another ({} crossed a kill): the scenario proved nothing",
            verdict.crossed
        ));
    }
    verdict
}

/// The clients, until [`MrtrLoad::stop`].
struct MrtrLoad {
    clients: Vec<JoinHandle<()>>,
    calls: Arc<Mutex<Vec<CallRecord>>>,
    stop: Arc<AtomicBool>,
}

impl MrtrLoad {
    fn start(url: &str) -> MrtrLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let http = Http::new(url);
        let next_id = Arc::new(AtomicI64::new(1));
        let clients = (0..CLIENTS)
            .map(|n| {
                let client = MrtrClient {
                    n,
                    http: http.clone(),
                    stop: stop.clone(),
                    calls: calls.clone(),
                    next_id: next_id.clone(),
                    random: Random(Random::from_clock().0.wrapping_add(n as u64 * 0x9e37) | 1),
                };
                tokio::spawn(client.run())
            })
            .collect();
        MrtrLoad {
            clients,
            calls,
            stop,
        }
    }

    /// Lets every call in flight finish (bounded), then returns every call.
    async fn stop(self, env: &Env) -> Vec<CallRecord> {
        self.stop.store(true, Ordering::SeqCst);
        let bound = ROUND_BOUND * 2 * (MAX_RESTARTS as u32 + 1);
        for client in self.clients {
            let abort = client.abort_handle();
            if tokio::time::timeout(bound, client).await.is_err() {
                abort.abort();
                env.checker
                    .violation(format!("an MRTR client did not stop within {bound:?}"));
            }
        }
        let calls = self
            .calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        calls.clone()
    }
}

/// One client: calls one after another, each to its end.
struct MrtrClient {
    n: usize,
    http: Http,
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<CallRecord>>>,
    next_id: Arc<AtomicI64>,
    random: Random,
}

/// How one retry went.
enum RetryEnd {
    /// The result's text.
    Completed(String),
    /// -32602 with reason `spent`.
    Spent,
    /// The exchange broke after it was sent: it may have run.
    Broke(String),
    /// Anything else.
    Failed(String),
}

impl MrtrClient {
    async fn run(mut self) {
        let mut call = 0;
        while !self.stop.load(Ordering::SeqCst) {
            call += 1;
            let record = self.call(call).await;
            self.calls
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(record);
        }
    }

    /// One call to its end, started over (bounded) when its state was spent under it.
    async fn call(&mut self, call: u64) -> CallRecord {
        let mut record = CallRecord {
            client: self.n,
            call,
            expected: format!("Ada c{} k{call}", self.n),
            ..CallRecord::default()
        };
        for attempt in 0..=MAX_RESTARTS {
            let prefix = format!("mrtr-c{}-k{call}-a{attempt}", self.n);
            let arguments = json!({ "question": format!("who answers c{} k{call}?", self.n) });
            let round1_tag = format!("{prefix}-r1");
            let state = match self.round1(&round1_tag, &arguments).await {
                Ok(state) => state,
                Err(why) => {
                    record.outcome = Some(Err(format!("round 1: {why}")));
                    return record;
                }
            };
            record.rounds.push(Attempt {
                round1: (round1_tag, Instant::now()),
                retries: Vec::new(),
            });
            let think =
                THINK_MIN + Duration::from_millis(self.random.below(THINK_MS as usize) as u64);
            tokio::time::sleep(think).await;
            let retry = json!({
                "name": "ask_user",
                "arguments": arguments,
                "inputResponses": {
                    ELICITATION: { "action": "accept", "content": { "answer": record.expected } }
                },
                "requestState": state,
            });
            // Sent once, and once more only when the first exchange broke.
            for send in 1..=2 {
                let tag = format!("{prefix}-r2-s{send}");
                if let Some(attempt) = record.rounds.last_mut() {
                    attempt.retries.push((tag.clone(), Instant::now()));
                }
                match self.retry(&tag, &retry).await {
                    RetryEnd::Completed(text) => {
                        record.outcome = Some(Ok(text));
                        return record;
                    }
                    // Its replica died under it: once more, through the proxy.
                    RetryEnd::Broke(_) if send == 1 => {}
                    RetryEnd::Spent if send == 2 => break,
                    RetryEnd::Spent => {
                        record.outcome = Some(Err(
                            "the first retry was refused as spent: nobody used the state before"
                                .into(),
                        ));
                        return record;
                    }
                    RetryEnd::Broke(why) | RetryEnd::Failed(why) => {
                        record.outcome = Some(Err(format!("retry {send}: {why}")));
                        return record;
                    }
                }
            }
        }
        record.outcome = Some(Err(format!(
            "its state was spent under it {} times",
            MAX_RESTARTS + 1
        )));
        record
    }

    /// Round 1, sent again while refused or broken (it holds nothing); returns the state.
    async fn round1(&self, tag: &str, arguments: &Value) -> Result<String, String> {
        let started = Instant::now();
        let mut delay = Duration::ZERO;
        loop {
            let message = self
                .after_backoff(
                    &mut delay,
                    json!({ "name": "ask_user", "arguments": arguments }),
                )
                .await;
            let response = match self.send(tag, &message).await {
                Ok(response) => response,
                Err(_) if started.elapsed() < ROUND_BOUND => continue,
                Err(why) => return Err(format!("no answer within {ROUND_BOUND:?}: {why}")),
            };
            let result = &response["result"];
            return match (
                result["resultType"].as_str(),
                result["requestState"].as_str(),
                result["inputRequests"][ELICITATION]["method"].as_str(),
            ) {
                (Some("input_required"), Some(state), Some("elicitation/create")) => {
                    Ok(state.to_owned())
                }
                _ => Err(format!(
                    "not input_required with an elicitation: {response}"
                )),
            };
        }
    }

    /// One retry: sent again only while refused before reaching a replica (503).
    async fn retry(&self, tag: &str, params: &Value) -> RetryEnd {
        let started = Instant::now();
        let mut delay = Duration::ZERO;
        loop {
            let message = self.after_backoff(&mut delay, params.clone()).await;
            let answer = match self.http.post_modern(tag, &message).await {
                Err(Refused::Retry(RetryCause::Unavailable, why)) => {
                    if started.elapsed() < ROUND_BOUND {
                        continue;
                    }
                    return RetryEnd::Failed(format!("503 for {ROUND_BOUND:?}: {why}"));
                }
                Err(Refused::Retry(cause, why)) => {
                    return RetryEnd::Broke(format!("{cause:?}: {why}"));
                }
                Err(other) => return RetryEnd::Failed(format!("{other:?}")),
                Ok((answer, _)) => answer,
            };
            let response = match response_of(answer).await {
                Ok(response) => response,
                Err(why) => return RetryEnd::Broke(why),
            };
            if response["error"]["code"] == -32602 && response["error"]["data"]["reason"] == "spent"
            {
                return RetryEnd::Spent;
            }
            let result = &response["result"];
            return match (
                result["resultType"].as_str(),
                result["content"][0]["text"].as_str(),
            ) {
                (Some("complete"), Some(text)) if result["isError"] != true => {
                    RetryEnd::Completed(text.to_owned())
                }
                _ => RetryEnd::Failed(format!("answered {response}")),
            };
        }
    }

    /// Sleeps `delay`, makes it the next backoff, and returns a `tools/call` with `params` and
    /// a new id.
    async fn after_backoff(&self, delay: &mut Duration, params: Value) -> Value {
        tokio::time::sleep(*delay).await;
        *delay = backoff(*delay);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        modern::request(id, "tools/call", params)
    }

    /// Sends `message` and returns its response, or why there is none.
    async fn send(&self, tag: &str, message: &Value) -> Result<Value, String> {
        match self.http.post_modern(tag, message).await {
            Ok((answer, _)) => response_of(answer).await,
            Err(refused) => Err(format!("{refused:?}")),
        }
    }
}

/// The response an answer carries: the JSON body, or the response event of an SSE reply.
async fn response_of(answer: Answer) -> Result<Value, String> {
    match answer {
        Answer::Json(response) => Ok(response),
        Answer::Accepted => Err("answered 202".into()),
        Answer::Stream(mut stream) => loop {
            match stream.next_event_within(ROUND_BOUND).await {
                Ok(Some(event)) if is_response(&event) => {
                    return event.json().ok_or_else(|| "an unreadable response".into());
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err("the reply stream ended before the response".into()),
                Err(_) => return Err(format!("no response within {ROUND_BOUND:?}")),
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: u64, rounds: Vec<Attempt>, outcome: Result<&str, &str>) -> CallRecord {
        CallRecord {
            client: 0,
            call: n,
            expected: format!("Ada {n}"),
            rounds,
            outcome: Some(outcome.map(str::to_owned).map_err(str::to_owned)),
        }
    }

    fn attempt(t0: Instant, tag: &str, at_ms: u64, retries: &[(&str, u64)]) -> Attempt {
        let ms = |m: u64| t0 + Duration::from_millis(m);
        Attempt {
            round1: (tag.to_owned(), ms(at_ms)),
            retries: retries
                .iter()
                .map(|(t, m)| ((*t).to_owned(), ms(*m)))
                .collect(),
        }
    }

    /// The proxy's log as `judge` takes it: tag → replica.
    fn log(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
        pairs.iter().map(|(t, r)| ((*t).to_owned(), *r)).collect()
    }

    #[test]
    fn a_retry_after_its_round_1_replica_was_killed_counts_as_crossed() {
        let t0 = Instant::now();
        let served = log(&[("a", 0), ("a2", 1), ("b", 1), ("b2", 2)]);
        let calls = vec![
            // Round 1 on replica 0 at 10 ms, replica 0 killed at 20 ms, retry at 30 ms on 1.
            call(1, vec![attempt(t0, "a", 10, &[("a2", 30)])], Ok("Ada 1")),
            // Round 1 on replica 1: not the victim.
            call(2, vec![attempt(t0, "b", 10, &[("b2", 30)])], Ok("Ada 2")),
        ];
        let kills = [(t0 + Duration::from_millis(20), 0)];
        let verdict = judge(&calls, &kills, &served);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!(
            (
                verdict.completed,
                verdict.crossed,
                verdict.crossed_elsewhere
            ),
            (2, 1, 1)
        );
        // A kill after the retry was sent crossed nothing: the scenario proved nothing.
        let late = [(t0 + Duration::from_millis(40), 0)];
        let verdict = judge(&calls, &late, &served);
        assert_eq!(verdict.crossed, 0);
        assert_eq!(verdict.violations.len(), 1, "{:?}", verdict.violations);
    }

    #[test]
    fn a_wrong_answer_or_a_failure_is_a_violation_and_a_restart_is_counted() {
        let t0 = Instant::now();
        let served = log(&[("a", 0), ("a2", 1), ("c", 0), ("c2", 2)]);
        let kills = [(t0 + Duration::from_millis(20), 0)];
        let restarted = call(
            3,
            vec![
                attempt(t0, "x", 5, &[("x2", 15), ("x3", 25)]),
                attempt(t0, "a", 10, &[("a2", 30)]),
            ],
            Ok("Ada 3"),
        );
        let wrong = call(4, vec![attempt(t0, "c", 10, &[("c2", 30)])], Ok("Bob"));
        let failed = call(5, vec![attempt(t0, "d", 10, &[])], Err("round 1: 500"));
        let verdict = judge(&[restarted, wrong, failed], &kills, &served);
        assert_eq!((verdict.calls, verdict.completed), (3, 1));
        assert_eq!(
            (verdict.restarted, verdict.resent, verdict.rounds),
            (1, 1, 8)
        );
        assert_eq!(verdict.crossed_elsewhere, 1);
        assert_eq!(verdict.violations.len(), 2, "{:?}", verdict.violations);
    }

    #[test]
    fn the_tag_is_read_from_the_proxy_log() {
        use shoal_testkit::proxy::Served;
        let served = Served {
            pick: 0,
            backend: 2,
            name: "replica-2".into(),
            method: reqwest::Method::POST,
            path: "/mcp?fault=mrtr-c1-k2-a0-r1".into(),
            status: reqwest::StatusCode::OK,
            refused: Vec::new(),
        };
        assert_eq!(tag_of(&served), Some("mrtr-c1-k2-a0-r1"));
    }
}
