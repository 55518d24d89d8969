use std::path::PathBuf;
use std::time::Duration;

use shoal_auth::{AuthConfig, UpstreamClientAuth, UpstreamProvider};

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Sources {
    Sources::from_variables(
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    )
}

/// A TOML file in a directory of its own, removed on drop.
struct ConfigFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let dir =
            std::env::temp_dir().join(format!("shoal-settings-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shoal.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile { dir, path }
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn errors(sources: &Sources) -> Vec<String> {
    sources
        .resolve()
        .unwrap_err()
        .errors()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn defaults_are_loopback_memory_and_no_auth() {
    let settings = Sources::empty().resolve().unwrap();
    assert_eq!(settings.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(settings.admin_listen, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(settings.public_url, "http://127.0.0.1:8080/mcp");
    assert_eq!(settings.host, HostSettings::Memory);
    assert_eq!(settings.auth, AuthConfig::None);
    assert_eq!(settings.sessions, SessionSettings::default());
    assert_eq!(settings.sessions.idle_timeout, Duration::from_secs(1800));
    assert_eq!(settings.sessions.event_retention, Duration::from_secs(600));
    assert_eq!(settings.sessions.max_per_principal, 100);
    assert_eq!(settings.transport.max_header_bytes, 16 * 1024);
    assert_eq!(settings.transport.max_json_depth, 64);
    assert_eq!(settings.transport.rate_limit, None);
    assert_eq!(settings.connections.idle_timeout, Duration::from_secs(60));
    assert_eq!(settings.connections.write_timeout, Duration::from_secs(30));
    assert_eq!(settings.shutdown.drain_timeout, Duration::from_secs(10));
    assert!(!settings.unauthenticated_exposed);
}

#[test]
fn the_layers_rise_defaults_file_variables_flags() {
    let file = ConfigFile::new(
        "layers",
        "listen = \"127.0.0.1:7000\"\nmax_json_depth = 10\nsession_idle_timeout = \"5m\"\n\
         max_body_bytes = 2048\nrate_limit = \"600/m\"\nrate_limit_burst = 20\n",
    );
    let sources = vars(&[
        ("SHOAL_CONFIG", file.path.to_str().unwrap()),
        ("SHOAL_LISTEN", "127.0.0.1:7001"),
        ("SHOAL_MAX_JSON_DEPTH", "11"),
        ("SHOAL_RATE_LIMIT", "5/s"),
    ])
    .flag("max_json_depth", "12");
    let settings = sources.resolve().unwrap();
    assert_eq!(
        settings.listen,
        "127.0.0.1:7001".parse().unwrap(),
        "a variable wins over the file"
    );
    assert_eq!(
        settings.transport.max_json_depth, 12,
        "a flag wins over all"
    );
    assert_eq!(settings.transport.max_body_bytes, 2048, "the file fills in");
    assert_eq!(settings.sessions.idle_timeout, Duration::from_secs(300));
    // The variable's rate, the file's burst.
    let rate = settings.transport.rate_limit.unwrap();
    assert_eq!((rate.to_string(), rate.burst.get()), ("5/s".to_owned(), 20));
}

#[test]
fn three_bad_settings_are_reported_together_each_naming_flag_variable_and_key() {
    let file = ConfigFile::new("three", "write_timeout = \"soon\"\n");
    let sources = vars(&[
        ("SHOAL_CONFIG", file.path.to_str().unwrap()),
        ("SHOAL_MAX_BODY_BYTES", "lots"),
    ])
    .flag("listen", "localhost-8080");
    let error = sources.resolve().unwrap_err();
    let listed = error.to_string();
    assert_eq!(error.errors().len(), 3, "{listed}");
    assert!(listed.starts_with("3 settings are wrong:"), "{listed}");
    for (origin, key, flag, variable) in [
        (
            "--listen is not valid",
            "listen",
            "--listen",
            "SHOAL_LISTEN",
        ),
        (
            "SHOAL_MAX_BODY_BYTES is not valid",
            "max_body_bytes",
            "--max-body-bytes",
            "SHOAL_MAX_BODY_BYTES",
        ),
        (
            "write_timeout in ",
            "write_timeout",
            "--write-timeout",
            "SHOAL_WRITE_TIMEOUT",
        ),
    ] {
        let line = listed
            .lines()
            .find(|line| line.contains(origin))
            .unwrap_or_else(|| panic!("no line from {origin}: {listed}"));
        assert!(
            line.contains(&format!(
                "[flag {flag}, variable {variable}, key {key} in the config file]"
            )),
            "{line}"
        );
    }
    assert!(listed.contains("\"lots\""), "{listed}");
    assert!(
        listed.contains("is not a duration such as 30s or 10m: \"soon\""),
        "{listed}"
    );
}

#[test]
fn unknown_file_keys_are_errors_unknown_variables_warnings() {
    let file = ConfigFile::new("unknown", "lisen = \"x\"\n");
    let listed = errors(&Sources::empty().file(&file.path));
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].contains("unknown setting \"lisen\""),
        "{listed:?}"
    );
    let settings = vars(&[("SHOAL_LISTN", "127.0.0.1:1")]).resolve().unwrap();
    assert!(
        settings
            .warnings
            .iter()
            .any(|w| w.contains("SHOAL_LISTN is not a Shoal setting")),
        "{:?}",
        settings.warnings
    );
    let missing = errors(&Sources::empty().file("/nonexistent/shoal.toml"));
    assert!(
        missing[0].starts_with("reading config file /nonexistent/shoal.toml"),
        "{missing:?}"
    );
}

#[test]
fn variables_keep_text_and_numbers_alike() {
    let settings = vars(&[
        ("SHOAL_NODE_ID", "7"),
        ("SHOAL_REDIS_KEY_PREFIX", "0042"),
        ("SHOAL_SESSION_HOST", "redis://127.0.0.1:6379"),
        ("SHOAL_MAX_STREAMS_PER_SESSION", "3"),
        (
            "SHOAL_ALLOWED_ORIGINS",
            "https://a.example, https://b.example",
        ),
    ])
    .resolve()
    .unwrap();
    assert!(
        settings.node_id.as_str().starts_with("7-"),
        "{}",
        settings.node_id
    );
    assert_eq!(
        settings.host,
        HostSettings::Redis {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "0042".into()
        }
    );
    assert_eq!(settings.transport.max_streams_per_session, 3);
    assert_eq!(
        settings.transport.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
}

#[test]
fn every_process_gets_its_own_node_id_from_the_configured_prefix() {
    let sources = vars(&[("SHOAL_NODE_ID", "pod-7")]);
    let first = sources.resolve().unwrap().node_id;
    let restarted = sources.resolve().unwrap().node_id;
    assert!(first.as_str().starts_with("pod-7-"), "{first}");
    // A restarted process must not be taken for its dead predecessor (found by the `kill9`
    // fault scenario: calls whose handler died were never answered).
    assert_ne!(first, restarted);
}

#[test]
fn session_host_is_memory_or_a_redis_url_and_never_echoes_a_password() {
    for url in [
        "redis://:secret@127.0.0.1:6379/0",
        "redis-cluster://127.0.0.1:7000",
        "rediss-cluster://app:secret@redis.example:7000",
    ] {
        let settings = Sources::empty()
            .flag("session_host", url)
            .resolve()
            .unwrap();
        assert!(
            matches!(&settings.host, HostSettings::Redis { url: u, .. } if u == url),
            "{url}"
        );
        assert!(!format!("{settings:?}").contains("secret"));
    }
    let listed = errors(&Sources::empty().flag("session_host", "postgres://u:secret@x"));
    assert!(
        listed[0].starts_with("--session-host must be `memory`"),
        "{listed:?}"
    );
    assert!(!listed[0].contains("secret"), "{listed:?}");
}

#[test]
fn limits_below_their_floor_are_refused() {
    let listed = errors(
        &Sources::empty()
            .flag("max_body_bytes", "10")
            .flag("max_json_depth", "0")
            .flag("event_retention", "0s")
            .flag("session_idle_timeout", "0s")
            .flag("rate_limit_burst", "5"),
    );
    assert_eq!(listed.len(), 5, "{listed:#?}");
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with("--max-body-bytes must be at least 1024 (got 10)")),
        "{listed:#?}"
    );
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with("--rate-limit-burst needs --rate-limit"))
    );
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with("--event-retention must be at least 1ms"))
    );
}

