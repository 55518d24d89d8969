//! Live sets over the memory host: two engines on one host are two replicas.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use super::*;
use crate::engine::{Engine, EngineConfig};
use crate::handler::{Handlers, PromptSet, ResourceSet, ToolSet, typed_tool};
use crate::host::{MemoryHost, MemoryHostConfig, SharedHost};
use crate::ids::NodeId;
use crate::model::{GetPromptResult, Prompt, Resource, ResourceContents, ResourceTemplate};
use crate::testing::EngineClient;

/// Every wait of these tests is bounded by this.
const PATIENCE: Duration = Duration::from_secs(5);

/// No arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

fn tools() -> ToolSet {
    let answer = |text: &'static str| {
        move |_ctx, NoArgs {}| async move { Ok::<_, ToolError>(text.to_owned()) }
    };
    ToolSet::new()
        .with(typed_tool("alpha", "Answers alpha", answer("alpha")))
        .with(typed_tool("beta", "Answers beta", answer("beta")))
}

fn host() -> SharedHost {
    Arc::new(MemoryHost::new(
        NodeId::new("live"),
        MemoryHostConfig::default(),
    ))
}

/// A replica: its own live set (same name, same code) and engine, on the shared `host`.
fn replica(host: &SharedHost) -> (LiveSet<ToolSet>, Engine) {
    let live = LiveSet::tools("ops", tools());
    let handlers = Handlers::new().tools(live.clone());
    let engine = Engine::new(host.clone(), handlers, EngineConfig::default());
    (live, engine)
}

