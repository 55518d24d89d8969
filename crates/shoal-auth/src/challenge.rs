//! The fixed `error_description` of each refusal, so that clients and tests can rely on them
//! and no part of a presented token ever reaches a response. The challenges themselves are
//! built by [`shoal_transport::auth::Challenger`].

/// The Authorization header is not `Bearer <token>`.
pub(crate) const MALFORMED_AUTHORIZATION: &str =
    "the Authorization header must be Bearer followed by one token";
/// A custom token header is empty, repeated or holds more than one token.
pub(crate) const MALFORMED_CUSTOM_HEADER: &str = "the token header must carry exactly one token";
/// A static token matched no configured token.
pub(crate) const STATIC_TOKEN_INVALID: &str = "the token is not valid";
/// The principal lacks a scope every request needs.
pub(crate) const SCOPE_MISSING: &str = "the token lacks a required scope";
/// The principal lacks a scope the called tool needs.
pub(crate) const TOOL_SCOPE_MISSING: &str = "the token lacks a scope required by this tool";