#[test]
fn auth_none_needs_loopback_or_the_explicit_switch() {
    let listed = errors(&Sources::empty().flag("listen", "0.0.0.0:8080"));
    assert!(listed[0].contains("without authentication"), "{listed:?}");
    let allowed = Sources::empty()
        .flag("listen", "0.0.0.0:8080")
        .switch("allow_unauthenticated")
        .flag("public_url", "https://mcp.example.com/mcp")
        .resolve()
        .unwrap();
    assert!(allowed.unauthenticated_exposed);
    assert!(
        allowed
            .transport
            .allowed_hosts
            .contains(&"mcp.example.com".to_owned())
    );
    let from_variable = vars(&[
        ("SHOAL_LISTEN", "0.0.0.0:8080"),
        ("SHOAL_ALLOW_UNAUTHENTICATED", "true"),
    ])
    .resolve()
    .unwrap();
    assert!(from_variable.unauthenticated_exposed);
}

#[test]
fn static_tokens_from_the_environment_or_a_file() {
    let sources = vars(&[
        ("SHOAL_AUTH", "static"),
        ("SHOAL_AUTH_TOKENS", "ci=tok-1,ops=tok-2"),
        ("SHOAL_LISTEN", "0.0.0.0:8080"),
    ]);
    let settings = sources.resolve().unwrap();
    assert!(
        !settings.unauthenticated_exposed,
        "auth makes a public listen fine"
    );
    let AuthConfig::Static(config) = &settings.auth else {
        panic!("static")
    };
    assert_eq!(config.tokens.verify("tok-2"), Some("ops"));
    assert!(
        !format!("{settings:?}").contains("tok-1"),
        "tokens never reach a log"
    );

    let file = ConfigFile::new("tokens", "");
    let tokens = file.dir.join("tokens");
    std::fs::write(&tokens, "# team\nalice a-token\n").unwrap();
    let settings = Sources::empty()
        .flag("auth", "static")
        .flag("auth_tokens_file", tokens.to_str().unwrap())
        .flag("auth_header", "X-API-Key")
        .resolve()
        .unwrap();
    let AuthConfig::Static(config) = &settings.auth else {
        panic!("static")
    };
    assert_eq!(config.header.as_ref().unwrap().as_str(), "x-api-key");
    assert_eq!(config.tokens.verify("a-token"), Some("alice"));
    let listed = errors(&Sources::empty().flag("auth", "static"));
    assert!(listed[0].contains("at least one token"), "{listed:?}");
}

