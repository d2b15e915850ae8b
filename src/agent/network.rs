//! The agent's network, prepared once before its worker starts (SPEC §8, §9): the upstream
//! proxy its message asks for, the local forwarding proxy the worker's browser uses, and the
//! fingerprint.
//!
//! `config_proxy` (all keys optional):
//! - `upstream_proxy_enabled`: `0` (default) no proxy at all; `1` a local proxy forwarding to an
//!   upstream; `2` a local proxy that connects directly (no upstream yet: the worker may switch
//!   one in later). `true`/`false` and `"0"`/`"1"`/`"2"` are read the same way.
//! - `upstream_proxy_broker_type`: `provider` (default) asks the proxy provider with the
//!   message's filters (`proxy_provider_name`, `proxy_rotation_strategy`, `proxy_type`,
//!   `proxy_location`, `verify_ip`, `verify_quality`, `verify_location`, `quality_threshold`,
//!   `max_queries_number`); `direct` uses `upstream_proxy_url` (or `proxy_url`) as is.
//!
//! `config_fingerprint` (an object): fetched from the fingerprint provider with its
//! `antibot_vendor`, `website`, `collection_date_day|month|year` and `additional_data`, unless
//! `fingerprint_enabled` is `0`/`false`. Absent or `null`: no fingerprint.
//!
//! A dead upstream, a provider with nothing to offer or an unset provider URL is an error that
//! says which: the agent should not start its worker on a network it did not get.
//!
//! Once the worker runs, it may ask for another upstream (`switch_proxy`,
//! [`PreparedNetwork::switch_upstream_proxy`]) and for a fresh fingerprint (`fingerprint`,
//! [`PreparedNetwork::fresh_fingerprint`]): docs/worker-protocol.md.

use serde_json::{Map, Value};

use super::forward_proxy::{ForwardProxy, ForwardProxyError};
use crate::clients::{ProviderClients, ProviderError, ProxyRequest};
use crate::inventory::mask_proxy_url;
use crate::inventory::wire::FingerprintQuery;
use crate::roles::Role;
use crate::settings::{ForwardProxySettings, Settings};

/// What an agent needs to prepare its network: the providers to ask and the local proxy's
/// settings.
#[derive(Clone, Default)]
pub struct NetworkDeps {
    pub providers: ProviderClients,
    pub forward_proxy: ForwardProxySettings,
}

impl NetworkDeps {
    /// From `PROXY_PROVIDER_URL`, `FINGERPRINT_PROVIDER_URL`, `ARMADA_TOKEN` and the local
    /// proxy's settings (`armada agent`, `armada workbench`).
    pub fn from_settings(settings: &Settings) -> Result<Self, ProviderError> {
        Ok(Self { providers: ProviderClients::from_settings(settings)?, forward_proxy: settings.forward_proxy.clone() })
    }

    /// For agents inside a server: as [`NetworkDeps::from_settings`], a provider URL that is
    /// not set defaulting to this process when it serves that role (`armada serve`, all roles).
    pub fn in_server(settings: &Settings) -> Result<Self, ProviderError> {
        let proxy = settings.proxy_provider_url.clone().or_else(|| own_url(settings, Role::ProxyProvider));
        let fingerprint =
            settings.fingerprint_provider_url.clone().or_else(|| own_url(settings, Role::FingerprintProvider));
        Ok(Self {
            providers: ProviderClients::new(proxy.as_deref(), fingerprint.as_deref(), settings.token.clone())?,
            forward_proxy: settings.forward_proxy.clone(),
        })
    }
}

/// `http://{listen}` when this process serves `role` on a fixed port (loopback for an
/// unspecified address); `None` otherwise.
pub fn own_url(settings: &Settings, role: Role) -> Option<String> {
    let mut addr = settings.listen;
    if !settings.runs(role) || addr.port() == 0 {
        return None;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Some(format!("http://{addr}"))
}

/// What `prepare_network` set up. Keep it for the agent's lifetime: dropping it stops the
/// local proxy.
#[derive(Debug, Default)]
pub struct PreparedNetwork {
    /// The local proxy's URL (`http://127.0.0.1:8081`) for the worker's browser, if any.
    pub proxy_url: Option<String>,
    /// The fingerprint's data, if one was asked for.
    pub fingerprint: Option<Value>,
    /// The local forwarding proxy, if any.
    pub forward_proxy: Option<ForwardProxy>,
    /// How the upstream was chosen, to choose the next one alike (`switch_upstream_proxy`).
    upstream_source: Option<UpstreamSource>,
    /// The message's `config_fingerprint`: the request `fresh_fingerprint` repeats.
    fingerprint_config: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq)]
enum UpstreamSource {
    Provider(ProxyRequest),
    Direct,
}

