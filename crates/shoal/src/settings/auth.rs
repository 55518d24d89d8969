//! The authentication knobs: `auth` picks the mode; the others belong to one mode each, and
//! setting one for another mode is refused (it would silently do nothing).

use std::collections::BTreeMap;

use figment::value::Value;
use shoal_auth::config as auth_config;
use shoal_auth::{
    AuthConfig, JwtConfig, OAuthConfig, StaticConfig, StaticTokens, UpstreamClientAuth,
    UpstreamConfig, UpstreamProvider,
};

use super::sources::{ENV_AUTH_TOKENS, ENV_UPSTREAM_CLIENT_SECRET, Reader};

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Static,
    Jwt,
    OAuth,
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
        Some("oauth") => Some(Mode::OAuth),
        Some(other) => {
            reader.refuse(
                "auth",
                format!("must be none, static, jwt or oauth (got {other:?})"),
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

    let oauth = read_oauth(reader);

    let mode = mode?;
    if mode != Mode::Jwt && issuer.is_some() {
        reader.refuse("issuer", "is for --auth jwt; pass --auth jwt".to_owned());
    }
    if !matches!(mode, Mode::Jwt | Mode::OAuth) {
        if !required_scopes.is_empty() {
            reader.refuse(
                "required_scopes",
                "needs --auth jwt or oauth (static tokens have no scopes)".to_owned(),
            );
        }
        if tool_scopes.values().any(|scopes| !scopes.is_empty()) {
            reader.refuse(
                "tool_scopes",
                "needs --auth jwt or oauth (static tokens have no scopes)".to_owned(),
            );
        }
    }
    if mode != Mode::OAuth {
        for key in oauth.set_keys() {
            reader.refuse(key, "is for --auth oauth; pass --auth oauth".to_owned());
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
        Mode::OAuth => {
            let mut config = oauth.into_config(reader, warnings)?;
            config.required_scopes = required_scopes;
            config.tool_scopes = tool_scopes;
            config.resource_name = resource_name;
            Some(AuthConfig::OAuth(config))
        }
    }
}

/// The oauth mode's knobs, as given.
struct OAuthKnobs {
    upstream_issuer: Option<String>,
    upstream_authorization_endpoint: Option<String>,
    upstream_token_endpoint: Option<String>,
    upstream_userinfo_endpoint: Option<String>,
    upstream_subject_field: Option<String>,
    upstream_client_auth: Option<String>,
    upstream_client_id: Option<String>,
    upstream_client_secret_file: Option<String>,
    upstream_scopes: Option<Vec<String>>,
    signing_keys_file: Option<String>,
    access_token_ttl: Option<std::time::Duration>,
    refresh_token_ttl: Option<std::time::Duration>,
    dynamic_registration: Option<bool>,
    registrations_per_minute: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
    redirect_uri_patterns: Option<Vec<String>>,
    client_metadata_documents: Option<bool>,
    client_metadata_private_targets: bool,
    /// The upstream client secret from the environment (not a knob: a secret).
    secret_variable: Option<String>,
}

fn read_oauth(reader: &mut Reader<'_>) -> OAuthKnobs {
    OAuthKnobs {
        upstream_issuer: reader.text("upstream_issuer"),
        upstream_authorization_endpoint: reader.text("upstream_authorization_endpoint"),
        upstream_token_endpoint: reader.text("upstream_token_endpoint"),
        upstream_userinfo_endpoint: reader.text("upstream_userinfo_endpoint"),
        upstream_subject_field: reader.text("upstream_subject_field"),
        upstream_client_auth: reader.text("upstream_client_auth"),
        upstream_client_id: reader.text("upstream_client_id"),
        upstream_client_secret_file: reader.text("upstream_client_secret_file"),
        upstream_scopes: reader.list("upstream_scopes", ','),
        signing_keys_file: reader.text("signing_keys_file"),
        access_token_ttl: reader.duration("access_token_ttl"),
        refresh_token_ttl: reader.duration("refresh_token_ttl"),
        dynamic_registration: reader.get("dynamic_registration"),
        registrations_per_minute: reader.get("registrations_per_minute"),
        trusted_proxies: reader.list("trusted_proxies", ','),
        redirect_uri_patterns: reader.list("redirect_uri_patterns", ','),
        client_metadata_documents: reader.get("client_metadata_documents"),
        client_metadata_private_targets: reader.switch("client_metadata_private_targets"),
        secret_variable: reader
            .variable(ENV_UPSTREAM_CLIENT_SECRET)
            .map(str::to_owned),
    }
}

impl OAuthKnobs {
    /// The knobs that were set (refused outside oauth mode).
    fn set_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut note = |set: bool, key| {
            if set {
                keys.push(key);
            }
        };
        note(self.upstream_issuer.is_some(), "upstream_issuer");
        note(
            self.upstream_authorization_endpoint.is_some(),
            "upstream_authorization_endpoint",
        );
        note(
            self.upstream_token_endpoint.is_some(),
            "upstream_token_endpoint",
        );
        note(
            self.upstream_userinfo_endpoint.is_some(),
            "upstream_userinfo_endpoint",
        );
        note(
            self.upstream_subject_field.is_some(),
            "upstream_subject_field",
        );
        note(self.upstream_client_auth.is_some(), "upstream_client_auth");
        note(self.upstream_client_id.is_some(), "upstream_client_id");
        note(
            self.upstream_client_secret_file.is_some(),
            "upstream_client_secret_file",
        );
        note(self.upstream_scopes.is_some(), "upstream_scopes");
        note(self.signing_keys_file.is_some(), "signing_keys_file");
        note(self.access_token_ttl.is_some(), "access_token_ttl");
        note(self.refresh_token_ttl.is_some(), "refresh_token_ttl");
        note(self.dynamic_registration.is_some(), "dynamic_registration");
        note(
            self.registrations_per_minute.is_some(),
            "registrations_per_minute",
        );
        note(self.trusted_proxies.is_some(), "trusted_proxies");
        note(
            self.redirect_uri_patterns.is_some(),
            "redirect_uri_patterns",
        );
        note(
            self.client_metadata_documents.is_some(),
            "client_metadata_documents",
        );
        note(
            self.client_metadata_private_targets,
            "client_metadata_private_targets",
        );
        keys
    }

    fn into_config(
        self,
        reader: &mut Reader<'_>,
        warnings: &mut Vec<String>,
    ) -> Option<OAuthConfig> {
        let provider = upstream_provider(
            self.upstream_issuer,
            [
                self.upstream_authorization_endpoint,
                self.upstream_token_endpoint,
                self.upstream_userinfo_endpoint,
            ],
            self.upstream_subject_field,
            reader,
        );
        let client_auth = match self.upstream_client_auth.as_deref().map(str::trim) {
            None => None,
            Some("client_secret_basic" | "basic") => Some(UpstreamClientAuth::Basic),
            Some("client_secret_post" | "post") => Some(UpstreamClientAuth::Post),
            Some(other) => {
                reader.refuse(
                    "upstream_client_auth",
                    format!("must be client_secret_basic or client_secret_post, not {other:?}"),
                );
                None
            }
        };
        let client_id = self.upstream_client_id.or_else(|| {
            reader.fail(
                "--auth oauth needs --upstream-client-id (Shoal's client at the OpenID provider)"
                    .into(),
            );
            None
        });
        let secret = match (&self.upstream_client_secret_file, self.secret_variable) {
            (Some(_), Some(_)) => {
                reader.fail(format!(
                    "the upstream client secret is given twice: --upstream-client-secret-file and {ENV_UPSTREAM_CLIENT_SECRET}"
                ));
                None
            }
            (None, Some(secret)) => Some(secret),
            (Some(path), None) => match read_secret_file(path, warnings) {
                Ok(secret) => Some(secret),
                Err(error) => {
                    reader.refuse("upstream_client_secret_file", error);
                    None
                }
            },
            (None, None) => {
                reader.fail(format!(
                    "--auth oauth needs the upstream client secret: --upstream-client-secret-file or {ENV_UPSTREAM_CLIENT_SECRET}"
                ));
                None
            }
        };
        let signing_keys_pem = match &self.signing_keys_file {
            None => None,
            Some(path) => match read_secret_file(path, warnings) {
                Ok(pem) => Some(pem),
                Err(error) => {
                    reader.refuse("signing_keys_file", error);
                    return None;
                }
            },
        };
        let provider = provider?;
        let default_scopes = match provider {
            UpstreamProvider::OpenId { .. } => {
                vec!["openid".into(), "email".into(), "profile".into()]
            }
            // A plain provider's scopes are its own (GitHub's /user needs none).
            UpstreamProvider::OAuth2 { .. } => Vec::new(),
        };
        let mut config = OAuthConfig::new(UpstreamConfig {
            provider,
            client_id: client_id?,
            client_secret: secret?,
            scopes: self.upstream_scopes.unwrap_or(default_scopes),
            client_auth,
        });
        config.signing_keys_pem = signing_keys_pem;
        match self.access_token_ttl {
            Some(ttl) if ttl < std::time::Duration::from_secs(60) => {
                reader.refuse("access_token_ttl", "must be at least 1m".into())
            }
            Some(ttl) => config.access_token_ttl = ttl,
            None => {}
        }
        if let Some(ttl) = self.refresh_token_ttl {
            config.refresh_token_ttl = ttl;
        }
        if let Some(on) = self.dynamic_registration {
            config.dynamic_registration = on;
        }
        match self.registrations_per_minute {
            Some(0) => reader.refuse(
                "registrations_per_minute",
                "must be at least 1 (turn registration off with --dynamic-registration false)"
                    .into(),
            ),
            Some(limit) => config.registrations_per_minute = limit,
            None => {}
        }
        for entry in self.trusted_proxies.iter().flatten() {
            match parse_network(entry) {
                Some(network) => config.trusted_proxies.push(network),
                None => reader.refuse(
                    "trusted_proxies",
                    format!("{entry:?} is not an address or a CIDR range such as 10.0.0.0/8"),
                ),
            }
        }
        config.redirect_uri_patterns = self.redirect_uri_patterns;
        if let Some(on) = self.client_metadata_documents {
            config.client_metadata_documents = on;
        }
        config.client_metadata_private_targets = self.client_metadata_private_targets;
        Some(config)
    }
}

/// The upstream provider: an OpenID issuer, or a plain OAuth 2 provider's three endpoints;
/// never both, never part of the three.
fn upstream_provider(
    issuer: Option<String>,
    [authorization, token, userinfo]: [Option<String>; 3],
    subject_field: Option<String>,
    reader: &mut Reader<'_>,
) -> Option<UpstreamProvider> {
    const ENDPOINTS: &str = "--upstream-authorization-endpoint, --upstream-token-endpoint and --upstream-userinfo-endpoint";
    let plain = authorization.is_some() || token.is_some() || userinfo.is_some();
    match (issuer, authorization, token, userinfo) {
        (Some(_), ..) if plain => {
            reader.fail(format!(
                "the upstream provider is given twice: --upstream-issuer (OpenID Connect) and {ENDPOINTS} (plain OAuth 2); give one"
            ));
            None
        }
        (Some(issuer), ..) => {
            if subject_field.is_some() {
                reader.refuse(
                    "upstream_subject_field",
                    "is for a plain OAuth 2 provider; an OpenID provider's user is the id_token's sub".into(),
                );
                return None;
            }
            Some(UpstreamProvider::OpenId { issuer })
        }
        (None, Some(authorization_endpoint), Some(token_endpoint), Some(userinfo_endpoint)) => {
            Some(UpstreamProvider::OAuth2 {
                authorization_endpoint,
                token_endpoint,
                userinfo_endpoint,
                subject_field: subject_field.unwrap_or_else(|| "sub".into()),
            })
        }
        (None, ..) if plain => {
            reader.fail(format!(
                "a plain OAuth 2 upstream provider needs all of {ENDPOINTS}"
            ));
            None
        }
        (None, ..) => {
            reader.fail(format!(
                "--auth oauth needs the provider users log in at: --upstream-issuer (OpenID Connect), or {ENDPOINTS} (plain OAuth 2, GitHub-style)"
            ));
            None
        }
    }
}

/// A CIDR range (`10.0.0.0/8`, `fd00::/8`), or one address as its own range.
fn parse_network(entry: &str) -> Option<ipnet::IpNet> {
    let entry = entry.trim();
    entry.parse::<ipnet::IpNet>().ok().or_else(|| {
        entry
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// A secret file's text, trimmed; a world-readable file is used with a warning.
fn read_secret_file(path: &str, warnings: &mut Vec<String>) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot be read: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            warnings.push(format!(
                "the secret file {path} is readable by every user; chmod 600 it"
            ));
        }
    }
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err("is empty".into());
    }
    Ok(text)
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