#[test]
fn jwt_settings_and_their_defaults() {
    let file = ConfigFile::new(
        "jwt",
        "auth = \"jwt\"\nissuer = \"https://kc.example.com/realms/mcp\"\n\
         [tool_scopes]\necho = [\"mcp:echo\"]\ncount = [\"mcp:count\"]\n",
    );
    let settings = Sources::empty()
        .file(&file.path)
        .flag("public_url", "https://mcp.example.com/mcp/")
        .flag_list("tool_scopes", vec!["echo=mcp:echo mcp:extra".into()])
        .flag_list("required_scopes", vec!["mcp:use".into()])
        .resolve()
        .unwrap();
    let AuthConfig::Jwt(jwt) = &settings.auth else {
        panic!("jwt")
    };
    assert_eq!(jwt.issuer, "https://kc.example.com/realms/mcp");
    assert_eq!(
        jwt.audience, "https://mcp.example.com/mcp",
        "no trailing slash"
    );
    assert_eq!(jwt.required_scopes, ["mcp:use"]);
    assert_eq!(
        jwt.tool_scopes["echo"],
        ["mcp:echo", "mcp:extra"],
        "the flag wins"
    );
    assert_eq!(
        jwt.tool_scopes["count"],
        ["mcp:count"],
        "the file's other entries stay"
    );
    assert_eq!(jwt.leeway, Duration::from_secs(30));
    assert_eq!(
        jwt.algorithms,
        shoal_auth::config::DEFAULT_ALGORITHMS.to_vec()
    );
    let from_variable = vars(&[
        ("SHOAL_AUTH", "jwt"),
        ("SHOAL_ISSUER", "https://as.example.com"),
        ("SHOAL_TOOL_SCOPES", "echo=a b;count=c"),
    ])
    .resolve()
    .unwrap();
    let AuthConfig::Jwt(jwt) = &from_variable.auth else {
        panic!("jwt")
    };
    assert_eq!(jwt.tool_scopes["echo"], ["a", "b"]);
    assert_eq!(jwt.tool_scopes["count"], ["c"]);

    for (sources, needle) in [
        (Sources::empty().flag("auth", "jwt"), "--issuer"),
        (
            Sources::empty()
                .flag("auth", "jwt")
                .flag("issuer", "https://as.example.com")
                .flag_list("jwt_algorithms", vec!["RS256".into(), "HS256".into()]),
            "HS256",
        ),
        (
            Sources::empty().flag("issuer", "https://as.example.com"),
            "--auth jwt",
        ),
        (
            Sources::empty().flag_list("required_scopes", vec!["a".into()]),
            "--auth jwt",
        ),
        (
            Sources::empty()
                .flag("auth", "jwt")
                .flag("issuer", "https://as.example.com")
                .flag("listen", "0.0.0.0:8080"),
            "needs --public-url",
        ),
        (
            Sources::empty().flag("auth", "ldap"),
            "--auth must be none, static, jwt or oauth",
        ),
    ] {
        let listed = errors(&sources);
        assert!(
            listed.iter().any(|l| l.contains(needle)),
            "{needle}: {listed:#?}"
        );
    }
}

