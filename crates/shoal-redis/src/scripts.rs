//! The Lua scripts that make each operation one atomic round trip, and how they are called.
//!
//! Every script is loaded once (`SCRIPT LOAD` at connect) and then run with `EVALSHA`; when
//! Redis answers `NOSCRIPT` (it restarted, or failed over to a replica without the script
//! cache) the call is repeated once with `EVAL`, which also caches the script again.
//!
//! Scripts that may refresh or destroy a session take the same first five arguments
//! (`common_args` in the host): idle timeout (ms), maximum lifetime (ms), the session's key base
//! `<prefix>:{<session>}:`, the serialized `SessionClosed` node event, and the broadcast channel.
//! Keys derived from the base inside a script (`stream:<id>`, wake-up channels) share the
//! session's hash tag, hence its Cluster slot.

/// Helpers shared by the scripts; prepended to each.
macro_rules! lua_common {
    () => {
        r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Deletes a session and its logs, wakes their readers and tells every node (unless the
-- channel is '': a session refused at creation, which no node has seen).
local function destroy(key, base, closed, channel)
  local fields = redis.call('HKEYS', key)
  if #fields == 0 then return 0 end
  local streams = {}
  for _, field in ipairs(fields) do
    if string.sub(field, 1, 4) == 'seq:' then streams[string.sub(field, 5)] = true end
  end
  local standalone = redis.call('HGET', key, 'standalone')
  if standalone then streams[standalone] = true end
  redis.call('DEL', key)
  for id in pairs(streams) do
    redis.call('DEL', base .. 'stream:' .. id)
    redis.call('PUBLISH', base .. 'wake:' .. id, '0')
  end
  if channel ~= '' then redis.call('PUBLISH', channel, closed) end
  return 1
end

-- Refreshes the idle timer, bounded by the maximum lifetime. Returns the lifetime left (ms),
-- or nil when the session is missing or has outlived its lifetime (then it is destroyed).
local function touch(key, now)
  local created = redis.call('HGET', key, 'created_ms')
  if not created then return nil end
  local left = tonumber(created) + tonumber(ARGV[2]) - now
  if left <= 0 then
    destroy(key, ARGV[3], ARGV[4], ARGV[5])
    return nil
  end
  redis.call('PEXPIRE', key, math.min(tonumber(ARGV[1]), left))
  return left
end
"#
    };
}

/// `create`: KEYS = `[session]`; ARGV = common, record JSON, standalone stream, level or "",
/// principal or "", subscriptions… Replaces any previous hash under the key.
const CREATE: &str = concat!(
    lua_common!(),
    r#"
local now = now_ms()
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[6], 'created_ms', now, 'standalone', ARGV[7])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'level', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'principal', ARGV[9]) end
for i = 10, #ARGV do redis.call('HSET', KEYS[1], 'sub:' .. ARGV[i], '1') end
redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[1]), tonumber(ARGV[2])))
return 1
"#
);

/// `update`: KEYS = `[session]`; ARGV = common, op (`level`, `sub`, `unsub`), argument.
/// 1, or 0 when the session is gone.
const UPDATE: &str = concat!(
    lua_common!(),
    r#"
if not touch(KEYS[1], now_ms()) then return 0 end
if ARGV[6] == 'level' then
  redis.call('HSET', KEYS[1], 'level', ARGV[7])
elseif ARGV[6] == 'sub' then
  redis.call('HSET', KEYS[1], 'sub:' .. ARGV[7], '1')
else
  redis.call('HDEL', KEYS[1], 'sub:' .. ARGV[7])
end
return 1
"#
);

/// `delete`: KEYS = `[session]`; ARGV = common. `{existed, principal}`: existed is 1 when the
/// session existed; principal is "" when it had none (the caller removes the session from the
/// principal's set, which lives in another slot).
const DELETE: &str = concat!(
    lua_common!(),
    r#"
local principal = redis.call('HGET', KEYS[1], 'principal') or ''
return {destroy(KEYS[1], ARGV[3], ARGV[4], ARGV[5]), principal}
"#
);

/// `reserve`: KEYS = `[principal's session set]`; ARGV = session id, limit (0: none), maximum
/// lifetime (ms). Forgets sessions past their lifetime, then adds the session scored by the
/// end of its lifetime: 1; or, when the principal already holds the limit, adds nothing: 0.
/// The set expires with its last session, so an idle principal leaves nothing behind.
const RESERVE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local max = tonumber(ARGV[2])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
local lifetime = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + lifetime, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lifetime)
return 1
"#;

