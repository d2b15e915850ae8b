//! The one place where flags, environment variables and a `.env` file become a typed `Settings`.
//!
//! Precedence: command-line flag > real environment > `.env` in the working directory > default.
//! Every variable is listed, with its default and meaning, in `config/.env.example`.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::roles::Role;

/// A value that must never appear in logs, `Debug` output or listings.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is handed to the engine that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The variables Armada reads: the real environment over the `.env` file.
#[derive(Clone, Default)]
pub struct Vars(HashMap<String, String>);

impl fmt::Debug for Vars {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vars({} variables)", self.0.len())
    }
}

impl Vars {
    /// `.env` in `dir` (if any) with the real environment on top.
    pub fn load(dir: &Path) -> Result<Self, SettingsError> {
        let mut vars = HashMap::new();
        let path = dir.join(".env");
        if path.exists() {
            let iter = dotenvy::from_path_iter(&path)
                .map_err(|e| SettingsError::EnvFile { path: path.clone(), message: e.to_string() })?;
            for item in iter {
                let (key, value) =
                    item.map_err(|e| SettingsError::EnvFile { path: path.clone(), message: e.to_string() })?;
                vars.insert(key, value);
            }
        }
        vars.extend(std::env::vars());
        Ok(Self(vars))
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// A set, non-empty variable.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| SettingsError::Invalid {
                key: key.to_string(),
                value: raw.to_string(),
                message: e.to_string(),
            }),
        }
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, SettingsError> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => parse_bool(raw).ok_or_else(|| SettingsError::Invalid {
                key: key.to_string(),
                value: raw.to_string(),
                message: "expected 1/0/true/false/yes/no".into(),
            }),
        }
    }
}

/// `1`/`true`/`yes`/`on` and `0`/`false`/`no`/`off`, any case.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{key}={value:?} is not valid: {message}")]
    Invalid { key: String, value: String, message: String },
    #[error("cannot read {}: {message}", path.display())]
    EnvFile { path: PathBuf, message: String },
    /// A setting that is needed by what was asked for is not set, or names what is not built.
    #[error("{key}: {message}")]
    Unusable { key: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where runs, jobs, events, outputs and the inventories are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseSettings {
    /// Embedded default: one SQLite file.
    Sqlite { path: PathBuf },
    /// Microsoft SQL Server, from `SQL_SERVER_*` or `ARMADA_DATABASE_URL=mssql://…`.
    Mssql(MssqlSettings),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MssqlSettings {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Secret,
    /// `SQL_SERVER_ENCRYPT` (or `?encrypt=` in the URL).
    pub encrypt: MssqlEncrypt,
    /// `SQL_SERVER_POOL_SIZE` (or `?pool_size=`): most connections open at once.
    pub pool_size: u32,
    /// `SQL_SERVER_CONNECT_TIMEOUT_SECS` (or `?connect_timeout=`): TCP connect, TLS and login,
    /// and the longest wait for a free pooled connection.
    pub connect_timeout: Duration,
    /// `SQL_SERVER_COMMAND_TIMEOUT_SECS` (or `?command_timeout=`): the longest the server may
    /// stay silent while answering one statement; the connection is then discarded.
    pub command_timeout: Duration,
}

/// TLS to SQL Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MssqlEncrypt {
    /// Encrypt everything and verify the server's certificate against the system's trust store
    /// (and its name against the host). The default.
    #[default]
    On,
    /// Encrypt only the login packet (SQL Server always does), everything after it in clear.
    Off,
    /// Encrypt everything but accept any server certificate (self-signed development servers,
    /// the `mcr.microsoft.com/mssql/server` image). No protection against a man in the middle.
    Trust,
}

impl MssqlEncrypt {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Trust => "trust",
        }
    }
}

impl MssqlSettings {
    pub const DEFAULT_PORT: u16 = 1433;
    pub const DEFAULT_POOL_SIZE: u32 = 10;
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

    /// Host, port and database: what logs and errors may say (never the user's password).
    pub fn describe(&self) -> String {
        format!("mssql://{}:{}/{}", self.host, self.port, self.database)
    }
}

impl DatabaseSettings {
    /// What the logs may say about the database: host and database name, never the password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite:{}", path.display()),
            Self::Mssql(m) => m.describe(),
        }
    }
}

/// Where agent messages live between the orchestrator and the agents.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigStoreSettings {
    InProcess,
    Redis { url: Secret, host: String, port: u16 },
}

/// The job broker.
#[derive(Debug, Clone, PartialEq)]
pub enum BrokerSettings {
    InProcess,
    Amqp { url: Secret },
}

/// `ARMADA_KUBE_PENDING_TIMEOUT_SECS` unset: five minutes, long enough for a slow image pull or
/// a cluster autoscaler, short enough that a run whose agents cannot start says so.
pub const DEFAULT_KUBE_PENDING_TIMEOUT: Duration = Duration::from_secs(300);

