//! The OCPP-J WebSocket server (OCPP 1.6J §3 "Connection", OCPP 2.0.1 Part 4 §3): accepts
//! charger connections on `ocpp.listen`, takes the charge point id from the last path
//! segment, negotiates the subprotocol in the configured order of preference, and drives one
//! sans-IO [`Session`] per connection. A second connection with the same id replaces the
//! first. Commands from the engine are routed to the live connection through [`Router`].
//! Chargers connect over ws:// on `ocpp.listen` and/or wss:// on `ocpp.tls.listen`; the
//! security profile rules of [`super::security`] are applied at the handshake.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::credentials::{self, Credentials, Verification};
use super::framing::MAX_FRAME_BYTES;
use super::rate::{MessageRate, RateVerdict};
use super::security::{self, Basic, ClientCert, Profiles, Transport};
use super::session::{Session, SessionConfig};
use super::throttle::{self, AuthThrottle, Verdict};
use super::{relay, v16, v201, Dialect, Mode, Version};
use crate::mapping::charger::{ChargerEvent, ChargerId, ChargerRequest, CommandResult};
use crate::net::sleep_until;
use crate::observe::security::{report, SecurityEvent};
use crate::observe::{self, Gauge, Metrics};
use crate::tls::server::handshake;
use crate::tls::{Listeners, ReloadableServerConfig};

/// Time a client has to complete the TLS and WebSocket handshakes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSocket ping interval; a charger that answers nothing for three intervals is dropped.
const PING_INTERVAL: Duration = Duration::from_secs(60);
/// Commands queued per connection before the engine is told the charger is busy.
const COMMAND_QUEUE: usize = 64;

#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Offered subprotocols in order of preference.
    pub versions: Vec<Version>,
    pub mode: Mode,
    pub heartbeat_interval_s: u32,
    pub call_timeout: Duration,
    /// Charge point ids allowed to connect; `None` = any (accept_unknown).
    pub known_chargers: Option<Vec<ChargerId>>,
    /// Security profile 1: chargers that must authenticate with HTTP Basic auth.
    pub credentials: Arc<Credentials>,
    /// Failed Basic authentications per (address, charger); shared by every connection.
    pub auth_throttle: Arc<AuthThrottle>,
    /// Chargers whose leniency differs from `mode`.
    pub modes: HashMap<ChargerId, Mode>,
    /// Next 1.6 transaction id (shared with the state store, which persists it).
    pub transaction_ids: Arc<AtomicI32>,
    pub max_connections: usize,
    /// Connections from one IP address; 0 = no cap.
    pub max_connections_per_ip: usize,
    /// Sustained messages per second per charger; `None` = no limit.
    pub max_messages_per_s: Option<f64>,
    /// Chargers connected, OCPP-J frames in and out.
    pub metrics: Arc<Metrics>,
    /// OCPP local controller: relay chargers to an upstream CSMS (`[upstream]`).
    pub upstream: Option<Arc<relay::link::UpstreamSettings>>,
    /// Security profile of each charger (`ocpp.security_profile`, `charger.security_profile`).
    pub profiles: Profiles,
}

/// Live connections: charger → (connection generation, its command queue).
type Routes = HashMap<ChargerId, (u64, mpsc::Sender<ChargerRequest>)>;

/// Routes engine commands to live charger connections.
#[derive(Clone, Default)]
pub struct Router {
    connections: Arc<Mutex<Routes>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Router {
    /// Hands `request` to the charger's connection; `Err` is the immediate result (offline
    /// or busy) when it cannot be delivered.
    pub fn send(&self, request: ChargerRequest) -> Result<(), CommandResult> {
        let sender = lock(&self.connections)
            .get(&request.charger)
            .map(|(_, tx)| tx.clone());
        let Some(tx) = sender else {
            return Err(CommandResult::Offline);
        };
        tx.try_send(request).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => {
                CommandResult::Rejected("charger command queue full".into())
            }
            mpsc::error::TrySendError::Closed(_) => CommandResult::Offline,
        })
    }

    pub fn is_connected(&self, charger: &str) -> bool {
        lock(&self.connections).contains_key(charger)
    }

    /// Chargers with a live connection.
    pub fn connected(&self) -> usize {
        lock(&self.connections).len()
    }

    fn register(&self, charger: &ChargerId, generation: u64, tx: mpsc::Sender<ChargerRequest>) {
        // Dropping the old sender ends the replaced connection's command stream.
        lock(&self.connections).insert(charger.clone(), (generation, tx));
    }

    fn unregister(&self, charger: &ChargerId, generation: u64) {
        let mut connections = lock(&self.connections);
        if connections
            .get(charger)
            .is_some_and(|(g, _)| *g == generation)
        {
            connections.remove(charger);
        }
    }
}

