//! Session reads of concurrent requests, sent to Redis together.
//!
//! Every request reads its session hash, so under load a replica sends one `HGETALL` per
//! request. Sent one by one, each costs Redis a read and a write system call (about 5.7 µs of
//! Redis CPU per `tools/call`, against 0.45 µs for the command itself), and fred its own
//! per-command work. So a request's read joins a queue; one task takes everything queued and
//! sends it as one pipeline, with at most [`IN_FLIGHT`] pipelines out at once. An idle replica
//! sends a read at once; a busy one sends what piled up while the earlier pipelines were out.
//!
//! Nothing can go stale: each read is sent after its request arrived, so a session deleted
//! before that (on any replica) is seen as gone, as with a read of its own.

use std::sync::Arc;

use fred::clients::{Client, Pipeline, WithOptions};
use fred::interfaces::{HashesInterface, KeysInterface};
use fred::types::Value;
use shoal_core::host::HostError;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::metrics::observe;

/// The most reads in one pipeline.
const MAX_BATCH: usize = 128;
/// The most pipelines of reads waiting for Redis at once.
const IN_FLIGHT: usize = 4;

/// One session hash to read (`HGETALL`), and the idle timer to set with it, if due.
pub(crate) struct Read {
    pub(crate) key: String,
    /// `PEXPIRE` of the hash, in milliseconds.
    pub(crate) refresh_ms: Option<i64>,
}

/// The queue of reads; cheap to clone.
#[derive(Clone)]
pub(crate) struct SessionReads {
    queue: mpsc::UnboundedSender<Queued>,
}

struct Queued {
    read: Read,
    reply: oneshot::Sender<Result<Value, HostError>>,
}

impl SessionReads {
    /// The queue, and the task that sends it through `commands` (run it on the runtime).
    pub(crate) fn new(
        commands: WithOptions<Client>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (queue, queued) = mpsc::unbounded_channel();
        (SessionReads { queue }, run(commands, queued))
    }

    /// The `HGETALL` reply for `read`.
    pub(crate) async fn read(&self, read: Read) -> Result<Value, HostError> {
        let (reply, replied) = oneshot::channel();
        self.queue
            .send(Queued { read, reply })
            .map_err(|_| stopped())?;
        replied.await.map_err(|_| stopped())?
    }
}

fn stopped() -> HostError {
    HostError::Unavailable("the session reader has stopped".into())
}

async fn run(commands: WithOptions<Client>, mut queued: mpsc::UnboundedReceiver<Queued>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // Waiting for a slot first lets reads pile up in the queue while Redis is busy.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queued.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let commands = commands.clone();
        tokio::spawn(async move {
            send(&commands, batch).await;
            drop(slot);
        });
    }
}

/// Sends `batch` as one round trip and answers each read.
async fn send(commands: &WithOptions<Client>, batch: Vec<Queued>) {
    let pipeline = Pipeline::from(commands.clone());
    let queued = queue(&pipeline, &batch).await;
    let replies: Result<Vec<Value>, HostError> = match queued {
        Ok(()) => observe("session", pipeline.all())
            .await
            .map_err(|error| HostError::Unavailable(error.to_string())),
        Err(error) => Err(error),
    };
    let mut replies = match replies {
        Ok(replies) => replies.into_iter(),
        Err(error) => {
            for Queued { reply, .. } in batch {
                let _ = reply.send(Err(error.clone()));
            }
            return;
        }
    };
    for Queued { read, reply } in batch {
        let hash = replies
            .next()
            .ok_or_else(|| HostError::Unavailable("a session read got no reply".into()));
        if read.refresh_ms.is_some() {
            replies.next();
        }
        let _ = reply.send(hash);
    }
}

/// Puts each read's commands into `pipeline`, in order.
async fn queue(
    pipeline: &Pipeline<WithOptions<Client>>,
    batch: &[Queued],
) -> Result<(), HostError> {
    let unavailable = |error: fred::error::Error| HostError::Unavailable(error.to_string());
    for Queued { read, .. } in batch {
        // Boxed: fred's command futures are 6.5 KiB each.
        Box::pin(pipeline.hgetall::<(), _>(read.key.as_str()))
            .await
            .map_err(unavailable)?;
        if let Some(ttl) = read.refresh_ms {
            Box::pin(pipeline.pexpire::<(), _>(read.key.as_str(), ttl, None))
                .await
                .map_err(unavailable)?;
        }
    }
    Ok(())
}
