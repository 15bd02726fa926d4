//! The tokio side of the relay: per charger, a task holding the WebSocket client to the
//! upstream CSMS (OCPP-J 1.6 §3 / 2.0.1 Part 4 §3 from the charger's side: charge point id
//! as the last path segment, the charger's subprotocol, HTTP Basic auth with the charge
//! point id as user name, security profiles 1–3), reconnecting with backoff 1 → 30 s, and
//! [`start`], which the charger's connection task calls to wrap its session in a
//! [`Relay`] and get the [`UpstreamLink`] to drive it with.
//!
//! Channels are bounded both ways; the relay core only sends upstream while it believes the
//! link is up, and a frame written into a link that just went down is lost the same way it
//! would be on the wire (the core learns of the outage from [`UpstreamEvent::Down`] and
//! answers or re-sends from its own state).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedMutexGuard};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::core::{Relay, RelayConfig, UpstreamEvent};
use super::journal::{charger_dir, DiskJournal};
use super::tls;
use crate::mapping::charger::ChargerId;
use crate::observe::{Gauge, Metrics, UpstreamCounter};
use crate::ocpp::framing::MAX_FRAME_BYTES;
use crate::ocpp::session::Session;
use crate::ocpp::Version;

/// Frames buffered towards the upstream task, and events back.
const CHANNEL: usize = 256;
/// Upstream frames the task holds while the connection task is busy; beyond this the
/// upstream socket is not read (TCP pushes back on the upstream).
const INBOX: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const PING_INTERVAL: Duration = Duration::from_secs(30);

/// Where and how one charger is relayed.
#[derive(Clone, Debug)]
pub struct Target {
    /// Base URL; the charge point id is appended.
    pub url: String,
    /// HTTP Basic password; empty: none.
    pub password: crate::config::Secret,
    /// The charger's phases (`[[charger]] phases`; 3 for unknown chargers), for the power
    /// authority's A ↔ kW conversion.
    pub phases: u8,
}

