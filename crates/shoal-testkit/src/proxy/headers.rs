//! Header handling of the proxy: the hop-by-hop headers it drops, and the fixed headers it adds
//! to requests that lack them (`rr-proxy --header`), whose values are never shown.

use http::header::{self, HeaderMap, HeaderName};

/// Adds each header of `inject` whose name `headers` lacks, with all its values.
pub(super) fn add_missing(headers: &mut HeaderMap, inject: &HeaderMap) {
    for name in inject.keys() {
        if !headers.contains_key(name) {
            for value in inject.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
    }
}

/// Parses `Name: value` (as `curl -H` takes it) into a header name and a sensitive value.
///
/// # Errors
///
/// When there is no `:`, or the name or the value is not a valid header name or value.
pub fn parse_header(spec: &str) -> Result<(HeaderName, header::HeaderValue), String> {
    let (name, value) = spec
        .split_once(':')
        .ok_or_else(|| "a header is `Name: value`".to_owned())?;
    header_pair(name, value.trim())
}

/// A header name and a sensitive value; errors never show the value.
///
/// # Errors
///
/// When the name or the value is not valid in a header.
pub fn header_pair(name: &str, value: &str) -> Result<(HeaderName, header::HeaderValue), String> {
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a header name", name.trim()))?;
    let mut value = header::HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header {name} is not a valid header value"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// `Connection`, the headers it names, and the other hop-by-hop headers of RFC 9110 §7.6.1.
pub(super) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}
