//! The key ring and lifetime of multi round-trip requests' `requestState` (2026-07-28).
//!
//! The ring is a secret: it comes from the variable `SHOAL_REQUEST_STATE_KEYS` or from a file
//! (a mounted Secret), never from a flag or the config file's text. Without one each process
//! generates its own, which is right for one replica and breaks retries that another replica
//! takes: worth a warning on the Redis host.

use std::time::Duration;

use shoal_core::request_state::KeyRing;

use super::sources::{ENV_REQUEST_STATE_KEYS, Reader};
use super::{HostSettings, RequestStateSettings};

pub(super) fn read(
    reader: &mut Reader<'_>,
    host: Option<&HostSettings>,
    warnings: &mut Vec<String>,
) -> RequestStateSettings {
    let defaults = RequestStateSettings::default();
    let ttl = reader.duration("request_state_ttl");
    if ttl == Some(Duration::ZERO) {
        reader.refuse("request_state_ttl", "must be greater than zero".to_owned());
    }
    let file = reader.text("request_state_keys_file");
    let variable = reader.variable(ENV_REQUEST_STATE_KEYS).map(str::to_owned);
    let keys = match (file, variable) {
        (Some(_), Some(_)) => {
            reader.refuse(
                "request_state_keys_file",
                format!("and {ENV_REQUEST_STATE_KEYS} both name a key ring; give one"),
            );
            None
        }
        (Some(path), None) => match read_file(&path, warnings) {
            Ok(text) => match KeyRing::parse(&text) {
                Ok(ring) => Some(ring),
                Err(error) => {
                    reader.refuse("request_state_keys_file", format!("{path}: {error}"));
                    None
                }
            },
            Err(message) => {
                reader.refuse("request_state_keys_file", message);
                None
            }
        },
        (None, Some(text)) => match KeyRing::parse(&text) {
            Ok(ring) => Some(ring),
            Err(error) => {
                reader.fail(format!("{ENV_REQUEST_STATE_KEYS}: {error}"));
                None
            }
        },
        (None, None) => {
            if matches!(host, Some(HostSettings::Redis { .. })) {
                warnings.push(format!(
                    "no key ring for multi round-trip requests ({ENV_REQUEST_STATE_KEYS} or \
                     --request-state-keys-file): this process generated its own, so a retry that \
                     another replica takes is refused; give every replica the same ring"
                ));
            }
            None
        }
    };
    RequestStateSettings {
        keys,
        ttl: ttl.unwrap_or(defaults.ttl),
    }
}

/// The file's text, warning when every user may read it.
fn read_file(path: &str, warnings: &mut Vec<String>) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o004 != 0) {
            warnings.push(format!(
                "the request-state key file {path} is readable by every user; chmod 600 it"
            ));
        }
    }
    Ok(text)
}
