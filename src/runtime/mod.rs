//! Wires the parts into a running daemon: builds the process image from the point layout,
//! starts the IEC 104 server and the application (mapping engine) task, and shuts them
//! down in order. Each long-lived part is a task; they talk over bounded channels.

mod application;
mod persistence;
mod tls;
mod watchdog;

use application::Application;

use std::path::PathBuf;
use std::sync::atomic::AtomicI32;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{Config, Redundancy as ConfigRedundancy};
use crate::health::Health;
use crate::iec104::link::LinkConfig;
use crate::iec104::server::{self, ServerSettings};
use crate::mapping::engine::UnknownPolicy;
use crate::mapping::engine::{ChargerSettings, MeterSettings};
use crate::mapping::layout::ChargerBlock;
use crate::mapping::{Engine, EngineConfig, Input, PointList};
use crate::net::HEARTBEAT_PERIOD;
use crate::observe::{self, Directory, Metrics};
use crate::ocpp::credentials::{self, Credentials};
use crate::ocpp::server::{self as ocpp_server, Router};
use crate::ocpp::{Mode, Version};
use crate::station::{Redundancy, Station, StationConfig, StationHandle};
use crate::store::Store;

/// Commands and requests waiting for the application task.
const APPLICATION_QUEUE: usize = 1024;
/// Charger events waiting for the application task; a full queue slows the chargers' reads.
const CHARGER_EVENT_QUEUE: usize = 4096;
/// Meter readings waiting for the application task.
const METER_EVENT_QUEUE: usize = 256;
/// Reports waiting for the MQTT mirror, which buffers them itself while the broker is away.
const TELEMETRY_QUEUE: usize = 8192;
/// Events kept per master (and while no master is active) before the oldest is dropped.
const EVENT_CAPACITY: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot listen for IEC 104 on {address}: {source}")]
    Iec104Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot listen for OCPP on {address}: {source}")]
    OcppListen {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot handle SIGHUP (TLS reload): {0}")]
    Hangup(std::io::Error),
    #[error("cannot listen for HTTP (metrics, status page) on {address}: {source}")]
    HttpListen {
        address: String,
        source: std::io::Error,
    },
    #[error("MQTT: {0}")]
    Mqtt(#[from] crate::mqtt::MqttError),
    #[error("state store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("the process image cannot be built: {0}")]
    Image(#[from] crate::station::image::ImageError),
    #[error("charger passwords: {0}")]
    Credentials(#[from] crate::ocpp::credentials::file::FileError),
}

/// The test hook `OCPP809_TEST_STALL=TASK:SECONDS` makes task TASK stop turning after
/// SECONDS, to prove that the watchdog notices (tests/interop/test_systemd.py).
fn test_stall(task: &str) -> Option<Duration> {
    let value = std::env::var("OCPP809_TEST_STALL").ok()?;
    let (name, seconds) = value.split_once(':')?;
    let seconds: f64 = seconds
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)?;
    (name == task).then(|| Duration::from_secs_f64(seconds))
}

pub fn station_config(config: &Config) -> StationConfig {
    StationConfig {
        gi_with_time: config.iec104.gi_with_time,
        select_timeout: Duration::from_secs(config.iec104.select_timeout_s),
        event_capacity: EVENT_CAPACITY,
        redundancy: match config.iec104.redundancy {
            ConfigRedundancy::PerConnection => Redundancy::PerConnection,
            ConfigRedundancy::SingleGroup => Redundancy::SingleGroup,
        },
        ..StationConfig::default()
    }
}

fn ocpp_mode(mode: crate::config::OcppMode) -> Mode {
    match mode {
        crate::config::OcppMode::Lenient => Mode::Lenient,
        crate::config::OcppMode::Strict => Mode::Strict,
    }
}

pub fn ocpp_settings(config: &Config) -> ocpp_server::ServerSettings {
    ocpp_server::ServerSettings {
        versions: config
            .ocpp
            .versions
            .iter()
            .filter_map(|name| Version::from_subprotocol(name))
            .collect(),
        mode: ocpp_mode(config.ocpp.mode),
        modes: config
            .charger
            .iter()
            .filter_map(|c| Some((c.id.clone(), ocpp_mode(c.mode?))))
            .collect(),
        heartbeat_interval_s: u32::try_from(config.ocpp.heartbeat_interval_s).unwrap_or(u32::MAX),
        call_timeout: Duration::from_secs(config.ocpp.call_timeout_s),
        known_chargers: (!config.ocpp.accept_unknown)
            .then(|| config.charger.iter().map(|c| c.id.clone()).collect()),
        credentials: Arc::new(Credentials::from_config(config)),
        max_connections: config.ocpp.max_connections,
        max_connections_per_ip: config.ocpp.max_connections_per_ip,
        max_messages_per_s: Some(config.ocpp.max_messages_per_s).filter(|rate| *rate > 0.0),
        // Security profiles, validated to 0..=3.
        profiles: crate::ocpp::security::Profiles {
            default: crate::ocpp::security::Profile::new(config.ocpp.security_profile)
                .unwrap_or_default(),
            chargers: config
                .charger
                .iter()
                .filter_map(|c| {
                    let profile = crate::ocpp::security::Profile::new(c.security_profile?)?;
                    Some((c.id.clone(), profile))
                })
                .collect(),
        },
        auth_throttle: Default::default(),
        transaction_ids: Arc::new(AtomicI32::new(1)),
        metrics: Arc::default(),
        upstream: None,
    }
}

pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        site_ioa_base: config.site.ioa_base,
        site_limit_kw: Some(config.site.limit_kw).filter(|kw| *kw > 0.0),
        large_change_kw: config.iec104.large_change_kw,
        power_deadband_kw: config.iec104.power_deadband_kw,
        current_deadband_a: config.iec104.current_deadband_a,
        failsafe_limit_kw: Some(config.site.failsafe_limit_kw).filter(|kw| *kw > 0.0),
        unknown: config.ocpp.accept_unknown.then(|| UnknownPolicy {
            auto_ioa_base: config.ocpp.auto_ioa_base,
            max_kw: config.ocpp.default_max_kw,
            connectors: config.ocpp.default_connectors,
            used: config
                .used_ioa_ranges()
                .into_iter()
                .map(|(range, _)| range)
                .collect(),
        }),
        scada_loss_timeout: i64::try_from(config.site.scada_loss_timeout_s)
            .ok()
            .filter(|s| *s > 0)
            .and_then(chrono::Duration::try_seconds),
        chargers: config
            .charger
            .iter()
            .map(|c| ChargerSettings {
                block: ChargerBlock {
                    id: c.id.clone(),
                    ioa_base: c.ioa_base,
                    connectors: c.connectors,
                },
                max_kw: c.max_kw,
                phases: c.phases,
            })
            .collect(),
        telemetry: config.mqtt.enabled,
        meters: config
            .meter
            .iter()
            .map(|m| MeterSettings {
                name: m.name.clone(),
                ioa_base: m.ioa_base,
                poll_interval: chrono::Duration::milliseconds(
                    i64::try_from(m.poll_ms).unwrap_or(i64::MAX),
                ),
                grid_meter: m.grid_meter,
            })
            .collect(),
    }
}

