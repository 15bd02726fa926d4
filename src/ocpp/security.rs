//! OCPP security profiles (OCPP 2.0.1 Security whitepaper / Part 2 §A00, applied to 1.6J
//! as well): which transport and credentials a charger must use, decided at the WebSocket
//! handshake by the pure [`admit`].
//!
//! | profile | transport | charger authenticates with |
//! |---|---|---|
//! | 0 | ws:// or wss:// | nothing (a configured password is still required) |
//! | 1 | ws:// or wss:// | HTTP Basic |
//! | 2 | wss:// (server certificate) | HTTP Basic |
//! | 3 | wss:// with a client certificate | the certificate: subject CN = charge point id |
//!
//! On the TLS port a client certificate whose CN is not the charge point id is refused
//! whatever the profile: a charger must not present another charger's identity.

use std::collections::HashMap;

use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::mapping::charger::ChargerId;
use crate::observe::security::SecurityEvent;

/// An OCPP security profile, 0..=3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Profile(u8);

impl Profile {
    pub const HIGHEST: u8 = 3;

    /// `None` above [`Self::HIGHEST`].
    pub fn new(level: u8) -> Option<Profile> {
        (level <= Self::HIGHEST).then_some(Profile(level))
    }

    pub fn level(self) -> u8 {
        self.0
    }
}

/// The profile of each charger: its own, else the default.
#[derive(Clone, Debug, Default)]
pub struct Profiles {
    pub default: Profile,
    pub chargers: HashMap<ChargerId, Profile>,
}

impl Profiles {
    pub fn of(&self, charger: &str) -> Profile {
        self.chargers.get(charger).copied().unwrap_or(self.default)
    }
}

/// How a connection reached the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// ws://
    Plain,
    /// wss://, with what the client certificate says (rustls has already verified it
    /// against `ocpp.tls.client_ca`).
    Tls(ClientCert),
}

/// The client certificate of a wss:// connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCert {
    /// None was presented (or none asked for: no `client_ca`).
    Absent,
    /// Its subject CN.
    Named(String),
    /// A certificate without a single subject CN.
    Unnamed,
}

impl ClientCert {
    /// From the verified leaf certificate (DER), if the client presented one.
    pub fn from_leaf(leaf: Option<&[u8]>) -> ClientCert {
        match leaf.map(crate::tls::subject_cn) {
            None => ClientCert::Absent,
            Some(Some(cn)) => ClientCert::Named(cn),
            Some(None) => ClientCert::Unnamed,
        }
    }
}

/// Whether HTTP Basic authentication is enforced for the charger: it is whenever the
/// charger has a password, by the password check that follows [`admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basic {
    Enforced,
    NotConfigured,
}

/// Why a handshake was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// ws:// for a charger whose profile needs TLS.
    Downgrade { profile: Profile },
    /// Profile 3 over TLS without a client certificate.
    ClientCertMissing,
    /// The client certificate names someone else (or no one).
    ClientCertMismatch { cn: Option<String> },
    /// Profile 1 or 2 without a password to check.
    NoCredentials { profile: Profile },
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoCredentials { .. } => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        }
    }

    pub fn event(&self) -> SecurityEvent {
        match self {
            Refusal::Downgrade { .. } => SecurityEvent::ProfileDowngrade,
            Refusal::ClientCertMissing => SecurityEvent::ClientCertMissing,
            Refusal::ClientCertMismatch { .. } => SecurityEvent::ClientCertMismatch,
            Refusal::NoCredentials { .. } => SecurityEvent::NoCredentials,
        }
    }

    /// For the log and the HTTP response body; names no secret.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Downgrade { profile } => format!(
                "security profile {} requires TLS (wss://); refused on ws://",
                profile.level()
            ),
            Refusal::ClientCertMissing => {
                "security profile 3 requires a client certificate".to_string()
            }
            Refusal::ClientCertMismatch { cn: Some(cn) } => {
                format!("client certificate CN {cn:?} is not the charge point id")
            }
            Refusal::ClientCertMismatch { cn: None } => {
                "client certificate has no single subject CN".to_string()
            }
            Refusal::NoCredentials { profile } => format!(
                "security profile {} requires HTTP Basic auth but the charger has no password configured",
                profile.level()
            ),
        }
    }
}

