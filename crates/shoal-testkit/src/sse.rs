//! The Server-Sent Events parser behind [`SseStream`](crate::SseStream): `shoal_wire`'s, which
//! keeps what a test needs to see and a browser would hide (blocks without `data`, such as a
//! bare `retry:` when the server drains, and every comment line, such as keep-alives).
//!
//! Bytes go in as they arrive ([`SseParser::push`]), in chunks of any size; complete items come
//! out of [`SseParser::next_item`]. [`SseEvent::json`] reads an event's JSON-RPC message;
//! [`id_stream`] and [`id_seq`] read the parts of an event id.

pub use shoal_wire::event_id::{seq_part as id_seq, stream_part as id_stream};
pub use shoal_wire::sse::{SseEvent, SseItem, SseParser};
