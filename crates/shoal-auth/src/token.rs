//! Reading the presented token: `Authorization: Bearer <token>` (RFC 6750 §2.1) or a custom
//! header holding the token alone.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

/// What the request presents.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    /// No token header.
    Missing,
    /// A token header that does not hold exactly one token.
    Malformed,
    /// One token.
    Token(&'a str),
}

/// Reads `Authorization: Bearer <token>`. Any other scheme, an empty token, several tokens
/// or several `Authorization` headers are malformed. Stricter than RFC 6750's `1*SP`: exactly
/// one space separates scheme and token (no client sends more; less to get wrong).
pub(crate) fn bearer(headers: &HeaderMap) -> Presented<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Presented::Missing;
    };
    if values.next().is_some() {
        return Presented::Malformed;
    }
    let Ok(value) = value.to_str() else {
        return Presented::Malformed;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Presented::Malformed;
    };
    if !scheme.eq_ignore_ascii_case("bearer") || !is_b64token(token) {
        return Presented::Malformed;
    }
    Presented::Token(token)
}

/// Reads a custom header that holds the token alone.
pub(crate) fn custom<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Presented<'a> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Presented::Missing;
    };
    if values.next().is_some() {
        return Presented::Malformed;
    }
    match value.to_str() {
        Ok(token) if !token.is_empty() && token.chars().all(|c| c.is_ascii_graphic()) => {
            Presented::Token(token)
        }
        _ => Presented::Malformed,
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer(&headers(&[])), Presented::Missing);
        assert_eq!(
            bearer(&headers(&["Bearer abc.def-_~+/=="])),
            Presented::Token("abc.def-_~+/==")
        );
        assert_eq!(bearer(&headers(&["bearer abc"])), Presented::Token("abc"));
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Basic abc",
            "Bearer a,b",
            "abc",
            "Bearer ==",
        ] {
            assert_eq!(bearer(&headers(&[bad])), Presented::Malformed, "{bad:?}");
        }
        assert_eq!(
            bearer(&headers(&["Bearer a", "Bearer b"])),
            Presented::Malformed
        );
    }
}
