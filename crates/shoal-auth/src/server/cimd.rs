//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP
//! 2025-11-25): a client whose `client_id` is an `https` URL publishes its metadata there, and
//! the server fetches it instead of a registration.
//!
//! Fetching a URL a client chose is a server-side request forgery risk, so [`CimdResolver`]:
//!
//! - resolves the host itself and refuses private, loopback, link-local, unique-local,
//!   multicast, unspecified, CGNAT, documentation and other special-purpose addresses (and
//!   their IPv4-mapped, NAT64 and 6to4 forms), unless [`FetchPolicy::allow_private_targets`];
//!   the connection goes to an address so checked (the check is the client's DNS resolver, so
//!   no rebinding between check and connect), IP-literal hosts are checked directly, and no
//!   proxy is used (a proxy would resolve the name itself);
//! - follows at most [`FetchPolicy::max_redirects`] redirects, checking every hop like the
//!   first;
//! - wants a `200` with a JSON content type, reads at most [`FetchPolicy::max_bytes`] while
//!   the body streams in (whatever `Content-Length` says), all within
//!   [`FetchPolicy::timeout`].
//!
//! Validated documents are cached in the host's key-value store (namespace `oauth-cimd`) for
//! as long as `Cache-Control: max-age` or `Expires` say, clamped to [`MIN_CACHE`]..=
//! [`MAX_CACHE`], [`DEFAULT_CACHE`] without either; `no-store` and `no-cache` mean not cached
//! (there is no revalidation). A cached client is checked against the current redirect policy
//! again when used.
//!
//! Metrics: `shoal_oauth_cimd_fetches_total{outcome}` counts resolutions that were not served
//! from the cache: `ok`, `refused` (the `client_id` or a target was refused before any
//! request to it: SSRF protection, scheme, redirect limit), `failed` (anything else:
//! unreachable, timeout, status, size, content, metadata); `shoal_oauth_cimd_cache_hits_total`
//! counts resolutions served from the cache.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, DATE, EXPIRES, HeaderMap, LOCATION};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shoal_core::host::{KeyValue, KvKey, KvNamespace};
use url::{Host, Url};

use super::client::{
    Client, ClientOrigin, RegistrationError, TokenEndpointAuthMethod, parse_metadata,
};
use super::redirect::RedirectPolicy;

/// Where validated documents are cached.
pub const NAMESPACE: KvNamespace = KvNamespace::new("oauth-cimd");
/// Default [`FetchPolicy::max_bytes`]: 5 KiB, the limit the draft suggests; a document with
/// ten redirect URIs and a few names is well under 2 KiB.
pub const DEFAULT_MAX_BYTES: usize = 5 * 1024;
/// Default [`FetchPolicy::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`FetchPolicy::max_redirects`].
pub const DEFAULT_MAX_REDIRECTS: usize = 3;
/// The shortest a document is cached (even with `max-age=0` or a past `Expires`): a client
/// cannot make the server fetch on every request.
pub const MIN_CACHE: Duration = Duration::from_secs(60);
/// The longest a document is cached: a client's changes show within a day.
pub const MAX_CACHE: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a document without cache headers is cached.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(5 * 60);
/// The longest `client_id` URL.
pub const MAX_CLIENT_ID_BYTES: usize = 2048;
/// How much of a client's string an error description quotes.
const QUOTE_CHARS: usize = 100;

/// What [`CimdResolver`] may fetch, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Fetch from private, loopback and other special-purpose addresses (tests, or a server
    /// whose clients are all on its own network). Default false.
    pub allow_private_targets: bool,
    /// Accept `http://` client ids and redirects (tests). Default false: `https` only, as the
    /// draft requires.
    pub allow_http: bool,
    /// The largest document body, in bytes. Default [`DEFAULT_MAX_BYTES`].
    pub max_bytes: usize,
    /// The time for the whole fetch, redirects and body included. Default
    /// [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// The most redirects followed. Default [`DEFAULT_MAX_REDIRECTS`].
    pub max_redirects: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_private_targets: false,
            allow_http: false,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }
}

