//! The tool sets built into the `shoal` binary, chosen by name.
//!
//! - [`demo()`]: `echo`, `count`, `ask_user` and `ask_model`, for trying Shoal out, for scripts
//!   and for load tests.
//! - [`conformance()`]: the tools, resources, prompts and completions the official MCP
//!   conformance suite calls.
//!
//! Each set is a [`Handlers`] value, ready for the engine; sets can be combined with
//! [`Handlers::merge`].

mod assets;
mod conformance;
mod demo;

use shoal_core::handler::Handlers;

/// The names [`by_name`] knows, in the order to show them.
pub const NAMES: [&str; 2] = ["demo", "conformance"];

/// The demo tools: `echo`, `count`, `ask_user`, `ask_model`, `announce`.
pub fn demo() -> Handlers {
    demo::handlers()
}

/// The fixtures of the MCP conformance suite: fourteen `test_*` tools and
/// `json_schema_2020_12_tool`, three resources and a template under `test://`, four prompts,
/// and completion of `test_prompt_with_arguments`.
pub fn conformance() -> Handlers {
    conformance::handlers()
}

/// The tool set called `name` (one of [`NAMES`]), or `None`.
pub fn by_name(name: &str) -> Option<Handlers> {
    match name {
        "demo" => Some(demo()),
        "conformance" => Some(conformance()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shoal_core::model::CallToolResult;
    use shoal_core::testing::EngineClient;

    use super::*;

    /// The text of a result that must be exactly one text block.
    pub(super) fn only_text(result: &CallToolResult) -> &str {
        match result.content.as_slice() {
            [content] => content
                .as_text()
                .unwrap_or_else(|| panic!("not text: {content:?}")),
            other => panic!("expected one content block, got {other:?}"),
        }
    }

    #[test]
    fn every_name_has_a_set() {
        for name in NAMES {
            assert!(by_name(name).is_some(), "{name}");
        }
        assert!(by_name("Demo").is_none());
        assert!(by_name("").is_none());
    }

    #[tokio::test]
    async fn sets_are_the_ones_their_names_say() {
        let demo = EngineClient::serving(by_name("demo").unwrap(), json!({})).await;
        let tools = demo.result("tools/list", json!({})).await;
        assert_eq!(tools["tools"][0]["name"], "echo");
        let conformance = EngineClient::serving(by_name("conformance").unwrap(), json!({})).await;
        let tools = conformance.result("tools/list", json!({})).await;
        assert_eq!(tools["tools"][0]["name"], "test_simple_text");
    }
}
