//! Connections to SQL Server: how to open one (TCP, TLS, login, one redirect), and a small pool
//! of them (a semaphore bounding how many are open, a stack of idle ones).
//!
//! A connection goes back to the pool only when the request that used it finished cleanly
//! ([`Conn::release`]); an error, a timeout or a cancelled request drops it, which closes the
//! socket, and the server rolls back whatever transaction it had open. So a connection in the
//! pool never carries half a response or an open transaction. A connection-level failure
//! (I/O, TLS, protocol) also empties the idle stack: when one connection broke (server restart,
//! failover, network cut) the others usually did too.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tiberius::{AuthMethod, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::infra::db::StoreError;
use crate::settings::{MssqlEncrypt, MssqlSettings};

pub(super) type Client = tiberius::Client<Compat<TcpStream>>;

/// What `SQL_SERVER_ENCRYPT` asks of tiberius.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tls {
    pub level: EncryptionLevel,
    /// Accept any server certificate (`trust_cert()`).
    pub trust_server_certificate: bool,
}

impl Tls {
    pub fn for_setting(encrypt: MssqlEncrypt) -> Self {
        match encrypt {
            // Everything encrypted, the certificate checked against the system's roots and the host.
            MssqlEncrypt::On => Self { level: EncryptionLevel::Required, trust_server_certificate: false },
            // SQL Server encrypts the login packet whatever the client asks; like ADO.NET with
            // Encrypt=false, that login-only TLS does not validate the certificate, and the
            // session continues in clear.
            MssqlEncrypt::Off => Self { level: EncryptionLevel::Off, trust_server_certificate: true },
            MssqlEncrypt::Trust => Self { level: EncryptionLevel::Required, trust_server_certificate: true },
        }
    }
}

/// The tiberius configuration for the settings. `command_timeout` bounds how long the server may
/// stay silent while answering one statement (the connection is discarded after it fires).
pub(super) fn config(settings: &MssqlSettings, command_timeout: Option<Duration>) -> Config {
    let mut config = Config::new();
    config.host(&settings.host);
    config.port(settings.port);
    config.database(&settings.database);
    config.application_name("armada");
    config.authentication(AuthMethod::sql_server(&settings.user, settings.password.expose()));
    let tls = Tls::for_setting(settings.encrypt);
    config.encryption(tls.level);
    if tls.trust_server_certificate {
        config.trust_cert();
    }
    config.handshake_timeout(Some(settings.connect_timeout));
    config.command_timeout(command_timeout);
    config
}

/// True when the connection itself is unusable (as opposed to the server refusing a statement):
/// the request may be retried on a fresh connection.
pub(super) fn is_connection_error(error: &tiberius::error::Error) -> bool {
    use tiberius::error::Error;
    matches!(error, Error::Io { .. } | Error::Protocol(_) | Error::Tls(_) | Error::Routing { .. })
}

/// True when trying again on a fresh connection is likely to work: the connection broke (but
/// not because the server was too slow: repeating a timed-out statement only doubles the wait),
/// or the server rolled our transaction back and asks for a retry (chosen as a deadlock victim,
/// 1205, or a snapshot update conflict, 3960).
pub(super) fn is_retryable(error: &tiberius::error::Error) -> bool {
    let timed_out = matches!(error, tiberius::error::Error::Io { kind: std::io::ErrorKind::TimedOut, .. });
    (is_connection_error(error) && !timed_out) || is_transient(error.code())
}

fn is_transient(server_code: Option<u32>) -> bool {
    matches!(server_code, Some(1205 | 3960))
}

pub(super) struct Pool {
    settings: MssqlSettings,
    config: Config,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    pub fn new(settings: &MssqlSettings) -> Arc<Self> {
        Arc::new(Self {
            config: config(settings, Some(settings.command_timeout)),
            settings: settings.clone(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(settings.pool_size as usize)),
        })
    }

    pub fn describe(&self) -> String {
        self.settings.describe()
    }

    /// A pooled connection: an idle one, or a new one. Waits at most the connect timeout for a
    /// free slot.
    pub async fn get(self: &Arc<Self>) -> Result<Conn, StoreError> {
        let permit = self.permit().await?;
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let client = match idle {
            Some(client) => client,
            None => self.connect(&self.config).await?,
        };
        Ok(Conn { client: Some(client), pool: self.clone(), _permit: permit })
    }

    /// A pooled slot with a brand-new connection: the retry after a connection-level failure.
    pub async fn get_fresh(self: &Arc<Self>) -> Result<Conn, StoreError> {
        let permit = self.permit().await?;
        let client = self.connect(&self.config).await?;
        Ok(Conn { client: Some(client), pool: self.clone(), _permit: permit })
    }

    /// A connection outside the pool with its own command timeout (migrations: an `ALTER` of a
    /// large original table may keep the server silent for minutes).
    pub async fn dedicated(&self, command_timeout: Option<Duration>) -> Result<Client, StoreError> {
        self.connect(&config(&self.settings, command_timeout)).await
    }