/// Decides whether a charger may connect over `transport` with `profile`.
pub fn admit(
    profile: Profile,
    transport: &Transport,
    charger: &str,
    basic: Basic,
) -> Result<(), Refusal> {
    match transport {
        Transport::Tls(ClientCert::Named(cn)) if cn != charger => {
            return Err(Refusal::ClientCertMismatch {
                cn: Some(cn.clone()),
            })
        }
        Transport::Tls(ClientCert::Unnamed) => {
            return Err(Refusal::ClientCertMismatch { cn: None })
        }
        _ => {}
    }
    match (profile.level(), transport) {
        (2.., Transport::Plain) => Err(Refusal::Downgrade { profile }),
        (3, Transport::Tls(ClientCert::Absent)) => Err(Refusal::ClientCertMissing),
        (1 | 2, _) if basic == Basic::NotConfigured => Err(Refusal::NoCredentials { profile }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "CP001";

    fn p(level: u8) -> Profile {
        Profile::new(level).unwrap_or_default()
    }

    fn tls(cn: Option<Option<&str>>) -> Transport {
        Transport::Tls(match cn {
            None => ClientCert::Absent,
            Some(Some(cn)) => ClientCert::Named(cn.to_owned()),
            Some(None) => ClientCert::Unnamed,
        })
    }

    #[test]
    fn profiles_stop_at_three() {
        assert_eq!(Profile::new(3).map(Profile::level), Some(3));
        assert_eq!(Profile::new(4), None);
    }

    #[test]
    fn profile_0_and_1_accept_any_transport() {
        for transport in [Transport::Plain, tls(None), tls(Some(Some(ID)))] {
            assert_eq!(admit(p(0), &transport, ID, Basic::NotConfigured), Ok(()));
            assert_eq!(admit(p(1), &transport, ID, Basic::Enforced), Ok(()));
        }
    }

    #[test]
    fn profiles_1_and_2_need_a_password() {
        for transport in [Transport::Plain, tls(None)] {
            assert_eq!(
                admit(p(1), &transport, ID, Basic::NotConfigured),
                Err(Refusal::NoCredentials { profile: p(1) })
            );
        }
        let refusal = admit(p(2), &tls(None), ID, Basic::NotConfigured);
        assert_eq!(refusal, Err(Refusal::NoCredentials { profile: p(2) }));
        assert_eq!(
            refusal.map_err(|r| r.status()),
            Err(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn profile_2_and_3_refuse_plain_websockets() {
        for level in [2, 3] {
            let refusal = admit(p(level), &Transport::Plain, ID, Basic::Enforced);
            assert_eq!(refusal, Err(Refusal::Downgrade { profile: p(level) }));
            let refusal = refusal.err().unwrap_or(Refusal::ClientCertMissing);
            assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
            assert_eq!(refusal.event(), SecurityEvent::ProfileDowngrade);
        }
        assert_eq!(admit(p(2), &tls(None), ID, Basic::Enforced), Ok(()));
    }

    #[test]
    fn profile_3_needs_a_client_certificate_naming_the_charger() {
        assert_eq!(
            admit(p(3), &tls(None), ID, Basic::Enforced),
            Err(Refusal::ClientCertMissing)
        );
        assert_eq!(
            admit(p(3), &tls(Some(Some(ID))), ID, Basic::NotConfigured),
            Ok(())
        );
        assert_eq!(
            admit(p(3), &tls(Some(Some("CP002"))), ID, Basic::NotConfigured),
            Err(Refusal::ClientCertMismatch {
                cn: Some("CP002".into())
            })
        );
        assert_eq!(
            admit(p(3), &tls(Some(None)), ID, Basic::NotConfigured),
            Err(Refusal::ClientCertMismatch { cn: None })
        );
    }

    #[test]
    fn another_chargers_certificate_is_refused_at_any_profile() {
        for level in 0..=3 {
            assert_eq!(
                admit(p(level), &tls(Some(Some("CP002"))), ID, Basic::Enforced),
                Err(Refusal::ClientCertMismatch {
                    cn: Some("CP002".into())
                }),
                "profile {level}"
            );
        }
    }

    #[test]
    fn the_per_charger_profile_overrides_the_default() {
        let profiles = Profiles {
            default: p(1),
            chargers: HashMap::from([("CP009".to_string(), p(3))]),
        };
        assert_eq!(profiles.of("CP009"), p(3));
        assert_eq!(profiles.of(ID), p(1));
    }

    #[test]
    fn the_client_certificate_is_read_from_the_verified_leaf() {
        let path = crate::tls::tests::data("cp001.crt");
        let cp001 = crate::tls::pem::certificates("test", &path).unwrap_or_default();
        let der = cp001
            .first()
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default();
        assert_eq!(
            ClientCert::from_leaf(Some(&der)),
            ClientCert::Named(ID.into())
        );
        assert_eq!(ClientCert::from_leaf(None), ClientCert::Absent);
        assert_eq!(ClientCert::from_leaf(Some(b"junk")), ClientCert::Unnamed);
    }

    #[test]
    fn reasons_name_no_secret_and_events_are_stable() {
        let refusal = Refusal::Downgrade { profile: p(2) };
        assert!(refusal.reason().contains("wss://"));
        assert_eq!(refusal.event().as_str(), "profile_downgrade");
    }
}
