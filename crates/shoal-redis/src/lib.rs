//! The Redis [`SessionHost`](shoal_core::host::SessionHost): session records, ordered stream
//! logs with resume, node inboxes and broadcast, and the expiring key-value store, shared by
//! every replica of a deployment.
//!
//! [`RedisHost`] keeps exactly the semantics of `shoal_core::host` (the in-memory host is the
//! reference; both pass `shoal_core::host::suite`). It is built on `fred` and uses two
//! connections per process (per master in a Redis Cluster), whatever the number of sessions
//! and open streams: one for commands (pipelined across tasks by `fred`) and one in pub/sub
//! mode.
//!
//! It runs on one Redis server (`redis://`, `rediss://`) or on a Redis Cluster
//! (`redis-cluster://host:port` of any master, `rediss-cluster://` for TLS; see
//! [Redis Cluster](#redis-cluster)).
//!
//! # Key schema
//!
//! `<p>` is [`RedisHostConfig::key_prefix`] (default `shoal`), `<s>` a session id, `<t>` a
//! stream id. Every key and channel of one session carries `{<s>}` as its Cluster hash tag, so
//! they share one slot and one Lua script can touch them atomically.
//!
//! | name | type | content | lifetime |
//! | --- | --- | --- | --- |
//! | `<p>:{<s>}:session` | hash | `record` (the [`SessionRecord`](shoal_core::session::SessionRecord) as JSON, as created), `created_ms` (Redis clock), `standalone` (stream id), `level` (JSON log level), `sub:<uri>` per subscription, `seq:<t>` (last position of stream `<t>`: the counter, and the index of the session's streams), `end:<t>` (position of `End`) | `PEXPIRE min(idle_timeout, lifetime left)` by every write; by reads, see below |
//! | `<p>:{<s>}:stream:<t>` | stream | one entry per event, id `0-<seq>`, fields `p` (payload: `m<message>`, `d` for Disconnect, `e` for End) and `t` (append time, ms); capped by `XADD MAXLEN ~ max_events_per_stream` and by age (`event_retention`) | `PEXPIRE min(event_retention, lifetime left)` at each append; deleted with the session |
//! | `<p>:{<s>}:wake:<t>` | channel | wake-up after an append (the position) or on delete (`0`) | — |
//! | `<p>:node:<node>` | channel | JSON [`NodeEvent`](shoal_core::host::NodeEvent)s for one node | — |
//! | `<p>:broadcast` | channel | JSON [`NodeEvent`](shoal_core::host::NodeEvent)s for every node | — |
//! | `<p>:alive:<node>` | string | `1` while the node's heartbeat is recent | `PX node_ttl`, renewed every `heartbeat_interval` |
//! | `<p>:kv:{<ns>:<id>}` | string | one key-value entry: namespace `<ns>`, id `<id>` with `%`, `{`, `}` percent-encoded | `PX` of the entry's expiry, set by every write |
//!
//! The position counter lives in the session hash, so it survives the trimming or expiry of the
//! log: positions stay gapless, and a resume from a trimmed position is `EventExpired`.
//!
//! # Commands and round trips
//!
//! Each script is one `EVALSHA` (loaded once per connection; `EVAL` once more after a
//! `NOSCRIPT`, e.g. when Redis restarted). Times come from Redis (`TIME`), except in the
//! session read, which runs no script: it is the one operation of every request, and a Lua call
//! costs Redis several times the CPU of the plain commands it would run. That read refreshes the
//! idle timer only now and then (each replica at most once per tenth of the idle timeout, to
//! the idle timeout plus that tenth: a session lives at least one idle timeout after its last
//! request) and checks the lifetime on the replica's clock against `created_ms`, destroying a
//! session past it; so a session's hash may outlive its lifetime by up to one idle timeout,
//! unreadable. The reads of concurrent requests go out together: a request's read joins a
//! queue, and one task sends what is queued as one pipeline, with at most 4 pipelines out at
//! once (about 10% more `tools/call`s per second and a quarter less Redis CPU than a round
//! trip each, A/B on 2 cores), and the reads of one session in a pipeline share one `HGETALL`
//! (concurrent requests of one client: 15% more `tools/call`s per second on one session).
//! Each read is still sent after its request arrived, so it sees every delete that came
//! before. A reply equal to the last one of that session reuses the record decoded then.
//!
//! | operation | round trips | what runs in Redis |
//! | --- | --- | --- |
//! | `create_session` | 1; 2 with a principal; 3 when refused. A full set not pruned in the last tenth of the idle timeout adds a prune: `ZRANGE`, one `EXISTS` per member (concurrent), and if some are gone `ZREM` and a second `reserve` | `create` script (`DEL`, `HSET`, `PEXPIRE`); with a principal, the `reserve` script on the principal's set (`ZREMRANGEBYSCORE`, `ZCARD`, `ZADD`, `PEXPIRE`); when refused, the `delete` script |
//! | `session` | 1, shared with concurrent requests' reads (above) | `HGETALL` (no script); at most once per tenth of the idle timeout per replica, pipelined with it, `PEXPIRE` (idle timeout + a tenth); `delete_session` when past its lifetime |
//! | `update_session` | 1 | `HGET created_ms`, `PEXPIRE`, `HSET`/`HDEL` |
//! | `delete_session` | 1; 2 with a principal | `HGET principal`, `HKEYS`, `DEL` of the hash and each log, `PUBLISH` `0` on each wake channel, `PUBLISH` `SessionClosed` on the broadcast channel; then `ZREM` from the principal's set |
//! | `append` | 1 | `HGET created_ms`, `PEXPIRE`, `HINCRBY seq:<t>`, `XADD 0-<seq> MAXLEN ~`, `XRANGE - + COUNT 1` (+ `XDEL` of events past retention), `PEXPIRE` of the log, `PUBLISH` on the wake channel |
//! | `subscribe` | 2, +1 for the first reader of that stream in the process | `open` script (`HGET`s, `PEXPIRE`, `XRANGE - + COUNT 1`); `SUBSCRIBE` + `PING` (pipelined, on the shared pub/sub connection: `fred` resolves `SUBSCRIBE` once written, the `PONG` proves it applied); then the reader's first `read` (lazily, on first poll) |
//! | each wake-up of a reader | 1 per 256 events | `read` script: `EXISTS`, `HGET seq:<t>`, `HGET end:<t>`, `XRANGE 0-<cursor+1> + COUNT 256` |
//! | `send_to_node`, `broadcast` | 1 | `PUBLISH` |
//! | `ping` | 1 | `PING` (and the pub/sub connection must be up) |
//! | key-value: `put_if_absent`, `put`, `get`, `take`, `delete` | 1 | `SET NX PX`, `SET PX`, `GET`, `GETDEL`, `DEL` |
//! | key-value: `compare_and_swap` | 1 | `swap` script (`GET`, then `SET PX` or `DEL`) |
//!
//! `take` is `GETDEL`: the key-value store needs Redis 6.2 or later (the Helm chart runs 7.4).
//!
//! Readers never block a connection (no `XREAD BLOCK`). A reader subscribes to its stream's
//! wake channel through the process's one pub/sub connection (`SUBSCRIBE` for the first reader
//! of a channel, `UNSUBSCRIBE` after the last) and re-reads its log from its own cursor on each
//! wake-up, after every reconnection of the pub/sub connection, and every `reread_interval`
//! when idle: pub/sub is at-most-once, so a lost wake-up costs latency, never an event.
//!
//! # Redis Cluster
//!
//! Every operation is correct on a Cluster (tested on three masters: the host suite, two nodes
//! sharing sessions, and the MCP conformance suite through three replicas):
//!
//! - **Slot routing.** Every script call names the session hash as `KEYS[1]` and is sent to
//!   the master owning `KEYS[1]`'s slot (the slot is computed here and given to `fred` as
//!   `ClusterHash::Custom`: for a custom command `fred` would otherwise hash the first string
//!   argument, the script's SHA, and every call would cost a `MOVED` redirection; with one
//!   command attempt it failed). Sessions spread over the masters by their id.
//! - **Script keys.** `append`, `open` and `read` pass both keys they touch (`KEYS[1]` the
//!   session hash, `KEYS[2]` the log). `delete_session` and the lifetime check (`destroy`)
//!   also delete logs named in the hash (`seq:<t>` fields) that cannot be known before the
//!   script runs: they are built inside the script from `<p>:{<s>}:`, so they carry the same
//!   hash tag, hence the same slot, on the same master; Redis allows a script to touch
//!   undeclared keys of the slot it runs in. (During a live resharding of that slot, a log
//!   already moved would be missed by this `DEL` and left to its TTL, `event_retention`.)
//! - **Scripts cache.** `SCRIPT LOAD` runs on every master at connect. A master that has not
//!   seen it (a promoted replica after a failover, a master added later, `SCRIPT FLUSH`)
//!   answers `NOSCRIPT`, and the call is repeated once as `EVAL` on the same master, which
//!   caches the script there.
//! - **Pub/sub: classic channels, cluster-wide.** `PUBLISH` (also from inside a script) reaches
//!   subscribers on every node of a Cluster, so wake-ups, node inboxes and broadcasts need no
//!   routing. `fred` sends every classic (un)subscription of a client to the one master owning
//!   the slot of the client's id; the `PING` that proves a `SUBSCRIBE` was applied is sent to
//!   that same slot. The cost: each wake-up crosses the cluster bus to every master (traffic
//!   per append grows with the number of masters). Sharded `SPUBLISH`/`SSUBSCRIBE` for the
//!   per-stream channels would keep a wake-up on its session's master; it is not done yet.
//! - Liveness keys (`<p>:alive:<node>`) are single keys in any slot.
//! - **Key-value entries** are one key each, tagged by their whole name
//!   (`{<ns>:<escaped id>}`): they spread over the masters, and every operation, the swap
//!   script included, names that one key and runs on its master.
//! - **Sessions per principal.** `<p>:principal:{<principal>}:sessions` is a sorted set of the
//!   principal's session ids, scored by the end of each one's lifetime (creation + maximum
//!   lifetime, Redis clock): a live session is never dropped from the count before it can have
//!   expired. Its hash tag is the principal, not a session: a principal's sessions spread over
//!   the masters, so the set and a session's hash are never touched by one script. The check
//!   and the add are one script on the set (atomic: concurrent creates on any replicas cannot
//!   overshoot); the session hash is written just before, and destroyed again on a refusal;
//!   `delete_session` removes the id with a `ZREM` after its script. A session that expired
//!   while idle keeps its slot until its score passes, or until a create finds the set full and
//!   prunes the ids whose hash is gone (at most once per tenth of the idle timeout per
//!   principal and replica). Since every id enters the set only after its hash exists, a
//!   missing hash means the session is gone for good. A lost `ZREM` costs the same: the slot
//!   frees at the next prune.
//!
//! # Failures
//!
//! Commands fail fast while the connection is known to be down and are bounded by
//! `command_timeout` (a command sent in the instant between the loss and its detection waits
//! for that); both surface as `HostError::Unavailable`. A live subscription whose re-read fails
//! yields one `Unavailable` and ends; the client resumes from its last event id. Commands are never retried behind the caller's back: an
//! `append` whose connection broke may or may not have been applied, and the caller is told
//! `Unavailable`. The clients reconnect for ever, every `reconnect_delay`; the pub/sub
//! connection resubscribes and wakes every reader, which re-reads its log.
//!
//! # Known limits
//!
//! - Idle expiry is Redis's own `PEXPIRE`: a session that expires this way is not announced
//!   with `SessionClosed`; its readers notice at their next wake-up or re-read.
//! - A log's TTL is `min(event_retention, lifetime left)` from its last append, not the
//!   session's idle timer: after an idle expiry its logs linger, unreachable (every read checks
//!   the session first), for at most `event_retention`. `delete_session` removes them at once.
//! - Age trimming drops at most 8 expired events per append (plus the log's TTL); length
//!   trimming is approximate (`MAXLEN ~` keeps at least `max_events_per_stream`).
//! - Channels are classic pub/sub (`PUBLISH` reaches every node of a Cluster, over the
//!   cluster bus); sharded `SPUBLISH` for the per-session channels is future work.
//!
//! # Example
//!
//! A host on Redis, for an engine (or for `shoal::Builder::host`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use shoal_core::ids::NodeId;
//! use shoal_redis::{RedisHost, RedisHostConfig};
//!
//! # async fn connect() -> Result<(), shoal_core::host::HostError> {
//! let config = RedisHostConfig::new("redis://127.0.0.1:6379", NodeId::with_random_suffix("api"));
//! let host: shoal_core::host::SharedHost = Arc::new(RedisHost::connect(config).await?);
//! # let _ = host;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod codec;
mod config;
mod host;
mod keys;
mod memo;
pub mod metrics;
mod reads;
mod refresh;
mod scripts;
mod wake;

pub use config::{
    ConfigError, DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_EVENT_RETENTION,
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEY_PREFIX,
    DEFAULT_MAX_EVENTS_PER_STREAM, DEFAULT_MAX_LIFETIME, DEFAULT_NODE_TTL, DEFAULT_RECONNECT_DELAY,
    DEFAULT_REREAD_INTERVAL, RedisHostConfig,
};
pub use host::RedisHost;
