//! Faults in a cluster of `shoal serve` replicas on one Redis, behind a round-robin proxy that
//! sends every request to another replica than the one before: replicas killed (SIGKILL) or
//! stopped (SIGTERM) while streams are open, a rolling restart under load, and Redis itself
//! killed and restarted empty. Each test asserts what docs/replicas.md ("Several replicas on one
//! Redis") promises: no gap, no duplicate, an answer for requests whose replica died, and
//! recovery without restarting the replicas.
//!
//! Real processes and a real `redis-server` (from `PATH`, or `$SHOAL_REDIS_SERVER`), started by
//! each test; every wait is bounded.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use shoal_testkit::client::{PROTOCOL_VERSION, message};
use shoal_testkit::cluster::ShoalCluster;
use shoal_testkit::proxy::Served;
use shoal_testkit::{McpClient, Reply, SseEvent, SseStream};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
/// A test that takes longer than this has hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `test` with a bound on its time.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"));
}

/// `#pick method path -> replica status`, one per line, for failure messages.
fn describe(served: &[Served]) -> String {
    served
        .iter()
        .map(|s| {
            format!(
                "#{} {} {} -> {} {}",
                s.pick, s.method, s.path, s.name, s.status
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_alternates(served: &[Served]) {
    for pair in served.windows(2) {
        assert_ne!(
            pair[0].backend,
            pair[1].backend,
            "two consecutive requests on one replica:\n{}",
            describe(served)
        );
    }
}

/// The replica that answered the last request through the proxy.
fn last_backend(cluster: &ShoalCluster) -> usize {
    cluster
        .proxy()
        .served()
        .last()
        .expect("the proxy served a request")
        .backend
}

/// The `progress` of a `notifications/progress` event (a whole number).
fn progress_of(event: &SseEvent) -> Option<u64> {
    let message = event.json()?;
    if message["method"] != "notifications/progress" {
        return None;
    }
    let progress = message["params"]["progress"].as_f64()?;
    // Whole numbers only: `count` reports 1, 2, 3…
    (progress.fract() == 0.0 && progress >= 0.0).then_some(progress as u64)
}

/// `tools/call count {to, interval_ms}` with a progress token.
fn count_call(id: i64, to: u64, interval_ms: u64, token: &str) -> Value {
    message(
        id,
        "tools/call",
        Some(json!({
            "name": "count",
            "arguments": { "to": to, "interval_ms": interval_ms },
            "_meta": { "progressToken": token }
        })),
    )
}

/// Everything one request's reply stream delivered, over however many connections, checked
/// event by event: every event of the stream's one id space, the progress values and the
/// response, with no duplicate and no reordering.
#[derive(Debug, Default)]
struct StreamTally {
    /// The stream part of the event ids.
    stream: Option<String>,
    /// The seq of the last event with an id.
    last_seq: Option<u64>,
    /// Seqs of the events that carried a message, in the order received.
    seqs: Vec<u64>,
    /// Progress values, in the order received.
    progress: Vec<u64>,
    /// Responses (messages without `method`), in the order received.
    responses: Vec<Value>,
    /// Other messages.
    others: Vec<Value>,
    /// Events received, with the connection they came on, for failure messages.
    log: Vec<(usize, SseEvent)>,
    /// How many connections fed it.
    connections: usize,
    /// The last `retry` the server advertised, in milliseconds.
    retry_ms: Option<u64>,
}

impl StreamTally {
    /// Records the start of another connection.
    fn connection(&mut self) {
        self.connections += 1;
    }

    /// Checks and records one event; `Err` says what is wrong.
    fn absorb(&mut self, event: &SseEvent) -> Result<(), String> {
        self.log.push((self.connections, event.clone()));
        if let Some(retry) = event.retry {
            self.retry_ms = Some(retry);
        }
        if let Some(id) = &event.id {
            let (stream, seq) = (event.stream(), event.seq());
            let (Some(stream), Some(seq)) = (stream, seq) else {
                return Err(format!("event id {id:?} is not <stream>.<seq>"));
            };
            match &self.stream {
                None => self.stream = Some(stream.to_owned()),
                Some(known) if known != stream => {
                    return Err(format!("event of stream {stream} on stream {known}"));
                }
                Some(_) => {}
            }
            let is_message = event.data.as_deref().is_some_and(|d| !d.is_empty());
            match self.last_seq {
                // A message event is new: strictly after everything seen.
                Some(last) if is_message && seq <= last => {
                    return Err(format!(
                        "event {id} is not after the last one seen (seq {last}): a duplicate or \
                         a reordering"
                    ));
                }
                // A priming event names the position it resumes from: never before it.
                Some(last) if seq < last => {
                    return Err(format!("priming event {id} goes back before seq {last}"));
                }
                _ => {}
            }
            self.last_seq = Some(seq);
            if is_message {
                self.seqs.push(seq);
            }
        }
        if let Some(progress) = progress_of(event) {
            self.progress.push(progress);
        } else if let Some(message) = event.json() {
            if message.get("method").is_none() {
                self.responses.push(message);
            } else {
                self.others.push(message);
            }
        } else if event.data.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(format!("an event whose data is not JSON: {event:?}"));
        }
        Ok(())
    }

    /// The id to resume from.
    fn last_event_id(&self) -> Option<String> {
        Some(format!("{}.{}", self.stream.as_ref()?, self.last_seq?))
    }

    fn describe(&self) -> String {
        self.log
            .iter()
            .map(|(connection, event)| {
                format!(
                    "  [conn {connection}] id={:?} retry={:?} data={:?}",
                    event.id, event.retry, event.data
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads `stream` into `tally` until it ends (`Ok(true)` once the response came, and the
/// stream must end right after it), or until `until` says stop. Bounded by `timeout` per event.
async fn read_into(
    stream: &mut SseStream,
    tally: &mut StreamTally,
    timeout: Duration,
    mut until: impl FnMut(&StreamTally) -> bool,
) -> Result<bool, String> {
    loop {
        let event = match stream.next_event_within(timeout).await {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(!tally.responses.is_empty()),
            Err(_) => {
                return Err(format!(
                    "no event within {timeout:?} (stream so far:\n{})",
                    tally.describe()
                ));
            }
        };
        tally.absorb(&event)?;
        if !tally.responses.is_empty() {
            // The response is the stream's last event: nothing may follow it.
            return match stream.next_event_within(timeout).await {
                Ok(None) => Ok(true),
                Ok(Some(after)) => Err(format!("an event after the response: {after:?}")),
                Err(_) => Err(format!(
                    "the stream stayed open {timeout:?} after the response"
                )),
            };
        }
        if until(tally) {
            return Ok(false);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_survives_two_replica_hops_and_a_kill() {
    bounded(async {
        let mut cluster = ShoalCluster::builder(SHOAL).replicas(3).start().await;
        let client = McpClient::connect(cluster.url()).await;
        const TO: u64 = 8;
        let id = client.next_id();
        let wait = Duration::from_secs(5);
        let mut tally = StreamTally::default();

        // Connection 1: the POST, on replica A, which runs the handler.
        tally.connection();
        let mut post = client
            .post(&count_call(id, TO, 150, "hops"))
            .await
            .into_stream();
        let a = last_backend(&cluster);
        let first = post.expect_event().await;
        assert!(first.is_priming(), "a priming event first: {first:?}");
        tally.absorb(&first).unwrap();
        let done = read_into(&mut post, &mut tally, wait, |t| !t.progress.is_empty())
            .await
            .unwrap();
        assert!(!done, "the count ended early:\n{}", tally.describe());
        assert_eq!(tally.progress, [1], "{}", tally.describe());
        drop(post);

        // Connection 2: resumed on replica B.
        tally.connection();
        let resume_from = tally.last_event_id().unwrap();
        let mut get = client.get_stream(Some(&resume_from)).await;
        let b = last_backend(&cluster);
        assert_ne!(b, a, "{}", describe(&cluster.proxy().served()));
        let primed = get.expect_event().await;
        assert!(primed.is_priming(), "a priming event first: {primed:?}");
        // `<stream>.<seq>.<nonce>`: the resumption point, under an id of its own.
        assert_eq!(
            primed
                .id
                .as_deref()
                .and_then(|id| id.rsplit_once('.'))
                .map(|(position, _)| position),
            Some(resume_from.as_str()),
            "the priming event names the resumption point"
        );
        tally.absorb(&primed).unwrap();
        let progress_before = tally.progress.len();
        let done = read_into(&mut get, &mut tally, wait, |t| {
            t.progress.len() > progress_before
        })
        .await
        .unwrap();
        assert!(!done, "the count ended early:\n{}", tally.describe());

        // B dies without warning while its connection is open; whatever it had sent before
        // is still read, as a client would.
        cluster.kill(b);
        let ended = tokio::time::timeout(wait, async {
            while let Some(event) = get.next_event().await {
                tally.absorb(&event).unwrap();
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "the connection to the killed replica did not end within {wait:?}"
        );
        drop(get);

        // Connection 3: resumed on C (or A), not on the dead B.
        tally.connection();
        let resume_from = tally.last_event_id().unwrap();
        let mut last = client.get_stream(Some(&resume_from)).await;
        let c = last_backend(&cluster);
        assert_ne!(c, b, "{}", describe(&cluster.proxy().served()));
        let done = read_into(&mut last, &mut tally, wait, |_| false)
            .await
            .unwrap();
        assert!(done, "the stream ended without the response");

        assert_eq!(
            tally.progress,
            (1..=TO).collect::<Vec<_>>(),
            "every progress value once, in order:\n{}",
            tally.describe()
        );
        assert!(
            tally.seqs.windows(2).all(|w| w[0] < w[1]),
            "{:?}",
            tally.seqs
        );
        assert_eq!(tally.responses.len(), 1, "{}", tally.describe());
        let response = &tally.responses[0];
        assert_eq!(response["id"], json!(id));
        assert_eq!(response["result"]["content"][0]["text"], TO.to_string());
        assert!(tally.others.is_empty(), "{:#?}", tally.others);
        println!(
            "POST on {}, resumed on {} (killed), then on {}; {} events with seqs {:?}",
            cluster.node_id(a),
            cluster.node_id(b),
            cluster.node_id(c),
            tally.seqs.len(),
            tally.seqs
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_replica_died_gets_an_abandoned_error() {
    bounded(async {
        let mut cluster = ShoalCluster::builder(SHOAL).replicas(3).start().await;
        let client = McpClient::connect(cluster.url()).await;
        let id = client.next_id();
        let wait = Duration::from_secs(5);
        let mut tally = StreamTally::default();

        tally.connection();
        let mut post = client
            .post(&count_call(id, 100, 200, "doomed"))
            .await
            .into_stream();
        let a = last_backend(&cluster);
        read_into(&mut post, &mut tally, wait, |t| !t.progress.is_empty())
            .await
            .unwrap();
        assert_eq!(tally.progress, [1], "{}", tally.describe());

        // The replica running the handler dies; the client's connection breaks with it.
        cluster.kill(a);
        let killed = Instant::now();
        drop(post);

        tally.connection();
        let resume_from = tally.last_event_id().unwrap();
        let mut get = client
            .with_timeout(Duration::from_secs(10))
            .get_stream(Some(&resume_from))
            .await;
        let b = last_backend(&cluster);
        assert_ne!(b, a, "{}", describe(&cluster.proxy().served()));
        let done = read_into(&mut get, &mut tally, Duration::from_secs(10), |_| false)
            .await
            .unwrap();
        let elapsed = killed.elapsed();
        assert!(done, "the stream ended without a response");
        assert!(
            elapsed < Duration::from_secs(10),
            "the error took {elapsed:?}"
        );
        assert_eq!(tally.responses.len(), 1, "{}", tally.describe());
        let response = &tally.responses[0];
        assert_eq!(response["jsonrpc"], "2.0", "{response}");
        assert_eq!(response["id"], json!(id), "{response}");
        assert!(response.get("result").is_none(), "{response}");
        assert_eq!(response["error"]["code"], json!(-32603), "{response}");
        let text = response["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains("abandoned"), "{response}");
        // Progress written before the kill is delivered once, in order, before the error.
        let n = tally.progress.len() as u64;
        assert_eq!(
            tally.progress,
            (1..=n).collect::<Vec<_>>(),
            "{}",
            tally.describe()
        );
        println!(
            "{} killed after progress 1; abandoned error on {} {elapsed:?} after the kill \
             (progress delivered: 1..={n}); message: {text}",
            cluster.node_id(a),
            cluster.node_id(b),
        );
    })
    .await;
}

/// What one client loop of the rolling restart checked.
#[derive(Debug, Default)]
struct LoopStats {
    echo_calls: usize,
    count_calls: usize,
    /// Progress events and responses checked.
    events: usize,
    /// Connections resumed with `Last-Event-ID` after a stream ended early.
    resumes: usize,
}

/// One client of the rolling restart: its own session; `echo` and `count {to, interval_ms}`
/// in turn until `stop`.
async fn client_loop(
    url: String,
    n: usize,
    (to, interval_ms): (u64, u64),
    stop: Arc<AtomicBool>,
) -> Result<LoopStats, String> {
    let client = McpClient::connect(url).await;
    let mut stats = LoopStats::default();
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let text = format!("client {n} round {round}");
        let response = client
            .request(
                "tools/call",
                json!({ "name": "echo", "arguments": { "text": text } }),
            )
            .await;
        if response["result"]["content"][0]["text"] != json!(text) {
            return Err(format!("echo {text:?} answered {response}"));
        }
        stats.echo_calls += 1;

        let id = client.next_id();
        let token = format!("c{n}r{round}");
        let mut tally = StreamTally::default();
        tally.connection();
        let mut stream = match client.post(&count_call(id, to, interval_ms, &token)).await {
            Reply::Stream(stream) => *stream,
            Reply::Json(raw) | Reply::Other(raw) => {
                return Err(format!("count (round {round}): not a stream: {raw}"));
            }
        };
        let done = read_into(&mut stream, &mut tally, Duration::from_secs(5), |_| false)
            .await
            .map_err(|e| format!("count (round {round}): {e}"))?;
        drop(stream);
        if !done {
            stats.resumes += resume_until_response(&client, &mut tally)
                .await
                .map_err(|e| format!("count (round {round}): {e}"))?;
        }
        check_count(&tally, id, to).map_err(|e| format!("count (round {round}): {e}"))?;
        stats.count_calls += 1;
        stats.events += tally.progress.len() + tally.responses.len();
    }
    Ok(stats)
}

/// Resumes the stream of `tally` with `Last-Event-ID` after the advertised `retry` (as a
/// browser's `EventSource` would) until its response came; returns how many connections it
/// took.
async fn resume_until_response(
    client: &McpClient,
    tally: &mut StreamTally,
) -> Result<usize, String> {
    let mut resumes = 0;
    loop {
        let Some(from) = tally.last_event_id() else {
            return Err(format!(
                "the stream ended before any event id:\n{}",
                tally.describe()
            ));
        };
        if tally.connections > 5 {
            return Err(format!(
                "still no response after {} connections:\n{}",
                tally.connections,
                tally.describe()
            ));
        }
        let retry = Duration::from_millis(tally.retry_ms.unwrap_or(1000).min(2000));
        tokio::time::sleep(retry).await;
        tally.connection();
        resumes += 1;
        let mut resumed = client
            .open_stream(Some(&from))
            .await
            .map_err(|raw| format!("resuming from {from} was answered {raw}"))?;
        let done = read_into(&mut resumed, tally, Duration::from_secs(5), |_| false)
            .await
            .map_err(|e| format!("resumed from {from}: {e}"))?;
        if done {
            return Ok(resumes);
        }
    }
}

/// Checks that `tally` holds `count`'s whole reply to request `id`: progress 1..=`to` once
/// each, in order, and the result `to`, once.
fn check_count(tally: &StreamTally, id: i64, to: u64) -> Result<(), String> {
    if tally.progress != (1..=to).collect::<Vec<_>>() {
        return Err(format!(
            "progress {:?}:\n{}",
            tally.progress,
            tally.describe()
        ));
    }
    if tally.responses.len() != 1
        || tally.responses[0]["id"] != json!(id)
        || tally.responses[0]["result"]["content"][0]["text"] != json!(to.to_string())
    {
        return Err(format!(
            "responses {:?}:\n{}",
            tally.responses,
            tally.describe()
        ));
    }
    if !tally.others.is_empty() {
        return Err(format!("unexpected messages:\n{}", tally.describe()));
    }
    Ok(())
}

/// A `count` stream (20 × 100 ms) POSTed straight to one replica, which is then stopped with
/// SIGTERM: its connection must be closed with `retry` and no response, and resuming through
/// the proxy must deliver the rest exactly once. `opened` fires once progress 1 came, the
/// moment to send SIGTERM. Returns how many events it checked.
async fn drained_stream(
    replica_url: String,
    proxy_url: String,
    opened: tokio::sync::oneshot::Sender<()>,
) -> Result<usize, String> {
    const TO: u64 = 20;
    let direct = McpClient::connect(replica_url).await;
    let id = direct.next_id();
    let mut tally = StreamTally::default();
    tally.connection();
    let mut stream = direct
        .post(&count_call(id, TO, 100, "drained"))
        .await
        .into_stream();
    let wait = Duration::from_secs(5);
    read_into(&mut stream, &mut tally, wait, |t| !t.progress.is_empty()).await?;
    let _ = opened.send(());
    if read_into(&mut stream, &mut tally, wait, |_| false).await? {
        return Err(format!(
            "the response came before the drain closed the stream:\n{}",
            tally.describe()
        ));
    }
    let closed_with_retry = tally
        .log
        .last()
        .is_some_and(|(_, e)| e.id.is_none() && e.data.is_none() && e.retry.is_some());
    if !closed_with_retry {
        return Err(format!(
            "the drained stream did not end with a bare `retry`:\n{}",
            tally.describe()
        ));
    }
    drop(stream);
    let mut via_proxy = McpClient::new(proxy_url);
    via_proxy.set_session_id(direct.session_id().map(str::to_owned));
    via_proxy.set_protocol_version(direct.protocol_version().map(str::to_owned));
    resume_until_response(&via_proxy, &mut tally).await?;
    check_count(&tally, id, TO)?;
    Ok(tally.progress.len() + tally.responses.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_loses_nothing() {
    bounded(async {
        let mut cluster = ShoalCluster::builder(SHOAL)
            .replicas(3)
            .arg("--shutdown-delay")
            .arg("1s")
            .start()
            .await;
        let stop = Arc::new(AtomicBool::new(false));
        // Four clients of short calls, as asked; two more whose streams last ~2 s, so that some
        // are open when their replica drains, and are closed with `retry` and resumed.
        let shapes = [(3, 50), (3, 50), (3, 50), (3, 50), (20, 100), (20, 100)];
        let loops: Vec<_> = shapes
            .into_iter()
            .enumerate()
            .map(|(n, shape)| tokio::spawn(client_loop(cluster.url(), n, shape, stop.clone())))
            .collect();
        // Traffic before the first restart.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let mut drained = Vec::new();
        for i in 0..cluster.len() {
            // A stream certainly open on the replica when it drains.
            let (opened, is_open) = tokio::sync::oneshot::channel();
            drained.push(tokio::spawn(drained_stream(
                cluster.replica_url(i),
                cluster.url(),
                opened,
            )));
            tokio::time::timeout(Duration::from_secs(5), is_open)
                .await
                .expect("the stream to drain opened within 5 s")
                .expect("the stream to drain opened");
            let status = cluster.terminate(i).await;
            assert!(
                status.success(),
                "{} exited with {status} after SIGTERM\n{}",
                cluster.node_id(i),
                cluster.log(i)
            );
            cluster.restart(i).await;
        }
        let restarts = started.elapsed();
        // Traffic after the last restart.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);

        let mut failures = Vec::new();
        let mut total = LoopStats::default();
        for (n, handle) in loops.into_iter().enumerate() {
            match handle.await {
                Ok(Ok(stats)) => {
                    total.echo_calls += stats.echo_calls;
                    total.count_calls += stats.count_calls;
                    total.events += stats.events;
                    total.resumes += stats.resumes;
                }
                Ok(Err(failure)) => failures.push(format!("client {n}: {failure}")),
                Err(panicked) => failures.push(format!("client {n} panicked: {panicked}")),
            }
        }
        let mut drained_events = 0;
        for (i, handle) in drained.into_iter().enumerate() {
            match handle.await {
                Ok(Ok(events)) => drained_events += events,
                Ok(Err(failure)) => {
                    failures.push(format!("stream drained on replica-{i}: {failure}"))
                }
                Err(panicked) => failures.push(format!(
                    "stream drained on replica-{i} panicked: {panicked}"
                )),
            }
        }
        if !failures.is_empty() {
            let served = cluster.proxy().served();
            let not_ok: Vec<Served> = served
                .into_iter()
                .filter(|s| !s.status.is_success())
                .collect();
            for i in 0..cluster.len() {
                eprintln!("===== {} log =====\n{}", cluster.node_id(i), cluster.log(i));
            }
            panic!(
                "{} of {} client loops failed:\n{}\nrequests not answered 2xx:\n{}",
                failures.len(),
                shapes.len(),
                failures.join("\n"),
                describe(&not_ok)
            );
        }
        assert!(total.count_calls >= 4, "{total:?}");
        println!(
            "rolling restart of {} replicas took {restarts:?}; checked {} calls ({} echo, {} \
             count), {} progress events and responses, {} streams resumed after a drain; and \
             {} streams open on a draining replica, closed with `retry`, resumed: {} events",
            cluster.len(),
            total.echo_calls + total.count_calls,
            total.echo_calls,
            total.count_calls,
            total.events,
            total.resumes,
            cluster.len(),
            drained_events
        );
    })
    .await;
}

/// GETs replica `i`'s `/readyz`: its status, or `None` when it does not answer.
async fn readyz(http: &reqwest::Client, cluster: &ShoalCluster, i: usize) -> Option<StatusCode> {
    http.get(format!("{}/readyz", cluster.admin_url(i)))
        .send()
        .await
        .ok()
        .map(|r| r.status())
}

/// Waits up to `timeout` until every replica's `/readyz` answers `status`; returns how long
/// it took.
async fn wait_all_readyz(
    http: &reqwest::Client,
    cluster: &ShoalCluster,
    status: StatusCode,
    timeout: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for i in 0..cluster.len() {
            seen.push(readyz(http, cluster, i).await);
        }
        if seen.iter().all(|s| *s == Some(status)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "/readyz did not all answer {status} within {timeout:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_ends_sessions_and_replicas_recover() {
    bounded(async {
        let mut cluster = ShoalCluster::builder(SHOAL).replicas(2).start().await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let client = McpClient::connect(cluster.url()).await;
        let result = client.call_tool("echo", json!({ "text": "before" })).await;
        assert_eq!(result["content"][0]["text"], "before");
        let session = client.session_id().unwrap().to_owned();
        let version = client.protocol_version().unwrap().to_owned();

        cluster.redis_mut().expect("the cluster's own Redis").kill();
        let unready = wait_all_readyz(
            &http,
            &cluster,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(5),
        )
        .await;

        // The proxy has no ready replica now: ask each replica directly.
        let mut failed_in = Vec::new();
        for i in 0..cluster.len() {
            let mut direct = McpClient::new(cluster.replica_url(i));
            direct.set_session_id(Some(session.clone()));
            let started = Instant::now();
            let raw = direct
                .post_raw(
                    message(
                        direct.next_id(),
                        "tools/call",
                        Some(json!({ "name": "echo", "arguments": { "text": "down" } })),
                    ),
                    |headers| {
                        headers.insert(PROTOCOL_VERSION, version.parse().unwrap());
                    },
                )
                .await;
            let took = started.elapsed();
            raw.assert_rpc_error(503, -32603, "");
            assert!(
                took < Duration::from_secs(3),
                "{} took {took:?} to refuse",
                cluster.node_id(i)
            );
            failed_in.push(took);
        }

        cluster
            .redis_mut()
            .expect("the cluster's own Redis")
            .restart()
            .await;
        let ready = wait_all_readyz(&http, &cluster, StatusCode::OK, Duration::from_secs(10)).await;

        // The session died with Redis's data, on every replica.
        for i in 0..cluster.len() {
            let mut direct = McpClient::new(cluster.replica_url(i));
            direct.set_session_id(Some(session.clone()));
            let raw = direct
                .post_raw(
                    message(
                        direct.next_id(),
                        "tools/call",
                        Some(json!({ "name": "echo", "arguments": { "text": "old" } })),
                    ),
                    |headers| {
                        headers.insert(PROTOCOL_VERSION, version.parse().unwrap());
                    },
                )
                .await;
            assert_eq!(
                raw.status,
                StatusCode::NOT_FOUND,
                "old session on {}: {raw}",
                cluster.node_id(i)
            );
        }
        // A new session works on every replica, directly and through the proxy.
        for i in 0..cluster.len() {
            let direct = McpClient::connect(cluster.replica_url(i)).await;
            let result = direct.call_tool("echo", json!({ "text": "after" })).await;
            assert_eq!(result["content"][0]["text"], "after");
        }
        cluster
            .proxy()
            .wait_ready(0, true, Duration::from_secs(5))
            .await;
        cluster
            .proxy()
            .wait_ready(1, true, Duration::from_secs(5))
            .await;
        let mut again = McpClient::new(cluster.url());
        again.initialize().await;
        again.notify_initialized().await;
        for i in 0..4 {
            let text = format!("again {i}");
            let result = again.call_tool("echo", json!({ "text": text })).await;
            assert_eq!(result["content"][0]["text"], text);
        }
        println!(
            "Redis killed: every /readyz 503 after {unready:?}; requests refused with 503 in \
             {failed_in:?}; Redis restarted: every /readyz 200 after {ready:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_alternates_replicas() {
    bounded(async {
        let cluster = ShoalCluster::builder(SHOAL).replicas(3).start().await;
        let mut client = McpClient::connect(cluster.url()).await;
        let mut expected = 2; // initialize, initialized
        for round in 0..4 {
            // POST with a JSON reply.
            let text = format!("round {round}");
            let result = client.call_tool("echo", json!({ "text": text })).await;
            assert_eq!(result["content"][0]["text"], text);
            // POST with an SSE reply, then its resumption by GET.
            let id = client.next_id();
            let mut stream = client
                .post(&count_call(id, 2, 20, &format!("r{round}")))
                .await
                .into_stream();
            let mut tally = StreamTally::default();
            tally.connection();
            let wait = Duration::from_secs(5);
            read_into(&mut stream, &mut tally, wait, |t| !t.progress.is_empty())
                .await
                .unwrap();
            drop(stream);
            let mut resumed = client
                .get_stream(Some(&tally.last_event_id().unwrap()))
                .await;
            tally.connection();
            assert!(
                read_into(&mut resumed, &mut tally, wait, |_| false)
                    .await
                    .unwrap()
            );
            assert_eq!(tally.progress, [1, 2], "{}", tally.describe());
            // The standalone GET stream, opened and closed.
            let standalone = client.get_stream(None).await;
            drop(standalone);
            expected += 4;
        }
        // DELETE, and a new session.
        let deleted = client.delete().await;
        assert!(deleted.status.is_success(), "DELETE: {deleted}");
        client.initialize().await;
        client.notify_initialized().await;
        let result = client.call_tool("echo", json!({ "text": "last" })).await;
        assert_eq!(result["content"][0]["text"], "last");
        expected += 4;

        let served = cluster.proxy().served();
        assert_eq!(served.len(), expected, "{}", describe(&served));
        assert!(served.len() >= 20);
        assert!(
            served.iter().all(|s| s.status.is_success()),
            "{}",
            describe(&served)
        );
        assert_alternates(&served);
        for method in ["POST", "GET", "DELETE"] {
            assert!(
                served.iter().any(|s| s.method == method),
                "no {method}:\n{}",
                describe(&served)
            );
        }
    })
    .await;
}
