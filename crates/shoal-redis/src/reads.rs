//! Session reads of concurrent requests, sent to Redis together.
//!
//! Every request reads its session hash, so under load a replica sends one `HGETALL` per
//! request. Sent one by one, each costs Redis a read and a write system call (about 5.7 µs of
//! Redis CPU per `tools/call`, against 0.45 µs for the command itself), and fred its own
//! per-command work. So a request's read joins a queue; one task takes everything queued and
//! sends it as one pipeline, with at most [`IN_FLIGHT`] pipelines out at once. An idle replica
//! sends a read at once; a busy one sends what piled up while the earlier pipelines were out.
//!
//! Reads of one session in the same batch (concurrent requests of one client) share one
//! `HGETALL`.
//!
//! Nothing can go stale: each read is sent after its request arrived, so a session deleted
//! before that (on any replica) is seen as gone, as with a read of its own.

use std::collections::HashMap;
use std::sync::Arc;

use fred::clients::{Client, Pipeline, WithOptions};
use fred::interfaces::{HashesInterface, KeysInterface};
use fred::types::Value;
use shoal_core::error::Cause;
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
    let hashes = Hashes::of(&batch);
    let pipeline = Pipeline::from(commands.clone());
    let queued = queue(&pipeline, &batch, &hashes).await;
    let replies: Result<Vec<Value>, HostError> = match queued {
        Ok(()) => observe("session", pipeline.all())
            .await
            .map_err(|error| HostError::Unavailable(Cause::new(error))),
        Err(error) => Err(error),
    };
    let replies = match replies {
        Ok(replies) => hashes.replies(replies),
        Err(error) => {
            for Queued { reply, .. } in batch {
                let _ = reply.send(Err(error.clone()));
            }
            return;
        }
    };
    for (Queued { reply, .. }, hash) in batch.into_iter().zip(hashes.of_reads) {
        let _ = reply.send(
            replies
                .get(hash)
                .cloned()
                .ok_or_else(|| HostError::Unavailable("a session read got no reply".into())),
        );
    }
}

/// The distinct session hashes of a batch. Concurrent requests of one session share one
/// `HGETALL`: it is sent after all of them arrived, so it answers each as its own read would.
struct Hashes {
    /// Each distinct hash once, in order of first appearance: the batch index of its first
    /// read, and its idle timer if any of its reads found it due.
    distinct: Vec<(usize, Option<i64>)>,
    /// For each read of the batch, its hash's index in `distinct`.
    of_reads: Vec<usize>,
}

impl Hashes {
    fn of(batch: &[Queued]) -> Self {
        let mut distinct: Vec<(usize, Option<i64>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
        let of_reads = batch
            .iter()
            .enumerate()
            .map(|(i, Queued { read, .. })| {
                let at = *index.entry(read.key.as_str()).or_insert_with(|| {
                    distinct.push((i, None));
                    distinct.len() - 1
                });
                let refresh = &mut distinct[at].1;
                *refresh = refresh.or(read.refresh_ms);
                at
            })
            .collect();
        Hashes { distinct, of_reads }
    }

    /// Each distinct hash's `HGETALL` reply, from the pipeline's replies (an idle timer's
    /// `PEXPIRE` reply follows its hash's).
    fn replies(&self, replies: Vec<Value>) -> Vec<Value> {
        let mut replies = replies.into_iter();
        let mut hashes = Vec::with_capacity(self.distinct.len());
        for (_, refresh_ms) in &self.distinct {
            let Some(hash) = replies.next() else { break };
            hashes.push(hash);
            if refresh_ms.is_some() {
                replies.next();
            }
        }
        hashes
    }
}

/// Puts each distinct hash's commands into `pipeline`, in order.
async fn queue(
    pipeline: &Pipeline<WithOptions<Client>>,
    batch: &[Queued],
    hashes: &Hashes,
) -> Result<(), HostError> {
    let unavailable = |error: fred::error::Error| HostError::Unavailable(Cause::new(error));
    for &(first, refresh_ms) in &hashes.distinct {
        let key = batch[first].read.key.as_str();
        // Boxed: fred's command futures are 6.5 KiB each.
        Box::pin(pipeline.hgetall::<(), _>(key))
            .await
            .map_err(unavailable)?;
        if let Some(ttl) = refresh_ms {
            Box::pin(pipeline.pexpire::<(), _>(key, ttl, None))
                .await
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(reads: &[(&str, Option<i64>)]) -> Vec<Queued> {
        reads
            .iter()
            .map(|&(key, refresh_ms)| Queued {
                read: Read {
                    key: key.to_owned(),
                    refresh_ms,
                },
                reply: oneshot::channel().0,
            })
            .collect()
    }

    #[test]
    fn reads_of_one_hash_share_its_commands() {
        let batch = batch(&[
            ("a", None),
            ("b", None),
            ("a", Some(60_000)),
            ("c", Some(30_000)),
            ("b", None),
        ]);
        let hashes = Hashes::of(&batch);
        assert_eq!(
            hashes.distinct,
            vec![(0, Some(60_000)), (1, None), (3, Some(30_000))]
        );
        assert_eq!(hashes.of_reads, vec![0, 1, 0, 2, 1]);
    }

    #[test]
    fn each_hash_gets_its_own_reply_past_the_timers_replies() {
        let batch = batch(&[
            ("a", Some(60_000)),
            ("b", None),
            ("a", None),
            ("c", Some(1)),
        ]);
        let hashes = Hashes::of(&batch);
        // HGETALL a, PEXPIRE a, HGETALL b, HGETALL c, PEXPIRE c.
        let pipeline: Vec<Value> = ["hash a", "1", "hash b", "hash c", "1"]
            .into_iter()
            .map(Value::from)
            .collect();
        let replies = hashes.replies(pipeline);
        assert_eq!(replies, ["hash a", "hash b", "hash c"].map(Value::from));
        let per_read: Vec<Value> = hashes
            .of_reads
            .iter()
            .map(|&i| replies[i].clone())
            .collect();
        assert_eq!(
            per_read,
            ["hash a", "hash b", "hash a", "hash c"].map(Value::from)
        );
    }
}
