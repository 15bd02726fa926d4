//! TLS for the daemon's servers: OCPP security profiles 2 and 3 (OCPP 2.0.1 Security
//! whitepaper / Part 2 §A00, also used for OCPP 1.6J) and IEC 104 over TLS
//! (IEC 62351-3: TLS 1.2 or later, mutual authentication).
//!
//! [`pem`] reads certificate and key files; [`server`] builds rustls server configurations
//! that can be reloaded at run time (SIGHUP); [`client`] those of the daemon's own outgoing
//! connections (MQTT broker, upstream CSMS). The helpers
//! here look at a peer's certificate: its subject common name (the OCPP charge point id of
//! profile 3) and its SHA-256 fingerprint (logged after a reload, compared with IEC 104's
//! list of allowed masters).

pub mod client;
pub mod pem;
pub mod server;

use std::fmt;

pub use pem::PemError;
pub use server::{
    AllowedClients, ClientAuth, Listeners, LoadedTls, ReloadableServerConfig, ServerTlsFiles,
    TlsError, TlsPort,
};

/// SHA-256 of a certificate's DER encoding; shown as lowercase hex, like
/// `openssl x509 -fingerprint -sha256` without the colons.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The subject's common name (X.520 id-at-commonName, OID 2.5.4.3) of a DER certificate.
/// `None` when the certificate does not parse, has no CN, several CNs (ambiguous: which one
/// would be the charge point id?) or one that is not a string.
pub fn subject_cn(der: &[u8]) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut names = certificate.subject().iter_common_name();
    let first = names.next()?;
    if names.next().is_some() {
        return None;
    }
    first.as_str().ok().map(str::to_owned)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A PEM of tests/data/tls (made by its generate.sh).
    pub(crate) fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/tls")
            .join(name)
    }

    fn der(name: &str) -> Vec<u8> {
        pem::certificates("test", &data(name))
            .map(|certs| certs[0].as_ref().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn the_subject_cn_is_read_from_the_certificate() {
        assert_eq!(subject_cn(&der("cp001.crt")).as_deref(), Some("CP001"));
        assert_eq!(subject_cn(&der("server.crt")).as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn no_or_several_cns_or_garbage_give_no_cn() {
        assert_eq!(subject_cn(&der("no-cn.crt")), None);
        assert_eq!(subject_cn(&der("two-cn.crt")), None);
        assert_eq!(subject_cn(b"not a certificate"), None);
        assert_eq!(subject_cn(&[]), None);
    }

    #[test]
    fn fingerprints_are_sha256_in_hex() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            Fingerprint::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
