//! The key ring that seals a multi round-trip request's `requestState` (2026-07-28).
//!
//! A handler that needs input from the client ends its run with `input_required`; the client
//! retries with the answers and the `requestState` it was given, and the retry may land on any
//! replica. The state carries what the engine needs to resume (the answers of earlier rounds)
//! and what binds it to one use (principal, method, a digest of the params, an expiry, a nonce),
//! so it must be secret and unforgeable: AES-256-GCM under a key every replica holds. Keys have
//! ids, so a ring can rotate: the first key seals, every key opens, and a key stays in the ring
//! until the states it sealed have expired.
//!
//! A sealed state reads `<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`; the key id is
//! authenticated too (it is the additional data).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Bytes of one key (AES-256).
pub const KEY_LEN: usize = 32;

/// The longest key id: ids travel in every sealed state.
const MAX_KEY_ID_LEN: usize = 32;

/// Why a key ring's text was refused. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// No key at all.
    #[error("names no key; give one or more ID:KEY entries (KEY: 32 bytes in base64)")]
    Empty,
    /// An entry is not `id:key`.
    #[error("entry {0} is not ID:KEY")]
    NotAnEntry(usize),
    /// A key id is empty, too long or has characters other than letters, digits, `-`, `_`.
    #[error("entry {0} has a bad key id: 1 to {MAX_KEY_ID_LEN} ASCII letters, digits, '-' or '_'")]
    BadKeyId(usize),
    /// Two entries share an id.
    #[error("key id {0:?} appears twice")]
    DuplicateKeyId(String),
    /// A key is not base64, or not 32 bytes.
    #[error("the key of {0:?} is not {KEY_LEN} bytes in base64")]
    BadKey(String),
}

/// Why a sealed state could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    /// Not `<id>.<base64>`, or too short to hold a nonce and a tag.
    #[error("is malformed")]
    Malformed,
    /// Sealed under a key this ring does not hold (retired, or never ours).
    #[error("was sealed under a key this server does not hold")]
    UnknownKey,
    /// The ciphertext, the tag or the key id was altered, or it was never sealed by us.
    #[error("failed its integrity check")]
    Forged,
}

struct StateKey {
    id: String,
    key: RandomizedNonceKey,
}

/// AES-256-GCM keys with ids: the first seals, all open.
///
/// Built from text ([`KeyRing::parse`]: what `SHOAL_REQUEST_STATE_KEYS` or a mounted Secret
/// holds) or generated for one process ([`KeyRing::generate`]). Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<[StateKey]>,
    generated: bool,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .field("generated", &self.generated)
            .finish()
    }
}

impl KeyRing {
    /// A ring from `ID:KEY` entries separated by commas or white space, the sealing key first;
    /// `KEY` is 32 bytes in base64 (standard or URL-safe, padded or not), e.g. the output of
    /// `openssl rand -base64 32`.
    ///
    /// ```
    /// use shoal_core::request_state::KeyRing;
    /// let ring = KeyRing::parse(
    ///     "2026-12:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= 2026-11:HxAREhMUFRYXGBkaGxwdHgABAgMEBQYHCAkKCwwNDg8=",
    /// )
    /// .unwrap();
    /// assert_eq!(ring.sealing_key_id(), "2026-12");
    /// assert_eq!(ring.key_ids().count(), 2);
    /// ```
    ///
    /// # Errors
    ///
    /// What is wrong with the text; never any of its key material.
    pub fn parse(text: &str) -> Result<KeyRing, KeyRingError> {
        let mut keys: Vec<StateKey> = Vec::new();
        let entries = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty());
        for (index, entry) in entries.enumerate() {
            let number = index + 1;
            let (id, key) = entry
                .split_once(':')
                .ok_or(KeyRingError::NotAnEntry(number))?;
            if !valid_key_id(id) {
                return Err(KeyRingError::BadKeyId(number));
            }
            if keys.iter().any(|known| known.id == id) {
                return Err(KeyRingError::DuplicateKeyId(id.to_owned()));
            }
            let bytes = decode_key(key).ok_or_else(|| KeyRingError::BadKey(id.to_owned()))?;
            let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| KeyRingError::BadKey(id.to_owned()))?;
            keys.push(StateKey {
                id: id.to_owned(),
                key,
            });
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(KeyRing {
            keys: keys.into(),
            generated: false,
        })
    }

    /// A ring of one random key, for one process: states it seals open only here, so a retry
    /// that another replica takes is refused. For the memory host, and tests.
    pub fn generate() -> KeyRing {
        let bytes: [u8; KEY_LEN] = rand::random();
        let suffix: [u8; 4] = rand::random();
        // Any 32 bytes are an AES-256 key.
        #[allow(clippy::expect_used)]
        let key =
            RandomizedNonceKey::new(&AES_256_GCM, &bytes).expect("32 bytes is an AES-256 key");
        let id = format!(
            "local-{}",
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        KeyRing {
            keys: vec![StateKey { id, key }].into(),
            generated: true,
        }
    }

    /// Whether the ring was [generated](KeyRing::generate) for this process rather than given.
    pub fn is_generated(&self) -> bool {
        self.generated
    }

    /// The id of the key that seals.
    pub fn sealing_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key id, the sealing one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }

    /// Seals `plaintext` under the first key.
    pub(crate) fn seal(&self, plaintext: &[u8]) -> String {
        let key = &self.keys[0];
        let mut sealed = plaintext.to_vec();
        // AES-GCM sealing fails only for inputs of gigabytes; a state is bounded by the body limit.
        #[allow(clippy::expect_used)]
        let nonce = key
            .key
            .seal_in_place_append_tag(aad(&key.id), &mut sealed)
            .expect("AES-GCM seals any state-sized input");
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(nonce.as_ref());
        blob.extend_from_slice(&sealed);
        format!("{}.{}", key.id, URL_SAFE_NO_PAD.encode(blob))
    }

    /// Opens a state sealed by [`seal`](KeyRing::seal) under any key of the ring.
    pub(crate) fn open(&self, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let (id, blob) = sealed.split_once('.').ok_or(OpenError::Malformed)?;
        let mut blob = URL_SAFE_NO_PAD
            .decode(blob)
            .map_err(|_| OpenError::Malformed)?;
        if blob.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Malformed);
        }
        let key = self
            .keys
            .iter()
            .find(|key| key.id == id)
            .ok_or(OpenError::UnknownKey)?;
        let nonce = Nonce::try_assume_unique_for_key(&blob[..NONCE_LEN])
            .map_err(|_| OpenError::Malformed)?;
        let plaintext = key
            .key
            .open_in_place(nonce, aad(id), &mut blob[NONCE_LEN..])
            .map_err(|_| OpenError::Forged)?;
        Ok(plaintext.to_vec())
    }
}