#[test]
fn the_request_state_key_ring_comes_from_the_environment_or_a_file_never_echoed() {
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let settings = vars(&[
        ("SHOAL_REQUEST_STATE_KEYS", &format!("new:{KEY} old:{KEY}")),
        ("SHOAL_REQUEST_STATE_TTL", "2m"),
        ("SHOAL_SESSION_HOST", "redis://127.0.0.1:6379"),
    ])
    .resolve()
    .unwrap();
    let ring = settings.request_state.keys.as_ref().unwrap();
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["new", "old"]);
    assert_eq!(settings.request_state.ttl, Duration::from_secs(120));
    assert!(
        !format!("{settings:?}").contains(KEY),
        "keys never reach a log"
    );
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);

    let file = ConfigFile::new("request-state", "");
    let keys = file.dir.join("keys");
    std::fs::write(&keys, format!("k1:{KEY}\n")).unwrap();
    let settings = Sources::empty()
        .flag("request_state_keys_file", keys.to_str().unwrap())
        .resolve()
        .unwrap();
    assert_eq!(settings.request_state.keys.unwrap().sealing_key_id(), "k1");

    // Without a ring on Redis: a warning, since retries on other replicas will be refused.
    let settings = vars(&[("SHOAL_SESSION_HOST", "redis://127.0.0.1:6379")])
        .resolve()
        .unwrap();
    assert!(settings.request_state.keys.is_none());
    assert!(
        settings
            .warnings
            .iter()
            .any(|w| w.contains("no key ring for multi round-trip")),
        "{:?}",
        settings.warnings
    );
    assert!(Sources::empty().resolve().unwrap().warnings.is_empty());

    let listed = errors(
        &vars(&[
            ("SHOAL_REQUEST_STATE_KEYS", &format!("k1:{KEY}")),
            ("SHOAL_REQUEST_STATE_TTL", "0s"),
        ])
        .flag("request_state_keys_file", keys.to_str().unwrap()),
    );
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(
        listed[0].contains("must be greater than zero"),
        "{listed:#?}"
    );
    assert!(
        listed[1].contains("and SHOAL_REQUEST_STATE_KEYS both name a key ring; give one"),
        "{listed:#?}"
    );
    let listed = errors(&vars(&[("SHOAL_REQUEST_STATE_KEYS", "k1:c2hvcnQ=")]));
    assert_eq!(
        listed,
        ["SHOAL_REQUEST_STATE_KEYS: the key of \"k1\" is not 32 bytes in base64"]
    );
    std::fs::write(&keys, "k1 is missing its key").unwrap();
    let listed = errors(&Sources::empty().flag("request_state_keys_file", keys.to_str().unwrap()));
    assert!(listed[0].contains("entry 1 is not ID:KEY"), "{listed:#?}");
}

