// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::server::redirect::*;

fn refusal(uri: &str) -> RedirectRefusal {
    RedirectPolicy::default().check(uri).unwrap_err()
}

#[test]
fn the_default_patterns_are_valid() {
    let policy = RedirectPolicy::new(RedirectPolicy::DEFAULT_PATTERNS).unwrap();
    assert_eq!(policy, RedirectPolicy::default());
    assert_eq!(policy.len(), RedirectPolicy::DEFAULT_PATTERNS.len());
}

#[test]
fn the_defaults_let_the_usual_clients_in() {
    let policy = RedirectPolicy::default();
    for uri in [
        "http://127.0.0.1:33418",
        "http://127.0.0.1:33418/",
        "http://localhost:6274/oauth/callback",
        "http://[::1]:8080/cb?x=1",
        "http://127.0.0.1/callback",
        "https://vscode.dev/redirect",
        "https://claude.ai/api/mcp/auth_callback",
        "https://app.example.com:8443/cb",
        "com.example.app:/callback",
        "com.example.app://oauth/callback",
        "cursor.app:/cb",
    ] {
        assert_eq!(policy.check(uri), Ok(()), "{uri}");
    }
}

#[test]
fn unsafe_redirect_uris_are_always_refused() {
    use RedirectRefusal::*;
    let long = format!("https://a.example/{}", "x".repeat(MAX_URI_BYTES));
    let cases: Vec<(&str, RedirectRefusal)> = vec![
        ("https://app.example.com/cb#frag", Fragment),
        ("https://app.example.com/cb#", Fragment),
        ("http://127.0.0.1:80/cb#x", Fragment),
        ("https://user@app.example.com/cb", Userinfo),
        ("https://user:pw@app.example.com/cb", Userinfo),
        ("http://evil@127.0.0.1:9/cb", Userinfo),
        ("http://app.example.com/cb", HttpNotLoopback),
        ("http://10.0.0.1/cb", HttpNotLoopback),
        ("http://localhost.evil.example/cb", HttpNotLoopback),
        ("javascript:alert(1)", Scheme("javascript".into())),
        ("data:text/html,hi", Scheme("data".into())),
        ("file:///etc/passwd", Scheme("file".into())),
        ("ftp://files.example/x", Scheme("ftp".into())),
        ("myapp:/callback", Scheme("myapp".into())),
        ("/relative/cb", NotAUri),
        ("not a uri", NotAUri),
        ("", NotAUri),
        (
            "HTTPS://app.example.com/cb",
            NotCanonical("https://app.example.com/cb".into()),
        ),
        (
            "https://APP.example.com/cb",
            NotCanonical("https://app.example.com/cb".into()),
        ),
        (
            "https://app.example.com:443/cb",
            NotCanonical("https://app.example.com/cb".into()),
        ),
        (
            "https://app.example.com/a/../cb",
            NotCanonical("https://app.example.com/cb".into()),
        ),
        (
            "https://app.example.com\\cb",
            NotCanonical("https://app.example.com/cb".into()),
        ),
        (
            "http://127.1:9/cb",
            NotCanonical("http://127.0.0.1:9/cb".into()),
        ),
        (
            "http://[0:0::1]:9/cb",
            NotCanonical("http://[::1]:9/cb".into()),
        ),
        (
            "https://app.example.com?x",
            NotCanonical("https://app.example.com/?x".into()),
        ),
    ];
    for (uri, expected) in cases {
        assert_eq!(refusal(uri), expected, "{uri}");
    }
    assert_eq!(refusal(&long), TooLong);
    // https and http need a host.
    assert!(matches!(refusal("https:/cb"), NotCanonical(_) | NoHost));
}

