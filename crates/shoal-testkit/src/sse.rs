//! An incremental Server-Sent Events parser, written from the WHATWG HTML "event stream
//! interpretation" rules, that keeps what a test needs to see and a browser would hide.
//!
//! Bytes go in as they arrive ([`SseParser::push`]), in chunks of any size; complete items come
//! out. A block of fields ended by a blank line is an [`SseEvent`]; unlike a browser, the parser
//! also reports blocks without `data` (a bare `retry:` when the server drains, say) and every
//! comment line (keep-alives), so that tests can assert on them.
//!
//! Line ends may be LF, CRLF or CR, also split across chunks. A leading byte order mark is
//! skipped. `data` lines are joined with `\n`. `retry` is kept only when it is all ASCII digits
//! and `id` only when it contains no NUL, as the standard says.

use std::collections::VecDeque;

/// One block of fields, ended by a blank line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The block's own `id` field, if it had one.
    pub id: Option<String>,
    /// The `event` field (the event type), if any.
    pub event: Option<String>,
    /// The `data` lines joined with `\n`; `None` when the block had no `data` field, `Some("")`
    /// for an empty `data:` line (a priming event).
    pub data: Option<String>,
    /// The `retry` field in milliseconds, if the block set one.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// The JSON message in `data`, when there is a non-empty one that parses.
    pub fn json(&self) -> Option<serde_json::Value> {
        let data = self.data.as_deref()?;
        if data.is_empty() {
            return None;
        }
        serde_json::from_str(data).ok()
    }

    /// Whether this is a priming event: an id and empty data (the server's "you can resume
    /// from here").
    pub fn is_priming(&self) -> bool {
        self.id.is_some() && self.data.as_deref() == Some("")
    }

    /// The stream part of a `<stream>.<seq>` id (a stored event's) or a
    /// `<stream>.<seq>.<nonce>` id (a priming event's).
    pub fn stream(&self) -> Option<&str> {
        id_stream(self.id.as_deref()?)
    }

    /// The sequence part of a `<stream>.<seq>` or `<stream>.<seq>.<nonce>` id: the position
    /// the event stands for.
    pub fn seq(&self) -> Option<u64> {
        id_seq(self.id.as_deref()?)
    }
}

/// The stream part of an event id, stored (`<stream>.<seq>`) or priming
/// (`<stream>.<seq>.<nonce>`).
pub fn id_stream(id: &str) -> Option<&str> {
    Some(id.split_once('.')?.0)
}

/// The sequence part of an event id, stored or priming: the position it names.
pub fn id_seq(id: &str) -> Option<u64> {
    let (_, rest) = id.split_once('.')?;
    rest.split('.').next()?.parse().ok()
}

/// What the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A block of fields.
    Event(SseEvent),
    /// A comment line (`: keep-alive` yields `" keep-alive"`, everything after the colon).
    Comment(String),
}

