//! The MQTT mirror task: drives a `rumqttc` event loop, feeds it from the [`Outbox`] and
//! reconnects with backoff.
//!
//! Why the task keeps its own buffer instead of relying on `rumqttc`'s queue: requests given to
//! `AsyncClient` while the connection is down sit in the client's channel and in the event
//! loop's `pending` list, and with a clean session (which we use) the event loop discards
//! `pending` at the next CONNACK — they would be lost silently. So messages are handed to the
//! client only while connected, at most [`WINDOW`] at a time, and leave the outbox only when the
//! broker's PUBACK arrives. Requests go on the wire in the order they were handed, so the n-th
//! `Outgoing::Publish(pkid)` event names the packet id of the n-th handed message; the PUBACK
//! carries that id. A single task polls the event loop and hands messages, and it stops
//! handing the moment `poll` reports an error (at which point `rumqttc` has already moved the
//! channel's contents to `pending`, to be discarded at the next CONNACK), so no stale request
//! can shift that pairing. Delivery is at least once: a message whose PUBACK was lost with the
//! connection is sent again.
//!
//! The event loop's `poll` future is never cancelled by incoming telemetry (it is polled to
//! completion in an inner loop that also takes telemetry), so a slow connection attempt is not
//! restarted by every new sample.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
    Transport,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout_at, Instant};
use tracing::{debug, info, warn};

use super::outbox::{Outbox, Pushed};
use super::settings::MqttSettings;
use crate::health::Heartbeat;
use crate::mapping::telemetry::Telemetry;
use crate::spool::Spool;

/// Messages handed to `rumqttc` and not yet acknowledged (below its in-flight limit).
pub const WINDOW: usize = 64;
/// `rumqttc`'s in-flight limit (packet ids in use).
const INFLIGHT: u16 = 100;
/// Request channel of the client: the window plus room for the goodbye (status, DISCONNECT).
const REQUEST_CAPACITY: usize = WINDOW + 8;
/// Time allowed to deliver what is buffered and say goodbye on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1000);
/// Part of the grace spent flushing the buffer before `offline` is published.
const FLUSH_GRACE: Duration = Duration::from_millis(700);
/// TCP/TLS connect plus CONNACK, seconds.
const CONNECT_TIMEOUT_S: u64 = 5;
/// Largest message (topic + payload) published; larger reports are dropped and counted.
/// `rumqttc` fails the whole connection on a packet above its limit, so such a message would
/// otherwise be re-sent and break every connection.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// `rumqttc`'s packet size limit: the largest message plus the MQTT header.
const MAX_PACKET_BYTES: usize = MAX_MESSAGE_BYTES + 1024;
/// Interval between "messages dropped" warnings while the buffer overflows.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// How often what was appended to the spool is fsynced (at most).
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The spool's directory under `state_dir`.
pub const SPOOL_DIR: &str = "mqtt-spool";

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct MqttStats {
    published: AtomicU64,
    buffered: AtomicU64,
    dropped: AtomicU64,
    connected: AtomicBool,
    spooled: AtomicU64,
    spooled_bytes: AtomicU64,
}

