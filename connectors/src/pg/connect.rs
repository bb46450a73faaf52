//! Connection settings and connecting, the way `psql` users expect: a URL
//! (`--database-url`, `DATABASE_URL`) or libpq's `PG*` variables, with
//! `sslmode` from `disable` to `verify-full` over rustls.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::{PgError, describe};
use super::pool::{Conn, Pool, Session};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS always, certificate unverified unless a root certificate is given.
    Require,
    /// TLS, certificate chain verified, host name not checked.
    VerifyCa,
    /// TLS, certificate chain and host name verified.
    VerifyFull,
}

impl std::str::FromStr for TlsMode {
    type Err = PgError;
    fn from_str(s: &str) -> Result<Self, PgError> {
        Ok(match s {
            "disable" | "allow" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(PgError::Config(format!(
                    "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }
}

/// Where and how to connect. Never prints the password.
#[derive(Clone)]
pub struct PgConfig {
    config: Config,
    tls: TlsMode,
    root_cert: Option<PathBuf>,
    /// Connections kept between jobs, and the cap on open ones (see
    /// [`PgConfig::with_pool`]); shared by every clone.
    pool: Option<Arc<Pool>>,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("target", &self.display())
            .field("tls", &self.tls)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl PgConfig {
    /// Settings from a URL (`postgres://user:pass@host:port/db?sslmode=…`) or a
    /// libpq key/value string, with `PG*` environment variables filling in
    /// whatever it leaves out; from the environment alone when `url` is `None`.
    pub fn from_url_or_env(url: Option<&str>) -> Result<Self, PgError> {
        Self::from_sources(url, None)
    }

    /// [`PgConfig::from_url_or_env`] with the settings a Secrets Manager
    /// secret holds ([`crate::secrets`]) after both: what the URL gives
    /// wins, then the libpq variables (an account's own database: its
    /// endpoint given plainly), then the secret's fields.
    pub fn from_sources(
        url: Option<&str>,
        secret: Option<&crate::secrets::DatabaseSecret>,
    ) -> Result<Self, PgError> {
        let mut tls = None;
        let mut root_cert = None;
        let mut config = match url {
            Some(url) => {
                let (cleaned, mode, root) = split_tls_params(url)?;
                tls = mode;
                root_cert = root;
                cleaned
                    .parse::<Config>()
                    .map_err(|e| PgError::Config(format!("cannot parse the database URL: {e}")))?
            }
            None => Config::new(),
        };
        // Each setting the URL leaves out: the libpq variable, else the secret's field.
        let secret = secret.cloned().unwrap_or_default();
        if config.get_hosts().is_empty() {
            let host = env("PGHOST").or(secret.host);
            config.host(host.unwrap_or_else(|| "localhost".to_string()));
        }
        if config.get_ports().is_empty() {
            match env("PGPORT") {
                Some(port) => {
                    let port = port.parse().map_err(|_| {
                        PgError::Config(format!("PGPORT {port:?} is not a port number"))
                    })?;
                    config.port(port);
                }
                None => {
                    if let Some(port) = secret.port {
                        config.port(port);
                    }
                }
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or(secret.username)
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".to_string());
            config.user(user);
        }
        if config.get_password().is_none()
            && let Some(pw) = env("PGPASSWORD").or(secret.password)
        {
            config.password(pw);
        }
        if config.get_dbname().is_none()
            && let Some(db) = env("PGDATABASE").or(secret.dbname)
        {
            config.dbname(db);
        }
        if config.get_application_name().is_none() {
            config.application_name(env("PGAPPNAME").unwrap_or_else(|| "ferry".to_string()));
        }
        if config.get_connect_timeout().is_none() {
            let secs = env("PGCONNECT_TIMEOUT")
                .and_then(|s| s.parse().ok())
                .unwrap_or(30);
            config.connect_timeout(std::time::Duration::from_secs(secs));
        }
        let tls = match tls {
            Some(t) => t,
            None => env("PGSSLMODE").as_deref().unwrap_or("prefer").parse()?,
        };
        let root_cert = root_cert.or_else(|| env("PGSSLROOTCERT").map(PathBuf::from));
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        if config.get_options().is_none() {
            // ferry's own `IF NOT EXISTS` statements would otherwise log NOTICEs.
            config.options("-c client_min_messages=warning");
        }
        config.keepalives(true);
        Ok(Self {
            config,
            tls,
            root_cert,
            pool: None,
        })
    }

    /// Keeps clean connections open between jobs and opens at most
    /// `max_connections` at once (see [`super::pool`]): for processes that
    /// run many jobs (`ferry watch`, the Lambda handler). Clones share it.
    pub fn with_pool(mut self, max_connections: usize) -> Self {
        self.pool = Some(Pool::new(max_connections));
        self
    }

    /// The pool, when [`PgConfig::with_pool`] set one.
    pub fn pool(&self) -> Option<&Arc<Pool>> {
        self.pool.as_ref()
    }

    /// `n` connections for one job, taken at once: from the pool when there
    /// is one (waiting while the cap is reached; fewer than `n` when the cap
    /// is below it, never none), else new ones. Reused connections take this
    /// configuration's `application_name`.
    pub async fn checkout(&self, n: usize) -> Result<Vec<Conn>, PgError> {
        let Some(pool) = &self.pool else {
            let mut out = Vec::with_capacity(n.max(1));
            for _ in 0..n.max(1) {
                out.push(Conn::unpooled(self.connect().await?));
            }
            return Ok(out);
        };
        let (permits, mut reused) = pool.reserve(n).await;
        let mut out = Vec::with_capacity(permits.len());
        for permit in permits {
            let mut session = None;
            while let Some(s) = reused.pop() {
                let named = match self.application_name() {
                    Some(app) => s.set_application_name(app).await.is_ok(),
                    None => true,
                };
                if named {
                    session = Some(s);
                    break;
                }
            }
            let session = match session {
                Some(s) => s,
                None => Session::new(self.connect().await?),
            };
            out.push(Conn::pooled(session, pool.clone(), permit));
        }
        Ok(out)
    }

    /// The `application_name` the server will show, when set.
    pub fn application_name(&self) -> Option<&str> {
        self.config.get_application_name()
    }

    /// Sets the `application_name` the server shows in `pg_stat_activity`.
    pub fn with_application_name(mut self, name: &str) -> Self {
        self.config.application_name(name);
        self
    }

    /// Whether the server runs on this machine (loopback, `localhost` or a
    /// Unix socket), so it competes with ferry for the same cores.
    pub fn is_local(&self) -> bool {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            Some(Host::Unix(_)) => true,
            None => true,
        }
    }

    /// `user@host:port/db`, for messages and logs (no password).
    pub fn display(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{}:{}/{}",
            self.config.get_user().unwrap_or(""),
            host,
            port,
            self.config
                .get_dbname()
                .or(self.config.get_user())
                .unwrap_or("")
        )
    }

    /// Opens a connection and drives it on the Tokio runtime. A server whose
    /// connection slots are all taken (`too_many_connections`) or that is
    /// starting up is tried again, with growing pauses, for up to the
    /// connect timeout: a burst of jobs queues instead of failing.
    pub async fn connect(&self) -> Result<Client, PgError> {
        let budget = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(std::time::Duration::from_secs(30));
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            match self.connect_once().await {
                Err(PgError::Connect { source, .. })
                    if source
                        .code()
                        .is_some_and(|c| matches!(c.code(), "53300" | "57P03"))
                        && started.elapsed() + pause < budget =>
                {
                    tracing::warn!(target = %self.display(), error = %describe(&source), wait_ms = pause.as_millis() as u64, "PostgreSQL has no connection slot free; waiting");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    async fn connect_once(&self) -> Result<Client, PgError> {
        let fail = |source: tokio_postgres::Error| PgError::Connect {
            target: self.display(),
            detail: describe(&source),
            source,
        };
        if self.tls == TlsMode::Disable {
            let (client, conn) = self.config.connect(NoTls).await.map_err(fail)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "PostgreSQL connection ended");
                }
            });
            return Ok(client);
        }
        let tls = MakeRustlsConnect::new(self.rustls_config()?);
        let (client, conn) = self.config.connect(tls).await.map_err(fail)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    fn rustls_config(&self) -> Result<ClientConfig, PgError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| PgError::Config(format!("TLS setup: {e}")))?;
        let verify = match self.tls {
            TlsMode::VerifyCa | TlsMode::VerifyFull => true,
            // libpq: with a root certificate, `require` verifies the chain.
            TlsMode::Require => self.root_cert.is_some(),
            _ => false,
        };
        if !verify {
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth());
        }
        let roots = Arc::new(self.root_store()?);
        if self.tls == TlsMode::VerifyFull {
            return Ok(builder.with_root_certificates(roots).with_no_client_auth());
        }
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| PgError::Config(format!("TLS setup: {e}")))?;
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
            .with_no_client_auth())
    }

    fn root_store(&self) -> Result<RootCertStore, PgError> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) if path.as_os_str() != "system" => {
                let pem = std::fs::read(path).map_err(|e| {
                    PgError::Config(format!("cannot read sslrootcert {}: {e}", path.display()))
                })?;
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.map_err(|e| {
                        PgError::Config(format!("bad certificate in {}: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        PgError::Config(format!("bad certificate in {}: {e}", path.display()))
                    })?;
                }
            }
            _ => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            return Err(PgError::Config(
                "no root certificates to verify the server with; set sslrootcert or PGSSLROOTCERT"
                    .into(),
            ));
        }
        Ok(roots)
    }
}

