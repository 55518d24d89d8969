//! The incremental parser, written from the WHATWG HTML "event stream interpretation" rules.
//!
//! A block of fields ended by a blank line is an [`SseEvent`]. Unlike a browser, the parser also
//! yields blocks without `data` (a bare `retry:`, say) and every comment line (keep-alives);
//! callers that want neither skip them. Line ends may be LF, CRLF or CR, also split across
//! chunks; a leading byte order mark is skipped; `data` lines are joined with `\n`; `retry` is
//! kept only when it is all ASCII digits and `id` only when it contains no NUL. A block the
//! stream ends in the middle of is dropped ([`SseParser::finish`]).
//!
//! A line is copied only when it spans chunks; field values are the only allocations.

use std::collections::VecDeque;

use crate::event_id;

/// The UTF-8 byte order mark, skipped at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One block of fields, ended by a blank line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The block's own `id` field, if it had one.
    pub id: Option<String>,
    /// The `event` field (the event type), if any.
    pub event: Option<String>,
    /// The `data` lines joined with `\n`; `None` when the block had no `data` field, `Some("")`
    /// for one empty `data:` line (a priming event).
    pub data: Option<String>,
    /// The `retry` field in milliseconds, if the block set one.
    pub retry: Option<u64>,
}

// === impl SseEvent ===

impl SseEvent {
    /// Whether this is a priming event: an id and empty data (the server's "you can resume
    /// from here").
    pub fn is_priming(&self) -> bool {
        self.id.is_some() && self.data.as_deref() == Some("")
    }

    /// The stream part of the event's id, stored (`<stream>.<seq>`) or priming
    /// (`<stream>.<seq>.<nonce>`); see [`event_id::stream_part`].
    pub fn stream(&self) -> Option<&str> {
        event_id::stream_part(self.id.as_deref()?)
    }

    /// The sequence part of the event's id, stored or priming: the position the event stands
    /// for; see [`event_id::seq_part`].
    pub fn seq(&self) -> Option<u64> {
        event_id::seq_part(self.id.as_deref()?)
    }

    /// The JSON message in `data`, when there is a non-empty one that parses.
    #[cfg(feature = "json")]
    pub fn json(&self) -> Option<serde_json::Value> {
        let data = self.data.as_deref()?;
        if data.is_empty() {
            return None;
        }
        serde_json::from_str(data).ok()
    }
}

/// What the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A block of fields.
    Event(SseEvent),
    /// A comment line: everything after its colon (`: ping` yields `" ping"`).
    Comment(String),
}

/// Turns a byte stream into [`SseItem`]s.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The last chunk ended in CR: an LF opening the next one belongs to that line end.
    skip_lf: bool,
    /// The stream's first bytes were seen (a byte order mark can only open the stream).
    started: bool,
    /// The block being built, and whether any field was set in it.
    block: SseEvent,
    block_has_fields: bool,
    /// The last `id` field seen, as a browser would send in `Last-Event-ID`.
    last_event_id: Option<String>,
    /// Completed items not taken yet.
    ready: VecDeque<SseItem>,
}

