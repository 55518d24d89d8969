//! Wake-ups for live readers over one shared pub/sub connection.
//!
//! A reader never blocks a Redis connection. It registers interest in its stream's wake-up
//! channel here: the first reader of a channel in this process makes the host `SUBSCRIBE`, the
//! last one to leave makes it `UNSUBSCRIBE`. A message on the channel bumps a counter that the
//! readers watch; they then re-read their log from their own cursor, so a lost message costs
//! latency, not events. After every reconnection of the pub/sub connection the host
//! resubscribes and wakes every reader, for the same reason.
//!
//! (Un)subscriptions are decided by one task ([`run_manager`]) from the reader counts at the
//! moment it acts, so a reader arriving while the last one leaves never ends up unsubscribed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::{ClusterHash, CustomCommand, Message, Value};
use fred::util::redis_keyslot;
use shoal_core::error::Cause;
use shoal_core::host::{HostError, NodeEvent};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// The most (un)subscriptions sent in one command.
const MAX_BATCH: usize = 512;

/// Reader counts and wake-up counters of the stream channels this host listens to.
pub(crate) struct Wakeups {
    channels: Mutex<HashMap<String, Channel>>,
    requests: mpsc::UnboundedSender<SyncRequest>,
}

struct Channel {
    wake: watch::Sender<u64>,
    readers: usize,
}

/// "Make the subscription of this channel match its reader count", with an answer once done.
pub(crate) struct SyncRequest {
    channel: String,
    done: Option<oneshot::Sender<Result<(), HostError>>>,
}

/// A reader's registration: wakes on each message of its channel; leaving drops it.
pub(crate) struct Wake {
    rx: watch::Receiver<u64>,
    _registration: Registration,
}

struct Registration {
    wakeups: Arc<Wakeups>,
    channel: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain counters behind the lock: a panic elsewhere leaves them usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// === impl Wakeups ===

impl Wakeups {
    pub(crate) fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<SyncRequest>) {
        let (requests, rx) = mpsc::unbounded_channel();
        let wakeups = Wakeups {
            channels: Mutex::new(HashMap::new()),
            requests,
        };
        (Arc::new(wakeups), rx)
    }