/// How agents are started.
#[derive(Debug, Clone, PartialEq)]
pub enum LauncherSettings {
    /// Agents as tasks of the server process, each supervising its worker process.
    InProcess,
    /// `PLATFORM=local`: child `armada agent` processes.
    Process,
    /// `PLATFORM=distant`: a Kubernetes Indexed Job per run.
    Kube {
        distrib: Distrib,
        namespace: String,
        /// `ARMADA_KUBE_PENDING_TIMEOUT_SECS` (default 300): how long an agent's pod may stay
        /// stuck (image pull, container creation) or missing before the agent counts as failed.
        pending_timeout: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distrib {
    Kube,
    Minikube,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Roles this process serves; empty means all of them.
    pub roles: Vec<Role>,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub database: DatabaseSettings,
    pub config_store: ConfigStoreSettings,
    pub broker: BrokerSettings,
    pub launcher: LauncherSettings,
    /// `ARMADA_TOKEN`: when set, every `/api`, `/bot`, `/ws` route requires it.
    pub token: Option<Secret>,
    /// `ARMADA_CORS_ORIGINS`: origins allowed cross-origin; empty = none.
    pub cors_origins: Vec<String>,
    /// `ARMADA_MAX_BODY_BYTES`: cap on JSON request bodies.
    pub max_body_bytes: usize,
    /// `ARMADA_MAX_UPLOAD_BYTES`: cap on a whole `POST /bot/start` upload.
    pub max_upload_bytes: usize,
    /// `ARMADA_WS_QUEUE`: messages a WebSocket client may lag behind before it is dropped.
    pub ws_queue: usize,
    /// `ARMADA_WS_HEARTBEAT_SECS`: ping interval; a client silent for two intervals is dropped.
    pub ws_heartbeat: Duration,
    /// `ARMADA_RUN_KEYS_TTL_SECS`: how long a finished run's agent messages and bundle stay in
    /// the config store (agents still starting may need them; then they expire).
    pub run_keys_ttl: Duration,
    /// `ARMADA_WORK_DIR`: where in-process agents make their working directories
    /// (`{work_dir}/{run_id}/agent-{i}`).
    pub work_dir: PathBuf,
    pub backend_url: Option<String>,
    pub orchestrator_url: Option<String>,
    /// `ARMADA_FORWARD_TIMEOUT_SECS`: how long the frontend waits for a forwarded request's
    /// response head (the request body included) before answering 504.
    pub forward_timeout: Duration,
    pub proxy_provider_url: Option<String>,
    pub fingerprint_provider_url: Option<String>,
    pub docker_hub_username: Option<String>,
    pub ipqs_key: Option<Secret>,
    /// The proxy provider's checks: the services it asks and how long it waits.
    pub proxy_checks: ProxyCheckSettings,
    /// The agent's local forwarding proxy.
    pub forward_proxy: ForwardProxySettings,
    /// Everything read, for the parts (agent, providers) that read their own variables.
    pub vars: Vars,
}

/// Where the proxy provider's checks look, each a setting so tests (and operators) can point
/// them elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyCheckSettings {
    /// `ARMADA_IP_ECHO_URL`: fetched through the proxy; answers the exit IP (`{"ip": …}` or text).
    pub ip_echo_url: String,
    /// `ARMADA_IPQS_URL`: IPQualityScore's IP API; asked `{url}/{IPQS_KEY}/{ip}`.
    pub ipqs_url: String,
    /// `ARMADA_GEOIP_URL`: a geo-IP API in ip-api.com's shape; asked `{url}/{ip}`, answers `timezone`.
    pub geoip_url: String,
    /// `ARMADA_PROVIDER_CHECK_TIMEOUT_SECS`: the longest one check request may take.
    pub timeout: Duration,
}

impl ProxyCheckSettings {
    pub const DEFAULT_IP_ECHO_URL: &str = "https://api.ipify.org?format=json";
    pub const DEFAULT_IPQS_URL: &str = "https://ipqualityscore.com/api/json/ip";
    pub const DEFAULT_GEOIP_URL: &str = "http://ip-api.com/json";
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    fn from_vars(vars: &Vars) -> Result<Self, SettingsError> {
        Ok(Self {
            ip_echo_url: http_url(vars, "ARMADA_IP_ECHO_URL", Self::DEFAULT_IP_ECHO_URL)?,
            ipqs_url: http_url(vars, "ARMADA_IPQS_URL", Self::DEFAULT_IPQS_URL)?.trim_end_matches('/').to_string(),
            geoip_url: http_url(vars, "ARMADA_GEOIP_URL", Self::DEFAULT_GEOIP_URL)?.trim_end_matches('/').to_string(),
            timeout: seconds(vars, "ARMADA_PROVIDER_CHECK_TIMEOUT_SECS", Self::DEFAULT_TIMEOUT)?,
        })
    }
}

/// The agent's local forwarding proxy: the port it tries first, and how many after it when
/// several agents share a host.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardProxySettings {
    /// `ARMADA_FORWARD_PROXY_PORT` (8081, the original's); 0 = any free port.
    pub port: u16,
    /// `ARMADA_FORWARD_PROXY_PORTS`: ports tried from `port` on before giving up.
    pub ports_to_try: u16,
    /// `ARMADA_UPSTREAM_CHECK_TIMEOUT_SECS`: how long the agent waits for its upstream proxy at init.
    pub upstream_check_timeout: Duration,
}

