//! Static tokens: principal name → token, kept as SHA-256 digests and compared in constant
//! time.

use std::fmt;
use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::token::is_b64token;

/// The static token table. Its `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StaticTokens {
    entries: Vec<Entry>,
    /// Names whose token is outside RFC 6750's b64token syntax (usable in a custom header
    /// only).
    not_bearer: Vec<String>,
}

#[derive(Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    digest: [u8; 32],
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokens")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

impl StaticTokens {
    /// An empty table.
    pub fn new() -> StaticTokens {
        StaticTokens::default()
    }

    /// Adds `token` for principal `name`. A name may have several tokens (rotation); a token
    /// may not belong to two names.
    ///
    /// # Errors
    ///
    /// A token that is not visible ASCII without spaces, or that another name already has.
    pub fn insert(&mut self, name: &str, token: &str) -> Result<(), Error> {
        if name.is_empty() || token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::TokenSyntax(name.to_owned()));
        }
        let entry = Entry {
            name: name.to_owned(),
            digest: sha256(token),
        };
        if self
            .entries
            .iter()
            .any(|e| e.digest == entry.digest && e.name != entry.name)
        {
            return Err(Error::DuplicateToken(name.to_owned()));
        }
        if !is_b64token(token) && !self.not_bearer.iter().any(|n| n == name) {
            self.not_bearer.push(name.to_owned());
        }
        if !self.entries.contains(&entry) {
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Adds the entries of a tokens file's text: one `name token` per line, `#` comments and
    /// blank lines ignored. `source_name` names the file in errors.
    ///
    /// # Errors
    ///
    /// A line that is not two fields, or a bad token.
    pub fn insert_file_text(&mut self, source_name: &str, text: &str) -> Result<(), Error> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, token] = fields[..] else {
                return Err(Error::TokenEntry {
                    source_name: source_name.to_owned(),
                    entry: number + 1,
                });
            };
            self.insert(name, token)?;
        }
        Ok(())
    }

    /// Adds the entries of `SHOAL_AUTH_TOKENS`: `name=token,name2=token2`.
    ///
    /// # Errors
    ///
    /// An entry that is not `name=token`, or a bad token.
    pub fn insert_env(&mut self, source_name: &str, value: &str) -> Result<(), Error> {
        for (number, entry) in value.split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let Some((name, token)) = entry.split_once('=') else {
                return Err(Error::TokenEntry {
                    source_name: source_name.to_owned(),
                    entry: number + 1,
                });
            };
            self.insert(name.trim(), token.trim())?;
        }
        Ok(())
    }

    /// Reads a tokens file. Returns whether other users may read it (worth a warning).
    ///
    /// # Errors
    ///
    /// The file cannot be read or has a bad line.
    pub fn insert_file(&mut self, path: &Path) -> Result<bool, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::TokensFile {
            path: path.to_owned(),
            source,
        })?;
        self.insert_file_text(&path.display().to_string(), &text)?;
        Ok(world_readable(path))
    }

    /// Checks that every token can be sent as `Authorization: Bearer` (RFC 6750 b64token).
    ///
    /// # Errors
    ///
    /// Names the first principal whose token cannot.
    pub fn check_bearer_syntax(&self) -> Result<(), Error> {
        match self.not_bearer.first() {
            Some(name) => Err(Error::TokenSyntax(name.clone())),
            None => Ok(()),
        }
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal names, in insertion order (with repeats for rotated tokens).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The name whose token is `presented`. Every entry is compared, in constant time, over
    /// digests: the time taken says nothing about how much of a token matched.
    pub fn verify(&self, presented: &str) -> Option<&str> {
        let presented = sha256(presented);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(entry.name.as_str());
            }
        }
        found
    }
}

fn sha256(token: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

#[cfg(unix)]
fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn world_readable(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_and_env_entries() {
        let mut tokens = StaticTokens::new();
        tokens
            .insert_file_text("f", "# team\nalice  s3cret-a\n\nbob s3cret-b # no\n")
            .unwrap_err();
        let mut tokens = StaticTokens::new();
        tokens
            .insert_file_text("f", "# team\nalice  s3cret-a\n\n  bob s3cret-b\n")
            .unwrap();
        tokens
            .insert_env("SHOAL_AUTH_TOKENS", "carol=s3cret-c, alice=rotated")
            .unwrap();
        assert_eq!(tokens.verify("s3cret-a"), Some("alice"));
        assert_eq!(tokens.verify("rotated"), Some("alice"));
        assert_eq!(tokens.verify("s3cret-c"), Some("carol"));
        assert_eq!(tokens.verify("s3cret"), None);
        assert_eq!(tokens.verify(""), None);
        assert!(!format!("{tokens:?}").contains("s3cret"));
        assert!(matches!(
            tokens.insert("mallory", "s3cret-a"),
            Err(Error::DuplicateToken(_))
        ));
        assert!(matches!(
            StaticTokens::new().insert_env("E", "nameonly"),
            Err(Error::TokenEntry { entry: 1, .. })
        ));
    }
}
