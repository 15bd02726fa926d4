//! The IEC 60870-5-104 TCP server (§5, §9): accepts masters, enforces the allowlist and the
//! connection cap, and drives one sans-IO [`Link`] per connection against the shared
//! station. Everything protocol-related happens in `apci`, `link` and `station`; this file
//! only moves bytes, time and wake-ups. Masters connect in plain TCP on `iec104.listen`
//! and/or over TLS with mutual authentication on `iec104.tls.listen` (IEC 62351-3).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::apci::MAX_ASDU_LEN;
use super::link::{Link, LinkConfig, LinkEvent};
use crate::asdu::AsduParams;
use crate::health::Heartbeat;
use crate::net::sleep_until;
use crate::observe::security::{report, SecurityEvent};
use crate::observe::{Gauge, Message, Metrics};
use crate::station::{LinkProfile, StationHandle, ToApplication};
use crate::tls::server::handshake;
use crate::tls::{Fingerprint, Listeners, ReloadableServerConfig};

/// Time a master has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub allowed_masters: Vec<IpAddr>,
    pub max_masters: usize,
    pub link: LinkConfig,
    pub common_address: u16,
    /// Masters connected, ASDUs in and out.
    pub metrics: Arc<Metrics>,
}

/// Accepts connections until `shutdown` turns true, then closes every connection and
/// returns once their tasks have ended. `listeners`: plain and/or TLS (`iec104.plain`,
/// `iec104.tls`); a `TcpListener` is plain only. Both count against `max_masters`.
pub async fn serve(
    listeners: impl Into<Listeners>,
    settings: ServerSettings,
    station: StationHandle,
    application: mpsc::Sender<ToApplication>,
    shutdown: watch::Receiver<bool>,
    heartbeat: Heartbeat,
) {
    let max_masters = settings.max_masters;
    let (sockets, tls_port) = listeners.into().split();
    crate::net::accept_loop_on(
        sockets,
        "IEC 104",
        max_masters,
        shutdown,
        heartbeat,
        |stream, peer, index, shutdown| {
            if !settings.allowed_masters.is_empty()
                && !settings.allowed_masters.contains(&peer.ip())
            {
                report(
                    &settings.metrics,
                    SecurityEvent::MasterAddressNotAllowed,
                    "iec104",
                    peer,
                    None,
                    "IEC 104 connection refused: address not in allowed_masters",
                );
                return None;
            }
            let connection = Connection {
                peer,
                settings: settings.clone(),
                station: station.clone(),
                application: application.clone(),
            };
            Some(connection.start(stream, tls_port.for_listener(index), shutdown))
        },
    )
    .await;
}

struct Connection {
    peer: SocketAddr,
    settings: ServerSettings,
    station: StationHandle,
    application: mpsc::Sender<ToApplication>,
}

impl Connection {
    /// On the TLS port: the handshake (a verified client certificate is mandatory) and the
    /// check against `iec104.tls.allowed_masters`, then the link.
    async fn start(
        self,
        stream: TcpStream,
        tls: Option<Arc<ReloadableServerConfig>>,
        shutdown: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let Some(tls) = tls else {
            return self.run(stream, shutdown).await;
        };
        let refuse = |event, detail: String| {
            report(
                &self.settings.metrics,
                event,
                "iec104",
                self.peer,
                None,
                detail,
            )
        };
        let deadline = tokio::time::Instant::now() + TLS_HANDSHAKE_TIMEOUT;
        let metrics = &self.settings.metrics;
        let handshake = handshake(&tls, stream, deadline, metrics, "iec104", self.peer);
        let Some((stream, loaded)) = handshake.await else {
            return;
        };
        // The verifier has required and checked the chain; what is left is the allowlist.
        let Some(leaf) = crate::tls::server::client_leaf(&stream).map(Fingerprint::of) else {
            return refuse(
                SecurityEvent::TlsHandshakeFailed,
                "IEC 104 TLS master presented no certificate".into(),
            );
        };
        if !loaded.allows_client(&leaf) {
            return refuse(
                SecurityEvent::MasterCertNotAllowed,
                format!(
                    "IEC 104 master certificate sha256 {leaf} is not in iec104.tls.allowed_masters"
                ),
            );
        }
        info!(peer = %self.peer, certificate_sha256 = %leaf, "IEC 104 master authenticated by TLS");
        self.run(stream, shutdown).await
    }

