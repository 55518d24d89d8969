//! OAuth clients of Shoal's authorization server: what is kept of each ([`Client`]) and
//! Dynamic Client Registration (RFC 7591, [`register`]). Which redirect URIs are accepted is
//! `redirect`'s.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use url::Url;

use super::redirect::{RedirectPolicy, RedirectRefusal, is_loopback_host};

/// The largest registration request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// The longest redirect URI, `client_uri` or `logo_uri`, in bytes.
pub const MAX_URI_BYTES: usize = 2048;
/// The longest `client_name`, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest `scope` value, in bytes.
pub const MAX_SCOPE_BYTES: usize = 1024;
/// Random bytes in a generated `client_id` (32 base64url characters).
const CLIENT_ID_BYTES: usize = 24;
/// Random bytes in a generated client secret (43 base64url characters).
const SECRET_BYTES: usize = 32;
/// How much of a client's string an error description quotes.
const QUOTE_CHARS: usize = 100;

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// A public client: no secret (it proves itself with PKCE).
    None,
    /// The secret in HTTP Basic authentication.
    ClientSecretBasic,
    /// The secret in the form body.
    ClientSecretPost,
}

impl TokenEndpointAuthMethod {
    /// Its name in metadata (`none`, `client_secret_basic`, `client_secret_post`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEndpointAuthMethod::None => "none",
            TokenEndpointAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenEndpointAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(TokenEndpointAuthMethod::None),
            "client_secret_basic" => Some(TokenEndpointAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(TokenEndpointAuthMethod::ClientSecretPost),
            _ => None,
        }
    }
}

/// A grant type the server issues tokens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
}

impl GrantType {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            _ => None,
        }
    }
}

/// A response type of the authorization endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// `code`: the only one of OAuth 2.1.
    Code,
}

/// Where a client's metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientOrigin {
    /// Dynamic Client Registration (RFC 7591).
    Registered,
    /// A Client ID Metadata Document fetched from the `client_id` URL.
    MetadataDocument,
}

/// A client as the server keeps it (as JSON). It never holds a secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The `client_id`: generated at registration, or the metadata document's URL.
    pub client_id: String,
    /// Lower-case hex SHA-256 of the client secret, for confidential clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_sha256: Option<String>,
    /// The registered redirect URIs, compared exactly ([`check_redirect`](super::redirect::check_redirect)).
    pub redirect_uris: Vec<String>,
    /// A name to show the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The client's home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// The client's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// The scopes the client may ask for, space-separated; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Always holds `authorization_code`.
    pub grant_types: Vec<GrantType>,
    /// Always `[code]`.
    pub response_types: Vec<ResponseType>,
    /// How it authenticates at the token endpoint.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// When it was registered or its document fetched, in seconds since the Unix epoch.
    pub client_id_issued_at: u64,
    /// Registration or metadata document.
    pub origin: ClientOrigin,
}

impl Client {
    /// Whether `presented` is this client's secret, compared in constant time (of the
    /// digests). Always false for a client without a secret.
    pub fn verify_secret(&self, presented: &str) -> bool {
        let Some(stored) = &self.client_secret_sha256 else {
            return false;
        };
        let presented = sha256_hex(presented);
        bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
    }

    /// Whether the client may use refresh tokens.
    pub fn allows_refresh(&self) -> bool {
        self.grant_types.contains(&GrantType::RefreshToken)
    }
}

fn sha256_hex(secret: &str) -> String {
    digest(&SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // The thread RNG is a CSPRNG seeded by the OS (rand's `ThreadRng`).
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// At most [`QUOTE_CHARS`] characters of a client's string, for error descriptions.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((at, _)) => format!("{:?}…", &text[..at]),
        None => format!("{text:?}"),
    }
}

// === Registration ===

