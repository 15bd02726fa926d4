//! rustls client configurations for the daemon's outgoing TLS connections — the MQTT broker
//! (`mqtts://`) and upstream CSMSs (`wss://`, OCPP security profiles 2 and 3): the `ring`
//! provider, rustls' safe default protocol versions, the configured CA file or else the
//! system roots, and an optional client certificate for mutual TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use super::pem::{certificates, private_key, PemError};

#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("no trusted CA certificates: the system has none and {section}.ca_file is not set")]
    NoRoots { section: &'static str },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration of `section` (`mqtt`, `upstream`), whose keys `ca_file`,
/// `client_cert` and `client_key` name the files (errors name the key).
pub fn client_config(
    section: &'static str,
    ca_file: Option<&Path>,
    client_cert: Option<&Path>,
    client_key: Option<&Path>,
) -> Result<ClientConfig, ClientTlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            roots.add_parsable_certificates(certificates(&format!("{section}.ca_file"), path)?);
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::debug!(%error, "system CA certificate skipped");
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(ClientTlsError::NoRoots { section });
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    let config = match (client_cert, client_key) {
        (Some(cert), Some(key)) => builder.with_client_auth_cert(
            certificates(&format!("{section}.client_cert"), cert)?,
            private_key(&format!("{section}.client_key"), key)?,
        )?,
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}