#[test]
fn refusals_describe_themselves() {
    assert_eq!(
        refusal("http://app.example.com/cb").to_string(),
        "http is allowed for loopback hosts (127.0.0.1, [::1], localhost) only: use https"
    );
    assert_eq!(
        refusal("https://app.example.com/cb#x").to_string(),
        "it has a fragment (#), which a redirect URI must not have"
    );
    assert_eq!(
        refusal("javascript:alert(1)").to_string(),
        "its scheme \"javascript\" is refused: use https, http to a loopback host, or a \
         private-use scheme with a dot (com.example.app)"
    );
    assert_eq!(
        refusal("https://APP.example.com/cb").to_string(),
        "it is not in canonical form; write it as \"https://app.example.com/cb\""
    );
}

#[test]
fn an_explicit_list_replaces_the_defaults() {
    let policy = RedirectPolicy::new([
        "https://app.example.com/callback",
        "https://app.example.com/oauth/*",
        "https://*/fixed",
        "http://127.0.0.1:*/cb",
        "http://localhost:8080/*",
        "com.example.app:*",
    ])
    .unwrap();
    for uri in [
        "https://app.example.com/callback",
        "https://app.example.com/oauth/",
        "https://app.example.com/oauth/done?state=1",
        "https://other.example/fixed",
        "http://127.0.0.1:5555/cb",
        "http://127.0.0.1/cb",
        "http://localhost:8080/anything",
        "com.example.app:/cb",
    ] {
        assert_eq!(policy.check(uri), Ok(()), "{uri}");
    }
    for uri in [
        "https://app.example.com/callback/",
        "https://app.example.com/callback?x",
        "https://app.example.com/oauth",
        "https://evil.example/callback",
        "https://other.example/fixed/more",
        "http://127.0.0.1:5555/cb/x",
        "http://localhost:8081/anything",
        "http://[::1]:8080/cb",
        "org.example.app:/cb",
        "https://app.example.com:444/callback",
    ] {
        assert_eq!(policy.check(uri), Err(RedirectRefusal::NotAllowed), "{uri}");
    }
    assert_eq!(
        RedirectRefusal::NotAllowed.to_string(),
        "the server's redirect URI policy does not allow it"
    );
}

#[test]
fn invalid_patterns_are_all_named() {
    let cases = [
        ("http://app.example.com/cb", "it is not a safe redirect URI"),
        (
            "https://app.example.com/cb#x",
            "it is not a safe redirect URI",
        ),
        ("https://APP.example.com/cb", "it is not in canonical form"),
        ("http://*/cb", "a wildcard host is allowed with https only"),
        (
            "http://app.example.com:*/cb",
            "http is allowed for the loopback hosts",
        ),
        (
            "https://app.example.com:*/cb",
            "a wildcard port is allowed for loopback hosts only",
        ),
        (
            "https://app.example.com/cb*",
            "a path wildcard must follow a /",
        ),
        (
            "https://app.example.com/*/cb",
            "a wildcard in a path is allowed only at its end",
        ),
        ("https://user@*/cb", "userinfo (@) is never allowed"),
        ("https://*", "it needs a path"),
        ("https://*/cb#*", "a fragment (#) is never allowed"),
        (
            "https://App.example.com/*",
            "the host is not in canonical form",
        ),
        (
            "http://127.0.0.1:080/*",
            "the port is not in canonical form",
        ),
        ("http://127.0.0.1:99999/*", "invalid port"),
        (
            "myapp:*",
            "a scheme wildcard needs a lower-case private-use scheme",
        ),
        (
            "Com.Example:*",
            "a scheme wildcard needs a lower-case private-use scheme",
        ),
        (
            "javascript:*",
            "a scheme wildcard needs a lower-case private-use scheme",
        ),
        ("*", "a wildcard is allowed in http(s):// patterns"),
        (
            "com.example.app:/cb*",
            "a wildcard is allowed in http(s):// patterns",
        ),
    ];
    let patterns: Vec<&str> = cases.iter().map(|(p, _)| *p).collect();
    let PolicyError(errors) = RedirectPolicy::new(&patterns).unwrap_err();
    assert_eq!(errors.len(), cases.len(), "{errors:?}");
    for (error, (pattern, reason)) in errors.iter().zip(cases) {
        assert_eq!(error.pattern, pattern);
        assert!(
            error.reason.starts_with(reason),
            "{pattern}: {}",
            error.reason
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("redirect URI pattern {pattern:?} is invalid: "))
        );
    }
}