impl MqttStats {
    /// Messages the broker acknowledged (retained snapshots and the stream).
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
    /// Meter/event/command messages not yet acknowledged (in the offline buffer or in flight).
    pub fn buffered(&self) -> u64 {
        self.buffered.load(Ordering::Relaxed)
    }
    /// Messages dropped: meter/event/command messages because the offline buffer was full, and
    /// reports larger than [`MAX_MESSAGE_BYTES`].
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Meter/event/command messages in the on-disk spool (`{state_dir}/mqtt-spool/`), not yet
    /// acknowledged; part of [`buffered`](Self::buffered).
    pub fn spooled(&self) -> u64 {
        self.spooled.load(Ordering::Relaxed)
    }
    /// Size of the spool's segment files, bytes.
    pub fn spooled_bytes(&self) -> u64 {
        self.spooled_bytes.load(Ordering::Relaxed)
    }
    /// Whether a broker connection is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// Where the connection stands.
enum Link {
    /// `poll` connects (or is connected, see `Outbox::is_connected`).
    Active,
    /// Waiting before the next connection attempt.
    Waiting(Instant),
}

/// Why the wait for the next thing to do ended.
enum Step {
    Polled(Result<Event, ConnectionError>),
    Retry,
    Stop,
}

struct Mirror {
    settings: MqttSettings,
    outbox: Outbox,
    client: AsyncClient,
    backoff: Duration,
    /// A connection attempt has failed since the last success (warned once).
    failing: bool,
    last_drop_log: Option<Instant>,
    dropped_logged: u64,
    /// Reports larger than [`MAX_MESSAGE_BYTES`], dropped.
    oversized: u64,
}

/// Runs the mirror until `shutdown` turns true (or its sender or `telemetry`'s senders are
/// gone), then publishes `offline` and disconnects within about a second.
pub async fn run(
    settings: MqttSettings,
    mut telemetry: mpsc::Receiver<Telemetry>,
    mut shutdown: watch::Receiver<bool>,
    heartbeat: Heartbeat,
) {
    let (client, mut eventloop) = AsyncClient::new(options(&settings), REQUEST_CAPACITY);
    let mut network = eventloop.network_options();
    network.set_connection_timeout(CONNECT_TIMEOUT_S);
    eventloop.set_network_options(network);
    info!(
        broker = %format!("{}:{}", settings.host, settings.port),
        tls = settings.tls.is_some(),
        client_id = %settings.client_id,
        "MQTT mirror started"
    );
    let mut mirror = Mirror {
        outbox: outbox(&settings),
        backoff: settings.reconnect_min,
        settings,
        client,
        failing: false,
        last_drop_log: None,
        dropped_logged: 0,
        oversized: 0,
    };
    let mut link = Link::Active;
    let mut input_open = true;
    let mut sync = tokio::time::interval(SYNC_INTERVAL);
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *shutdown.borrow() {
            break;
        }
        mirror.pump();
        let step = match link {
            Link::Active => {
                let poll = eventloop.poll();
                tokio::pin!(poll);
                loop {
                    heartbeat.beat();
                    tokio::select! {
                        biased;
                        _ = shutdown.wait_for(|stop| *stop) => break Step::Stop,
                        result = &mut poll => break Step::Polled(result),
                        _ = sync.tick() => mirror.sync_spool(),
                        report = telemetry.recv(), if input_open => match report {
                            Some(report) => {
                                mirror.accept(report);
                                mirror.pump();
                                mirror.update_stats();
                            }
                            None => input_open = false,
                        },
                    }
                    if !input_open {
                        break Step::Stop;
                    }
                }
            }
            Link::Waiting(until) => loop {
                heartbeat.beat();
                tokio::select! {
                    biased;
                    _ = shutdown.wait_for(|stop| *stop) => break Step::Stop,
                    _ = sleep_until(until) => break Step::Retry,
                    _ = sync.tick() => mirror.sync_spool(),
                    report = telemetry.recv(), if input_open => match report {
                        Some(report) => {
                            mirror.accept(report);
                            mirror.update_stats();
                        }
                        None => input_open = false,
                    },
                }
                if !input_open {
                    break Step::Stop;
                }
            },
        };
        match step {
            Step::Stop => break,
            Step::Retry => link = Link::Active,
            Step::Polled(Ok(event)) => mirror.event(event),
            Step::Polled(Err(error)) => {
                mirror.connection_failed(&mut eventloop, &error);
                link = Link::Waiting(Instant::now() + mirror.backoff);
                mirror.backoff = (mirror.backoff * 2).min(mirror.settings.reconnect_max);
            }
        }
        mirror.update_stats();
    }
    while let Ok(report) = telemetry.try_recv() {
        mirror.accept(report);
    }
    mirror.goodbye(&mut eventloop).await;
}

/// The outbox with its spool under `{state_dir}/mqtt-spool/`; memory only if the spool cannot
/// be opened.
fn outbox(settings: &MqttSettings) -> Outbox {
    let dir = settings.state_dir.join(SPOOL_DIR);
    match Spool::open(&dir) {
        Ok((spool, recovered)) => {
            if recovered.records > 0 || recovered.truncated > 0 {
                info!(
                    spool = %dir.display(),
                    messages = recovered.records,
                    segments = recovered.segments,
                    truncated = recovered.truncated,
                    "MQTT spool holds undelivered messages from the last run; they go first"
                );
            }
            Outbox::with_spool(settings.buffer_messages, WINDOW, spool)
        }
        Err(error) => {
            warn!(%error, "MQTT spool unusable; the offline buffer stays in memory");
            Outbox::new(settings.buffer_messages, WINDOW)
        }
    }
}

