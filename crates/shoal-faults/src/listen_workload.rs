//! [`ListenLoad`]: stateless-era (2026-07-28) listeners and numbered resource updates, the load
//! of the `listen_*` scenarios.
//!
//! - `listeners` clients, no session, each holding one `subscriptions/listen` stream opened
//!   through the proxy (so they spread over the replicas), subscribed to
//!   `fault://1 .. fault://<uris>`. When its stream ends (the graceful response of a draining
//!   replica) or breaks, the listener listens again at once; refusals are retried with a short
//!   backoff, a bounded number of times.
//! - One trigger loop calls the conformance tool `test_trigger_resource_update {"uri":
//!   "fault://n"}` for n = 1, 2, … through the proxy, one at a time, every
//!   [`TRIGGER_INTERVAL`], recording when each call was sent and answered.
//!
//! Everything goes to a [`ListenChecker`], which judges it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::listen_checker::{ListenChecker, ListenVerdict, StreamEnd, StreamId, stream_tag};
use crate::workload::{Answer, Http, Refused, backoff, is_response};
use crate::{Env, Faults, LoadFigures, Ran};
use shoal_testkit::SseStream;
use shoal_testkit::modern;

/// Pause between a trigger's answer and the next trigger.
pub const TRIGGER_INTERVAL: Duration = Duration::from_millis(30);
/// Bound on a listen's acknowledgement, once its stream opened.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How many refusals in a row a listener takes before it gives up (with the backoff, ~30 s).
const LISTEN_ATTEMPTS: usize = 40;
/// How long [`ListenLoad::stop`] waits for the open streams to receive what they are owed.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// The subscription id's key in a notification's `_meta`.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// The URIs the triggers update: `fault://<n>`.
const URI_PREFIX: &str = "fault://";

/// The shape of the load.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Concurrent listeners.
    pub listeners: usize,
    /// Triggers raised at most; each listener subscribes to this many URIs.
    pub uris: u64,
}

impl ListenConfig {
    /// `listeners` listeners, and URIs for every trigger `duration` of load can raise (at least
    /// 400).
    pub fn for_duration(listeners: usize, duration: Duration) -> ListenConfig {
        let triggers = duration.as_millis() / TRIGGER_INTERVAL.as_millis();
        ListenConfig {
            listeners,
            uris: u64::try_from(triggers).unwrap_or(u64::MAX).max(400),
        }
    }
}

/// A running listen load; [`ListenLoad::stop`] ends it.
#[derive(Debug)]
pub struct ListenLoad {
    checker: ListenChecker,
    listeners: Vec<JoinHandle<()>>,
    trigger: JoinHandle<()>,
    stop_triggers: Arc<AtomicBool>,
    stop_listeners: Arc<AtomicBool>,
}