/// Turns a byte stream into [`SseItem`]s.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The current line, not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended in CR: skip an LF at the start of the next one.
    skip_lf: bool,
    /// A line was completed already (a byte order mark can only open the first).
    past_first_line: bool,
    /// The block being built, its `data` lines, and whether any field was set in it.
    block: SseEvent,
    data_lines: Vec<String>,
    block_has_fields: bool,
    /// The last `id` seen, as a browser would send in `Last-Event-ID`.
    last_event_id: Option<String>,
    ready: VecDeque<SseItem>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns the items it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseItem> {
        for &byte in chunk {
            if self.skip_lf {
                self.skip_lf = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(),
                b'\r' => {
                    self.end_line();
                    self.skip_lf = true;
                }
                _ => self.line.push(byte),
            }
        }
        self.ready.drain(..).collect()
    }

    /// The stream ended: an unterminated block is dropped, as the standard says.
    pub fn finish(&mut self) -> Vec<SseItem> {
        self.line.clear();
        self.block = SseEvent::default();
        self.data_lines.clear();
        self.block_has_fields = false;
        self.ready.drain(..).collect()
    }

    /// The last `id` field seen in any block (what a reconnecting client sends).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    fn end_line(&mut self) {
        let mut line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if !std::mem::replace(&mut self.past_first_line, true)
            && let Some(rest) = line.strip_prefix('\u{FEFF}')
        {
            line = rest.to_owned();
        }
        if line.is_empty() {
            if self.block_has_fields {
                let mut block = std::mem::take(&mut self.block);
                if !self.data_lines.is_empty() {
                    block.data = Some(std::mem::take(&mut self.data_lines).join("\n"));
                }
                self.ready.push_back(SseItem::Event(block));
            }
            self.block_has_fields = false;
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            self.ready.push_back(SseItem::Comment(comment.to_owned()));
            return;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match name {
            "data" => {
                self.data_lines.push(value.to_owned());
                self.block_has_fields = true;
            }
            "id" if !value.contains('\0') => {
                self.block.id = Some(value.to_owned());
                self.last_event_id = Some(value.to_owned());
                self.block_has_fields = true;
            }
            "event" => {
                self.block.event = Some(value.to_owned());
                self.block_has_fields = true;
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(retry) = value.parse() {
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
    use super::*;

    fn parse(input: &str) -> Vec<SseItem> {
        let mut parser = SseParser::new();
        let mut items = parser.push(input.as_bytes());
        items.extend(parser.finish());
        items
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
        assert_eq!(priming.json(), None);
        let SseItem::Event(nonced) = &parse("id: abc.7.n0nc3\nretry: 5\ndata: \n\n")[0] else {
            panic!("an event");
        };
        assert_eq!(nonced.stream(), Some("abc"));
        assert_eq!(nonced.seq(), Some(7));
    }

    #[test]
    fn joins_multi_line_data() {
        assert_eq!(
            parse("data: one\ndata:two\ndata\ndata:  three\n\n"),
            vec![event(None, Some("one\ntwo\n\n three"), None)]
        );
        assert_eq!(
            parse("data:\ndata:\n\n"),
            vec![event(None, Some("\n"), None)]
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
    }

    #[test]
    fn accepts_crlf_and_cr_line_ends_across_chunks() {
        let mut parser = SseParser::new();
        let mut items = Vec::new();
        for chunk in ["id: a.1\r", "\ndata: x\r", "\r", "\nid: a.2\rdata: y\r\r"] {
            items.extend(parser.push(chunk.as_bytes()));
        }
        assert_eq!(
            items,
            vec![
                event(Some("a.1"), Some("x"), None),
                event(Some("a.2"), Some("y"), None)
            ]
        );
        assert_eq!(parser.last_event_id(), Some("a.2"));
    }

    #[test]
    fn splits_anywhere_and_skips_a_bom() {
        let input = "\u{FEFF}id: s.7\ndata: {\"jsonrpc\":\"2.0\"}\n\n: ping\n";
        let mut parser = SseParser::new();
        let mut items = Vec::new();
        for byte in input.as_bytes() {
            items.extend(parser.push(std::slice::from_ref(byte)));
        }
        assert_eq!(
            items,
            vec![
                event(Some("s.7"), Some("{\"jsonrpc\":\"2.0\"}"), None),
                SseItem::Comment(" ping".into()),
            ]
        );
    }

    #[test]
    fn ignores_bad_fields_and_unterminated_blocks() {
        assert_eq!(
            parse("retry: 10ms\nfoo: bar\n\nid: a\0b\n\ndata: lost"),
            Vec::<SseItem>::new()
        );
        assert_eq!(
            parse("event: update\ndata: x\n\n"),
            vec![SseItem::Event(SseEvent {
                event: Some("update".into()),
                data: Some("x".into()),
                ..SseEvent::default()
            })]
        );
    }
}
