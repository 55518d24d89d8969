//! [`RedisHost`]: the [`SessionHost`] over Redis.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, SubscriberClient, WithOptions};
use fred::interfaces::{ClientLike, EventInterface, KeysInterface, LuaInterface, PubsubInterface};
use fred::types::config::{Config, Options, ReconnectPolicy, Server};
use fred::types::{Builder, ClusterHash, CustomCommand, Expiration, Value};
use fred::util::redis_keyslot;
use futures::StreamExt;
use futures::stream::BoxStream;
use shoal_core::host::{
    Broadcast, HostError, NodeEvent, ReadFrom, SessionHost, SessionUpdate, StoredEvent,
    StreamEvent, Subscription,
};
use shoal_core::ids::{NodeId, SessionId, StreamId};
use shoal_core::session::SessionRecord;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::codec::{self, DecodeError};
use crate::config::{ConfigError, RedisHostConfig};
use crate::keys::{Keys, SessionKeys};
use crate::memo::RecordMemo;
use crate::metrics::observe;
use crate::reads::{Read, SessionReads};
use crate::refresh::IdleRefresh;
use crate::scripts::{Script, Scripts};
use crate::wake::{self, Wake, Wakeups};

/// Events read per `read` round trip.
const READ_BATCH: usize = 256;
/// Node events buffered for a slow consumer of [`SessionHost::node_events`].
const NODE_EVENT_BUFFER: usize = 4096;
/// Pub/sub messages buffered between the connection and the dispatcher.
const MESSAGE_BUFFER: usize = 8192;

