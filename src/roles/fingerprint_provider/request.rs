//! `GET /get-fingerprint`'s request in its three forms — a JSON body on GET (the original's),
//! query parameters, a POST body — read into one [`FingerprintRequest`]. Body fields win over
//! query parameters of the same name; unknown fields are ignored; empty values are absent.

use chrono::{NaiveDate, NaiveTime};
use serde_json::{Map, Value};

use crate::infra::db::FingerprintFilter;
use crate::inventory::wire::FingerprintQuery;
use crate::model::Timestamp;

/// What the caller asks for, checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FingerprintRequest {
    pub filter: FingerprintFilter,
    /// `additional_data.desired_ua`.
    pub desired_ua: Option<String>,
}

const DATE_FIELDS: [&str; 3] = ["collection_date_day", "collection_date_month", "collection_date_year"];

impl FingerprintRequest {
    /// From the raw query string and the raw body (either may be empty). Errors are 400s.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, String> {
        let mut merged = from_query(query)?;
        if !body.iter().all(u8::is_ascii_whitespace) {
            let from_body: FingerprintQuery = serde_json::from_slice(body)
                .map_err(|e| format!("the request body is not a JSON object of the fingerprint fields ({e})"))?;
            overlay(&mut merged, from_body);
        }
        Self::from_query(merged)
    }

    fn from_query(query: FingerprintQuery) -> Result<Self, String> {
        let parts = [&query.collection_date_day, &query.collection_date_month, &query.collection_date_year];
        let parts: Vec<Option<u32>> = parts
            .iter()
            .zip(DATE_FIELDS)
            .map(|(value, name)| date_part(name, value.as_ref()))
            .collect::<Result<_, _>>()?;
        let collected_since = match parts.as_slice() {
            [None, None, None] => None,
            [Some(day), Some(month), Some(year)] => Some(collection_day(*year, *month, *day)?),
            _ => {
                let missing: Vec<&str> =
                    parts.iter().zip(DATE_FIELDS).filter(|(p, _)| p.is_none()).map(|(_, n)| n).collect();
                return Err(format!(
                    "collection_date_day, collection_date_month and collection_date_year go together; missing {}",
                    missing.join(" and ")
                ));
            }
        };
        let desired_ua = match query.additional_data.as_ref().and_then(|data| data.get("desired_ua")) {
            None | Some(Value::Null) => None,
            Some(Value::String(ua)) => Some(ua.trim().to_string()).filter(|ua| !ua.is_empty()),
            Some(other) => return Err(format!("additional_data.desired_ua must be a string, not {other}")),
        };
        Ok(FingerprintRequest {
            filter: FingerprintFilter {
                antibot_vendor: text(query.antibot_vendor),
                website: text(query.website),
                collected_since,
            },
            desired_ua,
        })
    }
}

fn from_query(query: Option<&str>) -> Result<FingerprintQuery, String> {
    let mut parsed = FingerprintQuery::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.trim().to_string();
        match key.as_ref() {
            "antibot_vendor" => parsed.antibot_vendor = Some(value),
            "website" => parsed.website = Some(value),
            "collection_date_day" => parsed.collection_date_day = Some(Value::String(value)),
            "collection_date_month" => parsed.collection_date_month = Some(Value::String(value)),
            "collection_date_year" => parsed.collection_date_year = Some(Value::String(value)),
            "additional_data" if !value.is_empty() => {
                let data: Map<String, Value> = serde_json::from_str(&value).map_err(|e| {
                    format!("additional_data must be a JSON object, e.g. {{\"desired_ua\":\"…\"}} ({e})")
                })?;
                parsed.additional_data = Some(data);
            }
            _ => {}
        }
    }
    Ok(parsed)
}

/// The body's fields over the query's.
fn overlay(base: &mut FingerprintQuery, top: FingerprintQuery) {
    fn take<T>(base: &mut Option<T>, top: Option<T>) {
        if top.is_some() {
            *base = top;
        }
    }
    take(&mut base.antibot_vendor, top.antibot_vendor);
    take(&mut base.website, top.website);
    take(&mut base.collection_date_day, top.collection_date_day);
    take(&mut base.collection_date_month, top.collection_date_month);
    take(&mut base.collection_date_year, top.collection_date_year);
    take(&mut base.additional_data, top.additional_data);
}

fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// `"01"`, `1` or absent (`null`, `""`).
fn date_part(name: &str, value: Option<&Value>) -> Result<Option<u32>, String> {
    let bad = |shown: &dyn std::fmt::Display| format!("{name}={shown} is not a whole number");
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(raw)) if raw.trim().is_empty() => Ok(None),
        Some(Value::String(raw)) => raw.trim().parse().map(Some).map_err(|_| bad(&format!("{raw:?}"))),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).map(Some).ok_or_else(|| bad(n)),
        Some(other) => Err(bad(other)),
    }
}

