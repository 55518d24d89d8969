//! A custom [`Authenticator`]: API keys from a file, checked on every request, each mapped to
//! a principal whose claims (`user`, `team`) a tool reads.
//!
//! The key travels in the `X-API-Key` header. [`ApiKeys::credential_header`] names it, so
//! Shoal removes it from every authenticated request: no handler sees the key, and none can
//! forward it. A request without a key is refused with 401 and the challenge
//! `ApiKey realm="example-custom-auth"`; a wrong key with 401 and `error="invalid_key"`.
//!
//! The keys file (`EXAMPLE_API_KEYS_FILE`) holds one key per line, `KEY USER TEAM`, blank lines
//! and `#` comments ignored:
//!
//! ```text
//! # key                  user  team
//! k-3d9f0c2a71e44b6b     ada   research
//! ```
//!
//! Run it with `EXAMPLE_API_KEYS_FILE=keys.txt cargo run -p example-custom-auth`, then call
//! `whoami` with `X-API-Key: k-3d9f0c2a71e44b6b`.
//!
//! # Calling downstream APIs on the user's behalf
//!
//! A tool that calls another API for the user must not pass the user's credential through: the
//! MCP specification forbids it (the token was issued for this server, not for the API), and
//! this example's design makes it impossible (handlers never see the credential). The way to
//! do it is the on-behalf-of exchange, OAuth 2.0 Token Exchange (RFC 8693): the server, which
//! holds the user's access token while authenticating, trades it at the user's authorization
//! server for a token whose audience is the downstream API, authenticating as itself. The
//! authorization server decides whether this server may act for this user towards that API,
//! and the downstream token carries both identities (`act` claim).
//!
//! A sketch, for an authenticator that validates OAuth access tokens (Shoal's `jwt` mode does
//! this part) and an HTTP client of your choice:
//!
//! ```ignore
//! // In `authenticate`, after the user's token is validated:
//! let form = [
//!     ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
//!     ("subject_token", user_token),
//!     ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
//!     ("audience", "https://calendar.internal.example"),   // or `resource` (RFC 8707)
//!     ("scope", "calendar.read"),
//! ];
//! let exchanged: TokenResponse = http
//!     .post(token_endpoint)
//!     .basic_auth(&self.client_id, Some(&self.client_secret)) // this server's own credentials
//!     .form(&form)
//!     .send().await?
//!     .error_for_status()?                                     // 400 invalid_grant: refused
//!     .json().await?;
//! // Keep the downstream token where tools can ask for it by principal and audience (a cache
//! // that honours `expires_in`), never the user's own token:
//! self.downstream.insert((principal.id.clone(), CALENDAR), exchanged.access_token, exchanged.expires_in);
//! ```
//!
//! A tool then asks that cache for `(ctx.principal().id, CALENDAR)` and calls the calendar with
//! the downstream token. Exchanging lazily, on a tool's first need, works the same way if the
//! authenticator keeps the user's token in that cache instead of handing it to anyone.

use std::sync::Arc;

use http::{HeaderName, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use shoal::auth::{AuthError, AuthRequest, Challenge};
use shoal::handler::{Handlers, Json, RequestContext, ToolError, ToolSet, typed_tool};
use shoal::{Authenticator, Principal, Settings, Shoal};
use subtle::ConstantTimeEq;

/// The variable naming the keys file.
const ENV_API_KEYS_FILE: &str = "EXAMPLE_API_KEYS_FILE";
/// The header that carries the key.
static API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// The realm of the challenges.
const REALM: &str = "example-custom-auth";

/// A line of the keys file that is not `KEY USER TEAM`.
#[derive(Debug, thiserror::Error)]
#[error("line {line} of the keys file is not `KEY USER TEAM`")]
struct BadKeyLine {
    line: usize,
}

/// One key and whom it stands for.
struct Entry {
    key: String,
    user: String,
    team: String,
}

/// The API keys this server accepts.
struct ApiKeys {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for ApiKeys {
    // Never the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.entries.len())
            .finish()
    }
}

impl ApiKeys {
    /// Parses a keys file: `KEY USER TEAM` per line, blank lines and `#` comments skipped.
    fn parse(text: &str) -> Result<ApiKeys, BadKeyLine> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_text = line.trim();
            if line_text.is_empty() || line_text.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line_text.split_whitespace().collect();
            let [key, user, team] = fields[..] else {
                return Err(BadKeyLine { line: index + 1 });
            };
            entries.push(Entry {
                key: key.to_owned(),
                user: user.to_owned(),
                team: team.to_owned(),
            });
        }
        Ok(ApiKeys { entries })
    }

    /// The entry whose key is `presented`. Every key is compared in constant time and all are
    /// compared, so that the answer's timing does not tell how much of a key was right.
    fn find(&self, presented: &[u8]) -> Option<&Entry> {
        self.entries.iter().fold(None, |found, entry| {
            if bool::from(entry.key.as_bytes().ct_eq(presented)) {
                Some(entry)
            } else {
                found
            }
        })
    }
}

