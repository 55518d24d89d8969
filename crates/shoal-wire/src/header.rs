//! The `Mcp-*` request headers: their names, and the value codec of revision 2026-07-28.
//!
//! From 2026-07-28 a client mirrors request fields into headers so that intermediaries can
//! route without reading the body: `Mcp-Method` (the method), `Mcp-Name` (`params.name` or
//! `params.uri`) and `Mcp-Param-{Name}` (tool arguments the tool marked with `x-mcp-header`).
//! A value that an HTTP field cannot carry as it is travels as `=?base64?{standard base64 of its
//! UTF-8, padded}?=` (Streamable HTTP, "Value Encoding"):
//!
//! - a value is sent plain when it is made of visible ASCII, spaces and tabs (RFC 9110 field
//!   content), does not begin or end with a space or tab, and does not look like the encoded
//!   form (begins with `=?base64?` and ends with `?=`, which a client must encode so that the
//!   receiver reads it literally);
//! - every other value is encoded, and so is the empty string, which some intermediaries drop;
//! - the markers are lowercase and case-sensitive: `=?BASE64?…?=` is a plain value.
//!
//! A server decodes before comparing a header with the body ([`decode_value`]), refusing plain
//! values with characters a field may not hold and encoded ones that are not canonical base64
//! of UTF-8.

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// `Mcp-Session-Id` (revisions 2025-03-26 to 2025-11-25), in the lowercase form HTTP/2 uses.
pub const MCP_SESSION_ID: &str = "mcp-session-id";
/// `MCP-Protocol-Version`.
pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// `Last-Event-ID`, the id a client resumes an SSE stream after (see [`crate::event_id`]).
pub const LAST_EVENT_ID: &str = "last-event-id";
/// `Mcp-Method` (2026-07-28): the request's JSON-RPC `method`.
pub const MCP_METHOD: &str = "mcp-method";
/// `Mcp-Name` (2026-07-28): `params.name` of `tools/call` and `prompts/get`, `params.uri` of
/// `resources/read`; its value may be encoded ([`encode_value`]).
pub const MCP_NAME: &str = "mcp-name";
/// The prefix of `Mcp-Param-{Name}` (2026-07-28), a tool argument mirrored into a header; its
/// value may be encoded ([`encode_value`]).
pub const MCP_PARAM_PREFIX: &str = "mcp-param-";

/// What opens an encoded value.
pub const ENCODED_PREFIX: &str = "=?base64?";
/// What closes an encoded value.
pub const ENCODED_SUFFIX: &str = "?=";

/// Standard alphabet, padded, and only the canonical form decodes (no missing padding, no
/// stray bits in the last character): one value, one encoding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(false),
);

/// Why a header value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderValueError {
    /// A plain value holds a character an HTTP field value may not (a control character, or
    /// anything beyond ASCII).
    #[error("header value with a character outside visible ASCII, space and tab")]
    InvalidCharacter,
    /// A plain value that looks like the encoded form, which a client must have encoded
    /// (`=?base64?=`: the markers overlap).
    #[error("header value that looks encoded but is not")]
    Ambiguous,
    /// The encoded form's payload is not canonical standard base64.
    #[error("encoded header value is not canonical base64")]
    Base64(#[source] base64::DecodeError),
    /// The encoded form's payload decodes to bytes that are not UTF-8.
    #[error("encoded header value is not UTF-8")]
    Utf8(#[source] std::string::FromUtf8Error),
}

/// Whether a byte may appear in a plain value: visible ASCII, space, tab.
fn is_field_byte(byte: u8) -> bool {
    matches!(byte, b'\t' | b' '..=b'~')
}

/// Whether `value` looks like the encoded form, read as a client must before sending: it
/// begins with the prefix and ends with the suffix, even where the two overlap.
fn looks_encoded(value: &str) -> bool {
    value.starts_with(ENCODED_PREFIX) && value.ends_with(ENCODED_SUFFIX)
}

/// Whether `value` must travel encoded (see the [module docs](self)).
pub fn needs_encoding(value: &str) -> bool {
    value.is_empty()
        || !value.bytes().all(is_field_byte)
        || value.starts_with([' ', '\t'])
        || value.ends_with([' ', '\t'])
        || looks_encoded(value)
}

/// The header value that carries `value`: itself when it is safe plain, else the encoded form.
pub fn encode_value(value: &str) -> Cow<'_, str> {
    if needs_encoding(value) {
        Cow::Owned(format!(
            "{ENCODED_PREFIX}{}{ENCODED_SUFFIX}",
            BASE64.encode(value)
        ))
    } else {
        Cow::Borrowed(value)
    }
}

