//! The scenarios: what one operation is, what is set up before the measured phase, and what
//! is checked.
//!
//! - [`calls`]: `tools/call` on sessions initialized beforehand.
//! - [`churn`]: a whole session lifecycle per operation.
//! - [`streams`]: idle GET streams, and announcements delivered on them.
//! - [`roundtrip`]: a tool call answered through elicitation.
//! - [`resume`]: a progress stream dropped midway and resumed with `Last-Event-ID`.
//! - [`listen`] (2026-07-28): resource updates delivered to `subscriptions/listen` streams.
//! - [`mrtr`] (2026-07-28): a tool call answered `input_required`, retried with the answers.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use crate::cli::{Options, Revision, Scenario};
use crate::client::{McpClient, Session, StatelessHead};
use crate::error::Error;
use crate::http::Targets;
use crate::progress::Progress;
use crate::run::Plan;
use crate::stats::Recorder;
use crate::wire::{self, CallTemplate, ToolResult};

mod calls;
mod churn;
mod listen;
mod mrtr;
mod resume;
mod roundtrip;
mod streams;

/// How long cleaning up (DELETE of every session) may take in all.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What every scenario gets.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) options: Options,
    pub(crate) targets: Arc<Targets>,
    pub(crate) progress: Progress,
    /// Set on Ctrl-C.
    pub(crate) stopped: Arc<AtomicBool>,
}

/// What a scenario measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) recorder: Recorder,
    /// Length of the measured phase.
    pub(crate) measured: Duration,
    /// Sessions the operations shared (0 for churn: a session per operation).
    pub(crate) sessions: usize,
    pub(crate) streams: StreamCounts,
    /// Things the reader of the summary should know.
    pub(crate) notes: Vec<String>,
}

/// Standalone GET streams (streams scenario).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct StreamCounts {
    /// Opened and still open at the end.
    pub(crate) open: u64,
    /// Could not be opened, or closed before the end.
    pub(crate) failed: u64,
}

/// The scenario could not start: nothing was measured.
#[derive(Debug)]
pub(crate) struct SetupFailed {
    /// The failures, as error kinds.
    pub(crate) recorder: Recorder,
    pub(crate) message: String,
}

/// Runs `scenario`.
pub(crate) async fn run(scenario: Scenario, ctx: &Context) -> Result<Outcome, SetupFailed> {
    let outcome = match scenario {
        Scenario::Calls => calls::run(ctx).await,
        Scenario::Churn => churn::run(ctx).await,
        Scenario::Streams => streams::run(ctx).await,
        Scenario::Roundtrip => roundtrip::run(ctx).await,
        Scenario::Resume => resume::run(ctx).await,
        Scenario::Listen => listen::run(ctx).await,
        Scenario::Mrtr => mrtr::run(ctx).await,
    };
    ctx.progress.finish();
    outcome
}

// === impl Context ===

impl Context {
    /// The plan of the measured phase, at `rate` (open loop) or closed loop.
    fn plan(&self, rate: Option<f64>) -> Arc<Plan> {
        let o = &self.options;
        Arc::new(Plan::new(
            o.warmup,
            o.measure_for(),
            o.requests,
            rate,
            self.stopped.clone(),
        ))
    }

    /// The client of each worker.
    fn clients(&self) -> impl Iterator<Item = McpClient> + '_ {
        let workers = self.options.concurrency;
        (0..workers).map(move |worker| McpClient::new(self.targets.clone(), worker, workers))
    }

    /// Initializes `count` sessions with `capabilities`, as many at a time as there are
    /// workers.
    async fn open_sessions(
        &self,
        count: usize,
        capabilities: Value,
    ) -> Result<Arc<[Session]>, SetupFailed> {
        self.progress
            .say(format!("initializing {count} session(s)"));
        let capabilities = &capabilities;
        let timeout = self.options.timeout;
        futures::stream::iter(0..count)
            .map(|i| async move {
                let mut client = McpClient::new(self.targets.clone(), i, count);
                tokio::time::timeout(timeout, client.initialize(capabilities))
                    .await
                    .unwrap_or(Err(Error::Timeout(timeout)))
            })
            .buffered(self.options.concurrency)
            .try_collect::<Vec<Session>>()
            .await
            .map(Arc::from)
            .map_err(|error| SetupFailed::new(&error, "could not initialize a session"))
    }

    /// Ends `sessions` (DELETE), best effort and bounded in time: not measured.
    async fn close_sessions(&self, sessions: &[Session]) {
        if sessions.iter().all(|s| s.id.is_none()) {
            return;
        }
        self.progress
            .say(format!("deleting {} session(s)", sessions.len()));
        let workers = self.options.concurrency;
        let delete_all = futures::stream::iter(sessions.chunks(sessions.len().div_ceil(workers)))
            .enumerate()
            .for_each_concurrent(None, |(worker, chunk)| async move {
                let mut client = McpClient::new(self.targets.clone(), worker, workers);
                for session in chunk {
                    let _ = client.delete(session).await;
                }
            });
        let _ = tokio::time::timeout(CLEANUP_TIMEOUT, delete_all).await;
    }
}

