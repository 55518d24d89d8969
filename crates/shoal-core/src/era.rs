//! Which era a request speaks, and the per-request `_meta` of the stateless one.
//!
//! One endpoint serves both eras. Each POSTed request is classified on its own, in the order
//! the official SDKs use (so that a dual-era client and Shoal agree on every request):
//!
//! 1. a `_meta` protocol-version claim: the stateless era ([`Era::Modern`]);
//! 2. `initialize` without one: the session era;
//! 3. no claim, but an `MCP-Protocol-Version` header of the stateless era: refused (400,
//!    `-32602`): the client speaks the new era without saying so in the body;
//! 4. otherwise the session era.
//!
//! A modern request carries what a session record holds in the session era: the protocol
//! version, the client's capabilities and info, and its log level ([`ModernMeta`]).

use serde_json::Value;

use crate::model::JsonObject;
use crate::session::LogLevel;
use crate::version;

/// `_meta` key: the request's protocol version (required in the stateless era).
pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: the client's capabilities (required).
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key: the client's name and version (optional).
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key: the least severe log level the client wants on this request's stream
/// (optional; without it, no log messages are sent).
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// Result `_meta` key: who the server is.
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Notification and result `_meta` key on a `subscriptions/listen` stream: the listen request's
/// id.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The methods of the stateless era Shoal serves; any other is unknown (404 in HTTP), the
/// session era's own (`initialize`, `ping`, `logging/setLevel`, ...) included.
pub const METHODS: &[&str] = &[
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "subscriptions/listen",
];

/// The era of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Sessions: `initialize`, `Mcp-Session-Id`, resumable streams (2025-11-25 and older).
    Session,
    /// Stateless: every request says who it is in `_meta` (2026-07-28).
    Modern,
}

/// A request that cannot be given an era.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EraError {
    /// The header names the stateless era, the body does not claim it.
    #[error(
        "MCP-Protocol-Version {0} is of the stateless era, but params._meta has no \
         {PROTOCOL_VERSION}"
    )]
    UnclaimedModernHeader(String),
}

/// Classifies a POSTed message by its method, params and `MCP-Protocol-Version` header.
///
/// # Errors
///
/// A stateless-era header without a claim in the body.
pub fn classify(
    method: &str,
    params: Option<&JsonObject>,
    header_version: Option<&str>,
) -> Result<Era, EraError> {
    if claimed_version(params).is_some() {
        return Ok(Era::Modern);
    }
    if method == "initialize" {
        return Ok(Era::Session);
    }
    match header_version {
        Some(header) if version::names_modern_era(header) => {
            Err(EraError::UnclaimedModernHeader(header.to_owned()))
        }
        _ => Ok(Era::Session),
    }
}

/// The `_meta` protocol-version claim, when there is one (of any type).
fn claimed_version(params: Option<&JsonObject>) -> Option<&Value> {
    params?.get("_meta")?.get(PROTOCOL_VERSION)
}

/// A tool argument the client mirrors into an `Mcp-Param-{name}` header: a scalar property of
/// the input schema, reachable through `properties` alone, annotated `"x-mcp-header": name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParam {
    /// The header's name after `Mcp-Param-`.
    pub name: String,
    /// The property names from the arguments object down to the value.
    pub path: Vec<String>,
}