/// 00:00 UTC of the day, or a 400 for an impossible date.
fn collection_day(year: u32, month: u32, day: u32) -> Result<Timestamp, String> {
    let date = i32::try_from(year)
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
        .ok_or_else(|| format!("{year:04}-{month:02}-{day:02} is not a date (collection_date_year-month-day)"))?;
    Ok(Timestamp::from_micros(date.and_time(NaiveTime::MIN).and_utc().timestamp_micros()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(raw: &str) -> Option<Timestamp> {
        Some(Timestamp::parse(raw).expect("date"))
    }

    #[test]
    fn the_three_forms_give_the_same_request() {
        let body = br#"{"antibot_vendor": "datadome", "website": "https://a.example", "collection_date_day": "01",
                        "collection_date_month": 2, "collection_date_year": "2026", "additional_data": {"desired_ua": "UA"}}"#;
        let from_body = FingerprintRequest::parse(None, body).expect("body");
        let query = "antibot_vendor=datadome&website=https%3A%2F%2Fa.example&collection_date_day=1\
                     &collection_date_month=02&collection_date_year=2026&additional_data=%7B%22desired_ua%22%3A%22UA%22%7D";
        let from_query = FingerprintRequest::parse(Some(query), b"").expect("query");
        assert_eq!(from_body, from_query);
        assert_eq!(from_body.filter.collected_since, day("2026-02-01"));
        assert_eq!(from_body.desired_ua.as_deref(), Some("UA"));
        assert_eq!(FingerprintRequest::parse(None, b"  ").expect("empty"), FingerprintRequest::default());
    }

    #[test]
    fn body_fields_win_over_the_query() {
        let parsed =
            FingerprintRequest::parse(Some("antibot_vendor=akamai&website=w"), br#"{"antibot_vendor": "datadome"}"#)
                .expect("valid");
        assert_eq!(parsed.filter.antibot_vendor.as_deref(), Some("datadome"));
        assert_eq!(parsed.filter.website.as_deref(), Some("w"));
    }

    #[test]
    fn dates_are_all_three_parts_or_none_and_must_exist() {
        let error =
            FingerprintRequest::parse(Some("collection_date_day=1&collection_date_year=2026"), b"").unwrap_err();
        assert!(error.ends_with("missing collection_date_month"), "{error}");
        let error = FingerprintRequest::parse(None, br#"{"collection_date_month": 2}"#).unwrap_err();
        assert!(error.ends_with("missing collection_date_day and collection_date_year"), "{error}");
        for (body, expected) in [
            (
                r#"{"collection_date_day": 30, "collection_date_month": 2, "collection_date_year": 2026}"#,
                "2026-02-30 is not a date",
            ),
            (
                r#"{"collection_date_day": 1, "collection_date_month": 13, "collection_date_year": 2026}"#,
                "2026-13-01 is not a date",
            ),
            (
                r#"{"collection_date_day": "first", "collection_date_month": 1, "collection_date_year": 2026}"#,
                "collection_date_day=\"first\" is not",
            ),
            (
                r#"{"collection_date_day": -1, "collection_date_month": 1, "collection_date_year": 2026}"#,
                "collection_date_day=-1 is not",
            ),
            (
                r#"{"collection_date_day": 1.5, "collection_date_month": 1, "collection_date_year": 2026}"#,
                "collection_date_day=1.5 is not",
            ),
        ] {
            let error = FingerprintRequest::parse(None, body.as_bytes()).unwrap_err();
            assert!(error.starts_with(expected), "{body}: {error}");
        }
        let empty = br#"{"collection_date_day": "", "collection_date_month": null, "collection_date_year": ""}"#;
        assert_eq!(FingerprintRequest::parse(None, empty).expect("no date").filter.collected_since, None);
    }

    #[test]
    fn bad_bodies_and_additional_data_are_refused() {
        assert!(
            FingerprintRequest::parse(None, b"[1]").unwrap_err().starts_with("the request body is not a JSON object")
        );
        assert!(FingerprintRequest::parse(None, b"{oops").is_err());
        assert!(
            FingerprintRequest::parse(Some("additional_data=ua"), b"")
                .unwrap_err()
                .starts_with("additional_data must be")
        );
        let error = FingerprintRequest::parse(None, br#"{"additional_data": {"desired_ua": 5}}"#).unwrap_err();
        assert_eq!(error, "additional_data.desired_ua must be a string, not 5");
        let other_keys = br#"{"additional_data": {"locale": "fr"}, "unknown": 1}"#;
        assert_eq!(FingerprintRequest::parse(None, other_keys).expect("ignored"), FingerprintRequest::default());
    }
}