/// What the handshake decided.
struct Accepted {
    charger: ChargerId,
    version: Version,
}

/// Accepts chargers until `shutdown`; closes every session with 1001 (going away).
/// `listeners`: ws:// and/or wss:// (`ocpp.plain`, `ocpp.tls`); a `TcpListener` is ws:// only.
pub async fn serve(
    listeners: impl Into<Listeners>,
    settings: ServerSettings,
    router: Router,
    events: mpsc::Sender<ChargerEvent>,
    shutdown: watch::Receiver<bool>,
    heartbeat: crate::health::Heartbeat,
) {
    let generations = Arc::new(AtomicU64::new(1));
    // Shared, not cloned per connection: the settings hold every configured charger id,
    // and a copy per session made memory grow with chargers × sessions (BENCHMARKS.md "Scale").
    let settings = Arc::new(settings);
    let transaction_ids = settings.transaction_ids.clone();
    let caps = crate::net::ConnectionCaps {
        total: settings.max_connections,
        per_ip: settings.max_connections_per_ip,
    };
    let (sockets, tls_port) = listeners.into().split();
    crate::net::accept_loop_on(
        sockets,
        "OCPP",
        caps,
        shutdown,
        heartbeat,
        |stream, peer, index, shutdown| {
            let tls = tls_port.for_listener(index);
            let connection = Connection {
                peer,
                settings: settings.clone(),
                router: router.clone(),
                events: events.clone(),
                generation: generations.fetch_add(1, Ordering::Relaxed),
                transaction_ids: transaction_ids.clone(),
            };
            Some(connection.start(stream, tls, shutdown))
        },
    )
    .await;
}

struct Connection {
    peer: SocketAddr,
    settings: Arc<ServerSettings>,
    router: Router,
    events: mpsc::Sender<ChargerEvent>,
    generation: u64,
    transaction_ids: Arc<AtomicI32>,
}

impl Connection {
    /// Runs the TLS handshake on the TLS port, then the session; both handshakes share
    /// [`HANDSHAKE_TIMEOUT`].
    async fn start(
        self,
        stream: TcpStream,
        tls: Option<Arc<ReloadableServerConfig>>,
        shutdown: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
        let Some(tls) = tls else {
            return self.run(stream, Transport::Plain, deadline, shutdown).await;
        };
        let metrics = &self.settings.metrics;
        let handshake = handshake(&tls, stream, deadline, metrics, "ocpp", self.peer);
        if let Some((stream, _)) = handshake.await {
            let client = ClientCert::from_leaf(crate::tls::server::client_leaf(&stream));
            self.run(stream, Transport::Tls(client), deadline, shutdown)
                .await
        }
    }