/// Why a metadata document `client_id` could not be resolved to a client. Every case is
/// answered with `invalid_client` ([`CimdError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    /// The `client_id` is not a metadata document URL.
    #[error("client_id {client_id} is not a client metadata document URL: {reason}")]
    InvalidClientId {
        /// The id, quoted and shortened.
        client_id: String,
        /// Why.
        reason: &'static str,
    },
    /// The target's address is private, loopback or otherwise special-purpose.
    #[error("the client metadata document's host {0} is refused: it is not a public address")]
    PrivateTarget(String),
    /// A redirect to a URL that may not be fetched.
    #[error("the client metadata document redirects to a refused URL: {0}")]
    RedirectRefused(&'static str),
    /// More redirects than allowed.
    #[error("the client metadata document is behind more than {0} redirects")]
    TooManyRedirects(usize),
    /// No connection or no answer.
    #[error("the client metadata document at {0} could not be fetched: no connection")]
    Unreachable(String),
    /// Not done within the timeout.
    #[error("fetching the client metadata document took longer than {0:?}")]
    Timeout(Duration),
    /// A status other than 200.
    #[error("the client metadata document URL answered HTTP {0}, not 200")]
    Status(u16),
    /// Not a JSON content type.
    #[error(
        "the client metadata document is served as {0}, not application/json (or a +json type)"
    )]
    NotJson(String),
    /// Larger than the limit.
    #[error("the client metadata document is larger than {0} bytes")]
    TooLarge(usize),
    /// Not a JSON object.
    #[error("the client metadata document is not a JSON object")]
    InvalidJson,
    /// Its `client_id` is not the URL it was fetched from.
    #[error("the client metadata document's client_id {found} is not the URL it was fetched from")]
    ClientIdMismatch {
        /// The document's `client_id` (quoted, shortened), or `none`.
        found: String,
    },
    /// A client secret or a secret-based authentication method.
    #[error(
        "the client metadata document uses a shared secret ({0}); a metadata document client authenticates with none (or private_key_jwt, unsupported here)"
    )]
    SharedSecret(&'static str),
    /// The metadata is invalid.
    #[error("the client metadata document is invalid: {0}")]
    InvalidMetadata(#[source] RegistrationError),
}

impl CimdError {
    /// The OAuth error code: `invalid_client`.
    pub fn code(&self) -> &'static str {
        "invalid_client"
    }

    /// The `error_description`.
    pub fn description(&self) -> String {
        self.to_string()
    }

    /// The metric outcome: `refused` before any request to the target, else `failed`.
    fn outcome(&self) -> &'static str {
        match self {
            CimdError::InvalidClientId { .. }
            | CimdError::PrivateTarget(_)
            | CimdError::RedirectRefused(_)
            | CimdError::TooManyRedirects(_) => "refused",
            _ => "failed",
        }
    }
}

fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((at, _)) => format!("{:?}…", &text[..at]),
        None => format!("{text:?}"),
    }
}

/// Whether `client_id` is a metadata document URL: an `https` URL with a host and a path
/// other than `/`, without fragment, userinfo or dot segments, in canonical form (the string
/// a URL parser gives back: the id is compared byte for byte with the document's), at most
/// [`MAX_CLIENT_ID_BYTES`]. A query is allowed (the draft discourages it).
pub fn is_metadata_document_id(client_id: &str) -> bool {
    check_client_id(client_id, false).is_ok()
}

/// [`is_metadata_document_id`] with its reason; `http` too when `allow_http`.
fn check_client_id(client_id: &str, allow_http: bool) -> Result<Url, CimdError> {
    let refuse = |reason| CimdError::InvalidClientId {
        client_id: quote(client_id),
        reason,
    };
    if client_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(refuse("it is longer than 2048 bytes"));
    }
    let url = Url::parse(client_id).map_err(|_| refuse("it is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(refuse("it must be an https URL")),
    }
    if url.host().is_none() {
        return Err(refuse("it has no host"));
    }
    if client_id.contains('#') {
        return Err(refuse("it has a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("it has userinfo"));
    }
    // Dot segments (also percent-encoded) are removed by parsing, so the canonical check below
    // refuses them; this names the reason.
    let raw_path = client_id
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or_default();
    let raw_path = raw_path.split('?').next().unwrap_or_default();
    if raw_path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    }) {
        return Err(refuse("it has a . or .. path segment"));
    }
    if url.path() == "/" {
        return Err(refuse("it has no path"));
    }
    if url.as_str() != client_id {
        return Err(refuse(
            "it is not in canonical form (lower-case scheme and host, no default port, normalized percent-encoding)",
        ));
    }
    Ok(url)
}

