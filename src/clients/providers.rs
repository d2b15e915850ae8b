//! The proxy and fingerprint providers as agents see them: HTTP clients of
//! `{PROXY_PROVIDER_URL}/fetch_proxy` and `{FINGERPRINT_PROVIDER_URL}/get-fingerprint`, asked
//! the way the original agents asked (query string; JSON body on GET), so they also work
//! against the original services. The bearer token (`ARMADA_TOKEN`) is sent when set.
//!
//! HTTP only for now: when a provider role runs in the agent's own process, point its URL at
//! that process.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::inventory::wire::{FetchedProxy, FingerprintQuery};
use crate::settings::{Secret, Settings, redact_url};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// No URL for that provider (`PROXY_PROVIDER_URL` / `FINGERPRINT_PROVIDER_URL`).
    #[error("{0}")]
    NotConfigured(String),
    /// The provider has nothing matching (404), with its reason.
    #[error("{provider} found nothing: {detail}")]
    NotFound { provider: String, detail: String },
    /// The provider refused the request (400, 401, …): retrying will not help.
    #[error("{provider} refused the request ({status}): {detail}")]
    Rejected { provider: String, status: u16, detail: String },
    /// The provider cannot be reached or failed: retrying later may work.
    #[error("{0}")]
    Unavailable(String),
}

/// `GET /fetch_proxy`'s parameters; `None` = not sent (the provider's default).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ProxyRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_rotation_strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "one_or_zero")]
    pub verify_ip: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "one_or_zero")]
    pub verify_quality: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "one_or_zero")]
    pub verify_location: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_threshold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queries_number: Option<u32>,
}

/// Booleans as the original sent them: `1` / `0`.
fn one_or_zero<S: Serializer>(value: &Option<bool>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(true) => serializer.serialize_str("1"),
        Some(false) => serializer.serialize_str("0"),
        None => serializer.serialize_none(),
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A proxy request may check several proxies, each against three slow services.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// One provider at its base URL.
#[derive(Clone)]
struct HttpProvider {
    name: &'static str,
    base_url: String,
    token: Option<Secret>,
    client: reqwest::Client,
}

impl HttpProvider {
    fn new(name: &'static str, base_url: &str, token: Option<Secret>) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| ProviderError::Unavailable(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { name, base_url: base_url.trim_end_matches('/').to_string(), token, client })
    }

    fn describe(&self) -> String {
        format!("the {} at {}", self.name, redact_url(&self.base_url))
    }

    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.get(format!("{}{path}", self.base_url));
        match &self.token {
            Some(token) => builder.bearer_auth(token.expose()),
            None => builder,
        }
    }

    async fn send<T: serde::de::DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ProviderError> {
        let unavailable =
            |e: reqwest::Error| ProviderError::Unavailable(format!("{}: {}", self.describe(), e.without_url()));
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        if status.is_success() {
            return response.json::<T>().await.map_err(unavailable);
        }
        let detail = response
            .json::<Value>()
            .await
            .ok()
            .and_then(|body| body.get("detail").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| status.to_string());
        let provider = self.describe();
        Err(match status {
            StatusCode::NOT_FOUND => ProviderError::NotFound { provider, detail },
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                ProviderError::Unavailable(format!("{provider} answered {s}: {detail}"))
            }
            s => ProviderError::Rejected { provider, status: s.as_u16(), detail },
        })
    }
}

/// Both providers, as configured.
#[derive(Clone, Default)]
pub struct ProviderClients {
    proxy: Option<HttpProvider>,
    fingerprint: Option<HttpProvider>,
}

impl ProviderClients {
    /// From `PROXY_PROVIDER_URL`, `FINGERPRINT_PROVIDER_URL` and `ARMADA_TOKEN`.
    pub fn from_settings(settings: &Settings) -> Result<Self, ProviderError> {
        Self::new(
            settings.proxy_provider_url.as_deref(),
            settings.fingerprint_provider_url.as_deref(),
            settings.token.clone(),
        )
    }

    /// Either URL may be absent: asking that provider then fails with `NotConfigured`.
    pub fn new(
        proxy_provider_url: Option<&str>,
        fingerprint_provider_url: Option<&str>,
        token: Option<Secret>,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            proxy: proxy_provider_url.map(|url| HttpProvider::new("proxy provider", url, token.clone())).transpose()?,
            fingerprint: fingerprint_provider_url
                .map(|url| HttpProvider::new("fingerprint provider", url, token.clone()))
                .transpose()?,
        })
    }

    /// A proxy matching `request`, checked as it asks.
    pub async fn fetch_proxy(&self, request: &ProxyRequest) -> Result<FetchedProxy, ProviderError> {
        let provider = self.proxy.as_ref().ok_or_else(|| {
            ProviderError::NotConfigured(
                "the agent message asks for a proxy from the provider but PROXY_PROVIDER_URL is not set".into(),
            )
        })?;
        provider.send(provider.request("/fetch_proxy").query(request)).await
    }

    /// The stored data of a fingerprint matching `query` (a JSON body on GET, as the original).
    pub async fn get_fingerprint(&self, query: &FingerprintQuery) -> Result<Value, ProviderError> {
        let provider = self.fingerprint.as_ref().ok_or_else(|| {
            ProviderError::NotConfigured(
                "the agent message asks for a fingerprint but FINGERPRINT_PROVIDER_URL is not set".into(),
            )
        })?;
        provider.send(provider.request("/get-fingerprint").json(query)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_requests_send_only_what_is_set_with_booleans_as_digits() {
        let request = ProxyRequest {
            proxy_location: Some("Europe".into()),
            verify_ip: Some(true),
            verify_quality: Some(false),
            max_queries_number: Some(3),
            ..ProxyRequest::default()
        };
        let client = reqwest::Client::new();
        let built = client.get("http://provider.test/fetch_proxy").query(&request).build().expect("request");
        assert_eq!(
            built.url().query(),
            Some("proxy_location=Europe&verify_ip=1&verify_quality=0&max_queries_number=3")
        );
    }

    #[tokio::test]
    async fn an_unconfigured_provider_says_which_variable_to_set() {
        let clients = ProviderClients::new(None, None, None).expect("clients");
        let error = clients.fetch_proxy(&ProxyRequest::default()).await.unwrap_err();
        assert!(matches!(&error, ProviderError::NotConfigured(m) if m.contains("PROXY_PROVIDER_URL")), "{error}");
        let error = clients.get_fingerprint(&FingerprintQuery::default()).await.unwrap_err();
        assert!(error.to_string().contains("FINGERPRINT_PROVIDER_URL"), "{error}");
    }
}