    async fn run<S>(
        self,
        stream: S,
        transport: Transport,
        deadline: tokio::time::Instant,
        mut shutdown: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let decided: Arc<Mutex<Option<Accepted>>> = Arc::new(Mutex::new(None));
        // The error type is fixed by tungstenite's handshake `Callback`.
        #[allow(clippy::result_large_err)]
        let callback = {
            let decided = decided.clone();
            let settings = self.settings.clone();
            let peer = self.peer.ip();
            move |request: &Request, response: Response| {
                let (accepted, response) =
                    negotiate(&settings, peer, &transport, request, response)?;
                *lock(&decided) = Some(accepted);
                Ok(response)
            }
        };
        // Messages up to four times the OCPP-J limit are read and answered with a
        // CALLERROR by the parser; only beyond that is the connection dropped unread.
        // tungstenite's default 128 KiB read buffer is zero-filled and kept per connection:
        // 4 KiB holds a typical OCPP message and keeps an idle session small (BENCHMARKS.md).
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(4096)
            .max_message_size(Some(4 * MAX_FRAME_BYTES))
            .max_frame_size(Some(4 * MAX_FRAME_BYTES));
        let handshake =
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config));
        let mut socket = match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => {
                info!(peer = %self.peer, %error, "OCPP handshake refused or failed");
                return;
            }
            Err(_) => {
                info!(peer = %self.peer, "OCPP handshake timed out");
                return;
            }
        };
        let Some(Accepted { charger, version }) = lock(&decided).take() else {
            return;
        };
        info!(peer = %self.peer, %charger, version = version.subprotocol(), "charger connected");
        let (command_tx, mut commands) = mpsc::channel(COMMAND_QUEUE);
        self.router.register(&charger, self.generation, command_tx);
        let _connected = self.settings.metrics.hold(Gauge::ChargersConnected, true);
        let session = Session::new(
            charger.clone(),
            dialect(version),
            SessionConfig {
                mode: self
                    .settings
                    .modes
                    .get(&charger)
                    .copied()
                    .unwrap_or(self.settings.mode),
                heartbeat_interval_s: self.settings.heartbeat_interval_s,
                call_timeout: self.settings.call_timeout,
                queue_capacity: COMMAND_QUEUE,
            },
            Instant::now(),
        );
        // Relay to the upstream CSMS (issue 10); without one the session is used directly.
        let (mut session, mut upstream) =
            relay::link::start(session, self.settings.upstream.as_ref()).await;
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let mut next_transaction_id = || self.transaction_ids.fetch_add(1, Ordering::Relaxed);
        let mut message_rate = self
            .settings
            .max_messages_per_s
            .map(|rate| MessageRate::new(rate, MessageRate::default_burst(rate), Instant::now()));
        // While set, the socket is not read: the charger is over its message rate.
        let mut paused_until: Option<tokio::time::Instant> = None;
        let close: Option<CloseFrame> = loop {
            // Events go to the application before the CALLRESULT goes to the charger: once a
            // charger has its answer, anything another charger reports later must queue
            // behind this event, or SCADA would see the two out of order.
            while let Some(event) = session.poll_event() {
                if self.events.send(event).await.is_err() {
                    break;
                }
            }
            while let Some(text) = session.poll_outgoing() {
                if let Err(error) = socket.send(Message::text(text)).await {
                    debug!(%charger, %error, "send failed");
                    break;
                }
                self.settings.metrics.count(observe::Message::OcppOut);
            }
            upstream.flush(&mut session).await;
            let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                message = socket.next(), if paused_until.is_none() => match message {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        paused_until = self.pace(&mut message_rate, &charger);
                        self.settings.metrics.count(observe::Message::OcppIn);
                        session.handle_text(Instant::now(), Utc::now(), text.as_str(), &mut next_transaction_id);
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        last_heard = Instant::now();
                        paused_until = self.pace(&mut message_rate, &charger);
                        session.handle_binary(bytes.len());
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => last_heard = Instant::now(),
                    Some(Ok(Message::Close(frame))) => {
                        debug!(%charger, ?frame, "charger closed the connection");
                        break None;
                    }
                    Some(Err(error)) => {
                        info!(%charger, %error, "charger connection failed");
                        break None;
                    }
                    None => break None,
                },
                command = commands.recv() => match command {
                    Some(request) => session.send_command(Instant::now(), request),
                    None => {
                        info!(%charger, "replaced by a newer connection with the same id");
                        break Some(CloseFrame { code: CloseCode::Policy, reason: "replaced by a newer connection".into() });
                    }
                },
                _ = sleep_until(deadline) => session.handle_timeout(Instant::now()),
                event = upstream.recv() => session.handle_upstream(Instant::now(), event),
                _ = sleep_until(paused_until) => paused_until = None,
                _ = ping.tick() => {
                    if last_heard.elapsed() > 3 * PING_INTERVAL {
                        info!(%charger, "no traffic for three ping intervals");
                        break None;
                    }
                    let _ = socket.send(Message::Ping(Vec::new().into())).await;
                }
                _ = shutdown.changed() => break Some(CloseFrame { code: CloseCode::Away, reason: "ocpp809 shutting down".into() }),
            }
        };
        if let Some(frame) = close.clone() {
            let _ =
                tokio::time::timeout(Duration::from_millis(500), socket.close(Some(frame))).await;
        }
        self.router.unregister(&charger, self.generation);
        // A replaced session must not take the charger offline: its successor is live.
        let replaced = close
            .as_ref()
            .is_some_and(|frame| frame.code == CloseCode::Policy);
        session.close();
        while let Some(event) = session.poll_event() {
            if replaced && matches!(event, ChargerEvent::Disconnected { .. }) {
                continue;
            }
            if self.events.send(event).await.is_err() {
                break;
            }
        }
        info!(%charger, replaced, "charger session ended");
    }

    /// Counts one message against the charger's rate; `Some(resume)` when reading must
    /// pause until then. Logged once per episode, counted in the metrics.
    fn pace(
        &self,
        rate: &mut Option<MessageRate>,
        charger: &ChargerId,
    ) -> Option<tokio::time::Instant> {
        let RateVerdict::Pause { resume, first } = rate.as_mut()?.take(Instant::now()) else {
            return None;
        };
        if first {
            report(
                &self.settings.metrics,
                SecurityEvent::MessageRateLimit,
                "ocpp",
                self.peer,
                Some(charger),
                format_args!(
                    "charger exceeds its message rate ({}/s); reading its connection more slowly",
                    self.settings.max_messages_per_s.unwrap_or_default()
                ),
            );
        }
        Some(tokio::time::Instant::from_std(resume))
    }
}