impl Default for ForwardProxySettings {
    /// The defaults of the variables: 8081, 100 ports, 10 s.
    fn default() -> Self {
        Self { port: 8081, ports_to_try: 100, upstream_check_timeout: Duration::from_secs(10) }
    }
}

impl ForwardProxySettings {
    fn from_vars(vars: &Vars) -> Result<Self, SettingsError> {
        Ok(Self {
            port: vars.parse("ARMADA_FORWARD_PROXY_PORT", 8081)?,
            ports_to_try: vars.parse("ARMADA_FORWARD_PROXY_PORTS", 100u16)?.max(1),
            upstream_check_timeout: seconds(vars, "ARMADA_UPSTREAM_CHECK_TIMEOUT_SECS", Duration::from_secs(10))?,
        })
    }
}

/// An `http(s)://` URL setting.
fn http_url(vars: &Vars, key: &str, default: &str) -> Result<String, SettingsError> {
    let Some(raw) = vars.get(key) else { return Ok(default.to_string()) };
    match reqwest::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(raw.to_string()),
        Ok(_) => Err(SettingsError::Invalid {
            key: key.into(),
            value: redact_url(raw),
            message: "expected an http:// or https:// URL".into(),
        }),
        Err(e) => Err(SettingsError::Invalid { key: key.into(), value: redact_url(raw), message: e.to_string() }),
    }
}

