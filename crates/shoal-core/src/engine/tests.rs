//! Engine tests over the in-memory host: negotiation, lifecycle, progress, cancellation and
//! server→client requests, without HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::*;
use crate::handler::{ToolError, ToolSet, typed_tool};
use crate::host::{MemoryHost, MemoryHostConfig, StreamEvent, StreamLog};
use crate::ids::NodeId;
use crate::jsonrpc::Message;
use crate::model::{ElicitAction, ElicitRequest};
use crate::testing::{initialize, read_stream, request};

#[derive(Deserialize, JsonSchema)]
struct Steps {
    n: u32,
}

#[derive(Deserialize, JsonSchema)]
struct Nothing {}

/// Sets its flag when dropped: tells whether a cancelled handler was stopped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn engine(stopped: Arc<AtomicBool>) -> Engine {
    let tools = ToolSet::new()
        .with(typed_tool(
            "steps",
            "progress n times",
            |ctx, Steps { n }| async move {
                for i in 1..=n {
                    ctx.progress(f64::from(i), Some(f64::from(n)), None)
                        .await
                        .map_err(|e| ToolError::failed(e.to_string()))?;
                }
                Ok::<_, ToolError>(format!("{n}"))
            },
        ))
        .with(typed_tool(
            "slow",
            "waits until cancelled",
            move |_ctx, Nothing {}| {
                let flag = DropFlag(stopped.clone());
                async move {
                    let _flag = flag;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<_, ToolError>("finished".to_owned())
                }
            },
        ))
        .with(typed_tool("ask", "elicits", |ctx, Nothing {}| async move {
            let answer = ctx
                .elicit(ElicitRequest {
                    message: "name?".into(),
                    requested_schema: json!({"type": "object", "properties": {}}),
                })
                .await
                .map_err(|e| ToolError::failed(e.to_string()))?;
            Ok::<_, ToolError>(format!("{:?}", answer.action))
        }));
    let host = Arc::new(MemoryHost::new(
        NodeId::new("node-a"),
        MemoryHostConfig::default(),
    ));
    Engine::new(host, Handlers::new().tools(tools), EngineConfig::default())
}

/// A session initialized with the client's `capabilities`.
async fn session(engine: &Engine, capabilities: Value) -> SessionRecord {
    initialize(engine, capabilities).await
}

#[tokio::test]
async fn negotiates_the_protocol_version() {
    let engine = engine(Arc::default());
    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let init = request(
            1,
            "initialize",
            json!({"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t"}}),
        );
        let (record, body) = engine.initialize(None, &init).await.unwrap();
        assert_eq!(record.protocol_version, answered);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["result"]["protocolVersion"], answered);
        assert_eq!(body["result"]["capabilities"]["tools"]["listChanged"], true);
    }
    let bad = request(1, "initialize", json!({"capabilities": {}}));
    assert!(
        matches!(engine.initialize(None, &bad).await, Err(InitializeError::Invalid(e)) if e.code == jsonrpc::INVALID_PARAMS)
    );
}

#[tokio::test]
async fn only_ping_works_before_initialize() {
    let engine = engine(Arc::default());
    assert_eq!(
        engine
            .sessionless(&request(1, "ping", json!({})))
            .as_deref(),
        Some(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
    );
    assert_eq!(
        engine.sessionless(&request(1, "tools/list", json!({}))),
        None
    );
}

#[tokio::test]
async fn progress_streams_before_the_result() {
    let engine = engine(Arc::default());
    let session = session(&engine, json!({})).await;
    let call = request(
        5,
        "tools/call",
        json!({"name": "steps", "arguments": {"n": 3}, "_meta": {"progressToken": "tok"}}),
    );
    let Reply::Stream(stream) = engine
        .handle_request(session.clone(), None, call)
        .await
        .unwrap()
    else {
        panic!("progress makes the reply a stream");
    };
    let messages = read_stream(&engine, &session, stream).await;
    assert_eq!(messages.len(), 4, "{messages:?}");
    for (i, message) in messages[..3].iter().enumerate() {
        assert_eq!(message["method"], "notifications/progress");
        assert_eq!(message["params"]["progressToken"], "tok");
        assert_eq!(message["params"]["progress"], json!((i + 1) as f64));
        assert_eq!(message["params"]["total"], json!(3.0));
    }
    assert_eq!(messages[3]["id"], 5);
    assert_eq!(messages[3]["result"]["content"][0]["text"], "3");
}

#[tokio::test]
async fn without_a_progress_token_the_reply_is_plain_json() {
    let engine = engine(Arc::default());
    let session = session(&engine, json!({})).await;
    let call = request(
        6,
        "tools/call",
        json!({"name": "steps", "arguments": {"n": 3}}),
    );
    let Reply::Json(body) = engine.handle_request(session, None, call).await.unwrap() else {
        panic!("nothing was sent before the result");
    };
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "3");
}