/// What `config_proxy` asks for.
#[derive(Debug, Clone, PartialEq)]
enum ProxyPlan {
    None,
    LocalOnly,
    Upstream(UpstreamSource, Option<String>),
}

/// Reads the agent message's `config_proxy` and `config_fingerprint`, gets what they ask for,
/// and starts the local proxy. See the module documentation for the keys.
pub async fn prepare_network(
    agent_message: &Value,
    providers: &ProviderClients,
    settings: &ForwardProxySettings,
) -> Result<PreparedNetwork, String> {
    let mut network = PreparedNetwork {
        fingerprint_config: agent_message.get("config_fingerprint").and_then(Value::as_object).cloned(),
        ..PreparedNetwork::default()
    };
    let plan = proxy_plan(agent_message.get("config_proxy"))?;
    if plan != ProxyPlan::None {
        let (source, upstream) = match plan {
            ProxyPlan::Upstream(UpstreamSource::Provider(request), _) => {
                let fetched = providers.fetch_proxy(&request).await.map_err(|e| format!("no upstream proxy: {e}"))?;
                tracing::info!(upstream = %mask_proxy_url(&fetched.proxy_url), attempt = fetched.attempt, "upstream proxy from the provider");
                (Some(UpstreamSource::Provider(request)), Some(fetched.proxy_url))
            }
            ProxyPlan::Upstream(source, url) => (Some(source), url),
            _ => (None, None),
        };
        let proxy = ForwardProxy::start(settings, upstream.as_deref()).await.map_err(describe)?;
        proxy.check_upstream(settings.upstream_check_timeout).await.map_err(describe)?;
        network.proxy_url = Some(proxy.url());
        network.forward_proxy = Some(proxy);
        network.upstream_source = source;
    }
    if let Some(query) = fingerprint_query(agent_message.get("config_fingerprint"))? {
        let fingerprint = providers.get_fingerprint(&query).await.map_err(|e| format!("no fingerprint: {e}"))?;
        network.fingerprint = Some(fingerprint);
    }
    Ok(network)
}

/// How many times `switch_upstream_proxy` asks the provider before concluding it has no proxy
/// but the current one (the provider picks at random and cannot be told which to avoid).
const SWITCH_TRIES: usize = 20;

impl PreparedNetwork {
    /// Asks the proxy provider for another upstream with the same filters (never the current
    /// one) and sends the local proxy's new connections there; returns the new upstream,
    /// masked. For agents whose upstream came from the provider (a `direct` one has no other
    /// to switch to).
    pub async fn switch_upstream_proxy(&self, providers: &ProviderClients) -> Result<String, String> {
        let Some(proxy) = &self.forward_proxy else {
            return Err("this agent runs without a proxy (config_proxy.upstream_proxy_enabled is 0)".into());
        };
        let request = match &self.upstream_source {
            Some(UpstreamSource::Provider(request)) => request.clone(),
            // A local proxy without an upstream yet: any proxy of the inventory.
            None => ProxyRequest::default(),
            Some(UpstreamSource::Direct) => {
                return Err("the upstream proxy was given directly (upstream_proxy_broker_type: direct); \
                            there is no other to switch to"
                    .into());
            }
        };
        for _ in 0..SWITCH_TRIES {
            let fetched = providers.fetch_proxy(&request).await.map_err(|e| format!("no other upstream proxy: {e}"))?;
            if !proxy.uses_upstream(&fetched.proxy_url) {
                proxy.switch_upstream(Some(&fetched.proxy_url)).map_err(describe)?;
                return Ok(mask_proxy_url(&fetched.proxy_url));
            }
        }
        Err(format!("no other upstream proxy: the proxy provider offered only the current one in {SWITCH_TRIES} tries"))
    }

    /// A fresh fingerprint from the provider: `config` (else the message's
    /// `config_fingerprint`, else any fingerprint) as the request, its `additional_data`
    /// replaced by `additional_data` when given. Asked even when the message disabled the
    /// fingerprint at init (`fingerprint_enabled: 0`): the worker asks for this one explicitly.
    pub async fn fresh_fingerprint(
        &self,
        providers: &ProviderClients,
        config: Option<Map<String, Value>>,
        additional_data: Option<Map<String, Value>>,
    ) -> Result<Value, String> {
        let mut config = config.or_else(|| self.fingerprint_config.clone()).unwrap_or_default();
        config.remove("fingerprint_enabled");
        if let Some(additional_data) = additional_data {
            config.insert("additional_data".into(), Value::Object(additional_data));
        }
        let query = fingerprint_query(Some(&Value::Object(config)))?.unwrap_or_default();
        providers.get_fingerprint(&query).await.map_err(|e| format!("no fingerprint: {e}"))
    }

