//! The authentication knobs: `auth` picks the mode; the others belong to one mode each, and
//! setting one for another mode is refused (it would silently do nothing).

use std::collections::BTreeMap;

use figment::value::Value;
use shoal_auth::config as auth_config;
use shoal_auth::{AuthConfig, JwtConfig, StaticConfig, StaticTokens};

use super::sources::{ENV_AUTH_TOKENS, Reader};

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Static,
    Jwt,
}

/// Reads every auth knob; `None` when one is wrong (the reader holds why).
pub(super) fn read(
    reader: &mut Reader<'_>,
    public_url: &str,
    warnings: &mut Vec<String>,
) -> Option<AuthConfig> {
    let mode = match reader.text("auth").as_deref().map(str::trim) {
        None | Some("none") => Some(Mode::None),
        Some("static") => Some(Mode::Static),
        Some("jwt") => Some(Mode::Jwt),
        Some(other) => {
            reader.refuse(
                "auth",
                format!("must be none, static or jwt (got {other:?})"),
            );
            None
        }
    };
    let issuer = reader.text("issuer");
    let tokens_file = reader.text("auth_tokens_file");
    let header = reader.text("auth_header");
    let required_scopes = reader.list("required_scopes", ',').unwrap_or_default();
    let tool_scopes = read_tool_scopes(reader);
    let audience = reader.text("audience");
    let jwks_url = reader.text("jwks_url");
    let algorithms = reader.list("jwt_algorithms", ',');
    let leeway = reader.duration("jwt_leeway");
    let refetch = reader.duration("jwks_refetch_interval");
    let refresh = reader.duration("jwks_refresh_interval");
    let require_at_jwt = reader.switch("require_at_jwt");
    let mirror = reader.switch("mirror_authorization_server_metadata");
    let resource_name = reader.text("resource_name");
    for scope in required_scopes.iter().chain(tool_scopes.values().flatten()) {
        if let Err(error) = auth_config::check_scope(scope) {
            reader.refuse("required_scopes", format!("is not valid: {error}"));
        }
    }

    let mode = mode?;
    if mode != Mode::Jwt {
        if issuer.is_some() {
            reader.refuse("issuer", "is for --auth jwt; pass --auth jwt".to_owned());
        }
        if !required_scopes.is_empty() {
            reader.refuse(
                "required_scopes",
                "needs --auth jwt (static tokens have no scopes)".to_owned(),
            );
        }
        if tool_scopes.values().any(|scopes| !scopes.is_empty()) {
            reader.refuse(
                "tool_scopes",
                "needs --auth jwt (static tokens have no scopes)".to_owned(),
            );
        }
    }
    if mode != Mode::Static && tokens_file.is_some() {
        reader.refuse(
            "auth_tokens_file",
            "is for --auth static; pass --auth static".to_owned(),
        );
    }
    match mode {
        Mode::None => Some(AuthConfig::None),
        Mode::Static => {
            let mut tokens = StaticTokens::new();
            if let Some(path) = &tokens_file {
                match tokens.insert_file(std::path::Path::new(path)) {
                    Ok(true) => warnings.push(format!(
                        "the tokens file {path} is readable by every user; chmod 600 it"
                    )),
                    Ok(false) => {}
                    Err(error) => {
                        reader.refuse("auth_tokens_file", format!("cannot be used: {error}"))
                    }
                }
            }
            if let Some(value) = reader.variable(ENV_AUTH_TOKENS).map(str::to_owned)
                && let Err(error) = tokens.insert_env(ENV_AUTH_TOKENS, &value)
            {
                reader.fail(format!("{ENV_AUTH_TOKENS}: {error}"));
            }
            if tokens.is_empty() {
                reader.fail(shoal_auth::Error::NoTokens.to_string());
                return None;
            }
            let header = match header.as_deref().map(auth_config::parse_header_name) {
                None => None,
                Some(Ok(name)) => Some(name),
                Some(Err(error)) => {
                    reader.refuse("auth_header", format!("is not valid: {error}"));
                    return None;
                }
            };
            if header.is_none()
                && let Err(error) = tokens.check_bearer_syntax()
            {
                reader.fail(error.to_string());
                return None;
            }
            Some(AuthConfig::Static(StaticConfig { tokens, header }))
        }
        Mode::Jwt => {
            let Some(issuer) = issuer else {
                reader.fail(shoal_auth::Error::MissingIssuer.to_string());
                return None;
            };
            if header.is_some() {
                reader.refuse(
                    "auth_header",
                    "is for --auth static; JWTs travel in Authorization: Bearer".to_owned(),
                );
            }
            let audience = audience.unwrap_or_else(|| public_url.trim_end_matches('/').to_owned());
            let mut config = JwtConfig::new(issuer, audience);
            if let Some(names) = algorithms {
                match auth_config::parse_algorithms(&names) {
                    Ok(algorithms) => config.algorithms = algorithms,
                    Err(error) => reader.refuse("jwt_algorithms", format!("is not valid: {error}")),
                }
            }
            config.jwks_url = jwks_url;
            config.required_scopes = required_scopes;
            config.tool_scopes = tool_scopes;
            config.require_at_jwt = require_at_jwt;
            config.mirror_authorization_server_metadata = mirror;
            config.resource_name = resource_name;
            if let Some(leeway) = leeway {
                config.leeway = leeway;
            }
            if let Some(interval) = refetch {
                config.jwks_refetch_interval = interval;
            }
            match refresh {
                Some(interval) if interval.is_zero() => {
                    reader.refuse("jwks_refresh_interval", "must be greater than zero".into());
                }
                Some(interval) => config.jwks_refresh_interval = interval,
                None => {}
            }
            Some(AuthConfig::Jwt(config))
        }
    }
}

/// Scopes per tool: a table in the file (`echo = ["mcp:echo"]`), `TOOL=SCOPE SCOPE` entries
/// from repeated flags, or entries separated by `;` in the variable.
fn read_tool_scopes(reader: &mut Reader<'_>) -> BTreeMap<String, Vec<String>> {
    let mut scopes = BTreeMap::new();
    for layer in reader.layered("tool_scopes") {
        let entries: Vec<String> = match layer {
            Value::Dict(_, table) => {
                for (tool, value) in table {
                    match value.deserialize::<Vec<String>>() {
                        Ok(list) => {
                            scopes.insert(tool, list);
                        }
                        Err(_) => {
                            reader.refuse("tool_scopes", format!("must list texts for {tool:?}"))
                        }
                    }
                }
                continue;
            }
            Value::String(_, text) => text.split(';').map(str::to_owned).collect(),
            Value::Array(_, values) => values
                .into_iter()
                .filter_map(|value| value.into_string())
                .collect(),
            _ => {
                reader.refuse("tool_scopes", "must be TOOL=SCOPE[ SCOPE...]".to_owned());
                continue;
            }
        };
        for entry in entries.iter().filter(|entry| !entry.trim().is_empty()) {
            let Some((tool, list)) = entry.split_once('=') else {
                reader.refuse(
                    "tool_scopes",
                    format!("must be TOOL=SCOPE[ SCOPE...] (got {entry:?})"),
                );
                continue;
            };
            scopes.insert(
                tool.trim().to_owned(),
                list.split_whitespace().map(str::to_owned).collect(),
            );
        }
    }
    scopes
}
