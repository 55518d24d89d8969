//! The engine's metrics, recorded through the `metrics` facade (the binary installs the
//! exporter; without one, recording is a no-op).
//!
//! Label values come from bounded sets: method names from the spec's list (anything else is
//! `_OTHER`, as OpenTelemetry names values outside a known set), tool and prompt names only of
//! those a provider actually ran (an unknown name is `_unknown`), error types from JSON-RPC
//! codes.

use metrics::Label;
pub(crate) use metrics::SharedString;

use crate::jsonrpc;

/// Histogram: how long the engine took to answer one request, by `mcp_method_name`,
/// `gen_ai_tool_name` (tools/call only), `gen_ai_prompt_name` (prompts/get only) and
/// `error_type` (absent on success).
pub const OPERATION_DURATION: &str = "mcp_server_operation_duration_seconds";
/// Histogram: the lifetime of a session deleted by its client on this replica.
pub const SESSION_DURATION: &str = "mcp_server_session_duration_seconds";
/// Counter: sessions initialized on this replica.
pub const SESSIONS_INITIALIZED: &str = "shoal_sessions_initialized_total";
/// Counter: sessions deleted (DELETE) on this replica.
pub const SESSIONS_DELETED: &str = "shoal_sessions_deleted_total";
/// Counter: node events (inbox and broadcast) handled, by `kind`.
pub const INBOX_DELIVERIES: &str = "shoal_inbox_deliveries_total";
/// Counter: requests of a dead replica that a reader on this one answered with an error.
pub const REQUESTS_ABANDONED: &str = "shoal_requests_abandoned_total";
/// Counter: operator actions done through this replica, by `action`.
pub const ADMIN_ACTIONS: &str = "shoal_admin_actions_total";
/// The `action` labels of [`ADMIN_ACTIONS`].
pub const ADMIN_ACTION_LABELS: [&str; 4] = [
    "end_session",
    "end_sessions_of_principal",
    "refuse_principal",
    "lift_refusal",
];
/// Counter: requests refused on this replica because an operator refused their principal.
pub const PRINCIPAL_REFUSALS: &str = "shoal_principal_refusals_total";
/// Counter: stateless-era (2026-07-28) requests answered `input_required`, by `mcp_method_name`.
pub const INPUT_REQUIRED: &str = "shoal_input_required_total";
/// Counter: multi round-trip retries refused for their `requestState` or answers, by `reason`
/// (the error's `data.reason`: `forged`, `spent`, `expired`, ...).
pub const REQUEST_STATE_REFUSALS: &str = "shoal_request_state_refusals_total";
/// The `reason` labels of [`REQUEST_STATE_REFUSALS`].
pub const REQUEST_STATE_REASONS: [&str; 9] = [
    "malformed",
    "unknown-key",
    "forged",
    "expired",
    "other-principal",
    "other-request",
    "spent",
    "malformed-input-responses",
    "malformed-input-response",
];

/// Registers the help text of every metric of the engine with the installed recorder, and
/// creates its counters at zero (so that they are exported before their first event).
pub fn describe() {
    for counter in [
        SESSIONS_INITIALIZED,
        SESSIONS_DELETED,
        REQUESTS_ABANDONED,
        PRINCIPAL_REFUSALS,
    ] {
        metrics::counter!(counter).absolute(0);
    }
    for kind in INBOX_KINDS {
        metrics::counter!(INBOX_DELIVERIES, "kind" => kind).absolute(0);
    }
    for action in ADMIN_ACTION_LABELS {
        metrics::counter!(ADMIN_ACTIONS, "action" => action).absolute(0);
    }
    for method in ["tools/call", "prompts/get", "resources/read"] {
        metrics::counter!(INPUT_REQUIRED, "mcp_method_name" => method).absolute(0);
    }
    for reason in REQUEST_STATE_REASONS {
        metrics::counter!(REQUEST_STATE_REFUSALS, "reason" => reason).absolute(0);
    }
    metrics::describe_histogram!(
        OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Duration of MCP requests handled by this replica, from dispatch to the response"
    );
    metrics::describe_histogram!(
        SESSION_DURATION,
        metrics::Unit::Seconds,
        "Lifetime of MCP sessions ended by DELETE on this replica (expiries are not observed)"
    );
    metrics::describe_counter!(
        SESSIONS_INITIALIZED,
        "MCP sessions initialized on this replica"
    );
    metrics::describe_counter!(
        SESSIONS_DELETED,
        "MCP sessions deleted by their client (DELETE) on this replica"
    );
    metrics::describe_counter!(
        INBOX_DELIVERIES,
        "Node events (client responses, cancellations, broadcasts) handled by this replica"
    );
    metrics::describe_counter!(
        REQUESTS_ABANDONED,
        "Requests of a dead replica answered with an error by a reader on this replica"
    );
    metrics::describe_counter!(
        ADMIN_ACTIONS,
        "Operator actions (end sessions, refuse or lift a principal) done through this replica"
    );
    metrics::describe_counter!(
        PRINCIPAL_REFUSALS,
        "Requests refused on this replica because an operator refused their principal"
    );
    metrics::describe_counter!(
        INPUT_REQUIRED,
        "Stateless-era requests answered input_required (the client's answers come with a retry)"
    );
    metrics::describe_counter!(
        REQUEST_STATE_REFUSALS,
        "Multi round-trip retries refused for their requestState or answers, by reason"
    );
}

