//! Multi round-trip requests over the memory host: a handler written once asks in rounds, its
//! state survives a change of replica, and every bad state or answer is refused before the
//! handler runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::{Engine, EngineConfig, ModernReply};
use crate::era::ModernMeta;
use crate::handler::{Handlers, Inputs, RequestContext, ToolError, ToolSet, typed_tool};
use crate::host::{MemoryHost, MemoryHostConfig, SharedHost};
use crate::ids::NodeId;
use crate::model::ElicitRequest;
use crate::request_state::KeyRing;
use crate::session::Principal;
use crate::testing::request;

const RING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Deserialize, JsonSchema)]
struct Greeting {
    #[serde(default)]
    punctuation: String,
}

fn question(text: &str, field: &str) -> ElicitRequest {
    ElicitRequest {
        message: text.into(),
        requested_schema: json!({
            "type": "object",
            "properties": { field: { "type": "string" } },
            "required": [field],
        }),
    }
}

/// `greet` asks one unnamed question; `survey` asks two named ones in two rounds. Each counts
/// its runs, so a test can tell a refusal ran nothing.
fn handlers(runs: Arc<AtomicUsize>) -> Handlers {
    let greet_runs = runs.clone();
    let tools = ToolSet::new()
        .with(typed_tool(
            "greet",
            "Asks a name",
            move |ctx: RequestContext, Greeting { punctuation }| {
                greet_runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    let answer = ctx
                        .elicit(question("Name?", "name"))
                        .await
                        .map_err(|e| ToolError::failed(e.to_string()))?;
                    let name = answer.content.unwrap_or_default()["name"].clone();
                    Ok::<_, ToolError>(format!(
                        "Hello, {}{punctuation}",
                        name.as_str().unwrap_or("?")
                    ))
                }
            },
        ))
        .with(typed_tool(
            "survey",
            "Asks a name, then a colour",
            move |ctx: RequestContext, Greeting { .. }| {
                runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    let failed = |e: crate::handler::PeerError| ToolError::failed(e.to_string());
                    let name = ctx
                        .ask(Inputs::new().elicit("step1", question("Name?", "name")))
                        .await
                        .map_err(failed)?;
                    let colour = ctx
                        .ask(Inputs::new().elicit("step2", question("Colour?", "color")))
                        .await
                        .map_err(failed)?;
                    let field = |answers: &crate::handler::Answers, key: &str, field: &str| {
                        answers
                            .elicitation(key)
                            .and_then(|a| a.content.clone())
                            .unwrap_or_default()[field]
                            .clone()
                    };
                    Ok::<_, ToolError>(format!(
                        "{} likes {} (round {})",
                        field(&name, "step1", "name"),
                        field(&colour, "step2", "color"),
                        ctx.input_round().unwrap_or(0)
                    ))
                }
            },
        ));
    Handlers::new().tools(tools)
}

fn engine_on(host: SharedHost, ring: KeyRing, ttl: Duration, runs: Arc<AtomicUsize>) -> Engine {
    let config = EngineConfig {
        request_state_keys: ring,
        request_state_ttl: ttl,
        ..EngineConfig::default()
    };
    Engine::new(host, handlers(runs), config)
}

fn memory_host(node: &str) -> SharedHost {
    Arc::new(MemoryHost::new(
        NodeId::new(node),
        MemoryHostConfig::default(),
    ))
}

fn meta() -> ModernMeta {
    ModernMeta {
        version: "2026-07-28".into(),
        client_capabilities: json!({ "elicitation": {} }),
        client_info: Value::Null,
        log_level: None,
    }
}

/// One stateless-era `tools/call`, its JSON-RPC response.
async fn call(engine: &Engine, principal: Option<&str>, params: Value) -> Value {
    let ModernReply::Json(body) = engine
        .handle_modern(
            meta(),
            principal.map(Principal::new),
            request(7, "tools/call", params),
        )
        .await
    else {
        panic!("a plain JSON reply");
    };
    serde_json::from_str(&body).unwrap()
}

fn accept(field: &str, value: &str) -> Value {
    json!({ "action": "accept", "content": { field: value } })
}

