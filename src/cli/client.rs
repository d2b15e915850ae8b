//! The HTTP client of the operator's commands (`launch`, `runs`, `outputs`): which server and
//! token, calls whose failures become messages a person can act on, and the two errors that
//! pick an exit code besides 1: [`ServerUnreachable`] (3) and a missing or refused token (2).

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ConfigError;
use crate::clients::HttpBackend;
use crate::settings::{Secret, Vars};

/// Where the commands look for the server when neither `--server` nor `ARMADA_SERVER` says.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Reads answer quickly; an upload may be large and its start may launch many agents.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Armada server (the orchestrator and backend roles), e.g. http://127.0.0.1:8080.
    /// Default: ARMADA_SERVER, else http://127.0.0.1:8080. The token, when the server needs one,
    /// comes from ARMADA_TOKEN (the environment, or .env in the working directory).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

/// Nothing answered at the server's address: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach the server at {url}: {reason}; is `armada serve` running there? Start it, or point to it with \
     --server URL (or ARMADA_SERVER)"
)]
pub struct ServerUnreachable {
    pub url: String,
    pub reason: String,
}

/// The server answered with an error status; `detail` is its `{"detail"}`.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ServerError {
    pub status: StatusCode,
    pub detail: String,
}

/// A client of one server, with its token.
#[derive(Clone)]
pub struct ApiClient {
    base_url: String,
    token: Option<Secret>,
    http: reqwest::Client,
}

impl ApiClient {
    /// From `--server`, else `ARMADA_SERVER`, else the default; the token from `ARMADA_TOKEN`.
    /// Both variables may also come from `.env` in the working directory, as for `armada serve`.
    pub fn from_args(args: &ServerArgs) -> anyhow::Result<Self> {
        let cwd =
            std::env::current_dir().map_err(|e| ConfigError(format!("cannot read the working directory: {e}")))?;
        let vars = Vars::load(&cwd)?;
        let server = match &args.server {
            Some(url) => url.clone(),
            None => vars.get("ARMADA_SERVER").unwrap_or(DEFAULT_SERVER).to_owned(),
        };
        Self::new(&server, vars.get("ARMADA_TOKEN").map(Secret::new))
    }

    pub fn new(server: &str, token: Option<Secret>) -> anyhow::Result<Self> {
        let base_url = server.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| ConfigError(format!("--server {server:?} is not a URL ({e}); expected http://HOST:PORT")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(
                ConfigError(format!("--server {server:?}: expected http://HOST:PORT or https://HOST:PORT")).into()
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // The server is named explicitly; a proxy meant for the internet must not catch it.
            .no_proxy()
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Self { base_url, token, http })
    }

    /// `http://127.0.0.1:8080`, no trailing slash; shown to the user, so never holds the token.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `--server URL` when it is not the default: what to append to a command shown as a hint.
    pub fn server_flag(&self) -> String {
        if self.base_url == DEFAULT_SERVER { String::new() } else { format!(" --server {}", self.base_url) }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base_url)).timeout(READ_TIMEOUT);
        match &self.token {
            Some(token) => builder.bearer_auth(token.expose()),
            None => builder,
        }
    }

    /// The backend's live stream (`WS /ws/events`) and its other calls, with this token.
    pub fn backend(&self) -> anyhow::Result<HttpBackend> {
        HttpBackend::new(&self.base_url, self.token.clone()).context("cannot set up the live stream client")
    }

    /// Sends; a connection failure is [`ServerUnreachable`], an error status a [`ServerError`]
    /// (401 a configuration error saying what to do about the token).
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        let detail = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
            .or_else(|| Some(String::from_utf8_lossy(&body).trim().to_owned()).filter(|text| !text.is_empty()))
            .unwrap_or_else(|| status.to_string());
        if status == StatusCode::UNAUTHORIZED {
            return Err(ConfigError(match self.token {
                None => {
                    format!("this server requires a token: set ARMADA_TOKEN ({} answered: {detail})", self.base_url)
                }
                Some(_) => format!("the server at {} refused the token in ARMADA_TOKEN: {detail}", self.base_url),
            })
            .into());
        }
        Err(ServerError { status, detail }.into())
    }

    /// GET and decode the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.decode(self.send(self.request(Method::GET, path)).await?, path).await
    }

    /// GET, with `None` for a 404.
    pub async fn get_optional<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Option<T>> {
        match self.send(self.request(Method::GET, path)).await {
            Ok(response) => self.decode(response, path).await.map(Some),
            Err(error) if is_status(&error, StatusCode::NOT_FOUND) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Sends `method path` without a body and decodes the JSON answer.
    pub async fn call<T: DeserializeOwned>(&self, method: Method, path: &str) -> anyhow::Result<T> {
        self.decode(self.send(self.request(method, path)).await?, path).await
    }

    pub async fn decode<T: DeserializeOwned>(&self, response: Response, path: &str) -> anyhow::Result<T> {
        let body = response.bytes().await.map_err(|e| self.transport_error(e))?;
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "{}{path} answered something that is not what armada expects (is it an Armada server?)",
                self.base_url
            )
        })
    }

    /// Waits until the server answers HTTP at all (`GET /health`, whatever its status), trying
    /// again while nothing listens: `armada serve` may have been started a moment ago.
    pub async fn wait_until_up(&self, within: Duration, mut on_wait: impl FnMut()) -> Result<(), ServerUnreachable> {
        let deadline = tokio::time::Instant::now() + within;
        let mut told = false;
        loop {
            let probe = self.http.get(format!("{}/health", self.base_url)).timeout(Duration::from_secs(5));
            let error = match probe.send().await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(self.unreachable(&error));
            }
            if !told {
                told = true;
                on_wait();
            }
            tokio::time::sleep(Duration::from_millis(200).min(deadline - now)).await;
        }
    }

    fn transport_error(&self, error: reqwest::Error) -> anyhow::Error {
        if error.is_connect() || error.is_timeout() {
            self.unreachable(&error).into()
        } else {
            anyhow::Error::new(error).context(format!("the request to {} failed", self.base_url))
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> ServerUnreachable {
        ServerUnreachable { url: self.base_url.clone(), reason: error_chain(error) }
    }
}

/// True when `error` is the server's answer with this status.
pub fn is_status(error: &anyhow::Error, status: StatusCode) -> bool {
    error.downcast_ref::<ServerError>().is_some_and(|e| e.status == status)
}

/// The root cause (`Connection refused (os error 111)`): reqwest's own layers add only noise.
fn error_chain(error: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = error;
    while let Some(cause) = last.source() {
        last = cause;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_must_be_an_http_url() {
        let client = ApiClient::new("http://127.0.0.1:9000/", None).expect("valid");
        assert_eq!(client.base_url(), "http://127.0.0.1:9000");
        assert_eq!(client.server_flag(), " --server http://127.0.0.1:9000");
        assert_eq!(ApiClient::new(DEFAULT_SERVER, None).expect("valid").server_flag(), "");
        for bad in ["127.0.0.1:8080", "ftp://host", "not a url"] {
            let error = ApiClient::new(bad, None).err().expect("refused");
            assert!(error.is::<ConfigError>(), "{bad}: {error}");
        }
    }
}