/// The additional data of a sealed state: its format and key id, so neither can be swapped.
fn aad(key_id: &str) -> Aad<Vec<u8>> {
    Aad::from(format!("shoal-request-state-v1:{key_id}").into_bytes())
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_key(text: &str) -> Option<[u8; KEY_LEN]> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "HxAREhMUFRYXGBkaGxwdHgABAgMEBQYHCAkKCwwNDg8";

    #[test]
    fn a_state_sealed_under_the_first_key_opens_after_rotation() {
        let old = KeyRing::parse(&format!("a:{KEY_A}")).unwrap();
        let sealed = old.seal(b"round two");
        assert!(sealed.starts_with("a."), "{sealed}");
        let rotated = KeyRing::parse(&format!("b:{KEY_B},a:{KEY_A}")).unwrap();
        assert_eq!(rotated.open(&sealed).unwrap(), b"round two");
        assert!(rotated.seal(b"x").starts_with("b."));
        let retired = KeyRing::parse(&format!("b:{KEY_B}")).unwrap();
        assert_eq!(retired.open(&sealed), Err(OpenError::UnknownKey));
    }

    #[test]
    fn any_altered_byte_or_swapped_key_id_fails_the_integrity_check() {
        let ring = KeyRing::parse(&format!("a:{KEY_A} b:{KEY_A}")).unwrap();
        let sealed = ring.seal(b"state");
        let (_, blob) = sealed.split_once('.').unwrap();
        assert_eq!(ring.open(&format!("b.{blob}")), Err(OpenError::Forged));
        let mut bytes = URL_SAFE_NO_PAD.decode(blob).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let altered = format!("a.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(ring.open(&altered), Err(OpenError::Forged), "byte {i}");
            bytes[i] ^= 1;
        }
        for malformed in ["", "a", "a.", "a.!!", &format!("a.{}", &blob[..20])] {
            assert_eq!(
                ring.open(malformed),
                Err(OpenError::Malformed),
                "{malformed}"
            );
        }
        assert_eq!(
            ring.open(&format!("{sealed}-TAMPERED")),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn bad_rings_are_refused_without_echoing_keys() {
        let cases = [
            ("", KeyRingError::Empty),
            (" , ", KeyRingError::Empty),
            ("nokey", KeyRingError::NotAnEntry(1)),
            (&format!("a:{KEY_A} b{KEY_B}"), KeyRingError::NotAnEntry(2)),
            (&format!("a b:{KEY_A}"), KeyRingError::NotAnEntry(1)),
            (&format!("a/b:{KEY_A}"), KeyRingError::BadKeyId(1)),
            (&format!(":{KEY_A}"), KeyRingError::BadKeyId(1)),
            (
                &format!("a:{KEY_A},a:{KEY_B}"),
                KeyRingError::DuplicateKeyId("a".into()),
            ),
            ("a:c2hvcnQ=", KeyRingError::BadKey("a".into())),
            ("a:not base64!", KeyRingError::BadKey("a".into())),
            ("a:not-base64!", KeyRingError::BadKey("a".into())),
        ];
        for (text, expected) in cases {
            let error = KeyRing::parse(text).unwrap_err();
            assert_eq!(error, expected, "{text:?}");
            assert!(!error.to_string().contains(KEY_A), "{error}");
        }
    }

    #[test]
    fn generated_rings_are_distinct_and_say_so() {
        let one = KeyRing::generate();
        let two = KeyRing::generate();
        assert!(one.is_generated());
        assert_ne!(one.sealing_key_id(), two.sealing_key_id());
        let sealed = one.seal(b"x");
        assert_eq!(one.open(&sealed).unwrap(), b"x");
        assert_eq!(two.open(&sealed), Err(OpenError::UnknownKey));
        assert!(!format!("{one:?}").contains("key:"), "{one:?}");
    }
}