#[tokio::test]
async fn invalid_arguments_are_a_tool_error_result() {
    let engine = engine(Arc::default());
    let session = session(&engine, json!({})).await;
    let call = request(
        7,
        "tools/call",
        json!({"name": "steps", "arguments": {"n": "three"}}),
    );
    let Reply::Json(body) = engine
        .handle_request(session.clone(), None, call)
        .await
        .unwrap()
    else {
        panic!()
    };
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["result"]["isError"], true);
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("invalid arguments for tool steps")
    );
    let unknown = request(8, "tools/call", json!({"name": "nope"}));
    let Reply::Json(body) = engine.handle_request(session, None, unknown).await.unwrap() else {
        panic!()
    };
    assert!(body.contains("-32602"), "{body}");
}

#[tokio::test]
async fn cancellation_stops_the_handler_of_that_session_only() {
    let stopped = Arc::new(AtomicBool::new(false));
    let engine = engine(stopped.clone());
    let (a, b) = (
        session(&engine, json!({})).await,
        session(&engine, json!({})).await,
    );
    let call = request(9, "tools/call", json!({"name": "slow"}));
    let running = tokio::spawn({
        let (engine, a) = (engine.clone(), a.clone());
        async move { engine.handle_request(a, None, call).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cancel = |session: &SessionRecord| {
        let note = Message::from_value(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}),
        );
        let Ok(Message::Notification(note)) = note else {
            panic!()
        };
        let (engine, session) = (engine.clone(), session.clone());
        async move { engine.handle_notification(&session, note).await.unwrap() }
    };
    cancel(&b).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !stopped.load(Ordering::SeqCst),
        "another session's cancel must not reach it"
    );
    cancel(&a).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(stopped.load(Ordering::SeqCst), "the handler was dropped");
    let Reply::Stream(stream) = reply else {
        panic!("a cancelled request has no JSON response")
    };
    assert_eq!(
        read_stream(&engine, &a, stream).await,
        Vec::<Value>::new(),
        "no response after cancellation"
    );
}

#[tokio::test]
async fn elicitation_answers_are_routed_to_the_waiting_handler() {
    let engine = engine(Arc::default());
    let session = session(&engine, json!({"elicitation": {}})).await;
    let call = request(10, "tools/call", json!({"name": "ask"}));
    let Reply::Stream(stream) = engine
        .handle_request(session.clone(), None, call)
        .await
        .unwrap()
    else {
        panic!()
    };
    let mut sub = engine
        .resume(&session, &EventId { stream, seq: 0 })
        .await
        .unwrap();
    let Some(Ok(opened)) = sub.events.next().await else {
        panic!()
    };
    assert_eq!(
        opened.event,
        StreamEvent::Request("10".into()),
        "a reply stream names its request first"
    );
    let Some(Ok(first)) = sub.events.next().await else {
        panic!()
    };
    let StreamEvent::Message(text) = first.event else {
        panic!()
    };
    let asked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(asked["method"], "elicitation/create");
    let id = asked["id"].as_str().unwrap();
    assert!(id.starts_with("node-a."), "the id names the node: {id}");
    let answer = json!({"jsonrpc": "2.0", "id": id, "result": {"action": "decline"}});
    let Ok(Message::Response(answer)) = Message::from_value(answer) else {
        panic!()
    };
    engine.handle_response(&session, answer).await.unwrap();
    let Some(Ok(last)) = sub.events.next().await else {
        panic!()
    };
    let StreamEvent::Last(text) = last.event else {
        panic!()
    };
    let result: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        result["result"]["content"][0]["text"],
        format!("{:?}", ElicitAction::Decline)
    );
}

#[tokio::test]
async fn elicitation_needs_the_client_capability() {
    let engine = engine(Arc::default());
    let session = session(&engine, json!({})).await;
    let call = request(11, "tools/call", json!({"name": "ask"}));
    let Reply::Json(body) = engine.handle_request(session, None, call).await.unwrap() else {
        panic!()
    };
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["result"]["isError"], true);
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("does not support elicitation")
    );
}

