//! PEM files (RFC 7468) read into rustls types: certificate chains, CA bundles and private
//! keys (PKCS#8, PKCS#1, SEC1). Shared by the MQTT client and the TLS servers, so every
//! file error names the setting and the path the same way.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file that could not be used; `what` is the configuration key that named it.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("cannot read {what} {}: {source}", path.display())]
    File {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {} holds no usable {expected}", path.display())]
    Empty {
        what: String,
        path: PathBuf,
        expected: &'static str,
    },
}

fn open(what: &str, path: &Path) -> Result<BufReader<File>, PemError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| PemError::File {
            what: what.to_owned(),
            path: path.to_owned(),
            source,
        })
}

/// Every certificate in the file, in file order (a chain: leaf first); at least one.
pub fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = rustls_pemfile::certs(&mut open(what, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PemError::File {
            what: what.to_owned(),
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(PemError::Empty {
            what: what.to_owned(),
            path: path.to_owned(),
            expected: "PEM certificate",
        });
    }
    Ok(certs)
}

/// The first private key in the file.
pub fn private_key(what: &str, path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    rustls_pemfile::private_key(&mut open(what, path)?)
        .map_err(|source| PemError::File {
            what: what.to_owned(),
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| PemError::Empty {
            what: what.to_owned(),
            path: path.to_owned(),
            expected: "PEM private key",
        })
}