impl HeaderParam {
    /// The annotated arguments of an input schema. Annotations that are not a token of RFC 9110
    /// characters, sit on a non-scalar property, or repeat a name (ignoring case) are skipped:
    /// a client mirrors none of them either.
    pub fn of_schema(schema: &JsonObject) -> Vec<HeaderParam> {
        fn walk(properties: &JsonObject, path: &mut Vec<String>, found: &mut Vec<HeaderParam>) {
            for (key, property) in properties {
                let Some(property) = property.as_object() else {
                    continue;
                };
                path.push(key.clone());
                let scalar = matches!(
                    property.get("type").and_then(Value::as_str),
                    Some("string" | "integer" | "number" | "boolean")
                );
                if let Some(Value::String(name)) = property.get("x-mcp-header")
                    && scalar
                    && is_token(name)
                    && !found.iter().any(|p| p.name.eq_ignore_ascii_case(name))
                {
                    found.push(HeaderParam {
                        name: name.clone(),
                        path: path.clone(),
                    });
                }
                if let Some(Value::Object(nested)) = property.get("properties") {
                    walk(nested, path, found);
                }
                path.pop();
            }
        }
        let mut found = Vec::new();
        if let Some(Value::Object(properties)) = schema.get("properties") {
            walk(properties, &mut Vec::new(), &mut found);
        }
        found
    }

    /// The argument's value as its header carries it (a string as is, a number or a boolean
    /// as JSON writes it); `None` when the arguments do not hold it.
    pub fn value_in(&self, arguments: Option<&JsonObject>) -> Option<String> {
        let (last, parents) = self.path.split_last()?;
        let mut object = arguments?;
        for key in parents {
            object = object.get(key)?.as_object()?;
        }
        match object.get(last)? {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            value @ (Value::Number(_) | Value::Bool(_)) => Some(value.to_string()),
            _ => None,
        }
    }
}

/// An RFC 9110 token: what a header name may hold.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What a stateless-era request says about its client.
#[derive(Debug, Clone, PartialEq)]
pub struct ModernMeta {
    /// The claimed protocol version (checked against [`version::MODERN_VERSIONS`] by the
    /// caller, which answers an unknown one with `-32022`).
    pub version: String,
    /// `clientCapabilities`, an object.
    pub client_capabilities: Value,
    /// `clientInfo`, or `null`.
    pub client_info: Value,
    /// `logLevel`, when given.
    pub log_level: Option<LogLevel>,
}

/// A stateless-era request whose `_meta` lacks a required key, or has one of the wrong shape
/// (400 with `-32602`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("params._meta: {0}")]
pub struct MetaError(pub String);