#[tokio::test]
async fn a_reader_answers_for_a_request_whose_replica_died() {
    let host = Arc::new(MemoryHost::new(
        NodeId::new("node-a"),
        MemoryHostConfig::default(),
    ));
    let config = EngineConfig {
        liveness_check_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    let engine = Engine::new(host.clone(), Handlers::new(), config);
    let session = session(&engine, json!({})).await;
    // A reply stream that a node which no longer lives was writing.
    let stream = StreamId::for_node(&NodeId::new("node-gone"));
    host.append(&session.id, &stream, StreamEvent::Request("42".into()))
        .await
        .unwrap();
    host.append(
        &session.id,
        &stream,
        StreamEvent::Message(r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#.into()),
    )
    .await
    .unwrap();
    let messages = read_stream(&engine, &session, stream.clone()).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["id"], 42);
    assert_eq!(messages[1]["error"]["code"], jsonrpc::INTERNAL_ERROR);
    assert!(
        messages[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("abandoned")
    );
    // The answer is final: nothing can follow it, and a second reader sees the same.
    assert_eq!(
        host.append(&session.id, &stream, StreamEvent::Message("late".into()))
            .await,
        Err(HostError::StreamEnded)
    );
    assert_eq!(read_stream(&engine, &session, stream).await, messages);
}

#[tokio::test]
async fn initialize_beyond_the_sessions_per_principal_is_refused() {
    let host = Arc::new(MemoryHost::new(
        NodeId::new("test"),
        MemoryHostConfig::default(),
    ));
    let config = EngineConfig {
        max_sessions_per_principal: 2,
        ..EngineConfig::default()
    };
    let engine = Engine::new(host, Handlers::new(), config);
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}}),
    );
    let alice = Principal::new("alice");
    let (first, _) = engine.initialize(Some(&alice), &init).await.unwrap();
    engine.initialize(Some(&alice), &init).await.unwrap();
    assert_eq!(
        engine.initialize(Some(&alice), &init).await.unwrap_err(),
        InitializeError::TooManySessions { max: 2 }
    );
    engine
        .initialize(Some(&Principal::new("bob")), &init)
        .await
        .expect("another principal has its own count");
    engine
        .initialize(None, &init)
        .await
        .expect("no principal: not limited");
    assert!(engine.host().delete_session(&first.id).await.unwrap());
    engine
        .initialize(Some(&alice), &init)
        .await
        .expect("a deleted session frees its slot");
}

fn modern_meta(
    capabilities: Value,
    log_level: Option<crate::session::LogLevel>,
) -> crate::era::ModernMeta {
    crate::era::ModernMeta {
        version: "2026-07-28".into(),
        client_capabilities: capabilities,
        client_info: Value::Null,
        log_level,
    }
}

/// The stateless era: a tool that needs a client capability the request did not declare is
/// refused with -32021 naming it; the session era answers an `isError` result instead.
#[tokio::test]
async fn a_missing_client_capability_is_a_refusal_in_the_stateless_era_only() {
    let tools = ToolSet::new().with(typed_tool(
        "needs_sampling",
        "Needs sampling",
        |ctx: RequestContext, Nothing {}| async move {
            ToolError::require_capability(&ctx, "sampling")?;
            Ok::<_, ToolError>("sampled".to_owned())
        },
    ));
    let host = Arc::new(MemoryHost::new(
        NodeId::new("n"),
        MemoryHostConfig::default(),
    ));
    let engine = Engine::new(host, Handlers::new().tools(tools), EngineConfig::default());
    let call = || {
        request(
            1,
            "tools/call",
            json!({"name": "needs_sampling", "arguments": {}}),
        )
    };

    let ModernReply::Refused(body) = engine
        .handle_modern(modern_meta(json!({}), None), None, call())
        .await
    else {
        panic!("refused for want of sampling");
    };
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["id"], 1);
    assert_eq!(body["error"]["code"], codes::modern::MISSING_CAPABILITY);
    assert_eq!(
        body["error"]["data"],
        json!({"requiredCapabilities": {"sampling": {}}})
    );

    let ModernReply::Json(body) = engine
        .handle_modern(modern_meta(json!({"sampling": {}}), None), None, call())
        .await
    else {
        panic!("served once declared");
    };
    assert!(body.contains("sampled"), "{body}");

    let session = session(&engine, json!({})).await;
    let Reply::Json(body) = engine.handle_request(session, None, call()).await.unwrap() else {
        panic!()
    };
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
}

/// Log messages reach a stateless-era request only when its `_meta` asked for a level.
#[tokio::test]
async fn the_stateless_era_logs_only_at_the_level_meta_asks_for() {
    let tools = ToolSet::new().with(typed_tool(
        "chatty",
        "Logs, then answers",
        |ctx: RequestContext, Nothing {}| async move {
            ctx.log(crate::session::LogLevel::Info, None, json!("hello"))
                .await
                .map_err(|e| ToolError::failed(e.to_string()))?;
            Ok::<_, ToolError>("done".to_owned())
        },
    ));
    let host = Arc::new(MemoryHost::new(
        NodeId::new("n"),
        MemoryHostConfig::default(),
    ));
    let engine = Engine::new(host, Handlers::new().tools(tools), EngineConfig::default());
    let call = || request(1, "tools/call", json!({"name": "chatty", "arguments": {}}));
    let ModernReply::Json(body) = engine
        .handle_modern(modern_meta(json!({}), None), None, call())
        .await
    else {
        panic!("no log without a level: a plain reply");
    };
    assert!(body.contains("done"), "{body}");
    let ModernReply::Live(mut live) = engine
        .handle_modern(
            modern_meta(json!({}), Some(crate::session::LogLevel::Debug)),
            None,
            call(),
        )
        .await
    else {
        panic!("the log message comes first");
    };
    let first: Value = serde_json::from_str(&live.next().await.unwrap()).unwrap();
    assert_eq!(first["method"], "notifications/message");
    let last: Value = serde_json::from_str(&live.next().await.unwrap()).unwrap();
    assert_eq!(last["result"]["resultType"], "complete");
    assert!(live.next().await.is_none());
}