impl RuntimeError {
    fn iec104(address: String, source: std::io::Error) -> Self {
        RuntimeError::Iec104Listen { address, source }
    }

    fn ocpp(address: String, source: std::io::Error) -> Self {
        RuntimeError::OcppListen { address, source }
    }
}

/// Binds `address`; `error` names the service in the failure.
async fn bind(
    address: std::net::SocketAddr,
    error: fn(String, std::io::Error) -> RuntimeError,
) -> Result<TcpListener, RuntimeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| error(address.to_string(), source))
}

/// The plain and/or TLS listeners of one service: `plain` (when its section serves plain
/// connections) and `tls` (when `tls.enabled`), the TLS one logged with its certificate.
async fn bind_service(
    service: &'static str,
    plain: Option<std::net::SocketAddr>,
    tls: Option<(
        std::net::SocketAddr,
        &Arc<crate::tls::ReloadableServerConfig>,
    )>,
    error: fn(String, std::io::Error) -> RuntimeError,
) -> Result<crate::tls::Listeners, RuntimeError> {
    let plain = match plain {
        Some(address) => Some(bind(address, error).await?),
        None => None,
    };
    let tls = match tls {
        Some((address, config)) => {
            let listener = bind(address, error).await?;
            info!(service, listen = %address, certificate_sha256 = %config.current().fingerprint, "listening over TLS");
            Some((listener, config.clone()))
        }
        None => None,
    };
    Ok(crate::tls::Listeners { plain, tls })
}

