//! `[upstream]`: ocpp809 as an OCPP local controller relaying every charger to an upstream
//! CSMS (issue 10, docs/upstream.md). The per-charger overrides live in `[[charger]]`
//! (`upstream`, `upstream_url`, `upstream_password`).

use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;

/// `[upstream]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Upstream {
    /// Relay chargers to an upstream CSMS at all.
    pub enabled: bool,
    /// `ws://` or `wss://` URL; the charge point id is appended as the last path segment.
    pub url: String,
    /// What the upstream receives of a charger's CALL payload.
    pub forward: UpstreamForward,
    /// HTTP Basic password towards the upstream (security profile 1/2), user name = charge
    /// point id; empty: none. Never logged.
    pub password: Secret,
    /// `wss://` only: PEM CA certificate(s) to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// `wss://` only: PEM client certificate (chain) for mutual TLS (profile 3).
    pub client_cert: Option<PathBuf>,
    /// `wss://` only: PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Transaction messages queued per charger while the upstream is unreachable.
    pub queue_messages: usize,
    /// How idTags are authorized while the upstream is unreachable.
    pub offline_authorization: OfflineAuthorization,
    /// Seconds the charger's CALL waits for the upstream's answer before the local one is given.
    pub answer_timeout_s: u64,
    /// idTags accepted while the upstream is unreachable whatever `offline_authorization`
    /// and the cache say (service and operator cards).
    pub local_list: Vec<String>,
}

impl Upstream {
    /// A path key as set: `None` when absent or empty (`ca_file = ""` means "not set", as the
    /// example in the embedded default configuration writes it).
    pub fn path(value: &Option<PathBuf>) -> Option<&std::path::Path> {
        value.as_deref().filter(|p| !p.as_os_str().is_empty())
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "wss://csms.example/ocpp".into(),
            forward: UpstreamForward::Sanitized,
            password: Secret(String::new()),
            ca_file: None,
            client_cert: None,
            client_key: None,
            queue_messages: 10_000,
            offline_authorization: OfflineAuthorization::Cache,
            answer_timeout_s: 10,
            local_list: Vec::new(),
        }
    }
}

/// `upstream.forward`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamForward {
    /// The payload as the lenient reader understood it, re-written schema-conformant.
    Sanitized,
    /// The charger's payload unchanged.
    Original,
}

/// `upstream.offline_authorization`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineAuthorization {
    /// Tags as the upstream last answered them; unknown tags are refused.
    Cache,
    /// Tags as the upstream last answered them; unknown tags are accepted.
    Accept,
    /// Every tag is refused.
    Reject,
}
