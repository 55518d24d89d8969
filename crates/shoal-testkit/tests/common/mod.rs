//! What the Redis tests share: one inline command and its reply, or a panic that says which.

use std::time::Duration;

/// One inline command on a fresh connection to `port`; the first whole reply within 5 s.
pub(crate) async fn command(port: u16, line: &str) -> String {
    shoal_testkit::redis::command(port, line, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("`{line}` on {port}: {e}"))
}
