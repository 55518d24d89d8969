// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::header::HeaderValue;
use serde_json::json;

use super::*;

const ID: &str = "https://app.example.com/oauth/client.json";

#[test]
fn metadata_document_ids_are_https_urls_with_a_path() {
    for id in [
        ID,
        "https://app.example.com/c",
        "https://app.example.com:8443/c",
        "https://app.example.com/c?v=1",
        "https://127.0.0.1/c",
    ] {
        assert!(is_metadata_document_id(id), "{id}");
    }
    let cases = [
        ("app-1234", "it is not a URL"),
        ("http://app.example.com/c", "it must be an https URL"),
        ("com.example.app:/c", "it must be an https URL"),
        ("https://app.example.com", "it has no path"),
        ("https://app.example.com/", "it has no path"),
        ("https://app.example.com/c#x", "it has a fragment"),
        ("https://app.example.com/c#", "it has a fragment"),
        ("https://u@app.example.com/c", "it has userinfo"),
        ("https://u:p@app.example.com/c", "it has userinfo"),
        (
            "https://app.example.com/a/../c",
            "it has a . or .. path segment",
        ),
        (
            "https://app.example.com/./c",
            "it has a . or .. path segment",
        ),
        (
            "https://app.example.com/a/%2E%2e/c",
            "it has a . or .. path segment",
        ),
        (
            "https://app.example.com/c/..",
            "it has a . or .. path segment",
        ),
        ("https://APP.example.com/c", "it is not in canonical form"),
        (
            "https://app.example.com:443/c",
            "it is not in canonical form",
        ),
        ("https://app.example.com\\c", "it is not in canonical form"),
    ];
    for (id, reason) in cases {
        assert!(!is_metadata_document_id(id), "{id}");
        let error = check_client_id(id, false).unwrap_err();
        assert_eq!(error.code(), "invalid_client");
        let prefix = format!("client_id {id:?} is not a client metadata document URL: {reason}");
        assert!(
            error.description().starts_with(&prefix),
            "{}",
            error.description()
        );
    }
    let long = format!(
        "https://app.example.com/{}",
        "x".repeat(MAX_CLIENT_ID_BYTES)
    );
    assert!(
        check_client_id(&long, false)
            .unwrap_err()
            .description()
            .ends_with(": it is longer than 2048 bytes")
    );
    assert!(check_client_id("http://127.0.0.1:9/c", true).is_ok());
}

#[test]
fn only_public_addresses_are_fetched() {
    for public in [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "2a00:1450::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ] {
        assert!(is_public_ip(public.parse().unwrap()), "{public}");
    }
    for private in [
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "127.0.0.1",
        "127.255.0.9",
        "100.64.0.1",
        "100.127.255.255",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "3fff::1",
        "2001::1",
        "2001:2::1",
        "2001:10::1",
        "100::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "::127.0.0.1",
    ] {
        assert!(!is_public_ip(private.parse().unwrap()), "{private}");
    }
    // Public neighbours of the refused ranges.
    for public in [
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
    ] {
        assert!(is_public_ip(public.parse().unwrap()), "{public}");
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn cache_lifetimes_follow_the_headers_within_bounds() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let secs = |s| Some(Duration::from_secs(s));
    let date = httpdate::fmt_http_date(now);
    let in_an_hour = httpdate::fmt_http_date(now + Duration::from_secs(3600));
    type Case<'a> = (Vec<(&'a str, &'a str)>, Option<Duration>);
    let cases: Vec<Case<'_>> = vec![
        (vec![], secs(300)),
        (vec![("cache-control", "max-age=600")], secs(600)),
        (
            vec![("cache-control", "public, Max-Age=\"900\"")],
            secs(900),
        ),
        (vec![("cache-control", "max-age=0")], secs(60)),
        (vec![("cache-control", "max-age=5")], secs(60)),
        (vec![("cache-control", "max-age=999999999")], secs(86_400)),
        (
            vec![("cache-control", "max-age=99999999999999999999999")],
            secs(86_400),
        ),
        (vec![("cache-control", "no-store")], None),
        (vec![("cache-control", "max-age=600, no-store")], None),
        (
            vec![("cache-control", "public"), ("cache-control", "no-cache")],
            None,
        ),
        (vec![("cache-control", "max-age=abc")], secs(300)),
        (
            vec![("cache-control", "max-age=120"), ("expires", &in_an_hour)],
            secs(120),
        ),
        (vec![("date", &date), ("expires", &in_an_hour)], secs(3600)),
        (vec![("expires", &in_an_hour)], secs(3600)),
        (vec![("date", &date), ("expires", &date)], secs(60)),
        (vec![("expires", "0")], secs(60)),
    ];
    for (pairs, expected) in cases {
        assert_eq!(cache_lifetime(&headers(&pairs), now), expected, "{pairs:?}");
    }
}

#[test]
fn json_content_types() {
    for ok in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/oauth-client+json",
    ] {
        assert!(is_json_content_type(ok), "{ok}");
    }
    for refused in [
        "",
        "text/html",
        "text/json",
        "application/+json",
        "application/jsonp",
        "application/json-seq",
    ] {
        assert!(!is_json_content_type(refused), "{refused}");
    }
}

