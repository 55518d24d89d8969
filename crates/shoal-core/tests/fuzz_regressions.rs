//! Inputs that broke an invariant once, found by the fuzz targets of `fuzz/` or the property
//! tests of `tests/properties.rs`, kept so that the fix stays.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shoal_core::ids::{EventId, NodeId, StreamId};
use shoal_core::jsonrpc::{self, Message};

/// Fuzz target `jsonrpc_message`: `22e26` parsed to 2.2000000000000001e27 (serde_json's
/// default float parsing is not correctly rounded), so the re-encoded message parsed to
/// another number. Fixed by serde_json's `float_roundtrip` feature.
#[test]
fn numbers_survive_parse_and_encode() {
    let body = br#"{"jsonrpc":"2.0","id":"no-1.4","result":{"act":{"n":0.5,"e":22e26}}}"#;
    let Message::Response(response) = Message::parse(body).unwrap() else {
        panic!("a response");
    };
    let result = response.outcome.as_ref().unwrap();
    assert_eq!(result["act"]["e"].as_f64(), Some(2.2e27));
    let encoded = jsonrpc::encode_result(&response.id, result);
    assert_eq!(
        Message::parse(encoded.as_bytes()).unwrap(),
        Message::Response(response)
    );
}

/// Property `parse_accepts_only_what_round_trips` (and the `event_id` target's grammar):
/// a sequence number with a leading zero parsed, naming the same event as another id.
#[test]
fn event_ids_have_one_text_form() {
    for text in ["--0-a_a0Aa0_a--a.00", "aaaaaaaaaaaaaaaa.01"] {
        assert!(text.parse::<EventId>().is_err(), "{text:?}");
    }
    assert!("aaaaaaaaaaaaaaaa.0".parse::<EventId>().is_ok());
}

/// Property `minted_event_ids_round_trip`: a reply stream written by a node with a long id
/// (a long host name) made event ids that `Last-Event-ID` refused, so such streams could not
/// be resumed. Node ids are now at most 64 characters.
#[test]
fn reply_streams_of_long_node_ids_resume() {
    let node = NodeId::new(
        "NobS5aEFuFyfdd13--0----0-AA-----A--a---A---A----0----AA0--A---00----A---0a000-0--",
    );
    let id = EventId {
        stream: StreamId::for_node(&node),
        seq: 0,
    };
    let parsed: EventId = id.to_string().parse().unwrap();
    assert_eq!(parsed.stream.writer(), Some(node));
    let default = NodeId::with_random_suffix(&"a-very-long-host-name".repeat(5));
    assert!(
        format!("{}.7", StreamId::for_node(&default))
            .parse::<EventId>()
            .is_ok()
    );
}