#[test]
fn the_operator_token_comes_from_its_variable_alone_and_is_never_printed() {
    let settings = vars(&[("SHOAL_ADMIN_TOKEN", "op-secret-7")])
        .resolve()
        .unwrap();
    assert!(settings.admin_token.is_some());
    assert!(
        !format!("{settings:?}").contains("op-secret-7"),
        "{settings:?}"
    );
    assert!(Sources::empty().resolve().unwrap().admin_token.is_none());
    let listed = errors(&vars(&[("SHOAL_ADMIN_TOKEN", "two words")]));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].starts_with("SHOAL_ADMIN_TOKEN: "), "{listed:?}");
    assert!(
        !listed[0].contains("two words"),
        "the token is not echoed: {listed:?}"
    );
}

#[test]
fn oauth_settings_their_defaults_and_what_is_refused() {
    let settings = vars(&[
        ("SHOAL_AUTH", "oauth"),
        ("SHOAL_UPSTREAM_ISSUER", "https://accounts.example.com"),
        ("SHOAL_UPSTREAM_CLIENT_ID", "shoal"),
        ("SHOAL_UPSTREAM_CLIENT_SECRET", "s3cret"),
        ("SHOAL_REQUIRED_SCOPES", "mcp:use"),
        ("SHOAL_TOOL_SCOPES", "echo=mcp:echo"),
        ("SHOAL_REFRESH_TOKEN_TTL", "7d"),
        ("SHOAL_DYNAMIC_REGISTRATION", "false"),
        ("SHOAL_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8,192.0.2.1"),
    ])
    .resolve()
    .unwrap();
    let AuthConfig::OAuth(oauth) = &settings.auth else {
        panic!("oauth")
    };
    assert_eq!(
        oauth.upstream.provider,
        UpstreamProvider::OpenId {
            issuer: "https://accounts.example.com".into()
        }
    );
    assert_eq!(oauth.upstream.client_auth, None, "chosen from the metadata");
    assert_eq!(oauth.upstream.client_secret, "s3cret");
    assert_eq!(oauth.upstream.scopes, ["openid", "email", "profile"]);
    assert_eq!(oauth.scopes(), ["mcp:use", "mcp:echo"]);
    assert_eq!(oauth.access_token_ttl, Duration::from_secs(3600));
    assert_eq!(oauth.refresh_token_ttl, Duration::from_secs(7 * 24 * 3600));
    assert!(!oauth.dynamic_registration);
    let proxies: Vec<String> = oauth
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "fd00::/8", "192.0.2.1/32"]);
    assert!(oauth.client_metadata_documents);
    assert!(
        !format!("{oauth:?}").contains("s3cret"),
        "the secret is never printed"
    );

    // A plain OAuth 2 provider, GitHub as its documentation gives it.
    let settings = vars(&[
        ("SHOAL_AUTH", "oauth"),
        (
            "SHOAL_UPSTREAM_AUTHORIZATION_ENDPOINT",
            "https://github.com/login/oauth/authorize",
        ),
        (
            "SHOAL_UPSTREAM_TOKEN_ENDPOINT",
            "https://github.com/login/oauth/access_token",
        ),
        (
            "SHOAL_UPSTREAM_USERINFO_ENDPOINT",
            "https://api.github.com/user",
        ),
        ("SHOAL_UPSTREAM_SUBJECT_FIELD", "id"),
        ("SHOAL_UPSTREAM_CLIENT_ID", "Iv1.shoal"),
        ("SHOAL_UPSTREAM_CLIENT_SECRET", "s3cret"),
        ("SHOAL_UPSTREAM_CLIENT_AUTH", "client_secret_basic"),
    ])
    .resolve()
    .unwrap();
    let AuthConfig::OAuth(oauth) = &settings.auth else {
        panic!("oauth")
    };
    assert_eq!(
        oauth.upstream.provider,
        UpstreamProvider::OAuth2 {
            authorization_endpoint: "https://github.com/login/oauth/authorize".into(),
            token_endpoint: "https://github.com/login/oauth/access_token".into(),
            userinfo_endpoint: "https://api.github.com/user".into(),
            subject_field: "id".into(),
        }
    );
    assert!(
        oauth.upstream.scopes.is_empty(),
        "no openid for a plain provider"
    );
    assert_eq!(oauth.upstream.client_auth, Some(UpstreamClientAuth::Basic));

    let plain = |extra: &[(&'static str, &'static str)]| {
        let mut all = vec![
            ("SHOAL_AUTH", "oauth"),
            ("SHOAL_UPSTREAM_CLIENT_ID", "shoal"),
            ("SHOAL_UPSTREAM_CLIENT_SECRET", "x"),
        ];
        all.extend_from_slice(extra);
        vars(&all)
    };
    for (sources, needle) in [
        (
            Sources::empty().flag("auth", "oauth"),
            "--upstream-issuer (OpenID Connect), or --upstream-authorization-endpoint",
        ),
        (
            plain(&[
                ("SHOAL_UPSTREAM_ISSUER", "https://a.example"),
                ("SHOAL_UPSTREAM_TOKEN_ENDPOINT", "https://a.example/token"),
            ]),
            "given twice",
        ),
        (
            plain(&[
                (
                    "SHOAL_UPSTREAM_AUTHORIZATION_ENDPOINT",
                    "https://a.example/authorize",
                ),
                ("SHOAL_UPSTREAM_TOKEN_ENDPOINT", "https://a.example/token"),
            ]),
            "needs all of",
        ),
        (
            plain(&[
                ("SHOAL_UPSTREAM_ISSUER", "https://a.example"),
                ("SHOAL_UPSTREAM_SUBJECT_FIELD", "id"),
            ]),
            "the id_token's sub",
        ),
        (
            plain(&[
                ("SHOAL_UPSTREAM_ISSUER", "https://a.example"),
                ("SHOAL_UPSTREAM_CLIENT_AUTH", "private_key_jwt"),
            ]),
            "must be client_secret_basic or client_secret_post",
        ),
        (
            Sources::empty().flag("upstream_token_endpoint", "https://a.example/token"),
            "upstream_token_endpoint",
        ),
        (
            plain(&[
                ("SHOAL_UPSTREAM_ISSUER", "https://a.example"),
                ("SHOAL_TRUSTED_PROXIES", "10.0.0.0/8,the-balancer"),
            ]),
            "\"the-balancer\" is not an address or a CIDR range",
        ),
        (
            Sources::empty().flag("trusted_proxies", "10.0.0.0/8"),
            "trusted_proxies",
        ),
        (
            Sources::empty().flag("auth", "oauth"),
            "--upstream-client-id",
        ),
        (
            Sources::empty().flag("auth", "oauth"),
            "SHOAL_UPSTREAM_CLIENT_SECRET",
        ),
        (
            Sources::empty().flag("upstream_issuer", "https://accounts.example.com"),
            "upstream_issuer",
        ),
        (
            vars(&[
                ("SHOAL_AUTH", "oauth"),
                ("SHOAL_UPSTREAM_ISSUER", "https://a.example"),
                ("SHOAL_UPSTREAM_CLIENT_ID", "shoal"),
                ("SHOAL_UPSTREAM_CLIENT_SECRET", "x"),
                ("SHOAL_UPSTREAM_CLIENT_SECRET_FILE", "/nonexistent"),
            ]),
            "given twice",
        ),
        (
            vars(&[
                ("SHOAL_AUTH", "oauth"),
                ("SHOAL_UPSTREAM_ISSUER", "https://a.example"),
                ("SHOAL_UPSTREAM_CLIENT_ID", "shoal"),
                ("SHOAL_UPSTREAM_CLIENT_SECRET", "x"),
                ("SHOAL_ACCESS_TOKEN_TTL", "10s"),
            ]),
            "at least 1m",
        ),
        (
            vars(&[
                ("SHOAL_AUTH", "oauth"),
                ("SHOAL_UPSTREAM_ISSUER", "https://a.example"),
                ("SHOAL_UPSTREAM_CLIENT_ID", "shoal"),
                ("SHOAL_UPSTREAM_CLIENT_SECRET_FILE", "/nonexistent/secret"),
            ]),
            "cannot be read",
        ),
        (
            vars(&[
                ("SHOAL_AUTH", "oauth"),
                ("SHOAL_LISTEN", "0.0.0.0:8080"),
                ("SHOAL_UPSTREAM_ISSUER", "https://a.example"),
                ("SHOAL_UPSTREAM_CLIENT_ID", "shoal"),
                ("SHOAL_UPSTREAM_CLIENT_SECRET", "x"),
            ]),
            "needs --public-url",
        ),
    ] {
        let errors = errors(&sources);
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{needle:?} not in {errors:#?}"
        );
    }
}