fn options(settings: &MqttSettings) -> MqttOptions {
    let mut options = MqttOptions::new(
        settings.client_id.clone(),
        settings.host.clone(),
        settings.port,
    );
    options
        .set_keep_alive(settings.keep_alive)
        .set_clean_session(true)
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
        .set_last_will(LastWill::new(
            settings.topics.status(),
            super::topics::OFFLINE.to_vec(),
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &settings.username {
        let password = settings
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options.set_credentials(user.clone(), password);
    }
    if let Some(tls) = &settings.tls {
        options.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    options
}

impl Mirror {
    fn accept(&mut self, report: Telemetry) {
        let publication = match self.settings.topics.publication(&report) {
            Ok(p) => p,
            Err(error) => {
                warn!(%error, "telemetry report cannot be serialised; not published");
                return;
            }
        };
        let size = publication.topic.len() + publication.payload.len();
        if size > MAX_MESSAGE_BYTES {
            warn!(
                topic = %publication.topic,
                size,
                limit = MAX_MESSAGE_BYTES,
                "MQTT message too large; dropped"
            );
            self.oversized += 1;
            return;
        }
        if self.outbox.push(publication) == Pushed::QueuedDroppingOldest {
            self.log_drops();
        }
    }

    fn log_drops(&mut self) {
        let dropped = self.outbox.dropped();
        let now = Instant::now();
        match self.last_drop_log {
            None => {
                warn!(
                    capacity = self.settings.buffer_messages,
                    "MQTT offline buffer full: dropping the oldest messages"
                );
            }
            Some(last) if now.duration_since(last) >= DROP_LOG_INTERVAL => {
                warn!(
                    dropped = dropped - self.dropped_logged,
                    total = dropped,
                    "MQTT offline buffer still full: messages dropped"
                );
            }
            Some(_) => return,
        }
        self.last_drop_log = Some(now);
        self.dropped_logged = dropped;
    }

    /// Hands the client whatever the outbox lets go.
    fn pump(&mut self) {
        while let Some(p) = self.outbox.hand_next() {
            let qos = QoS::AtLeastOnce;
            if let Err(error) = self.client.try_publish(p.topic, qos, p.retain, p.payload) {
                debug!(%error, "MQTT client queue full; retrying later");
                self.outbox.unhand_last();
                break;
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                info!(
                    broker = %format!("{}:{}", self.settings.host, self.settings.port),
                    buffered = self.outbox.buffered(),
                    "MQTT broker connected"
                );
                self.failing = false;
                self.backoff = self.settings.reconnect_min;
                let online = self.settings.topics.status_publication(true);
                self.outbox.connected(online);
            }
            Event::Outgoing(Outgoing::Publish(pkid)) if !self.outbox.sent(pkid) => {
                debug!(pkid, "MQTT publish not handed by the mirror");
            }
            Event::Incoming(Packet::PubAck(ack)) if self.outbox.acked(ack.pkid) => {
                self.settings
                    .stats
                    .published
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn connection_failed(&mut self, eventloop: &mut EventLoop, error: &ConnectionError) {
        // Events queued before the failure (e.g. PUBACKs read together with the EOF) belong to
        // the dead connection; their messages are sent again.
        eventloop.state.events.clear();
        let was_connected = self.outbox.is_connected();
        // Also after a failed attempt: the stream goes to the spool until the broker is back.
        self.outbox.disconnected();
        if was_connected {
            warn!(%error, "MQTT broker connection lost; buffering and reconnecting");
            self.failing = true;
        } else if !self.failing {
            warn!(
                broker = %format!("{}:{}", self.settings.host, self.settings.port),
                %error,
                "MQTT broker unreachable; buffering and retrying in the background"
            );
            self.failing = true;
        } else {
            debug!(%error, retry_in = ?self.backoff, "MQTT broker still unreachable");
        }
    }

    /// Fsyncs what was appended to the spool since the last time, off the async worker.
    fn sync_spool(&mut self) {
        if let Some(file) = self.outbox.spool_sync_handle() {
            tokio::task::spawn_blocking(move || {
                if let Err(error) = file.sync_data() {
                    warn!(%error, "MQTT spool: fsync failed");
                }
            });
        }
    }

    fn update_stats(&self) {
        let stats = &self.settings.stats;
        let (spooled, spooled_bytes) = self.outbox.spooled();
        stats.spooled.store(spooled as u64, Ordering::Relaxed);
        stats.spooled_bytes.store(spooled_bytes, Ordering::Relaxed);
        stats
            .buffered
            .store(self.outbox.buffered() as u64, Ordering::Relaxed);
        stats
            .dropped
            .store(self.outbox.dropped() + self.oversized, Ordering::Relaxed);
        stats
            .connected
            .store(self.outbox.is_connected(), Ordering::Relaxed);
    }

    /// Delivers what it can within the grace period, publishes `offline`, disconnects.
    async fn goodbye(&mut self, eventloop: &mut EventLoop) {
        let start = Instant::now();
        let flush_until = start + FLUSH_GRACE;
        let deadline = start + SHUTDOWN_GRACE;
        while self.outbox.is_connected() && !self.outbox.is_flushed() {
            self.pump();
            match timeout_at(flush_until, eventloop.poll()).await {
                Ok(Ok(event)) => self.event(event),
                Ok(Err(_)) => self.outbox.disconnected(),
                Err(_) => break,
            }
        }
        if self.outbox.is_connected() {
            let status = self.settings.topics.status_publication(false);
            let sent = self
                .client
                .try_publish(status.topic, QoS::AtLeastOnce, true, status.payload)
                .and_then(|()| self.client.try_disconnect());
            if let Err(error) = sent {
                debug!(%error, "MQTT goodbye not queued");
            }
            loop {
                match timeout_at(deadline, eventloop.poll()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => {
                        info!("MQTT status offline published; disconnected");
                        break;
                    }
                    Ok(Ok(event)) => self.event(event),
                    Ok(Err(_)) | Err(_) => {
                        debug!("MQTT disconnect not confirmed");
                        break;
                    }
                }
            }
        }
        self.outbox.disconnected();
        self.outbox.persist();
        self.update_stats();
        if self.outbox.buffered() > 0 {
            info!(
                unsent = self.outbox.buffered(),
                spooled = self.outbox.spooled().0,
                "MQTT mirror stopped with undelivered messages; they are sent after the next start"
            );
        } else {
            info!("MQTT mirror stopped");
        }
    }
}
