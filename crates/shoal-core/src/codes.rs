//! The JSON-RPC error codes Shoal answers with: one table per protocol era.
//!
//! JSON-RPC 2.0 reserves -32768…-32000: its five standard codes, and -32099…-32000 for
//! implementation-defined server errors. MCP has since claimed parts of that server range, and
//! differently in each era:
//!
//! - [`session`]: the session-based revisions (2025-11-25 and older). -32002 is a resource
//!   nobody serves; the official SDKs answer an unknown session with -32001.
//! - [`modern`]: the stateless 2026-07-28 revision. It takes -32099…-32020 for the
//!   specification alone ([`MODERN_ONLY`]) and assigns -32020, -32021 and -32022; a resource
//!   nobody serves is -32602.
//!
//! A dual-era client probes a server with a 2026-07-28 request and reads a code of
//! [`MODERN_ONLY`] as "this server speaks 2026-07-28". A session-era answer carrying one would
//! keep such a client on a revision Shoal does not serve, so no code of [`session`] lies in
//! that range (a unit test below checks it). 2025-11-25 itself names -32042 for a URL
//! elicitation the client must complete first; Shoal never sends it, and the table leaves it
//! out.
//!
//! Every code Shoal sends is named here, once; the engine and the transport refer to these
//! constants, never to a number.

use std::ops::RangeInclusive;

/// The codes the 2026-07-28 revision reserves for the specification. Dual-era clients read any
/// of them as a 2026-07-28 answer.
pub const MODERN_ONLY: RangeInclusive<i32> = -32099..=-32020;

/// Parse error: the body is not JSON.
pub const PARSE_ERROR: i32 = -32700;
/// The JSON is not a valid JSON-RPC message (or is a batch, which Streamable HTTP forbids).
pub const INVALID_REQUEST: i32 = -32600;
/// Unknown method.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Parameters missing or malformed.
pub const INVALID_PARAMS: i32 = -32602;
/// The server failed; the message carries no detail.
pub const INTERNAL_ERROR: i32 = -32603;

/// A count or rate limit refused the request (429 in HTTP), in either era.
///
/// A server-defined code, so it stays in JSON-RPC's implementation-defined server range, but
/// below [`MODERN_ONLY`], which 2026-07-28 made the specification's (the -32029 Shoal used
/// before lay inside it, and made dual-era clients take a refusal for a 2026-07-28 answer).
/// Of what is left, -32000 and -32001 carry SDK meanings (connection closed, request timeout,
/// session not found) and -32002 the specification's resource not found; -32010 keeps clear
/// of those and of any neighbour a session-era revision might still assign.
pub const LIMIT_EXCEEDED: i32 = -32010;

/// Defines an era's codes and `ALL`, the list of them with their names, from one list.
macro_rules! table {
    ($( $(#[$doc:meta])* $name:ident = $code:expr; )*) => {
        $( $(#[$doc])* pub const $name: i32 = $code; )*

        /// Every code of this era, with its name.
        pub const ALL: &[(&str, i32)] = &[$( (stringify!($name), $name) ),*];
    };
}

/// The session-based revisions (2025-11-25, 2025-06-18, 2025-03-26): every code Shoal answers
/// their requests with. None lies in [`MODERN_ONLY`].
pub mod session {
    table! {
        /// Parse error: the body is not JSON.
        PARSE_ERROR = super::PARSE_ERROR;
        /// The JSON is not a valid JSON-RPC message, or the HTTP request is not a valid MCP
        /// one (the code of every transport refusal without a code of its own).
        INVALID_REQUEST = super::INVALID_REQUEST;
        /// Unknown method.
        METHOD_NOT_FOUND = super::METHOD_NOT_FOUND;
        /// Parameters missing or malformed; also an unknown tool or prompt.
        INVALID_PARAMS = super::INVALID_PARAMS;
        /// The server failed; the message carries no detail.
        INTERNAL_ERROR = super::INTERNAL_ERROR;
        /// An unknown, expired, deleted or another principal's session (404 in HTTP): the code
        /// the official SDKs use.
        SESSION_NOT_FOUND = -32001;
        /// `resources/read` of a URI nobody serves (MCP's own code in these revisions).
        RESOURCE_NOT_FOUND = -32002;
        /// A count or rate limit refused the request (429 in HTTP).
        LIMIT_EXCEEDED = super::LIMIT_EXCEEDED;
    }
}

/// The stateless 2026-07-28 revision. Shoal does not serve it yet; these are the codes its
/// requests are to be answered with, so that the work that serves them takes them from here.
pub mod modern {
    table! {
        /// Parse error: the body is not JSON.
        PARSE_ERROR = super::PARSE_ERROR;
        /// The JSON is not a valid JSON-RPC message.
        INVALID_REQUEST = super::INVALID_REQUEST;
        /// Unknown method (404 in HTTP).
        METHOD_NOT_FOUND = super::METHOD_NOT_FOUND;
        /// Parameters missing or malformed, a required `_meta` key missing (400 in HTTP).
        INVALID_PARAMS = super::INVALID_PARAMS;
        /// The server failed; the message carries no detail.
        INTERNAL_ERROR = super::INTERNAL_ERROR;
        /// `resources/read` of a URI nobody serves: invalid params in this revision.
        RESOURCE_NOT_FOUND = super::INVALID_PARAMS;
        /// A count or rate limit refused the request (429 in HTTP).
        LIMIT_EXCEEDED = super::LIMIT_EXCEEDED;
        /// An `Mcp-*` header is missing or disagrees with the body (400 in HTTP).
        HEADER_MISMATCH = -32020;
        /// The request needs a client capability its `_meta` does not declare (400 in HTTP).
        MISSING_CAPABILITY = -32021;
        /// The request's protocol version is not served; `data` carries `supported` and
        /// `requested` (400 in HTTP).
        UNSUPPORTED_VERSION = -32022;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_session_era_code_is_one_of_the_modern_only_range() {
        for (name, code) in session::ALL {
            assert!(
                !MODERN_ONLY.contains(code),
                "session::{name} = {code} is a 2026-07-28 code: dual-era clients would take it \
                 for a 2026-07-28 answer"
            );
        }
    }

    #[test]
    fn a_session_era_code_names_one_meaning() {
        let mut codes: Vec<i32> = session::ALL.iter().map(|(_, code)| *code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), session::ALL.len(), "{:?}", session::ALL);
    }

    #[test]
    fn the_modern_codes_are_the_specifications() {
        assert!(MODERN_ONLY.contains(&modern::HEADER_MISMATCH));
        assert!(MODERN_ONLY.contains(&modern::MISSING_CAPABILITY));
        assert!(MODERN_ONLY.contains(&modern::UNSUPPORTED_VERSION));
        assert_eq!(modern::RESOURCE_NOT_FOUND, INVALID_PARAMS);
        assert_ne!(session::RESOURCE_NOT_FOUND, modern::RESOURCE_NOT_FOUND);
    }

    #[test]
    fn the_limit_code_is_a_server_error_outside_every_assigned_code() {
        // JSON-RPC's implementation-defined server range, below the modern-only part.
        assert!((-32019..=-32000).contains(&LIMIT_EXCEEDED));
        for (name, code) in session::ALL.iter().chain(modern::ALL) {
            if *name != "LIMIT_EXCEEDED" {
                assert_ne!(*code, LIMIT_EXCEEDED, "{name}");
            }
        }
    }
}