/// Sessions, stream logs, node inboxes and broadcasts in Redis, shared by every replica.
///
/// Cheap to clone; every clone shares two connections (commands and pub/sub) and the tasks
/// behind them, which stop when the last clone and the last subscription are dropped.
#[derive(Clone)]
pub struct RedisHost {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisHostConfig,
    keys: Keys,
    /// Every command goes through this: fail fast while disconnected, bounded in time, never
    /// retried behind the caller's back (an append must not be applied twice).
    commands: WithOptions<Client>,
    client: Client,
    subscriber: SubscriberClient,
    scripts: Scripts,
    /// When session reads refresh the idle timer.
    refresh: IdleRefresh,
    /// The records those reads decoded last.
    records: RecordMemo,
    /// Where those reads queue, to go out pipelined with other requests' reads.
    reads: SessionReads,
    /// When a principal's full set may be pruned again (see `Inner::prune`).
    prunes: PruneThrottle,
    wakeups: Arc<Wakeups>,
    node_events: broadcast::Sender<NodeEvent>,
    broadcast_channel: String,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RedisHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHost")
            .field("node", &self.inner.config.node)
            .field("key_prefix", &self.inner.config.key_prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> HostError {
    HostError::Unavailable(e.to_string())
}

/// Milliseconds since the Unix epoch on this replica's clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in whole milliseconds, as Redis takes them.
fn millis_i64(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

// === impl RedisHost ===

impl RedisHost {
    /// Connects to Redis: one connection for commands, one for pub/sub; loads the scripts and
    /// subscribes to this node's inbox and the broadcast channel.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the settings are invalid or Redis does not answer within
    /// `connect_timeout`. Once connected, the host reconnects by itself for ever.
    pub async fn connect(config: RedisHostConfig) -> Result<Self, HostError> {
        config.validate().map_err(unavailable)?;
        let redis_config = Config::from_url(&config.url)
            .map_err(|e| unavailable(ConfigError::Url(e.details().to_owned())))?;
        let mut builder = Builder::from_config(redis_config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = config.connect_timeout;
                c.internal_command_timeout = config.command_timeout;
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = config.command_timeout;
                p.broadcast_channel_capacity = MESSAGE_BUFFER;
            })
            .set_policy(ReconnectPolicy::new_constant(
                0,
                u32::try_from(config.reconnect_delay.as_millis()).unwrap_or(u32::MAX),
            ));
        let client = builder.build().map_err(unavailable)?;
        let subscriber = builder.build_subscriber_client().map_err(unavailable)?;

        let keys = Keys::new(&config.key_prefix);
        let node_channel = keys.node_channel(&config.node);
        let broadcast_channel = keys.broadcast_channel();
        let (node_events, _) = broadcast::channel(NODE_EVENT_BUFFER);
        let (wakeups, requests) = Wakeups::new();
        let messages = subscriber.message_rx();

        let connected = async {
            client.init().await.map_err(unavailable)?;
            subscriber.init().await.map_err(unavailable)?;
            let scripts = load_scripts(&client).await?;
            subscriber
                .subscribe(vec![node_channel.clone(), broadcast_channel.clone()])
                .await
                .map_err(unavailable)?;
            wake::confirm(&subscriber).await?;
            Ok::<_, HostError>(scripts)
        };
        let scripts = match tokio::time::timeout(config.connect_timeout, connected).await {
            Ok(Ok(scripts)) => scripts,
            failed => {
                let _ = client.quit().await;
                let _ = subscriber.quit().await;
                return Err(match failed {
                    Ok(Err(e)) => e,
                    _ => HostError::Unavailable("timed out connecting to Redis".into()),
                });
            }
        };

        let tasks = vec![
            tokio::spawn(wake::run_manager(
                subscriber.clone(),
                wakeups.clone(),
                requests,
            )),
            tokio::spawn(wake::run_dispatcher(
                messages,
                wakeups.clone(),
                [node_channel, broadcast_channel.clone()],
                node_events.clone(),
            )),
            tokio::spawn(wake::run_resubscriber(
                subscriber.clone(),
                wakeups.clone(),
                config.reconnect_delay,
            )),
        ];
        let heartbeat = tokio::spawn(run_heartbeat(
            client.clone(),
            keys.alive(&config.node),
            config.heartbeat_interval,
            config.node_ttl,
        ));
        let mut tasks = tasks;
        tasks.push(heartbeat);
        let commands = client.with_options(&Options {
            max_attempts: Some(1),
            timeout: Some(config.command_timeout),
            fail_fast: true,
            ..Default::default()
        });
        let (reads, reader) = SessionReads::new(commands.clone());
        tasks.push(tokio::spawn(reader));
        Ok(RedisHost {
            inner: Arc::new(Inner {
                refresh: IdleRefresh::new(config.idle_timeout),
                records: RecordMemo::default(),
                reads,
                prunes: PruneThrottle::new(config.idle_timeout / 10),
                config,
                keys,
                commands,
                client,
                subscriber,
                scripts,
                wakeups,
                node_events,
                broadcast_channel,
                tasks,
            }),
        })
    }

    /// The settings this host runs with.
    pub fn config(&self) -> &RedisHostConfig {
        &self.inner.config
    }

    /// The number of stream wake-up channels this host is subscribed to (streams with at least
    /// one live reader here).
    pub fn wake_channel_count(&self) -> usize {
        self.inner.wakeups.channel_count()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, subscriber) = (self.client.clone(), self.subscriber.clone());
            runtime.spawn(async move {
                let _ = client.quit().await;
                let _ = subscriber.quit().await;
            });
        }
    }
}

/// What a `read` found.
enum ReadOutcome {
    /// The session is gone.
    Gone,
    /// Events after the cursor (maybe none), and the position of `End` (0: none yet).
    Batch {
        events: Vec<StoredEvent>,
        ended: u64,
    },
}

impl Inner {
    /// `EVALSHA`, or `EVAL` once when Redis lost its script cache; observed as `command`.
    async fn eval(
        &self,
        command: &'static str,
        script: &Script,
        keys: &[&str],
        args: Vec<String>,
    ) -> Result<Value, HostError> {
        let mut call: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
        call.push(Value::from(script.sha.as_str()));
        call.push(Value::from(keys.len() as i64));
        call.extend(keys.iter().map(|k| Value::from(*k)));
        call.extend(args.into_iter().map(Value::from));
        // KEYS[1] decides the Cluster slot; every key a script touches shares its `{<session>}`
        // hash tag, hence that slot. (`fred` honours only `ClusterHash::Custom` for a custom
        // command: any other policy would hash the first string argument, the SHA. Standalone
        // ignores the slot.)
        let slot = keys.first().map_or(0, |key| redis_keyslot(key.as_bytes()));
        let hash = ClusterHash::Custom(slot);
        let evalsha = CustomCommand::new_static("EVALSHA", hash.clone(), false);
        observe(command, async {
            match self
                .commands
                .custom::<Value, Value>(evalsha, call.clone())
                .await
            {
                Err(e) if e.details().starts_with("NOSCRIPT") => {
                    call[0] = Value::from(script.lua);
                    let eval = CustomCommand::new_static("EVAL", hash, false);
                    self.commands.custom(eval, call).await.map_err(unavailable)
                }
                result => result.map_err(unavailable),
            }
        })
        .await
    }

