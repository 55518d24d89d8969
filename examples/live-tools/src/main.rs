//! A live tool set: tools shown and hidden while serving, on every replica at once.
//!
//! The catalog (`shout`, `reverse`) is a [`LiveSet`] over an ordinary [`ToolSet`]: every
//! replica registers the same code, and which tools are visible is one entry in the session
//! host's key-value store (Redis when `SHOAL_SESSION_HOST` names one). The admin tools
//! `disable_tool` and `enable_tool` change that entry; the change raises
//! `notifications/tools/list_changed` on every session's GET stream and every
//! `subscriptions/listen` stream of every replica, and each replica lists the new set by the
//! time its clients hear of it. A hidden tool is not listed and cannot be called.
//!
//! In a real deployment the admin tools would be kept for operators with per-tool scopes
//! (`SHOAL_TOOL_SCOPES=disable_tool=admin,enable_tool=admin`), or the live set changed from
//! code that is not a tool at all: any clone of the [`LiveSet`] can call
//! [`LiveSet::hide`] and [`LiveSet::show`] once the server is built.
//!
//! Run three replicas on one Redis:
//!
//! ```sh
//! redis-server --port 6379 &
//! for port in 8080 8081 8082; do
//!   SHOAL_SESSION_HOST=redis://127.0.0.1:6379 SHOAL_LISTEN=127.0.0.1:$port \
//!   SHOAL_ADMIN_LISTEN=127.0.0.1:$((port + 1000)) cargo run -p example-live-tools &
//! done
//! ```
//!
//! then call `disable_tool {"name": "shout"}` through any of them: clients of the others
//! hear `tools/list_changed` and no longer list `shout`.

use schemars::JsonSchema;
use serde::Deserialize;
use shoal::handler::{Handlers, LiveSet, RequestContext, ToolError, ToolSet, typed_tool};

/// The name of the catalog's shared entry: the same on every replica.
const CATALOG: &str = "example-live-tools.catalog";

/// Text to transform.
#[derive(Deserialize, JsonSchema)]
struct Text {
    /// The text.
    text: String,
}

/// A tool of the catalog.
#[derive(Deserialize, JsonSchema)]
struct ToolName {
    /// The tool's name (`shout` or `reverse`).
    name: String,
}

/// The tools that come and go.
fn catalog() -> ToolSet {
    ToolSet::new()
        .with(typed_tool(
            "shout",
            "Upper-cases its text",
            |_ctx: RequestContext, Text { text }| async move { Ok::<_, ToolError>(text.to_uppercase()) },
        ))
        .with(typed_tool(
            "reverse",
            "Reverses its text",
            |_ctx: RequestContext, Text { text }| async move {
                Ok::<_, ToolError>(text.chars().rev().collect::<String>())
            },
        ))
}

/// `disable_tool` and `enable_tool`, which change `catalog` on every replica.
fn admin(catalog: LiveSet<ToolSet>) -> ToolSet {
    let toggle = move |show: bool| {
        let catalog = catalog.clone();
        move |_ctx: RequestContext, ToolName { name }| {
            let catalog = catalog.clone();
            async move {
                if catalog.provider().get(&name).is_none() {
                    return Err(ToolError::failed(format!(
                        "no tool {name:?} in the catalog"
                    )));
                }
                let changed = if show {
                    catalog.show(&name).await
                } else {
                    catalog.hide(&name).await
                }
                .map_err(|error| ToolError::Internal(error.to_string()))?;
                let state = if show { "enabled" } else { "disabled" };
                Ok::<_, ToolError>(if changed {
                    format!("{name} {state}")
                } else {
                    format!("{name} was already {state}")
                })
            }
        }
    };
    ToolSet::new()
        .with(typed_tool(
            "disable_tool",
            "Hides a catalog tool from every client of every replica",
            toggle(false),
        ))
        .with(typed_tool(
            "enable_tool",
            "Shows a catalog tool to every client of every replica again",
            toggle(true),
        ))
}

/// The catalog (live) and the admin tools (fixed).
fn handlers() -> Handlers {
    let catalog = LiveSet::tools(CATALOG, catalog());
    Handlers::new().tools(catalog.clone()).tools(admin(catalog))
}

#[tokio::main]
async fn main() -> Result<(), shoal::Error> {
    shoal::run_with(handlers()).await
}
