//! The authorization server's counters (see docs/observability.md).

/// Registrations by method (`dcr`) and outcome (`ok` or the OAuth error code).
pub(crate) const REGISTRATIONS: &str = "shoal_oauth_registrations_total";
/// Authorizations that reached the upstream provider.
pub(crate) const AUTHORIZATIONS_STARTED: &str = "shoal_oauth_authorizations_started_total";
/// Authorizations that ended with a code.
pub(crate) const AUTHORIZATIONS_COMPLETED: &str = "shoal_oauth_authorizations_completed_total";
/// Authorizations that ended otherwise, by reason.
pub(crate) const AUTHORIZATIONS_FAILED: &str = "shoal_oauth_authorizations_failed_total";
/// Access tokens issued, by grant type.
pub(crate) const TOKENS_ISSUED: &str = "shoal_oauth_tokens_issued_total";
/// Grants revoked, by why (`revocation`, `refresh_reuse`, `code_reuse`).
pub(crate) const GRANTS_REVOKED: &str = "shoal_oauth_grants_revoked_total";
/// Client ID Metadata Documents fetched, by outcome (counted in `cimd`).
pub(crate) const CIMD_FETCHES: &str = "shoal_oauth_cimd_fetches_total";
/// Client ID Metadata Documents served from the cache (counted in `cimd`).
pub(crate) const CIMD_CACHE_HITS: &str = "shoal_oauth_cimd_cache_hits_total";

/// Exports every counter with a fixed label set at 0 when the server starts, so that a rate
/// counts the first event and a dashboard shows 0, not "no data".
pub(crate) fn start_at_zero() {
    metrics::counter!(REGISTRATIONS, "method" => "dcr", "outcome" => "ok").absolute(0);
    metrics::counter!(AUTHORIZATIONS_STARTED).absolute(0);
    metrics::counter!(AUTHORIZATIONS_COMPLETED).absolute(0);
    for grant_type in ["authorization_code", "refresh_token"] {
        metrics::counter!(TOKENS_ISSUED, "grant_type" => grant_type).absolute(0);
    }
    for reason in ["revocation", "refresh_reuse", "code_reuse"] {
        metrics::counter!(GRANTS_REVOKED, "reason" => reason).absolute(0);
    }
    for outcome in ["ok", "refused", "failed"] {
        metrics::counter!(CIMD_FETCHES, "outcome" => outcome).absolute(0);
    }
    metrics::counter!(CIMD_CACHE_HITS).absolute(0);
}

pub(crate) fn registration(method: &'static str, outcome: &'static str) {
    metrics::counter!(REGISTRATIONS, "method" => method, "outcome" => outcome).increment(1);
}

pub(crate) fn authorization_started() {
    metrics::counter!(AUTHORIZATIONS_STARTED).increment(1);
}

pub(crate) fn authorization_completed() {
    metrics::counter!(AUTHORIZATIONS_COMPLETED).increment(1);
}

pub(crate) fn authorization_failed(reason: &'static str) {
    metrics::counter!(AUTHORIZATIONS_FAILED, "reason" => reason).increment(1);
}

pub(crate) fn token_issued(grant_type: &'static str) {
    metrics::counter!(TOKENS_ISSUED, "grant_type" => grant_type).increment(1);
}

pub(crate) fn revoked() {
    metrics::counter!(GRANTS_REVOKED, "reason" => "revocation").increment(1);
}

pub(crate) fn refresh_reused() {
    metrics::counter!(GRANTS_REVOKED, "reason" => "refresh_reuse").increment(1);
}

pub(crate) fn code_reused() {
    metrics::counter!(GRANTS_REVOKED, "reason" => "code_reuse").increment(1);
}
