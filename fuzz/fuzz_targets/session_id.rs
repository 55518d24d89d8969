//! `Mcp-Session-Id` as the engine reads it (`SessionId::from_str`): never a panic, and
//! exactly the 22-character URL-safe ids are accepted, unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::ids::SessionId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let well_formed = text.len() == 22
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match text.parse::<SessionId>() {
        Ok(id) => {
            assert!(well_formed, "{text:?} accepted");
            assert_eq!(id.as_str(), text);
            assert_eq!(id.to_string(), text);
        }
        Err(_) => assert!(!well_formed, "{text:?} refused"),
    }
});
