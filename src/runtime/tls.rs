//! The TLS side of the runtime: the server configurations named by `[ocpp.tls]` and
//! `[iec104.tls]`, and SIGHUP, which reloads every one of them from its files (renewed
//! certificates without a restart; sessions that are up keep going). SIGHUP is handled
//! even without TLS, so that it never ends the daemon (its default action would).

use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::tls::{ReloadableServerConfig, ServerTlsFiles, TlsError};

/// `[ocpp.tls]` when enabled.
pub fn ocpp_files(config: &Config) -> Option<ServerTlsFiles> {
    let tls = &config.ocpp.tls;
    tls.enabled.then(|| tls.server_files())
}

/// `[iec104.tls]` when enabled.
pub fn iec104_files(config: &Config) -> Option<ServerTlsFiles> {
    let tls = &config.iec104.tls;
    tls.enabled.then(|| tls.server_files())
}

/// Reads the files of `files`, if any.
pub fn load(
    files: Option<ServerTlsFiles>,
) -> Result<Option<Arc<ReloadableServerConfig>>, TlsError> {
    files
        .map(|files| ReloadableServerConfig::new(files).map(Arc::new))
        .transpose()
}

/// Installs the SIGHUP handler; from then on SIGHUP no longer terminates the process.
pub fn hangup() -> std::io::Result<Signal> {
    signal(SignalKind::hangup())
}

/// Reloads every configuration on each SIGHUP until `shutdown`; each reload logs its
/// outcome (the new certificate's fingerprint, or why the old one stays).
pub async fn reload_on_hangup(
    mut hangup: Signal,
    configs: Vec<Arc<ReloadableServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            received = hangup.recv() => {
                if received.is_none() {
                    break;
                }
                if configs.is_empty() {
                    info!("SIGHUP: no TLS endpoint is enabled; nothing to reload");
                }
                for config in &configs {
                    info!(section = config.section(), "SIGHUP: reloading the TLS files");
                    // The outcome is logged by reload() itself.
                    let _ = config.reload();
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}
