//! The JSON schema of Foxbox.toml, generated from the raw spec types (their doc comments are
//! the descriptions editors show). `schemas/foxbox.schema.json` is this, committed; a test keeps
//! it fresh (`foxbox schema > schemas/foxbox.schema.json` updates it).

use schemars::generate::SchemaSettings;
use schemars::Schema;

use super::raw::RawSpec;

/// Where the committed schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "schemas/foxbox.schema.json";

/// The schema as a JSON value.
pub fn schema() -> serde_json::Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.transforms.push(Box::new(drop_null));
    settings
        .into_generator()
        .into_root_schema_for::<RawSpec>()
        .to_value()
}

/// The schema as pretty JSON with a trailing newline, exactly as committed.
pub fn schema_json() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// TOML has no null: `Option` fields are simply optional keys, so `null` leaves the schema.
fn drop_null(schema: &mut Schema) {
    if let Some(obj) = schema.as_object_mut() {
        if let Some(serde_json::Value::Array(types)) = obj.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types[0].clone();
                obj.insert("type".into(), only);
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(serde_json::Value::Array(alts)) = obj.get_mut(key) {
                alts.retain(|a| a.get("type").is_none_or(|t| t != "null"));
                if alts.len() == 1 {
                    if let Some(serde_json::Value::Object(only)) = alts.pop() {
                        obj.remove(key);
                        for (k, v) in only {
                            obj.entry(k).or_insert(v);
                        }
                    }
                }
            }
        }
    }
    schemars::transform::transform_subschemas(&mut drop_null, schema);
}
