//! The statements of the providers' inventory: the imports' insert targets, the random picks and
//! the pages. What they must match is SQLite's `sqlite/inventory.rs`.
//!
//! Filters: `@Pn IS NULL OR col = @Pn` (NULL = any). The filter columns' collation is
//! case-insensitive, so equality ignores case as SQLite's `COLLATE NOCASE` does; the location is
//! a `LIKE` containment with a bound pattern (`inventory::contains_pattern`).
//!
//! Random pick: `TOP (1) … ORDER BY NEWID()` gives every match the same chance, and the server
//! reads the matching rows once and keeps one (a top-1 sort, no spill): the table never leaves the
//! database, but each pick costs a scan of the matches. That is fine for the thousands to tens of
//! thousands of proxies an inventory holds. Past that, or under a high pick rate, a faster strategy trades exact uniformity for one index seek: draw `r` in Rust between
//! `MIN(proxy_id)` and `MAX(proxy_id)` (cached), then
//! `SELECT TOP (1) … WHERE proxy_id >= @Pr AND <filters> ORDER BY proxy_id`, starting again from
//! the lowest id when nothing is found past `r`. Ids after a gap (deleted rows) or after rows the
//! filters reject are picked more often, so it suits a dense, mostly unfiltered table; adding
//! `OPTION (RECOMPILE)` also lets a selective filter seek `armada_proxies_by_filters` instead of
//! scanning. Neither is needed for the inventories Armada is used with today.

use super::{InsertTarget, Sql};

macro_rules! proxy_columns {
    () => {
        "proxy_id, proxy_url, proxy_provider_name, proxy_type, proxy_rotation_strategy, proxy_location"
    };
}
macro_rules! fingerprint_summary_columns {
    () => {
        "fingerprint_id, antibot_vendor, website, collecting_date"
    };
}

/// Proxies are imported by the batched insert: rows whose `proxy_url` is stored are skipped, and
/// the `OUTPUT` counts the others. `proxy_id` (the identity) follows the file's order.
pub(in crate::infra::db::mssql) const PROXIES: InsertTarget = InsertTarget {
    insert_name: "insert_proxies",
    select_name: "select_proxies",
    table: "armada_proxies",
    key: "proxy_url",
    columns: &["proxy_url", "proxy_provider_name", "proxy_type", "proxy_rotation_strategy", "proxy_location"],
    parents: "",
    stored_columns: "proxy_url",
};

/// Fingerprints likewise, keyed by their digest (`NewFingerprint::digest`).
pub(in crate::infra::db::mssql) const FINGERPRINTS: InsertTarget = InsertTarget {
    insert_name: "insert_fingerprints",
    select_name: "select_fingerprints",
    table: "armada_fingerprints",
    key: "fingerprint_sha256",
    columns: &["fingerprint_sha256", "antibot_vendor", "website", "data", "collecting_date"],
    parents: "",
    stored_columns: "fingerprint_sha256",
};

// @P1 provider, @P2 type, @P3 rotation strategy (equal, ignoring case), @P4 the location's `LIKE`
// pattern, each NULL for any; @P5 the ids already tried, as a JSON array (`[]` for none).
sql!(
    RANDOM_PROXY,
    5,
    "SELECT TOP (1) ",
    proxy_columns!(),
    " FROM armada_proxies WHERE (@P1 IS NULL OR proxy_provider_name = @P1) ",
    "AND (@P2 IS NULL OR proxy_type = @P2) AND (@P3 IS NULL OR proxy_rotation_strategy = @P3) ",
    "AND (@P4 IS NULL OR proxy_location LIKE @P4) ",
    "AND proxy_id NOT IN (SELECT CAST([value] AS BIGINT) FROM OPENJSON(@P5)) ORDER BY NEWID()"
);
// @P1 vendor, @P2 website (equal, ignoring case), @P3 collected on or after (an unknown date never
// is), each NULL for any.
sql!(
    RANDOM_FINGERPRINT,
    3,
    "SELECT TOP (1) ",
    fingerprint_summary_columns!(),
    ", data FROM armada_fingerprints WHERE (@P1 IS NULL OR antibot_vendor = @P1) ",
    "AND (@P2 IS NULL OR website = @P2) AND (@P3 IS NULL OR collecting_date >= @P3) ORDER BY NEWID()"
);

// Last imported first: the identity is the import order.
sql!(
    LIST_PROXIES,
    2,
    "SELECT ",
    proxy_columns!(),
    ", COUNT_BIG(*) OVER () AS total_rows FROM armada_proxies ",
    "ORDER BY proxy_id DESC OFFSET @P1 ROWS FETCH NEXT @P2 ROWS ONLY"
);
sql!(COUNT_PROXIES, 0, "SELECT COUNT_BIG(*) FROM armada_proxies");
sql!(
    LIST_FINGERPRINTS,
    2,
    "SELECT ",
    fingerprint_summary_columns!(),
    ", COUNT_BIG(*) OVER () AS total_rows FROM armada_fingerprints ",
    "ORDER BY fingerprint_id DESC OFFSET @P1 ROWS FETCH NEXT @P2 ROWS ONLY"
);
sql!(COUNT_FINGERPRINTS, 0, "SELECT COUNT_BIG(*) FROM armada_fingerprints");
