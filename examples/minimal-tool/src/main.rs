//! A minimal typed tool: the argument struct's JSON Schema becomes the tool's input schema, the
//! arguments are checked against it before the handler runs, and `Json<T>` makes the result
//! structured (with a derived `outputSchema`).
//!
//! Run it with `cargo run -p example-minimal-tool`, then point any MCP client at
//! `http://127.0.0.1:8080/mcp` (settings as for `shoal serve`, e.g. `SHOAL_LISTEN`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use shoal::handler::{Handlers, Json, RequestContext, ToolError, ToolSet, typed_tool};

/// The arguments of `add`.
#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// The first addend.
    a: i64,
    /// The second addend.
    b: i64,
}

/// The structured result of `add`.
#[derive(Serialize, JsonSchema)]
struct Sum {
    /// a + b.
    sum: i64,
}

async fn add(_ctx: RequestContext, AddArgs { a, b }: AddArgs) -> Result<Json<Sum>, ToolError> {
    let sum = a
        .checked_add(b)
        .ok_or_else(|| ToolError::failed("the sum overflows a 64-bit integer"))?;
    Ok(Json(Sum { sum }))
}

fn tools() -> ToolSet {
    ToolSet::new().with(typed_tool("add", "Adds two integers", add))
}

#[tokio::main]
async fn main() -> Result<(), shoal::Error> {
    shoal::run_with(Handlers::new().tools(tools())).await
}

#[cfg(test)]
mod tests {
    use shoal::handler::ToolProvider;

    #[tokio::test]
    async fn schemas_are_derived() {
        let listed = super::tools().list(None).await.unwrap();
        let schema = serde_json::to_value(&listed[0].input_schema).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], serde_json::json!(["a", "b"]));
        assert_eq!(
            schema["properties"]["a"]["description"],
            "The first addend."
        );
        let output = serde_json::to_value(listed[0].output_schema.as_ref().unwrap()).unwrap();
        assert_eq!(output["properties"]["sum"]["type"], "integer");
    }
}
