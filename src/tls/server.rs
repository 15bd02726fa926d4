//! rustls server configurations built from the configured PEM files: TLS 1.2 and 1.3 only
//! (IEC 62351-3 and the OCPP security whitepaper both exclude older versions), the `ring`
//! provider, an optional or mandatory client certificate verified against a CA file.
//!
//! [`ReloadableServerConfig`] holds the configuration in force; `reload()` (SIGHUP) reads
//! the files again and swaps it in, so certificates can be renewed without dropping the
//! sessions that are up. A reload that fails keeps the previous configuration.
//! [`handshake`] is the TLS handshake of an accepted connection, shared by the OCPP and
//! IEC 104 servers.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use super::pem::{self, PemError};
use super::Fingerprint;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("{what} {}: {source}", path.display())]
    Certificate {
        what: String,
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("{what} {}: no usable CA certificate: {source}", path.display())]
    ClientCa {
        what: String,
        path: PathBuf,
        source: rustls::server::VerifierBuilderError,
    },
    #[error("{cert} and {key} do not form a usable certificate and key: {source}")]
    CertifiedKey {
        cert: String,
        key: String,
        source: rustls::Error,
    },
}

impl TlsError {
    /// The configuration key that named the file at fault.
    pub fn key(&self) -> &str {
        match self {
            TlsError::Pem(PemError::File { what, .. } | PemError::Empty { what, .. })
            | TlsError::Certificate { what, .. }
            | TlsError::ClientCa { what, .. } => what,
            TlsError::CertifiedKey { key, .. } => key.split(' ').next().unwrap_or_default(),
        }
    }
}

/// Whether and how clients present a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// Asked for and verified against the CA file when presented (OCPP: profile-2 chargers
    /// have none, profile-3 chargers do).
    Optional(PathBuf),
    /// Mandatory and verified against the CA file (IEC 62351-3).
    Required(PathBuf),
}

/// The files of one TLS server; `section` is the configuration table that named them
/// (`ocpp.tls`), so errors point at the key to fix.
#[derive(Clone, Debug)]
pub struct ServerTlsFiles {
    pub section: &'static str,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_auth: ClientAuth,
    /// Client (leaf) certificates allowed; `None` or no files: any that verifies.
    pub allowed_clients: Option<AllowedClients>,
}

/// PEM files of the client certificates allowed, and the key that lists them (for errors).
#[derive(Clone, Debug)]
pub struct AllowedClients {
    pub key: &'static str,
    pub files: Vec<PathBuf>,
}

/// A configuration in force and what was read with it.
#[derive(Debug)]
pub struct LoadedTls {
    pub config: Arc<ServerConfig>,
    /// Of the server's own (leaf) certificate: logged, never the key.
    pub fingerprint: Fingerprint,
    /// Fingerprints of the allowed client certificates; `None`: any that verifies.
    pub allowed_clients: Option<HashSet<Fingerprint>>,
}

impl LoadedTls {
    /// Whether a verified client certificate may connect.
    pub fn allows_client(&self, leaf: &Fingerprint) -> bool {
        self.allowed_clients
            .as_ref()
            .is_none_or(|allowed| allowed.contains(leaf))
    }
}

impl ServerTlsFiles {
    fn key_name(&self, field: &str) -> String {
        format!("{}.{field}", self.section)
    }

    /// Reads every file and builds the configuration.
    pub fn load(&self) -> Result<LoadedTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert_key = self.key_name("cert");
        let key_key = self.key_name("key");
        let chain = pem::certificates(&cert_key, &self.cert)?;
        let key = pem::private_key(&key_key, &self.key)?;
        let fingerprint = Fingerprint::of(chain[0].as_ref());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|source| TlsError::Certificate {
                what: cert_key.clone(),
                path: self.cert.clone(),
                source,
            })?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(ca) => {
                builder.with_client_cert_verifier(self.verifier(ca, true, &provider)?)
            }
            ClientAuth::Required(ca) => {
                builder.with_client_cert_verifier(self.verifier(ca, false, &provider)?)
            }
        };
        let config =
            builder
                .with_single_cert(chain, key)
                .map_err(|source| TlsError::CertifiedKey {
                    cert: format!("{cert_key} {}", self.cert.display()),
                    key: format!("{key_key} {}", self.key.display()),
                    source,
                })?;
        let allowed_clients = match &self.allowed_clients {
            Some(allowed) if !allowed.files.is_empty() => {
                let mut fingerprints = HashSet::new();
                for path in &allowed.files {
                    let certs = pem::certificates(allowed.key, path)?;
                    fingerprints.insert(Fingerprint::of(certs[0].as_ref()));
                }
                Some(fingerprints)
            }
            _ => None,
        };
        Ok(LoadedTls {
            config: Arc::new(config),
            fingerprint,
            allowed_clients,
        })
    }

    fn verifier(
        &self,
        ca: &std::path::Path,
        optional: bool,
        provider: &Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let what = match &self.client_auth {
            ClientAuth::Optional(_) => self.key_name("client_ca"),
            _ => self.key_name("ca"),
        };
        let mut roots = RootCertStore::empty();
        for cert in pem::certificates(&what, ca)? {
            roots.add(cert).map_err(|source| TlsError::Certificate {
                what: what.clone(),
                path: ca.to_owned(),
                source,
            })?;
        }
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|source| TlsError::ClientCa {
            what,
            path: ca.to_owned(),
            source,
        })
    }
}

