//! `/api/proxies` and `/api/fingerprints`: the providers' inventory for the dashboard, read
//! only (filled by `armada import`). Proxy credentials are masked; fingerprints are listed
//! without their data.

use axum::extract::State;
use serde::Serialize;

use super::Paging;
use crate::app::AppState;
use crate::http::{ApiError, Json, Query};
use crate::infra::db::{FingerprintSummary, StoredProxy};
use crate::inventory::mask_proxy_url;

const DEFAULT_PAGE_SIZE: u32 = 50;

/// A proxy as the dashboard shows it: the URL's password is `***`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProxyRow {
    pub proxy_id: i64,
    /// `http://user:***@host:port`
    pub proxy_url: String,
    pub proxy_provider_name: Option<String>,
    pub proxy_type: Option<String>,
    pub proxy_rotation_strategy: Option<String>,
    pub proxy_location: Option<String>,
}

impl From<StoredProxy> for ProxyRow {
    fn from(proxy: StoredProxy) -> Self {
        Self {
            proxy_id: proxy.proxy_id,
            proxy_url: mask_proxy_url(&proxy.proxy_url),
            proxy_provider_name: proxy.proxy_provider_name,
            proxy_type: proxy.proxy_type,
            proxy_rotation_strategy: proxy.proxy_rotation_strategy,
            proxy_location: proxy.proxy_location,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProxiesPage {
    pub proxies: Vec<ProxyRow>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FingerprintsPage {
    pub fingerprints: Vec<FingerprintSummary>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

/// Proxies of the inventory, last imported first, credentials masked.
#[utoipa::path(
    get,
    path = "/api/proxies",
    tag = "inventory",
    params(Paging),
    responses(
        (status = 200, description = "A page of proxies (default page_size 50)", body = ProxiesPage),
        (status = 422, description = "Bad paging", body = crate::http::error::ErrorBody),
    )
)]
pub async fn proxies(
    State(state): State<AppState>,
    Query(paging): Query<Paging>,
) -> Result<Json<ProxiesPage>, ApiError> {
    let page = state.store().list_proxies(paging.request(DEFAULT_PAGE_SIZE)?).await?;
    Ok(Json(ProxiesPage {
        proxies: page.items.into_iter().map(ProxyRow::from).collect(),
        total: page.total,
        page: page.page,
        page_size: page.page_size,
    }))
}

/// Fingerprints of the inventory, last imported first, without their data.
#[utoipa::path(
    get,
    path = "/api/fingerprints",
    tag = "inventory",
    params(Paging),
    responses(
        (status = 200, description = "A page of fingerprints' metadata (default page_size 50)", body = FingerprintsPage),
        (status = 422, description = "Bad paging", body = crate::http::error::ErrorBody),
    )
)]
pub async fn fingerprints(
    State(state): State<AppState>,
    Query(paging): Query<Paging>,
) -> Result<Json<FingerprintsPage>, ApiError> {
    let page = state.store().list_fingerprints(paging.request(DEFAULT_PAGE_SIZE)?).await?;
    Ok(Json(FingerprintsPage {
        fingerprints: page.items,
        total: page.total,
        page: page.page,
        page_size: page.page_size,
    }))
}
