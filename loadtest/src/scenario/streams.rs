//! `streams`: `--streams` sessions, each with its standalone GET stream open on its own
//! connection. One operation is one announcement: a `tools/call` of `--announce-tool`
//! `{"text":"<token>"}` on a random session, done when a `notifications/message` whose data is
//! that token arrives on that session's stream (latency from just before the POST) and the
//! call's own result arrived. With `--hold`: open the streams, hold them for `--duration`,
//! send nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Context, Outcome, SetupFailed, StreamCounts, call_body};
use crate::cli::DEFAULT_DURATION;
use crate::client::{EventStream, McpClient, Session, result_of};
use crate::error::Error;
use crate::run::{self, Operation};
use crate::stats::{EventCounts, Recorder};
use crate::wire::{Message, ToolResult};

/// While holding, how often to look whether Ctrl-C was pressed.
const HOLD_POLL: Duration = Duration::from_millis(100);

pub(super) async fn run(ctx: &Context) -> Result<Outcome, SetupFailed> {
    let o = &ctx.options;
    let count = o.streams;
    ctx.progress.say(format!("opening {count} stream(s)"));
    let mut setup = Recorder::new(Instant::now());
    let mut listeners = Vec::with_capacity(count);
    let mut readers = Vec::with_capacity(count);
    let mut opened = futures::stream::iter(0..count)
        .map(|i| open(ctx, i, count))
        .buffer_unordered(o.concurrency);
    while let Some(result) = opened.next().await {
        match result {
            Ok((session, stream)) => {
                let listener = Arc::new(Listener::new(session));
                readers.push(tokio::spawn(listen(listener.clone(), stream)));
                listeners.push(listener);
                ctx.progress
                    .say(format!("opened {} of {count} stream(s)", listeners.len()));
            }
            Err(error) => setup.record_side_error(&error),
        }
    }
    drop(opened);
    let failed_to_open = setup.side_errors;
    if listeners.is_empty() {
        return Err(SetupFailed::nothing_opened(setup, "stream"));
    }
    if let Some(path) = &o.ready_file
        && let Err(error) = std::fs::write(path, listeners.len().to_string())
    {
        eprintln!(
            "shoal-load: cannot write --ready-file {}: {error}",
            path.display()
        );
    }
    let listeners: Arc<[Arc<Listener>]> = listeners.into();

    let (mut recorder, measured) = if o.hold {
        let hold = o.duration.unwrap_or(DEFAULT_DURATION);
        ctx.progress.say(format!(
            "holding {} stream(s) for {hold:?}",
            listeners.len()
        ));
        let start = Instant::now();
        while start.elapsed() < hold && !ctx.stopped.load(Ordering::Relaxed) {
            tokio::time::sleep(HOLD_POLL.min(hold.saturating_sub(start.elapsed()))).await;
        }
        (Recorder::new(start), start.elapsed())
    } else {
        let token_prefix = format!("{:016x}", rand::random::<u64>());
        let operations = ctx
            .clients()
            .map(|client| Announce {
                client,
                listeners: listeners.clone(),
                tool: o.announce_tool.clone(),
                token_prefix: token_prefix.clone(),
                rng: SmallRng::from_os_rng(),
            })
            .collect();
        ctx.progress.say("measuring");
        let plan = ctx.plan(Some(o.announce_rate));
        run::drive(operations, plan, o.timeout, &ctx.progress).await
    };

    let closed_early = listeners
        .iter()
        .filter(|l| l.closed.load(Ordering::Relaxed))
        .count();
    for _ in 0..closed_early {
        recorder.record_side_error(&Error::StreamClosed);
    }
    recorder.merge(setup);
    for reader in &readers {
        reader.abort();
    }
    let sessions: Vec<Session> = listeners.iter().map(|l| l.session.clone()).collect();
    ctx.close_sessions(&sessions).await;
    Ok(Outcome {
        recorder,
        measured,
        sessions: listeners.len(),
        streams: StreamCounts {
            open: (listeners.len() - closed_early) as u64,
            failed: failed_to_open + closed_early as u64,
        },
        notes: Vec::new(),
    })
}

/// Initializes session `i` and opens its GET stream, on a connection of its own.
async fn open(ctx: &Context, i: usize, count: usize) -> Result<(Session, EventStream), Error> {
    let timeout = ctx.options.timeout;
    let mut client = McpClient::new(ctx.targets.clone(), i, count);
    let open = async {
        let session = client.initialize(&json!({})).await?;
        let stream = client.open_stream(&session, None).await?;
        Ok((session, stream))
    };
    tokio::time::timeout(timeout, open)
        .await
        .unwrap_or(Err(Error::Timeout(timeout)))
}

/// One open GET stream and the announcements awaited on it.
#[derive(Debug)]
struct Listener {
    session: Session,
    /// Token → who waits for it, told when it arrived.
    waiting: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    /// The stream ended or broke.
    closed: AtomicBool,
}

impl Listener {
    fn new(session: Session) -> Self {
        Self {
            session,
            waiting: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn wait_for(&self, token: String) -> oneshot::Receiver<Instant> {
        let (tell, told) = oneshot::channel();
        // Never poisoned: no code panics while holding it.
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(token, tell);
        }
        told
    }

    fn forget(&self, token: &str) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(token);
        }
    }
}

/// Reads a GET stream until it ends, telling each waiting announcement when it arrived.
async fn listen(listener: Arc<Listener>, mut stream: EventStream) {
    while let Ok(Some(data)) = stream.next_message().await {
        let arrived = Instant::now();
        let Ok(message) = Message::parse_str(&data) else {
            continue;
        };
        let Some(token) = message.log_text() else {
            continue;
        };
        let waiter = match listener.waiting.lock() {
            Ok(mut waiting) => waiting.remove(token.as_ref()),
            Err(_) => None,
        };
        if let Some(waiter) = waiter {
            let _ = waiter.send(arrived);
        }
    }
    listener.closed.store(true, Ordering::Relaxed);
    // Whoever still waits learns at once that nothing more will come.
    if let Ok(mut waiting) = listener.waiting.lock() {
        waiting.clear();
    }
}

/// One worker's announcements.
struct Announce {
    client: McpClient,
    listeners: Arc<[Arc<Listener>]>,
    tool: String,
    /// Makes tokens unique across runs against the same server.
    token_prefix: String,
    rng: SmallRng,
}

impl Operation for Announce {
    async fn run(
        &mut self,
        _: Instant,
        events: &mut EventCounts,
    ) -> Result<Option<Duration>, Error> {
        let listener = self.listeners[self.rng.random_range(0..self.listeners.len())].clone();
        if listener.closed.load(Ordering::Relaxed) {
            return Err(Error::StreamClosed);
        }
        let id = self.client.next_id();
        let token = format!("{}-{id}", self.token_prefix);
        let arrival = listener.wait_for(token.clone());
        let forget = Forget {
            listener: &listener,
            token: &token,
        };
        let sent = Instant::now();
        let body = call_body(id, &self.tool, json!({ "text": token }));
        let (message, _) = self.client.call(&listener.session, body, id).await?;
        ToolResult::parse(result_of(&message, id)?)?;
        let arrived = arrival.await.map_err(|_| Error::StreamClosed)?;
        drop(forget);
        events.received += 1;
        Ok(Some(arrived.saturating_duration_since(sent)))
    }
}

/// Stops waiting for a token however the announcement ends (also by timeout).
struct Forget<'a> {
    listener: &'a Listener,
    token: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.listener.forget(self.token);
    }
}
