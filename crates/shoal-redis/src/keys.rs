//! Key and channel names. Every key and channel of one session carries the session id as a
//! Cluster hash tag, so they all live in one slot and one Lua script may touch them together.
//!
//! A principal's session set carries the principal as its own hash tag: it lives in another
//! slot than its sessions, so no script touches it together with a session's keys (see
//! `RedisHost::create_session`).

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
        for c in principal.chars() {
            match c {
                '%' => tag.push_str("%25"),
                '{' => tag.push_str("%7B"),
                '}' => tag.push_str("%7D"),
                c => tag.push(c),
            }
        }
        format!("{}:principal:{{{tag}}}:sessions", self.prefix)
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
}