/// Histogram buckets (seconds) of [`OPERATION_DURATION`]: every boundary OpenTelemetry advises
/// for it (10 ms to 300 s: a tool that asks the user through elicitation, or the model through
/// sampling, waits on a person), and four below 10 ms, where most of this server's operations
/// end (a Redis round trip or two).
pub const OPERATION_BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// The `mcp_method_name` label (and the operation span's name): the method if the spec knows
/// it, else `_OTHER`, so that a client cannot mint series or span names.
pub(crate) fn method_label(method: &str) -> &'static str {
    match method {
        "initialize" => "initialize",
        "ping" => "ping",
        "tools/list" => "tools/list",
        "tools/call" => "tools/call",
        "resources/list" => "resources/list",
        "resources/templates/list" => "resources/templates/list",
        "resources/read" => "resources/read",
        "resources/subscribe" => "resources/subscribe",
        "resources/unsubscribe" => "resources/unsubscribe",
        "prompts/list" => "prompts/list",
        "prompts/get" => "prompts/get",
        "completion/complete" => "completion/complete",
        "logging/setLevel" => "logging/setLevel",
        // Methods the spec defines for the server to send or for tasks: the server does not
        // answer them (-32601), but they are the spec's names, which the convention keeps.
        "roots/list" => "roots/list",
        "sampling/createMessage" => "sampling/createMessage",
        "elicitation/create" => "elicitation/create",
        "tasks/get" => "tasks/get",
        "tasks/result" => "tasks/result",
        "tasks/list" => "tasks/list",
        "tasks/cancel" => "tasks/cancel",
        // The stateless era's own.
        "server/discover" => "server/discover",
        "subscriptions/listen" => "subscriptions/listen",
        _ => OTHER_METHOD,
    }
}

/// The `mcp_protocol_version` label: a revision of either era we serve (so the era shows on
/// the dashboard), else `_OTHER`.
pub(crate) fn version_label(version: &str) -> &'static str {
    crate::version::SUPPORTED_VERSIONS
        .iter()
        .chain(crate::version::MODERN_VERSIONS)
        .find(|v| **v == version)
        .copied()
        .unwrap_or(OTHER_METHOD)
}

/// The `error_type` of a tools/call whose result has `isError`.
pub(crate) const TOOL_ERROR: &str = "tool_error";

/// The `mcp_method_name` of a method outside the spec's list (OpenTelemetry's name for it).
pub(crate) const OTHER_METHOD: &str = "_OTHER";

/// The `gen_ai_tool_name` or `gen_ai_prompt_name` of a name no provider knows.
pub(crate) const UNKNOWN: &str = "_unknown";

/// The `error_type` of a JSON-RPC error: its code, as a string.
pub(crate) fn error_code_label(code: i32) -> SharedString {
    match code {
        jsonrpc::PARSE_ERROR => SharedString::const_str("-32700"),
        jsonrpc::INVALID_REQUEST => SharedString::const_str("-32600"),
        jsonrpc::METHOD_NOT_FOUND => SharedString::const_str("-32601"),
        jsonrpc::INVALID_PARAMS => SharedString::const_str("-32602"),
        jsonrpc::INTERNAL_ERROR => SharedString::const_str("-32603"),
        jsonrpc::RESOURCE_NOT_FOUND => SharedString::const_str("-32002"),
        other => SharedString::from(other.to_string()),
    }
}

/// The labels of one observed operation.
#[derive(Debug, Default)]
pub(crate) struct Operation {
    /// `gen_ai_tool_name`: set for tools/call only.
    pub(crate) tool: Option<SharedString>,
    /// `gen_ai_prompt_name`: set for prompts/get only.
    pub(crate) prompt: Option<SharedString>,
    /// `error_type`: set on failure.
    pub(crate) error: Option<SharedString>,
    /// `mcp_protocol_version` (a [`version_label`]): set once the request's revision is known.
    pub(crate) protocol_version: Option<&'static str>,
}

