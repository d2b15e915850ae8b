//! The checks of one proxy: its exit IP (an IP-echo service fetched **through** the proxy),
//! that IP's IPQualityScore fraud score and its geo-IP time zone (both asked directly). Every
//! URL and the timeout come from `ProxyCheckSettings`, so tests point them at local stand-ins.
//!
//! A proxy that fails a check is the proxy's problem ([`CheckFailure`]: try another); a quality
//! or geo-IP service that cannot be reached is the provider's ([`ServiceDown`]: 503). No message
//! ever holds the proxy's password or the IPQS key.

use std::net::IpAddr;
use std::sync::OnceLock;

use serde_json::Value;

use super::params::FetchProxyParams;
use crate::infra::db::StoredProxy;
use crate::inventory::mask_proxy_url;
use crate::inventory::wire::{IpCheck, LocationCheck, QualityCheck};
use crate::settings::{ProxyCheckSettings, Secret};

/// What the checks asked found about one proxy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckReport {
    pub verify_ip: Option<IpCheck>,
    pub verify_quality: Option<QualityCheck>,
    pub verify_location: Option<LocationCheck>,
}

/// The proxy failed `check`; another proxy may pass.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFailure {
    pub check: &'static str,
    pub reason: String,
}

/// A service the checks need is down or refuses us: no other proxy would do better.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDown(pub String);

pub enum Verdict {
    Passed(CheckReport),
    Failed(CheckFailure),
}

pub struct Checker<'a> {
    pub settings: &'a ProxyCheckSettings,
    pub ipqs_key: Option<&'a Secret>,
}

/// One client for the direct calls (IPQS, geo-IP), shared by every request of the process.
fn direct_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| reqwest::Client::builder().no_proxy().build().unwrap_or_default())
}