fn dialect(version: Version) -> Box<dyn Dialect> {
    match version {
        Version::V16 => Box::new(v16::V16Dialect::new()),
        Version::V201 => Box::new(v201::V201Dialect::new()),
    }
}

/// Decides the handshake: charge point id from the path, a common subprotocol, a known id.
// The error type is fixed by tungstenite's handshake `Callback`.
#[allow(clippy::result_large_err)]
fn negotiate(
    settings: &ServerSettings,
    peer: IpAddr,
    transport: &Transport,
    request: &Request,
    mut response: Response,
) -> Result<(Accepted, Response), ErrorResponse> {
    let charger = charge_point_id(request.uri().path())
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "no charge point id in the URL path"))?;
    if let Some(known) = &settings.known_chargers {
        if !known.contains(&charger) {
            return Err(refuse(StatusCode::NOT_FOUND, "unknown charge point id"));
        }
    }
    // Security profiles are decided before any credential is looked at.
    let now = Instant::now();
    let credential = settings.credentials.for_charger(&charger, now);
    let basic = match credential.is_some() {
        true => Basic::Enforced,
        false => Basic::NotConfigured,
    };
    let profile = settings.profiles.of(&charger);
    if let Err(refusal) = security::admit(profile, transport, &charger, basic) {
        let reason = refusal.reason();
        report(
            &settings.metrics,
            refusal.event(),
            "ocpp",
            peer,
            Some(&charger),
            &reason,
        );
        return Err(refuse(refusal.status(), &reason));
    }
    if let Some(credential) = credential {
        let throttle = &settings.auth_throttle;
        // Before verifying: a throttled pair must not cost an argon2 run.
        if throttle.blocked(peer, &charger, now) {
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications; try again later",
            ));
        }
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let verification = credentials::basic_auth_password(authorization, &charger).map_or(
            Verification::Refused,
            |password| {
                settings
                    .credentials
                    .verify(&charger, &credential, &password)
            },
        );
        match verification {
            Verification::Accepted => throttle.succeeded(peer, &charger),
            Verification::Busy => {
                warn!(%charger, %peer, "authentication deferred: too many password verifications at once");
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy verifying passwords; try again later",
                ));
            }
            Verification::Refused => {
                if throttle.failed(peer, &charger, now) == Verdict::NowBlocked {
                    report(&settings.metrics, SecurityEvent::AuthThrottled, "ocpp", peer, Some(&charger), format_args!(
                        "repeated HTTP Basic authentication failures ({} within {} s); further attempts refused for the window",
                        throttle::MAX_FAILURES, throttle::WINDOW.as_secs()));
                }
                report(
                    &settings.metrics,
                    SecurityEvent::AuthFailed,
                    "ocpp",
                    peer,
                    Some(&charger),
                    "HTTP Basic authentication failed",
                );
                let mut response = refuse(StatusCode::UNAUTHORIZED, "authentication required");
                response.headers_mut().insert(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"ocpp809\""),
                );
                return Err(response);
            }
        }
    }
    let offered: Vec<String> = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_ascii_lowercase())
        .collect();
    let version = settings
        .versions
        .iter()
        .copied()
        .find(|v| offered.iter().any(|o| o == v.subprotocol()))
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "no common OCPP subprotocol (Sec-WebSocket-Protocol)",
            )
        })?;
    response.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(version.subprotocol()),
    );
    Ok((Accepted { charger, version }, response))
}