async fn tool_names(client: &EngineClient) -> Vec<String> {
    let listed = client.result("tools/list", json!({})).await;
    listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn next(stream: &mut (impl futures::Stream<Item = Value> + Unpin)) -> Value {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("a message within the patience")
        .expect("the stream is open")
}

#[tokio::test]
async fn a_change_on_one_replica_is_listed_on_another_when_its_notification_arrives() {
    let host = host();
    let (live_a, _engine_a) = replica(&host);
    let (live_b, engine_b) = replica(&host);
    let client_b = EngineClient::connect(engine_b, json!({})).await;
    // B caches the entry first, so that only the broadcast can tell it of the change.
    assert_eq!(tool_names(&client_b).await, ["alpha", "beta"]);
    let mut stream_b = Box::pin(client_b.standalone().await);

    assert!(live_a.hide("alpha").await.unwrap());
    let heard = next(&mut stream_b).await;
    assert_eq!(heard["method"], "notifications/tools/list_changed");
    assert_eq!(tool_names(&client_b).await, ["beta"]);
    let call = client_b
        .response("tools/call", json!({ "name": "alpha", "arguments": {} }))
        .await;
    assert_eq!(call["error"]["code"], -32602, "{call}");
    assert_eq!(
        live_b.hidden().await.unwrap(),
        BTreeSet::from(["alpha".to_owned()])
    );

    // Hiding what is hidden changes nothing and announces nothing.
    assert!(!live_b.hide("alpha").await.unwrap());
    assert!(live_b.show("alpha").await.unwrap());
    let heard = next(&mut stream_b).await;
    assert_eq!(heard["method"], "notifications/tools/list_changed");
    assert_eq!(tool_names(&client_b).await, ["alpha", "beta"]);
    let called = client_b.call_tool("alpha", json!({})).await;
    assert_eq!(called["content"][0]["text"], "alpha", "{called}");
}

#[tokio::test]
async fn concurrent_changes_on_two_replicas_both_count() {
    let host = host();
    let (live_a, _engine_a) = replica(&host);
    let (live_b, _engine_b) = replica(&host);
    let (a, b) = tokio::join!(live_a.hide("alpha"), live_b.hide("beta"));
    assert!(a.unwrap() && b.unwrap());
    let both = BTreeSet::from(["alpha".to_owned(), "beta".to_owned()]);
    assert_eq!(live_a.hidden().await.unwrap(), both);
    assert_eq!(live_b.hidden().await.unwrap(), both);
    assert!(live_a.set_hidden(["beta"]).await.unwrap());
    // B drops its copy when its node loop hears A's broadcast.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while live_b.hidden().await.unwrap() != BTreeSet::from(["beta".to_owned()]) {
        assert!(tokio::time::Instant::now() < deadline, "B never heard");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_lost_broadcast_is_made_up_for_after_the_refresh_interval() {
    let host = host();
    let live = LiveSet::tools("ops", tools()).refresh_after(Duration::from_millis(100));
    let engine = Engine::new(
        host.clone(),
        Handlers::new().tools(live.clone()),
        EngineConfig::default(),
    );
    let client = EngineClient::connect(engine, json!({})).await;
    assert_eq!(tool_names(&client).await, ["alpha", "beta"]);
    // Another replica's change whose broadcast never came.
    let entry = serde_json::to_vec(&json!({ "hidden": ["beta"] })).unwrap();
    host.put(&KvKey::new(LIVE_SETS, "ops"), entry.into(), MAX_TTL)
        .await
        .unwrap();
    assert_eq!(tool_names(&client).await, ["alpha", "beta"], "cached");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(tool_names(&client).await, ["alpha"]);
}

#[tokio::test]
async fn initially_hidden_entries_stay_hidden_until_the_set_changes() {
    let host = host();
    let live = LiveSet::tools("ops", tools()).initially_hidden(["beta"]);
    let engine = Engine::new(
        host.clone(),
        Handlers::new().tools(live.clone()),
        EngineConfig::default(),
    );
    let client = EngineClient::connect(engine, json!({})).await;
    assert_eq!(tool_names(&client).await, ["alpha"]);
    assert!(live.show("beta").await.unwrap());
    assert_eq!(tool_names(&client).await, ["alpha", "beta"]);
}

#[tokio::test]
async fn a_set_no_engine_attached_cannot_change() {
    let live = LiveSet::tools("ops", tools());
    assert_eq!(live.hide("alpha").await, Err(LiveError::Detached));
    assert_eq!(live.hidden().await, Err(LiveError::Detached));
}

#[tokio::test]
async fn a_corrupt_entry_is_an_error_not_a_guess() {
    let host = host();
    let (live, _engine) = replica(&host);
    host.put(&KvKey::new(LIVE_SETS, "ops"), "[1]".into(), MAX_TTL)
        .await
        .unwrap();
    assert!(matches!(
        live.hide("alpha").await,
        Err(LiveError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn hidden_resources_and_templates_are_neither_listed_nor_read() {
    let resources = ResourceSet::new()
        .fixed(
            Resource {
                uri: "test://one".into(),
                name: "one".into(),
                ..Default::default()
            },
            ResourceContents::text("test://one", "text/plain", "1"),
        )
        .template(
            ResourceTemplate {
                uri_template: "test://rows/{id}".into(),
                name: "rows".into(),
                ..Default::default()
            },
            |_ctx, uri, vars| async move {
                Ok(vec![ResourceContents::text(
                    uri,
                    "text/plain",
                    vars["id"].clone(),
                )])
            },
        );
    let live = LiveSet::resources("docs", resources);
    let engine = Engine::new(
        host(),
        Handlers::new().resources(live.clone()),
        EngineConfig::default(),
    );
    let client = EngineClient::connect(engine, json!({})).await;
    let mut stream = Box::pin(client.standalone().await);
    let read = client
        .response("resources/read", json!({ "uri": "test://rows/7" }))
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], "7", "{read}");

    assert!(
        live.set_hidden(["test://one", "test://rows/{id}"])
            .await
            .unwrap()
    );
    let heard = next(&mut stream).await;
    assert_eq!(heard["method"], "notifications/resources/list_changed");
    let listed = client.result("resources/list", json!({})).await;
    assert_eq!(listed["resources"], json!([]), "{listed}");
    let templates = client.result("resources/templates/list", json!({})).await;
    assert_eq!(templates["resourceTemplates"], json!([]), "{templates}");
    for uri in ["test://one", "test://rows/7"] {
        let read = client
            .response("resources/read", json!({ "uri": uri }))
            .await;
        assert!(read.get("error").is_some(), "{uri}: {read}");
    }
}

#[tokio::test]
async fn hidden_prompts_are_neither_listed_nor_got() {
    let prompts = PromptSet::new().with(
        Prompt {
            name: "greet".into(),
            ..Default::default()
        },
        |_ctx, _args| async { Ok(GetPromptResult::default()) },
    );
    let live = LiveSet::prompts("prompts", prompts);
    let engine = Engine::new(
        host(),
        Handlers::new().prompts(live.clone()),
        EngineConfig::default(),
    );
    let client = EngineClient::connect(engine, json!({})).await;
    let mut stream = Box::pin(client.standalone().await);
    assert!(live.hide("greet").await.unwrap());
    let heard = next(&mut stream).await;
    assert_eq!(heard["method"], "notifications/prompts/list_changed");
    let listed = client.result("prompts/list", json!({})).await;
    assert_eq!(listed["prompts"], json!([]), "{listed}");
    let got = client
        .response("prompts/get", json!({ "name": "greet" }))
        .await;
    assert!(got.get("error").is_some(), "{got}");
}