impl Operation {
    /// The labels of a request of `method` (a [`method_label`]): a tools/call's tool, a
    /// prompts/get's prompt is `_unknown` until a provider runs it.
    pub(crate) fn of(method: &str) -> Self {
        let unknown = || Some(SharedString::const_str(UNKNOWN));
        match method {
            "tools/call" => Operation {
                tool: unknown(),
                ..Operation::default()
            },
            "prompts/get" => Operation {
                prompt: unknown(),
                ..Operation::default()
            },
            _ => Operation::default(),
        }
    }

    /// Records the operation's duration.
    pub(crate) fn record(self, method: &'static str, seconds: f64) {
        let mut labels = Vec::with_capacity(4);
        labels.push(Label::from_static_parts("mcp_method_name", method));
        if let Some(version) = self.protocol_version {
            labels.push(Label::from_static_parts("mcp_protocol_version", version));
        }
        if let Some(tool) = self.tool {
            labels.push(Label::new("gen_ai_tool_name", tool));
        }
        if let Some(prompt) = self.prompt {
            labels.push(Label::new("gen_ai_prompt_name", prompt));
        }
        if let Some(error) = self.error {
            labels.push(Label::new("error_type", error));
        }
        metrics::histogram!(OPERATION_DURATION, labels).record(seconds);
    }
}

/// Counts a session initialized here.
pub(crate) fn session_initialized() {
    metrics::counter!(SESSIONS_INITIALIZED).increment(1);
}

/// Counts a session deleted here and observes its lifetime (in seconds).
pub(crate) fn session_deleted(lifetime_seconds: u64) {
    metrics::counter!(SESSIONS_DELETED).increment(1);
    metrics::histogram!(SESSION_DURATION).record(lifetime_seconds as f64);
}

/// Counts a request of a dead replica answered here.
pub(crate) fn request_abandoned() {
    metrics::counter!(REQUESTS_ABANDONED).increment(1);
}

/// The values of `kind` of `shoal_inbox_deliveries_total`.
const INBOX_KINDS: [&str; 3] = ["client_response", "cancel", "broadcast"];

/// Counts one node event handled, by kind (`client_response`, `cancel`, `broadcast`).
pub(crate) fn inbox_delivery(kind: &'static str) {
    metrics::counter!(INBOX_DELIVERIES, "kind" => kind).increment(1);
}

/// Counts an operator action (one of [`ADMIN_ACTION_LABELS`]).
pub(crate) fn admin_action(action: &'static str) {
    metrics::counter!(ADMIN_ACTIONS, "action" => action).increment(1);
}

/// Counts a request refused for its principal.
pub(crate) fn request_refused_for_principal() {
    metrics::counter!(PRINCIPAL_REFUSALS).increment(1);
}

/// Counts a request of `method` answered `input_required`.
pub(crate) fn input_required(method: &'static str) {
    metrics::counter!(INPUT_REQUIRED, "mcp_method_name" => method).increment(1);
}

/// Counts a retry refused for `reason` (one of [`REQUEST_STATE_REASONS`]).
pub(crate) fn request_state_refused(reason: &'static str) {
    metrics::counter!(REQUEST_STATE_REFUSALS, "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("elicitation/create"), "elicitation/create");
        assert_eq!(method_label("made/up"), "_OTHER");
        assert_eq!(version_label("2026-07-28"), "2026-07-28");
        assert_eq!(version_label("2025-03-26"), "2025-03-26");
        assert_eq!(version_label("1999-01-01"), "_OTHER");
        assert_eq!(method_label("Tools/Call"), "_OTHER");
        assert_eq!(error_code_label(jsonrpc::INVALID_PARAMS).as_ref(), "-32602");
        assert_eq!(error_code_label(-32002).as_ref(), "-32002");
        assert_eq!(error_code_label(-1).as_ref(), "-1");
        let call = Operation::of("tools/call");
        assert_eq!((call.tool.as_deref(), call.prompt), (Some(UNKNOWN), None));
        let get = Operation::of("prompts/get");
        assert_eq!((get.tool, get.prompt.as_deref()), (None, Some(UNKNOWN)));
        assert!(Operation::of("ping").tool.is_none());
    }

    #[test]
    fn operation_buckets_keep_every_advised_boundary() {
        // `mcp.server.operation.duration`'s ExplicitBucketBoundaries advice.
        let advised = [
            0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ];
        for boundary in advised {
            assert!(OPERATION_BUCKETS.contains(&boundary), "{boundary}");
        }
        assert!(OPERATION_BUCKETS.is_sorted());
    }
}
