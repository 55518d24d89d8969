//! The key ring that signs Shoal's access tokens (ES256): the first key signs, the others stay
//! published in the JWKS until the tokens they signed have expired. Keys come from PKCS#8 PEM
//! (a file or Secret), or one is generated and kept in the session host, so that every replica
//! signs with the same key without any configuration.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};
use shoal_core::host::{KeyValue, KvKey, KvNamespace, MAX_TTL};

use crate::error::Error;

/// Where a generated key ring is kept.
const GENERATED: KvNamespace = KvNamespace::new("oauth-signing-key");
/// The one entry of [`GENERATED`].
const GENERATED_ID: &str = "es256";

/// One signing key: its id (the RFC 7638 thumbprint), private half and public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

/// The key ring; never empty.
pub(crate) struct SigningKeys {
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|key| key.kid.as_str()).collect();
        f.debug_struct("SigningKeys").field("kids", &kids).finish()
    }
}

impl SigningKeys {
    /// The keys of `pem`: PKCS#8 `PRIVATE KEY` blocks of EC P-256 keys, the signing one first.
    pub(crate) fn from_pem(pem: &str) -> Result<SigningKeys, Error> {
        let mut keys = Vec::new();
        let mut rest = pem;
        while let Some(start) = rest.find("-----BEGIN PRIVATE KEY-----") {
            let body_start = start + "-----BEGIN PRIVATE KEY-----".len();
            let Some(length) = rest[body_start..].find("-----END PRIVATE KEY-----") else {
                return Err(Error::SigningKeys(
                    "a PRIVATE KEY block has no END line".into(),
                ));
            };
            let body: String = rest[body_start..body_start + length]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = STANDARD.decode(body).map_err(|_| {
                Error::SigningKeys(format!(
                    "PRIVATE KEY block {} is not base64",
                    keys.len() + 1
                ))
            })?;
            keys.push(SigningKey::from_pkcs8(&der).ok_or_else(|| {
                Error::SigningKeys(format!(
                    "PRIVATE KEY block {} is not a PKCS#8 EC P-256 key (make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)",
                    keys.len() + 1
                ))
            })?);
            rest = &rest[body_start + length..];
        }
        if keys.is_empty() {
            return Err(Error::SigningKeys(
                "no -----BEGIN PRIVATE KEY----- block".into(),
            ));
        }
        Ok(SigningKeys { keys })
    }

    /// The ring generated once for the whole deployment and kept in `kv`: the first replica
    /// to start stores its key, every other one (and every later start) reads it.
    pub(crate) async fn shared(kv: &dyn KeyValue) -> Result<SigningKeys, Error> {
        let key = KvKey::new(GENERATED, GENERATED_ID);
        let generated = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|_| Error::SigningKeys("cannot generate a P-256 key".into()))?;
        kv.put_if_absent(
            &key,
            Bytes::copy_from_slice(generated.as_ref()),
            // The key outlives every token it signs; it goes only when an operator deletes it.
            MAX_TTL,
        )
        .await
        .map_err(|e| Error::Host(e.to_string()))?;
        let stored = kv
            .get(&key)
            .await
            .map_err(|e| Error::Host(e.to_string()))?
            .ok_or_else(|| Error::SigningKeys("the generated key vanished from the host".into()))?;
        let key = SigningKey::from_pkcs8(&stored)
            .ok_or_else(|| Error::SigningKeys("the stored generated key is not valid".into()))?;
        Ok(SigningKeys { keys: vec![key] })
    }

    /// The public keys, as served at the JWKS URL.
    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() })
    }

    /// The id of the signing key.
    pub(crate) fn signing_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// A JWT of `claims` with header `typ` (`at+jwt` for access tokens), signed by the first key.
    pub(crate) fn sign<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String, Error> {
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| Error::SigningKeys(format!("cannot sign: {e}")))
    }
}

impl SigningKey {
    fn from_pkcs8(der: &[u8]) -> Option<SigningKey> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).ok()?;
        // An uncompressed point: 0x04, x, y.
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "alg": "ES256", "use": "sig",
        });
        Some(SigningKey {
            kid,
            encoding: EncodingKey::from_ec_der(der),
            jwk,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pem_of(der: &[u8]) -> String {
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der)
        )
    }

    fn new_der() -> Vec<u8> {
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap()
            .to_pkcs8v1()
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn the_first_key_signs_and_every_key_is_published() {
        let (first, second) = (new_der(), new_der());
        let ring = SigningKeys::from_pem(&(pem_of(&first) + &pem_of(&second))).unwrap();
        let jwks = ring.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0], ring.signing_kid());
        let token = ring.sign("at+jwt", &json!({"sub": "a"})).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(kids[0]));
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    }

    #[test]
    fn bad_pem_is_refused_with_a_reason() {
        for (pem, reason) in [
            ("", "no -----BEGIN"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA", "no END line"),
            (
                "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----",
                "not base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "not a PKCS#8 EC P-256 key",
            ),
        ] {
            let error = SigningKeys::from_pem(pem).unwrap_err().to_string();
            assert!(error.contains(reason), "{pem:?}: {error}");
        }
    }
}
