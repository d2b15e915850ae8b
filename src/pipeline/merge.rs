//! Deep merge of a CSV row (the overlay) into a default message.

use serde_json::{Map, Value};

/// Merges `overlay` into `base`: object into object merges key by key, recursively; any
/// other overlay value (scalar, array, null) replaces the base value whole; keys missing
/// from `base` are added at the end. The overlay is moved in, never cloned.
pub fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base_map), Value::Object(overlay_map)) => merge_maps(base_map, overlay_map),
        (base, overlay) => *base = overlay,
    }
}

/// [`deep_merge`] of two objects, for callers that hold the maps themselves.
pub(crate) fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, overlay_value) in overlay {
        match base.get_mut(&key) {
            Some(base_value) => deep_merge(base_value, overlay_value),
            None => {
                base.insert(key, overlay_value);
            }
        }
    }
}

#[cfg(test)]
mod tests;