/// A duration in seconds, fractions allowed (`0.5`), more than zero and at most a day.
fn seconds(vars: &Vars, key: &str, default: Duration) -> Result<Duration, SettingsError> {
    let secs: f64 = vars.parse(key, default.as_secs_f64())?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(SettingsError::Invalid {
            key: key.into(),
            value: secs.to_string(),
            message: "expected a number of seconds above 0 and at most 86400".into(),
        });
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Default port of a role when it runs alone (the seed's ports).
pub fn default_port(roles: &[Role]) -> u16 {
    match roles {
        [only] => only.default_port(),
        _ => 8080,
    }
}

impl Settings {
    /// Settings from variables, with the roles and listen address chosen on the command line.
    pub fn from_vars(vars: Vars, roles: Vec<Role>, listen: Option<SocketAddr>) -> Result<Self, SettingsError> {
        let listen = match listen {
            Some(addr) => addr,
            None => match vars.get("ARMADA_LISTEN") {
                Some(raw) => vars.parse("ARMADA_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8080))).map_err(|_| {
                    SettingsError::Invalid {
                        key: "ARMADA_LISTEN".into(),
                        value: raw.into(),
                        message: "expected HOST:PORT, e.g. 127.0.0.1:8080".into(),
                    }
                })?,
                None => SocketAddr::from(([127, 0, 0, 1], default_port(&roles))),
            },
        };
        let log_format = match vars.get("ARMADA_LOG_FORMAT") {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(SettingsError::Invalid {
                    key: "ARMADA_LOG_FORMAT".into(),
                    value: other.into(),
                    message: "expected text or json".into(),
                });
            }
        };
        Ok(Self {
            roles,
            listen,
            log_format,
            database: database_settings(&vars)?,
            config_store: config_store_settings(&vars)?,
            broker: match vars.get("RABBITMQ_URL") {
                Some(url) => BrokerSettings::Amqp { url: Secret::new(url) },
                None => BrokerSettings::InProcess,
            },
            launcher: launcher_settings(&vars)?,
            token: vars.get("ARMADA_TOKEN").map(Secret::new),
            cors_origins: vars
                .get("ARMADA_CORS_ORIGINS")
                .map(|raw| raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
                .unwrap_or_default(),
            max_body_bytes: vars.parse("ARMADA_MAX_BODY_BYTES", 2 * 1024 * 1024)?,
            max_upload_bytes: vars.parse("ARMADA_MAX_UPLOAD_BYTES", 64 * 1024 * 1024)?,
            ws_queue: vars.parse("ARMADA_WS_QUEUE", 1024)?.max(1),
            ws_heartbeat: Duration::from_secs(vars.parse("ARMADA_WS_HEARTBEAT_SECS", 20u64)?.max(1)),
            run_keys_ttl: Duration::from_secs(vars.parse("ARMADA_RUN_KEYS_TTL_SECS", 3600u64)?.max(1)),
            work_dir: PathBuf::from(vars.get("ARMADA_WORK_DIR").unwrap_or("./armada-work")),
            backend_url: vars.get("BACKEND_URL").map(trim_slash),
            orchestrator_url: vars.get("ORCHESTRATOR_URL").map(trim_slash),
            forward_timeout: seconds(&vars, "ARMADA_FORWARD_TIMEOUT_SECS", Duration::from_secs(60))?,
            proxy_provider_url: vars.get("PROXY_PROVIDER_URL").map(trim_slash),
            fingerprint_provider_url: vars.get("FINGERPRINT_PROVIDER_URL").map(trim_slash),
            docker_hub_username: vars.get("DOCKER_HUB_USERNAME").map(String::from),
            ipqs_key: vars.get("IPQS_KEY").map(Secret::new),
            proxy_checks: ProxyCheckSettings::from_vars(&vars)?,
            forward_proxy: ForwardProxySettings::from_vars(&vars)?,
            vars,
        })
    }

    /// Embedded defaults everywhere, for tests and tools: SQLite at `db_path`, all roles.
    pub fn embedded(db_path: &Path) -> Self {
        let mut vars = Vars::default();
        vars.set("ARMADA_DATABASE_URL", format!("sqlite:{}", db_path.display()));
        Self::from_vars(vars, Vec::new(), Some(SocketAddr::from(([127, 0, 0, 1], 0))))
            .expect("embedded defaults are valid")
    }

    /// The roles this process serves (all of them when none were named).
    pub fn enabled_roles(&self) -> Vec<Role> {
        if self.roles.is_empty() { Role::ALL.to_vec() } else { self.roles.clone() }
    }

    pub fn runs(&self, role: Role) -> bool {
        self.roles.is_empty() || self.roles.contains(&role)
    }
}

fn trim_slash(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

fn database_settings(vars: &Vars) -> Result<DatabaseSettings, SettingsError> {
    if let Some(url) = vars.get("ARMADA_DATABASE_URL") {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            return Ok(DatabaseSettings::Sqlite {
                path: PathBuf::from(if path.is_empty() { "armada.db" } else { path }),
            });
        }
        if url.starts_with("mssql://") || url.starts_with("sqlserver://") {
            return parse_mssql_url(url).map(DatabaseSettings::Mssql);
        }
        if !url.contains("://") {
            return Ok(DatabaseSettings::Sqlite { path: PathBuf::from(url) });
        }
        return Err(SettingsError::Invalid {
            key: "ARMADA_DATABASE_URL".into(),
            value: redact_url(url),
            message: "expected sqlite:PATH, a file path, or mssql://USER:PASSWORD@HOST[:PORT]/DATABASE".into(),
        });
    }
    if let Some(host) = vars.get("SQL_SERVER_NAME") {
        let missing: Vec<&str> = ["SQL_SERVER_DB", "SQL_SERVER_USER", "SQL_SERVER_PASSWORD"]
            .into_iter()
            .filter(|k| vars.get(k).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(SettingsError::Invalid {
                key: "SQL_SERVER_NAME".into(),
                value: host.into(),
                message: format!("SQL Server also needs {}", missing.join(", ")),
            });
        }
        let (host, port) = split_host_port(host, MssqlSettings::DEFAULT_PORT);
        return Ok(DatabaseSettings::Mssql(MssqlSettings {
            host,
            port: vars.parse("SQL_SERVER_PORT", port)?,
            database: vars.get("SQL_SERVER_DB").unwrap_or_default().to_string(),
            user: vars.get("SQL_SERVER_USER").unwrap_or_default().to_string(),
            password: Secret::new(vars.get("SQL_SERVER_PASSWORD").unwrap_or_default()),
            encrypt: mssql_encrypt("SQL_SERVER_ENCRYPT", vars.get("SQL_SERVER_ENCRYPT"))?,
            pool_size: mssql_pool_size("SQL_SERVER_POOL_SIZE", vars.get("SQL_SERVER_POOL_SIZE"))?,
            connect_timeout: mssql_seconds(
                "SQL_SERVER_CONNECT_TIMEOUT_SECS",
                vars.get("SQL_SERVER_CONNECT_TIMEOUT_SECS"),
                MssqlSettings::DEFAULT_CONNECT_TIMEOUT,
            )?,
            command_timeout: mssql_seconds(
                "SQL_SERVER_COMMAND_TIMEOUT_SECS",
                vars.get("SQL_SERVER_COMMAND_TIMEOUT_SECS"),
                MssqlSettings::DEFAULT_COMMAND_TIMEOUT,
            )?,
        }));
    }
    Ok(DatabaseSettings::Sqlite { path: PathBuf::from("armada.db") })
}

fn mssql_encrypt(key: &str, raw: Option<&str>) -> Result<MssqlEncrypt, SettingsError> {
    match raw.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("on" | "true" | "yes") => Ok(MssqlEncrypt::On),
        Some("off" | "false" | "no") => Ok(MssqlEncrypt::Off),
        Some("trust") => Ok(MssqlEncrypt::Trust),
        Some(other) => Err(SettingsError::Invalid {
            key: key.into(),
            value: other.into(),
            message: "expected on (encrypt, verify the certificate), off (encrypt the login only) or trust \
                      (encrypt, accept any certificate)"
                .into(),
        }),
    }
}

