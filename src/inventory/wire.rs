//! What the providers answer and are asked, shared by the provider roles (which serve them)
//! and `clients::providers` (which calls them), so neither imports the other.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET /fetch_proxy`'s answer: the proxy, the attempt that found it, and one entry per check
/// asked (absent when not asked).
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FetchedProxy {
    /// Whole, with its credentials: the agent needs them. Mask it anywhere else.
    pub proxy_url: String,
    /// 1 for the first proxy tried; a proxy failing a check is replaced by the next attempt.
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_ip: Option<IpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_quality: Option<QualityCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_location: Option<LocationCheck>,
}

impl std::fmt::Debug for FetchedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchedProxy")
            .field("proxy_url", &super::mask_proxy_url(&self.proxy_url))
            .field("attempt", &self.attempt)
            .field("verify_ip", &self.verify_ip)
            .field("verify_quality", &self.verify_quality)
            .field("verify_location", &self.verify_location)
            .finish()
    }
}

/// `verify_ip`: the exit IP an IP-echo service saw through the proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IpCheck {
    pub ip: String,
}

/// `verify_quality`: IPQualityScore's verdict on the exit IP, or why it was not asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum QualityCheck {
    Scored {
        /// 100 − IPQualityScore's fraud_score (0 to 100).
        fraud_score_inverted: i64,
        quality_threshold: i64,
        /// `fraud_score_inverted > quality_threshold`.
        quality_pass: bool,
    },
    /// The check was not made (`{"skipped": "IPQS_KEY is not set"}`); it does not fail the proxy.
    Skipped { skipped: String },
}

/// `verify_location`: the exit IP's time zone against the location asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LocationCheck {
    pub actual_timezone: String,
    pub expected_location: String,
    /// The expected location is contained in the time zone, ignoring case.
    pub location_match: bool,
}

/// `GET /get-fingerprint`'s request, as a JSON body (the original's form), query parameters or
/// a POST body. The date is all three parts or none; each part a number or a numeric string.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FingerprintQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub antibot_vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "01")]
    pub collection_date_day: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "02")]
    pub collection_date_month: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2026")]
    pub collection_date_year: Option<Value>,
    /// `desired_ua` sets the user agent of a plain profile; other keys are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub additional_data: Option<Map<String, Value>>,
}