/// Pulls `sslmode` and `sslrootcert` out of a URL or key/value string, since
/// the driver only knows disable/prefer/require and ferry handles the rest.
fn split_tls_params(s: &str) -> Result<(String, Option<TlsMode>, Option<PathBuf>), PgError> {
    let mut mode = None;
    let mut root = None;
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let mut url = url::Url::parse(s)
            .map_err(|e| PgError::Config(format!("cannot parse the database URL: {e}")))?;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter_map(|(k, v)| match k.as_ref() {
                "sslmode" => {
                    mode = Some(v.to_string());
                    None
                }
                "sslrootcert" => {
                    root = Some(PathBuf::from(v.as_ref()));
                    None
                }
                _ => Some((k.to_string(), v.to_string())),
            })
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
        let mode = mode.map(|m| m.parse()).transpose()?;
        return Ok((url.to_string(), mode, root));
    }
    let mut kept = Vec::new();
    for token in s.split_whitespace() {
        match token.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => root = Some(PathBuf::from(v)),
            _ => kept.push(token),
        }
    }
    let mode = mode.map(|m| m.parse()).transpose()?;
    Ok((kept.join(" "), mode, root))
}

/// `sslmode=prefer|require` without a root certificate: encrypt, do not verify
/// (what libpq does; verify-ca/verify-full are there for verification).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root; the name may differ.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_fills_what_the_url_leaves_out() {
        // Only what neither the URL nor a PG* variable gives comes from the secret; this test
        // sets no PG* variable, so it holds wherever the variables it checks are unset.
        let secret: crate::secrets::DatabaseSecret = serde_json::from_str(
            r#"{"engine": "postgres", "host": "db.internal", "port": "6432", "username": "ferry",
                "password": "s3cret", "dbname": "warehouse"}"#,
        )
        .unwrap();
        let pg =
            PgConfig::from_sources(Some("postgres://loader@url-host/"), Some(&secret)).unwrap();
        assert!(matches!(pg.config.get_hosts(), [Host::Tcp(h)] if h == "url-host"));
        assert_eq!(pg.config.get_user(), Some("loader"));
        if std::env::var_os("PGPASSWORD").is_none() {
            assert_eq!(pg.config.get_password(), Some(&b"s3cret"[..]));
        }
        // No URL: the secret's server (a URL's host comes with its port).
        let pg = PgConfig::from_sources(None, Some(&secret)).unwrap();
        if std::env::var_os("PGHOST").is_none() {
            assert!(matches!(pg.config.get_hosts(), [Host::Tcp(h)] if h == "db.internal"));
        }
        if std::env::var_os("PGPORT").is_none() {
            assert_eq!(pg.config.get_ports(), [6432]);
        }
        if std::env::var_os("PGUSER").is_none() {
            assert_eq!(pg.config.get_user(), Some("ferry"));
        }
        if std::env::var_os("PGDATABASE").is_none() {
            assert_eq!(pg.config.get_dbname(), Some("warehouse"));
        }
        let bad = serde_json::from_str::<crate::secrets::DatabaseSecret>(r#"{"port": "x"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn strips_tls_params_from_urls() {
        let (url, mode, root) = split_tls_params(
            "postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=/c.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(url, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(mode, Some(TlsMode::VerifyFull));
        assert_eq!(root, Some(PathBuf::from("/c.pem")));
        let (kv, mode, _) = split_tls_params("host=h sslmode=require dbname=d").unwrap();
        assert_eq!(
            (kv.as_str(), mode),
            ("host=h dbname=d", Some(TlsMode::Require))
        );
        assert!(split_tls_params("postgres://h/db?sslmode=bogus").is_err());
    }

    #[test]
    fn local_servers_are_recognised() {
        for (url, local) in [
            ("postgres://u@127.0.0.1:5432/d", true),
            ("postgres://u@localhost/d", true),
            ("postgres://u@[::1]:5432/d", true),
            ("postgres://u@db.example:5432/d", false),
            ("postgres://u@10.0.0.5/d", false),
        ] {
            assert_eq!(
                PgConfig::from_url_or_env(Some(url)).unwrap().is_local(),
                local,
                "{url}"
            );
        }
    }

    #[test]
    fn display_hides_the_password() {
        let c = PgConfig::from_url_or_env(Some("postgres://alice:s3cret@db.example:6543/sales"))
            .unwrap();
        assert_eq!(c.display(), "alice@db.example:6543/sales");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
