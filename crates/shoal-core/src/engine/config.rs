//! The engine's settings and their defaults.

use std::time::Duration;

use crate::model::Implementation;
use crate::request_state::KeyRing;

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Who this server says it is in `initialize`.
    pub server_info: Implementation,
    /// `instructions` in `initialize`.
    pub instructions: Option<String>,
    /// Items per page of `tools/list`, `resources/list`, `prompts/list`.
    pub page_size: usize,
    /// How long a handler waits for the client to answer a server→client request.
    pub client_request_timeout: Duration,
    /// A reader of a reply stream written by another node checks that node's liveness after
    /// this long without events; a dead writer's request is answered with an error.
    pub liveness_check_interval: Duration,
    /// Live sessions one principal may hold across every replica; `initialize` beyond it is
    /// refused. 0: unlimited. Sessions without a principal are not limited.
    pub max_sessions_per_principal: usize,
    /// Seals the `requestState` of multi round-trip requests (2026-07-28). Every replica must
    /// hold the same ring for a retry to succeed on any of them; the default is generated for
    /// this process alone.
    pub request_state_keys: KeyRing,
    /// How long a `requestState` stays good: the time a user has to answer.
    pub request_state_ttl: Duration,
}

/// Default of [`EngineConfig::request_state_ttl`].
pub const DEFAULT_REQUEST_STATE_TTL: Duration = Duration::from_secs(10 * 60);

/// Default of [`EngineConfig::max_sessions_per_principal`].
pub const DEFAULT_MAX_SESSIONS_PER_PRINCIPAL: usize = 100;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            server_info: Implementation {
                name: "shoal".into(),
                title: Some("Shoal".into()),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            instructions: None,
            page_size: 100,
            client_request_timeout: Duration::from_secs(300),
            liveness_check_interval: Duration::from_secs(1),
            max_sessions_per_principal: DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
            request_state_keys: KeyRing::generate(),
            request_state_ttl: DEFAULT_REQUEST_STATE_TTL,
        }
    }
}
