//! The conformance bodies of the providers' inventory: imports, random picks, lists.

use std::collections::HashSet;

use crate::infra::db::{FingerprintFilter, NewFingerprint, NewProxy, ProxyFilter, Store, StoreError};
use crate::model::{PageRequest, Timestamp};

fn proxy(url: &str, provider: &str, kind: &str, rotation: &str, location: &str) -> NewProxy {
    let text = |v: &str| (!v.is_empty()).then(|| v.to_string());
    NewProxy {
        proxy_url: url.into(),
        proxy_provider_name: text(provider),
        proxy_type: text(kind),
        proxy_rotation_strategy: text(rotation),
        proxy_location: text(location),
    }
}

fn fingerprint(vendor: &str, website: &str, data: serde_json::Value, date: &str) -> NewFingerprint {
    NewFingerprint {
        antibot_vendor: Some(vendor.into()),
        website: Some(website.into()),
        data,
        collecting_date: Some(Timestamp::parse(date).expect("test date")),
    }
}

/// Every url a pick with `filter` can return, found by repeated picks that exclude the ones
/// already seen (so the answer is exact, not a sample).
async fn all_matches(store: &dyn Store, filter: ProxyFilter) -> Vec<String> {
    let mut filter = filter;
    let mut urls = Vec::new();
    while let Some(found) = store.random_proxy(&filter).await.expect("pick") {
        assert!(!filter.exclude_ids.contains(&found.proxy_id), "an excluded proxy came back");
        filter.exclude_ids.push(found.proxy_id);
        urls.push(found.proxy_url);
    }
    urls.sort();
    urls
}

async fn seed_proxies(store: &dyn Store) {
    store
        .import_proxies(&[
            proxy("http://u:p@a.example:8000", "iproyal", "residential", "sticky", "Europe/Paris"),
            proxy("http://u:p@b.example:8000", "iproyal", "datacenter", "rotating", "Europe/Berlin"),
            proxy("http://u:p@c.example:8000", "brightdata", "Residential", "rotating", "America/New_York"),
            proxy("http://d.example:3128", "", "", "", ""),
        ])
        .await
        .expect("import");
}

pub async fn proxy_import_counts_duplicates_in_the_store_and_in_the_batch(store: &dyn Store) {
    let first = store
        .import_proxies(&[
            proxy("http://u:p@a.example:8000", "iproyal", "residential", "sticky", "Europe/Paris"),
            proxy("http://u:p@b.example:8000", "iproyal", "residential", "sticky", "Europe/Paris"),
            proxy("http://u:p@a.example:8000", "other", "mobile", "rotating", "Asia"),
        ])
        .await
        .expect("import");
    assert_eq!((first.imported, first.duplicates), (2, 1), "the repeat inside the batch is a duplicate");
    let again = store
        .import_proxies(&[
            proxy("http://u:p@b.example:8000", "", "", "", ""),
            proxy("http://u:p@c.example:8000", "", "", "", ""),
        ])
        .await
        .expect("import");
    assert_eq!((again.imported, again.duplicates), (1, 1));
    let listed = store.list_proxies(PageRequest { page: 1, page_size: 100 }).await.expect("list");
    assert_eq!(listed.total, 3);
    let a = listed.items.iter().find(|p| p.proxy_url == "http://u:p@a.example:8000").expect("a stored");
    assert_eq!(a.proxy_provider_name.as_deref(), Some("iproyal"), "the first row of a url wins");
    assert_eq!(store.import_proxies(&[]).await.expect("empty import"), Default::default());
}

pub async fn proxy_import_is_all_or_nothing(store: &dyn Store) {
    let result = store
        .import_proxies(&[
            proxy("http://a.example:8000", "", "", "", ""),
            proxy("  ", "", "", "", ""),
            proxy("http://b.example:8000", "", "", "", ""),
        ])
        .await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    assert_eq!(store.list_proxies(PageRequest { page: 1, page_size: 10 }).await.expect("list").total, 0);
    assert_eq!(store.random_proxy(&ProxyFilter::default()).await.expect("pick"), None);
}

