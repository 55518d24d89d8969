//! A dynamic tool provider: the tools come from a table that changes at run time (a stand-in
//! for a database). Each row is a canned reply tool; the `define_reply` tool adds a row and
//! tells every session that the list changed.
//!
//! Run it with `cargo run -p example-dynamic-provider`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use shoal::Principal;
use shoal::handler::{HandlerError, Handlers, RequestContext, ToolError, ToolProvider};
use shoal::model::{CallToolResult, JsonObject, Tool};

/// Canned replies by tool name, shared by every session.
#[derive(Clone, Default)]
struct Replies {
    rows: Arc<RwLock<BTreeMap<String, String>>>,
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

#[async_trait::async_trait]
impl ToolProvider for Replies {
    async fn list(&self, _principal: Option<&Principal>) -> Result<Vec<Tool>, HandlerError> {
        let rows = self
            .rows
            .read()
            .map_err(|_| HandlerError::Internal("poisoned".into()))?;
        let mut tools = vec![Tool {
            name: "define_reply".into(),
            description: Some("Adds a tool that always answers with the given reply".into()),
            input_schema: object(json!({
                "type": "object",
                "properties": {"name": {"type": "string"}, "reply": {"type": "string"}},
                "required": ["name", "reply"]
            })),
            ..Default::default()
        }];
        tools.extend(rows.keys().map(|name| Tool {
            name: name.clone(),
            description: Some(format!("Replies with a canned answer ({name})")),
            input_schema: object(json!({"type": "object", "properties": {}})),
            ..Default::default()
        }));
        Ok(tools)
    }

    async fn call(
        &self,
        ctx: RequestContext,
        name: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        if name == "define_reply" {
            let (Some(Value::String(new)), Some(Value::String(reply))) =
                (arguments.get("name"), arguments.get("reply"))
            else {
                return Err(ToolError::InvalidArguments(
                    "name and reply must be strings".into(),
                ));
            };
            self.rows
                .write()
                .map_err(|_| ToolError::Internal("poisoned".into()))?
                .insert(new.clone(), reply.clone());
            ctx.notifier()
                .tools_list_changed()
                .await
                .map_err(|e| ToolError::Internal(e.to_string()))?;
            return Ok(CallToolResult::text(format!("defined {new}")));
        }
        let rows = self
            .rows
            .read()
            .map_err(|_| ToolError::Internal("poisoned".into()))?;
        rows.get(name)
            .map(CallToolResult::text)
            .ok_or(ToolError::NotFound)
    }
}

#[tokio::main]
async fn main() -> Result<(), shoal::Error> {
    shoal::run_with(Handlers::new().tools(Replies::default())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_what_the_table_holds() {
        let replies = Replies::default();
        assert_eq!(replies.list(None).await.unwrap().len(), 1);
        replies
            .rows
            .write()
            .unwrap()
            .insert("greet".into(), "hello".into());
        let names: Vec<String> = replies
            .list(None)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, vec!["define_reply", "greet"]);
    }
}