fn mssql_pool_size(key: &str, raw: Option<&str>) -> Result<u32, SettingsError> {
    let Some(raw) = raw else { return Ok(MssqlSettings::DEFAULT_POOL_SIZE) };
    match raw.trim().parse::<u32>() {
        Ok(size @ 1..=1000) => Ok(size),
        _ => Err(SettingsError::Invalid {
            key: key.into(),
            value: raw.into(),
            message: "expected a number of connections from 1 to 1000".into(),
        }),
    }
}

fn mssql_seconds(key: &str, raw: Option<&str>, default: Duration) -> Result<Duration, SettingsError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<u64>() {
        Ok(secs @ 1..=3600) => Ok(Duration::from_secs(secs)),
        _ => Err(SettingsError::Invalid {
            key: key.into(),
            value: raw.into(),
            message: "expected a number of seconds from 1 to 3600".into(),
        }),
    }
}

fn parse_mssql_url(url: &str) -> Result<MssqlSettings, SettingsError> {
    let invalid = |message: &str| SettingsError::Invalid {
        key: "ARMADA_DATABASE_URL".into(),
        value: redact_url(url),
        message: message.into(),
    };
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (auth, hostpart) = rest.rsplit_once('@').ok_or_else(|| invalid("missing USER:PASSWORD@"))?;
    let (user, password) = auth.split_once(':').ok_or_else(|| invalid("missing :PASSWORD"))?;
    let (hostport, database) = hostpart.split_once('/').ok_or_else(|| invalid("missing /DATABASE"))?;
    if database.is_empty() {
        return Err(invalid("missing /DATABASE"));
    }
    let (host, port) = split_host_port(hostport, MssqlSettings::DEFAULT_PORT);
    let option = |name: &str| {
        query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| percent_decode(v)))
    };
    let key = |name: &str| format!("ARMADA_DATABASE_URL (?{name}=)");
    Ok(MssqlSettings {
        host,
        port,
        database: percent_decode(database),
        user: percent_decode(user),
        password: Secret::new(percent_decode(password)),
        encrypt: mssql_encrypt(&key("encrypt"), option("encrypt").as_deref())?,
        pool_size: mssql_pool_size(&key("pool_size"), option("pool_size").as_deref())?,
        connect_timeout: mssql_seconds(
            &key("connect_timeout"),
            option("connect_timeout").as_deref(),
            MssqlSettings::DEFAULT_CONNECT_TIMEOUT,
        )?,
        command_timeout: mssql_seconds(
            &key("command_timeout"),
            option("command_timeout").as_deref(),
            MssqlSettings::DEFAULT_COMMAND_TIMEOUT,
        )?,
    })
}

fn split_host_port(raw: &str, default: u16) -> (String, u16) {
    // SQL Server names are often `host,port` (ADO style) or `host:port`.
    for sep in [',', ':'] {
        if let Some((host, port)) = raw.rsplit_once(sep)
            && let Ok(port) = port.trim().parse()
        {
            return (host.trim().to_string(), port);
        }
    }
    (raw.to_string(), default)
}

fn percent_decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// A URL with its password replaced by `***`, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or(userinfo);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_string(),
    }
}

fn config_store_settings(vars: &Vars) -> Result<ConfigStoreSettings, SettingsError> {
    if let Some(url) = vars.get("REDIS_URL") {
        let authority = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let authority = authority.split('/').next().unwrap_or_default();
        let hostport = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
        let (host, port) = split_host_port(hostport, 6379);
        return Ok(ConfigStoreSettings::Redis { url: Secret::new(url), host, port });
    }
    match (vars.get("REDIS_HOST"), vars.get("REDIS_PORT")) {
        (None, None) => Ok(ConfigStoreSettings::InProcess),
        (host, _) => {
            let host = host.unwrap_or("127.0.0.1").to_string();
            let port: u16 = vars.parse("REDIS_PORT", 6379)?;
            let url = match vars.get("REDIS_PASSWORD") {
                Some(pw) => format!("redis://:{pw}@{host}:{port}"),
                None => format!("redis://{host}:{port}"),
            };
            Ok(ConfigStoreSettings::Redis { url: Secret::new(url), host, port })
        }
    }
}

