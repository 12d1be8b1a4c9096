//! The committed JSON schema is the generated one, and it describes exactly the keys the
//! parser knows, each with a description.

use foxbox::spec::{parse, schema};
use serde_json::Value;

#[test]
fn committed_schema_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(schema::SCHEMA_PATH);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == schema::schema_json(),
        "{} is stale: run `cargo run -- schema > {}` and commit it",
        path.display(),
        schema::SCHEMA_PATH
    );
}

/// The object schema a property points at (following one `$ref`, and into array items).
fn target<'a>(root: &'a Value, prop: &'a Value) -> &'a Value {
    let prop = prop.get("items").unwrap_or(prop);
    match prop.get("$ref").and_then(Value::as_str) {
        Some(r) => root
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling {r}")),
        None => prop,
    }
}

fn keys(obj: &Value) -> Vec<String> {
    let mut k: Vec<String> = obj["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

#[test]
fn schema_and_parser_know_the_same_keys_and_every_key_is_described() {
    let root = schema::schema();
    let mut sections: Vec<String> = parse::SECTIONS
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(parse::TOP_KEYS.iter().map(|k| k.to_string()))
        .collect();
    sections.sort();
    assert_eq!(keys(&root), sections);
    for (name, known) in parse::SECTIONS {
        let prop = &root["properties"][*name];
        assert!(
            prop.get("description").is_some(),
            "[{name}] has no description"
        );
        let section = target(&root, prop);
        let mut expected: Vec<String> = known.iter().map(|k| k.to_string()).collect();
        expected.sort();
        assert_eq!(keys(section), expected, "keys of [{name}]");
        assert_eq!(
            section["additionalProperties"],
            Value::Bool(false),
            "[{name}] is closed"
        );
        for (key, p) in section["properties"].as_object().unwrap() {
            let d = p.get("description").and_then(Value::as_str).unwrap_or("");
            assert!(d.len() > 10, "{name}.{key} has no real description");
        }
    }
}

#[test]
fn schema_has_no_nulls_toml_cannot_write() {
    let text = schema::schema_json();
    assert!(!text.contains("\"null\""), "{text}");
}