    /// Stops the local proxy, if any: no new connections are accepted.
    pub fn stop(&self) {
        if let Some(proxy) = &self.forward_proxy {
            proxy.stop();
            tracing::info!(address = %proxy.addr(), "local proxy stopped");
        }
    }
}

fn describe(error: ForwardProxyError) -> String {
    format!("the local proxy cannot start: {error}")
}

fn proxy_plan(config: Option<&Value>) -> Result<ProxyPlan, String> {
    let Some(config) = config.filter(|c| !c.is_null()) else { return Ok(ProxyPlan::None) };
    let config = config.as_object().ok_or_else(|| format!("config_proxy must be an object, not {config}"))?;
    let enabled = match config.get("upstream_proxy_enabled") {
        None | Some(Value::Null) => 0,
        Some(value) => match (value.as_bool(), value.as_u64(), value.as_str().map(str::trim)) {
            (Some(flag), _, _) => u64::from(flag),
            (_, Some(n @ 0..=2), _) => n,
            (_, _, Some(s @ ("0" | "1" | "2"))) => s.parse().unwrap_or_default(),
            _ => return Err(format!("config_proxy.upstream_proxy_enabled must be 0, 1 or 2, not {value}")),
        },
    };
    match enabled {
        0 => return Ok(ProxyPlan::None),
        2 => return Ok(ProxyPlan::LocalOnly),
        _ => {}
    }
    let broker = text(config, "upstream_proxy_broker_type")?.unwrap_or_else(|| "provider".into());
    match broker.to_ascii_lowercase().as_str() {
        "provider" => Ok(ProxyPlan::Upstream(UpstreamSource::Provider(proxy_request(config)?), None)),
        "direct" => {
            let url = match text(config, "upstream_proxy_url")? {
                Some(url) => url,
                None => text(config, "proxy_url")?.ok_or(
                    "config_proxy.upstream_proxy_broker_type is direct but there is no upstream_proxy_url".to_string(),
                )?,
            };
            Ok(ProxyPlan::Upstream(UpstreamSource::Direct, Some(url)))
        }
        other => Err(format!("config_proxy.upstream_proxy_broker_type must be provider or direct, not {other:?}")),
    }
}

/// The provider's filters and checks, from `config_proxy`.
fn proxy_request(config: &Map<String, Value>) -> Result<ProxyRequest, String> {
    Ok(ProxyRequest {
        proxy_provider_name: text(config, "proxy_provider_name")?,
        proxy_rotation_strategy: text(config, "proxy_rotation_strategy")?,
        proxy_type: text(config, "proxy_type")?,
        proxy_location: text(config, "proxy_location")?,
        verify_ip: flag(config, "verify_ip")?,
        verify_quality: flag(config, "verify_quality")?,
        verify_location: flag(config, "verify_location")?,
        quality_threshold: number(config, "quality_threshold")?,
        max_queries_number: number(config, "max_queries_number")?
            .map(|n| u32::try_from(n).map_err(|_| format!("config_proxy.max_queries_number {n} is out of range")))
            .transpose()?,
    })
}

/// `config_fingerprint` as the provider's query; `None` when none is asked for.
fn fingerprint_query(config: Option<&Value>) -> Result<Option<FingerprintQuery>, String> {
    let Some(config) = config.filter(|c| !c.is_null()) else { return Ok(None) };
    let object = config.as_object().ok_or_else(|| format!("config_fingerprint must be an object, not {config}"))?;
    if flag(object, "fingerprint_enabled")? == Some(false) {
        return Ok(None);
    }
    let mut query: FingerprintQuery = serde_json::from_value(config.clone())
        .map_err(|e| format!("config_fingerprint does not describe a fingerprint request: {e}"))?;
    // Empty strings in a merged message mean "any", as empty CSV cells do.
    query.antibot_vendor = query.antibot_vendor.filter(|v| !v.trim().is_empty());
    query.website = query.website.filter(|v| !v.trim().is_empty());
    Ok(Some(query))
}

/// A string, a number (as text), or absent/empty.
fn text(config: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("config_proxy.{key} must be text, not {other}")),
    }
}

/// `0`/`1`, `true`/`false`, `"0"`/`"1"`/`"true"`/`"false"`, or absent/empty.
fn flag(config: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            crate::settings::parse_bool(s).map(Some).ok_or_else(|| format!("{key} must be 0 or 1, not {s:?}"))
        }
        Some(other) => Err(format!("{key} must be 0 or 1, not {other}")),
    }
}

/// A whole number, or its text, or absent/empty.
fn number(config: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| format!("config_proxy.{key} must be a whole number, not {n}"))
        }
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| format!("config_proxy.{key} must be a whole number, not {s:?}"))
        }
        Some(other) => Err(format!("config_proxy.{key} must be a whole number, not {other}")),
    }
}

#[cfg(test)]
mod tests;
