//! Live inventory tests beyond the conformance suite: what only a server can show about imports
//! larger than one statement, `LIKE` with literal wildcards, and many excluded ids.

use super::*;
use crate::infra::db::{NewFingerprint, NewProxy, ProxyFilter};

fn proxy(url: String, location: &str) -> NewProxy {
    NewProxy {
        proxy_url: url,
        proxy_provider_name: Some("iproyal".into()),
        proxy_type: None,
        proxy_rotation_strategy: None,
        proxy_location: Some(location.into()),
    }
}

live!(imports_larger_than_one_statement_count_every_duplicate_once, |server| {
    let database = TestDatabase::create(&server).await;
    let store = MssqlStore::open(&database.settings).await.expect("open");
    store.migrate().await.expect("migrate");
    // 1,000 distinct urls (three statements of 333 and one of 1), each repeated later in the file
    // every tenth row, one with trailing spaces.
    let mut proxies: Vec<NewProxy> =
        (0..1000).map(|i| proxy(format!("http://u:p@h{i}.example:8000"), "Europe/Paris")).collect();
    proxies.extend((0..1000).step_by(10).map(|i| proxy(format!("http://u:p@h{i}.example:8000"), "Asia")));
    proxies.push(proxy("http://u:p@h1.example:8000   ".into(), "Asia"));
    let outcome = store.import_proxies(&proxies).await.expect("import");
    assert_eq!((outcome.imported, outcome.duplicates), (1000, 101));
    let again = store.import_proxies(&proxies).await.expect("import again");
    assert_eq!((again.imported, again.duplicates), (0, 1101));
    let newest = store.list_proxies(PageRequest { page: 1, page_size: 2 }).await.expect("list");
    assert_eq!(newest.total, 1000);
    let urls: Vec<&str> = newest.items.iter().map(|p| p.proxy_url.as_str()).collect();
    assert_eq!(urls, ["http://u:p@h999.example:8000", "http://u:p@h998.example:8000"], "file order, across statements");
    let asia = ProxyFilter { proxy_location: Some("Asia".into()), ..ProxyFilter::default() };
    assert_eq!(store.random_proxy(&asia).await.expect("pick"), None, "every Asia row repeated a url: first row wins");

    let fingerprints: Vec<NewFingerprint> = (0..700)
        .map(|n| NewFingerprint {
            antibot_vendor: Some("datadome".into()),
            website: None,
            data: serde_json::json!({ "n": n }),
            collecting_date: None,
        })
        .collect();
    let first = store.import_fingerprints(&fingerprints).await.expect("import");
    let second = store.import_fingerprints(&fingerprints).await.expect("import again");
    assert_eq!((first.imported, first.duplicates, second.imported, second.duplicates), (700, 0, 0, 700));
});

live!(locations_match_wildcards_literally_and_many_tried_ids_are_excluded, |server| {
    let database = TestDatabase::create(&server).await;
    let store = MssqlStore::open(&database.settings).await.expect("open");
    store.migrate().await.expect("migrate");
    let locations = ["EU_West[1]", "EUxWest11", "eu%west", "EU-West\\1"];
    let proxies: Vec<NewProxy> =
        locations.iter().enumerate().map(|(i, l)| proxy(format!("http://l{i}.example:8000"), l)).collect();
    store.import_proxies(&proxies).await.expect("import");
    for (filter, expected) in
        [("eu_west[1", Some("EU_West[1]")), ("U%W", Some("eu%west")), ("t\\1", Some("EU-West\\1")), ("[x", None)]
    {
        let filter = ProxyFilter { proxy_location: Some(filter.into()), ..ProxyFilter::default() };
        for _ in 0..10 {
            let found = store.random_proxy(&filter).await.expect("pick").and_then(|p| p.proxy_location);
            assert_eq!(found.as_deref(), expected, "{filter:?}");
        }
    }

    let many: Vec<NewProxy> = (0..1500).map(|i| proxy(format!("http://m{i}.example:8000"), "Asia")).collect();
    store.import_proxies(&many).await.expect("import");
    let mut listed = Vec::new();
    for page in 1..=16 {
        let found = store.list_proxies(PageRequest { page, page_size: 100 }).await.expect("list");
        listed.extend(found.items.into_iter().map(|p| p.proxy_id));
    }
    assert_eq!(listed.len(), 1504);
    let keep = listed[700];
    let exclude_ids: Vec<i64> = listed.iter().copied().filter(|id| *id != keep).collect();
    let filter = ProxyFilter { exclude_ids, ..ProxyFilter::default() };
    assert_eq!(store.random_proxy(&filter).await.expect("pick").map(|p| p.proxy_id), Some(keep));
});
