//! Auth refusals and their `WWW-Authenticate` values (RFC 6750 §3, RFC 9728 §5.1).
//!
//! Every challenge [`Challenger`] builds is `Bearer` followed by, in this order and each only
//! when present: `resource_metadata="…"`, `scope="…"`, `error="…"`, `error_description="…"`.
//! Descriptions are the caller's fixed strings, so that no part of a presented token ever
//! reaches a response.

use http::StatusCode;

/// An auth refusal: the status (400 `invalid_request`, 401 missing or invalid token, 403
/// `insufficient_scope`), the `WWW-Authenticate` value (RFC 6750 §3) and the message of the
/// JSON-RPC error body. None of them may contain the presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// 400, 401 or 403.
    pub status: StatusCode,
    /// The `WWW-Authenticate` header value, e.g. `Bearer error="invalid_token"`.
    pub www_authenticate: String,
    /// The message of the JSON-RPC error in the body.
    pub message: String,
}

/// Builds the Bearer challenges of one configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenger {
    /// The Protected Resource Metadata URL, when the resource publishes one.
    pub resource_metadata: Option<String>,
    /// The scopes every request needs, hinted in 401 and 400 challenges.
    pub scope: Vec<String>,
}

impl Challenger {
    /// 401 without a token.
    pub fn missing(&self) -> Challenge {
        Challenge {
            status: StatusCode::UNAUTHORIZED,
            www_authenticate: self.build(&self.scope, None),
            message: "unauthorized: a bearer token is required".into(),
        }
    }

    /// 401 for a token that is not accepted, with a fixed `description`.
    pub fn invalid_token(&self, description: &str) -> Challenge {
        Challenge {
            status: StatusCode::UNAUTHORIZED,
            www_authenticate: self.build(&self.scope, Some(("invalid_token", description))),
            message: format!("unauthorized: {description}"),
        }
    }

    /// 400 for a malformed token header, with a fixed `description`.
    pub fn invalid_request(&self, description: &str) -> Challenge {
        Challenge {
            status: StatusCode::BAD_REQUEST,
            www_authenticate: self.build(&self.scope, Some(("invalid_request", description))),
            message: format!("bad request: {description}"),
        }
    }

    /// 403 for a valid token without the `scopes` needed, with a fixed `description`.
    pub fn insufficient_scope(&self, scopes: &[String], description: &str) -> Challenge {
        Challenge {
            status: StatusCode::FORBIDDEN,
            www_authenticate: self.build(scopes, Some(("insufficient_scope", description))),
            message: format!("forbidden: {description}"),
        }
    }

    fn build(&self, scope: &[String], error: Option<(&str, &str)>) -> String {
        let mut params = Vec::new();
        if let Some(url) = &self.resource_metadata {
            params.push(format!("resource_metadata=\"{}\"", quoted(url)));
        }
        if !scope.is_empty() {
            params.push(format!("scope=\"{}\"", quoted(&scope.join(" "))));
        }
        if let Some((code, description)) = error {
            params.push(format!("error=\"{code}\""));
            params.push(format!("error_description=\"{}\"", quoted(description)));
        }
        if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", params.join(", "))
        }
    }
}

/// Escapes a quoted-string's content (RFC 9110 §5.6.4); scopes and URLs rarely need it.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parameters_come_in_a_fixed_order() {
        let plain = Challenger::default();
        assert_eq!(plain.missing().www_authenticate, "Bearer");
        assert_eq!(
            plain
                .invalid_token("the token is not valid")
                .www_authenticate,
            "Bearer error=\"invalid_token\", error_description=\"the token is not valid\""
        );
        let jwt = Challenger {
            resource_metadata: Some(
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp".into(),
            ),
            scope: vec!["mcp:read".into(), "mcp:write".into()],
        };
        assert_eq!(
            jwt.missing().www_authenticate,
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read mcp:write\""
        );
        assert_eq!(
            jwt.insufficient_scope(&["x\"y".into()], "the token lacks a required scope")
                .www_authenticate,
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"x\\\"y\", error=\"insufficient_scope\", error_description=\"the token lacks a required scope\""
        );
    }
}