// === impl SseParser ===

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; the items it completes are then returned by [`Self::next_item`].
    pub fn push(&mut self, chunk: &[u8]) {
        if self.started {
            self.push_bytes(chunk);
            return;
        }
        // The first bytes wait in `partial` until it is known whether they are a byte order
        // mark (it may arrive split too).
        let wanted = (BOM.len() - self.partial.len()).min(chunk.len());
        self.partial.extend_from_slice(&chunk[..wanted]);
        if self.partial.len() < BOM.len() && BOM.starts_with(&self.partial) {
            return;
        }
        self.started = true;
        let held = std::mem::take(&mut self.partial);
        if held != BOM {
            self.push_bytes(&held);
        }
        self.push_bytes(&chunk[wanted..]);
    }

    /// The next completed item, in stream order.
    pub fn next_item(&mut self) -> Option<SseItem> {
        self.ready.pop_front()
    }

    /// The last `id` field seen in any block: what a reconnecting client sends as
    /// `Last-Event-ID`.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The stream ended: a line or block left unterminated is dropped, as the standard says.
    pub fn finish(&mut self) {
        self.partial.clear();
        self.block = SseEvent::default();
        self.block_has_fields = false;
        self.skip_lf = false;
    }

    /// Splits bytes into lines; a line's start that has no end yet waits in `partial`.
    fn push_bytes(&mut self, mut chunk: &[u8]) {
        if self.skip_lf {
            self.skip_lf = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.partial.is_empty() {
                self.line(&chunk[..end]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[..end]);
                self.line(&line);
                // Keep the allocation for the next split line.
                line.clear();
                self.partial = line;
            }
            let crlf = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if crlf {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.partial.extend_from_slice(chunk);
    }

    /// One complete line, without its end.
    fn line(&mut self, line: &[u8]) {
        if line.is_empty() {
            if std::mem::take(&mut self.block_has_fields) {
                let block = std::mem::take(&mut self.block);
                self.ready.push_back(SseItem::Event(block));
            }
            return;
        }
        if let Some(comment) = line.strip_prefix(b":") {
            self.ready.push_back(SseItem::Comment(
                String::from_utf8_lossy(comment).into_owned(),
            ));
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                let value = String::from_utf8_lossy(value);
                match &mut self.block.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(&value);
                    }
                    None => self.block.data = Some(value.into_owned()),
                }
                self.block_has_fields = true;
            }
            b"id" if !value.contains(&0) => {
                let id = String::from_utf8_lossy(value);
                // The buffer is reused: one allocation per event, the block's own id.
                match &mut self.last_event_id {
                    Some(last) => {
                        last.clear();
                        last.push_str(&id);
                    }
                    None => self.last_event_id = Some(id.clone().into_owned()),
                }
                self.block.id = Some(id.into_owned());
                self.block_has_fields = true;
            }
            b"event" => {
                self.block.event = Some(String::from_utf8_lossy(value).into_owned());
                self.block_has_fields = true;
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits: only a number too large for u64 fails, and is ignored.
                if let Some(retry) = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                    self.block.retry = Some(retry);
                    self.block_has_fields = true;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    /// Every item of `chunks` fed in turn, then the end of the stream.
    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseItem> {
        let mut parser = SseParser::new();
        let mut items = Vec::new();
        for chunk in chunks {
            parser.push(chunk);
            items.extend(std::iter::from_fn(|| parser.next_item()));
        }
        parser.finish();
        items.extend(std::iter::from_fn(|| parser.next_item()));
        items
    }

    fn parse(input: &str) -> Vec<SseItem> {
        parse_chunks(&[input.as_bytes()])
    }

    /// `input` fed one byte at a time.
    fn parse_bytewise(input: &str) -> Vec<SseItem> {
        let bytes: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
        parse_chunks(&bytes)
    }

    fn event(id: Option<&str>, data: Option<&str>, retry: Option<u64>) -> SseItem {
        SseItem::Event(SseEvent {
            id: id.map(str::to_owned),
            event: None,
            data: data.map(str::to_owned),
            retry,
        })
    }

    #[test]
    fn reads_id_event_data_and_retry() {
        assert_eq!(
            parse(
                "id: abc.0\nretry: 1000\ndata: \n\nid: abc.1\nevent: message\ndata: {\"x\":1}\n\n"
            ),
            vec![
                event(Some("abc.0"), Some(""), Some(1000)),
                SseItem::Event(SseEvent {
                    id: Some("abc.1".into()),
                    event: Some("message".into()),
                    data: Some("{\"x\":1}".into()),
                    retry: None,
                }),
            ]
        );
    }

    #[test]
    fn joins_multi_line_data_and_strips_one_space() {
        assert_eq!(
            parse("data: one\ndata:two\ndata\ndata:  three\n\n"),
            vec![event(None, Some("one\ntwo\n\n three"), None)]
        );
        assert_eq!(
            parse("data:\ndata:\n\n"),
            vec![event(None, Some("\n"), None)]
        );
        assert_eq!(
            parse("data: a:b: c\n\n"),
            vec![event(None, Some("a:b: c"), None)]
        );
    }

    #[test]
    fn reports_comments_and_blocks_without_data() {
        assert_eq!(
            parse(": keep-alive\n\n:\n\nretry: 1000\n\n"),
            vec![
                SseItem::Comment(" keep-alive".into()),
                SseItem::Comment(String::new()),
                event(None, None, Some(1000)),
            ]
        );
        // A blank line with no field before it dispatches nothing.
        assert_eq!(parse("\n\n\n"), Vec::<SseItem>::new());
    }

    #[test]
    fn accepts_crlf_and_cr_line_ends_across_chunks() {
        let items = parse_chunks(&[
            b"id: a.1\r",
            b"\ndata: x\r",
            b"\r",
            b"\nid: a.2\rdata: y\r\r",
            b"data: z\r\n\r\n",
        ]);
        assert_eq!(
            items,
            vec![
                event(Some("a.1"), Some("x"), None),
                event(Some("a.2"), Some("y"), None),
                event(None, Some("z"), None),
            ]
        );
    }

    #[test]
    fn gives_the_same_items_whatever_the_chunks() {
        let input = "\u{FEFF}id: s.7\r\ndata: {\"jsonrpc\":\"2.0\"}\r\ndata: é\r\n\r\n: ping\n\
                     retry: 5\rid: s.8\rdata:\r\r";
        let expected = vec![
            event(Some("s.7"), Some("{\"jsonrpc\":\"2.0\"}\né"), None),
            SseItem::Comment(" ping".into()),
            event(Some("s.8"), Some(""), Some(5)),
        ];
        assert_eq!(parse(input), expected);
        assert_eq!(parse_bytewise(input), expected);
        for split in 0..=input.len() {
            let (a, b) = input.as_bytes().split_at(split);
            assert_eq!(parse_chunks(&[a, b]), expected, "split at {split}");
        }
    }

    #[test]
    fn skips_only_a_leading_byte_order_mark() {
        assert_eq!(
            parse_bytewise("\u{FEFF}data: x\n\n"),
            vec![event(None, Some("x"), None)]
        );
        // Not at the start: part of the field name, which is then unknown.
        assert_eq!(
            parse("data: x\n\n\u{FEFF}data: y\n\n"),
            vec![event(None, Some("x"), None)]
        );
        // Short streams that only begin like the mark are not swallowed.
        assert_eq!(parse(":\n"), vec![SseItem::Comment(String::new())]);
        assert_eq!(
            parse_chunks(&[b"\xEF", b"\xBB", b"\xBF:a\n"]),
            vec![SseItem::Comment("a".into())]
        );
    }

    #[test]
    fn ignores_bad_fields_and_drops_an_unterminated_block() {
        assert_eq!(
            parse("retry: 10ms\nretry:\nfoo: bar\n\nid: a\0b\n\ndata: lost"),
            Vec::<SseItem>::new()
        );
        assert_eq!(
            parse("retry: 99999999999999999999999\ndata: x\n\n"),
            vec![event(None, Some("x"), None)]
        );
        // `finish` drops what was pending.
        let mut parser = SseParser::new();
        parser.push(b"data: half");
        parser.finish();
        parser.push(b"\ndata: whole\n\n");
        assert_eq!(parser.next_item(), Some(event(None, Some("whole"), None)));
        assert_eq!(parser.next_item(), None);
    }

    #[test]
    fn keeps_invalid_utf8_as_replacement_characters() {
        assert_eq!(
            parse_chunks(&[b"data: a\xFFb\n\n"]),
            vec![event(None, Some("a\u{FFFD}b"), None)]
        );
    }

    #[test]
    fn reads_ids_retry_and_priming() {
        assert_eq!(
            parse("id: abc.0\nretry: 1000\ndata: \n\nid: abc.1\ndata: {\"x\":1}\n\n"),
            vec![
                event(Some("abc.0"), Some(""), Some(1000)),
                event(Some("abc.1"), Some("{\"x\":1}"), None),
            ]
        );
        let SseItem::Event(priming) = &parse("id: abc.0\nretry: 5\ndata: \n\n")[0] else {
            panic!("not an event");
        };
        assert!(priming.is_priming());
        assert_eq!(priming.stream(), Some("abc"));
        assert_eq!(priming.seq(), Some(0));
        let SseItem::Event(nonced) = &parse("id: abc.7.n0nc3\nretry: 5\ndata: \n\n")[0] else {
            panic!("an event");
        };
        assert_eq!(nonced.stream(), Some("abc"));
        assert_eq!(nonced.seq(), Some(7));
        let SseItem::Event(message) = &parse("id: abc.8\ndata: {}\n\n")[0] else {
            panic!("an event");
        };
        assert!(!message.is_priming());
    }

    #[cfg(feature = "json")]
    #[test]
    fn reads_json_messages_out_of_data() {
        let SseItem::Event(message) = &parse("id: abc.8\ndata: {\"x\":1}\n\n")[0] else {
            panic!("an event");
        };
        assert_eq!(message.json(), Some(serde_json::json!({"x": 1})));
        let SseItem::Event(priming) = &parse("id: abc.0\ndata: \n\n")[0] else {
            panic!("an event");
        };
        assert_eq!(priming.json(), None);
    }

    #[test]
    fn remembers_the_last_id_across_blocks_and_chunks() {
        let mut parser = SseParser::new();
        assert_eq!(parser.last_event_id(), None);
        for chunk in [
            "id: a.1\r",
            "\ndata: x\r",
            "\r",
            "\nid: a.2\rdata: y\r\r",
            "data: z\n\n",
        ] {
            parser.push(chunk.as_bytes());
        }
        assert_eq!(parser.last_event_id(), Some("a.2"));
        // Set as soon as the field is read, as a browser's last event ID buffer.
        parser.push(b"id: a.3\n");
        assert_eq!(parser.last_event_id(), Some("a.3"));
        parser.push(b"id: a\0b\n\n");
        assert_eq!(parser.last_event_id(), Some("a.3"));
    }

    /// A frame's fields, as the encoder takes them.
    fn frame_fields() -> impl Strategy<Value = (String, Option<u64>, String)> {
        (
            "[A-Za-z0-9_.-]{0,40}",
            proptest::option::of(0..u64::MAX / 1000),
            any::<String>(),
        )
    }

    proptest! {
        #[test]
        fn reads_back_what_the_encoder_writes(
            frames in proptest::collection::vec(frame_fields(), 1..4),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
            keep_alive in any::<bool>(),
        ) {
            let mut bytes = Vec::new();
            let mut expected = Vec::new();
            for (id, retry, data) in &frames {
                bytes.extend_from_slice(&crate::sse::event(id, retry.map(Duration::from_millis), data));
                // Every line end comes back as LF.
                let data = data.replace("\r\n", "\n").replace('\r', "\n");
                expected.push(SseItem::Event(SseEvent {
                    id: Some(id.clone()),
                    event: None,
                    data: Some(data),
                    retry: *retry,
                }));
                if keep_alive {
                    bytes.extend_from_slice(crate::sse::KEEP_ALIVE);
                    expected.push(SseItem::Comment(" keep-alive".into()));
                }
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                chunks.push(&bytes[start..cut]);
                start = cut;
            }
            prop_assert_eq!(parse_chunks(&chunks), expected);
        }
    }
}