// === impl SetupFailed ===

impl SetupFailed {
    /// Nothing could be opened: the message names `what` and the first failure `setup` saw.
    fn nothing_opened(setup: Recorder, what: &str) -> Self {
        let (kind, example) = setup
            .examples
            .iter()
            .next()
            .map(|(kind, example)| (kind.to_string(), example.clone()))
            .unwrap_or_default();
        Self {
            message: format!("could not open any {what}: {example} [{kind}]"),
            recorder: setup,
        }
    }

    fn new(error: &Error, what: &str) -> Self {
        let mut recorder = Recorder::new(tokio::time::Instant::now());
        recorder.record_side_error(error);
        Self {
            recorder,
            message: format!("{what}: {error} [{}]", error.kind()),
        }
    }
}

/// A `tools/call` of `--tool` with `--arguments`, and what its result must be.
#[derive(Debug)]
struct ToolCall {
    template: CallTemplate,
    /// With tool `echo`: the text the reply must have.
    echo_text: Option<String>,
    /// 2026-07-28: the request's headers (and the template carries its `_meta`).
    stateless: Option<StatelessHead>,
}

impl ToolCall {
    fn new(options: &Options, scenario: Scenario) -> Result<Self, Error> {
        let tool = options.tool(scenario);
        let arguments = options.arguments(scenario);
        let echo_text = (tool == "echo")
            .then(|| arguments.get("text").and_then(Value::as_str))
            .flatten()
            .map(str::to_owned);
        let (template, stateless) = match options.revision(scenario) {
            Revision::Sessions => (CallTemplate::new(tool, &arguments), None),
            Revision::Stateless => (
                CallTemplate::stateless(tool, &arguments),
                Some(StatelessHead::tools_call(tool)?),
            ),
        };
        Ok(Self {
            template,
            echo_text,
            stateless,
        })
    }

    /// Calls the tool, on `session` or (2026-07-28) on none; returns when the response was
    /// read.
    async fn call(
        &self,
        client: &mut McpClient,
        session: Option<&Session>,
    ) -> Result<tokio::time::Instant, Error> {
        let id = client.next_id();
        let body = self.template.body(id);
        let (message, read) = match (&self.stateless, session) {
            (Some(head), _) => client.call_stateless(head, body, id).await?,
            (None, Some(session)) => client.call(session, body, id).await?,
            (None, None) => return Err(Error::protocol("a session-era call without a session")),
        };
        let result = ToolResult::parse(crate::client::result_of(&message, id)?)?;
        if let Some(expected) = &self.echo_text {
            result.expect_text(|| format!("{expected:?}"), |text| text == expected)?;
        }
        Ok(read)
    }
}

/// The sessions' round robin of one worker.
#[derive(Debug)]
struct SessionCursor {
    sessions: Arc<[Session]>,
    next: usize,
}

impl SessionCursor {
    /// Worker `worker`'s cursor: workers start on different sessions.
    fn new(sessions: Arc<[Session]>, worker: usize) -> Self {
        Self {
            next: worker % sessions.len().max(1),
            sessions,
        }
    }

    fn next(&mut self) -> &Session {
        let current = self.next;
        self.next = (current + 1) % self.sessions.len();
        &self.sessions[current]
    }
}

/// The JSON body of a `tools/call` request.
fn call_body(id: u64, tool: &str, arguments: Value) -> bytes::Bytes {
    wire::request(
        id,
        "tools/call",
        &serde_json::json!({ "name": tool, "arguments": arguments }),
    )
}
