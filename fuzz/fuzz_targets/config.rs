//! A TOML config file through `shoal serve`'s configuration (`ServeArgs`, then resolution to
//! a `Config`): never a panic, always a configuration or an error with a message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_server::config::ServeArgs;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The call `shoal serve` makes on the file's text.
    let mut file: ServeArgs = match toml::from_str(text) {
        Ok(file) => file,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    // A path from the input would make the target read arbitrary files (or block on a FIFO).
    file.auth_tokens_file = None;
    // Resolve the file's settings as if given alone (no flags, no environment).
    match file.resolve_with_env(|_| None) {
        Ok(config) => assert!(config.max_body_bytes >= 1024),
        Err(error) => assert!(!format!("{error:#}").is_empty()),
    }
});