/// Runs until `shutdown` turns true; returns once every task has stopped.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> Result<(), RuntimeError> {
    // SIGHUP reloads certificates and must never end the daemon, so its handler
    // goes in first; the TLS files are read now so that a wrong path stops the start.
    let hangup = tls::hangup().map_err(RuntimeError::Hangup)?;
    let ocpp_tls = tls::load(tls::ocpp_files(&config))?;
    let iec104_tls = tls::load(tls::iec104_files(&config))?;
    // The store creates the directory and names it in its errors.
    let state_dir = PathBuf::from(&config.station.state_dir);

    // Certificate files are read now, so a wrong path stops the start with its name.
    let mqtt_settings = config
        .mqtt
        .enabled
        .then(|| crate::mqtt::MqttSettings::from_config(&config.mqtt, &config.station))
        .transpose()?;
    let points = PointList::from_config(&config);
    let mut station = Station::new(station_config(&config));
    station.add_points(points.specs(), None)?;
    let mut engine = Engine::new(engine_config(&config));
    let station = StationHandle::new(station);
    application::apply(&station, engine.handle(Utc::now(), Input::Start));
    let store = Store::open(&state_dir)?;
    let snapshot = store.load()?;
    application::apply(
        &station,
        engine.restore(Utc::now(), &persistence::restored_state(&snapshot)),
    );
    let transaction_ids = Arc::new(AtomicI32::new(snapshot.next_transaction_id.unwrap_or(1)));
    let credentials = Arc::new(Credentials::with_file(
        &config,
        credentials::file_path(&state_dir),
    )?);
    info!(
        state = %store.path().display(),
        counters = snapshot.counters.len(),
        charger_limits = snapshot.charger_limits.len(),
        ioa_blocks = snapshot.ioa_blocks.len(),
        "state store opened"
    );
    let persistence = persistence::Persistence::new(store, transaction_ids.clone());
    let metrics = Arc::new(Metrics::new(
        config.meter.iter().map(|m| m.name.clone()).collect(),
        mqtt_settings.as_ref().map(|s| s.stats.clone()),
    ));
    let mut directory_points = points.clone();
    directory_points.add_assigned_blocks(&snapshot.ioa_blocks, config.ocpp.default_connectors);
    let directory = Arc::new(Directory::new(
        directory_points,
        config.ocpp.default_connectors,
    ));

    let listen = config.iec104.listen.to_string();
    let listener = bind_service(
        "iec104",
        config.iec104.plain.then_some(config.iec104.listen),
        iec104_tls
            .as_ref()
            .map(|tls| (config.iec104.tls.listen, tls)),
        RuntimeError::iec104,
    )
    .await?;
    let (app_tx, app_rx) = mpsc::channel(APPLICATION_QUEUE);
    let settings = ServerSettings {
        allowed_masters: config.iec104.allowed_masters.clone(),
        max_masters: config.iec104.max_masters,
        link: LinkConfig {
            k: config.iec104.k,
            w: config.iec104.w,
            t1: Duration::from_secs(config.iec104.t1_s),
            t2: Duration::from_secs(config.iec104.t2_s),
            t3: Duration::from_secs(config.iec104.t3_s),
        },
        common_address: config.iec104.common_address,
        metrics: metrics.clone(),
    };
    info!(
        station = %config.station.name,
        iec104 = %listen,
        points = points.points.len(),
        chargers = config.charger.len(),
        "ocpp809 ready"
    );
    let ocpp_listener = bind_service(
        "ocpp",
        config.ocpp.plain.then_some(config.ocpp.listen),
        ocpp_tls.as_ref().map(|tls| (config.ocpp.tls.listen, tls)),
        RuntimeError::ocpp,
    )
    .await?;
    if config.ocpp.plain {
        info!(ocpp = %config.ocpp.listen, versions = ?config.ocpp.versions, "OCPP central system listening (ws://)");
    }
    let http_listener = match config.http.enabled {
        true => {
            let address = config.http.listen.to_string();
            let listener =
                TcpListener::bind(&address)
                    .await
                    .map_err(|source| RuntimeError::HttpListen {
                        address: address.clone(),
                        source,
                    })?;
            info!(http = %address, "metrics and status page on http://{address}/");
            Some(listener)
        }
        false => None,
    };
    let router = Router::default();
    let (charger_tx, charger_rx) = mpsc::channel(CHARGER_EVENT_QUEUE);
    let health = Health::default();
    let beat = |name: &str| health.register(name, HEARTBEAT_PERIOD);
    let mut tasks: Vec<(String, tokio::task::JoinHandle<()>)> = Vec::new();
    for block in &config.iec101 {
        let name = format!("IEC 101 line {}", block.device);
        tasks.push((
            name.clone(),
            tokio::spawn(crate::iec101::line::serve_line(
                block.clone(),
                station.clone(),
                app_tx.clone(),
                shutdown.clone(),
                beat(&name),
                metrics.clone(),
            )),
        ));
    }
    tasks.push((
        "IEC 104 server".into(),
        tokio::spawn(server::serve(
            listener,
            settings,
            station.clone(),
            app_tx,
            shutdown.clone(),
            beat("IEC 104 server"),
        )),
    ));
    tasks.push((
        "OCPP server".into(),
        tokio::spawn(ocpp_server::serve(
            ocpp_listener,
            ocpp_server::ServerSettings {
                transaction_ids,
                metrics: metrics.clone(),
                upstream: crate::ocpp::relay::settings::from_config(&config, metrics.clone()),
                credentials,
                ..ocpp_settings(&config)
            },
            router.clone(),
            charger_tx,
            shutdown.clone(),
            beat("OCPP server"),
        )),
    ));
    // SIGHUP reload
    tasks.push((
        "TLS reload".into(),
        tokio::spawn(tls::reload_on_hangup(
            hangup,
            ocpp_tls.into_iter().chain(iec104_tls).collect(),
            shutdown.clone(),
        )),
    ));
    let (meter_tx, meter_rx) = mpsc::channel(METER_EVENT_QUEUE);
    if !config.meter.is_empty() {
        // One task per connection: RTU meters on one bus share their port.
        tasks.push((
            "Modbus meters".into(),
            tokio::spawn(crate::modbus::run_meters(
                config.meter.clone(),
                meter_tx.clone(),
                shutdown.clone(),
                health.clone(),
            )),
        ));
    }
    // Without meters the channel closes and the application stops listening to it.
    drop(meter_tx);
    let mqtt_stats = mqtt_settings.as_ref().map(|s| s.stats.clone());
    let telemetry = match mqtt_settings {
        Some(settings) => {
            let (telemetry_tx, telemetry_rx) = mpsc::channel(TELEMETRY_QUEUE);
            tasks.push((
                "MQTT mirror".into(),
                tokio::spawn(crate::mqtt::run(
                    settings,
                    telemetry_rx,
                    shutdown.clone(),
                    beat("MQTT mirror"),
                )),
            ));
            Some(telemetry_tx)
        }
        None => None,
    };
    let summary = {
        let (station, router) = (station.clone(), router.clone());
        move || {
            let mqtt = match &mqtt_stats {
                Some(stats) if stats.connected() => "connected",
                Some(_) => "disconnected",
                None => "off",
            };
            format!(
                "masters {}, chargers online {}, MQTT {mqtt}",
                station.with(|s| s.active_sessions()),
                router.connected()
            )
        }
    };
    if let Some(listener) = http_listener {
        let observer = observe::Observer {
            metrics: metrics.clone(),
            station: station.clone(),
            directory: directory.clone(),
            station_name: config.station.name.clone(),
            iec101_lines: config.iec101.len(),
        };
        tasks.push((
            "HTTP server".into(),
            tokio::spawn(observe::serve(
                listener,
                observer,
                shutdown.clone(),
                beat("HTTP server"),
            )),
        ));
    }
    let application = Application {
        engine,
        station,
        router,
        persistence,
        telemetry: application::TelemetryOut::new(telemetry),
        heartbeat: beat("application"),
        stall_after: test_stall("application"),
        metrics,
        directory,
    };
    tasks.push((
        "application".into(),
        tokio::spawn(application.run(app_rx, charger_rx, meter_rx, shutdown.clone())),
    ));
    watchdog::ready(&summary());
    tasks.push((
        "watchdog".into(),
        tokio::spawn(watchdog::run(health, summary, shutdown)),
    ));
    for (name, task) in tasks {
        if let Err(error) = task.await {
            warn!(%error, task = %name, "task ended abnormally");
        }
    }
    info!("ocpp809 stopped");
    Ok(())
}
