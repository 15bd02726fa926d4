//! The single tables of the configuration file (CONTRACT §2) as typed settings, with the
//! defaults that apply when a key is left out. Field names are the TOML keys.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

/// `[station]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Station {
    /// Second MQTT topic level (`{prefix}/{name}/…`).
    pub name: String,
    /// Persisted counters, IOA assignments, limits and transaction ids.
    pub state_dir: PathBuf,
}

impl Default for Station {
    fn default() -> Self {
        Self {
            name: "ocpp809".into(),
            state_dir: "/var/lib/ocpp809".into(),
        }
    }
}

/// `[iec104]`: the controlled station on TCP (IEC 60870-5-104).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Iec104 {
    /// Address SCADA masters connect to.
    pub listen: SocketAddr,
    /// Common address of ASDU, 1..=65534.
    pub common_address: u16,
    /// Unacknowledged I-frames sent before sending stops, 1..=32767.
    pub k: u16,
    /// I-frames received before acknowledging, 1..=32767, below `k`.
    pub w: u16,
    /// Connection establishment timeout, 1..=255 s.
    pub t0_s: u64,
    /// Acknowledgement timeout for sent I- and U-frames, 1..=255 s.
    pub t1_s: u64,
    /// Acknowledgement delay without own data, 1..=255 s, below `t1_s`.
    pub t2_s: u64,
    /// Idle time before a TESTFR, 1..=172800 s.
    pub t3_s: u64,
    /// Masters allowed to connect; empty: any.
    pub allowed_masters: Vec<IpAddr>,
    /// Simultaneous master connections, at least 1.
    pub max_masters: usize,
    /// Which STARTDT-active masters receive monitoring data.
    pub redundancy: Redundancy,
    /// GI answers use the time-tagged types 30/36/37 instead of 1/13/15.
    pub gi_with_time: bool,
    /// Time from select to execute in select-before-operate, seconds.
    pub select_timeout_s: u64,
    /// A power-limit change larger than this (kW) requires select-before-operate.
    pub large_change_kw: f64,
    /// Power changes smaller than this (kW) are not reported spontaneously.
    pub power_deadband_kw: f64,
    /// Current changes smaller than this (A) are not reported spontaneously.
    pub current_deadband_a: f64,
    /// Serve plain IEC 104 on `listen`; false: TLS only.
    pub plain: bool,
    /// `[iec104.tls]`: IEC 104 over TLS (IEC 62351-3).
    pub tls: Iec104Tls,
}

impl Default for Iec104 {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 2404)),
            common_address: 1,
            k: 12,
            w: 8,
            t0_s: 30,
            t1_s: 15,
            t2_s: 10,
            t3_s: 20,
            allowed_masters: Vec::new(),
            max_masters: 10,
            redundancy: Redundancy::PerConnection,
            gi_with_time: true,
            select_timeout_s: 10,
            large_change_kw: 50.0,
            power_deadband_kw: 0.1,
            current_deadband_a: 0.1,
            plain: true,
            tls: Iec104Tls::default(),
        }
    }
}

/// `[iec104.tls]`: IEC 104 over TLS with mutual authentication (IEC 62351-3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Iec104Tls {
    /// Serve IEC 104 over TLS on `listen`.
    pub enabled: bool,
    /// Address of the TLS port (IEC 62351-3 assigns 19998).
    pub listen: SocketAddr,
    /// PEM certificate chain of this station, leaf first.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA certificate(s) the masters' certificates must chain to.
    pub ca: PathBuf,
    /// PEM files of the master certificates allowed; empty: any that chains to `ca`.
    pub allowed_masters: Vec<PathBuf>,
}

impl Default for Iec104Tls {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 19998)),
            cert: "/etc/ocpp809/tls/iec104.crt".into(),
            key: "/etc/ocpp809/tls/iec104.key".into(),
            ca: "/etc/ocpp809/tls/scada-ca.crt".into(),
            allowed_masters: Vec::new(),
        }
    }
}

/// `[ocpp.tls]`: the wss:// endpoint (OCPP security profiles 2 and 3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcppTls {
    /// Serve wss:// on `listen`.
    pub enabled: bool,
    /// Address of the wss:// endpoint.
    pub listen: SocketAddr,
    /// PEM certificate chain of the central system, leaf first.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA certificate(s) for profile-3 client certificates; empty: none asked for.
    pub client_ca: PathBuf,
}

impl Default for OcppTls {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 9443)),
            cert: "/etc/ocpp809/tls/ocpp.crt".into(),
            key: "/etc/ocpp809/tls/ocpp.key".into(),
            client_ca: PathBuf::new(),
        }
    }
}

/// Which STARTDT-active masters receive monitoring data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Redundancy {
    /// Every STARTDT-active master gets all data.
    PerConnection,
    /// Only the master that sent STARTDT last gets data.
    SingleGroup,
}

