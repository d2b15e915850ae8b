//! Tests and properties of the deep merge.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

fn merged(mut base: Value, overlay: Value) -> Value {
    deep_merge(&mut base, overlay);
    base
}

#[test]
fn merge_objects_recursively() {
    let base = json!({"a": {"b": {"c": 1, "d": 2}, "e": 3}});
    let overlay = json!({"a": {"b": {"c": 10}}});
    assert_eq!(merged(base, overlay), json!({"a": {"b": {"c": 10, "d": 2}, "e": 3}}));
}

#[test]
fn merge_scalar_replaces_subtree() {
    let base = json!({"proxy": {"host": "h", "port": 1}, "keep": 1});
    assert_eq!(merged(base, json!({"proxy": "none"})), json!({"proxy": "none", "keep": 1}));
}

#[test]
fn merge_object_replaces_scalar() {
    let base = json!({"proxy": "none"});
    assert_eq!(merged(base, json!({"proxy": {"host": "h"}})), json!({"proxy": {"host": "h"}}));
}

#[test]
fn merge_arrays_are_replaced_not_merged() {
    let base = json!({"list": [1, 2, 3], "nested": [{"a": 1}]});
    assert_eq!(merged(base, json!({"list": [9], "nested": [{"b": 2}]})), json!({"list": [9], "nested": [{"b": 2}]}));
}

#[test]
fn merge_null_overlay_replaces_value() {
    let base = json!({"a": {"b": 1}});
    assert_eq!(merged(base, json!({"a": null})), json!({"a": null}));
}

#[test]
fn merge_missing_keys_are_added_at_the_end() {
    let base = json!({"a": 1, "b": 2});
    let result = merged(base, json!({"c": 3, "a": 10}));
    assert_eq!(result, json!({"a": 10, "b": 2, "c": 3}));
    let keys: Vec<&str> = result.as_object().map(|map| map.keys().map(String::as_str).collect()).unwrap_or_default();
    assert_eq!(keys, ["a", "b", "c"], "existing keys keep their place");
}

#[test]
fn merge_non_object_base_is_replaced() {
    assert_eq!(merged(json!(5), json!({"a": 1})), json!({"a": 1}));
}

#[test]
fn spec_config_proxy_example() {
    let default = json!({"config_proxy": {"upstream_proxy_enabled": 2, "proxy_location": "", "verify_ip": 0}});
    let row = json!({"config_proxy": {"proxy_location": "US", "verify_ip": 1}});
    assert_eq!(
        merged(default, row),
        json!({"config_proxy": {"upstream_proxy_enabled": 2, "proxy_location": "US", "verify_ip": 1}})
    );
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,6}".prop_map(Value::String),
    ]
}

/// Arbitrary JSON with few distinct keys, so base and overlay collide often.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-e]", inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(("[a-e]", json_value()), 0..5)
        .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()))
}

/// Every non-object value of `overlay` with its path; objects (even empty ones) as objects.
fn assert_overlay_present(result: &Value, overlay: &Value, path: &str) {
    match overlay {
        Value::Object(map) => {
            let Value::Object(result_map) = result else {
                panic!("{path}: expected an object in the result, got {result}");
            };
            for (key, value) in map {
                let child = result_map.get(key).unwrap_or_else(|| panic!("{path}.{key} missing from the result"));
                assert_overlay_present(child, value, &format!("{path}.{key}"));
            }
        }
        leaf => assert_eq!(result, leaf, "at {path}"),
    }
}

proptest! {
    #[test]
    fn merge_empty_object_is_identity(base in json_object()) {
        prop_assert_eq!(merged(base.clone(), json!({})), base);
    }

    #[test]
    fn merge_value_into_itself_is_identity(base in json_value()) {
        prop_assert_eq!(merged(base.clone(), base.clone()), base);
    }

    #[test]
    fn merge_every_overlay_leaf_is_present_at_its_path(base in json_object(), overlay in json_object()) {
        let result = merged(base, overlay.clone());
        assert_overlay_present(&result, &overlay, "$");
    }

    #[test]
    fn merge_keeps_base_keys_absent_from_overlay(base in json_object(), overlay in json_object()) {
        let result = merged(base.clone(), overlay.clone());
        let (Some(base_map), Some(overlay_map), Some(result_map)) =
            (base.as_object(), overlay.as_object(), result.as_object())
        else {
            panic!("strategy yields objects");
        };
        for (key, value) in base_map.iter().filter(|(key, _)| !overlay_map.contains_key(*key)) {
            prop_assert_eq!(result_map.get(key), Some(value));
        }
    }

    #[test]
    fn merge_is_idempotent(base in json_value(), overlay in json_value()) {
        let once = merged(base, overlay.clone());
        prop_assert_eq!(merged(once.clone(), overlay), once);
    }
}