    /// Forgets every idle connection (after one of them turned out to be broken).
    pub fn discard_idle(&self) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        let wait = self.settings.connect_timeout;
        match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(StoreError::Unavailable(format!("{}: the connection pool is closed", self.describe()))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "{}: all {} connections stayed busy for {wait:?} (SQL_SERVER_POOL_SIZE)",
                self.describe(),
                self.settings.pool_size
            ))),
        }
    }

    /// TCP connect (bounded by the connect timeout), TLS and login (bounded by the handshake
    /// timeout), following one redirect (Azure SQL's gateway answers with the node to use), then
    /// the session options every statement relies on.
    async fn connect(&self, config: &Config) -> Result<Client, StoreError> {
        let mut config = config.clone();
        let (mut host, mut port) = (self.settings.host.clone(), self.settings.port);
        for _redirect in 0..2 {
            let tcp =
                match tokio::time::timeout(self.settings.connect_timeout, TcpStream::connect((host.as_str(), port)))
                    .await
                {
                    Ok(Ok(tcp)) => tcp,
                    Ok(Err(e)) => return Err(self.unreachable(&host, port, &e.to_string())),
                    Err(_) => {
                        return Err(self.unreachable(
                            &host,
                            port,
                            &format!("no answer within {:?}", self.settings.connect_timeout),
                        ));
                    }
                };
            let _ = tcp.set_nodelay(true);
            match tiberius::Client::connect(config.clone(), tcp.compat_write()).await {
                Ok(mut client) => {
                    // Any error inside a transaction rolls all of it back at once (rather than
                    // leaving a half-applied batch open until we notice).
                    client
                        .simple_query("SET XACT_ABORT ON")
                        .await
                        .map_err(|e| self.failed(&e))?
                        .into_results()
                        .await
                        .map_err(|e| self.failed(&e))?;
                    return Ok(client);
                }
                Err(tiberius::error::Error::Routing { host: next_host, port: next_port }) => {
                    config.host(&next_host);
                    config.port(next_port);
                    (host, port) = (next_host, next_port);
                }
                Err(e) => return Err(self.unreachable(&host, port, &e.to_string())),
            }
        }
        Err(self.unreachable(&host, port, "redirected more than once"))
    }

    fn unreachable(&self, host: &str, port: u16, detail: &str) -> StoreError {
        StoreError::Unavailable(format!(
            "cannot connect to SQL Server at {host}:{port} (database {}): {detail}",
            self.settings.database
        ))
    }

    /// A failed request, as callers see it; the message names the server, never the password.
    pub fn failed(&self, error: &tiberius::error::Error) -> StoreError {
        if is_connection_error(error) {
            self.discard_idle();
        }
        StoreError::Unavailable(format!("{}: {error}", self.describe()))
    }
}

/// A connection taken from the pool. Dropped without [`Conn::release`], it is closed.
pub(super) struct Conn {
    client: Option<Client>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    pub fn client(&mut self) -> &mut Client {
        self.client.as_mut().expect("a connection is present until it is released")
    }

    /// Back to the idle stack: call only after a request that completed cleanly, with no
    /// transaction open.
    pub fn release(mut self) {
        if let Some(client) = self.client.take() {
            self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    pub(crate) fn settings(port: u16) -> MssqlSettings {
        MssqlSettings {
            host: "127.0.0.1".into(),
            port,
            database: "armada".into(),
            user: "sa".into(),
            password: Secret::new("s3cr3t-pw"),
            encrypt: MssqlEncrypt::Trust,
            pool_size: 2,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn encrypt_settings_map_to_tiberius_levels() {
        assert_eq!(
            Tls::for_setting(MssqlEncrypt::On),
            Tls { level: EncryptionLevel::Required, trust_server_certificate: false }
        );
        assert_eq!(
            Tls::for_setting(MssqlEncrypt::Off),
            Tls { level: EncryptionLevel::Off, trust_server_certificate: true }
        );
        assert_eq!(
            Tls::for_setting(MssqlEncrypt::Trust),
            Tls { level: EncryptionLevel::Required, trust_server_certificate: true }
        );
    }

    #[test]
    fn config_carries_address_and_timeouts() {
        let mut s = settings(1444);
        s.host = "db.internal".into();
        let config = config(&s, Some(Duration::from_secs(9)));
        assert_eq!(config.get_addr(), "db.internal:1444");
        assert_eq!(config.get_handshake_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(config.get_command_timeout(), Some(Duration::from_secs(9)));
    }

    #[test]
    fn connection_failures_and_deadlocks_are_retryable_and_refusals_are_not() {
        use tiberius::error::Error;
        assert!(is_retryable(&Error::Io { kind: std::io::ErrorKind::ConnectionReset, message: "reset".into() }));
        assert!(is_retryable(&Error::Protocol("desync".into())));
        let slow = Error::Io { kind: std::io::ErrorKind::TimedOut, message: "no answer".into() };
        assert!(is_connection_error(&slow) && !is_retryable(&slow), "discarded, not repeated");
        assert!(!is_retryable(&Error::Conversion("bad value".into())));
        assert!(is_transient(Some(1205)), "deadlock victim");
        assert!(is_transient(Some(3960)), "snapshot update conflict");
        assert!(!is_transient(Some(547)), "a constraint violation is not retried");
        assert!(!is_transient(None));
    }

    /// Loopback only: a port nobody listens on. The error names the server, never the password.
    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_and_the_error_has_no_password() {
        let port = crate::infra::testing::free_port();
        let pool = Pool::new(&settings(port));
        let Err(err) = pool.get().await else { panic!("nothing listens on {port}") };
        let text = err.to_string();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("armada"), "{text}");
        assert!(!text.contains("s3cr3t-pw"), "{text}");
    }
}
