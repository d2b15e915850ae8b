use serde_json::json;

use super::*;

#[test]
fn no_config_or_disabled_means_no_proxy() {
    assert_eq!(proxy_plan(None), Ok(ProxyPlan::None));
    assert_eq!(proxy_plan(Some(&Value::Null)), Ok(ProxyPlan::None));
    for enabled in [json!(0), json!("0"), json!(false), Value::Null] {
        let config = json!({"upstream_proxy_enabled": enabled, "proxy_location": "US"});
        assert_eq!(proxy_plan(Some(&config)), Ok(ProxyPlan::None), "{config}");
    }
    assert_eq!(proxy_plan(Some(&json!({"upstream_proxy_enabled": 2}))), Ok(ProxyPlan::LocalOnly));
}

#[test]
fn the_provider_is_asked_with_the_message_filters() {
    let config = json!({
        "upstream_proxy_enabled": 1,
        "proxy_type": "residential",
        "proxy_location": "",
        "proxy_provider_name": "iproyal",
        "verify_ip": 1,
        "verify_quality": "0",
        "verify_location": true,
        "quality_threshold": "80",
        "max_queries_number": 3,
        "unrelated": {"kept": "out"},
    });
    let expected = ProxyRequest {
        proxy_provider_name: Some("iproyal".into()),
        proxy_type: Some("residential".into()),
        verify_ip: Some(true),
        verify_quality: Some(false),
        verify_location: Some(true),
        quality_threshold: Some(80),
        max_queries_number: Some(3),
        ..ProxyRequest::default()
    };
    assert_eq!(proxy_plan(Some(&config)), Ok(ProxyPlan::Upstream(UpstreamSource::Provider(expected), None)));
}

#[test]
fn a_direct_upstream_needs_its_url() {
    let config = json!({"upstream_proxy_enabled": true, "upstream_proxy_broker_type": "direct",
                        "upstream_proxy_url": "http://u:p@h:1"});
    assert_eq!(
        proxy_plan(Some(&config)),
        Ok(ProxyPlan::Upstream(UpstreamSource::Direct, Some("http://u:p@h:1".into())))
    );
    let alias = json!({"upstream_proxy_enabled": 1, "upstream_proxy_broker_type": "Direct", "proxy_url": "http://h:1"});
    assert_eq!(proxy_plan(Some(&alias)), Ok(ProxyPlan::Upstream(UpstreamSource::Direct, Some("http://h:1".into()))));
    let missing = json!({"upstream_proxy_enabled": 1, "upstream_proxy_broker_type": "direct"});
    assert!(proxy_plan(Some(&missing)).unwrap_err().contains("no upstream_proxy_url"));
}

#[test]
fn bad_proxy_configs_say_what_is_wrong() {
    for (config, expected) in [
        (json!("yes"), "config_proxy must be an object"),
        (json!({"upstream_proxy_enabled": 3}), "upstream_proxy_enabled must be 0, 1 or 2"),
        (json!({"upstream_proxy_enabled": 1, "upstream_proxy_broker_type": "pool"}), "must be provider or direct"),
        (json!({"upstream_proxy_enabled": 1, "verify_ip": "maybe"}), "verify_ip must be 0 or 1"),
        (json!({"upstream_proxy_enabled": 1, "max_queries_number": "many"}), "max_queries_number must be a whole"),
        (json!({"upstream_proxy_enabled": 1, "proxy_type": ["a"]}), "proxy_type must be text"),
    ] {
        let error = proxy_plan(Some(&config)).unwrap_err();
        assert!(error.contains(expected), "{config}: {error}");
    }
}

#[test]
fn fingerprints_are_asked_unless_absent_or_disabled() {
    assert_eq!(fingerprint_query(None), Ok(None));
    assert_eq!(fingerprint_query(Some(&Value::Null)), Ok(None));
    assert_eq!(fingerprint_query(Some(&json!({"fingerprint_enabled": 0, "antibot_vendor": "x"}))), Ok(None));
    let query = fingerprint_query(Some(&json!({
        "antibot_vendor": "datadome", "website": "", "collection_date_day": "01",
        "collection_date_month": 2, "collection_date_year": 2026, "additional_data": {"desired_ua": "UA"},
    })))
    .expect("valid")
    .expect("asked");
    assert_eq!(query.antibot_vendor.as_deref(), Some("datadome"));
    assert_eq!(query.website, None, "an empty website is any website");
    assert_eq!(query.collection_date_day, Some(json!("01")));
    assert_eq!(query.additional_data.and_then(|d| d.get("desired_ua").cloned()), Some(json!("UA")));
    assert_eq!(fingerprint_query(Some(&json!({}))), Ok(Some(FingerprintQuery::default())), "{{}}: any fingerprint");
    assert!(fingerprint_query(Some(&json!([1]))).unwrap_err().contains("must be an object"));
    assert!(fingerprint_query(Some(&json!({"additional_data": "ua"}))).unwrap_err().contains("config_fingerprint"));
}