fn launcher_settings(vars: &Vars) -> Result<LauncherSettings, SettingsError> {
    let distrib = match vars.get("DISTRIB").map(str::to_ascii_lowercase).as_deref() {
        None | Some("kube") => Distrib::Kube,
        Some("minikube") => Distrib::Minikube,
        Some(other) => {
            return Err(SettingsError::Invalid {
                key: "DISTRIB".into(),
                value: other.into(),
                message: "expected kube or minikube".into(),
            });
        }
    };
    match vars.get("PLATFORM").map(str::to_ascii_lowercase).as_deref() {
        None | Some("embedded") | Some("in-process") => Ok(LauncherSettings::InProcess),
        Some("local") => Ok(LauncherSettings::Process),
        Some("distant") => Ok(LauncherSettings::Kube {
            distrib,
            namespace: vars.get("ARMADA_KUBE_NAMESPACE").unwrap_or("default").to_string(),
            pending_timeout: seconds(vars, "ARMADA_KUBE_PENDING_TIMEOUT_SECS", DEFAULT_KUBE_PENDING_TIMEOUT)?,
        }),
        Some(other) => Err(SettingsError::Invalid {
            key: "PLATFORM".into(),
            value: other.into(),
            message: "expected local (agent processes) or distant (Kubernetes); unset = in-process agents".into(),
        }),
    }
}

/// Reads a boolean setting; exposed for the roles that own their own variables.
pub fn flag(vars: &Vars, key: &str, default: bool) -> Result<bool, SettingsError> {
    vars.flag(key, default)
}