fn document(extra: Value) -> Vec<u8> {
    let mut doc = json!({
        "client_id": ID,
        "client_name": "Example",
        "redirect_uris": ["http://127.0.0.1:33418/cb", "https://app.example.com/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    serde_json::to_vec(&doc).unwrap()
}

#[test]
fn a_valid_document_is_a_public_client() {
    let client =
        validate_document(ID, &document(json!({})), &RedirectPolicy::default(), 9).unwrap();
    assert_eq!(client.client_id, ID);
    assert_eq!(client.origin, ClientOrigin::MetadataDocument);
    assert_eq!(
        client.token_endpoint_auth_method,
        TokenEndpointAuthMethod::None
    );
    assert_eq!(client.client_secret_sha256, None);
    assert_eq!(client.client_id_issued_at, 9);
    assert!(client.allows_refresh());
    // No method means none.
    let mut bare: Value = serde_json::from_slice(&document(json!({}))).unwrap();
    bare.as_object_mut()
        .unwrap()
        .remove("token_endpoint_auth_method");
    let client = validate_document(
        ID,
        &serde_json::to_vec(&bare).unwrap(),
        &RedirectPolicy::default(),
        9,
    )
    .unwrap();
    assert_eq!(
        client.token_endpoint_auth_method,
        TokenEndpointAuthMethod::None
    );
}

/// Every refusal of a document: code and description.
#[test]
fn every_refused_document_says_why() {
    let policy = RedirectPolicy::default();
    let cases: Vec<(Vec<u8>, String)> = vec![
        (b"not json".to_vec(), "the client metadata document is not a JSON object".into()),
        (b"[]".to_vec(), "the client metadata document is not a JSON object".into()),
        (document(json!({"client_id": "https://app.example.com/other"})),
            "the client metadata document's client_id \"https://app.example.com/other\" is not the URL it was fetched from".into()),
        (document(json!({"client_id": "https://app.example.com/oauth/client.json/"})),
            "the client metadata document's client_id \"https://app.example.com/oauth/client.json/\" is not the URL it was fetched from".into()),
        (document(json!({"client_id": null})),
            "the client metadata document's client_id none is not the URL it was fetched from".into()),
        (document(json!({"client_secret": "s"})),
            "the client metadata document uses a shared secret (client_secret); a metadata document client authenticates with none (or private_key_jwt, unsupported here)".into()),
        (document(json!({"client_secret_expires_at": 0})),
            "the client metadata document uses a shared secret (client_secret_expires_at); a metadata document client authenticates with none (or private_key_jwt, unsupported here)".into()),
        (document(json!({"token_endpoint_auth_method": "client_secret_basic"})),
            "the client metadata document uses a shared secret (client_secret_basic); a metadata document client authenticates with none (or private_key_jwt, unsupported here)".into()),
        (document(json!({"token_endpoint_auth_method": "client_secret_post"})),
            "the client metadata document uses a shared secret (client_secret_post); a metadata document client authenticates with none (or private_key_jwt, unsupported here)".into()),
        (document(json!({"token_endpoint_auth_method": "client_secret_jwt"})),
            "the client metadata document uses a shared secret (client_secret_jwt); a metadata document client authenticates with none (or private_key_jwt, unsupported here)".into()),
        (document(json!({"token_endpoint_auth_method": "private_key_jwt"})),
            "the client metadata document is invalid: token_endpoint_auth_method \"private_key_jwt\" is not supported: use none, client_secret_basic or client_secret_post".into()),
        (document(json!({"redirect_uris": ["http://app.example.com/cb"]})),
            "the client metadata document is invalid: redirect URI \"http://app.example.com/cb\" is refused: http is allowed for loopback hosts (127.0.0.1, [::1], localhost) only: use https".into()),
        (document(json!({"redirect_uris": []})),
            "the client metadata document is invalid: redirect_uris is required: the URIs the authorization response may go to".into()),
        (document(json!({"grant_types": ["client_credentials"]})),
            "the client metadata document is invalid: grant type \"client_credentials\" is not supported: use authorization_code and refresh_token".into()),
        (document(json!({"response_types": ["token"]})),
            "the client metadata document is invalid: response type \"token\" is not supported: use code".into()),
    ];
    for (body, description) in cases {
        let error = validate_document(ID, &body, &policy, 0).unwrap_err();
        assert_eq!(
            (error.code(), error.description()),
            ("invalid_client", description),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // The metadata error stays reachable as the source (its own code says which field).
    let error = validate_document(
        ID,
        &document(json!({"redirect_uris": ["https://x.example/#"]})),
        &policy,
        0,
    )
    .unwrap_err();
    let CimdError::InvalidMetadata(inner) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(inner.code(), "invalid_redirect_uri");
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn every_fetch_error_has_a_description() {
    let cases = [
        (
            CimdError::PrivateTarget("10.0.0.1".into()),
            "the client metadata document's host 10.0.0.1 is refused: it is not a public address",
            "refused",
        ),
        (
            CimdError::RedirectRefused("it is not an https URL"),
            "the client metadata document redirects to a refused URL: it is not an https URL",
            "refused",
        ),
        (
            CimdError::TooManyRedirects(3),
            "the client metadata document is behind more than 3 redirects",
            "refused",
        ),
        (
            CimdError::Unreachable("app.example.com".into()),
            "the client metadata document at app.example.com could not be fetched: no connection",
            "failed",
        ),
        (
            CimdError::Timeout(Duration::from_secs(5)),
            "fetching the client metadata document took longer than 5s",
            "failed",
        ),
        (
            CimdError::Status(404),
            "the client metadata document URL answered HTTP 404, not 200",
            "failed",
        ),
        (
            CimdError::NotJson("\"text/html\"".into()),
            "the client metadata document is served as \"text/html\", not application/json (or a +json type)",
            "failed",
        ),
        (
            CimdError::TooLarge(5120),
            "the client metadata document is larger than 5120 bytes",
            "failed",
        ),
    ];
    for (error, description, outcome) in cases {
        assert_eq!(error.code(), "invalid_client");
        assert_eq!(error.description(), description);
        assert_eq!(error.outcome(), outcome);
    }
}