/// Everything the connections need to relay their chargers (built once from `[upstream]`).
pub struct UpstreamSettings {
    pub default: Target,
    /// Per-charger overrides of URL/password; `None` for chargers opted out.
    pub chargers: HashMap<ChargerId, Option<Target>>,
    pub relay: RelayConfig,
    pub state_dir: PathBuf,
    /// For `wss://`; `None` when no TLS client configuration could be built.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub metrics: Arc<Metrics>,
    /// One relay per charger at a time owns its journal (a replacing connection waits).
    owners: Mutex<HashMap<ChargerId, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for UpstreamSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSettings")
            .field("default", &self.default)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl UpstreamSettings {
    pub fn new(
        default: Target,
        chargers: HashMap<ChargerId, Option<Target>>,
        relay: RelayConfig,
        state_dir: PathBuf,
        tls: Option<Arc<rustls::ClientConfig>>,
        metrics: Arc<Metrics>,
    ) -> UpstreamSettings {
        UpstreamSettings {
            default,
            chargers,
            relay,
            state_dir,
            tls,
            metrics,
            owners: Mutex::new(HashMap::new()),
        }
    }

    fn target(&self, charger: &str) -> Option<Target> {
        match self.chargers.get(charger) {
            Some(target) => target.clone(),
            None => Some(self.default.clone()),
        }
    }

    fn owner(&self, charger: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut owners = self
            .owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Entries nobody holds or waits for any more are dropped, so the map stays as large
        // as the set of connected chargers.
        owners.retain(|_, owner| Arc::strong_count(owner) > 1);
        owners.entry(charger.to_owned()).or_default().clone()
    }
}

/// The full URL of a charger: base URL with the (percent-encoded) charge point id appended.
pub fn charger_url(base: &str, charger: &str) -> String {
    let mut url = base.trim_end_matches('/').to_owned();
    url.push('/');
    for b in charger.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// The connection task's handle on the upstream: frames to send, events to receive.
/// Without an upstream it never yields anything.
pub struct UpstreamLink {
    inner: Option<LinkInner>,
}

struct LinkInner {
    tx: mpsc::Sender<String>,
    rx: mpsc::Receiver<UpstreamEvent>,
    metrics: Arc<Metrics>,
    reported: super::core::RelayStats,
    _owner: OwnedMutexGuard<()>,
    journal_dir: PathBuf,
}

impl UpstreamLink {
    /// The next event from the upstream (pending forever without one).
    pub async fn recv(&mut self) -> UpstreamEvent {
        match self.inner.as_mut() {
            Some(inner) => match inner.rx.recv().await {
                Some(event) => event,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// Hands a frame to the upstream task.
    pub async fn send(&mut self, text: String) {
        if let Some(inner) = self.inner.as_mut() {
            if inner.tx.send(text).await.is_err() {
                debug!("upstream task gone; frame dropped");
            }
        }
    }

    /// Sends what the relay has for the upstream and counts what it did.
    pub async fn flush(&mut self, relay: &mut Relay) {
        while let Some(text) = relay.poll_upstream() {
            self.send(text).await;
        }
        if let Some(inner) = self.inner.as_mut() {
            let now = relay.stats();
            let m = &inner.metrics;
            m.upstream(UpstreamCounter::Queued, now.queued - inner.reported.queued);
            m.upstream(
                UpstreamCounter::Replayed,
                now.replayed - inner.reported.replayed,
            );
            m.upstream(
                UpstreamCounter::Dropped,
                now.dropped - inner.reported.dropped,
            );
            inner.reported = now;
        }
    }

    /// Where the charger's queue is kept (for log lines).
    pub fn journal_dir(&self) -> Option<&std::path::Path> {
        self.inner.as_ref().map(|i| i.journal_dir.as_path())
    }
}

/// Wraps `session` in its relay: relayed (with the journal opened and the upstream task
/// started) when `settings` relays this charger, else direct.
pub async fn start(
    session: Session,
    settings: Option<&Arc<UpstreamSettings>>,
) -> (Relay, UpstreamLink) {
    let charger = session.charger().clone();
    let version = session.version();
    let Some((settings, target)) = settings.and_then(|s| Some((s.clone(), s.target(&charger)?)))
    else {
        return (Relay::direct(session), UpstreamLink { inner: None });
    };
    let owner = settings.owner(&charger).lock_owned().await;
    let dir = charger_dir(&settings.state_dir, &charger);
    let opened = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || DiskJournal::open(&dir)).await
    };
    let (journal, recovered) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(error)) => {
            warn!(%charger, %error, "upstream queue cannot be opened; charger not relayed");
            return (Relay::direct(session), UpstreamLink { inner: None });
        }
        Err(error) => {
            warn!(%charger, %error, "upstream queue cannot be opened; charger not relayed");
            return (Relay::direct(session), UpstreamLink { inner: None });
        }
    };
    if !recovered.queue.is_empty() || recovered.unreadable > 0 {
        info!(%charger, queued = recovered.queue.len(), unreadable = recovered.unreadable,
            "upstream queue recovered from disk");
    }
    let relay = Relay::relayed(
        session,
        settings.relay.clone(),
        Box::new(journal),
        recovered.queue,
        recovered.state,
        target.phases,
    );
    let (to_task, from_relay) = mpsc::channel(CHANNEL);
    let (to_relay, from_task) = mpsc::channel(CHANNEL);
    let url = charger_url(&target.url, &charger);
    tokio::spawn(run(
        UpstreamTask {
            charger,
            version,
            url,
            password: target.password,
            tls: settings.tls.clone(),
            metrics: settings.metrics.clone(),
        },
        from_relay,
        to_relay,
    ));
    let link = UpstreamLink {
        inner: Some(LinkInner {
            tx: to_task,
            rx: from_task,
            metrics: settings.metrics.clone(),
            reported: Default::default(),
            _owner: owner,
            journal_dir: dir,
        }),
    };
    (relay, link)
}

struct UpstreamTask {
    charger: ChargerId,
    version: Version,
    url: String,
    password: crate::config::Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
    metrics: Arc<Metrics>,
}

/// Connects, relays, reconnects, until the charger's connection drops its sender.
///
/// Frames from the upstream wait in a small inbox until the connection task takes them, and
/// the socket is not read while the inbox is full; frames from the relay are taken at any
/// time. So the two bounded channels can never both be full with each task waiting for the
/// other.
async fn run(
    task: UpstreamTask,
    mut from_relay: mpsc::Receiver<String>,
    to_relay: mpsc::Sender<UpstreamEvent>,
) {
    let charger = &task.charger;
    let mut backoff = BACKOFF_MIN;
    let mut inbox: VecDeque<UpstreamEvent> = VecDeque::new();
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(&task)).await {
            Ok(Ok(mut socket)) => {
                backoff = BACKOFF_MIN;
                info!(%charger, url = %crate::config::redact_url(&task.url), "upstream CSMS connected");
                let _up = task.metrics.hold(Gauge::UpstreamsConnected, true);
                inbox.push_back(UpstreamEvent::Up);
                let mut ping = tokio::time::interval(PING_INTERVAL);
                ping.tick().await;
                let mut last_heard = tokio::time::Instant::now();
                let reason = loop {
                    tokio::select! {
                        frame = from_relay.recv() => match frame {
                            Some(text) => {
                                if let Err(error) = socket.send(Message::text(text)).await {
                                    break format!("send failed: {error}");
                                }
                            }
                            None => {
                                let _ = tokio::time::timeout(Duration::from_millis(500), socket.close(None)).await;
                                return;
                            }
                        },
                        permit = to_relay.reserve(), if !inbox.is_empty() => match (permit, inbox.pop_front()) {
                            (Ok(permit), Some(event)) => permit.send(event),
                            (Err(_), _) => return,
                            (Ok(_), None) => {}
                        },
                        message = socket.next(), if inbox.len() < INBOX => match message {
                            Some(Ok(Message::Text(text))) => {
                                last_heard = tokio::time::Instant::now();
                                inbox.push_back(UpstreamEvent::Text(text.as_str().to_owned()));
                            }
                            Some(Ok(Message::Close(frame))) => break format!("closed by the upstream: {frame:?}"),
                            Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
                            Some(Err(error)) => break error.to_string(),
                            None => break "connection ended".to_owned(),
                        },
                        _ = ping.tick() => {
                            // A silent upstream (lost route, half-open TCP) must not keep the
                            // charger's CALLs waiting for answers that never come.
                            if last_heard.elapsed() > 3 * PING_INTERVAL {
                                break "no answer to three pings".to_owned();
                            }
                            if let Err(error) = socket.send(Message::Ping(Vec::new().into())).await {
                                break format!("ping failed: {error}");
                            }
                        }
                    }
                };
                info!(%charger, %reason, "upstream CSMS disconnected");
                inbox.push_back(UpstreamEvent::Down);
            }
            Ok(Err(error)) => {
                info!(%charger, url = %crate::config::redact_url(&task.url), %error, retry_s = backoff.as_secs(), "upstream CSMS unreachable")
            }
            Err(_) => {
                info!(%charger, url = %crate::config::redact_url(&task.url), retry_s = backoff.as_secs(), "upstream CSMS connect timed out")
            }
        }
        // Hand over what is left (ending with Down) and wait out the backoff; frames the
        // relay sent meanwhile were for a link that is down.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep, if inbox.is_empty() => break,
                permit = to_relay.reserve(), if !inbox.is_empty() => match (permit, inbox.pop_front()) {
                    (Ok(permit), Some(event)) => permit.send(event),
                    (Err(_), _) => return,
                    (Ok(_), None) => {}
                },
                frame = from_relay.recv() => if frame.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tls::MaybeTls>;

async fn connect(task: &UpstreamTask) -> Result<Socket, String> {
    let mut request = task
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(task.version.subprotocol()),
    );
    if !task.password.expose().is_empty() {
        use base64::Engine as _;
        let credentials = format!("{}:{}", task.charger, task.password.expose());
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        let mut value = HeaderValue::from_str(&value).map_err(|e| e.to_string())?;
        value.set_sensitive(true);
        headers.insert("authorization", value);
    }
    let uri = request.uri().clone();
    let host = uri.host().ok_or("URL has no host")?.to_owned();
    let secure = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let host_for_tcp = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = TcpStream::connect((host_for_tcp.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let stream = if secure {
        let config = task
            .tls
            .clone()
            .ok_or("wss:// URL but no TLS configuration (see the log at start-up)")?;
        tls::connect(config, &host_for_tcp, tcp).await?
    } else {
        tls::MaybeTls::Plain(tcp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(4 * MAX_FRAME_BYTES))
        .max_frame_size(Some(4 * MAX_FRAME_BYTES));
    let (socket, response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|e| e.to_string())?;
    let agreed = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if agreed != Some(task.version.subprotocol()) {
        return Err(format!(
            "upstream did not agree to {} (answered {:?})",
            task.version.subprotocol(),
            agreed
        ));
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charge_point_id_is_appended_percent_encoded() {
        assert_eq!(charger_url("ws://h/ocpp", "CP1"), "ws://h/ocpp/CP1");
        assert_eq!(
            charger_url("ws://h/ocpp/", "CP 1/x"),
            "ws://h/ocpp/CP%201%2Fx"
        );
    }
}