impl ListenLoad {
    /// Starts the listeners and the trigger loop on `url`; the triggers start once every
    /// listener's first stream is acknowledged (bounded), so that every listener is owed some.
    pub async fn start(url: &str, config: &ListenConfig) -> ListenLoad {
        let checker = ListenChecker::new();
        checker.listeners(config.listeners);
        let stop_triggers = Arc::new(AtomicBool::new(false));
        let stop_listeners = Arc::new(AtomicBool::new(false));
        let uris: Vec<String> = (1..=config.uris)
            .map(|n| format!("{URI_PREFIX}{n}"))
            .collect();
        let http = Http::new(url);
        let listeners = (0..config.listeners)
            .map(|n| {
                let listener = Listener {
                    n,
                    http: http.clone(),
                    checker: checker.clone(),
                    stop: stop_listeners.clone(),
                    filter: json!({ "resourceSubscriptions": uris }),
                    next_id: AtomicI64::new(1),
                };
                tokio::spawn(listener.run())
            })
            .collect();
        let ready = Instant::now() + Duration::from_secs(15);
        while checker.listeners_acked() < config.listeners && Instant::now() < ready {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let trigger = tokio::spawn(trigger_loop(
            http,
            checker.clone(),
            stop_triggers.clone(),
            config.uris,
        ));
        ListenLoad {
            checker,
            listeners,
            trigger,
            stop_triggers,
            stop_listeners,
        }
    }

    /// The checker, for the scenario's kills ([`ListenChecker::replica_killed`]).
    pub fn checker(&self) -> &ListenChecker {
        &self.checker
    }

    /// Stops the load ([`ListenLoad::stop`]), hands the verdict to `env`'s checker, and returns
    /// the scenario's figures (the verdict's line first in `notes`) and the verdict.
    pub async fn finish(
        self,
        env: &Env,
        started: Instant,
        faults: Faults,
        mut notes: Vec<String>,
    ) -> (Ran, ListenVerdict) {
        let elapsed = started.elapsed();
        let listeners = self.checker.listeners_count();
        let verdict = self.stop().await;
        notes.insert(0, verdict.record(&env.checker));
        let load = LoadFigures {
            clients: listeners,
            requests_per_second: verdict.triggers as f64 / elapsed.as_secs_f64(),
            elapsed,
        };
        let ran = Ran {
            load,
            faults,
            notes,
        };
        (ran, verdict)
    }

    /// Stops the triggers, lets the open streams receive what they are owed (bounded), stops
    /// the listeners and judges.
    pub async fn stop(self) -> ListenVerdict {
        self.stop_triggers.store(true, Ordering::SeqCst);
        let bound = Duration::from_secs(15);
        if tokio::time::timeout(bound, self.trigger).await.is_err() {
            self.checker
                .violation(format!("the trigger loop did not stop within {bound:?}"));
        }
        let settle = Instant::now() + SETTLE_TIMEOUT;
        while !self.checker.open_streams_caught_up(Instant::now()) && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stopped = Instant::now();
        self.stop_listeners.store(true, Ordering::SeqCst);
        for listener in self.listeners {
            let abort = listener.abort_handle();
            if tokio::time::timeout(bound, listener).await.is_err() {
                abort.abort();
                self.checker
                    .violation(format!("a listener did not stop within {bound:?}"));
            }
        }
        self.checker.report(stopped)
    }
}

/// One listener: a stream at a time, listened again whenever it ends.
struct Listener {
    n: usize,
    http: Http,
    checker: ListenChecker,
    stop: Arc<AtomicBool>,
    filter: Value,
    next_id: AtomicI64,
}

/// Why a listen attempt gave no stream.
enum NoStream {
    /// Refused before it was served (503, 502, a connection error, a timeout).
    Refused(String),
    /// An answer no fault excuses (recorded as a violation).
    Failed,
}

impl Listener {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    async fn run(self) {
        let mut delay = Duration::ZERO;
        let mut refusals = 0;
        let mut last_refusal = String::new();
        while !self.stopping() {
            if refusals >= LISTEN_ATTEMPTS {
                self.checker.violation(format!(
                    "listener {}: {LISTEN_ATTEMPTS} listen attempts refused in a row; the last: \
                     {last_refusal}",
                    self.n
                ));
                return;
            }
            tokio::time::sleep(delay).await;
            let id = self.n as i64 * 1_000_000 + self.next_id.fetch_add(1, Ordering::Relaxed);
            match self.listen(id).await {
                Ok((stream, acked)) => {
                    refusals = 0;
                    delay = Duration::ZERO;
                    self.read(stream, acked, id).await;
                }
                Err(NoStream::Refused(why)) => {
                    refusals += 1;
                    last_refusal = why;
                    delay = backoff(delay);
                }
                Err(NoStream::Failed) => delay = backoff(delay),
            }
        }
    }

