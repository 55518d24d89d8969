//! Client metadata through shoal-auth's OAuth client checks: the bytes as a Dynamic Client
//! Registration request (RFC 7591), as a Client ID Metadata Document, as a redirect URI, a
//! redirect policy and a `client_id`. Never a panic, always a typed refusal or a client that
//! keeps the invariants (every redirect URI allowed by the policy and matching itself, a
//! secret that verifies, no secret in a document client). See
//! `shoal_auth::fuzzing::client_metadata`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shoal_auth::fuzzing::client_metadata(data);
});
