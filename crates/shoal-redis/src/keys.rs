//! Key and channel names. Every key and channel of one session carries the session id as a
//! Cluster hash tag, so they all live in one slot and one Lua script may touch them together.

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
        assert_eq!(
            session.stream(&stream),
            format!("shoal:{tag}:stream:{stream}")
        );
        assert_eq!(session.wake(&stream), format!("shoal:{tag}:wake:{stream}"));
        assert_eq!(keys.node_channel(&NodeId::new("n1")), "shoal:node:n1");
        assert_eq!(keys.broadcast_channel(), "shoal:broadcast");
    }
}