fn challenge(error: Option<(&str, &str)>) -> Challenge {
    let (www_authenticate, message) = match error {
        None => (
            format!("ApiKey realm=\"{REALM}\""),
            "unauthorized: an API key is required in X-API-Key".to_owned(),
        ),
        Some((code, description)) => (
            format!("ApiKey realm=\"{REALM}\", error=\"{code}\""),
            format!("unauthorized: {description}"),
        ),
    };
    Challenge {
        status: StatusCode::UNAUTHORIZED,
        www_authenticate,
        message,
    }
}

#[async_trait::async_trait]
impl Authenticator for ApiKeys {
    async fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        let Some(presented) = request.headers.get(&API_KEY) else {
            return Err(challenge(None).into());
        };
        let Some(entry) = self.find(presented.as_bytes()) else {
            // A fixed description: nothing of the presented key is echoed.
            return Err(challenge(Some(("invalid_key", "the API key is not valid"))).into());
        };
        let mut principal = Principal::new(format!("api-key:{}", entry.user));
        principal
            .claims
            .insert("user".into(), entry.user.clone().into());
        principal
            .claims
            .insert("team".into(), entry.team.clone().into());
        Ok(Some(principal))
    }

    fn credential_header(&self) -> Option<&HeaderName> {
        Some(&API_KEY)
    }
}

/// No arguments.
#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

/// Who is calling, as the authenticator established it.
#[derive(Serialize, JsonSchema)]
struct Identity {
    /// The principal's id.
    principal: String,
    /// The `user` claim.
    user: Option<String>,
    /// The `team` claim.
    team: Option<String>,
}

async fn whoami(ctx: RequestContext, NoArgs {}: NoArgs) -> Result<Json<Identity>, ToolError> {
    let principal = ctx
        .principal()
        .ok_or_else(|| ToolError::failed("nobody is authenticated"))?;
    let claim = |name: &str| {
        principal
            .claims
            .get(name)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    };
    Ok(Json(Identity {
        principal: principal.id.clone(),
        user: claim("user"),
        team: claim("team"),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var(ENV_API_KEYS_FILE)
        .map_err(|_| format!("{ENV_API_KEYS_FILE} must name the keys file"))?;
    let keys = ApiKeys::parse(&std::fs::read_to_string(&path)?)?;
    let tools = ToolSet::new().with(typed_tool("whoami", "Who the API key says you are", whoami));
    Shoal::builder()
        .settings(Settings::from_env()?)
        .authenticator(Arc::new(keys))
        .handlers(Handlers::new().tools(tools))
        .build()
        .await?
        .serve()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_file_has_three_fields_a_line() {
        let keys = ApiKeys::parse("# comment\n\nk1 ada research\n  k2 bob ops  \n").unwrap();
        assert_eq!(keys.find(b"k2").map(|e| e.user.as_str()), Some("bob"));
        assert!(keys.find(b"k").is_none());
        assert!(keys.find(b"k22").is_none());
        assert_eq!(ApiKeys::parse("k1 ada\n").unwrap_err().line, 1);
        assert_eq!(format!("{keys:?}"), "ApiKeys { keys: 2 }");
    }
}