/// `append`: KEYS = `[session, stream]`; ARGV = common, stream id, payload, max events,
/// retention (ms), "1" when the event ends the stream. The new sequence number, -1 when the
/// session is gone, -2 when the stream already ended.
const APPEND: &str = concat!(
    lua_common!(),
    r#"
local now = now_ms()
local left = touch(KEYS[1], now)
if not left then return -1 end
local id = ARGV[6]
if redis.call('HEXISTS', KEYS[1], 'end:' .. id) == 1 then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq:' .. id, 1)
if ARGV[10] == '1' then redis.call('HSET', KEYS[1], 'end:' .. id, seq) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '0-' .. seq, 'p', ARGV[7], 't', now)
local oldest = now - tonumber(ARGV[9])
for _ = 1, 8 do
  local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if #head == 0 or tonumber(head[1][2][4]) >= oldest then break end
  redis.call('XDEL', KEYS[2], head[1][1])
end
redis.call('PEXPIRE', KEYS[2], math.min(tonumber(ARGV[9]), left))
redis.call('PUBLISH', ARGV[3] .. 'wake:' .. id, seq)
return seq
"#
);

/// `open`: KEYS = `[session, stream]`; ARGV = common, stream id. `{0, last, first}` (first: the
/// oldest retained position, last + 1 when none is), `{-1}` when the session is gone, `{-2}`
/// when the stream is not the session's.
const OPEN: &str = concat!(
    lua_common!(),
    r#"
if not touch(KEYS[1], now_ms()) then return {-1} end
local last = redis.call('HGET', KEYS[1], 'seq:' .. ARGV[6])
if not last then
  if redis.call('HGET', KEYS[1], 'standalone') ~= ARGV[6] then return {-2} end
  last = 0
end
last = tonumber(last)
local first = last + 1
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #head > 0 then first = tonumber(string.sub(head[1][1], 3)) end
return {0, last, first}
"#
);

/// `read`: KEYS = `[session, stream]`; ARGV = stream id, first position wanted, count.
/// `{0, last, end, seq, payload, seq, payload, …}` (end: the position of `End`, 0 if none), or
/// `{-1}` when the session is gone. Does not refresh the idle timer.
const READ: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local last = redis.call('HGET', KEYS[1], 'seq:' .. ARGV[1]) or '0'
local ended = redis.call('HGET', KEYS[1], 'end:' .. ARGV[1]) or '0'
local out = {0, last, ended}
local entries = redis.call('XRANGE', KEYS[2], '0-' .. ARGV[2], '+', 'COUNT', ARGV[3])
for _, e in ipairs(entries) do
  out[#out + 1] = string.sub(e[1], 3)
  out[#out + 1] = e[2][2]
end
return out
"#;

/// `swap`: KEYS = `[key-value entry]`; ARGV = "1" when a value is expected (else "0": the entry
/// must be absent), the expected value, "1" when there is a new value (else "0": delete),
/// the new value, its expiry (ms). 1 when the entry matched and was replaced, else 0. Values
/// are compared as bytes (Lua strings are binary-safe). Not a session's script: it has none of
/// the common arguments, and its one key is the entry's.
const SWAP: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
else
  redis.call('DEL', KEYS[1])
end
return 1
"#;

/// One script: its source and the SHA1 Redis named it by.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) lua: &'static str,
    pub(crate) sha: String,
}

/// Every script the host runs.
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) update: Script,
    pub(crate) delete: Script,
    pub(crate) append: Script,
    pub(crate) open: Script,
    pub(crate) read: Script,
    pub(crate) reserve: Script,
    pub(crate) swap: Script,
}

impl Scripts {
    /// The sources, in field order.
    pub(crate) const SOURCES: [&'static str; 8] =
        [CREATE, UPDATE, DELETE, APPEND, OPEN, READ, RESERVE, SWAP];

    /// Scripts from their sources and the hashes `SCRIPT LOAD` returned, in field order.
    pub(crate) fn new(mut shas: Vec<String>) -> Option<Self> {
        if shas.len() != Self::SOURCES.len() {
            return None;
        }
        let mut next = |lua: &'static str| Script {
            lua,
            sha: shas.remove(0),
        };
        Some(Scripts {
            create: next(CREATE),
            update: next(UPDATE),
            delete: next(DELETE),
            append: next(APPEND),
            open: next(OPEN),
            read: next(READ),
            reserve: next(RESERVE),
            swap: next(SWAP),
        })
    }
}