    /// One plain command on `key`, sent to the master owning its slot; observed as `command`.
    async fn on_key(
        &self,
        command: &'static str,
        name: &'static str,
        key: &str,
        args: Vec<Value>,
    ) -> Result<Value, HostError> {
        let slot = redis_keyslot(key.as_bytes());
        let mut call = Vec::with_capacity(1 + args.len());
        call.push(Value::from(key));
        call.extend(args);
        let custom = CustomCommand::new_static(name, ClusterHash::Custom(slot), false);
        observe(command, self.commands.custom::<Value, Value>(custom, call))
            .await
            .map_err(unavailable)
    }

    /// Adds `session` to `principal`'s set unless it already holds `max` live sessions
    /// (0: no limit); whether it was added.
    async fn reserve(
        &self,
        principal_set: &str,
        session: &SessionId,
        max: usize,
    ) -> Result<bool, HostError> {
        let reply = self
            .eval(
                "create_session",
                &self.scripts.reserve,
                &[principal_set],
                vec![
                    session.as_str().to_owned(),
                    max.to_string(),
                    millis(self.config.max_lifetime),
                ],
            )
            .await?;
        Ok(codec::integer(&reply)? == 1)
    }

    /// Removes from a principal's set the sessions whose hash is gone (expired while idle, or
    /// a delete whose `ZREM` was lost); returns how many. A member's hash is written before the
    /// member is added (see `create_session`), so a missing hash means the session is gone for
    /// good, never that it is still being created.
    async fn prune(&self, principal_set: &str) -> Result<usize, HostError> {
        let members = self
            .on_key(
                "create_session",
                "ZRANGE",
                principal_set,
                vec![Value::from(0), Value::from(-1)],
            )
            .await?;
        let members: Vec<String> = codec::array(members)?
            .into_iter()
            .map(codec::text)
            .collect::<Result<_, _>>()?;
        // One `EXISTS` per member, concurrently (each key may live on another Cluster master).
        let checks = members.into_iter().map(|member| async move {
            let Ok(id) = member.parse::<SessionId>() else {
                return Ok::<_, HostError>(Some(member));
            };
            let key = self.keys.session(&id).session;
            let exists = self
                .on_key("create_session", "EXISTS", &key, Vec::new())
                .await?;
            Ok((codec::integer(&exists)? == 0).then_some(member))
        });
        let gone: Vec<Value> = futures::future::try_join_all(checks)
            .await?
            .into_iter()
            .flatten()
            .map(Value::from)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let count = gone.len();
        self.on_key("create_session", "ZREM", principal_set, gone)
            .await?;
        Ok(count)
    }

    /// Destroys a session (the `delete` script); whether it existed, and its principal.
    /// `announce`: tell every node (`SessionClosed`); not for a session refused at creation.
    async fn destroy(
        &self,
        id: &SessionId,
        announce: bool,
    ) -> Result<(bool, Option<String>), HostError> {
        let keys = self.keys.session(id);
        let mut args = self.common_args(id, &keys)?;
        if !announce {
            // The broadcast channel: the script publishes nothing on ''.
            args[4] = String::new();
        }
        self.refresh.forget(id);
        let reply = self
            .eval(
                "delete_session",
                &self.scripts.delete,
                &[&keys.session],
                args,
            )
            .await?;
        let mut reply = codec::array(reply)?.into_iter();
        let existed = codec::integer(&reply.next().ok_or(DecodeError::Reply)?)? == 1;
        let principal = match reply.next().ok_or(DecodeError::Reply)? {
            // '' (no principal) may come back as a null bulk string.
            Value::Null => None,
            value => Some(codec::text(value)?).filter(|p| !p.is_empty()),
        };
        Ok((existed, principal))
    }

