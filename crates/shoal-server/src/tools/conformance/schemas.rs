//! The hand-written JSON Schemas of the conformance fixtures: the elicitation forms and the
//! 2020-12 input schema of `json_schema_2020_12_tool`. The suite inspects each of them keyword
//! by keyword, so they are written out here rather than derived.

use serde_json::{Value, json};
use shoal_core::model::JsonObject;

/// The form `test_elicitation` shows.
pub(super) fn user_info() -> Value {
    json!({
        "type": "object",
        "properties": {
            "username": { "type": "string", "description": "User's response" },
            "email": { "type": "string", "description": "User's email address" },
        },
        "required": ["username", "email"],
    })
}

/// SEP-1034: a default for every primitive type.
pub(super) fn sep1034_defaults() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User age", "default": 30 },
            "score": { "type": "number", "description": "User score", "default": 95.5 },
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": {
                "type": "boolean",
                "description": "Verification status",
                "default": true,
            },
        },
        "required": [],
    })
}

/// SEP-1330: the five kinds of enum (untitled, titled and legacy single-select; untitled and
/// titled multi-select).
pub(super) fn sep1330_enums() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"],
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": [
                    { "const": "value1", "title": "First Option" },
                    { "const": "value2", "title": "Second Option" },
                    { "const": "value3", "title": "Third Option" },
                ],
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" },
                    ],
                },
            },
        },
        "required": [],
    })
}

/// SEP-1613 and SEP-2106: the input schema of `json_schema_2020_12_tool`, to be served as
/// written (`$schema`, `$defs` with an `$anchor`, composition, conditionals,
/// `additionalProperties`).
pub(super) fn json_schema_2020_12() -> JsonObject {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {
                    "street": { "type": "string" },
                    "city": { "type": "string" },
                },
            },
        },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" },
        },
        "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
        "if": {
            "properties": { "contactMethod": { "const": "phone" } },
            "required": ["contactMethod"],
        },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false,
    });
    schema.as_object().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Type and default of a property.
    fn typed_default(property: &Value) -> (&Value, &Value) {
        (&property["type"], &property["default"])
    }

    /// Whether `options` is a non-empty list of `{const, title}` strings.
    fn titled(options: &Value) -> bool {
        let options = options.as_array().unwrap();
        !options.is_empty()
            && options
                .iter()
                .all(|o| o["const"].is_string() && o["title"].is_string())
    }

    #[test]
    fn forms_are_flat_objects() {
        // The wire schema wants `type: object`, `properties` and a string array `required`.
        for schema in [user_info(), sep1034_defaults(), sep1330_enums()] {
            assert_eq!(schema["type"], "object");
            assert!(
                schema["properties"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|p| p["type"].is_string())
            );
            assert!(
                schema["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(Value::is_string)
            );
        }
        assert_eq!(user_info()["required"], json!(["username", "email"]));
    }

    #[test]
    fn sep1034_has_a_default_of_the_right_type_everywhere() {
        let properties = &sep1034_defaults()["properties"];
        assert_eq!(
            typed_default(&properties["name"]),
            (&json!("string"), &json!("John Doe"))
        );
        assert_eq!(
            typed_default(&properties["age"]),
            (&json!("integer"), &json!(30))
        );
        assert_eq!(
            typed_default(&properties["score"]),
            (&json!("number"), &json!(95.5))
        );
        assert_eq!(
            typed_default(&properties["verified"]),
            (&json!("boolean"), &json!(true))
        );
        let status = &properties["status"];
        assert_eq!(typed_default(status), (&json!("string"), &json!("active")));
        assert!(
            status["enum"]
                .as_array()
                .unwrap()
                .contains(&status["default"])
        );
    }

    #[test]
    fn sep1330_has_the_five_kinds_of_enum() {
        let properties = &sep1330_enums()["properties"];
        let untitled_single = &properties["untitledSingle"];
        assert!(untitled_single["enum"].is_array());
        assert!(
            untitled_single.get("oneOf").is_none() && untitled_single.get("enumNames").is_none()
        );
        let titled_single = &properties["titledSingle"];
        assert!(titled(&titled_single["oneOf"]) && titled_single.get("enum").is_none());
        let legacy = &properties["legacyEnum"];
        let (values, names) = (
            legacy["enum"].as_array().unwrap(),
            legacy["enumNames"].as_array().unwrap(),
        );
        assert_eq!(values.len(), names.len());
        let untitled_multi = &properties["untitledMulti"];
        assert_eq!(untitled_multi["type"], "array");
        assert_eq!(untitled_multi["items"]["type"], "string");
        assert!(untitled_multi["items"]["enum"].is_array());
        assert!(untitled_multi["items"].get("anyOf").is_none());
        let titled_multi = &properties["titledMulti"];
        assert_eq!(titled_multi["type"], "array");
        assert!(
            titled(&titled_multi["items"]["anyOf"]) && titled_multi["items"].get("enum").is_none()
        );
    }

    #[test]
    fn json_schema_2020_12_is_the_suites_schema() {
        // Copied from the suite's `json-schema-2020-12` scenario.
        let expected: Value = serde_json::from_str(
            r##"{
              "$schema": "https://json-schema.org/draft/2020-12/schema",
              "type": "object",
              "$defs": {
                "address": {
                  "$anchor": "addressDef",
                  "type": "object",
                  "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
                }
              },
              "properties": {
                "name": { "type": "string" },
                "address": { "$ref": "#/$defs/address" },
                "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                "phone": { "type": "string" },
                "email": { "type": "string" }
              },
              "allOf": [ { "anyOf": [ { "required": ["phone"] }, { "required": ["email"] } ] } ],
              "if": {
                "properties": { "contactMethod": { "const": "phone" } },
                "required": ["contactMethod"]
              },
              "then": { "required": ["phone"] },
              "else": { "required": ["email"] },
              "additionalProperties": false
            }"##,
        )
        .unwrap();
        assert_eq!(Value::Object(json_schema_2020_12()), expected);
    }
}
