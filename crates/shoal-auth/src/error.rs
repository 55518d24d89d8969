//! Configuration and start-up errors. Request-time failures are answered with a
//! [`Challenge`](shoal_transport::auth::Challenge), not returned as errors.

use std::path::PathBuf;

/// Why auth could not be configured or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not an `http(s)://` URL with a host.
    #[error("{0:?} is not a valid http(s) URL")]
    InvalidUrl(String),
    /// An endpoint path that does not start with `/`.
    #[error("{0:?} is not an endpoint path: it must start with /")]
    InvalidEndpointPath(String),
    /// `http://` to a host that is not loopback.
    #[error("{0:?} must use https:// (http:// is accepted for loopback hosts only)")]
    InsecureUrl(String),
    /// An algorithm name jsonwebtoken does not know.
    #[error(
        "unknown JWT algorithm {0:?}; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"
    )]
    UnknownAlgorithm(String),
    /// `none` or an HMAC algorithm: never accepted by a resource server holding public keys.
    #[error("JWT algorithm {0:?} is refused: `none` and HMAC (HS*) are never accepted")]
    RefusedAlgorithm(String),
    /// No algorithm left.
    #[error("no JWT algorithm is allowed")]
    NoAlgorithm,
    /// The tokens file could not be read.
    #[error("cannot read the tokens file {path}")]
    TokensFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of a tokens file or an entry of `SHOAL_AUTH_TOKENS` is not `name token`.
    #[error(
        "{source_name}: entry {entry} is not `name token` (or `name=token` in the environment)"
    )]
    TokenEntry {
        /// The file or variable.
        source_name: String,
        /// 1-based line or entry number.
        entry: usize,
    },
    /// A token with characters a header cannot carry as one token.
    #[error(
        "the token of {0:?} must be visible ASCII without spaces (b64token characters for Authorization: Bearer)"
    )]
    TokenSyntax(String),
    /// The same token under two names.
    #[error("the token of {0:?} is also the token of another principal")]
    DuplicateToken(String),
    /// Static mode without a single token.
    #[error("static auth needs at least one token: --auth-tokens-file or SHOAL_AUTH_TOKENS")]
    NoTokens,
    /// Not a valid header name.
    #[error("{0:?} is not a valid header name")]
    InvalidHeaderName(String),
    /// jwt mode without an issuer.
    #[error("--auth jwt needs --issuer")]
    MissingIssuer,
    /// A scope with a space or quote.
    #[error("scope {0:?} is not valid (no spaces, quotes or backslashes)")]
    InvalidScope(String),
    /// No discovery document of the issuer could be used.
    #[error("cannot discover the authorization server metadata of {issuer}: {detail}")]
    Discovery {
        /// The configured issuer.
        issuer: String,
        /// What each tried URL answered.
        detail: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The signing keys of `--auth oauth` cannot be used.
    #[error("the OAuth signing keys: {0}")]
    SigningKeys(String),
    /// The session host did not answer while starting.
    #[error("the session host: {0}")]
    Host(String),
    /// `--auth oauth` settings that do not fit together.
    #[error("--auth oauth: {0}")]
    OAuthConfig(String),
}