    /// The first five arguments of the scripts that refresh or destroy a session.
    fn common_args(&self, id: &SessionId, keys: &SessionKeys) -> Result<Vec<String>, HostError> {
        let closed = NodeEvent::Broadcast(Broadcast::SessionClosed(id.clone()));
        Ok(vec![
            millis(self.config.idle_timeout),
            millis(self.config.max_lifetime),
            keys.base.clone(),
            serde_json::to_string(&closed).map_err(unavailable)?,
            self.broadcast_channel.clone(),
        ])
    }

    async fn read(
        &self,
        session: &SessionKeys,
        stream: &StreamId,
        cursor: u64,
    ) -> Result<ReadOutcome, HostError> {
        let reply = self
            .eval(
                "read",
                &self.scripts.read,
                &[&session.session, &session.stream(stream)],
                vec![
                    stream.as_str().to_owned(),
                    (cursor + 1).to_string(),
                    READ_BATCH.to_string(),
                ],
            )
            .await?;
        let mut items = codec::array(reply)?.into_iter();
        let status = items.next().ok_or(DecodeError::Reply)?;
        if codec::integer(&status)? < 0 {
            return Ok(ReadOutcome::Gone);
        }
        let last = codec::position(&items.next().ok_or(DecodeError::Reply)?)?;
        let ended = codec::position(&items.next().ok_or(DecodeError::Reply)?)?;
        let mut events = Vec::new();
        while let (Some(seq), Some(payload)) = (items.next(), items.next()) {
            let seq = codec::position(&seq)?;
            let event = codec::decode_event(&codec::text(payload)?)?;
            events.push(StoredEvent { seq, event });
        }
        let next_retained = events.first().map_or(last + 1, |e| e.seq);
        if cursor < last && next_retained > cursor + 1 {
            // Trimmed past this reader while it was away.
            return Err(HostError::EventExpired);
        }
        Ok(ReadOutcome::Batch { events, ended })
    }
}

#[async_trait::async_trait]
impl SessionHost for RedisHost {
    fn node_id(&self) -> &NodeId {
        &self.inner.config.node
    }

