//! A TOML config file through the facade's settings (every knob read, checked and combined):
//! never a panic, always settings or errors with a message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal::settings::Sources;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A path from the input would make the target read arbitrary files (or block on a FIFO).
    if text.contains("auth_tokens_file") {
        return;
    }
    // The file's settings alone: no flags, no environment.
    match Sources::empty().file_text(text).resolve() {
        Ok(settings) => assert!(settings.transport.max_body_bytes >= 1024),
        Err(errors) => {
            assert!(!errors.errors().is_empty());
            assert!(errors.errors().iter().all(|e| !e.to_string().is_empty()));
        }
    }
});