/// Validates the document `body` fetched for `client_id` against `policy`; `now` in seconds
/// since the Unix epoch.
///
/// # Errors
///
/// Not a JSON object, a `client_id` other than the URL (byte for byte), a shared secret
/// (`client_secret`, `client_secret_expires_at`, a `client_secret_*` method), or invalid
/// metadata (as for registration).
pub fn validate_document(
    client_id: &str,
    body: &[u8],
    policy: &RedirectPolicy,
    now: u64,
) -> Result<Client, CimdError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| CimdError::InvalidJson)?;
    let object = value.as_object().ok_or(CimdError::InvalidJson)?;
    match object.get("client_id") {
        Some(Value::String(found)) if found == client_id => {}
        Some(Value::String(found)) => {
            return Err(CimdError::ClientIdMismatch {
                found: quote(found),
            });
        }
        _ => {
            return Err(CimdError::ClientIdMismatch {
                found: "none".to_owned(),
            });
        }
    }
    for field in ["client_secret", "client_secret_expires_at"] {
        if object.contains_key(field) {
            return Err(CimdError::SharedSecret(if field == "client_secret" {
                "client_secret"
            } else {
                "client_secret_expires_at"
            }));
        }
    }
    if let Some(Value::String(method)) = object.get("token_endpoint_auth_method") {
        match method.as_str() {
            "client_secret_basic" => return Err(CimdError::SharedSecret("client_secret_basic")),
            "client_secret_post" => return Err(CimdError::SharedSecret("client_secret_post")),
            "client_secret_jwt" => return Err(CimdError::SharedSecret("client_secret_jwt")),
            _ => {}
        }
    }
    let metadata = parse_metadata(object, policy).map_err(CimdError::InvalidMetadata)?;
    // Absent means none; the secret methods were refused above.
    Ok(metadata.into_client(
        client_id.to_owned(),
        None,
        TokenEndpointAuthMethod::None,
        now,
        ClientOrigin::MetadataDocument,
    ))
}

// === Address checks ===

/// Whether `ip` is a public unicast address: not private, loopback, link-local, unique-local,
/// multicast, unspecified, broadcast, CGNAT, documentation, benchmarking or reserved, and for
/// IPv6 in global unicast `2000::/3` (or an IPv4-mapped, NAT64 or 6to4 form of a public IPv4
/// address).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // ::ffff:a.b.c.d (mapped) and 64:ff9b::a.b.c.d (NAT64): the IPv4 address decides.
    if segments[..5] == [0, 0, 0, 0, 0] && segments[5] == 0xffff {
        return is_public_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(segments[6], segments[7]));
    }
    // 6to4 2002:a.b.c.d::/48.
    if segments[0] == 0x2002 {
        return is_public_v4(embedded_v4(segments[1], segments[2]));
    }
    let global_unicast = segments[0] & 0xe000 == 0x2000;
    let special = match segments[0] {
        // 2001::/23 (Teredo, benchmarking, ORCHID…) and 2001:db8::/32 (documentation).
        0x2001 => segments[1] < 0x0200 || segments[1] == 0x0db8,
        // 3fff::/20 (documentation).
        0x3fff => segments[1] < 0x1000,
        _ => false,
    };
    global_unicast && !special
}

/// The DNS resolver of the fetch client: resolves with the system resolver and keeps only
/// the addresses the policy allows, so that the connection goes to a checked address.
#[derive(Debug, Clone, Copy)]
struct CheckedResolver {
    allow_private: bool,
}

