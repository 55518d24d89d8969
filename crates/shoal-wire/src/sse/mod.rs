//! Server-Sent Events (the WHATWG HTML "event stream" format): framing on the way out,
//! an incremental parser on the way in.
//!
//! - [`event`], [`retry`], [`comment`]: the frames a server sends, as [`Bytes`](bytes::Bytes)
//!   ready for a response body. An event carries an `id`, an optional `retry` and its `data`;
//!   a bare `retry` tells a client to reconnect after that delay (a server draining); a
//!   comment keeps an idle connection alive.
//! - [`SseParser`]: bytes in as they arrive, in chunks of any size, [`SseItem`]s out. Unlike a
//!   browser it yields blocks without `data` (a bare `retry`) and every comment line, so that
//!   tests and load generators can see them.
//!
//! What is written reads back the same: a frame's `id`, `retry` and `data` come out of the
//! parser unchanged, except that a line break inside `data` (CR, LF or CRLF, each of which
//! ends a line in this format) comes back as LF.

mod encoder;
mod parser;

pub use encoder::{KEEP_ALIVE, comment, data, event, retry};
pub use parser::{SseEvent, SseItem, SseParser};
