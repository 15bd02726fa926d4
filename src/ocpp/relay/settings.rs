//! `[upstream]` and the `[[charger]]` overrides turned into the relay's run-time settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use super::core::{Forward, RelayConfig};
use super::link::{Target, UpstreamSettings};
use super::offline::OfflineAuthorization;
use crate::config::{self, Config};
use crate::observe::Metrics;

/// The relay settings, `None` when `upstream.enabled` is false.
pub fn from_config(config: &Config, metrics: Arc<Metrics>) -> Option<Arc<UpstreamSettings>> {
    let u = &config.upstream;
    if !u.enabled {
        return None;
    }
    let default = Target {
        url: u.url.clone(),
        password: u.password.clone(),
        phases: 3,
    };
    let chargers: HashMap<_, _> = config
        .charger
        .iter()
        .map(|c| {
            let target = c.upstream.then(|| Target {
                url: c.upstream_url.clone().unwrap_or_else(|| u.url.clone()),
                password: c
                    .upstream_password
                    .clone()
                    .unwrap_or_else(|| u.password.clone()),
                phases: c.phases,
            });
            (c.id.clone(), target)
        })
        .collect();
    let any_tls = default.url.starts_with("wss://")
        || chargers
            .values()
            .flatten()
            .any(|t| t.url.starts_with("wss://"));
    let tls = if any_tls {
        match crate::tls::client::client_config(
            "upstream",
            config::Upstream::path(&u.ca_file),
            config::Upstream::path(&u.client_cert),
            config::Upstream::path(&u.client_key),
        ) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                error!(error = %e, "upstream TLS configuration unusable; wss:// upstreams will not connect");
                None
            }
        }
    } else {
        None
    };
    let relay = RelayConfig {
        forward: match u.forward {
            config::UpstreamForward::Sanitized => Forward::Sanitized,
            config::UpstreamForward::Original => Forward::Original,
        },
        answer_timeout: Duration::from_secs(u.answer_timeout_s),
        queue_capacity: u.queue_messages,
        offline: match u.offline_authorization {
            config::OfflineAuthorization::Cache => OfflineAuthorization::Cache,
            config::OfflineAuthorization::Accept => OfflineAuthorization::Accept,
            config::OfflineAuthorization::Reject => OfflineAuthorization::Reject,
        },
        local_list: Arc::new(u.local_list.iter().cloned().collect()),
    };
    info!(url = %config::redact_url(&u.url), forward = ?u.forward, "OCPP local controller: chargers are relayed to the upstream CSMS");
    Some(Arc::new(UpstreamSettings::new(
        default,
        chargers,
        relay,
        config.station.state_dir.clone(),
        tls,
        metrics,
    )))
}