/// Why a registration request (or a metadata document's metadata) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("the registration request is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The body is not JSON.
    #[error("the registration request is not valid JSON")]
    NotJson,
    /// JSON, but not an object.
    #[error("the registration request must be a JSON object")]
    NotObject,
    /// A field of the wrong JSON type.
    #[error("{field} must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// No `redirect_uris`.
    #[error("redirect_uris is required: the URIs the authorization response may go to")]
    NoRedirectUris,
    /// More than [`MAX_REDIRECT_URIS`].
    #[error("redirect_uris has {0} entries; at most {MAX_REDIRECT_URIS} are allowed")]
    TooManyRedirectUris(usize),
    /// A redirect URI the policy refuses.
    #[error("redirect URI {uri} is refused: {reason}")]
    RedirectUri {
        /// The URI, quoted and shortened.
        uri: String,
        /// Why.
        reason: RedirectRefusal,
    },
    /// An empty list where one value at least is needed.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A grant type other than `authorization_code` and `refresh_token`.
    #[error("grant type {0} is not supported: use authorization_code and refresh_token")]
    GrantType(String),
    /// `grant_types` without `authorization_code`.
    #[error("grant_types must include authorization_code")]
    NoAuthorizationCode,
    /// A response type other than `code`.
    #[error("response type {0} is not supported: use code")]
    ResponseType(String),
    /// An authentication method other than the supported ones.
    #[error(
        "token_endpoint_auth_method {0} is not supported: use none, client_secret_basic or client_secret_post"
    )]
    AuthMethod(String),
    /// A string field that is too long.
    #[error("{field} is longer than {limit}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit, with its unit.
        limit: &'static str,
    },
    /// A name with control characters.
    #[error("client_name must not contain control or text direction characters")]
    ControlCharacters,
    /// A `client_uri` or `logo_uri` that is not a safe web URL.
    #[error("{field} must be an https URL (or http to a loopback host) without userinfo")]
    WebUri {
        /// The field.
        field: &'static str,
    },
    /// A scope value that is not a space-separated list of scope tokens.
    #[error("scope {0} is not a list of scope tokens separated by single spaces (RFC 6749 §3.3)")]
    Scope(String),
}

impl RegistrationError {
    /// The RFC 7591 §3.2.2 error code: `invalid_redirect_uri` for a refused redirect URI,
    /// `invalid_client_metadata` for everything else.
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::RedirectUri { .. } => "invalid_redirect_uri",
            _ => "invalid_client_metadata",
        }
    }

    /// The `error_description`.
    pub fn description(&self) -> String {
        self.to_string()
    }
}

/// The client metadata fields both registration and metadata documents carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) client_name: Option<String>,
    pub(crate) client_uri: Option<String>,
    pub(crate) logo_uri: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) grant_types: Vec<GrantType>,
    pub(crate) response_types: Vec<ResponseType>,
    /// `None` when absent: the default differs (RFC 7591 vs metadata documents).
    pub(crate) token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
}

/// A string field; `null` counts as absent.
fn string_field<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, RegistrationError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RegistrationError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// An array-of-strings field; `null` counts as absent.
fn strings_field<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<Vec<&'a str>>, RegistrationError> {
    let wrong = RegistrationError::WrongType {
        field,
        expected: "an array of strings",
    };
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or(wrong.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong),
    }
}

fn web_uri(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, RegistrationError> {
    let Some(uri) = string_field(object, field)? else {
        return Ok(None);
    };
    if uri.len() > MAX_URI_BYTES {
        return Err(RegistrationError::TooLong {
            field,
            limit: "2048 bytes",
        });
    }
    let safe = Url::parse(uri).is_ok_and(|url| {
        let scheme_ok = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => is_loopback_host(url.host()),
            _ => false,
        };
        scheme_ok && url.username().is_empty() && url.password().is_none()
    });
    if safe {
        Ok(Some(uri.to_owned()))
    } else {
        Err(RegistrationError::WebUri { field })
    }
}

/// Control characters, and the bidirectional embedding, override and isolate characters.
fn is_unsafe_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, separated by one space.
fn valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        })
}

/// Validates the client metadata of `object` (RFC 7591 §2) against `policy`; unknown fields
/// are ignored.
impl Metadata {
    /// The client `client_id` of this metadata.
    pub(crate) fn into_client(
        self,
        client_id: String,
        client_secret_sha256: Option<String>,
        token_endpoint_auth_method: TokenEndpointAuthMethod,
        client_id_issued_at: u64,
        origin: ClientOrigin,
    ) -> Client {
        Client {
            client_id,
            client_secret_sha256,
            redirect_uris: self.redirect_uris,
            client_name: self.client_name,
            client_uri: self.client_uri,
            logo_uri: self.logo_uri,
            scope: self.scope,
            grant_types: self.grant_types,
            response_types: self.response_types,
            token_endpoint_auth_method,
            client_id_issued_at,
            origin,
        }
    }
}

