//! The in-memory host: one process, same semantics as the Redis host. The embedded default for
//! a single replica, and the reference the shared host suite is written against.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::BroadcastStream;

mod kv;

use super::{
    Broadcast, HostError, LogSource, NodeBus, NodeEvent, ReadFrom, SessionStore, SessionUpdate,
    StoredEvent, StreamEvent, StreamLog, Subscription, follow,
};
use crate::ids::{NodeId, SessionId, StreamId};
use crate::session::SessionRecord;

/// Limits of the in-memory host.
#[derive(Debug, Clone)]
pub struct MemoryHostConfig {
    /// A session unused for this long is gone.
    pub idle_timeout: Duration,
    /// A session older than this is gone, however busy.
    pub max_lifetime: Duration,
    /// Events kept per stream; older ones are trimmed.
    pub max_events_per_stream: usize,
    /// Events older than this are trimmed.
    pub event_retention: Duration,
}

impl Default for MemoryHostConfig {
    fn default() -> Self {
        MemoryHostConfig {
            idle_timeout: super::DEFAULT_IDLE_TIMEOUT,
            max_lifetime: super::DEFAULT_MAX_LIFETIME,
            max_events_per_stream: super::DEFAULT_MAX_EVENTS_PER_STREAM,
            event_retention: super::DEFAULT_EVENT_RETENTION,
        }
    }
}

/// Sessions, logs, inboxes and key-value entries in this process's memory.
#[derive(Clone)]
pub struct MemoryHost {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeId,
    config: MemoryHostConfig,
    sessions: Mutex<Sessions>,
    node_events: broadcast::Sender<NodeEvent>,
    /// The key-value store's entries.
    kv: Mutex<kv::Entries>,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<SessionId, SessionEntry>,
    /// The sessions of each principal (expired ones included until removed), for the limit.
    by_principal: HashMap<String, HashSet<SessionId>>,
    last_sweep: Option<Instant>,
}

impl Sessions {
    fn insert(&mut self, entry: SessionEntry) {
        if let Some(principal) = &entry.record.principal {
            self.by_principal
                .entry(principal.clone())
                .or_default()
                .insert(entry.record.id.clone());
        }
        self.by_id.insert(entry.record.id.clone(), entry);
    }

    /// Removes a session from both indexes; every removal goes through here.
    fn remove(&mut self, id: &SessionId) -> Option<SessionEntry> {
        let entry = self.by_id.remove(id)?;
        if let Some(principal) = &entry.record.principal
            && let Some(ids) = self.by_principal.get_mut(principal)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_principal.remove(principal);
            }
        }
        Some(entry)
    }
}

struct SessionEntry {
    record: SessionRecord,
    created: Instant,
    last_seen: Instant,
    streams: HashMap<StreamId, Arc<Log>>,
}

/// One stream's log. Readers wait on `version`, which changes on every append and on close.
struct Log {
    state: Mutex<LogState>,
    version: watch::Sender<u64>,
}