/// The value a header carries: the decoded payload of the encoded form, or the plain value.
///
/// # Errors
///
/// When a plain value holds characters a field may not or looks encoded without being so,
/// or an encoded one is not canonical base64 of UTF-8.
pub fn decode_value(header: &str) -> Result<Cow<'_, str>, HeaderValueError> {
    let payload = header
        .strip_prefix(ENCODED_PREFIX)
        .and_then(|rest| rest.strip_suffix(ENCODED_SUFFIX));
    match payload {
        Some(payload) => {
            let bytes = BASE64.decode(payload).map_err(HeaderValueError::Base64)?;
            String::from_utf8(bytes)
                .map(Cow::Owned)
                .map_err(HeaderValueError::Utf8)
        }
        None if looks_encoded(header) => Err(HeaderValueError::Ambiguous),
        None if !header.bytes().all(is_field_byte) => Err(HeaderValueError::InvalidCharacter),
        None => Ok(Cow::Borrowed(header)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn encodes_the_specifications_examples() {
        // Streamable HTTP, "Value Encoding", the table of examples.
        for (value, header) in [
            ("us-west1", "us-west1"),
            ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
            (" padded ", "=?base64?IHBhZGRlZCA=?="),
            ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
            ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
        ] {
            assert_eq!(encode_value(value), header, "{value:?}");
            assert_eq!(decode_value(header).unwrap(), value, "{header:?}");
        }
    }

    #[test]
    fn sends_plain_only_what_a_field_carries_unchanged() {
        for plain in [
            "get_weather",
            "file:///projects/myapp/config.json",
            "two words",
            "a\tb",
            "~!#",
            "=?BASE64?x?=",
            "=?base64?",
            "?=",
        ] {
            assert!(!needs_encoding(plain), "{plain:?}");
            assert!(matches!(encode_value(plain), Cow::Borrowed(_)));
        }
        for encoded in [
            "",
            " lead",
            "trail ",
            "\tlead",
            "trail\t",
            "bell\u{7}",
            "del\u{7f}",
            "nul\0",
            "cr\r",
            "é",
            "=?base64??=",
            "=?base64?=",
        ] {
            assert!(needs_encoding(encoded), "{encoded:?}");
            assert!(encode_value(encoded).starts_with(ENCODED_PREFIX));
        }
        assert_eq!(encode_value(""), "=?base64??=");
        assert_eq!(decode_value("=?base64??=").unwrap(), "");
    }

    #[test]
    fn decodes_an_encoded_plain_value() {
        assert_eq!(decode_value("=?base64?dXMtd2VzdDE=?=").unwrap(), "us-west1");
    }

    #[test]
    fn refuses_what_no_conforming_client_sends() {
        assert_eq!(
            decode_value("line1\nline2"),
            Err(HeaderValueError::InvalidCharacter)
        );
        assert_eq!(
            decode_value("caf\u{e9}"),
            Err(HeaderValueError::InvalidCharacter)
        );
        assert_eq!(decode_value("=?base64?="), Err(HeaderValueError::Ambiguous));
        for bad in [
            "=?base64?%%%?=",
            // Padding missing, or where it does not belong.
            "=?base64?SGVsbG8?=",
            "=?base64?SGVsbG8==?=",
            // The URL-safe alphabet is not the standard one.
            "=?base64?-_-_?=",
            // Bits left over in the last character: not the canonical encoding of "H".
            "=?base64?SB==?=",
        ] {
            assert!(
                matches!(decode_value(bad), Err(HeaderValueError::Base64(_))),
                "{bad:?}: {:?}",
                decode_value(bad)
            );
        }
        // Base64 of bytes that are not UTF-8 (ÿþ in Latin-1).
        assert!(matches!(
            decode_value("=?base64?//4=?="),
            Err(HeaderValueError::Utf8(_))
        ));
    }

    proptest! {
        #[test]
        fn decoding_undoes_encoding(value in any::<String>()) {
            let header = encode_value(&value);
            prop_assert!(header.bytes().all(|b| (0x21..=0x7e).contains(&b) || b == b' ' || b == b'\t'));
            prop_assert_eq!(decode_value(&header).unwrap(), value.as_str());
        }

        #[test]
        fn decoding_undoes_encoding_of_ascii(value in "[\t -~]{0,24}(=\\?base64\\?[ -~]{0,8}\\?=)?") {
            let header = encode_value(&value);
            prop_assert_eq!(decode_value(&header).unwrap(), value.as_str());
        }
    }
}
