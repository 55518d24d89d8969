//! The conformance resources: `test://static-text`, `test://static-binary`,
//! `test://watched-resource` (the one the suite subscribes to), and the template
//! `test://template/{id}/data`.

use std::collections::BTreeMap;

use serde::Serialize;
use shoal_core::handler::{HandlerError, ResourceSet};
use shoal_core::model::{Resource, ResourceContents, ResourceTemplate};

use crate::tools::assets::PNG_1X1;

/// The URI template of the templated resource.
pub(super) const TEMPLATE_URI: &str = "test://template/{id}/data";

/// The resources and the template.
pub(super) fn resource_set() -> ResourceSet {
    ResourceSet::new()
        .fixed(
            resource(
                "test://static-text",
                "static-text",
                "Static Text Resource",
                "A static text resource for testing",
                "text/plain",
            ),
            ResourceContents::text(
                "test://static-text",
                "text/plain",
                "This is the content of the static text resource.",
            ),
        )
        .fixed(
            resource(
                "test://static-binary",
                "static-binary",
                "Static Binary Resource",
                "A static binary resource (image) for testing",
                "image/png",
            ),
            ResourceContents::blob("test://static-binary", "image/png", PNG_1X1),
        )
        .fixed(
            resource(
                "test://watched-resource",
                "watched-resource",
                "Watched Resource",
                "A resource clients can subscribe to",
                "text/plain",
            ),
            ResourceContents::text(
                "test://watched-resource",
                "text/plain",
                "Watched resource content",
            ),
        )
        .template(
            ResourceTemplate {
                uri_template: TEMPLATE_URI.into(),
                name: "template".into(),
                title: Some("Resource Template".into()),
                description: Some("A resource template with parameter substitution".into()),
                mime_type: Some("application/json".into()),
            },
            |_ctx, uri, variables| async move { template_contents(&uri, &variables) },
        )
}

fn resource(uri: &str, name: &str, title: &str, description: &str, mime_type: &str) -> Resource {
    Resource {
        uri: uri.into(),
        name: name.into(),
        title: Some(title.into()),
        description: Some(description.into()),
        mime_type: Some(mime_type.into()),
        size: None,
    }
}

/// What `test://template/{id}/data` holds, in the reference server's key order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateData<'a> {
    id: &'a str,
    template_test: bool,
    data: String,
}

/// The contents of `uri`, a match of the template with these `variables`.
fn template_contents(
    uri: &str,
    variables: &BTreeMap<String, String>,
) -> Result<Vec<ResourceContents>, HandlerError> {
    let id = variables.get("id").ok_or(HandlerError::NotFound)?;
    let data = TemplateData {
        id,
        template_test: true,
        data: format!("Data for ID: {id}"),
    };
    let text = serde_json::to_string(&data).map_err(|e| HandlerError::Internal(e.to_string()))?;
    Ok(vec![ResourceContents::text(uri, "application/json", text)])
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;
    use shoal_core::handler::{ResourceProvider, match_template};
    use shoal_core::testing::EngineClient;

    use super::*;
    use crate::tools::conformance::handlers;

    #[tokio::test]
    async fn lists_named_described_and_typed_resources() {
        let resources = resource_set().list(None).await.unwrap();
        let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                "test://static-text",
                "test://static-binary",
                "test://watched-resource"
            ]
        );
        for resource in &resources {
            assert!(!resource.name.is_empty(), "{}", resource.uri);
            assert!(
                resource.description.is_some() && resource.mime_type.is_some(),
                "{}",
                resource.uri
            );
        }
        let templates = resource_set().templates(None).await.unwrap();
        assert_eq!(templates.len(), 1);
        assert_eq!(templates[0].uri_template, TEMPLATE_URI);
        assert!(templates[0].description.is_some() && templates[0].mime_type.is_some());
    }

    #[tokio::test]
    async fn reads_static_resources() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let text = client
            .result("resources/read", json!({ "uri": "test://static-text" }))
            .await;
        let expected = json!({ "contents": [{
            "uri": "test://static-text",
            "mimeType": "text/plain",
            "text": "This is the content of the static text resource.",
        }] });
        assert_eq!(text, expected);

        let binary = client
            .result("resources/read", json!({ "uri": "test://static-binary" }))
            .await;
        let contents = &binary["contents"][0];
        assert_eq!(contents["uri"], "test://static-binary");
        assert_eq!(contents["mimeType"], "image/png");
        STANDARD.decode(contents["blob"].as_str().unwrap()).unwrap();

        let watched = client
            .result(
                "resources/read",
                json!({ "uri": "test://watched-resource" }),
            )
            .await;
        assert_eq!(watched["contents"][0]["text"], "Watched resource content");

        let missing = client
            .response("resources/read", json!({ "uri": "test://nothing" }))
            .await;
        assert_eq!(missing["error"]["code"], -32002);
    }

    #[test]
    fn template_contents_substitute_the_id() {
        let uri = "test://template/123/data";
        let variables = match_template(TEMPLATE_URI, uri).unwrap();
        let expected = ResourceContents::text(
            uri,
            "application/json",
            r#"{"id":"123","templateTest":true,"data":"Data for ID: 123"}"#,
        );
        assert_eq!(template_contents(uri, &variables).unwrap(), [expected]);
    }

    #[tokio::test]
    async fn reads_template_matches() {
        let client = EngineClient::serving(handlers(), json!({})).await;
        let read = client
            .result(
                "resources/read",
                json!({ "uri": "test://template/abc/data" }),
            )
            .await;
        let contents = &read["contents"][0];
        assert_eq!(contents["uri"], "test://template/abc/data");
        assert_eq!(contents["mimeType"], "application/json");
        assert_eq!(
            contents["text"],
            r#"{"id":"abc","templateTest":true,"data":"Data for ID: abc"}"#
        );
    }
}