/// A server configuration that SIGHUP can replace while connections are up: a handshake
/// takes the configuration in force when it starts.
#[derive(Debug)]
pub struct ReloadableServerConfig {
    files: ServerTlsFiles,
    current: RwLock<Arc<LoadedTls>>,
}

impl ReloadableServerConfig {
    /// Reads the files once; an error stops the start with the file's name.
    pub fn new(files: ServerTlsFiles) -> Result<Self, TlsError> {
        let loaded = files.load()?;
        Ok(Self {
            files,
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    pub fn section(&self) -> &'static str {
        self.files.section
    }

    pub fn current(&self) -> Arc<LoadedTls> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the files again. On success the new configuration serves every later
    /// handshake; on failure the previous one stays. The outcome is logged either way.
    pub fn reload(&self) -> Result<Fingerprint, TlsError> {
        match self.files.load() {
            Ok(loaded) => {
                let fingerprint = loaded.fingerprint;
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(loaded);
                info!(section = self.files.section, certificate_sha256 = %fingerprint, "TLS configuration reloaded");
                Ok(fingerprint)
            }
            Err(error) => {
                warn!(section = self.files.section, %error, "TLS configuration not reloaded; the previous one stays in force");
                Err(error)
            }
        }
    }

    /// Runs the server side of a TLS handshake with the configuration in force. The
    /// returned [`LoadedTls`] is the one the handshake used (for its client allowlist).
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, Arc<LoadedTls>)> {
        let loaded = self.current();
        let acceptor = tokio_rustls::TlsAcceptor::from(loaded.config.clone());
        let stream = acceptor.accept(stream).await?;
        Ok((stream, loaded))
    }
}

/// The TLS handshake of a connection accepted on `service`'s TLS port, until `deadline`.
/// `None` when it did not complete: a failure is a security event (`tls_handshake_failed`:
/// no or untrusted client certificate, plain text, no common version), except a peer that
/// leaves without a word (a load balancer's or port scanner's probe: debug log) and a
/// timeout (info log).
pub async fn handshake(
    tls: &ReloadableServerConfig,
    stream: TcpStream,
    deadline: tokio::time::Instant,
    metrics: &crate::observe::Metrics,
    service: &'static str,
    peer: SocketAddr,
) -> Option<(TlsStream<TcpStream>, Arc<LoadedTls>)> {
    match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
        Ok(Ok(accepted)) => Some(accepted),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            debug!(%peer, service, "connection closed during the TLS handshake");
            None
        }
        Ok(Err(error)) => {
            crate::observe::security::report(
                metrics,
                crate::observe::SecurityEvent::TlsHandshakeFailed,
                service,
                peer,
                None,
                format_args!("TLS handshake failed: {error}"),
            );
            None
        }
        Err(_) => {
            info!(%peer, service, "TLS handshake timed out");
            None
        }
    }
}

/// The client's verified leaf certificate, if it presented one.
pub fn client_leaf(stream: &TlsStream<TcpStream>) -> Option<&[u8]> {
    let (_, connection) = stream.get_ref();
    connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.as_ref())
}

/// The sockets of one service: plain and/or TLS (`plain`, `tls.enabled` of its section).
pub struct Listeners {
    pub plain: Option<TcpListener>,
    pub tls: Option<(TcpListener, Arc<ReloadableServerConfig>)>,
}

impl From<TcpListener> for Listeners {
    fn from(plain: TcpListener) -> Self {
        Listeners {
            plain: Some(plain),
            tls: None,
        }
    }
}

/// Which listener of [`Listeners::split`] is the TLS port, and its configuration.
#[derive(Clone)]
pub struct TlsPort(Option<(usize, Arc<ReloadableServerConfig>)>);

impl TlsPort {
    /// The TLS configuration if the listener at `index` is the TLS port.
    pub fn for_listener(&self, index: usize) -> Option<Arc<ReloadableServerConfig>> {
        self.0
            .as_ref()
            .filter(|(tls_index, _)| *tls_index == index)
            .map(|(_, config)| config.clone())
    }
}

