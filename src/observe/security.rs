//! Security events (issue 9): refused authentications, protocol downgrades, rejected
//! certificates and chargers over their message rate on the OCPP and IEC 104 servers. Each is one log line on the target
//! `ocpp809::security` with the stable fields `event`, `service`, `peer` and `id` (the
//! charge point id, or `-`), so a SIEM can match on them, and one count in
//! `ocpp809_security_events_total{event=...}`. Passwords and keys never reach either.

use std::fmt::Display;

use tracing::warn;

use super::Metrics;

/// The log target of every security event.
pub const TARGET: &str = "ocpp809::security";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityEvent {
    /// HTTP Basic credentials missing or wrong (profiles 1 and 2).
    AuthFailed,
    /// Repeated Basic failures: the (address, id) is refused for the throttle window.
    AuthThrottled,
    /// A charger connected with less security than its profile requires (ws:// for 2/3).
    ProfileDowngrade,
    /// A profile-3 charger presented no client certificate.
    ClientCertMissing,
    /// A client certificate's subject CN is not the charge point id.
    ClientCertMismatch,
    /// The charger's profile requires Basic auth but it has no password configured.
    NoCredentials,
    /// A TLS handshake failed: no or untrusted client certificate, plain text on the TLS
    /// port, no common protocol version or cipher.
    TlsHandshakeFailed,
    /// An IEC 104 master's certificate verified but is not in `iec104.tls.allowed_masters`.
    MasterCertNotAllowed,
    /// An IEC 104 master's address is not in `iec104.allowed_masters`.
    MasterAddressNotAllowed,
    /// A charger sends faster than `ocpp.max_messages_per_s` (once per episode).
    MessageRateLimit,
}

impl SecurityEvent {
    pub const ALL: [SecurityEvent; 10] = [
        SecurityEvent::AuthFailed,
        SecurityEvent::AuthThrottled,
        SecurityEvent::ProfileDowngrade,
        SecurityEvent::ClientCertMissing,
        SecurityEvent::ClientCertMismatch,
        SecurityEvent::NoCredentials,
        SecurityEvent::TlsHandshakeFailed,
        SecurityEvent::MasterCertNotAllowed,
        SecurityEvent::MasterAddressNotAllowed,
        SecurityEvent::MessageRateLimit,
    ];

    /// The `event` field and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEvent::AuthFailed => "auth_failed",
            SecurityEvent::AuthThrottled => "auth_throttled",
            SecurityEvent::ProfileDowngrade => "profile_downgrade",
            SecurityEvent::ClientCertMissing => "client_cert_missing",
            SecurityEvent::ClientCertMismatch => "client_cert_mismatch",
            SecurityEvent::NoCredentials => "no_credentials",
            SecurityEvent::TlsHandshakeFailed => "tls_handshake_failed",
            SecurityEvent::MasterCertNotAllowed => "master_cert_not_allowed",
            SecurityEvent::MasterAddressNotAllowed => "master_address_not_allowed",
            SecurityEvent::MessageRateLimit => "message_rate_limit",
        }
    }

    pub(super) fn index(self) -> usize {
        SecurityEvent::ALL
            .iter()
            .position(|e| *e == self)
            .unwrap_or_default()
    }
}

/// Logs and counts one security event. `service` is `ocpp` or `iec104`; `id` the charge
/// point id when known; `detail` says what happened, for an operator.
pub fn report(
    metrics: &Metrics,
    event: SecurityEvent,
    service: &'static str,
    peer: impl Display,
    id: Option<&str>,
    detail: impl Display,
) {
    metrics.security_event(event);
    warn!(
        target: TARGET,
        event = event.as_str(),
        service,
        peer = %peer,
        id = id.unwrap_or("-"),
        "security event: {detail}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_counted_per_event_and_rendered() {
        let metrics = Metrics::default();
        report(
            &metrics,
            SecurityEvent::ProfileDowngrade,
            "ocpp",
            "127.0.0.1",
            Some("CP001"),
            "test",
        );
        report(
            &metrics,
            SecurityEvent::ProfileDowngrade,
            "ocpp",
            "127.0.0.1",
            None,
            "test",
        );
        assert_eq!(metrics.security_events(SecurityEvent::ProfileDowngrade), 2);
        assert_eq!(metrics.security_events(SecurityEvent::AuthFailed), 0);
        let text = metrics.render(Default::default());
        assert!(
            text.contains("ocpp809_security_events_total{event=\"profile_downgrade\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("ocpp809_security_events_total{event=\"auth_failed\"} 0\n"));
    }

    #[test]
    fn event_labels_are_distinct() {
        let mut labels: Vec<&str> = SecurityEvent::ALL.iter().map(|e| e.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), SecurityEvent::ALL.len());
    }
}