pub async fn random_proxy_honours_every_filter(store: &dyn Store) {
    seed_proxies(store).await;
    let (a, b, c, d) = (
        "http://u:p@a.example:8000",
        "http://u:p@b.example:8000",
        "http://u:p@c.example:8000",
        "http://d.example:3128",
    );
    let filter = |name: &str, kind: &str, rotation: &str, location: &str| {
        let text = |v: &str| (!v.is_empty()).then(|| v.to_string());
        ProxyFilter {
            proxy_provider_name: text(name),
            proxy_type: text(kind),
            proxy_rotation_strategy: text(rotation),
            proxy_location: text(location),
            exclude_ids: Vec::new(),
        }
    };
    assert_eq!(all_matches(store, ProxyFilter::default()).await, vec![d, a, b, c], "sorted");
    assert_eq!(all_matches(store, filter("IPRoyal", "", "", "")).await, vec![a, b], "names ignore case");
    assert_eq!(all_matches(store, filter("", "residential", "", "")).await, vec![a, c], "types ignore case");
    assert_eq!(all_matches(store, filter("", "", "rotating", "")).await, vec![b, c]);
    assert_eq!(all_matches(store, filter("", "", "", "europe")).await, vec![a, b], "location is contained");
    assert_eq!(all_matches(store, filter("", "", "", "paris")).await, vec![a]);
    assert_eq!(all_matches(store, filter("", "", "", "%")).await, Vec::<String>::new(), "no wildcards");
    assert_eq!(all_matches(store, filter("iproyal", "residential", "sticky", "Europe/Paris")).await, vec![a]);
    assert_eq!(all_matches(store, filter("", "", "", " ")).await.len(), 4, "a blank filter is no filter");
    assert_eq!(all_matches(store, filter("iproy", "", "", "")).await, Vec::<String>::new(), "names are equal");
    assert_eq!(store.random_proxy(&filter("nobody", "", "", "")).await.expect("pick"), None);
}

pub async fn random_proxy_never_returns_an_excluded_proxy(store: &dyn Store) {
    seed_proxies(store).await;
    let all = store.list_proxies(PageRequest { page: 1, page_size: 10 }).await.expect("list").items;
    let keep = all.iter().find(|p| p.proxy_url.contains("c.example")).expect("c").proxy_id;
    let exclude_ids: Vec<i64> = all.iter().map(|p| p.proxy_id).filter(|id| *id != keep).collect();
    let filter = ProxyFilter { exclude_ids, ..Default::default() };
    for _ in 0..20 {
        assert_eq!(store.random_proxy(&filter).await.expect("pick").map(|p| p.proxy_id), Some(keep));
    }
    let everything = ProxyFilter { exclude_ids: all.iter().map(|p| p.proxy_id).collect(), ..Default::default() };
    assert_eq!(store.random_proxy(&everything).await.expect("pick"), None, "all tried: nothing left");
}

pub async fn random_picks_spread_over_every_match(store: &dyn Store) {
    seed_proxies(store).await;
    let mut seen = HashSet::new();
    for _ in 0..200 {
        seen.insert(store.random_proxy(&ProxyFilter::default()).await.expect("pick").expect("a proxy").proxy_url);
        if seen.len() == 4 {
            break;
        }
    }
    assert_eq!(seen.len(), 4, "200 picks among 4 proxies reached only {seen:?}");

    let batch: Vec<NewFingerprint> = (0..3)
        .map(|i| fingerprint("datadome", "https://example.com", serde_json::json!({"n": i}), "2026-02-24"))
        .collect();
    store.import_fingerprints(&batch).await.expect("import");
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let picked = store.random_fingerprint(&FingerprintFilter::default()).await.expect("pick").expect("one");
        seen.insert(picked.data.to_string());
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(seen.len(), 3, "200 picks among 3 fingerprints reached only {seen:?}");
}

pub async fn fingerprint_import_dedupes_on_vendor_website_data_and_date(store: &dyn Store) {
    let base = fingerprint("datadome", "https://example.com", serde_json::json!({"fp": "x"}), "2026-02-24");
    let mut other_day = base.clone();
    other_day.collecting_date = Timestamp::parse("2026-02-25").ok();
    let mut other_vendor = base.clone();
    other_vendor.antibot_vendor = Some("akamai".into());
    let first = store.import_fingerprints(&[base.clone(), base.clone(), other_day]).await.expect("import");
    assert_eq!((first.imported, first.duplicates), (2, 1));
    let again = store.import_fingerprints(&[base, other_vendor]).await.expect("import");
    assert_eq!((again.imported, again.duplicates), (1, 1));
    assert_eq!(store.list_fingerprints(PageRequest { page: 1, page_size: 10 }).await.expect("list").total, 3);
}