/// `[ocpp]`: the endpoint chargers connect to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ocpp {
    /// Address of the WebSocket server.
    pub listen: SocketAddr,
    /// Offered WebSocket subprotocols in preference order, each one of
    /// [`OCPP_VERSIONS`](super::OCPP_VERSIONS), none twice.
    pub versions: Vec<String>,
    /// How non-conforming payloads are treated.
    pub mode: OcppMode,
    /// Wait for a charger's answer to a CALL, seconds.
    pub call_timeout_s: u64,
    /// Heartbeat interval given to chargers at boot, seconds.
    pub heartbeat_interval_s: u64,
    /// Unknown charge point ids are accepted and get an IOA block.
    pub accept_unknown: bool,
    /// First IOA block for unknown chargers; later ones follow in steps of 100.
    pub auto_ioa_base: u32,
    /// `max_kw` of unknown chargers.
    pub default_max_kw: f64,
    /// `connectors` of unknown chargers, 1..=8.
    pub default_connectors: u8,
    /// Open charger connections (including handshakes in progress), at least 1.
    pub max_connections: usize,
    /// Open connections from one IP address; 0 = no cap beyond `max_connections`.
    pub max_connections_per_ip: usize,
    /// Messages per second one charger may send, sustained (bursts of five seconds' worth);
    /// above it the connection is read more slowly. 0 = no limit.
    pub max_messages_per_s: f64,
    /// Serve ws:// on `listen`; false: wss:// only.
    pub plain: bool,
    /// Minimum OCPP security profile (0..=3) of chargers without their own.
    pub security_profile: u8,
    /// `[ocpp.tls]`: the wss:// endpoint.
    pub tls: OcppTls,
}

impl Default for Ocpp {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 9000)),
            versions: vec!["ocpp2.0.1".into(), "ocpp1.6".into()],
            mode: OcppMode::Lenient,
            call_timeout_s: 30,
            heartbeat_interval_s: 300,
            accept_unknown: true,
            auto_ioa_base: 10_000,
            default_max_kw: 22.0,
            default_connectors: 2,
            max_connections: 10_000,
            max_connections_per_ip: 100,
            max_messages_per_s: 50.0,
            plain: true,
            security_profile: 0,
            tls: OcppTls::default(),
        }
    }
}

/// How non-conforming OCPP payloads are treated (CONTRACT §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OcppMode {
    /// Sanitize and count non-conforming input.
    Lenient,
    /// Reject non-conforming input.
    Strict,
}

/// `[mqtt]`: publication of state and events (CONTRACT §5).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mqtt {
    /// Whether to connect to a broker at all.
    pub enabled: bool,
    /// `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub url: String,
    /// First topic level(s); no `+` or `#`.
    pub topic_prefix: String,
    /// Messages buffered while the broker is unreachable, at least 1.
    pub buffer_messages: usize,
    /// `mqtts://` only: PEM file with the CA certificate(s) to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// `mqtts://` only: PEM client certificate (chain) for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// `mqtts://` only: PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// User name for the broker; overrides a `user@` in `url`.
    pub username: Option<String>,
    /// Password for the broker; overrides a `:password@` in `url`. Never logged.
    pub password: Option<Secret>,
}

/// `[http]`: Prometheus metrics and the read-only status page (docs/observability.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Whether to serve `/metrics`, `/` and `/health` at all.
    pub enabled: bool,
    /// Address to listen on; loopback by default (the pages are read-only, not public).
    pub listen: SocketAddr,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9809)),
        }
    }
}

/// `url` with the password of a `user:password@` login replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((login, host)) => match login.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A configuration value that must not appear in logs: `Debug` prints `"***"`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Default for Mqtt {
    fn default() -> Self {
        Self {
            enabled: true,
            url: "mqtt://127.0.0.1:1883".into(),
            topic_prefix: "ocpp809".into(),
            buffer_messages: 100_000,
            ca_file: None,
            client_cert: None,
            client_key: None,
            username: None,
            password: None,
        }
    }
}

/// `[site]`: site points and site power management.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Site {
    /// First IOA of the site block (offsets 0..=10).
    pub ioa_base: u32,
    /// Site limit in kW; 0: none.
    pub limit_kw: f64,
    /// Site limit in kW while SCADA is absent.
    pub failsafe_limit_kw: f64,
    /// Seconds without SCADA before the failsafe limit applies; 0: failsafe off.
    pub scada_loss_timeout_s: u64,
}

impl Default for Site {
    fn default() -> Self {
        Self {
            ioa_base: 1,
            limit_kw: 0.0,
            failsafe_limit_kw: 0.0,
            scada_loss_timeout_s: 0,
        }
    }
}
