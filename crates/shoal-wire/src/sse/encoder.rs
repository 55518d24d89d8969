//! Framing: one call, one frame, one allocation.
//!
//! Every event a server streams goes through [`event`], so it writes straight into one buffer
//! sized for the frame and looks for line breaks in `data` with SIMD (`memchr`): a JSON-RPC
//! message, compact JSON, has none and is copied in one piece.

use std::fmt::{self, Write as _};
use std::time::Duration;

use bytes::Bytes;

/// The keep-alive frame: a comment line and the blank line that ends the block.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// Room for `id: `, the id, `retry: <u64>` and the line ends, so that a frame with a
/// stream-sized id does not grow its buffer.
const FRAME_OVERHEAD: usize = 160;

/// Frames an event: `id` (written with its `Display`), optional `retry` in milliseconds, and
/// `data` (one `data:` line per line of it; empty data makes one empty `data:` line, which a
/// client reads as an event with empty data, a priming event).
///
/// The id must hold no CR, LF or NUL (a client would not read it back): ids are minted by the
/// server, never taken from a client.
pub fn event(id: &impl fmt::Display, retry: Option<Duration>, data: &str) -> Bytes {
    let mut frame = String::with_capacity(data.len() + FRAME_OVERHEAD);
    // Writing to a String cannot fail.
    let _ = writeln!(frame, "id: {id}");
    debug_assert!(
        !frame["id: ".len()..frame.len() - 1].contains(['\r', '\n', '\0']),
        "an event id with a line break or NUL: {frame:?}"
    );
    if let Some(retry) = retry {
        let _ = writeln!(frame, "retry: {}", retry.as_millis());
    }
    push_lines(&mut frame, "data: ", data);
    frame.push('\n');
    Bytes::from(frame)
}

/// Frames an event without an id: only `data` (one `data:` line per line of it). For streams
/// that are never resumed (the stateless era's replies).
pub fn data(data: &str) -> Bytes {
    let mut frame = String::with_capacity(data.len() + 8);
    push_lines(&mut frame, "data: ", data);
    frame.push('\n');
    Bytes::from(frame)
}

/// Frames a bare `retry` (in milliseconds): the client reconnects after that delay, from the
/// last id it saw.
pub fn retry(retry: Duration) -> Bytes {
    Bytes::from(format!("retry: {}\n\n", retry.as_millis()))
}

/// Frames a comment (one `:` line per line of `text`), which clients ignore: a keep-alive
/// ([`KEEP_ALIVE`] is `comment(" keep-alive")`).
pub fn comment(text: &str) -> Bytes {
    let mut frame = String::with_capacity(text.len() + 3);
    push_lines(&mut frame, ":", text);
    frame.push('\n');
    Bytes::from(frame)
}

/// Writes `prefix` and each line of `text` (split at CR, LF and CRLF), each ended by LF.
fn push_lines(frame: &mut String, prefix: &str, text: &str) {
    let mut rest = text;
    loop {
        frame.push_str(prefix);
        let Some(end) = memchr::memchr2(b'\n', b'\r', rest.as_bytes()) else {
            frame.push_str(rest);
            frame.push('\n');
            return;
        };
        frame.push_str(&rest[..end]);
        frame.push('\n');
        let crlf = rest[end..].starts_with("\r\n");
        rest = &rest[end + if crlf { 2 } else { 1 }..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_events_without_ids() {
        assert_eq!(&data("{}")[..], b"data: {}\n\n");
        assert_eq!(&data("a\r\nb")[..], b"data: a\ndata: b\n\n");
    }

    #[test]
    fn frames_events_and_priming() {
        assert_eq!(
            event(&"aaaaaaaaaaaaaaaa.3", None, "{}"),
            Bytes::from("id: aaaaaaaaaaaaaaaa.3\ndata: {}\n\n")
        );
        assert_eq!(
            event(
                &"aaaaaaaaaaaaaaaa.3.AAAAAAAAAAAAAAAA",
                Some(Duration::from_millis(500)),
                ""
            ),
            Bytes::from("id: aaaaaaaaaaaaaaaa.3.AAAAAAAAAAAAAAAA\nretry: 500\ndata: \n\n")
        );
    }

    #[test]
    fn writes_one_data_line_per_line() {
        assert_eq!(
            event(&"a.1", None, "one\ntwo\r\nthree\rfour\n"),
            Bytes::from("id: a.1\ndata: one\ndata: two\ndata: three\ndata: four\ndata: \n\n")
        );
        assert_eq!(
            event(&"a.1", None, "\r\n"),
            Bytes::from("id: a.1\ndata: \ndata: \n\n")
        );
    }

    #[test]
    fn frames_retry_and_comments() {
        assert_eq!(
            retry(Duration::from_millis(1500)),
            Bytes::from("retry: 1500\n\n")
        );
        assert_eq!(comment(" keep-alive"), Bytes::from_static(KEEP_ALIVE));
        assert_eq!(comment(""), Bytes::from(":\n\n"));
        assert_eq!(comment("a\nb"), Bytes::from(":a\n:b\n\n"));
    }
}