#[test]
fn a_public_client_registers_without_secret() {
    let body = json!({
        "redirect_uris": ["http://127.0.0.1:33418/cb", "https://app.example.com/cb", "https://app.example.com/cb"],
        "client_name": "Example — MCP client",
        "client_uri": "https://app.example.com",
        "logo_uri": "https://app.example.com/logo.png",
        "scope": "mcp:tools read",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "software_id": "ignored",
        "client_name#fr": "ignored too",
        "jwks": {"keys": []},
    });
    let (client, secret) = register(
        body.to_string().as_bytes(),
        &RedirectPolicy::default(),
        1_700_000_000,
    )
    .unwrap();
    assert_eq!(secret, None);
    assert_eq!(client.client_secret_sha256, None);
    assert!(!client.verify_secret(""));
    assert!(client.client_id.len() >= 22);
    assert!(
        client
            .client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(
        client.redirect_uris,
        ["http://127.0.0.1:33418/cb", "https://app.example.com/cb"]
    );
    assert_eq!(client.client_name.as_deref(), Some("Example — MCP client"));
    assert_eq!(client.scope.as_deref(), Some("mcp:tools read"));
    assert_eq!(
        client.grant_types,
        [GrantType::AuthorizationCode, GrantType::RefreshToken]
    );
    assert!(client.allows_refresh());
    assert_eq!(
        client.token_endpoint_auth_method,
        TokenEndpointAuthMethod::None
    );
    assert_eq!(client.origin, ClientOrigin::Registered);
    assert_eq!(client.client_id_issued_at, 1_700_000_000);

    let stored = serde_json::to_string(&client).unwrap();
    assert_eq!(serde_json::from_str::<Client>(&stored).unwrap(), client);
    let response = registration_response(&client, None);
    assert_eq!(response["client_id"], client.client_id.as_str());
    assert_eq!(response["client_id_issued_at"], 1_700_000_000);
    assert_eq!(response["token_endpoint_auth_method"], "none");
    assert_eq!(
        response["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(response["response_types"], json!(["code"]));
    assert_eq!(response["logo_uri"], "https://app.example.com/logo.png");
    assert!(response.get("client_secret").is_none());
    assert!(response.get("client_secret_expires_at").is_none());
}

#[test]
fn a_confidential_client_gets_a_secret_kept_as_a_digest() {
    let body = json!({"redirect_uris": ["https://app.example.com/cb"]});
    let (client, secret) =
        register(body.to_string().as_bytes(), &RedirectPolicy::default(), 5).unwrap();
    let secret = secret.unwrap();
    assert_eq!(secret.len(), 43);
    assert_eq!(
        client.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretBasic
    );
    assert_eq!(client.grant_types, [GrantType::AuthorizationCode]);
    assert!(!client.allows_refresh());
    let digest = client.client_secret_sha256.clone().unwrap();
    assert_eq!(digest.len(), 64);
    assert!(!serde_json::to_string(&client).unwrap().contains(&secret));
    assert!(!format!("{client:?}").contains(&secret));
    assert!(client.verify_secret(&secret));
    assert!(!client.verify_secret(&secret[1..]));
    assert!(!client.verify_secret(""));
    assert!(!client.verify_secret(&digest));

    let response = registration_response(&client, Some(&secret));
    assert_eq!(response["client_secret"], secret.as_str());
    assert_eq!(response["client_secret_expires_at"], 0);
    assert_eq!(
        response["token_endpoint_auth_method"],
        "client_secret_basic"
    );

    let post = json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "client_secret_post"});
    let (client, secret) =
        register(post.to_string().as_bytes(), &RedirectPolicy::default(), 5).unwrap();
    assert_eq!(
        client.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretPost
    );
    assert!(client.verify_secret(&secret.unwrap()));

    // Two registrations never share an id or a secret.
    let (a, sa) = register(body.to_string().as_bytes(), &RedirectPolicy::default(), 5).unwrap();
    let (b, sb) = register(body.to_string().as_bytes(), &RedirectPolicy::default(), 5).unwrap();
    assert_ne!(a.client_id, b.client_id);
    assert_ne!(sa, sb);
}

/// Every refusal of a registration request: its code and its description.
#[test]
fn every_refused_registration_says_why() {
    let cb = json!(["https://app.example.com/cb"]);
    let too_many: Vec<String> = (0..11)
        .map(|i| format!("https://app.example.com/{i}"))
        .collect();
    let cases: Vec<(Value, &str, String)> = vec![
        (json!([1]), "invalid_client_metadata", "the registration request must be a JSON object".into()),
        (json!({}), "invalid_client_metadata", "redirect_uris is required: the URIs the authorization response may go to".into()),
        (json!({"redirect_uris": []}), "invalid_client_metadata", "redirect_uris is required: the URIs the authorization response may go to".into()),
        (json!({"redirect_uris": null}), "invalid_client_metadata", "redirect_uris is required: the URIs the authorization response may go to".into()),
        (json!({"redirect_uris": "https://app.example.com/cb"}), "invalid_client_metadata", "redirect_uris must be an array of strings".into()),
        (json!({"redirect_uris": [1]}), "invalid_client_metadata", "redirect_uris must be an array of strings".into()),
        (json!({"redirect_uris": too_many}), "invalid_client_metadata", "redirect_uris has 11 entries; at most 10 are allowed".into()),
        (json!({"redirect_uris": ["http://app.example.com/cb"]}), "invalid_redirect_uri",
            "redirect URI \"http://app.example.com/cb\" is refused: http is allowed for loopback hosts (127.0.0.1, [::1], localhost) only: use https".into()),
        (json!({"redirect_uris": ["https://app.example.com/cb#x"]}), "invalid_redirect_uri",
            "redirect URI \"https://app.example.com/cb#x\" is refused: it has a fragment (#), which a redirect URI must not have".into()),
        (json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri",
            "redirect URI \"javascript:alert(1)\" is refused: its scheme \"javascript\" is refused: use https, http to a loopback host, or a private-use scheme with a dot (com.example.app)".into()),
        (json!({"redirect_uris": cb, "grant_types": []}), "invalid_client_metadata", "grant_types must not be empty".into()),
        (json!({"redirect_uris": cb, "grant_types": ["client_credentials"]}), "invalid_client_metadata",
            "grant type \"client_credentials\" is not supported: use authorization_code and refresh_token".into()),
        (json!({"redirect_uris": cb, "grant_types": ["implicit"]}), "invalid_client_metadata",
            "grant type \"implicit\" is not supported: use authorization_code and refresh_token".into()),
        (json!({"redirect_uris": cb, "grant_types": ["refresh_token"]}), "invalid_client_metadata", "grant_types must include authorization_code".into()),
        (json!({"redirect_uris": cb, "grant_types": "authorization_code"}), "invalid_client_metadata", "grant_types must be an array of strings".into()),
        (json!({"redirect_uris": cb, "response_types": []}), "invalid_client_metadata", "response_types must not be empty".into()),
        (json!({"redirect_uris": cb, "response_types": ["code", "token"]}), "invalid_client_metadata", "response type \"token\" is not supported: use code".into()),
        (json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt"}), "invalid_client_metadata",
            "token_endpoint_auth_method \"private_key_jwt\" is not supported: use none, client_secret_basic or client_secret_post".into()),
        (json!({"redirect_uris": cb, "token_endpoint_auth_method": 1}), "invalid_client_metadata", "token_endpoint_auth_method must be a string".into()),
        (json!({"redirect_uris": cb, "client_name": "x".repeat(201)}), "invalid_client_metadata", "client_name is longer than 200 characters".into()),
        (json!({"redirect_uris": cb, "client_name": "line\nbreak"}), "invalid_client_metadata", "client_name must not contain control or text direction characters".into()),
        (json!({"redirect_uris": cb, "client_name": "abc\u{202e}lanigiro"}), "invalid_client_metadata", "client_name must not contain control or text direction characters".into()),
        (json!({"redirect_uris": cb, "client_name": ["x"]}), "invalid_client_metadata", "client_name must be a string".into()),
        (json!({"redirect_uris": cb, "client_uri": "http://app.example.com"}), "invalid_client_metadata",
            "client_uri must be an https URL (or http to a loopback host) without userinfo".into()),
        (json!({"redirect_uris": cb, "logo_uri": "javascript:alert(1)"}), "invalid_client_metadata",
            "logo_uri must be an https URL (or http to a loopback host) without userinfo".into()),
        (json!({"redirect_uris": cb, "logo_uri": "https://u:p@app.example.com/l.png"}), "invalid_client_metadata",
            "logo_uri must be an https URL (or http to a loopback host) without userinfo".into()),
        (json!({"redirect_uris": cb, "client_uri": format!("https://app.example.com/{}", "x".repeat(2048))}), "invalid_client_metadata",
            "client_uri is longer than 2048 bytes".into()),
        (json!({"redirect_uris": cb, "scope": " "}), "invalid_client_metadata",
            "scope \" \" is not a list of scope tokens separated by single spaces (RFC 6749 §3.3)".into()),
        (json!({"redirect_uris": cb, "scope": "a  b"}), "invalid_client_metadata",
            "scope \"a  b\" is not a list of scope tokens separated by single spaces (RFC 6749 §3.3)".into()),
        (json!({"redirect_uris": cb, "scope": "a\"b"}), "invalid_client_metadata",
            "scope \"a\\\"b\" is not a list of scope tokens separated by single spaces (RFC 6749 §3.3)".into()),
        (json!({"redirect_uris": cb, "scope": "x".repeat(1025)}), "invalid_client_metadata", "scope is longer than 1024 bytes".into()),
    ];
    for (body, code, description) in cases {
        let error =
            register(body.to_string().as_bytes(), &RedirectPolicy::default(), 0).unwrap_err();
        assert_eq!(
            (error.code(), error.description()),
            (code, description.clone()),
            "{body}"
        );
    }
    let not_json = register(b"{\"redirect_uris\": [", &RedirectPolicy::default(), 0).unwrap_err();
    assert_eq!(not_json.code(), "invalid_client_metadata");
    assert_eq!(
        not_json.description(),
        "the registration request is not valid JSON"
    );
    let padded = format!(
        "{{\"redirect_uris\": [\"https://app.example.com/cb\"], \"pad\": \"{}\"}}",
        "x".repeat(MAX_BODY_BYTES)
    );
    let too_large = register(padded.as_bytes(), &RedirectPolicy::default(), 0).unwrap_err();
    assert_eq!(too_large.code(), "invalid_client_metadata");
    assert_eq!(
        too_large.description(),
        "the registration request is larger than 16384 bytes"
    );
}

#[test]
fn long_values_are_quoted_short() {
    let uri = format!("http://app.example.com/{}", "x".repeat(500));
    let body = json!({"redirect_uris": [uri]});
    let error = register(body.to_string().as_bytes(), &RedirectPolicy::default(), 0).unwrap_err();
    assert!(error.description().len() < 300, "{}", error.description());
    assert!(error.description().contains("…"));
}

fn client(uris: &[&str]) -> Client {
    let body = json!({"redirect_uris": uris, "token_endpoint_auth_method": "none"});
    register(body.to_string().as_bytes(), &RedirectPolicy::default(), 0)
        .unwrap()
        .0
}

#[test]
fn redirect_uris_match_exactly() {
    let c = client(&["https://app.example.com/cb", "com.example.app:/cb"]);
    assert_eq!(
        check_redirect(&c, Some("https://app.example.com/cb")).unwrap(),
        "https://app.example.com/cb"
    );
    assert_eq!(
        check_redirect(&c, Some("com.example.app:/cb")).unwrap(),
        "com.example.app:/cb"
    );
    for other in [
        "https://app.example.com/cb/",
        "https://app.example.com/cb?x=1",
        "https://app.example.com/CB",
        "https://APP.example.com/cb",
        "https://app.example.com:443/cb",
        "https://app.example.com/cb#",
        "https://app.example.com:8443/cb",
        "com.example.app:/cb2",
    ] {
        let error = check_redirect(&c, Some(other)).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
        assert_eq!(
            error.description(),
            format!("redirect_uri {other:?} is not one of the client's registered redirect URIs")
        );
    }
    let missing = check_redirect(&c, None).unwrap_err();
    assert_eq!(missing.code(), "invalid_request");
    assert_eq!(
        missing.description(),
        "redirect_uri is required: the client registered 2 redirect URIs"
    );

    let single = client(&["https://app.example.com/only"]);
    assert_eq!(
        check_redirect(&single, None).unwrap(),
        "https://app.example.com/only"
    );
}

#[test]
fn loopback_redirect_uris_may_change_port() {
    let c = client(&[
        "http://127.0.0.1:33418/cb",
        "http://localhost/cb?x=1",
        "http://[::1]:1/",
    ]);
    for ok in [
        "http://127.0.0.1:33418/cb",
        "http://127.0.0.1:5000/cb",
        "http://127.0.0.1/cb",
        "http://localhost:9/cb?x=1",
        "http://[::1]:65000/",
        "http://[::1]:65000",
    ] {
        assert_eq!(check_redirect(&c, Some(ok)).unwrap(), ok);
    }
    for refused in [
        "http://127.0.0.1:5000/cb/",
        "http://127.0.0.1:5000/CB",
        "http://localhost:5000/cb",
        "http://127.0.0.2:5000/cb",
        "http://localhost:9/cb?x=2",
        "https://127.0.0.1:5000/cb",
        "http://127.0.0.1:5000/cb#x",
        "http://u@127.0.0.1:5000/cb",
        "http://127.0.0.1:05000/cb",
        "http://127.1:5000/cb",
    ] {
        let error = check_redirect(&c, Some(refused)).unwrap_err();
        assert_eq!(
            error,
            RedirectMismatch::NotRegistered(format!("{refused:?}")),
            "{refused}"
        );
    }
    // An https registration keeps its port.
    let https = client(&["https://app.example.com:8443/cb"]);
    assert!(check_redirect(&https, Some("https://app.example.com:8444/cb")).is_err());
}

#[test]
fn a_stored_client_reads_back() {
    let stored = json!({
        "client_id": "abc",
        "redirect_uris": ["https://app.example.com/cb"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post",
        "client_id_issued_at": 7,
        "origin": "metadata_document",
    });
    let client: Client = serde_json::from_value(stored).unwrap();
    assert_eq!(client.origin, ClientOrigin::MetadataDocument);
    assert_eq!(
        client.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretPost
    );
    assert_eq!(client.client_secret_sha256, None);
    assert_eq!(
        TokenEndpointAuthMethod::ClientSecretBasic.to_string(),
        "client_secret_basic"
    );
}

#[test]
fn an_empty_scope_is_no_scope() {
    // The Python SDK 1.x registers with "scope": "" when the server advertises none.
    let body = json!({ "redirect_uris": ["http://127.0.0.1:33418/cb"], "scope": "" });
    let (client, _) = register(body.to_string().as_bytes(), &RedirectPolicy::default(), 0).unwrap();
    assert_eq!(client.scope, None);
}