#[derive(Default)]
struct LogState {
    events: VecDeque<(u64, Instant, StreamEvent)>,
    /// The last sequence number handed out.
    last_seq: u64,
    /// The session is gone: readers stop.
    closed: bool,
    /// `End` was appended: readers past it stop.
    ended: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryHost {
    /// A host for node `node`.
    pub fn new(node: NodeId, config: MemoryHostConfig) -> Self {
        let (node_events, _) = broadcast::channel(4096);
        MemoryHost {
            inner: Arc::new(Inner {
                node,
                config,
                sessions: Mutex::new(Sessions::default()),
                node_events,
                kv: Mutex::new(kv::Entries::default()),
            }),
        }
    }

    fn expired(&self, entry: &SessionEntry, now: Instant) -> bool {
        now.duration_since(entry.last_seen) >= self.inner.config.idle_timeout
            || now.duration_since(entry.created) >= self.inner.config.max_lifetime
    }

    /// Removes expired sessions, at most every few seconds; returns the ids removed.
    fn sweep(&self, sessions: &mut Sessions, now: Instant) -> Vec<SessionId> {
        if sessions
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(5))
        {
            return Vec::new();
        }
        sessions.last_sweep = Some(now);
        let dead: Vec<SessionId> = sessions
            .by_id
            .iter()
            .filter(|(_, entry)| self.expired(entry, now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead {
            if let Some(entry) = sessions.remove(id) {
                close_streams(entry);
            }
        }
        dead
    }

    /// Whether `principal` may create another session; removes its expired sessions (returned
    /// in `expired`) so that they free their slots now, not at the next sweep.
    fn has_room(
        &self,
        sessions: &mut Sessions,
        principal: &str,
        max: usize,
        now: Instant,
        expired: &mut Vec<SessionId>,
    ) -> bool {
        let Some(ids) = sessions.by_principal.get(principal) else {
            return true;
        };
        let dead: Vec<SessionId> = ids
            .iter()
            .filter(|id| {
                sessions
                    .by_id
                    .get(*id)
                    .is_none_or(|entry| self.expired(entry, now))
            })
            .cloned()
            .collect();
        for id in dead {
            if let Some(entry) = sessions.remove(&id) {
                close_streams(entry);
                expired.push(id);
            }
        }
        sessions
            .by_principal
            .get(principal)
            .is_none_or(|ids| ids.len() < max)
    }

    fn announce_closed(&self, ids: Vec<SessionId>) {
        for id in ids {
            let _ = self
                .inner
                .node_events
                .send(NodeEvent::Broadcast(Broadcast::SessionClosed(id)));
        }
    }

    fn stream_log(
        &self,
        session: &SessionId,
        stream: &StreamId,
        create: bool,
    ) -> Result<Arc<Log>, HostError> {
        let now = Instant::now();
        let mut sessions = lock(&self.inner.sessions);
        let entry = sessions
            .by_id
            .get_mut(session)
            .ok_or(HostError::SessionNotFound)?;
        if let Some(log) = entry.streams.get(stream) {
            return Ok(log.clone());
        }
        if !create && *stream != entry.record.standalone_stream {
            return Err(HostError::UnknownStream);
        }
        entry.last_seen = now;
        let log = Arc::new(Log {
            state: Mutex::new(LogState::default()),
            version: watch::channel(0).0,
        });
        entry.streams.insert(stream.clone(), log.clone());
        Ok(log)
    }
}

fn close_streams(entry: SessionEntry) {
    for log in entry.streams.into_values() {
        lock(&log.state).closed = true;
        log.version.send_modify(|v| *v += 1);
    }
}

impl Log {
    fn trim(&self, state: &mut LogState, config: &MemoryHostConfig, now: Instant) {
        while state.events.len() > config.max_events_per_stream
            || state
                .events
                .front()
                .is_some_and(|(_, at, _)| now.duration_since(*at) > config.event_retention)
        {
            state.events.pop_front();
        }
    }

    /// Events after `cursor`, or `None` when the log is closed and drained.
    fn read_after(&self, cursor: u64) -> Result<Option<Vec<StoredEvent>>, HostError> {
        let state = lock(&self.state);
        let first = state
            .events
            .front()
            .map_or(state.last_seq + 1, |(seq, _, _)| *seq);
        if cursor + 1 < first {
            return Err(HostError::EventExpired);
        }
        let batch: Vec<StoredEvent> = state
            .events
            .iter()
            .filter(|(seq, _, _)| *seq > cursor)
            .map(|(seq, _, event)| StoredEvent {
                seq: *seq,
                event: event.clone(),
            })
            .collect();
        if batch.is_empty() && (state.closed || state.ended) {
            return Ok(None);
        }
        Ok(Some(batch))
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryHost {
    async fn create_session(
        &self,
        record: &SessionRecord,
        max_per_principal: usize,
    ) -> Result<(), HostError> {
        let now = Instant::now();
        let (swept, room) = {
            let mut sessions = lock(&self.inner.sessions);
            let mut swept = self.sweep(&mut sessions, now);
            let room = match &record.principal {
                Some(principal) if max_per_principal > 0 => {
                    self.has_room(&mut sessions, principal, max_per_principal, now, &mut swept)
                }
                _ => true,
            };
            if room {
                // An id already in use is replaced, as the Redis host does.
                if let Some(previous) = sessions.remove(&record.id) {
                    close_streams(previous);
                }
                sessions.insert(SessionEntry {
                    record: record.clone(),
                    created: now,
                    last_seen: now,
                    streams: HashMap::new(),
                });
            }
            (swept, room)
        };
        self.announce_closed(swept);
        if room {
            Ok(())
        } else {
            Err(HostError::PrincipalAtLimit)
        }
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, HostError> {
        let now = Instant::now();
        let mut sessions = lock(&self.inner.sessions);
        let Some(entry) = sessions.by_id.get_mut(id) else {
            return Ok(None);
        };
        if self.expired(entry, now) {
            if let Some(entry) = sessions.remove(id) {
                close_streams(entry);
            }
            drop(sessions);
            self.announce_closed(vec![id.clone()]);
            return Ok(None);
        }
        entry.last_seen = now;
        Ok(Some(entry.record.clone()))
    }

    async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<(), HostError> {
        let mut sessions = lock(&self.inner.sessions);
        let entry = sessions
            .by_id
            .get_mut(id)
            .ok_or(HostError::SessionNotFound)?;
        match update {
            SessionUpdate::LogLevel(level) => entry.record.log_level = Some(level),
            SessionUpdate::Subscribe(uri) => {
                entry.record.subscriptions.insert(uri);
            }
            SessionUpdate::Unsubscribe(uri) => {
                entry.record.subscriptions.remove(&uri);
            }
        }
        Ok(())
    }

    async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionId>, HostError> {
        let sessions = lock(&self.inner.sessions);
        Ok(sessions
            .by_principal
            .get(principal)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn delete_session(&self, id: &SessionId) -> Result<bool, HostError> {
        let removed = lock(&self.inner.sessions).remove(id);
        let existed = removed.is_some();
        if let Some(entry) = removed {
            close_streams(entry);
            self.announce_closed(vec![id.clone()]);
        }
        Ok(existed)
    }
}

#[async_trait::async_trait]
impl StreamLog for MemoryHost {
    async fn append(
        &self,
        session: &SessionId,
        stream: &StreamId,
        event: StreamEvent,
    ) -> Result<u64, HostError> {
        let log = self.stream_log(session, stream, true)?;
        let seq = {
            let mut state = lock(&log.state);
            if state.closed {
                return Err(HostError::SessionNotFound);
            }
            if state.ended {
                return Err(HostError::StreamEnded);
            }
            state.last_seq += 1;
            let seq = state.last_seq;
            state.ended |= event.ends_stream();
            let now = Instant::now();
            state.events.push_back((seq, now, event));
            log.trim(&mut state, &self.inner.config, now);
            seq
        };
        log.version.send_replace(seq);
        Ok(seq)
    }

    async fn subscribe(
        &self,
        session: &SessionId,
        stream: &StreamId,
        from: ReadFrom,
    ) -> Result<Subscription, HostError> {
        let log = self.stream_log(session, stream, false)?;
        let changes = log.version.subscribe();
        let after = {
            let state = lock(&log.state);
            match from {
                ReadFrom::Tail => state.last_seq,
                ReadFrom::After(seq) if seq > state.last_seq => {
                    return Err(HostError::EventFromTheFuture);
                }
                ReadFrom::After(seq) => seq,
            }
        };
        // Fail now, not on first poll, when the position was trimmed.
        log.read_after(after)?;
        let events = follow(LogReader { log, changes }, after).boxed();
        Ok(Subscription { after, events })
    }
}

#[async_trait::async_trait]
impl NodeBus for MemoryHost {
    fn node_id(&self) -> &NodeId {
        &self.inner.node
    }

    async fn send_to_node(&self, node: &NodeId, event: NodeEvent) -> Result<(), HostError> {
        if *node != self.inner.node {
            // One process, one node: an id naming another node is stale (a restart) or forged.
            return Ok(());
        }
        let _ = self.inner.node_events.send(event);
        Ok(())
    }

    async fn broadcast(&self, event: NodeEvent) -> Result<(), HostError> {
        let _ = self.inner.node_events.send(event);
        Ok(())
    }

    fn node_events(&self) -> BoxStream<'static, NodeEvent> {
        BroadcastStream::new(self.inner.node_events.subscribe())
            .filter_map(|event| async move { event.ok() })
            .boxed()
    }

    async fn node_alive(&self, node: &NodeId) -> Result<bool, HostError> {
        // One process, one node: any other node id is from a previous life of this process.
        Ok(*node == self.inner.node)
    }

    async fn ping(&self) -> Result<(), HostError> {
        Ok(())
    }
}

/// One log as one subscription reads it: waits for appends and close on `version`.
struct LogReader {
    log: Arc<Log>,
    changes: watch::Receiver<u64>,
}

impl LogSource for LogReader {
    async fn read_after(&mut self, cursor: u64) -> Result<Option<Vec<StoredEvent>>, HostError> {
        self.log.read_after(cursor)
    }

    async fn changed(&mut self) -> bool {
        self.changes.changed().await.is_ok()
    }
}