impl Checker<'_> {
    /// Runs the checks `params` asks for on `proxy`, stopping at the first failure.
    pub async fn check(&self, proxy: &StoredProxy, params: &FetchProxyParams) -> Result<Verdict, ServiceDown> {
        let mut report = CheckReport::default();
        let quality_skipped = params.verify_quality && self.ipqs_key.is_none();
        if quality_skipped {
            report.verify_quality = Some(QualityCheck::Skipped { skipped: "IPQS_KEY is not set".into() });
        }
        let needs_ip = params.verify_ip || (params.verify_quality && !quality_skipped) || params.verify_location;
        if !needs_ip {
            return Ok(Verdict::Passed(report));
        }
        let first_check = if params.verify_ip {
            "verify_ip"
        } else if params.verify_quality && !quality_skipped {
            "verify_quality"
        } else {
            "verify_location"
        };
        let ip = match self.exit_ip(&proxy.proxy_url).await {
            Ok(ip) => ip,
            Err(reason) => return Ok(failed(first_check, scrub(&reason, &proxy.proxy_url))),
        };
        if params.verify_ip {
            report.verify_ip = Some(IpCheck { ip: ip.to_string() });
        }
        if params.verify_quality && !quality_skipped {
            let score = match self.fraud_score(ip).await? {
                Ok(score) => score,
                Err(reason) => return Ok(failed("verify_quality", reason)),
            };
            let inverted = 100 - score;
            let pass = inverted > params.quality_threshold;
            report.verify_quality = Some(QualityCheck::Scored {
                fraud_score_inverted: inverted,
                quality_threshold: params.quality_threshold,
                quality_pass: pass,
            });
            if !pass {
                let reason = format!(
                    "fraud_score_inverted {inverted} of {ip} is not above quality_threshold {}",
                    params.quality_threshold
                );
                return Ok(failed("verify_quality", reason));
            }
        }
        if params.verify_location {
            let expected = params.filter.proxy_location.clone().or_else(|| proxy.proxy_location.clone());
            let Some(expected) = expected.filter(|e| !e.trim().is_empty()) else {
                let reason = "no proxy_location was asked and the proxy has no stored location to compare with";
                return Ok(failed("verify_location", reason.into()));
            };
            let timezone = match self.timezone(ip).await? {
                Ok(timezone) => timezone,
                Err(reason) => return Ok(failed("verify_location", reason)),
            };
            let matched = timezone.to_lowercase().contains(&expected.trim().to_lowercase());
            report.verify_location = Some(LocationCheck {
                actual_timezone: timezone.clone(),
                expected_location: expected.clone(),
                location_match: matched,
            });
            if !matched {
                return Ok(failed("verify_location", format!("{ip} is in {timezone}, not in {expected}")));
            }
        }
        Ok(Verdict::Passed(report))
    }

    /// The exit IP, as the IP-echo service sees it through the proxy.
    async fn exit_ip(&self, proxy_url: &str) -> Result<IpAddr, String> {
        let proxy =
            reqwest::Proxy::all(proxy_url).map_err(|e| format!("the proxy URL is not usable ({})", chain(&e)))?;
        let client = reqwest::Client::builder()
            .proxy(proxy)
            .timeout(self.settings.timeout)
            .connect_timeout(self.settings.timeout)
            .build()
            .map_err(|e| format!("cannot build a client for the proxy ({})", chain(&e)))?;
        let echo = &self.settings.ip_echo_url;
        let response = client
            .get(echo)
            .send()
            .await
            .map_err(|e| format!("the IP echo {echo} could not be reached through the proxy ({})", chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the IP echo {echo} answered {status} through the proxy"));
        }
        let body = response.text().await.map_err(|e| format!("the IP echo's answer was cut ({})", chain(&e)))?;
        let ip = match serde_json::from_str::<Value>(&body) {
            Ok(json) => json.get("ip").and_then(Value::as_str).map(str::to_string),
            Err(_) => Some(body.trim().to_string()),
        };
        ip.and_then(|ip| ip.parse().ok())
            .ok_or_else(|| format!("the IP echo {echo} answered no IP: {}", excerpt(&body)))
    }

    /// IPQualityScore's fraud score (0–100) of `ip`. Outer error: IPQS is unreachable.
    async fn fraud_score(&self, ip: IpAddr) -> Result<Result<i64, String>, ServiceDown> {
        let Some(key) = self.ipqs_key else { return Ok(Err("IPQS_KEY is not set".into())) };
        let key = percent_encoding::utf8_percent_encode(key.expose(), percent_encoding::NON_ALPHANUMERIC);
        let url = format!("{}/{key}/{ip}", self.settings.ipqs_url);
        let answer = self.lookup(&url, "IPQualityScore").await?;
        if answer.get("success").and_then(Value::as_bool) == Some(false) {
            let message = answer.get("message").and_then(Value::as_str).unwrap_or("no reason given");
            return Ok(Err(format!("IPQualityScore refused to score {ip}: {message}")));
        }
        match answer.get("fraud_score").and_then(Value::as_f64) {
            Some(score) if (0.0..=100.0).contains(&score) => Ok(Ok(score.round() as i64)),
            _ => Ok(Err(format!("IPQualityScore gave no fraud_score for {ip}"))),
        }
    }

    /// The geo-IP time zone of `ip`. Outer error: the geo-IP service is unreachable.
    async fn timezone(&self, ip: IpAddr) -> Result<Result<String, String>, ServiceDown> {
        let url = format!("{}/{ip}", self.settings.geoip_url);
        let answer = self.lookup(&url, "the geo-IP service").await?;
        match answer.get("timezone").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            Some(timezone) => Ok(Ok(timezone.to_string())),
            None => {
                let message = answer.get("message").and_then(Value::as_str).unwrap_or("no timezone in the answer");
                Ok(Err(format!("the geo-IP lookup of {ip} failed: {message}")))
            }
        }
    }

    /// GETs a JSON answer directly. The URL is never shown: it may hold the IPQS key.
    async fn lookup(&self, url: &str, service: &str) -> Result<Value, ServiceDown> {
        let response = direct_client()
            .get(url)
            .timeout(self.settings.timeout)
            .send()
            .await
            .map_err(|e| ServiceDown(format!("{service} could not be reached ({})", chain(&e.without_url()))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ServiceDown(format!("{service} answered {status}")));
        }
        response.json::<Value>().await.map_err(|e| {
            ServiceDown(format!("{service} answered something that is not JSON ({})", chain(&e.without_url())))
        })
    }
}

fn failed(check: &'static str, reason: String) -> Verdict {
    Verdict::Failed(CheckFailure { check, reason })
}

/// An error and its causes on one line (`error sending request: connection refused`).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Removes the proxy's password (raw or percent-decoded) from a message, wherever a library
/// may have echoed it.
fn scrub(message: &str, proxy_url: &str) -> String {
    let Ok(url) = reqwest::Url::parse(proxy_url) else { return message.replace(proxy_url, &mask_proxy_url(proxy_url)) };
    let mut text = message.replace(proxy_url, &mask_proxy_url(proxy_url));
    if let Some(password) = url.password().filter(|p| p.len() >= 3) {
        let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy().into_owned();
        text = text.replace(password, "***").replace(&decoded, "***");
    }
    text
}

fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(80) {
        Some((cut, _)) => format!("{:?}…", &trimmed[..cut]),
        None => format!("{trimmed:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_password_in_every_spelling() {
        let url = "http://user:p%40ssword@host:8000";
        let message = "failed http://user:p%40ssword@host:8000 with p@ssword and p%40ssword";
        assert_eq!(scrub(message, url), "failed http://user:***@host:8000 with *** and ***");
    }

    #[test]
    fn excerpts_are_short_and_quoted() {
        assert_eq!(excerpt(" nope "), "\"nope\"");
        assert_eq!(excerpt(&"x".repeat(200)).chars().count(), 80 + 3);
    }
}