    /// Opens a stream and reads its acknowledgement.
    async fn listen(&self, id: i64) -> Result<(Box<SseStream>, StreamId), NoStream> {
        let message = modern::request(
            id,
            "subscriptions/listen",
            json!({ "notifications": self.filter }),
        );
        let tag = stream_tag(self.n, id);
        let mut stream = match self.http.post_modern(&tag, &message).await {
            Ok((Answer::Stream(stream), _)) => stream,
            Ok((Answer::Json(body), _)) => {
                self.checker.violation(format!(
                    "listener {}: listen {id} answered with JSON: {body}",
                    self.n
                ));
                return Err(NoStream::Failed);
            }
            Ok((Answer::Accepted, _)) => {
                self.checker
                    .violation(format!("listener {}: listen {id} answered 202", self.n));
                return Err(NoStream::Failed);
            }
            Err(Refused::Retry(cause, why)) => {
                return Err(NoStream::Refused(format!("{cause:?}: {why}")));
            }
            Err(other) => {
                self.checker
                    .violation(format!("listener {}: listen {id}: {other:?}", self.n));
                return Err(NoStream::Failed);
            }
        };
        match stream.next_event_within(ACK_TIMEOUT).await {
            Ok(Some(event))
                if event.json().is_some_and(|m| {
                    m["method"] == "notifications/subscriptions/acknowledged"
                        && m["params"]["_meta"][SUBSCRIPTION_ID] == id
                }) =>
            {
                Ok((
                    stream,
                    self.checker.stream_acked(self.n, id, Instant::now()),
                ))
            }
            // The replica died between the headers and the acknowledgement.
            Ok(None) => Err(NoStream::Refused(format!(
                "listen {id} ended before its acknowledgement"
            ))),
            Ok(Some(event)) => {
                self.checker.violation(format!(
                    "listener {}: listen {id} began with {:?}, not its acknowledgement",
                    self.n, event.data
                ));
                Err(NoStream::Failed)
            }
            Err(_) => {
                self.checker.violation(format!(
                    "listener {}: listen {id} not acknowledged within {ACK_TIMEOUT:?}",
                    self.n
                ));
                Err(NoStream::Failed)
            }
        }
    }

    /// Reads `stream` until it ends or the load stops.
    async fn read(&self, mut stream: Box<SseStream>, acked: StreamId, id: i64) {
        loop {
            if self.stopping() {
                self.checker
                    .stream_ended(acked, StreamEnd::Stopped, Instant::now());
                return;
            }
            // Short reads, so that `stop` is seen; silence is only idleness here.
            let event = match stream.next_event_within(Duration::from_millis(250)).await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    self.checker
                        .stream_ended(acked, StreamEnd::Broken, Instant::now());
                    return;
                }
                Err(_) => continue,
            };
            let Some(message) = event.json() else {
                continue;
            };
            if is_response(&event) {
                self.checker
                    .stream_ended(acked, StreamEnd::Graceful, Instant::now());
                let graceful = message["id"] == id && message["result"]["resultType"] == "complete";
                if !graceful {
                    self.checker.violation(format!(
                        "listener {}: listen {id} ended with {message}",
                        self.n
                    ));
                }
                return;
            }
            let uri = message["params"]["uri"].as_str().unwrap_or_default();
            let n = uri
                .strip_prefix(URI_PREFIX)
                .and_then(|n| n.parse::<u64>().ok());
            match n {
                Some(n)
                    if message["method"] == "notifications/resources/updated"
                        && message["params"]["_meta"][SUBSCRIPTION_ID] == id =>
                {
                    self.checker.delivered(acked, n);
                }
                _ => self.checker.violation(format!(
                    "listener {}: listen {id} got an unexpected message: {message}",
                    self.n
                )),
            }
        }
    }
}

/// Raises `fault://1`, `fault://2`, … until `stop` or `uris` triggers.
async fn trigger_loop(http: Http, checker: ListenChecker, stop: Arc<AtomicBool>, uris: u64) {
    for n in 1..=uris {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let message = modern::request(
            n as i64,
            "tools/call",
            json!({
                "name": "test_trigger_resource_update",
                "arguments": { "uri": format!("{URI_PREFIX}{n}") },
            }),
        );
        checker.trigger_sent(n, Instant::now());
        // A refusal or a break is not retried: the trigger is then owed to nobody (it may
        // still have been raised, and arrive).
        let response = match http.post_modern(&format!("trigger-{n}"), &message).await {
            Ok((Answer::Json(response), _)) => Some(response),
            Ok((Answer::Stream(mut stream), _)) => loop {
                match stream.next_event_within(Duration::from_secs(5)).await {
                    Ok(Some(event)) if is_response(&event) => break event.json(),
                    Ok(Some(_)) => {}
                    _ => break None,
                }
            },
            Ok((Answer::Accepted, _)) | Err(_) => None,
        };
        if let Some(response) = response {
            if response["result"]["resultType"] == "complete"
                && response["result"]["isError"] != true
            {
                checker.trigger_answered(n, Instant::now());
            } else {
                checker.violation(format!("trigger {n} answered {response}"));
            }
        }
        tokio::time::sleep(TRIGGER_INTERVAL).await;
    }
}
