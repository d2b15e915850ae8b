//! Picking a proxy: a random match from the store, checked; one that fails a check is
//! replaced by another never tried, up to `max_queries_number` attempts.

use super::checks::{Checker, ServiceDown, Verdict};
use super::params::FetchProxyParams;
use crate::infra::db::{Store, StoreError};
use crate::inventory::mask_proxy_url;
use crate::inventory::wire::FetchedProxy;

#[derive(Debug, Clone)]
pub enum FetchError {
    /// No stored proxy matches the filters (404).
    NoMatch(String),
    /// Every proxy tried failed a check (404). One line per attempt; `exhausted` when the
    /// filters matched no more proxies before `max_queries_number` was reached.
    NonePassed {
        attempts: Vec<String>,
        exhausted: bool,
    },
    /// A service the checks need is down (503).
    ServiceDown(String),
    Store(StoreError),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::NoMatch(filters) => write!(f, "no proxy matches {filters}"),
            FetchError::NonePassed { attempts, exhausted } => {
                let plural = if attempts.len() == 1 { "" } else { "s" };
                write!(f, "no proxy passed the checks in {} attempt{plural}: {}", attempts.len(), attempts.join("; "))?;
                if *exhausted {
                    f.write_str("; no other proxy matches the filters")?;
                }
                Ok(())
            }
            FetchError::ServiceDown(detail) => write!(f, "cannot check proxies now: {detail}"),
            FetchError::Store(error) => write!(f, "{error}"),
        }
    }
}

/// The first proxy that passes every check asked, with the attempt that found it.
pub async fn fetch_proxy(
    store: &dyn Store,
    checker: &Checker<'_>,
    mut params: FetchProxyParams,
) -> Result<FetchedProxy, FetchError> {
    let mut failures = Vec::new();
    for attempt in 1..=params.max_queries_number {
        let Some(proxy) = store.random_proxy(&params.filter).await.map_err(FetchError::Store)? else {
            if attempt == 1 {
                return Err(FetchError::NoMatch(params.describe_filters()));
            }
            return Err(FetchError::NonePassed { attempts: failures, exhausted: true });
        };
        params.filter.exclude_ids.push(proxy.proxy_id);
        let masked = mask_proxy_url(&proxy.proxy_url);
        match checker.check(&proxy, &params).await.map_err(|ServiceDown(detail)| FetchError::ServiceDown(detail))? {
            Verdict::Passed(report) => {
                tracing::info!(proxy = %masked, attempt, "proxy handed out");
                return Ok(FetchedProxy {
                    proxy_url: proxy.proxy_url,
                    attempt,
                    verify_ip: report.verify_ip,
                    verify_quality: report.verify_quality,
                    verify_location: report.verify_location,
                });
            }
            Verdict::Failed(failure) => {
                tracing::info!(proxy = %masked, attempt, check = failure.check, reason = %failure.reason, "proxy failed a check");
                failures.push(format!("attempt {attempt} ({masked}): {} failed: {}", failure.check, failure.reason));
            }
        }
    }
    Err(FetchError::NonePassed { attempts: failures, exhausted: false })
}
