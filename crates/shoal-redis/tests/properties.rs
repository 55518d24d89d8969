//! The stream-log property of `shoal-core/tests/properties.rs`, against the Redis host: for
//! generated logs, every event id resumes with exactly the later events, in order, then the
//! live end; the end, positions past it, foreign and unknown streams behave as the host
//! contract says (`shoal_core::host::suite::resume_from_every_event`). One `redis-server` of
//! this test's own serves 32 generated cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use shoal_core::host::{StreamEvent, suite};
use shoal_testkit::redis::RedisServer;

/// Events that leave a stream open, as handlers append them (any text: the codec must carry
/// it unchanged).
fn open_event() -> impl Strategy<Value = StreamEvent> {
    prop_oneof![
        6 => "\\PC{0,40}".prop_map(|text| StreamEvent::Message(text.into())),
        1 => Just(StreamEvent::Disconnect),
        1 => "[0-9]{1,6}".prop_map(|id| StreamEvent::Request(id.into())),
    ]
}

/// Events that end a stream.
fn terminal_event() -> impl Strategy<Value = StreamEvent> {
    prop_oneof![
        "\\PC{0,40}".prop_map(|text| StreamEvent::Last(text.into())),
        Just(StreamEvent::End),
    ]
}

#[test]
fn redis_host_resumes_from_every_event() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let redis = runtime.block_on(RedisServer::start());
    let host = runtime.block_on(common::host(
        &redis.url(),
        &common::unique_prefix(),
        "properties",
    ));
    let mut runner = TestRunner::new(Config::with_cases(32));
    let outcome = runner.run(
        &(vec(open_event(), 1..40), terminal_event()),
        |(events, terminal)| {
            runtime.block_on(suite::resume_from_every_event(&host, &events, terminal));
            Ok(())
        },
    );
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
