//! What a session is between two requests: the record every replica reads from the host.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{SessionId, StreamId};

/// Who is calling, as established by the auth layer in front of the transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// A stable name: issuer + subject for JWTs, the token's name for static tokens.
    pub id: String,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The claims the authenticator validated (a JWT's payload; empty for static tokens), for
    /// handlers that need more than the id. Never the token itself. Not kept with the session:
    /// every request brings its own.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, Value>,
}

impl Principal {
    /// A principal without scopes.
    pub fn new(id: impl Into<String>) -> Self {
        Principal {
            id: id.into(),
            scopes: Vec::new(),
            claims: serde_json::Map::new(),
        }
    }
}

/// Syslog severities, as `logging/setLevel` and `notifications/message` use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Debug-level messages.
    Debug,
    /// Informational messages.
    Info,
    /// Normal but significant conditions.
    Notice,
    /// Warning conditions.
    Warning,
    /// Error conditions.
    Error,
    /// Critical conditions.
    Critical,
    /// Action must be taken immediately.
    Alert,
    /// System is unusable.
    Emergency,
}

/// Everything the server keeps about a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session id.
    pub id: SessionId,
    /// The principal bound at initialize; every request of the session must present it.
    pub principal: Option<String>,
    /// The negotiated protocol revision.
    pub protocol_version: String,
    /// The client's `capabilities` from initialize.
    pub client_capabilities: Value,
    /// The client's `clientInfo` from initialize.
    pub client_info: Value,
    /// The minimum level of log notifications the client wants; `None` until it sets one.
    pub log_level: Option<LogLevel>,
    /// Resource URIs the client subscribed to.
    pub subscriptions: BTreeSet<String>,
    /// The stream id of the session's standalone (GET) stream.
    pub standalone_stream: StreamId,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
}

impl SessionRecord {
    /// A record for a session that is being initialized now.
    pub fn new(
        principal: Option<String>,
        protocol_version: impl Into<String>,
        client_capabilities: Value,
        client_info: Value,
    ) -> Self {
        SessionRecord {
            id: SessionId::random(),
            principal,
            protocol_version: protocol_version.into(),
            client_capabilities,
            client_info,
            log_level: None,
            subscriptions: BTreeSet::new(),
            standalone_stream: StreamId::random(),
            created_at: unix_now(),
        }
    }

    /// Whether the client declared a capability (`sampling`, `elicitation`, `roots`).
    pub fn client_supports(&self, capability: &str) -> bool {
        self.client_capabilities
            .get(capability)
            .is_some_and(|c| !c.is_null())
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
