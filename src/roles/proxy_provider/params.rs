//! `GET /fetch_proxy`'s query string, checked: every bad value is a 400 naming the parameter.
//! Unknown parameters are ignored (agents may forward their whole `config_proxy`); an empty
//! value is the same as an absent one.

use crate::infra::db::ProxyFilter;

pub const DEFAULT_QUALITY_THRESHOLD: i64 = 70;
pub const DEFAULT_MAX_QUERIES: u32 = 2;
/// The most attempts one request may ask for: each may wait for three slow services.
pub const MAX_QUERIES_LIMIT: u32 = 20;

/// What a `GET /fetch_proxy` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchProxyParams {
    /// The filters; `exclude_ids` is filled as attempts go.
    pub filter: ProxyFilter,
    pub verify_ip: bool,
    pub verify_quality: bool,
    pub verify_location: bool,
    /// 0 to 100: a proxy passes when 100 − fraud_score is above it.
    pub quality_threshold: i64,
    /// Proxies tried at most, 1 to [`MAX_QUERIES_LIMIT`].
    pub max_queries_number: u32,
}

impl FetchProxyParams {
    /// Parses a raw query string (`None` = no query at all).
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut params = FetchProxyParams {
            filter: ProxyFilter::default(),
            verify_ip: false,
            verify_quality: false,
            verify_location: false,
            quality_threshold: DEFAULT_QUALITY_THRESHOLD,
            max_queries_number: DEFAULT_MAX_QUERIES,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let text = Some(value.to_string());
            match key.as_ref() {
                "proxy_provider_name" => params.filter.proxy_provider_name = text,
                "proxy_type" => params.filter.proxy_type = text,
                "proxy_rotation_strategy" => params.filter.proxy_rotation_strategy = text,
                "proxy_location" => params.filter.proxy_location = text,
                "verify_ip" => params.verify_ip = boolean("verify_ip", value)?,
                "verify_quality" => params.verify_quality = boolean("verify_quality", value)?,
                "verify_location" => params.verify_location = boolean("verify_location", value)?,
                "quality_threshold" => params.quality_threshold = quality_threshold(value)?,
                "max_queries_number" => params.max_queries_number = max_queries(value)?,
                _ => {}
            }
        }
        Ok(params)
    }

    /// The filters asked, for messages: `proxy_type=residential, proxy_location=Europe`.
    pub fn describe_filters(&self) -> String {
        let f = &self.filter;
        let given: Vec<String> = [
            ("proxy_provider_name", &f.proxy_provider_name),
            ("proxy_type", &f.proxy_type),
            ("proxy_rotation_strategy", &f.proxy_rotation_strategy),
            ("proxy_location", &f.proxy_location),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={v}")))
        .collect();
        if given.is_empty() { "no filter".into() } else { given.join(", ") }
    }
}

/// `1`/`0`/`true`/`false`, any case.
fn boolean(name: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!("{name}={value:?} is not a boolean; use 1, 0, true or false")),
    }
}

fn quality_threshold(value: &str) -> Result<i64, String> {
    match value.parse::<i64>() {
        Ok(n) if (0..=100).contains(&n) => Ok(n),
        _ => Err(format!("quality_threshold={value:?} must be a whole number from 0 to 100")),
    }
}

fn max_queries(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_QUERIES_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("max_queries_number={value:?} must be a whole number from 1 to {MAX_QUERIES_LIMIT}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_nothing_is_asked() {
        let params = FetchProxyParams::parse(None).expect("valid");
        assert_eq!(params.filter, ProxyFilter::default());
        assert_eq!((params.verify_ip, params.verify_quality, params.verify_location), (false, false, false));
        assert_eq!((params.quality_threshold, params.max_queries_number), (70, 2));
        assert_eq!(params.describe_filters(), "no filter");
    }

    #[test]
    fn every_parameter_is_read_and_empty_values_are_absent() {
        let params = FetchProxyParams::parse(Some(
            "proxy_provider_name=iproyal&proxy_type=residential&proxy_rotation_strategy=sticky\
             &proxy_location=Europe%2FParis&verify_ip=TRUE&verify_quality=1&verify_location=False\
             &quality_threshold=85&max_queries_number=5&upstream_proxy_enabled=1&proxy_type=",
        ))
        .expect("valid");
        assert_eq!(params.filter.proxy_location.as_deref(), Some("Europe/Paris"));
        assert_eq!(params.filter.proxy_type.as_deref(), Some("residential"), "an empty repeat changes nothing");
        assert_eq!((params.verify_ip, params.verify_quality, params.verify_location), (true, true, false));
        assert_eq!((params.quality_threshold, params.max_queries_number), (85, 5));
        assert_eq!(
            params.describe_filters(),
            "proxy_provider_name=iproyal, proxy_type=residential, proxy_rotation_strategy=sticky, \
             proxy_location=Europe/Paris"
        );
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (query, expected) in [
            ("verify_ip=yes", "verify_ip=\"yes\" is not a boolean"),
            ("verify_location=2", "verify_location=\"2\" is not a boolean"),
            ("quality_threshold=101", "quality_threshold=\"101\" must be"),
            ("quality_threshold=high", "quality_threshold=\"high\" must be"),
            ("max_queries_number=0", "max_queries_number=\"0\" must be"),
            ("max_queries_number=21", "max_queries_number=\"21\" must be"),
        ] {
            let error = FetchProxyParams::parse(Some(query)).expect_err(query);
            assert!(error.starts_with(expected), "{query}: {error}");
        }
    }
}
