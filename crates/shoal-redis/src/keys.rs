//! Key and channel names. Every key and channel of one session carries the session id as a
//! Cluster hash tag, so they all live in one slot and one Lua script may touch them together.
//!
//! A principal's session set carries the principal as its own hash tag: it lives in another
//! slot than its sessions, so no script touches it together with a session's keys (see
//! `RedisHost::create_session`).
//!
//! A key-value entry is one key, `<prefix>:kv:{<namespace>:<id>}`, tagged by its whole name:
//! each entry is one slot, entries spread over the masters, and every operation on an entry
//! (a command, or the swap script) names that one key. It cannot meet a session's keys
//! (`<prefix>:{…`) or any other: only these start with `<prefix>:kv:`.

use shoal_core::host::KvKey;
use shoal_core::ids::{NodeId, SessionId, StreamId};

/// The names of one deployment's keys and channels.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

/// The names belonging to one session.
#[derive(Debug, Clone)]
pub(crate) struct SessionKeys {
    /// `<prefix>:{<session>}:`: what the scripts append `stream:<id>` or `wake:<id>` to.
    pub(crate) base: String,
    /// `<prefix>:{<session>}:session`: the session hash.
    pub(crate) session: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn session(&self, id: &SessionId) -> SessionKeys {
        let base = format!("{}:{{{}}}:", self.prefix, id.as_str());
        SessionKeys {
            session: format!("{base}session"),
            base,
        }
    }

    /// `<prefix>:{<s>}:session` alone, for the read of every request (without the two
    /// `format!`s of [`Keys::session`], about 1% of a `tools/call` on Redis).
    pub(crate) fn session_hash(&self, id: &SessionId) -> String {
        let id = id.as_str();
        let mut key = String::with_capacity(self.prefix.len() + id.len() + 11);
        key.push_str(&self.prefix);
        key.push_str(":{");
        key.push_str(id);
        key.push_str("}:session");
        key
    }

    /// `<prefix>:principal:{<principal>}:sessions`: the sorted set of the principal's session
    /// ids, each scored by the time (ms) past which it cannot be live. `{`, `}` and `%` of the
    /// principal are percent-encoded: the hash tag is the whole principal, and distinct
    /// principals get distinct keys.
    pub(crate) fn principal_sessions(&self, principal: &str) -> String {
        let mut tag = String::with_capacity(principal.len());
        push_escaped(&mut tag, principal);
        format!("{}:principal:{{{tag}}}:sessions", self.prefix)
    }

    /// `<prefix>:kv:{<namespace>:<id>}`: one key-value entry. The id is escaped as a
    /// principal is (`%`, `{`, `}`), so the tag is the whole name and distinct ids stay
    /// distinct; a namespace holds none of `:{}%` (`KvNamespace` refuses them), so the first
    /// `:` inside the tag ends it, and distinct (namespace, id) pairs get distinct keys.
    pub(crate) fn kv(&self, key: &KvKey) -> String {
        let namespace = key.namespace().as_str();
        let mut name =
            String::with_capacity(self.prefix.len() + namespace.len() + key.id().len() + 7);
        name.push_str(&self.prefix);
        name.push_str(":kv:{");
        name.push_str(namespace);
        name.push(':');
        push_escaped(&mut name, key.id());
        name.push('}');
        name
    }

    /// `<prefix>:node:<node>`: one node's inbox channel.
    pub(crate) fn node_channel(&self, node: &NodeId) -> String {
        format!("{}:node:{}", self.prefix, node.as_str())
    }

    /// `<prefix>:alive:<node>`: present while the node's heartbeat is recent.
    pub(crate) fn alive(&self, node: &NodeId) -> String {
        format!("{}:alive:{}", self.prefix, node.as_str())
    }

    /// `<prefix>:broadcast`: the channel every node listens to.
    pub(crate) fn broadcast_channel(&self) -> String {
        format!("{}:broadcast", self.prefix)
    }
}

/// Appends `text` with `%`, `{` and `}` percent-encoded: inside a hash tag, a brace would end
/// the tag early (and let `a}b`, `a}c` share a slot), and `%` is escaped so that an encoded
/// text cannot collide with a literal one.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
}

impl SessionKeys {
    /// `<prefix>:{<session>}:stream:<stream>`: the stream's log (a Redis Stream).
    pub(crate) fn stream(&self, stream: &StreamId) -> String {
        format!("{}stream:{}", self.base, stream.as_str())
    }

    /// `<prefix>:{<session>}:wake:<stream>`: the stream's wake-up channel.
    pub(crate) fn wake(&self, stream: &StreamId) -> String {
        format!("{}wake:{}", self.base, stream.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_session_shares_its_hash_tag() {
        let keys = Keys::new("shoal");
        let id: SessionId = "AAAAAAAAAAAAAAAAAAAAAA"
            .parse()
            .unwrap_or_else(|_| SessionId::random());
        let stream = StreamId::random();
        let session = keys.session(&id);
        let tag = format!("{{{id}}}");
        assert_eq!(session.session, format!("shoal:{tag}:session"));
        assert_eq!(keys.session_hash(&id), session.session);
        assert_eq!(
            session.stream(&stream),
            format!("shoal:{tag}:stream:{stream}")
        );
        assert_eq!(session.wake(&stream), format!("shoal:{tag}:wake:{stream}"));
        assert_eq!(keys.node_channel(&NodeId::new("n1")), "shoal:node:n1");
        assert_eq!(keys.broadcast_channel(), "shoal:broadcast");
    }

    #[test]
    fn a_principal_set_is_tagged_by_the_whole_principal() {
        let keys = Keys::new("shoal");
        assert_eq!(
            keys.principal_sessions("https://issuer.example|alice"),
            "shoal:principal:{https://issuer.example|alice}:sessions"
        );
        // Braces would end the tag early (and let `a}b`, `a}c` share a slot); `%` is escaped so
        // that an encoded principal cannot collide with a literal one.
        assert_eq!(
            keys.principal_sessions("a}b{c%7D"),
            "shoal:principal:{a%7Db%7Bc%257D}:sessions"
        );
        assert_ne!(
            keys.principal_sessions("a}"),
            keys.principal_sessions("a%7D")
        );
    }

    #[test]
    fn a_kv_entry_is_one_key_tagged_by_its_whole_name() {
        use shoal_core::host::KvNamespace;
        const CODES: KvNamespace = KvNamespace::new("oauth-code");
        let keys = Keys::new("shoal");
        assert_eq!(
            keys.kv(&KvKey::new(CODES, "abc")),
            "shoal:kv:{oauth-code:abc}"
        );
        assert_eq!(
            keys.kv(&KvKey::new(CODES, "a}b{c%7D:d")),
            "shoal:kv:{oauth-code:a%7Db%7Bc%257D:d}"
        );
        assert_ne!(
            keys.kv(&KvKey::new(CODES, "a}")),
            keys.kv(&KvKey::new(CODES, "a%7D"))
        );
    }
}