fn refuse(status: StatusCode, reason: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(reason.to_string()));
    *response.status_mut() = status;
    response
}

/// The last non-empty path segment, percent-decoded; any prefix is accepted (CONTRACT §2).
pub fn charge_point_id(path: &str) -> Option<ChargerId> {
    let segment = path.rsplit('/').find(|s| !s.is_empty())?;
    let decoded = percent_decode(segment)?;
    let valid = !decoded.is_empty()
        && decoded.len() <= 48
        && decoded
            .chars()
            .all(|c| !c.is_control() && !matches!(c, '/' | '+' | '#'));
    valid.then_some(decoded)
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_charger_costs_no_argon2_run_and_a_reconnect_is_cached() {
        use base64::Engine as _;
        let phc = crate::password::hash("right-password-123").unwrap_or_default();
        let text =
            format!("[[charger]]\nid = \"CP001\"\nioa_base = 1000\npassword_hash = \"{phc}\"\n");
        let config = crate::config::Config::from_toml_str(&text, "test.toml");
        let settings = crate::runtime::ocpp_settings(&config.unwrap_or_default());
        let attempt = |peer: [u8; 4], password: &str| {
            let credentials =
                base64::engine::general_purpose::STANDARD.encode(format!("CP001:{password}"));
            let request = Request::builder()
                .uri("/ocpp/CP001")
                .header("sec-websocket-protocol", "ocpp1.6")
                .header("authorization", format!("Basic {credentials}"))
                .body(())
                .unwrap_or_default();
            negotiate(
                &settings,
                IpAddr::from(peer),
                &Transport::Plain,
                &request,
                Response::default(),
            )
            .map(|_| StatusCode::SWITCHING_PROTOCOLS)
            .unwrap_or_else(|refused| refused.status())
        };
        let runs = || settings.credentials.argon2_runs();
        for _ in 0..throttle::MAX_FAILURES {
            assert_eq!(
                attempt([10, 0, 0, 1], "wrong-password-123"),
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(runs(), u64::from(throttle::MAX_FAILURES));
        assert_eq!(
            attempt([10, 0, 0, 1], "right-password-123"),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            runs(),
            u64::from(throttle::MAX_FAILURES),
            "throttled before argon2"
        );
        assert_eq!(
            attempt([10, 0, 0, 2], "right-password-123"),
            StatusCode::SWITCHING_PROTOCOLS
        );
        assert_eq!(
            attempt([10, 0, 0, 2], "right-password-123"),
            StatusCode::SWITCHING_PROTOCOLS
        );
        assert_eq!(
            runs(),
            u64::from(throttle::MAX_FAILURES) + 1,
            "the reconnect was cached"
        );
    }

    #[test]
    fn the_charge_point_id_is_the_last_path_segment() {
        assert_eq!(charge_point_id("/ocpp/CP001"), Some("CP001".into()));
        assert_eq!(
            charge_point_id("/any/prefix/CP%20002/"),
            Some("CP 002".into())
        );
        assert_eq!(charge_point_id("/"), None);
        assert_eq!(charge_point_id("/ocpp/a%2Fb"), None);
        assert_eq!(charge_point_id("/ocpp/%zz"), None);
    }
}
