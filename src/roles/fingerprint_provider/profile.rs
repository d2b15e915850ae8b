//! Plain profiles and `additional_data.desired_ua`.
//!
//! A stored fingerprint's `data` is a **plain profile** when it is a JSON object describing a
//! browser profile in the clear, recognised by its user agent: a top-level `user_agent` or
//! `userAgent` string, or a `navigator` object with a `userAgent` string. Anything else — a
//! vendor's encrypted anti-bot payload (a string, or an object without those fields) — is
//! opaque: it is handed out untouched, since decrypting or re-forging it is out of scope.
//!
//! `desired_ua` replaces every user-agent field a plain profile has (all of them, so the
//! profile stays consistent with itself). Fields derived from the user agent elsewhere in a
//! profile (`appVersion`, client hints) are the profile author's business and left as they are.

use serde_json::Value;

/// The top-level fields that hold a plain profile's user agent.
const TOP_LEVEL_FIELDS: [&str; 2] = ["user_agent", "userAgent"];

/// Whether `data` is a plain profile (see the module's documentation).
pub fn is_plain_profile(data: &Value) -> bool {
    let Some(object) = data.as_object() else { return false };
    TOP_LEVEL_FIELDS.iter().any(|field| object.get(*field).is_some_and(Value::is_string))
        || object.get("navigator").and_then(|n| n.get("userAgent")).is_some_and(Value::is_string)
}

/// Sets every user-agent field of a plain profile to `user_agent`. Returns false, leaving
/// `data` untouched, when it is not a plain profile.
pub fn set_user_agent(data: &mut Value, user_agent: &str) -> bool {
    if !is_plain_profile(data) {
        return false;
    }
    let Some(object) = data.as_object_mut() else { return false };
    for field in TOP_LEVEL_FIELDS {
        if let Some(value) = object.get_mut(field).filter(|v| v.is_string()) {
            *value = Value::String(user_agent.to_string());
        }
    }
    if let Some(value) = object.get_mut("navigator").and_then(|n| n.get_mut("userAgent")).filter(|v| v.is_string()) {
        *value = Value::String(user_agent.to_string());
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_profiles_are_recognised_by_their_user_agent() {
        for plain in [
            json!({"user_agent": "UA"}),
            json!({"userAgent": "UA", "screen": {"width": 1920}}),
            json!({"navigator": {"userAgent": "UA", "platform": "Win32"}}),
        ] {
            assert!(is_plain_profile(&plain), "{plain}");
        }
        for opaque in [
            json!("3f9a…encrypted"),
            json!({"fingerprint": "sample_data"}),
            json!({"user_agent": 5}),
            json!({"navigator": "UA"}),
            json!([{"user_agent": "UA"}]),
        ] {
            assert!(!is_plain_profile(&opaque), "{opaque}");
        }
    }

    #[test]
    fn desired_ua_replaces_every_user_agent_field_and_nothing_else() {
        let mut profile = json!({
            "user_agent": "old",
            "navigator": {"userAgent": "old", "platform": "Win32"},
            "headers": {"User-Agent": "old"},
        });
        assert!(set_user_agent(&mut profile, "new"));
        assert_eq!(
            profile,
            json!({
                "user_agent": "new",
                "navigator": {"userAgent": "new", "platform": "Win32"},
                "headers": {"User-Agent": "old"},
            })
        );
    }

    #[test]
    fn opaque_payloads_are_left_untouched() {
        let mut payload = json!({"fingerprint": "sample_data"});
        assert!(!set_user_agent(&mut payload, "new"));
        assert_eq!(payload, json!({"fingerprint": "sample_data"}));
    }
}