pub(crate) fn parse_metadata(
    object: &Map<String, Value>,
    policy: &RedirectPolicy,
) -> Result<Metadata, RegistrationError> {
    let uris = strings_field(object, "redirect_uris")?.ok_or(RegistrationError::NoRedirectUris)?;
    if uris.is_empty() {
        return Err(RegistrationError::NoRedirectUris);
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(RegistrationError::TooManyRedirectUris(uris.len()));
    }
    let mut redirect_uris: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        policy
            .check(uri)
            .map_err(|reason| RegistrationError::RedirectUri {
                uri: quote(uri),
                reason,
            })?;
        if !redirect_uris.iter().any(|u| u == uri) {
            redirect_uris.push(uri.to_owned());
        }
    }

    let grant_types = match strings_field(object, "grant_types")? {
        None => vec![GrantType::AuthorizationCode],
        Some(names) if names.is_empty() => return Err(RegistrationError::Empty("grant_types")),
        Some(names) => {
            let mut grants = Vec::new();
            for name in names {
                let grant = GrantType::parse(name)
                    .ok_or_else(|| RegistrationError::GrantType(quote(name)))?;
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
            if !grants.contains(&GrantType::AuthorizationCode) {
                return Err(RegistrationError::NoAuthorizationCode);
            }
            grants
        }
    };
    match strings_field(object, "response_types")? {
        Some(names) if names.is_empty() => {
            return Err(RegistrationError::Empty("response_types"));
        }
        Some(names) => {
            if let Some(other) = names.iter().find(|n| **n != "code") {
                return Err(RegistrationError::ResponseType(quote(other)));
            }
        }
        None => {}
    }
    let token_endpoint_auth_method = match string_field(object, "token_endpoint_auth_method")? {
        None => None,
        Some(name) => Some(
            TokenEndpointAuthMethod::parse(name)
                .ok_or_else(|| RegistrationError::AuthMethod(quote(name)))?,
        ),
    };

    let client_name = match string_field(object, "client_name")? {
        None => None,
        Some(name) if name.chars().count() > MAX_NAME_CHARS => {
            return Err(RegistrationError::TooLong {
                field: "client_name",
                limit: "200 characters",
            });
        }
        // A consent screen shows it: no line breaks, no text direction overrides that would
        // make it read as another name.
        Some(name) if name.chars().any(is_unsafe_in_name) => {
            return Err(RegistrationError::ControlCharacters);
        }
        Some(name) => Some(name.to_owned()),
    };
    let scope = match string_field(object, "scope")? {
        // Some SDKs send "" when the server advertised no scopes: no scope asked for.
        None => None,
        Some("") => None,
        Some(scope) if scope.len() > MAX_SCOPE_BYTES => {
            return Err(RegistrationError::TooLong {
                field: "scope",
                limit: "1024 bytes",
            });
        }
        Some(scope) if !valid_scope(scope) => return Err(RegistrationError::Scope(quote(scope))),
        Some(scope) => Some(scope.to_owned()),
    };
    Ok(Metadata {
        redirect_uris,
        client_name,
        client_uri: web_uri(object, "client_uri")?,
        logo_uri: web_uri(object, "logo_uri")?,
        scope,
        grant_types,
        response_types: vec![ResponseType::Code],
        token_endpoint_auth_method,
    })
}

/// Validates an RFC 7591 registration request `body` and makes the client, with a new
/// `client_id` and, for a confidential client (`client_secret_basic`, the default, or
/// `client_secret_post`), a new secret: returned in plain once, kept only as its SHA-256.
/// `now` is the time in seconds since the Unix epoch.
///
/// # Errors
///
/// The first thing wrong with the request ([`RegistrationError::code`] says which RFC 7591
/// error to answer).
pub fn register(
    body: &[u8],
    policy: &RedirectPolicy,
    now: u64,
) -> Result<(Client, Option<String>), RegistrationError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RegistrationError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| RegistrationError::NotJson)?;
    let object = value.as_object().ok_or(RegistrationError::NotObject)?;
    let metadata = parse_metadata(object, policy)?;
    let method = metadata
        .token_endpoint_auth_method
        .unwrap_or(TokenEndpointAuthMethod::ClientSecretBasic);
    let secret = match method {
        TokenEndpointAuthMethod::None => None,
        TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost => {
            Some(random_token(SECRET_BYTES))
        }
    };
    let client = metadata.into_client(
        random_token(CLIENT_ID_BYTES),
        secret.as_deref().map(sha256_hex),
        method,
        now,
        ClientOrigin::Registered,
    );
    Ok((client, secret))
}

/// The RFC 7591 §3.2.1 response body: `client_id`, `client_secret` and
/// `client_secret_expires_at: 0` (never expires) when a secret was issued,
/// `client_id_issued_at`, and the registered metadata.
pub fn registration_response(client: &Client, secret: Option<&str>) -> Value {
    let mut response = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.client_id_issued_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": client.response_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    });
    if let Some(secret) = secret {
        response["client_secret"] = secret.into();
        response["client_secret_expires_at"] = 0.into();
    }
    for (field, value) in [
        ("client_name", &client.client_name),
        ("client_uri", &client.client_uri),
        ("logo_uri", &client.logo_uri),
        ("scope", &client.scope),
    ] {
        if let Some(value) = value {
            response[field] = value.as_str().into();
        }
    }
    response
}

impl fmt::Display for TokenEndpointAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