    /// Writes the session hash, then adds the session to its principal's set if there is
    /// room, else destroys the hash again. Two scripts, not one: the set and the hash live in
    /// different Cluster slots (a shared hash tag would put every session of a principal on one
    /// master). The hash comes first so that every member of the set has (or had) a hash: a
    /// member without one is gone, and `prune` may drop it without racing a create.
    async fn create_session(
        &self,
        record: &SessionRecord,
        max_per_principal: usize,
    ) -> Result<(), HostError> {
        let inner = &self.inner;
        let keys = inner.keys.session(&record.id);
        let mut args = inner.common_args(&record.id, &keys)?;
        args.push(serde_json::to_string(record).map_err(unavailable)?);
        args.push(record.standalone_stream.as_str().to_owned());
        args.push(match record.log_level {
            Some(level) => codec::encode_level(level)?,
            None => String::new(),
        });
        args.push(record.principal.clone().unwrap_or_default());
        args.extend(record.subscriptions.iter().cloned());
        inner
            .eval(
                "create_session",
                &inner.scripts.create,
                &[&keys.session],
                args,
            )
            .await?;
        let Some(principal) = record.principal.as_deref() else {
            return Ok(());
        };
        let set = inner.keys.principal_sessions(principal);
        let reserved = async {
            if inner.reserve(&set, &record.id, max_per_principal).await? {
                return Ok(true);
            }
            // Full, maybe of sessions that expired while idle (their scores only end with
            // their lifetime): drop those and try once more. At most once per tenth of the
            // idle timeout per principal and replica: a prune costs one `EXISTS` per session,
            // and a client hammering initialize at its limit must not multiply Redis's work.
            if !inner.prunes.due(principal, std::time::Instant::now())
                || inner.prune(&set).await? == 0
            {
                return Ok(false);
            }
            inner.reserve(&set, &record.id, max_per_principal).await
        }
        .await;
        match reserved {
            Ok(true) => Ok(()),
            refused => {
                // Best effort: a hash left behind expires after the idle timeout, unused.
                let _ = inner.destroy(&record.id, false).await;
                refused.and(Err(HostError::PrincipalAtLimit))
            }
        }
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, HostError> {
        let inner = &self.inner;
        // The hot path (every request): one plain `HGETALL`, no script (a Lua call cost Redis
        // several times the CPU of the commands it ran), pipelined with the reads of other
        // requests (see `reads`). Now and then, with it, the idle timer's refresh (see
        // `refresh`). The lifetime is checked here, on this replica's clock, and a session
        // past it is destroyed as the scripts would.
        let read = Read {
            key: inner.keys.session_hash(id),
            refresh_ms: inner
                .refresh
                .due(id, std::time::Instant::now())
                .then(|| millis_i64(inner.refresh.ttl())),
        };
        let reply = inner.reads.read(read).await?;
        let fields = codec::hash_fields(reply)?;
        if fields.is_empty() {
            inner.records.forget(id);
            return Ok(None);
        }
        let (record, created_ms) = inner.records.decode(id, fields)?;
        let lifetime = millis_i64(inner.config.max_lifetime);
        if created_ms.is_some_and(|created| created.saturating_add(lifetime) <= now_ms()) {
            self.delete_session(id).await?;
            return Ok(None);
        }
        Ok(Some(record))
    }

    async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<(), HostError> {
        let inner = &self.inner;
        let keys = inner.keys.session(id);
        let mut args = inner.common_args(id, &keys)?;
        match update {
            SessionUpdate::LogLevel(level) => {
                args.push("level".into());
                args.push(codec::encode_level(level)?);
            }
            SessionUpdate::Subscribe(uri) => {
                args.push("sub".into());
                args.push(uri);
            }
            SessionUpdate::Unsubscribe(uri) => {
                args.push("unsub".into());
                args.push(uri);
            }
        }
        let reply = inner
            .eval(
                "update_session",
                &inner.scripts.update,
                &[&keys.session],
                args,
            )
            .await?;
        if codec::integer(&reply)? == 1 {
            Ok(())
        } else {
            Err(HostError::SessionNotFound)
        }
    }

    async fn delete_session(&self, id: &SessionId) -> Result<bool, HostError> {
        let inner = &self.inner;
        inner.records.forget(id);
        let (existed, principal) = inner.destroy(id, true).await?;
        if let Some(principal) = principal {
            // Frees the slot now. If this is lost, `prune` frees it when the principal is full.
            let set = inner.keys.principal_sessions(&principal);
            inner
                .on_key(
                    "delete_session",
                    "ZREM",
                    &set,
                    vec![Value::from(id.as_str())],
                )
                .await?;
        }
        Ok(existed)
    }

    async fn append(
        &self,
        session: &SessionId,
        stream: &StreamId,
        event: StreamEvent,
    ) -> Result<u64, HostError> {
        let inner = &self.inner;
        let keys = inner.keys.session(session);
        let mut args = inner.common_args(session, &keys)?;
        args.push(stream.as_str().to_owned());
        args.push(codec::encode_event(&event));
        args.push(inner.config.max_events_per_stream.to_string());
        args.push(millis(inner.config.event_retention));
        args.push(if event.ends_stream() { "1" } else { "0" }.to_owned());
        let reply = inner
            .eval(
                "append",
                &inner.scripts.append,
                &[&keys.session, &keys.stream(stream)],
                args,
            )
            .await?;
        match codec::integer(&reply)? {
            seq if seq > 0 => Ok(seq as u64),
            -2 => Err(HostError::StreamEnded),
            _ => Err(HostError::SessionNotFound),
        }
    }

    async fn subscribe(
        &self,
        session: &SessionId,
        stream: &StreamId,
        from: ReadFrom,
    ) -> Result<Subscription, HostError> {
        let inner = &self.inner;
        let keys = inner.keys.session(session);
        let mut args = inner.common_args(session, &keys)?;
        args.push(stream.as_str().to_owned());
        let reply = inner
            .eval(
                "subscribe",
                &inner.scripts.open,
                &[&keys.session, &keys.stream(stream)],
                args,
            )
            .await?;
        let reply = codec::array(reply)?;
        match reply.first().map(codec::integer).transpose()? {
            Some(-1) => return Err(HostError::SessionNotFound),
            Some(-2) => return Err(HostError::UnknownStream),
            Some(0) if reply.len() == 3 => {}
            _ => return Err(DecodeError::Reply.into()),
        }
        let last = codec::position(&reply[1])?;
        let first = codec::position(&reply[2])?;
        let after = match from {
            ReadFrom::Tail => last,
            ReadFrom::After(seq) if seq > last => return Err(HostError::EventFromTheFuture),
            ReadFrom::After(seq) if seq + 1 < first => return Err(HostError::EventExpired),
            ReadFrom::After(seq) => seq,
        };
        // Everything appended from here on is seen: the reader reads once after subscribing.
        let wake = inner.wakeups.acquire(keys.wake(stream)).await?;
        let reader = Reader {
            inner: inner.clone(),
            keys,
            stream: stream.clone(),
            wake,
            cursor: after,
            pending: VecDeque::new(),
            done: false,
        };
        let events = futures::stream::unfold(reader, Reader::next).boxed();
        Ok(Subscription { after, events })
    }

    async fn send_to_node(&self, node: &NodeId, event: NodeEvent) -> Result<(), HostError> {
        let channel = self.inner.keys.node_channel(node);
        let payload = serde_json::to_string(&event).map_err(unavailable)?;
        let _: i64 = observe(
            "send_to_node",
            self.inner.commands.publish(channel, payload),
        )
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn broadcast(&self, event: NodeEvent) -> Result<(), HostError> {
        let payload = serde_json::to_string(&event).map_err(unavailable)?;
        let channel = self.inner.broadcast_channel.as_str();
        let _: i64 = observe("broadcast", self.inner.commands.publish(channel, payload))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn node_events(&self) -> BoxStream<'static, NodeEvent> {
        let rx = self.inner.node_events.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    // At-most-once: a consumer that fell behind loses the oldest messages.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    async fn node_alive(&self, node: &NodeId) -> Result<bool, HostError> {
        if *node == self.inner.config.node {
            return Ok(true);
        }
        let key = self.inner.keys.alive(node);
        let alive: i64 = observe("node_alive", self.inner.commands.exists(key))
            .await
            .map_err(unavailable)?;
        Ok(alive > 0)
    }

    async fn ping(&self) -> Result<(), HostError> {
        let _: Value = observe("ping", self.inner.commands.ping(None))
            .await
            .map_err(unavailable)?;
        if !self.inner.subscriber.is_connected() {
            return Err(HostError::Unavailable("pub/sub connection down".into()));
        }
        Ok(())
    }
}

/// Principals whose full set this replica pruned recently, and when.
struct PruneThrottle {
    every: Duration,
    pruned: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl PruneThrottle {
    /// Principals remembered; past this the stale ones are forgotten (if all are fresh,
    /// every one: the cost is one extra prune each).
    const CAPACITY: usize = 10_000;

    fn new(every: Duration) -> Self {
        PruneThrottle {
            every,
            pruned: std::sync::Mutex::default(),
        }
    }

    /// Whether `principal`'s set may be pruned at `now`; if so, it counts as done.
    fn due(&self, principal: &str, now: std::time::Instant) -> bool {
        let mut pruned = self
            .pruned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pruned
            .get(principal)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.every)
        {
            return false;
        }
        if pruned.len() >= Self::CAPACITY {
            pruned.retain(|_, at| now.saturating_duration_since(*at) < self.every);
            if pruned.len() >= Self::CAPACITY {
                pruned.clear();
            }
        }
        pruned.insert(principal.to_owned(), now);
        true
    }
}

/// `SCRIPT LOAD`s every script: on the one server, or on every master of a Cluster (the
/// script cache is per server and `EVALSHA` runs on the master owning the session's slot).
/// A master that joins later, or a replica promoted by a failover, answers `NOSCRIPT` once per
/// script; [`Inner::eval`] then runs `EVAL`, which caches it there.
async fn load_scripts(client: &Client) -> Result<Scripts, HostError> {
    let targets: Vec<Option<Server>> = if client.is_clustered() {
        let masters = client.active_connections();
        if masters.is_empty() {
            return Err(HostError::Unavailable(
                "connected to no Redis Cluster master".into(),
            ));
        }
        masters.into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    let mut shas = Vec::with_capacity(Scripts::SOURCES.len());
    for lua in Scripts::SOURCES {
        let mut sha: Option<String> = None;
        for target in &targets {
            let on = client.with_options(&Options {
                cluster_node: target.clone(),
                ..Default::default()
            });
            let loaded: String = on.script_load(lua).await.map_err(unavailable)?;
            if sha.as_ref().is_some_and(|sha| *sha != loaded) {
                return Err(HostError::Unavailable(
                    "Redis masters named one script differently".into(),
                ));
            }
            sha = Some(loaded);
        }
        shas.push(sha.unwrap_or_default());
    }
    Scripts::new(shas).ok_or_else(|| HostError::Unavailable("SCRIPT LOAD answered oddly".into()))
}

/// Renews this node's liveness key (`SET … PX node_ttl`) every `interval`, for as long as
/// the host lives; failures are retried on the next tick.
async fn run_heartbeat(client: Client, key: String, interval: Duration, ttl: Duration) {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        let renewed: Result<Value, _> = observe(
            "heartbeat",
            client.set(&key, "1", Some(Expiration::PX(ttl_ms)), None, false),
        )
        .await;
        if let Err(error) = renewed {
            tracing::debug!(%error, "heartbeat not renewed");
        }
    }
}

/// A subscription's cursor over one stream's log.
struct Reader {
    inner: Arc<Inner>,
    keys: SessionKeys,
    stream: StreamId,
    wake: Wake,
    cursor: u64,
    pending: VecDeque<StoredEvent>,
    done: bool,
}

impl Reader {
    /// The next event: buffered, else read from the log, else wait for a wake-up.
    async fn next(mut self) -> Option<(Result<StoredEvent, HostError>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                self.cursor = event.seq;
                self.done = event.event.ends_stream();
                return Some((Ok(event), self));
            }
            self.wake.mark_seen();
            // Boxed: fred's futures are large, and this one would otherwise stay inlined in
            // the future of every idle reader (about 14 KiB each) while it waits below.
            let read = Box::pin(self.inner.read(&self.keys, &self.stream, self.cursor));
            match read.await {
                Err(e) => {
                    self.done = true;
                    return Some((Err(e), self));
                }
                Ok(ReadOutcome::Gone) => return None,
                Ok(ReadOutcome::Batch { events, .. }) if !events.is_empty() => {
                    self.pending.extend(events);
                }
                Ok(ReadOutcome::Batch { ended, .. }) => {
                    if ended != 0 && self.cursor >= ended {
                        return None;
                    }
                    let reread = tokio::time::sleep(self.inner.config.reread_interval);
                    tokio::select! {
                        alive = self.wake.changed() => if !alive { return None },
                        () = reread => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a function returns, without calling it.
    fn future_size<A, F>(_: fn(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn an_idle_reader_holds_a_small_future() {
        // Every idle standalone stream holds one of these for as long as it is open: 10,000
        // streams at the 14.8 KiB it took before the read was boxed cost 145 MiB.
        let size = future_size(Reader::next);
        assert!(size <= 2048, "Reader::next's future is {size} bytes");
    }

    #[test]
    fn a_principal_is_pruned_at_most_once_per_interval() {
        let throttle = PruneThrottle::new(Duration::from_secs(10));
        let start = std::time::Instant::now();
        assert!(throttle.due("alice", start));
        assert!(!throttle.due("alice", start + Duration::from_secs(9)));
        assert!(throttle.due("bob", start + Duration::from_secs(9)));
        assert!(throttle.due("alice", start + Duration::from_secs(10)));
        assert!(!throttle.due("alice", start + Duration::from_secs(11)));
    }
}