    async fn run<S>(self, mut stream: S, mut shutdown: watch::Receiver<bool>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let name = format!("104 {}", self.peer);
        info!(peer = %self.peer, "IEC 104 master connected");
        let _connected = self.settings.metrics.hold(Gauge::Iec104Masters, true);
        let (session, wake) = self.station.open_session(LinkProfile {
            params: AsduParams::IEC104,
            common_address: self.settings.common_address,
            max_asdu_len: MAX_ASDU_LEN,
            name: name.clone(),
        });
        let mut link = Link::new(self.settings.link, Instant::now());
        let mut input = vec![0u8; 4096];
        let mut output = Vec::with_capacity(4096);
        let write_timeout = self.settings.link.t1;
        let reason: String = loop {
            if let Some(reason) = self.drain_events(&mut link, session) {
                break reason;
            }
            while link.can_send_asdu() {
                let Some(asdu) = self.station.with(|s| s.poll_asdu(session, Utc::now())) else {
                    break;
                };
                if let Err(error) = link.send_asdu(Instant::now(), asdu) {
                    warn!(peer = %self.peer, %error, "ASDU not sent");
                    break;
                }
                self.settings.metrics.count(Message::Iec104Out);
            }
            link.poll_transmit(&mut output);
            if !output.is_empty() {
                // A master that stops reading must not stall the task beyond t1.
                match tokio::time::timeout(write_timeout, stream.write_all(&output)).await {
                    Ok(Ok(())) => output.clear(),
                    Ok(Err(error)) => break format!("write failed: {error}"),
                    Err(_) => break "write blocked for longer than t1".to_string(),
                }
            }
            if let Some(reason) = link.close_reason() {
                break reason.to_string();
            }
            let deadline = link.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                read = stream.read(&mut input) => match read {
                    Ok(0) => break "closed by the master".to_string(),
                    Ok(n) => link.handle_input(Instant::now(), &input[..n]),
                    Err(error) => break format!("read failed: {error}"),
                },
                _ = sleep_until(deadline) => link.handle_timeout(Instant::now()),
                _ = wake.notified() => {}
                _ = shutdown.changed() => break "daemon shutting down".to_string(),
            }
        };
        // Flush what the link still wanted to say (e.g. a last confirmation), best effort.
        link.poll_transmit(&mut output);
        if !output.is_empty() {
            let _ =
                tokio::time::timeout(Duration::from_millis(200), stream.write_all(&output)).await;
        }
        let _ = stream.shutdown().await;
        self.station
            .close_session(session, link.take_unacknowledged());
        info!(peer = %self.peer, %reason, "IEC 104 connection closed");
    }

    /// Hands link events to the station; returns the close reason if the link closed.
    fn drain_events(&self, link: &mut Link, session: u64) -> Option<String> {
        while let Some(event) = link.poll_event() {
            match event {
                LinkEvent::DataTransferStarted => {
                    debug!(peer = %self.peer, "STARTDT");
                    self.station.with(|s| s.set_active(session, true));
                }
                LinkEvent::DataTransferStopped => {
                    debug!(peer = %self.peer, "STOPDT");
                    self.station.with(|s| s.set_active(session, false));
                }
                LinkEvent::Asdu(asdu) => {
                    self.settings.metrics.count(Message::Iec104In);
                    let request = self
                        .station
                        .with(|s| s.handle_asdu(session, Instant::now(), &asdu));
                    if let Some(request) = request {
                        self.hand_to_application(request);
                    }
                }
                LinkEvent::Closed(reason) => return Some(reason.to_string()),
            }
        }
        None
    }

    fn hand_to_application(&self, request: ToApplication) {
        self.station
            .hand_to_application(&self.application, request, &self.peer.to_string());
    }
}