impl Listeners {
    /// The sockets for [`crate::net::accept_loop_on`], and which of them is the TLS port.
    pub fn split(self) -> (Vec<TcpListener>, TlsPort) {
        let mut listeners: Vec<TcpListener> = self.plain.into_iter().collect();
        let tls = self.tls.map(|(listener, config)| {
            listeners.push(listener);
            (listeners.len() - 1, config)
        });
        (listeners, TlsPort(tls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::tests::data;

    fn files(client_auth: ClientAuth) -> ServerTlsFiles {
        ServerTlsFiles {
            section: "test.tls",
            cert: data("server.crt"),
            key: data("server.key"),
            client_auth,
            allowed_clients: None,
        }
    }

    fn error(files: ServerTlsFiles) -> TlsError {
        match files.load() {
            Ok(_) => panic!("{files:?} loaded"),
            Err(error) => error,
        }
    }

    #[test]
    fn a_certificate_and_its_key_load_with_every_client_auth() {
        for auth in [
            ClientAuth::None,
            ClientAuth::Optional(data("ca.crt")),
            ClientAuth::Required(data("ca.crt")),
        ] {
            let loaded = files(auth.clone()).load();
            assert!(loaded.is_ok(), "{auth:?}: {loaded:?}");
        }
    }

    #[test]
    fn errors_name_the_key_and_the_file() {
        let missing = error(ServerTlsFiles {
            cert: "/nonexistent/server.crt".into(),
            ..files(ClientAuth::None)
        });
        assert_eq!(missing.key(), "test.tls.cert");
        assert!(
            missing.to_string().contains("/nonexistent/server.crt"),
            "{missing}"
        );
        let no_key = error(ServerTlsFiles {
            key: data("server.crt"),
            ..files(ClientAuth::None)
        });
        assert_eq!(no_key.key(), "test.tls.key");
        assert!(
            no_key.to_string().contains("no usable PEM private key"),
            "{no_key}"
        );
        let wrong_key = error(ServerTlsFiles {
            key: data("other.key"),
            ..files(ClientAuth::None)
        });
        assert_eq!(wrong_key.key(), "test.tls.key");
        let not_a_ca = error(files(ClientAuth::Required(data("server.key"))));
        assert_eq!(not_a_ca.key(), "test.tls.ca");
        let not_a_client_ca = error(files(ClientAuth::Optional(data("server.key"))));
        assert_eq!(not_a_client_ca.key(), "test.tls.client_ca");
    }

    #[test]
    fn allowed_clients_are_compared_by_fingerprint() {
        let loaded = ServerTlsFiles {
            allowed_clients: Some(AllowedClients {
                key: "test.tls.allowed",
                files: vec![data("cp001.crt")],
            }),
            ..files(ClientAuth::Required(data("ca.crt")))
        }
        .load();
        let Ok(loaded) = loaded else {
            panic!("{loaded:?}");
        };
        let cp001 = pem::certificates("t", &data("cp001.crt")).unwrap_or_default();
        let other = pem::certificates("t", &data("two-cn.crt")).unwrap_or_default();
        assert!(loaded.allows_client(&Fingerprint::of(cp001[0].as_ref())));
        assert!(!loaded.allows_client(&Fingerprint::of(other[0].as_ref())));
        let any = files(ClientAuth::Required(data("ca.crt"))).load();
        assert!(any.is_ok_and(|any| any.allows_client(&Fingerprint::of(other[0].as_ref()))));
    }

    #[test]
    fn a_failed_reload_keeps_the_configuration_in_force() {
        let dir = std::env::temp_dir().join(format!("ocpp809-tls-reload-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        let copy = |from: &str, to: &std::path::Path| std::fs::copy(data(from), to).map(drop);
        assert!(copy("server.crt", &cert).is_ok() && copy("server.key", &key).is_ok());
        let reloadable = ReloadableServerConfig::new(ServerTlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ..files(ClientAuth::None)
        });
        let Ok(reloadable) = reloadable else {
            panic!("{reloadable:?}");
        };
        let before = reloadable.current();
        // A certificate whose key does not match: refused, the old configuration stays.
        assert!(copy("cp001.crt", &cert).is_ok());
        assert!(reloadable.reload().is_err());
        assert!(Arc::ptr_eq(&before, &reloadable.current()));
        // The matching key arrives: the new certificate is in force.
        assert!(copy("cp001.key", &key).is_ok());
        let cp001 = pem::certificates("t", &data("cp001.crt")).unwrap_or_default();
        assert_eq!(
            reloadable.reload().ok(),
            Some(Fingerprint::of(cp001[0].as_ref()))
        );
        assert_eq!(
            reloadable.current().fingerprint,
            Fingerprint::of(cp001[0].as_ref())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