/// Reads a parsed setting with a default; exposed for the roles that own their own variables.
pub fn parse_var<T: std::str::FromStr>(vars: &Vars, key: &str, default: T) -> Result<T, SettingsError>
where
    T::Err: fmt::Display,
{
    vars.parse(key, default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_vars(Vars::from_pairs(pairs.iter().copied()), Vec::new(), None).expect("valid settings")
    }

    #[test]
    fn defaults_are_embedded_and_loopback() {
        let s = settings(&[]);
        assert_eq!(s.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(s.database, DatabaseSettings::Sqlite { path: PathBuf::from("armada.db") });
        assert_eq!(s.config_store, ConfigStoreSettings::InProcess);
        assert_eq!(s.broker, BrokerSettings::InProcess);
        assert_eq!(s.launcher, LauncherSettings::InProcess);
        assert!(s.token.is_none());
        assert_eq!(s.run_keys_ttl, Duration::from_secs(3600));
        assert_eq!(s.work_dir, PathBuf::from("./armada-work"));
    }

    #[test]
    fn single_role_defaults_to_its_seed_port() {
        let s = Settings::from_vars(Vars::default(), vec![Role::Backend], None).expect("valid");
        assert_eq!(s.listen.port(), 8000);
        let s = Settings::from_vars(Vars::default(), vec![Role::ProxyProvider], None).expect("valid");
        assert_eq!(s.listen.port(), 5001);
        let s = Settings::from_vars(Vars::default(), vec![Role::FingerprintProvider], None).expect("valid");
        assert_eq!(s.listen.port(), 5005);
        let s = Settings::from_vars(Vars::default(), vec![Role::Backend, Role::Orchestrator], None).expect("valid");
        assert_eq!(s.listen.port(), 8080);
    }

    #[test]
    fn seed_names_pick_distributed_engines() {
        let s = settings(&[
            ("REDIS_HOST", "10.0.0.5"),
            ("REDIS_PORT", "6380"),
            ("RABBITMQ_URL", "amqp://guest:guest@10.0.0.6:5672/%2f"),
            ("PLATFORM", "distant"),
            ("DISTRIB", "minikube"),
        ]);
        assert!(
            matches!(s.config_store, ConfigStoreSettings::Redis { ref host, port: 6380, .. } if host == "10.0.0.5")
        );
        assert!(matches!(s.broker, BrokerSettings::Amqp { .. }));
        assert_eq!(
            s.launcher,
            LauncherSettings::Kube {
                distrib: Distrib::Minikube,
                namespace: "default".into(),
                pending_timeout: DEFAULT_KUBE_PENDING_TIMEOUT
            }
        );
        assert_eq!(settings(&[("PLATFORM", "local")]).launcher, LauncherSettings::Process);
    }

    #[test]
    fn the_kube_pending_timeout_is_seconds_above_zero() {
        let s = settings(&[("PLATFORM", "distant"), ("ARMADA_KUBE_PENDING_TIMEOUT_SECS", "2.5")]);
        assert!(
            matches!(s.launcher, LauncherSettings::Kube { pending_timeout, .. } if pending_timeout == Duration::from_millis(2500)),
            "{:?}",
            s.launcher
        );
        for value in ["0", "-1", "soon"] {
            let vars = Vars::from_pairs([("PLATFORM", "distant"), ("ARMADA_KUBE_PENDING_TIMEOUT_SECS", value)]);
            let err = Settings::from_vars(vars, Vec::new(), None).unwrap_err();
            assert!(err.to_string().starts_with("ARMADA_KUBE_PENDING_TIMEOUT_SECS"), "{value}: {err}");
        }
    }

    #[test]
    fn sql_server_variables_select_mssql_and_password_is_redacted() {
        let s = settings(&[
            ("SQL_SERVER_NAME", "db.internal,1444"),
            ("SQL_SERVER_DB", "armada"),
            ("SQL_SERVER_USER", "sa"),
            ("SQL_SERVER_PASSWORD", "hunter2"),
        ]);
        let DatabaseSettings::Mssql(m) = &s.database else { panic!("expected mssql") };
        assert_eq!((m.host.as_str(), m.port, m.database.as_str()), ("db.internal", 1444, "armada"));
        assert_eq!(m.password.expose(), "hunter2");
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2"), "password leaked in Debug: {debug}");
        assert_eq!(s.database.describe(), "mssql://db.internal:1444/armada");
    }

    #[test]
    fn partial_sql_server_variables_are_an_error_naming_what_is_missing() {
        let err = Settings::from_vars(Vars::from_pairs([("SQL_SERVER_NAME", "db")]), Vec::new(), None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("SQL_SERVER_DB") && text.contains("SQL_SERVER_PASSWORD"), "{text}");
    }

    #[test]
    fn mssql_url_parses_and_redacts() {
        let s = settings(&[("ARMADA_DATABASE_URL", "mssql://sa:p%40ss@db:1433/armada?encrypt=trust")]);
        let DatabaseSettings::Mssql(m) = &s.database else { panic!("expected mssql") };
        assert_eq!(m.password.expose(), "p@ss");
        assert_eq!(m.encrypt, MssqlEncrypt::Trust);
        assert_eq!(redact_url("amqp://guest:secret@host:5672/%2f"), "amqp://guest:***@host:5672/%2f");
    }

    #[test]
    fn sql_server_defaults_are_verified_tls_and_the_documented_pool_and_timeouts() {
        let s = settings(&[
            ("SQL_SERVER_NAME", "db"),
            ("SQL_SERVER_DB", "armada"),
            ("SQL_SERVER_USER", "sa"),
            ("SQL_SERVER_PASSWORD", "pw"),
        ]);
        let DatabaseSettings::Mssql(m) = &s.database else { panic!("expected mssql") };
        assert_eq!((m.host.as_str(), m.port), ("db", 1433));
        assert_eq!(m.encrypt, MssqlEncrypt::On);
        assert_eq!(m.pool_size, MssqlSettings::DEFAULT_POOL_SIZE);
        assert_eq!((m.connect_timeout, m.command_timeout), (Duration::from_secs(15), Duration::from_secs(30)));
    }

    #[test]
    fn sql_server_encrypt_pool_and_timeouts_are_read_from_variables_and_url() {
        let s = settings(&[
            ("SQL_SERVER_NAME", "db:1500"),
            ("SQL_SERVER_DB", "armada"),
            ("SQL_SERVER_USER", "sa"),
            ("SQL_SERVER_PASSWORD", "pw"),
            ("SQL_SERVER_ENCRYPT", "OFF"),
            ("SQL_SERVER_POOL_SIZE", "4"),
            ("SQL_SERVER_CONNECT_TIMEOUT_SECS", "3"),
            ("SQL_SERVER_COMMAND_TIMEOUT_SECS", "60"),
        ]);
        let DatabaseSettings::Mssql(m) = &s.database else { panic!("expected mssql") };
        assert_eq!((m.port, m.encrypt, m.pool_size), (1500, MssqlEncrypt::Off, 4));
        assert_eq!((m.connect_timeout, m.command_timeout), (Duration::from_secs(3), Duration::from_secs(60)));

        let url = "sqlserver://sa:pw@db/armada_test?encrypt=trust&pool_size=2&connect_timeout=5&command_timeout=7";
        let s = settings(&[("ARMADA_DATABASE_URL", url)]);
        let DatabaseSettings::Mssql(m) = &s.database else { panic!("expected mssql") };
        assert_eq!((m.database.as_str(), m.encrypt, m.pool_size), ("armada_test", MssqlEncrypt::Trust, 2));
        assert_eq!((m.connect_timeout, m.command_timeout), (Duration::from_secs(5), Duration::from_secs(7)));
    }

    #[test]
    fn bad_sql_server_options_name_the_variable_and_never_the_password() {
        let base = [
            ("SQL_SERVER_NAME", "db"),
            ("SQL_SERVER_DB", "armada"),
            ("SQL_SERVER_USER", "sa"),
            ("SQL_SERVER_PASSWORD", "s3cr3t-pw"),
        ];
        for (key, value) in [
            ("SQL_SERVER_ENCRYPT", "maybe"),
            ("SQL_SERVER_POOL_SIZE", "0"),
            ("SQL_SERVER_CONNECT_TIMEOUT_SECS", "soon"),
            ("SQL_SERVER_PORT", "http"),
        ] {
            let vars = Vars::from_pairs(base.iter().copied().chain([(key, value)]));
            let err = Settings::from_vars(vars, Vec::new(), None).unwrap_err().to_string();
            assert!(err.starts_with(key), "{err}");
            assert!(!err.contains("s3cr3t-pw"), "password leaked: {err}");
        }
        for url in
            ["mssql://sa:s3cr3t-pw@db:1433", "mssql://sa:s3cr3t-pw@db/armada?encrypt=maybe", "ftp://sa:s3cr3t-pw@h/x"]
        {
            let vars = Vars::from_pairs([("ARMADA_DATABASE_URL", url)]);
            let err = Settings::from_vars(vars, Vec::new(), None).unwrap_err().to_string();
            assert!(err.starts_with("ARMADA_DATABASE_URL"), "{err}");
            assert!(!err.contains("s3cr3t-pw"), "password leaked: {err}");
        }
    }

    #[test]
    fn sql_server_password_never_in_debug_or_describe() {
        for pairs in [
            vec![
                ("SQL_SERVER_NAME", "db"),
                ("SQL_SERVER_DB", "armada"),
                ("SQL_SERVER_USER", "sa"),
                ("SQL_SERVER_PASSWORD", "s3cr3t-pw"),
            ],
            vec![("ARMADA_DATABASE_URL", "mssql://sa:s3cr3t-pw@db:1433/armada?encrypt=trust")],
        ] {
            let s = settings(&pairs);
            for text in [format!("{s:?}"), format!("{:?}", s.database), s.database.describe()] {
                assert!(!text.contains("s3cr3t-pw"), "password leaked: {text}");
            }
            assert_eq!(s.database.describe(), "mssql://db:1433/armada");
        }
    }

    #[test]
    fn token_and_secrets_never_in_debug() {
        let s =
            settings(&[("ARMADA_TOKEN", "tok-123"), ("IPQS_KEY", "ipqs-456"), ("REDIS_URL", "redis://:pw-789@h:6379")]);
        let debug = format!("{s:?}");
        for secret in ["tok-123", "ipqs-456", "pw-789"] {
            assert!(!debug.contains(secret), "{secret} leaked in Debug: {debug}");
        }
    }

    #[test]
    fn provider_checks_default_to_the_public_services_and_take_local_stand_ins() {
        let s = settings(&[]);
        assert_eq!(s.proxy_checks.ip_echo_url, "https://api.ipify.org?format=json");
        assert_eq!(s.proxy_checks.timeout, Duration::from_secs(10));
        assert_eq!((s.forward_proxy.port, s.forward_proxy.ports_to_try), (8081, 100));
        let s = settings(&[
            ("ARMADA_IP_ECHO_URL", "http://127.0.0.1:9000/ip"),
            ("ARMADA_IPQS_URL", "http://127.0.0.1:9001/ipqs/"),
            ("ARMADA_GEOIP_URL", "http://127.0.0.1:9002/json"),
            ("ARMADA_PROVIDER_CHECK_TIMEOUT_SECS", "0.5"),
            ("ARMADA_FORWARD_PROXY_PORT", "0"),
        ]);
        assert_eq!(s.proxy_checks.ipqs_url, "http://127.0.0.1:9001/ipqs", "no trailing slash");
        assert_eq!(s.proxy_checks.timeout, Duration::from_millis(500));
        assert_eq!(s.forward_proxy.port, 0);
        for (key, value) in [
            ("ARMADA_IP_ECHO_URL", "ftp://x"),
            ("ARMADA_GEOIP_URL", "not a url"),
            ("ARMADA_PROVIDER_CHECK_TIMEOUT_SECS", "0"),
            ("ARMADA_PROVIDER_CHECK_TIMEOUT_SECS", "soon"),
            ("ARMADA_FORWARD_PROXY_PORT", "70000"),
        ] {
            let err = Settings::from_vars(Vars::from_pairs([(key, value)]), Vec::new(), None).unwrap_err();
            assert!(err.to_string().starts_with(key), "{err}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Settings::from_vars(Vars::from_pairs([("PLATFORM", "mars")]), Vec::new(), None).unwrap_err();
        assert!(err.to_string().starts_with("PLATFORM=\"mars\""), "{err}");
        let err = Settings::from_vars(Vars::from_pairs([("ARMADA_WS_QUEUE", "lots")]), Vec::new(), None).unwrap_err();
        assert!(err.to_string().contains("ARMADA_WS_QUEUE"), "{err}");
    }
}
