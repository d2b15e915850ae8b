//! The providers' inventory as the `Store` sees it: proxies and fingerprints to import, the
//! filters of a random pick, and what is stored.
//!
//! A `proxy_url` may hold credentials: the `Debug` of every type here masks it, so a proxy
//! logged by accident never shows its password.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::model::Timestamp;

/// One proxy to import (`armada import proxies`). Empty optional cells are `None`.
#[derive(Clone, PartialEq)]
pub struct NewProxy {
    pub proxy_url: String,
    pub proxy_provider_name: Option<String>,
    pub proxy_type: Option<String>,
    pub proxy_rotation_strategy: Option<String>,
    pub proxy_location: Option<String>,
}

/// A stored proxy. `proxy_url` is whole (with its credentials): mask it before showing it to
/// anyone but the agent that will use it (`inventory::mask_proxy_url`).
#[derive(Clone, PartialEq)]
pub struct StoredProxy {
    pub proxy_id: i64,
    pub proxy_url: String,
    pub proxy_provider_name: Option<String>,
    pub proxy_type: Option<String>,
    pub proxy_rotation_strategy: Option<String>,
    pub proxy_location: Option<String>,
}

impl fmt::Debug for NewProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewProxy")
            .field("proxy_url", &crate::settings::redact_url(&self.proxy_url))
            .field("proxy_provider_name", &self.proxy_provider_name)
            .field("proxy_type", &self.proxy_type)
            .field("proxy_rotation_strategy", &self.proxy_rotation_strategy)
            .field("proxy_location", &self.proxy_location)
            .finish()
    }
}

impl fmt::Debug for StoredProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredProxy")
            .field("proxy_id", &self.proxy_id)
            .field("proxy_url", &crate::settings::redact_url(&self.proxy_url))
            .field("proxy_provider_name", &self.proxy_provider_name)
            .field("proxy_type", &self.proxy_type)
            .field("proxy_rotation_strategy", &self.proxy_rotation_strategy)
            .field("proxy_location", &self.proxy_location)
            .finish()
    }
}

/// One fingerprint to import (`armada import fingerprints`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewFingerprint {
    pub antibot_vendor: Option<String>,
    pub website: Option<String>,
    /// Stored as compact JSON text.
    pub data: serde_json::Value,
    /// The collection day at 00:00 UTC (the importer drops the time of day), or unknown.
    pub collecting_date: Option<Timestamp>,
}

impl NewFingerprint {
    /// The `data` column: compact JSON, keys in their original order.
    pub fn data_text(&self) -> String {
        self.data.to_string()
    }

    /// `fingerprint_sha256`, the duplicate key: hex sha256 of
    /// `antibot_vendor \n website \n data \n collecting_date` (absent values empty, the date in
    /// microseconds), so the same payload collected again on another day is a new row while
    /// importing the same file twice adds nothing. Every store computes it with this function.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.antibot_vendor.as_deref().unwrap_or_default());
        hasher.update(b"\n");
        hasher.update(self.website.as_deref().unwrap_or_default());
        hasher.update(b"\n");
        hasher.update(self.data_text());
        hasher.update(b"\n");
        if let Some(date) = self.collecting_date {
            hasher.update(date.as_micros().to_string());
        }
        hex::encode(hasher.finalize())
    }
}

/// A stored fingerprint without its `data`: what the dashboard lists.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct FingerprintSummary {
    pub fingerprint_id: i64,
    pub antibot_vendor: Option<String>,
    pub website: Option<String>,
    pub collecting_date: Option<Timestamp>,
}

/// A stored fingerprint with its data: what the fingerprint provider hands out.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFingerprint {
    pub summary: FingerprintSummary,
    pub data: serde_json::Value,
}

/// Which proxies a random pick may return. `None` = any. Text filters ignore ASCII case;
/// `proxy_location` matches when the stored location contains it (`Europe` matches
/// `Europe/Paris`); the others must be equal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyFilter {
    pub proxy_provider_name: Option<String>,
    pub proxy_type: Option<String>,
    pub proxy_rotation_strategy: Option<String>,
    pub proxy_location: Option<String>,
    /// Proxies already tried: never returned.
    pub exclude_ids: Vec<i64>,
}

/// Which fingerprints a random pick may return. `None` = any. Vendor and website must be
/// equal, ignoring ASCII case; `collected_since` keeps fingerprints collected on or after it
/// (those of an unknown date are left out when it is set).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FingerprintFilter {
    pub antibot_vendor: Option<String>,
    pub website: Option<String>,
    pub collected_since: Option<Timestamp>,
}

/// A text filter's value as every store compares it: trimmed, and blank means "any" (as an
/// empty `proxy_location=` does on the wire).
pub fn filter_text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// What an import did: rows inserted, and rows skipped because they were already stored (or
/// appeared earlier in the same import).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportOutcome {
    pub imported: u64,
    pub duplicates: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_proxy_password() {
        let proxy = NewProxy {
            proxy_url: "http://user:s3cret@host:8000".into(),
            proxy_provider_name: None,
            proxy_type: None,
            proxy_rotation_strategy: None,
            proxy_location: None,
        };
        let debug = format!("{proxy:?}");
        assert!(!debug.contains("s3cret") && debug.contains("user:***@host:8000"), "{debug}");
    }

    #[test]
    fn fingerprint_digest_covers_vendor_website_data_and_date() {
        let base = NewFingerprint {
            antibot_vendor: Some("datadome".into()),
            website: Some("https://example.com".into()),
            data: serde_json::json!({"a": 1}),
            collecting_date: Timestamp::parse("2026-02-24").ok(),
        };
        let mut other_day = base.clone();
        other_day.collecting_date = Timestamp::parse("2026-02-25").ok();
        let mut other_site = base.clone();
        other_site.website = Some("https://example.org".into());
        assert_eq!(base.digest(), base.clone().digest());
        assert_ne!(base.digest(), other_day.digest());
        assert_ne!(base.digest(), other_site.digest());
        assert_eq!(base.digest().len(), 64);
    }
}
