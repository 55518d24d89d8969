//! Listen streams over the memory host: the acknowledgement names what is honoured, changes
//! arrive stamped with the subscription id and only as asked, bad filters are refused.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::engine::{Engine, EngineConfig, ListenStream, ModernReply};
use crate::era::ModernMeta;
use crate::handler::ResourceSet;
use crate::handler::{Handlers, ToolError, ToolSet, typed_tool};
use crate::host::{MemoryHost, MemoryHostConfig};
use crate::ids::NodeId;
use crate::model::{Resource, ResourceContents};
use crate::testing::request;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Nothing {}

/// Tools and one resource; no prompts.
fn engine() -> Engine {
    let tools = ToolSet::new().with(typed_tool(
        "noop",
        "Does nothing",
        |_ctx, Nothing {}| async { Ok::<_, ToolError>("ok".to_owned()) },
    ));
    let resource = Resource {
        uri: "test://a".into(),
        name: "a".into(),
        title: None,
        description: None,
        mime_type: None,
        size: None,
    };
    let resources = ResourceSet::new().fixed(
        resource,
        ResourceContents::text("test://a", "text/plain", "a"),
    );
    let host = Arc::new(MemoryHost::new(
        NodeId::new("n"),
        MemoryHostConfig::default(),
    ));
    Engine::new(
        host,
        Handlers::new().tools(tools).resources(resources),
        EngineConfig::default(),
    )
}

fn meta() -> ModernMeta {
    ModernMeta {
        version: "2026-07-28".into(),
        client_capabilities: json!({}),
        client_info: Value::Null,
        log_level: None,
    }
}

async fn listen(engine: &Engine, id: i64, notifications: Value) -> ModernReply {
    engine
        .handle_modern(
            meta(),
            None,
            request(
                id,
                "subscriptions/listen",
                json!({ "notifications": notifications }),
            ),
        )
        .await
}

async fn open(engine: &Engine, id: i64, notifications: Value) -> ListenStream {
    match listen(engine, id, notifications).await {
        ModernReply::Listen(stream) => stream,
        other => panic!("a listen stream, not {other:?}"),
    }
}

async fn next(stream: &mut ListenStream) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream is open");
    serde_json::from_str(&message).unwrap()
}

#[tokio::test]
async fn the_acknowledgement_comes_first_and_names_only_what_is_honoured() {
    let engine = engine();
    let mut stream = open(
        &engine,
        9,
        json!({
            "toolsListChanged": true,
            "promptsListChanged": true,
            "resourcesListChanged": false,
            "resourceSubscriptions": ["test://a", "test://b"],
        }),
    )
    .await;
    let ack = next(&mut stream).await;
    assert_eq!(
        ack,
        json!({
            "jsonrpc": "2.0",
            "method": "notifications/subscriptions/acknowledged",
            "params": {
                "_meta": { "io.modelcontextprotocol/subscriptionId": 9 },
                // No prompts here: not honoured.
                "notifications": {
                    "toolsListChanged": true,
                    "resourceSubscriptions": ["test://a", "test://b"],
                },
            },
        })
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stream.end()).unwrap(),
        json!({
            "jsonrpc": "2.0",
            "id": 9,
            "result": {
                "resultType": "complete",
                "_meta": { "io.modelcontextprotocol/subscriptionId": 9 },
            },
        })
    );
}

#[tokio::test]
async fn changes_arrive_stamped_and_only_as_asked() {
    let engine = engine();
    let mut tools_only = open(&engine, 1, json!({ "toolsListChanged": true })).await;
    let mut resource_a = open(&engine, 3, json!({ "resourceSubscriptions": ["test://a"] })).await;
    next(&mut tools_only).await;
    next(&mut resource_a).await;

    let notifier = engine.notifier();
    notifier.prompts_list_changed().await.unwrap();
    notifier.resources_list_changed().await.unwrap();
    notifier.resource_updated("test://b").await.unwrap();
    notifier.tools_list_changed().await.unwrap();
    notifier.resource_updated("test://a").await.unwrap();

    assert_eq!(
        next(&mut tools_only).await,
        json!({
            "jsonrpc": "2.0",
            "method": "notifications/tools/list_changed",
            "params": { "_meta": { "io.modelcontextprotocol/subscriptionId": 1 } },
        })
    );
    assert_eq!(
        next(&mut resource_a).await,
        json!({
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": { "_meta": { "io.modelcontextprotocol/subscriptionId": 3 }, "uri": "test://a" },
        })
    );
    // Nothing else was for them.
    for stream in [&mut tools_only, &mut resource_a] {
        assert!(
            tokio::time::timeout(Duration::from_millis(100), stream.next())
                .await
                .is_err(),
            "nothing more"
        );
    }
}

#[tokio::test]
async fn a_listen_without_a_usable_filter_is_refused() {
    let engine = engine();
    let cases = [
        (
            Value::Null,
            "subscriptions/listen needs params.notifications, an object naming what to receive",
        ),
        (
            json!(["toolsListChanged"]),
            "subscriptions/listen needs params.notifications, an object naming what to receive",
        ),
        (
            json!({ "toolsListChanged": "yes" }),
            "notifications.toolsListChanged must be a boolean",
        ),
        (
            json!({ "resourceSubscriptions": "test://a" }),
            "notifications.resourceSubscriptions must list URIs (strings)",
        ),
        (
            json!({ "resourceSubscriptions": [1] }),
            "notifications.resourceSubscriptions must list URIs (strings)",
        ),
    ];
    for (notifications, message) in cases {
        let ModernReply::Json(body) = listen(&engine, 4, notifications.clone()).await else {
            panic!("{notifications}: a JSON refusal");
        };
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({ "jsonrpc": "2.0", "id": 4, "error": { "code": -32602, "message": message } }),
            "{notifications}"
        );
    }
}

#[tokio::test]
async fn a_stream_that_ends_hands_over_what_already_arrived() {
    let engine = engine();
    let mut stream = open(&engine, 5, json!({ "toolsListChanged": true })).await;
    next(&mut stream).await;
    engine.notifier().tools_list_changed().await.unwrap();
    // The node loop hands the broadcast over asynchronously.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let ready = loop {
        let ready = stream.ready();
        if !ready.is_empty() || tokio::time::Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(ready.len(), 1, "{ready:?}");
    assert!(
        ready[0].contains("notifications/tools/list_changed"),
        "{ready:?}"
    );
    assert!(stream.ready().is_empty(), "handed over once");
}
