//! The MQTT mirror against a real mosquitto broker (CONTRACT §5, §7 "MQTT"): status and last
//! will, retained state for late subscribers, the offline buffer across a broker restart, and a
//! quiet, prompt shutdown without a broker.
//!
//! Needs the `mosquitto` binary (Debian package `mosquitto`; tests/run.sh installs it). Each
//! test starts its own broker on a free 127.0.0.1 port.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use ocpp809::config::{Mqtt, Station};
use ocpp809::mapping::telemetry::{
    ChargerNotice, ChargerReport, ConnectorReport, EventReport, MeterReport, SampleReport,
    SiteReport, Telemetry,
};
use ocpp809::mqtt::{self, MqttSettings};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};

const PREFIX: &str = "test";
const STATION: &str = "plant";

fn mosquitto_binary() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin"])
    {
        let candidate = Path::new(dir).join("mosquitto");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "the MQTT integration tests need the mosquitto broker: install it with \
         `apt-get install -y mosquitto` (tests/run.sh does)"
    );
}

/// A mosquitto process on a fixed 127.0.0.1 port, with persistence so that a restart keeps
/// the subscribers' sessions and retained messages.
struct Broker {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    fn start() -> Broker {
        Broker::start_with(|_| String::new())
    }

    /// `extra(dir)`: more configuration lines (e.g. a TLS listener), given the broker's
    /// directory.
    fn start_with(extra: impl FnOnce(&Path) -> String) -> Broker {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ocpp809-mqtt-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary broker directory");
        let port = free_port();
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\n\
             persistence_location {}/\nmax_queued_messages 100000\n{}",
            dir.display(),
            extra(&dir)
        );
        std::fs::write(dir.join("mosquitto.conf"), config).expect("broker config");
        let mut broker = Broker {
            port,
            dir,
            child: None,
        };
        broker.launch();
        broker
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.join("mosquitto.log")).expect("broker log");
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not listen on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, so mosquitto saves its sessions and retained messages.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same port.
    fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[derive(Clone, Debug)]
struct Message {
    topic: String,
    payload: String,
    retain: bool,
}

/// A rumqttc subscriber to `test/#` that records everything it receives and reconnects.
struct Subscriber {
    seen: Arc<Mutex<Vec<Message>>>,
    task: JoinHandle<()>,
}