    /// Registers a reader of `channel`; returns once the host is subscribed to it.
    pub(crate) async fn acquire(self: &Arc<Self>, channel: String) -> Result<Wake, HostError> {
        let rx = {
            let mut channels = lock(&self.channels);
            let entry = channels.entry(channel.clone()).or_insert_with(|| Channel {
                wake: watch::channel(0).0,
                readers: 0,
            });
            entry.readers += 1;
            entry.wake.subscribe()
        };
        let registration = Registration {
            wakeups: self.clone(),
            channel: channel.clone(),
        };
        let (done, answer) = oneshot::channel();
        self.requests
            .send(SyncRequest {
                channel,
                done: Some(done),
            })
            .map_err(|_| HostError::Unavailable("pub/sub task stopped".into()))?;
        match answer.await {
            Ok(Ok(())) => Ok(Wake {
                rx,
                _registration: registration,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(HostError::Unavailable("pub/sub task stopped".into())),
        }
    }

    /// Wakes the readers of `channel`, if any.
    fn wake(&self, channel: &str) {
        if let Some(entry) = lock(&self.channels).get(channel) {
            entry.wake.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every reader (after a reconnection or lost messages).
    fn wake_all(&self) {
        for entry in lock(&self.channels).values() {
            entry.wake.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The number of stream channels with readers.
    pub(crate) fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(entry) = lock(&self.wakeups.channels).get_mut(&self.channel) {
            entry.readers = entry.readers.saturating_sub(1);
        }
        let _ = self.wakeups.requests.send(SyncRequest {
            channel: std::mem::take(&mut self.channel),
            done: None,
        });
    }
}

// === impl Wake ===

impl Wake {
    /// Marks every wake-up so far as seen: call before re-reading the log.
    pub(crate) fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
    }

    /// Waits for a wake-up after the last [`mark_seen`](Self::mark_seen); false when the host
    /// is gone.
    pub(crate) async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

// === tasks ===

/// Waits until Redis has applied every (un)subscription sent so far on this connection.
///
/// `fred` resolves `SUBSCRIBE` once written, not once confirmed; a `PING` on the same
/// connection is answered only after the commands before it ran. In a Cluster, `fred` sends
/// every classic (un)subscription to the master owning the hash slot of the client's id (one
/// connection, so that the order holds), and a `PING` without a slot to any master: the `PING`
/// must name that slot too.
pub(crate) async fn confirm(subscriber: &SubscriberClient) -> Result<(), HostError> {
    let pong: Result<Value, _> = if subscriber.is_clustered() {
        let slot = redis_keyslot(subscriber.id().as_bytes());
        let ping = CustomCommand::new_static("PING", ClusterHash::Custom(slot), false);
        subscriber.custom(ping, Vec::<Value>::new()).await
    } else {
        subscriber.ping(None).await
    };
    pong.map_err(|e| HostError::Unavailable(Cause::new(e)))?;
    Ok(())
}

/// `SUBSCRIBE`, confirmed.
async fn subscribe(subscriber: &SubscriberClient, channels: Vec<String>) -> Result<(), HostError> {
    subscriber
        .subscribe(channels)
        .await
        .map_err(|e| HostError::Unavailable(Cause::new(e)))?;
    confirm(subscriber).await
}

/// Applies (un)subscriptions one batch at a time, from the reader counts at that moment.
pub(crate) async fn run_manager(
    subscriber: SubscriberClient,
    wakeups: Arc<Wakeups>,
    mut requests: mpsc::UnboundedReceiver<SyncRequest>,
) {
    let mut subscribed: HashSet<String> = HashSet::new();
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let mut to_subscribe = BTreeSet::new();
        let mut to_unsubscribe = BTreeSet::new();
        {
            let mut channels = lock(&wakeups.channels);
            for request in &batch {
                let wanted = match channels.get(&request.channel) {
                    Some(entry) if entry.readers > 0 => true,
                    Some(_) => {
                        channels.remove(&request.channel);
                        false
                    }
                    None => false,
                };
                let have = subscribed.contains(&request.channel);
                if wanted && !have {
                    to_subscribe.insert(request.channel.clone());
                } else if !wanted && have {
                    to_unsubscribe.insert(request.channel.clone());
                }
            }
        }
        let subscribe_result = if to_subscribe.is_empty() {
            Ok(())
        } else {
            let channels: Vec<String> = to_subscribe.iter().cloned().collect();
            match subscribe(&subscriber, channels).await {
                Ok(()) => {
                    subscribed.extend(to_subscribe.iter().cloned());
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "redis subscribe failed");
                    Err(e)
                }
            }
        };
        if !to_unsubscribe.is_empty() {
            let channels: Vec<String> = to_unsubscribe.iter().cloned().collect();
            match subscriber.unsubscribe(channels).await {
                Ok(()) => subscribed.retain(|c| !to_unsubscribe.contains(c)),
                // Still subscribed: a stray wake-up costs nothing, and the next reconnection
                // reconciles (see `run_resubscriber`).
                Err(e) => tracing::debug!(cause = %e, "redis unsubscribe failed"),
            }
        }
        for request in batch {
            if let Some(done) = request.done {
                let result = if to_subscribe.contains(&request.channel) {
                    subscribe_result.clone()
                } else {
                    Ok(())
                };
                let _ = done.send(result);
            }
        }
    }
}

/// Routes pub/sub messages: node channels to the node's events, stream channels to wake-ups.
pub(crate) async fn run_dispatcher(
    mut messages: broadcast::Receiver<Message>,
    wakeups: Arc<Wakeups>,
    node_channels: [String; 2],
    node_events: broadcast::Sender<NodeEvent>,
) {
    loop {
        match messages.recv().await {
            Ok(message) => {
                let channel: &str = &message.channel;
                if node_channels.iter().any(|c| c == channel) {
                    let decoded = message
                        .value
                        .as_bytes()
                        .map(serde_json::from_slice::<NodeEvent>);
                    match decoded {
                        Some(Ok(event)) => {
                            let _ = node_events.send(event);
                        }
                        _ => tracing::warn!(channel, "undecodable node event dropped"),
                    }
                } else {
                    wakeups.wake(channel);
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "pub/sub messages lost; waking every reader");
                wakeups.wake_all();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// After each reconnection of the pub/sub connection: resubscribe, reconcile, wake everyone.
pub(crate) async fn run_resubscriber(
    subscriber: SubscriberClient,
    wakeups: Arc<Wakeups>,
    retry_delay: Duration,
) {
    let mut reconnections = subscriber.reconnect_rx();
    loop {
        match reconnections.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
        for attempt in 1..=5 {
            let resubscribed = match subscriber.resubscribe_all().await {
                Ok(()) => confirm(&subscriber).await,
                Err(e) => Err(HostError::Unavailable(Cause::new(e))),
            };
            match resubscribed {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(cause = %e, attempt, "redis resubscribe failed");
                    if !subscriber.is_connected() {
                        // The next reconnection starts over.
                        break;
                    }
                    tokio::time::sleep(retry_delay).await;
                }
            }
        }
        // Drop subscriptions whose last reader left while Redis was away.
        let stale: Vec<String> = subscriber
            .tracked_channels()
            .into_iter()
            .map(|c| c.to_string())
            .collect();
        for channel in stale {
            let _ = wakeups.requests.send(SyncRequest {
                channel,
                done: None,
            });
        }
        wakeups.wake_all();
    }
}
