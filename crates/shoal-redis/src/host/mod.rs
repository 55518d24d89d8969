//! [`RedisHost`]: the [`SessionHost`](shoal_core::host::SessionHost) over Redis. This file
//! connects and holds what every part shares (the connections, the scripts, how a script or a
//! command is sent) and the node bus; each other part of the contract has its own file:
//! [`sessions`] (records and the limit per principal), [`streams`] (logs and their readers),
//! [`kv`] (the key-value store).

mod kv;
mod sessions;
mod streams;

use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, SubscriberClient, WithOptions};
use fred::interfaces::{ClientLike, EventInterface, KeysInterface, LuaInterface, PubsubInterface};
use fred::types::config::{Config, Options, ReconnectPolicy, Server};
use fred::types::{Builder, ClusterHash, CustomCommand, Expiration, Value};
use fred::util::redis_keyslot;
use futures::StreamExt;
use futures::stream::BoxStream;
use shoal_core::error::Cause;
use shoal_core::host::{Broadcast, HostError, NodeBus, NodeEvent};
use shoal_core::ids::{NodeId, SessionId};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, RedisHostConfig};
use crate::keys::{Keys, SessionKeys};
use crate::memo::RecordMemo;
use crate::metrics::observe;
use crate::reads::SessionReads;
use crate::refresh::IdleRefresh;
use crate::scripts::{Script, Scripts};
use crate::wake::{self, Wakeups};
use sessions::PruneThrottle;

/// Node events buffered for a slow consumer of [`NodeBus::node_events`].
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

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> HostError {
    HostError::Unavailable(Cause::new(e))
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
            .map_err(|e| unavailable(ConfigError::Url(Cause::new(e))))?;
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

impl Inner {
    /// `EVALSHA`, or `EVAL` once when Redis lost its script cache; observed as `command`.
    async fn eval(
        &self,
        command: &'static str,
        script: &Script,
        keys: &[&str],
        args: Vec<impl Into<Value>>,
    ) -> Result<Value, HostError> {
        let mut call: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
        call.push(Value::from(script.sha.as_str()));
        call.push(Value::from(keys.len() as i64));
        call.extend(keys.iter().map(|k| Value::from(*k)));
        call.extend(args.into_iter().map(Into::into));
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
}

#[async_trait::async_trait]
impl NodeBus for RedisHost {
    fn node_id(&self) -> &NodeId {
        &self.inner.config.node
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
