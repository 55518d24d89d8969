//! Protocol revisions and their negotiation.
//!
//! Two eras, two lists, never mixed (clients read "supported versions" per era): the
//! session-based revisions ([`SUPPORTED_VERSIONS`], negotiated by `initialize`) and the
//! stateless ones ([`MODERN_VERSIONS`], claimed by each request's `_meta`, listed by
//! `server/discover` and in `-32022`'s `data.supported`).

/// The session-era revisions this server speaks, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The revision answered to a client that asks for one we do not speak.
pub const LATEST_VERSION: &str = SUPPORTED_VERSIONS[0];

/// The revision assumed when a request carries no `MCP-Protocol-Version` header (the
/// transport spec says so, for clients of 2025-03-26 that never sent one).
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";

/// The stateless-era revisions this server speaks, newest first.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

/// The first revision of the stateless era: an `MCP-Protocol-Version` header naming it or a
/// later date speaks that era.
pub const FIRST_MODERN_VERSION: &str = "2026-07-28";

/// Whether `version` is a stateless-era revision we speak.
pub fn is_modern(version: &str) -> bool {
    MODERN_VERSIONS.contains(&version)
}

/// Whether a header's `version` is of the stateless era (dates compare as strings), whether
/// or not we speak it.
pub fn names_modern_era(version: &str) -> bool {
    version.len() == FIRST_MODERN_VERSION.len() && version >= FIRST_MODERN_VERSION
}

/// Picks the revision for a session: the client's when we speak it, else our latest (the client
/// then decides whether it can go on).
pub fn negotiate(requested: &str) -> &'static str {
    SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|v| *v == requested)
        .unwrap_or(LATEST_VERSION)
}

/// Whether `version` is one we speak.
pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// Whether a negotiated revision has a feature introduced in `since` (dates compare as strings).
pub fn at_least(version: &str, since: &str) -> bool {
    version >= since
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_a_supported_version() {
        for v in SUPPORTED_VERSIONS {
            assert_eq!(negotiate(v), *v);
        }
    }

    #[test]
    fn answers_latest_for_unknown_versions() {
        assert_eq!(negotiate("2024-11-05"), "2025-11-25");
        assert_eq!(negotiate("2026-07-28"), "2025-11-25");
        assert_eq!(negotiate("garbage"), "2025-11-25");
    }

    #[test]
    fn the_eras_never_share_a_revision() {
        for v in MODERN_VERSIONS {
            assert!(!is_supported(v), "{v}");
            assert!(names_modern_era(v), "{v}");
        }
        for v in SUPPORTED_VERSIONS {
            assert!(!is_modern(v) && !names_modern_era(v), "{v}");
        }
        assert!(names_modern_era("2027-01-01"));
        assert!(!names_modern_era("garbage"));
    }

    #[test]
    fn compares_revisions() {
        assert!(at_least("2025-11-25", "2025-11-25"));
        assert!(!at_least("2025-06-18", "2025-11-25"));
        assert!(is_supported("2025-06-18"));
        assert!(!is_supported("2024-11-05"));
    }
}