impl ModernMeta {
    /// Reads the `_meta` of a request's params.
    ///
    /// # Errors
    ///
    /// A missing or malformed protocol version or client capabilities, or a malformed client
    /// info or log level.
    pub fn parse(params: Option<&JsonObject>) -> Result<ModernMeta, MetaError> {
        let meta = params
            .and_then(|params| params.get("_meta"))
            .and_then(Value::as_object)
            .ok_or_else(|| MetaError("missing; it must carry the protocol version".into()))?;
        let version = match meta.get(PROTOCOL_VERSION) {
            Some(Value::String(version)) => version.clone(),
            Some(_) => return Err(MetaError(format!("{PROTOCOL_VERSION} must be a string"))),
            None => return Err(MetaError(format!("{PROTOCOL_VERSION} is missing"))),
        };
        let client_capabilities = match meta.get(CLIENT_CAPABILITIES) {
            Some(capabilities @ Value::Object(_)) => capabilities.clone(),
            Some(_) => {
                return Err(MetaError(format!(
                    "{CLIENT_CAPABILITIES} must be an object"
                )));
            }
            None => return Err(MetaError(format!("{CLIENT_CAPABILITIES} is missing"))),
        };
        let client_info = match meta.get(CLIENT_INFO) {
            None | Some(Value::Null) => Value::Null,
            Some(info @ Value::Object(_)) => info.clone(),
            Some(_) => return Err(MetaError(format!("{CLIENT_INFO} must be an object"))),
        };
        let log_level = match meta.get(LOG_LEVEL) {
            None | Some(Value::Null) => None,
            Some(level) => Some(
                serde_json::from_value(level.clone())
                    .map_err(|_| MetaError(format!("{LOG_LEVEL} is not a log level")))?,
            ),
        };
        Ok(ModernMeta {
            version,
            client_capabilities,
            client_info,
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn classifies_in_the_order_the_sdks_use() {
        let claim = params(json!({ "_meta": { PROTOCOL_VERSION: "2026-07-28" } }));
        let none = params(json!({}));
        assert_eq!(classify("tools/list", Some(&claim), None), Ok(Era::Modern));
        // A claim wins even on initialize: the suite expects a 404 for it then.
        assert_eq!(classify("initialize", Some(&claim), None), Ok(Era::Modern));
        assert_eq!(
            classify("initialize", Some(&none), Some("2026-07-28")),
            Ok(Era::Session)
        );
        assert_eq!(
            classify("tools/list", Some(&none), Some("2026-07-28")),
            Err(EraError::UnclaimedModernHeader("2026-07-28".into()))
        );
        assert_eq!(
            classify("tools/list", None, Some("2025-11-25")),
            Ok(Era::Session)
        );
        assert_eq!(classify("tools/list", None, None), Ok(Era::Session));
    }

    #[test]
    fn finds_the_arguments_mirrored_into_headers() {
        let schema = params(json!({ "type": "object", "properties": {
            "region": { "type": "string", "x-mcp-header": "Region" },
            "count": { "type": "integer", "x-mcp-header": "Count" },
            "list": { "type": "array", "x-mcp-header": "List" },
            "zz_dup": { "type": "string", "x-mcp-header": "REGION" },
            "bad": { "type": "string", "x-mcp-header": "has space" },
            "nested": { "type": "object", "properties": {
                "zone": { "type": "boolean", "x-mcp-header": "Zone" } } }
        }}));
        let found = HeaderParam::of_schema(&schema);
        let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
        // Properties in key order; a name already taken (ignoring case) is skipped.
        assert_eq!(names, ["Count", "Zone", "Region"]);
        let arguments = params(json!({ "region": "eu", "count": 3, "nested": { "zone": true } }));
        let value = |name: &str| {
            found
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.value_in(Some(&arguments)))
        };
        assert_eq!(value("Region").as_deref(), Some("eu"));
        assert_eq!(value("Count").as_deref(), Some("3"));
        assert_eq!(value("Zone").as_deref(), Some("true"));
    }

    #[test]
    fn reads_the_meta_of_a_modern_request() {
        let meta = ModernMeta::parse(Some(&params(json!({ "_meta": {
            PROTOCOL_VERSION: "2026-07-28",
            CLIENT_CAPABILITIES: { "elicitation": {} },
            CLIENT_INFO: { "name": "c", "version": "1" },
            LOG_LEVEL: "info",
        }}))))
        .unwrap();
        assert_eq!(meta.version, "2026-07-28");
        assert_eq!(meta.client_capabilities, json!({ "elicitation": {} }));
        assert_eq!(meta.log_level, Some(LogLevel::Info));
        let minimal = ModernMeta::parse(Some(&params(json!({ "_meta": {
            PROTOCOL_VERSION: "2026-07-28", CLIENT_CAPABILITIES: {} }}))))
        .unwrap();
        assert_eq!(
            (minimal.client_info, minimal.log_level),
            (Value::Null, None)
        );
    }

    #[test]
    fn refuses_a_meta_without_its_required_keys() {
        for (value, needle) in [
            (json!({}), "missing"),
            (
                json!({ "_meta": { CLIENT_CAPABILITIES: {} } }),
                PROTOCOL_VERSION,
            ),
            (
                json!({ "_meta": { PROTOCOL_VERSION: 7, CLIENT_CAPABILITIES: {} } }),
                "string",
            ),
            (
                json!({ "_meta": { PROTOCOL_VERSION: "2026-07-28" } }),
                CLIENT_CAPABILITIES,
            ),
            (
                json!({ "_meta": { PROTOCOL_VERSION: "2026-07-28", CLIENT_CAPABILITIES: {},
                    LOG_LEVEL: "loud" } }),
                "not a log level",
            ),
        ] {
            let error = ModernMeta::parse(Some(&params(value))).unwrap_err();
            assert!(error.to_string().contains(needle), "{error}");
        }
    }
}
