//! Bearer tokens through shoal-auth's JWT validation, against a fixed key set (an RSA key, an
//! Ed25519 key with and without `alg`, and a symmetric key that must be ignored): never a
//! panic, always a typed refusal ([`TokenError`]) or a principal of the configured issuer.
//!
//! The first input byte picks the shape (low two bits) and the details (the rest); the other
//! bytes are the token, or header and claims JSON that the target signs itself so that the
//! claim checks are reached:
//!
//! - `0`: the bytes are the token.
//! - `1`: `header\nclaims`, both arbitrary, signed with the Ed25519 key.
//! - `2`: claims under a well-formed EdDSA header (`kid` and `typ` from the first byte), signed.
//! - `3`: claims signed with HMAC — with the JWKS's symmetric secret, the RSA modulus or the
//!   RSA public key PEM as the secret (the algorithm confusion attacks): always refused.
//!
//! Bit 2 of the first byte requires `typ: at+jwt`.

#![no_main]

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use shoal_auth::JwtConfig;
use shoal_auth::fuzzing::{FixedKeyValidator, TokenError};
use shoal_core::session::Principal;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "https://mcp.example/mcp";
const RSA_N: &str = include_str!("../../crates/shoal-auth/tests/data/rsa-n.txt");
const RSA_PUBLIC_PEM: &str = include_str!("../../crates/shoal-auth/tests/data/rsa-public.pem");
const HMAC_SECRET: &[u8] = b"a symmetric key has no place in a JWKS";
/// Leeway on `exp`, `nbf` and `iat` (the default), plus slack for the time the check takes.
const LEEWAY_SECONDS: f64 = 30.0 + 60.0;

struct Fixture {
    ed25519: Ed25519KeyPair,
    lax: FixedKeyValidator,
    strict: FixedKeyValidator,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let ed25519 = Ed25519KeyPair::from_seed_unchecked(&[0x5e; 32]).expect("a valid seed");
    let x = URL_SAFE_NO_PAD.encode(ed25519.public_key().as_ref());
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": RSA_N.trim(), "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig", "x": x},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed-any", "x": x},
        {"kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(HMAC_SECRET)},
    ]});
    let validator = |require_at_jwt: bool| {
        let mut config = JwtConfig::new(ISSUER, AUDIENCE);
        config.jwks_url = Some(format!("{ISSUER}/jwks"));
        config.require_at_jwt = require_at_jwt;
        FixedKeyValidator::new(&config, &jwks).expect("a valid fixture")
    };
    Fixture {
        ed25519,
        lax: validator(false),
        strict: validator(true),
    }
});

const KIDS: [Option<&str>; 4] = [Some("ed"), Some("ed-any"), Some("rsa"), None];
const TYPS: [Option<&str>; 4] = [
    Some("at+jwt"),
    None,
    Some("JWT"),
    Some("application/AT+JWT"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let fixture = &*FIXTURE;
    let strict = control & 0b100 != 0;
    let detail = usize::from(control >> 3);
    let (token, signed_claims) = match control & 0b11 {
        0 => match std::str::from_utf8(rest) {
            Ok(token) => (token.to_owned(), None),
            Err(_) => return,
        },
        1 => {
            let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            (sign_ed25519(&fixture.ed25519, header, claims), Some(claims))
        }
        2 => {
            let mut header = json!({"alg": "EdDSA"});
            if let Some(kid) = KIDS[detail % 4] {
                header["kid"] = kid.into();
            }
            if let Some(typ) = TYPS[(detail / 4) % 4] {
                header["typ"] = typ.into();
            }
            let header = header.to_string();
            (
                sign_ed25519(&fixture.ed25519, header.as_bytes(), rest),
                Some(rest),
            )
        }
        _ => {
            let (alg, algorithm) = [
                ("HS256", hmac::HMAC_SHA256),
                ("HS384", hmac::HMAC_SHA384),
                ("HS512", hmac::HMAC_SHA512),
            ][detail % 3];
            let secret: &[u8] = match (detail / 3) % 3 {
                0 => HMAC_SECRET,
                1 => RSA_N.trim().as_bytes(),
                _ => RSA_PUBLIC_PEM.as_bytes(),
            };
            let header = json!({"alg": alg, "kid": KIDS[(detail / 9) % 4], "typ": "at+jwt"});
            let input = signing_input(header.to_string().as_bytes(), rest);
            let tag = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
            let outcome = validate(fixture, strict, &token);
            assert_eq!(outcome, Err(TokenError::AlgorithmNotAllowed), "{token}");
            return;
        }
    };
    if let Ok(principal) = validate(fixture, strict, &token) {
        check_accepted(&principal, &token, signed_claims, strict);
    }
});

fn validate(fixture: &Fixture, strict: bool, token: &str) -> Result<Principal, TokenError> {
    let validator = if strict {
        &fixture.strict
    } else {
        &fixture.lax
    };
    // No key fetch can happen with a fixed key set: nothing here waits on I/O.
    futures::executor::block_on(validator.validate(token))
}

fn signing_input(header: &[u8], claims: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

fn sign_ed25519(key: &Ed25519KeyPair, header: &[u8], claims: &[u8]) -> String {
    let input = signing_input(header, claims);
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// What an accepted token must have been: of our issuer, for our audience, unexpired, and
/// of type at+jwt when that is required.
fn check_accepted(principal: &Principal, token: &str, claims: Option<&[u8]>, strict: bool) {
    assert!(
        principal.id.starts_with(&format!("{ISSUER}|")),
        "{token} accepted as {principal:?}"
    );
    let Some(claims) = claims else {
        return;
    };
    // Lossy: serde_json skips unknown claims without checking their UTF-8, so a signed token
    // may carry invalid UTF-8 there; the claims that matter are checked strings.
    let claims: Value = serde_json::from_str(&String::from_utf8_lossy(claims))
        .unwrap_or_else(|e| panic!("{token} accepted with claims that are not JSON: {e}"));
    assert_eq!(claims["iss"], ISSUER, "{token}");
    let sub = claims["sub"]
        .as_str()
        .unwrap_or_else(|| panic!("{token}: no sub"));
    assert_eq!(principal.id, format!("{ISSUER}|{sub}"), "{token}");
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => aud == AUDIENCE,
        Value::Array(auds) => auds.iter().any(|aud| aud == AUDIENCE),
        _ => false,
    };
    assert!(
        audience_ok,
        "{token}: accepted for audience {}",
        claims["aud"]
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let exp = claims["exp"]
        .as_f64()
        .unwrap_or_else(|| panic!("{token}: no exp"));
    assert!(exp + LEEWAY_SECONDS > now, "{token}: expired at {exp}");
    if strict {
        let header = token.split('.').next().unwrap_or_default();
        let header: Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .unwrap_or_default();
        let typ = header["typ"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            typ == "at+jwt" || typ == "application/at+jwt",
            "{token}: accepted with typ {typ:?} although at+jwt is required"
        );
    }
}