impl Subscriber {
    async fn start(port: u16, id: &str, persistent: bool) -> Subscriber {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_clean_session(!persistent)
            .set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(tokio::sync::Notify::new());
        let task = {
            let seen = seen.clone();
            let subscribed = subscribed.clone();
            tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = client
                                .subscribe(format!("{PREFIX}/#"), QoS::AtLeastOnce)
                                .await;
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => subscribed.notify_one(),
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            seen.lock().expect("lock").push(Message {
                                topic: p.topic.clone(),
                                payload: String::from_utf8_lossy(&p.payload).into_owned(),
                                retain: p.retain,
                            });
                        }
                        Ok(_) => {}
                        Err(_) => sleep(Duration::from_millis(50)).await,
                    }
                }
            })
        };
        timeout(Duration::from_secs(5), subscribed.notified())
            .await
            .expect("subscriber subscribed");
        Subscriber { seen, task }
    }

    fn messages(&self) -> Vec<Message> {
        self.seen.lock().expect("lock").clone()
    }

    fn on(&self, topic: &str) -> Vec<Message> {
        let topic = format!("{PREFIX}/{STATION}/{topic}");
        self.messages()
            .into_iter()
            .filter(|m| m.topic == topic)
            .collect()
    }

    async fn wait_for(&self, what: &str, check: impl Fn(&Subscriber) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received: {:#?}",
                self.messages()
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A state directory removed when dropped.
struct TempState(PathBuf);

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running mirror task with its input and shutdown switch.
struct Mirror {
    telemetry: mpsc::Sender<Telemetry>,
    shutdown: watch::Sender<bool>,
    stats: Arc<mqtt::MqttStats>,
    task: JoinHandle<()>,
    /// The state directory made by [`Mirror::start_with`].
    _state: Option<TempState>,
}

impl Mirror {
    fn start(port: u16, buffer_messages: usize) -> Mirror {
        Mirror::start_with(Mqtt {
            url: format!("mqtt://127.0.0.1:{port}"),
            topic_prefix: PREFIX.into(),
            buffer_messages,
            ..Mqtt::default()
        })
    }

    /// With a fresh state directory (the spool lives in it).
    fn start_with(config: Mqtt) -> Mirror {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let state_dir = std::env::temp_dir().join(format!(
            "ocpp809-mqtt-state-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&state_dir);
        let mut mirror = Mirror::start_in(config, &state_dir);
        mirror._state = Some(TempState(state_dir));
        mirror
    }

    fn start_in(config: Mqtt, state_dir: &Path) -> Mirror {
        let station = Station {
            name: STATION.into(),
            state_dir: state_dir.to_owned(),
        };
        let mut settings = MqttSettings::from_config(&config, &station).expect("settings");
        settings.reconnect_min = Duration::from_millis(100);
        settings.reconnect_max = Duration::from_millis(400);
        let stats = settings.stats.clone();
        let (telemetry, rx) = mpsc::channel(1024);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(mqtt::run(
            settings,
            rx,
            shutdown_rx,
            ocpp809::health::Heartbeat::detached(),
        ));
        Mirror {
            telemetry,
            shutdown,
            stats,
            task,
            _state: None,
        }
    }

    async fn send(&self, report: Telemetry) {
        self.telemetry.send(report).await.expect("mirror running");
    }

    async fn wait_connected(&self, connected: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.stats.connected() != connected {
            assert!(Instant::now() < deadline, "mirror connected != {connected}");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts down and returns how long the task took to end.
    async fn stop(self) -> Duration {
        let start = Instant::now();
        let _ = self.shutdown.send(true);
        timeout(Duration::from_secs(5), self.task)
            .await
            .expect("mirror ends after shutdown")
            .expect("mirror task does not panic");
        start.elapsed()
    }
}

fn sample(value: f64) -> Telemetry {
    Telemetry::Sample(SampleReport {
        charger: "CP001".into(),
        connector: 1,
        ts: Utc::now(),
        measurand: "Energy.Active.Import.Register".into(),
        value: Some(value),
        unit: "Wh".into(),
        valid: true,
    })
}

fn site(power_kw: f64) -> Telemetry {
    Telemetry::Site(SiteReport {
        power_kw: Some(power_kw),
        energy_wh: None,
        limit_kw: None,
        failsafe: false,
        chargers_online: 1,
        ts: Utc::now(),
    })
}

fn charger(id: &str, power_kw: f64) -> Telemetry {
    let mut connectors = BTreeMap::new();
    connectors.insert(
        "1".to_string(),
        ConnectorReport {
            status: Some("Charging".into()),
            power_kw: Some(power_kw),
            energy_wh: None,
        },
    );
    Telemetry::Charger(ChargerReport {
        charger: id.into(),
        online: true,
        power_kw: Some(power_kw),
        energy_wh: None,
        limit_kw: None,
        connectors,
        ts: Utc::now(),
    })
}

fn meter(name: &str) -> Telemetry {
    Telemetry::Meter(MeterReport {
        name: name.into(),
        power_kw: Some(1.5),
        energy_wh: Some(10.0),
        current_a: None,
        voltage_v: Some(230.0),
        valid: true,
        ts: Utc::now(),
    })
}

fn json(m: &Message) -> serde_json::Value {
    serde_json::from_str(&m.payload).expect("JSON payload")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_online_when_connected_and_offline_after_shutdown() {
    let broker = Broker::start();
    let sub = Subscriber::start(broker.port, "sub-status", false).await;
    let mirror = Mirror::start(broker.port, 100);
    sub.wait_for("online", |s| {
        s.on("status").iter().any(|m| m.payload == "online")
    })
    .await;
    mirror.wait_connected(true).await;

    let late = Subscriber::start(broker.port, "sub-status-late", false).await;
    late.wait_for("retained online", |s| {
        s.on("status")
            .iter()
            .any(|m| m.payload == "online" && m.retain)
    })
    .await;

    let took = mirror.stop().await;
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
    sub.wait_for("offline", |s| {
        s.on("status")
            .last()
            .is_some_and(|m| m.payload == "offline")
    })
    .await;
    let after = Subscriber::start(broker.port, "sub-status-after", false).await;
    after
        .wait_for("retained offline", |s| {
            s.on("status")
                .iter()
                .any(|m| m.payload == "offline" && m.retain)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_receives_the_retained_state_but_not_the_stream() {
    let broker = Broker::start();
    let mirror = Mirror::start(broker.port, 100);
    mirror.wait_connected(true).await;
    mirror.send(site(3.0)).await;
    mirror.send(site(4.0)).await;
    mirror.send(charger("CP001", 7.0)).await;
    mirror.send(charger("odd/+#id", 1.0)).await;
    mirror.send(meter("grid")).await;
    mirror.send(sample(1.0)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while mirror.stats.buffered() > 0 || mirror.stats.published() < 6 {
        assert!(Instant::now() < deadline, "not all published");
        sleep(Duration::from_millis(20)).await;
    }

    let late = Subscriber::start(broker.port, "sub-late", false).await;
    late.wait_for("four retained snapshots and the status", |s| {
        s.messages().len() >= 5
    })
    .await;
    sleep(Duration::from_millis(200)).await;
    let messages = late.messages();
    assert!(messages.iter().all(|m| m.retain), "{messages:#?}");
    assert!(
        late.on("chargers/CP001/meter").is_empty(),
        "samples are not retained"
    );
    let site = late.on("site");
    assert_eq!(site.len(), 1);
    assert_eq!(json(&site[0])["power_kw"], serde_json::json!(4.0));
    assert_eq!(late.on("chargers/CP001/state").len(), 1);
    assert_eq!(
        late.on("chargers/odd%2F%2B%23id/state").len(),
        1,
        "{messages:#?}"
    );
    assert_eq!(json(&late.on("meters/grid")[0])["voltage_v"], 230.0);
    assert_eq!(late.on("status")[0].payload, "online");
    mirror.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_fed_while_the_broker_is_down_arrive_in_order_after_it_returns() {
    let mut broker = Broker::start();
    let sub = Subscriber::start(broker.port, "sub-buffer", true).await;
    let mirror = Mirror::start(broker.port, 100_000);
    mirror.wait_connected(true).await;
    mirror.send(sample(-1.0)).await;
    sub.wait_for("the first sample", |s| {
        !s.on("chargers/CP001/meter").is_empty()
    })
    .await;

    broker.stop();
    mirror.wait_connected(false).await;
    for n in 0..500 {
        mirror.send(sample(f64::from(n))).await;
    }
    mirror.send(charger("CP001", 9.0)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror.stats.buffered() < 500 {
        assert!(Instant::now() < deadline, "samples not buffered");
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mirror.stats.dropped(), 0);

    broker.launch();
    sub.wait_for("sample 499", |s| {
        s.on("chargers/CP001/meter")
            .iter()
            .any(|m| json(m)["value"] == 499.0)
    })
    .await;
    // At least once and in order: the first occurrences of the values are -1, 0, 1, ..., 499.
    let mut first_seen = Vec::new();
    for m in sub.on("chargers/CP001/meter") {
        let value = json(&m)["value"].as_f64().expect("a value");
        if !first_seen.contains(&value) {
            first_seen.push(value);
        }
    }
    let expected: Vec<f64> = (-1..500).map(f64::from).collect();
    assert_eq!(first_seen, expected);
    sub.wait_for("the charger state re-published", |s| {
        s.on("chargers/CP001/state")
            .iter()
            .any(|m| json(m)["power_kw"] == 9.0)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror.stats.buffered() > 0 {
        assert!(Instant::now() < deadline, "buffer not emptied");
        sleep(Duration::from_millis(10)).await;
    }
    mirror.stop().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_offline_buffer_keeps_the_newest_messages() {
    let mut broker = Broker::start();
    let sub = Subscriber::start(broker.port, "sub-drop", true).await;
    let mirror = Mirror::start(broker.port, 50);
    mirror.wait_connected(true).await;
    broker.stop();
    mirror.wait_connected(false).await;
    for n in 0..80 {
        mirror.send(sample(f64::from(n))).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror.stats.dropped() < 30 {
        assert!(Instant::now() < deadline, "drops not counted");
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mirror.stats.buffered(), 50);
    broker.launch();
    sub.wait_for("sample 79", |s| {
        s.on("chargers/CP001/meter")
            .iter()
            .any(|m| json(m)["value"] == 79.0)
    })
    .await;
    let values: Vec<f64> = sub
        .on("chargers/CP001/meter")
        .iter()
        .filter_map(|m| json(m)["value"].as_f64())
        .collect();
    assert_eq!(values.first(), Some(&30.0), "the oldest 30 were dropped");
    mirror.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_will_says_offline_when_the_mirror_dies() {
    let broker = Broker::start();
    let sub = Subscriber::start(broker.port, "sub-will", false).await;
    let mirror = Mirror::start(broker.port, 100);
    sub.wait_for("online", |s| {
        s.on("status").iter().any(|m| m.payload == "online")
    })
    .await;
    mirror.task.abort();
    let _ = mirror.task.await;
    sub.wait_for("offline from the last will", |s| {
        s.on("status")
            .last()
            .is_some_and(|m| m.payload == "offline")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_the_mirror_buffers_and_stops_promptly() {
    let port = free_port();
    let mirror = Mirror::start(port, 10);
    for n in 0..20 {
        mirror.send(sample(f64::from(n))).await;
    }
    mirror.send(site(1.0)).await;
    sleep(Duration::from_millis(300)).await;
    assert!(!mirror.stats.connected());
    assert_eq!(mirror.stats.buffered(), 10);
    assert_eq!(mirror.stats.dropped(), 10);
    let took = mirror.stop().await;
    assert!(took < Duration::from_millis(500), "shutdown took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_survives_broker_restarts_in_order_and_without_gaps() {
    let mut broker = Broker::start();
    let sub = Subscriber::start(broker.port, "sub-restarts", true).await;
    let mirror = Mirror::start(broker.port, 100_000);
    mirror.wait_connected(true).await;
    let feeder = {
        let telemetry = mirror.telemetry.clone();
        tokio::spawn(async move {
            for n in 0..3000 {
                telemetry
                    .send(sample(f64::from(n)))
                    .await
                    .expect("mirror running");
                if n % 10 == 0 {
                    sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    for _ in 0..2 {
        sleep(Duration::from_millis(150)).await;
        broker.restart();
    }
    feeder.await.expect("feeder");
    sub.wait_for("sample 2999", |s| {
        s.on("chargers/CP001/meter")
            .iter()
            .any(|m| json(m)["value"] == 2999.0)
    })
    .await;
    let mut first_seen = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in sub.on("chargers/CP001/meter") {
        let value = json(&m)["value"].as_f64().expect("a value");
        if seen.insert(value.to_bits()) {
            first_seen.push(value);
        }
    }
    let expected: Vec<f64> = (0..3000).map(f64::from).collect();
    assert_eq!(first_seen, expected);
    mirror.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_keeps_the_stream_across_a_restart_while_the_broker_is_down() {
    const N: u32 = 20_000;
    let mut broker = Broker::start();
    let sub = Subscriber::start(broker.port, "sub-spool", true).await;
    broker.stop();
    let state_dir = std::env::temp_dir().join(format!("ocpp809-mqtt-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    let config = Mqtt {
        url: format!("mqtt://127.0.0.1:{}", broker.port),
        topic_prefix: PREFIX.into(),
        buffer_messages: 100_000,
        ..Mqtt::default()
    };

    let mirror = Mirror::start_in(config.clone(), &state_dir);
    for n in 0..N {
        mirror.send(sample(f64::from(n))).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while mirror.stats.spooled() < u64::from(N) {
        assert!(
            Instant::now() < deadline,
            "samples not spooled: {}",
            mirror.stats.spooled()
        );
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mirror.stats.buffered(), u64::from(N));
    assert_eq!(mirror.stats.dropped(), 0);
    let bytes = mirror.stats.spooled_bytes();
    assert!(bytes > u64::from(N) * 100);
    eprintln!(
        "spool: {N} samples in {bytes} bytes ({} bytes per message)",
        bytes / u64::from(N)
    );
    mirror.stop().await;
    let segments = std::fs::read_dir(state_dir.join("mqtt-spool"))
        .expect("spool directory")
        .count();
    assert!(segments >= 2, "{segments} segment files");

    // Started again with the broker still down: the spooled messages wait, in the spool.
    let mirror = Mirror::start_in(config, &state_dir);
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror.stats.buffered() < u64::from(N) {
        assert!(Instant::now() < deadline, "spool not picked up");
        sleep(Duration::from_millis(10)).await;
    }
    mirror.send(sample(f64::from(N))).await;

    broker.launch();
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let done = sub
            .on("chargers/CP001/meter")
            .iter()
            .any(|m| json(m)["value"] == f64::from(N));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered: {} received",
            sub.on("chargers/CP001/meter").len()
        );
        sleep(Duration::from_millis(50)).await;
    }
    // At least once, in order, no gaps: the first occurrences are 0, 1, ..., N.
    let mut first_seen = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in sub.on("chargers/CP001/meter") {
        let value = json(&m)["value"].as_f64().expect("a value");
        if seen.insert(value.to_bits()) {
            first_seen.push(value);
        }
    }
    let expected: Vec<f64> = (0..=N).map(f64::from).collect();
    assert!(
        first_seen == expected,
        "delivered out of order or with gaps"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror.stats.buffered() > 0 || mirror.stats.spooled_bytes() > 0 {
        assert!(Instant::now() < deadline, "spool not emptied");
        sleep(Duration::from_millis(10)).await;
    }
    mirror.stop().await;
    let left = std::fs::read_dir(state_dir.join("mqtt-spool"))
        .expect("spool directory")
        .count();
    assert_eq!(left, 0, "delivered segments are deleted");
    let _ = std::fs::remove_dir_all(&state_dir);
}

/// Runs openssl; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line tool (to make test certificates)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all P-256, in `dir`.
fn make_pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ocpp809 test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        let ext = format!(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("extensions file");
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let extfile = format!("{name}.ext");
        let subject = format!("/CN={name}");
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &extfile,
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_with_a_ca_file_and_a_client_certificate() {
    let tls_port = free_port();
    let broker = Broker::start_with(|dir| {
        make_pki(dir);
        let d = dir.display();
        format!(
            "listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\n\
             keyfile {d}/server.key\nrequire_certificate true\n"
        )
    });
    let sub = Subscriber::start(broker.port, "sub-tls", false).await;
    let mirror = Mirror::start_with(Mqtt {
        url: format!("mqtts://127.0.0.1:{tls_port}"),
        topic_prefix: PREFIX.into(),
        ca_file: Some(broker.dir.join("ca.pem")),
        client_cert: Some(broker.dir.join("client.pem")),
        client_key: Some(broker.dir.join("client.key")),
        ..Mqtt::default()
    });
    mirror.send(site(2.5)).await;
    sub.wait_for("status online and the site over TLS", |s| {
        s.on("status").iter().any(|m| m.payload == "online") && !s.on("site").is_empty()
    })
    .await;
    mirror.stop().await;
    sub.wait_for("offline", |s| {
        s.on("status")
            .last()
            .is_some_and(|m| m.payload == "offline")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_refuses_a_broker_the_ca_did_not_sign() {
    let tls_port = free_port();
    let broker = Broker::start_with(|dir| {
        make_pki(dir);
        let d = dir.display();
        format!(
            "listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\n\
             keyfile {d}/server.key\n"
        )
    });
    // The only trust anchor is a leaf (the client's certificate), not the server's CA.
    let mirror = Mirror::start_with(Mqtt {
        url: format!("mqtts://127.0.0.1:{tls_port}"),
        topic_prefix: PREFIX.into(),
        ca_file: Some(broker.dir.join("client.pem")),
        ..Mqtt::default()
    });
    sleep(Duration::from_millis(700)).await;
    assert!(!mirror.stats.connected());
    mirror.stop().await;
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_absent_broker_gives_one_warning_then_debug_lines() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mirror = Mirror::start(free_port(), 10);
    sleep(Duration::from_millis(1200)).await;
    mirror.stop().await;
    let text = String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned();
    let warnings = text.lines().filter(|l| l.contains(" WARN ")).count();
    let retries = text
        .lines()
        .filter(|l| l.contains("DEBUG") && l.contains("still unreachable"))
        .count();
    assert_eq!(warnings, 1, "{text}");
    assert!((2..=12).contains(&retries), "{retries} retries:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_dropped_instead_of_breaking_the_connection() {
    let broker = Broker::start();
    let sub = Subscriber::start(broker.port, "sub-big", false).await;
    let mirror = Mirror::start(broker.port, 100);
    mirror.wait_connected(true).await;
    mirror
        .send(Telemetry::Event(EventReport {
            charger: "CP001".into(),
            ts: Utc::now(),
            event: ChargerNotice::Coercion {
                kind: "huge".into(),
                detail: "x".repeat(300_000),
            },
        }))
        .await;
    mirror.send(sample(7.0)).await;
    sub.wait_for("the sample after the oversized event", |s| {
        !s.on("chargers/CP001/meter").is_empty()
    })
    .await;
    assert!(sub.on("chargers/CP001/events").is_empty());
    assert!(mirror.stats.connected());
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror.stats.dropped() != 1 {
        assert!(
            Instant::now() < deadline,
            "the oversized report is not counted"
        );
        sleep(Duration::from_millis(10)).await;
    }
    mirror.stop().await;
}
