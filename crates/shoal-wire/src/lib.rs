//! Shoal's wire codecs: the bytes and header values of Streamable HTTP, without I/O.
//!
//! This crate knows the text forms and nothing else: no sockets, no HTTP types, no async
//! runtime, no other Shoal crate. The transport frames its streams with it, and every client
//! of ours (the test kit, the load generator, the fuzz targets) reads them back with it, so a
//! server and its tests cannot drift apart on the format.
//!
//! # Layout
//!
//! - [`sse`]: Server-Sent Events. [`sse::event`], [`sse::retry`] and [`sse::comment`] frame
//!   what a server sends; [`SseParser`] reads a byte stream back, incrementally, in chunks of
//!   any size, into [`SseItem`]s (events with their `id`, `event`, `data` and `retry` fields,
//!   and comments).
//! - [`event_id`]: the grammar of Shoal's event ids, `<stream>.<seq>` for a stored event and
//!   `<stream>.<seq>.<nonce>` for a priming event, and what a client may send back in
//!   `Last-Event-ID`. Minting them (randomness) is the engine's business, not this crate's.
//! - [`header`]: the names of the `Mcp-*` headers and the value codec of the 2026-07-28
//!   revision: `Mcp-Name` and `Mcp-Param-{Name}` values that are not plain ASCII travel as
//!   `=?base64?…?=`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use shoal_wire::event_id::EventIdRef;
//! use shoal_wire::{SseItem, SseParser, sse};
//!
//! let id = EventIdRef::parse("aaaaaaaaaaaaaaaa.7")?;
//! let frame = sse::event(&id, Some(Duration::from_millis(500)), r#"{"jsonrpc":"2.0"}"#);
//! assert_eq!(&frame[..], b"id: aaaaaaaaaaaaaaaa.7\nretry: 500\ndata: {\"jsonrpc\":\"2.0\"}\n\n");
//!
//! // The bytes may arrive cut anywhere.
//! let mut parser = SseParser::new();
//! let (head, tail) = frame.split_at(9);
//! parser.push(head);
//! assert_eq!(parser.next_item(), None);
//! parser.push(tail);
//! let Some(SseItem::Event(event)) = parser.next_item() else { panic!("an event") };
//! assert_eq!(event.id.as_deref(), Some("aaaaaaaaaaaaaaaa.7"));
//! assert_eq!(event.seq(), Some(7));
//! assert_eq!(event.retry, Some(500));
//!
//! // A header value that is not plain ASCII travels base64-encoded.
//! let name = shoal_wire::header::encode_value("Hello, 世界");
//! assert_eq!(name, "=?base64?SGVsbG8sIOS4lueVjA==?=");
//! assert_eq!(shoal_wire::header::decode_value(&name)?, "Hello, 世界");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod event_id;
pub mod header;
pub mod sse;

#[doc(inline)]
pub use event_id::{EventIdError, EventIdRef, LastEventIdRef, PrimingIdRef};
#[doc(inline)]
pub use header::HeaderValueError;
#[doc(inline)]
pub use sse::{SseEvent, SseItem, SseParser};