/// The first round of `greet`: its `input_required` result.
async fn first_round(engine: &Engine, principal: Option<&str>) -> Value {
    let body = call(
        engine,
        principal,
        json!({ "name": "greet", "arguments": {} }),
    )
    .await;
    body["result"].clone()
}

#[tokio::test]
async fn a_handler_that_elicits_answers_input_required_then_completes_with_the_answer() {
    let runs = Arc::new(AtomicUsize::new(0));
    let engine = engine_on(
        memory_host("a"),
        KeyRing::generate(),
        Duration::from_secs(60),
        runs.clone(),
    );

    let result = first_round(&engine, None).await;
    assert_eq!(result["resultType"], "input_required", "{result}");
    assert_eq!(
        result["inputRequests"],
        json!({ "elicitation-1": { "method": "elicitation/create", "params": {
            "message": "Name?",
            "requestedSchema": { "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] },
        } } })
    );
    assert!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"].is_object(),
        "{result}"
    );
    assert!(
        result.get("content").is_none(),
        "the handler's failure is not shown: {result}"
    );
    let state = result["requestState"].as_str().unwrap();

    let body = call(
        &engine,
        None,
        json!({
            "name": "greet", "arguments": {},
            "inputResponses": { "elicitation-1": accept("name", "Alice"), "extra": 1 },
            "requestState": state,
        }),
    )
    .await;
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "Hello, Alice");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn answers_of_earlier_rounds_travel_in_the_state_to_another_replica() {
    let runs = Arc::new(AtomicUsize::new(0));
    // Two replicas: one host (as Redis would be), one key ring.
    let host = memory_host("shared");
    let ring = KeyRing::parse(RING).unwrap();
    let a = engine_on(
        host.clone(),
        ring.clone(),
        Duration::from_secs(60),
        runs.clone(),
    );
    let b = engine_on(host, ring, Duration::from_secs(60), runs.clone());
    let survey = |responses: Value, state: Option<&Value>| {
        let mut params = json!({ "name": "survey", "arguments": {}, "inputResponses": responses });
        if let Some(state) = state {
            params["requestState"] = state.clone();
        }
        params
    };

    let one = call(&a, Some("alice"), survey(json!({}), None)).await["result"].clone();
    assert_eq!(
        one["inputRequests"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["step1"]
    );
    let two = call(
        &b,
        Some("alice"),
        survey(
            json!({ "step1": accept("name", "Alice") }),
            Some(&one["requestState"]),
        ),
    )
    .await["result"]
        .clone();
    assert_eq!(two["resultType"], "input_required", "{two}");
    assert_eq!(
        two["inputRequests"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["step2"]
    );
    assert_ne!(two["requestState"], one["requestState"]);
    // Round three brings only step2's answer: step1's comes out of the state.
    let three = call(
        &a,
        Some("alice"),
        survey(
            json!({ "step2": accept("color", "blue") }),
            Some(&two["requestState"]),
        ),
    )
    .await;
    assert_eq!(
        three["result"]["content"][0]["text"], "\"Alice\" likes \"blue\" (round 3)",
        "{three}"
    );

    // Each state is good for one retry, on any replica.
    let replay = call(
        &b,
        Some("alice"),
        survey(
            json!({ "step2": accept("color", "red") }),
            Some(&two["requestState"]),
        ),
    )
    .await;
    assert_refused(
        &replay,
        "spent",
        "requestState was already used; each one is good for one retry",
    );
}

fn assert_refused(body: &Value, reason: &str, message: &str) {
    assert_eq!(body["id"], 7, "{body}");
    assert!(body.get("result").is_none(), "{body}");
    assert_eq!(
        body["error"]["code"],
        crate::jsonrpc::INVALID_PARAMS,
        "{body}"
    );
    assert_eq!(body["error"]["message"], message, "{body}");
    assert_eq!(body["error"]["data"], json!({ "reason": reason }), "{body}");
}

#[tokio::test]
async fn forged_foreign_expired_rebound_and_malformed_states_are_refused_and_run_nothing() {
    let runs = Arc::new(AtomicUsize::new(0));
    let host = memory_host("a");
    let ring = KeyRing::parse(RING).unwrap();
    let engine = engine_on(
        host.clone(),
        ring.clone(),
        Duration::from_secs(60),
        runs.clone(),
    );
    let state = first_round(&engine, Some("alice")).await["requestState"]
        .as_str()
        .unwrap()
        .to_owned();
    let retry = |state: Value, arguments: Value| {
        json!({
            "name": "greet", "arguments": arguments,
            "inputResponses": { "elicitation-1": accept("name", "Mallory") },
            "requestState": state,
        })
    };
    let (key_id, blob) = state.split_once('.').unwrap();
    let mut flipped = blob.as_bytes().to_vec();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{key_id}.{}", String::from_utf8(flipped).unwrap());
    let other_ring = engine_on(
        host.clone(),
        KeyRing::generate(),
        Duration::from_secs(60),
        runs.clone(),
    );
    let cases = [
        (
            retry(json!(format!("{state}-TAMPERED")), json!({})),
            Some("alice"),
            "malformed",
            "requestState is malformed",
        ),
        (
            retry(json!(flipped), json!({})),
            Some("alice"),
            "forged",
            "requestState failed its integrity check",
        ),
        (
            retry(json!(42), json!({})),
            Some("alice"),
            "malformed",
            "requestState must be a string",
        ),
        (
            retry(json!(state), json!({ "punctuation": "!" })),
            Some("alice"),
            "other-request",
            "requestState was issued for another request (method or params differ)",
        ),
        (
            retry(json!(state), json!({})),
            Some("bob"),
            "other-principal",
            "requestState was issued to another principal",
        ),
        (
            retry(json!(state), json!({})),
            None,
            "other-principal",
            "requestState was issued to another principal",
        ),
        (
            json!({ "name": "greet", "arguments": {}, "inputResponses": null }),
            None,
            "malformed-input-responses",
            "inputResponses must be an object mapping each key of inputRequests to its answer",
        ),
    ];
    let before = runs.load(Ordering::SeqCst);
    for (params, principal, reason, message) in cases {
        let body = call(&engine, principal, params).await;
        assert_refused(&body, reason, message);
    }
    let body = call(&other_ring, Some("alice"), retry(json!(state), json!({}))).await;
    assert_refused(
        &body,
        "unknown-key",
        "requestState was sealed under a key this server does not hold",
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        before,
        "no refused retry ran the handler"
    );

    // None of the refusals spent the state: its rightful retry still completes.
    let body = call(&engine, Some("alice"), retry(json!(state), json!({}))).await;
    assert_eq!(
        body["result"]["content"][0]["text"], "Hello, Mallory",
        "{body}"
    );

    // An expired state is refused too.
    let brief = engine_on(host, ring, Duration::ZERO, runs.clone());
    let state = first_round(&brief, Some("alice")).await["requestState"].clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let body = call(&brief, Some("alice"), retry(state, json!({}))).await;
    assert_refused(
        &body,
        "expired",
        "requestState has expired; send the request again without it",
    );
}

#[tokio::test]
async fn a_missing_answer_asks_again_and_a_malformed_one_is_an_invalid_params_error() {
    let runs = Arc::new(AtomicUsize::new(0));
    let engine = engine_on(
        memory_host("a"),
        KeyRing::generate(),
        Duration::from_secs(60),
        runs,
    );
    let body = call(
        &engine,
        None,
        json!({ "name": "greet", "arguments": {}, "inputResponses": { "wrong_key": accept("name", "x") } }),
    )
    .await;
    assert_eq!(body["result"]["resultType"], "input_required", "{body}");
    assert!(
        body["result"]["inputRequests"]["elicitation-1"].is_object(),
        "{body}"
    );

    let body = call(
        &engine,
        None,
        json!({ "name": "greet", "arguments": {}, "inputResponses": { "elicitation-1": 12345 } }),
    )
    .await;
    assert_eq!(
        body["error"]["code"],
        crate::jsonrpc::INVALID_PARAMS,
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("inputResponses.elicitation-1 must be the ElicitResult answering elicitation/create: invalid type: integer `12345`"),
        "{body}"
    );
    assert_eq!(
        body["error"]["data"],
        json!({ "reason": "malformed-input-response" })
    );
}