pub async fn random_fingerprint_honours_vendor_website_and_date(store: &dyn Store) {
    let data = serde_json::json!({"zeta": 1, "alpha": {"user_agent": "UA", "list": [1, 2]}, "text": "é"});
    store
        .import_fingerprints(&[
            fingerprint("datadome", "https://example.com", data.clone(), "2026-02-24"),
            fingerprint("akamai", "https://example.com", serde_json::json!({"a": 1}), "2026-01-10"),
            NewFingerprint {
                antibot_vendor: Some("datadome".into()),
                website: Some("https://example.com".into()),
                data: serde_json::json!("undated"),
                collecting_date: None,
            },
        ])
        .await
        .expect("import");
    let pick = |vendor: Option<&str>, website: Option<&str>, since: Option<&str>| FingerprintFilter {
        antibot_vendor: vendor.map(String::from),
        website: website.map(String::from),
        collected_since: since.map(|s| Timestamp::parse(s).expect("date")),
    };
    let found = store.random_fingerprint(&pick(Some("DataDome"), None, Some("2026-02-24"))).await.expect("pick");
    let found = found.expect("the dated datadome fingerprint, on its very day");
    assert_eq!(found.data, data);
    assert_eq!(found.data.to_string(), data.to_string(), "key order is kept");
    assert_eq!(found.summary.collecting_date, Timestamp::parse("2026-02-24").ok());
    assert_eq!(found.summary.antibot_vendor.as_deref(), Some("datadome"));
    let none = store.random_fingerprint(&pick(Some("datadome"), None, Some("2026-02-25"))).await.expect("pick");
    assert_eq!(none, None, "collected before the date, or undated: left out");
    let akamai = store.random_fingerprint(&pick(Some("akamai"), Some("HTTPS://EXAMPLE.COM"), None)).await;
    assert_eq!(akamai.expect("pick").map(|f| f.data), Some(serde_json::json!({"a": 1})));
    let other_site = store.random_fingerprint(&pick(None, Some("https://example.org"), None)).await.expect("pick");
    assert_eq!(other_site, None);
    let mut datadome = HashSet::new();
    for _ in 0..100 {
        let found = store.random_fingerprint(&pick(Some("datadome"), None, None)).await.expect("pick").expect("one");
        datadome.insert(found.data.to_string());
    }
    assert_eq!(datadome.len(), 2, "without a date the undated one matches too: {datadome:?}");
}

pub async fn inventory_lists_are_paged_last_imported_first(store: &dyn Store) {
    let proxies: Vec<NewProxy> =
        (0..7).map(|i| proxy(&format!("http://u:p@h{i}.example:8000"), "p", "", "", "")).collect();
    store.import_proxies(&proxies).await.expect("import");
    let page = store.list_proxies(PageRequest { page: 2, page_size: 3 }).await.expect("list");
    let hosts: Vec<&str> = page.items.iter().map(|p| p.proxy_url.as_str()).collect();
    assert_eq!((page.total, page.page, page.page_size), (7, 2, 3));
    assert_eq!(hosts, vec!["http://u:p@h3.example:8000", "http://u:p@h2.example:8000", "http://u:p@h1.example:8000"]);

    let fingerprints: Vec<NewFingerprint> = (0..4)
        .map(|i| fingerprint("datadome", "https://example.com", serde_json::json!({"i": i}), "2026-02-24"))
        .collect();
    store.import_fingerprints(&fingerprints).await.expect("import");
    let page = store.list_fingerprints(PageRequest { page: 1, page_size: 3 }).await.expect("list");
    assert_eq!((page.total, page.items.len()), (4, 3));
    assert!(page.items[0].fingerprint_id > page.items[1].fingerprint_id, "last imported first");
    assert_eq!(page.items[0].collecting_date, Timestamp::parse("2026-02-24").ok());
    assert!(store.list_fingerprints(PageRequest { page: 3, page_size: 3 }).await.expect("list").items.is_empty());
}
