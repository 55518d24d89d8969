//! A dynamic tool provider backed by a real database: the tools are the rows of a Redis hash,
//! read on every list and call, so that a row written by anyone (this server, another replica,
//! a script with `redis-cli`) is a tool at once. Each row is a canned reply tool; the
//! `define_reply` tool writes a row and tells every session that the list changed.
//!
//! The database is the one `EXAMPLE_DATABASE_URL` names (default `redis://127.0.0.1:6379`);
//! it need not be the Redis that holds Shoal's sessions (`SHOAL_SESSION_HOST`). The provider
//! reads the table on every list: a database that is slow to list would cache the rows and drop
//! the cache on `tools/list_changed` instead, as `shoal::handler::LiveSet` does.
//!
//! Run it with
//!
//! ```sh
//! redis-server --port 6379 &
//! cargo run -p example-dynamic-provider
//! redis-cli HSET example-dynamic-provider:replies greet hello   # a tool named greet
//! ```

use std::collections::BTreeMap;

use fred::prelude::{Builder, Client, ClientLike, Config, HashesInterface};
use serde_json::{Value, json};
use shoal::Principal;
use shoal::handler::{HandlerError, Handlers, RequestContext, ToolError, ToolProvider};
use shoal::model::{CallToolResult, JsonObject, Tool};

/// The variable naming the database.
const ENV_DATABASE_URL: &str = "EXAMPLE_DATABASE_URL";
/// The database when the variable is not set.
const DEFAULT_DATABASE_URL: &str = "redis://127.0.0.1:6379";
/// The hash whose fields are tool names and whose values are their replies.
const REPLIES: &str = "example-dynamic-provider:replies";
/// The tool that adds a row.
const DEFINE_REPLY: &str = "define_reply";

/// Canned replies by tool name, in a Redis hash every replica reads.
struct Replies {
    database: Client,
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

fn define_reply() -> Tool {
    Tool {
        name: DEFINE_REPLY.into(),
        description: Some("Adds a tool that always answers with the given reply".into()),
        input_schema: object(json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "reply": {"type": "string"}},
            "required": ["name", "reply"]
        })),
        ..Default::default()
    }
}

impl Replies {
    /// Every row, in name order.
    async fn rows(&self) -> Result<BTreeMap<String, String>, fred::error::Error> {
        self.database.hgetall(REPLIES).await
    }
}

#[async_trait::async_trait]
impl ToolProvider for Replies {
    async fn list(&self, _principal: Option<&Principal>) -> Result<Vec<Tool>, HandlerError> {
        let rows = self
            .rows()
            .await
            .map_err(|error| HandlerError::Internal(error.to_string()))?;
        let mut tools = vec![define_reply()];
        tools.extend(
            rows.keys()
                .filter(|name| name.as_str() != DEFINE_REPLY)
                .map(|name| Tool {
                    name: name.clone(),
                    description: Some(format!("Replies with a canned answer ({name})")),
                    input_schema: object(json!({"type": "object", "properties": {}})),
                    ..Default::default()
                }),
        );
        Ok(tools)
    }

    async fn call(
        &self,
        ctx: RequestContext,
        name: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        if name == DEFINE_REPLY {
            let (Some(Value::String(new)), Some(Value::String(reply))) =
                (arguments.get("name"), arguments.get("reply"))
            else {
                return Err(ToolError::InvalidArguments(
                    "name and reply must be strings".into(),
                ));
            };
            if new == DEFINE_REPLY {
                return Err(ToolError::failed(format!("{DEFINE_REPLY} is taken")));
            }
            let _: i64 = self
                .database
                .hset(REPLIES, (new.as_str(), reply.as_str()))
                .await
                .map_err(|error| ToolError::Internal(error.to_string()))?;
            ctx.notifier()
                .tools_list_changed()
                .await
                .map_err(|error| ToolError::Internal(error.to_string()))?;
            return Ok(CallToolResult::text(format!("defined {new}")));
        }
        let reply: Option<String> = self
            .database
            .hget(REPLIES, name)
            .await
            .map_err(|error| ToolError::Internal(error.to_string()))?;
        reply.map(CallToolResult::text).ok_or(ToolError::NotFound)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var(ENV_DATABASE_URL).unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
    let database = Builder::from_config(Config::from_url(&url)?).build()?;
    database.init().await?;
    shoal::run_with(Handlers::new().tools(Replies { database })).await?;
    Ok(())
}