/// A name that resolved to refused addresses only.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address")]
struct RefusedName(String);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| allow_private || is_public_ip(addr.ip()))
                .collect();
            if allowed.is_empty() && !resolved.is_empty() {
                return Err(Box::new(RefusedName(host)) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

// === impl CimdResolver ===

/// Resolves metadata document client ids to clients: from the cache, else fetched (module
/// docs).
#[derive(Clone)]
pub struct CimdResolver {
    http: reqwest::Client,
    policy: FetchPolicy,
    cache: Arc<dyn KeyValue>,
}

impl std::fmt::Debug for CimdResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A cache entry: the validated client and when its document was fetched.
#[derive(Debug, Serialize, Deserialize)]
struct CachedClient {
    client: Client,
    fetched_at: u64,
}

/// A fetched document.
struct Fetched {
    body: Vec<u8>,
    cache_for: Option<Duration>,
}

impl CimdResolver {
    /// A resolver fetching under `policy` and caching in `cache`.
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built (its TLS configuration).
    pub fn new(policy: FetchPolicy, cache: Arc<dyn KeyValue>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .dns_resolver(CheckedResolver {
                allow_private: policy.allow_private_targets,
            })
            // A proxy would resolve the name itself, past the address check.
            .no_proxy()
            // Redirects are followed by hand, each hop checked.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.timeout)
            .timeout(policy.timeout)
            .build()?;
        Ok(CimdResolver {
            http,
            policy,
            cache,
        })
    }

    /// The client of the metadata document `client_id`, validated against `policy`.
    ///
    /// # Errors
    ///
    /// Why the id, its fetch or its document is refused ([`CimdError`]).
    pub async fn resolve(
        &self,
        client_id: &str,
        policy: &RedirectPolicy,
    ) -> Result<Client, CimdError> {
        let outcome = self.resolve_uncounted(client_id, policy).await;
        match &outcome {
            Ok((_, true)) => metrics::counter!(super::metrics::CIMD_CACHE_HITS).increment(1),
            Ok((_, false)) => {
                metrics::counter!(super::metrics::CIMD_FETCHES, "outcome" => "ok").increment(1);
            }
            Err(error) => {
                tracing::debug!(%error, "client metadata document refused");
                metrics::counter!(super::metrics::CIMD_FETCHES, "outcome" => error.outcome())
                    .increment(1);
            }
        }
        outcome.map(|(client, _)| client)
    }

    /// The client, and whether it came from the cache.
    async fn resolve_uncounted(
        &self,
        client_id: &str,
        policy: &RedirectPolicy,
    ) -> Result<(Client, bool), CimdError> {
        let url = check_client_id(client_id, self.policy.allow_http)?;
        let key = KvKey::new(NAMESPACE, client_id);
        if let Some(client) = self.cached(&key, policy).await {
            return Ok((client, true));
        }
        let fetched = tokio::time::timeout(self.policy.timeout, self.fetch(url))
            .await
            .map_err(|_| CimdError::Timeout(self.policy.timeout))??;
        let now = unix_now();
        let client = validate_document(client_id, &fetched.body, policy, now)?;
        if let Some(ttl) = fetched.cache_for {
            let entry = CachedClient {
                client: client.clone(),
                fetched_at: now,
            };
            match serde_json::to_vec(&entry) {
                Ok(json) => {
                    if let Err(error) = self.cache.put(&key, Bytes::from(json), ttl).await {
                        tracing::warn!(%error, "cannot cache a client metadata document");
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot serialize a cached client"),
            }
        }
        Ok((client, false))
    }

    /// The cached client of `key`, if any and still allowed by `policy`. A store that fails
    /// is logged and treated as a miss: the document is fetched instead.
    async fn cached(&self, key: &KvKey, policy: &RedirectPolicy) -> Option<Client> {
        let bytes = match self.cache.get(key).await {
            Ok(bytes) => bytes?,
            Err(error) => {
                tracing::warn!(%error, "cannot read the client metadata document cache");
                return None;
            }
        };
        let entry: CachedClient = serde_json::from_slice(&bytes).ok()?;
        // The operator may have narrowed the policy since the document was fetched.
        entry
            .client
            .redirect_uris
            .iter()
            .all(|uri| policy.check(uri).is_ok())
            .then_some(entry.client)
    }

    /// Fetches the document at `url`, following checked redirects.
    async fn fetch(&self, mut url: Url) -> Result<Fetched, CimdError> {
        let mut redirects = 0;
        loop {
            self.check_target(&url)?;
            let response = self
                .http
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| self.request_error(&url, &e))?;
            let status = response.status();
            if status.is_redirection() && response.headers().contains_key(LOCATION) {
                if redirects == self.policy.max_redirects {
                    return Err(CimdError::TooManyRedirects(self.policy.max_redirects));
                }
                redirects += 1;
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or(CimdError::RedirectRefused("its Location is not a URL"))?;
                url = url
                    .join(location)
                    .map_err(|_| CimdError::RedirectRefused("its Location is not a URL"))?;
                continue;
            }
            if status != reqwest::StatusCode::OK {
                return Err(CimdError::Status(status.as_u16()));
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if !is_json_content_type(&content_type) {
                let shown = if content_type.is_empty() {
                    "no content type".to_owned()
                } else {
                    quote(&content_type)
                };
                return Err(CimdError::NotJson(shown));
            }
            let cache_for = cache_lifetime(response.headers(), SystemTime::now());
            let body = self.read_capped(response, &url).await?;
            return Ok(Fetched { body, cache_for });
        }
    }

    /// Checks a URL before any request to it: scheme, userinfo, and an IP-literal host (a
    /// name is checked by the resolver).
    fn check_target(&self, url: &Url) -> Result<(), CimdError> {
        match url.scheme() {
            "https" => {}
            "http" if self.policy.allow_http => {}
            _ => return Err(CimdError::RedirectRefused("it is not an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CimdError::RedirectRefused("it has userinfo"));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(CimdError::RedirectRefused("it has no host")),
        };
        if self.policy.allow_private_targets || is_public_ip(ip) {
            Ok(())
        } else {
            Err(CimdError::PrivateTarget(host_of(url)))
        }
    }

    /// Reads the body, refusing more than `max_bytes` as it streams in.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        url: &Url,
    ) -> Result<Vec<u8>, CimdError> {
        let max = self.policy.max_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > max as u64)
        {
            return Err(CimdError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.request_error(url, &e))?
        {
            if body.len() + chunk.len() > max {
                return Err(CimdError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// What a failed request means: a refused address (from the resolver), a timeout, or no
    /// connection. The detail is logged, not answered.
    fn request_error(&self, url: &Url, error: &reqwest::Error) -> CimdError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(current) = cause {
            if current.downcast_ref::<RefusedName>().is_some() {
                return CimdError::PrivateTarget(host_of(url));
            }
            cause = current.source();
        }
        if error.is_timeout() {
            return CimdError::Timeout(self.policy.timeout);
        }
        tracing::debug!(url = %url, error = %error_chain(error), "client metadata document unreachable");
        CimdError::Unreachable(host_of(url))
    }
}

fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_owned()
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut chain = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        chain.push_str(": ");
        chain.push_str(&current.to_string());
        cause = current.source();
    }
    chain
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `application/json` or `application/<something>+json`, with any parameters.
fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.len() > 5 && subtype.ends_with("+json"))
}

/// How long a document answered with `headers` at `now` is cached; `None`: not at all.
pub(crate) fn cache_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => {
                    (name.trim().to_owned(), Some(argument.trim().to_owned()))
                }
                None => (directive.clone(), None),
            };
            match (name.as_str(), argument) {
                ("no-store" | "no-cache", _) => return None,
                ("max-age", Some(seconds)) => {
                    // RFC 9111 §1.2.2: a delta too large to represent is "for ever".
                    let seconds = seconds.trim_matches('"');
                    if !seconds.is_empty() && seconds.bytes().all(|b| b.is_ascii_digit()) {
                        max_age = Some(seconds.parse::<u64>().unwrap_or(u64::MAX));
                    }
                }
                _ => {}
            }
        }
    }
    let lifetime = match max_age {
        Some(seconds) => Duration::from_secs(seconds),
        None => match header_date(headers, EXPIRES) {
            Some(expires) => {
                let date = header_date(headers, DATE).unwrap_or(now);
                expires.duration_since(date).unwrap_or(Duration::ZERO)
            }
            // RFC 9111 §5.3: an invalid Expires (such as "0") means already expired.
            None if headers.contains_key(EXPIRES) => Duration::ZERO,
            None => DEFAULT_CACHE,
        },
    };
    Some(lifetime.clamp(MIN_CACHE, MAX_CACHE))
}

fn header_date(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<SystemTime> {
    let value = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok()
}

#[cfg(test)]
mod tests;
