//! A POST body, parsed as the transport parses it (`Message::parse`): never a panic; whatever
//! is accepted re-encodes with the server's own encoders and parses back to the same message;
//! whatever is refused has a JSON-RPC error to answer with.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::jsonrpc::{self, Message};

fuzz_target!(|body: &[u8]| {
    match Message::parse(body) {
        Ok(message) => {
            let encoded = encode(&message);
            let reparsed = Message::parse(encoded.as_bytes())
                .unwrap_or_else(|e| panic!("{encoded} does not parse back: {e}"));
            assert_eq!(reparsed, message, "{encoded}");
        }
        Err(error) => {
            let answer = jsonrpc::encode_error(None, &error.to_rpc_error());
            assert!(
                serde_json::from_str::<serde_json::Value>(&answer).is_ok(),
                "{answer}"
            );
        }
    }
});

fn encode(message: &Message) -> String {
    match message {
        Message::Request(request) => {
            jsonrpc::encode_request(&request.id, &request.method, &request.params)
        }
        Message::Notification(notification) => {
            jsonrpc::encode_notification(&notification.method, &notification.params)
        }
        Message::Response(response) => match &response.outcome {
            Ok(result) => jsonrpc::encode_result(&response.id, result),
            Err(error) => jsonrpc::encode_error(Some(&response.id), error),
        },
    }
}
