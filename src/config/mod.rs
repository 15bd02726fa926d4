//! Configuration layer (CONTRACT §2): the TOML file an operator edits, read into typed
//! settings. Every key has a default, unknown keys are rejected, and the values are checked
//! against IEC 60870-5-104 §9.6 (k, w, t0–t3), the IEC 60870-5-101 field sizes, the point
//! layout of CONTRACT §3 and the Modbus rules of §7. Every error names file, line, column and
//! the dotted key (`charger[1].ioa_base`), because `check-config` prints it for an operator.

mod locate;
mod validate;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use locate::Source;

/// Highest information object address: IOAs are 3 octets on IEC 104.
pub const MAX_IOA: u32 = 16_777_215;
/// IOAs per charger block (offsets 0..=94 of CONTRACT §3, rounded to a block of 100).
pub const CHARGER_BLOCK_LEN: u32 = 100;
/// IOAs per meter block (offsets 0..=4).
pub const METER_BLOCK_LEN: u32 = 5;
/// IOAs of the site block (offsets 0..=10).
pub const SITE_BLOCK_LEN: u32 = 11;
/// OCPP subprotocols `ocpp.versions` may name.
pub const OCPP_VERSIONS: [&str; 3] = ["ocpp2.0.1", "ocpp1.6", "ocpp2.1"];

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub station: Station,
    pub iec104: Iec104,
    pub ocpp: Ocpp,
    pub mqtt: Mqtt,
    pub site: Site,
    pub iec101: Vec<Iec101>,
    pub meter: Vec<Meter>,
    pub charger: Vec<Charger>,
}

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

/// `[iec104]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Iec104 {
    pub listen: SocketAddr,
    pub common_address: u16,
    pub k: u16,
    pub w: u16,
    pub t0_s: u64,
    pub t1_s: u64,
    pub t2_s: u64,
    pub t3_s: u64,
    /// Empty: any master may connect.
    pub allowed_masters: Vec<IpAddr>,
    pub max_masters: usize,
    pub redundancy: Redundancy,
    pub gi_with_time: bool,
    pub select_timeout_s: u64,
    pub large_change_kw: f64,
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

/// `[ocpp]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ocpp {
    pub listen: SocketAddr,
    /// Offered WebSocket subprotocols in preference order, each one of [`OCPP_VERSIONS`].
    pub versions: Vec<String>,
    pub mode: OcppMode,
    pub call_timeout_s: u64,
    pub heartbeat_interval_s: u64,
    pub accept_unknown: bool,
    pub auto_ioa_base: u32,
    pub default_max_kw: f64,
    pub default_connectors: u8,
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
        }
    }
}

/// How non-conforming OCPP payloads are treated (CONTRACT §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OcppMode {
    Lenient,
    Strict,
}

/// `[mqtt]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mqtt {
    pub enabled: bool,
    /// `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub url: String,
    pub topic_prefix: String,
    pub buffer_messages: usize,
}

impl Default for Mqtt {
    fn default() -> Self {
        Self {
            enabled: true,
            url: "mqtt://127.0.0.1:1883".into(),
            topic_prefix: "ocpp809".into(),
            buffer_messages: 100_000,
        }
    }
}

/// `[site]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Site {
    pub ioa_base: u32,
    /// 0: no site limit.
    pub limit_kw: f64,
    pub failsafe_limit_kw: f64,
    /// 0: failsafe off.
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

/// `[[iec101]]`: one serial line serving the same point image as IEC 104.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iec101 {
    pub device: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default = "default_iec101_parity")]
    pub parity: Parity,
    #[serde(default)]
    pub mode: Iec101Mode,
    #[serde(default = "one")]
    pub link_address: u16,
    #[serde(default = "one")]
    pub link_address_size: u8,
    #[serde(default = "one")]
    pub common_address: u16,
    #[serde(default = "one")]
    pub cot_size: u8,
    #[serde(default = "one")]
    pub ca_size: u8,
    #[serde(default = "two")]
    pub ioa_size: u8,
}

/// Serial parity; always 8 data bits and 1 stop bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// IEC 60870-5-101 link transmission procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Iec101Mode {
    /// Secondary station, polled by the master.
    #[default]
    Unbalanced,
    Balanced,
}

/// `[[meter]]`: a Modbus meter, reached over TCP (`tcp`) or a serial line (`rtu`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meter {
    pub name: String,
    /// `host:port`; exactly one of `tcp` and `rtu` is set.
    #[serde(default)]
    pub tcp: Option<String>,
    /// Serial device; `baud` and `parity` apply to it only.
    #[serde(default)]
    pub rtu: Option<String>,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default = "default_meter_parity")]
    pub parity: Parity,
    #[serde(default = "one")]
    pub unit_id: u8,
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    pub ioa_base: u32,
    /// Site power management takes this meter's power as the site load.
    #[serde(default)]
    pub grid_meter: bool,
    #[serde(default)]
    pub register: Vec<MeterRegister>,
}

/// `[[meter.register]]`: where one measurand is read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterRegister {
    pub measurand: Measurand,
    /// Modbus function: 3 = holding registers, 4 = input registers.
    #[serde(default = "default_function")]
    pub function: u8,
    /// 0-based register address.
    pub address: u16,
    pub r#type: RegisterType,
    #[serde(default)]
    pub word_order: WordOrder,
    /// value = raw × scale, in `unit`.
    #[serde(default = "default_scale")]
    pub scale: f64,
    pub unit: Unit,
}

/// The measurands a meter register can feed (OCPP names, CONTRACT §3 meter points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Measurand {
    #[serde(rename = "Power.Active.Import")]
    PowerActiveImport,
    #[serde(rename = "Energy.Active.Import.Register")]
    EnergyActiveImportRegister,
    #[serde(rename = "Current.Import")]
    CurrentImport,
    #[serde(rename = "Voltage")]
    Voltage,
}

impl Measurand {
    /// The name used in the TOML file and in OCPP.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PowerActiveImport => "Power.Active.Import",
            Self::EnergyActiveImportRegister => "Energy.Active.Import.Register",
            Self::CurrentImport => "Current.Import",
            Self::Voltage => "Voltage",
        }
    }

    /// Whether a reading in `unit` can be converted to this measurand.
    pub fn accepts(self, unit: Unit) -> bool {
        matches!(
            (self, unit),
            (Self::PowerActiveImport, Unit::W | Unit::KW)
                | (Self::EnergyActiveImportRegister, Unit::Wh | Unit::KWh)
                | (Self::CurrentImport, Unit::A)
                | (Self::Voltage, Unit::V)
        )
    }
}

/// Register data type; 32/64-bit types span 2/4 registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterType {
    U16,
    I16,
    U32,
    I32,
    F32,
    U64,
}

impl RegisterType {
    /// The name used in the TOML file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::U64 => "u64",
        }
    }

    /// Number of 16-bit registers the value occupies.
    pub fn words(self) -> u16 {
        match self {
            Self::U16 | Self::I16 => 1,
            Self::U32 | Self::I32 | Self::F32 => 2,
            Self::U64 => 4,
        }
    }
}

/// Order of the 16-bit words of a multi-register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// High word first.
    #[default]
    Big,
    Little,
}

/// Unit of a register value after scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Unit {
    W,
    #[serde(rename = "kW")]
    KW,
    Wh,
    #[serde(rename = "kWh")]
    KWh,
    A,
    V,
}

impl Unit {
    /// The name used in the TOML file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::W => "W",
            Self::KW => "kW",
            Self::Wh => "Wh",
            Self::KWh => "kWh",
            Self::A => "A",
            Self::V => "V",
        }
    }

    /// Factor to W, Wh, A or V, the units the rest of the daemon works in.
    pub fn base_factor(self) -> f64 {
        match self {
            Self::KW | Self::KWh => 1000.0,
            Self::W | Self::Wh | Self::A | Self::V => 1.0,
        }
    }
}

/// `[[charger]]`: a charge point known in advance, with its IOA block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charger {
    /// Charge point id: the last path segment of its WebSocket URL.
    pub id: String,
    pub ioa_base: u32,
    #[serde(default = "default_max_kw")]
    pub max_kw: f64,
    /// Points exist for connectors (EVSEs) 1..=connectors.
    #[serde(default = "two")]
    pub connectors: u8,
    /// A ↔ kW conversions use 230 V × phases.
    #[serde(default = "three")]
    pub phases: u8,
}

fn one<T: From<u8>>() -> T {
    T::from(1)
}
fn two<T: From<u8>>() -> T {
    T::from(2)
}
fn three() -> u8 {
    3
}
fn default_baud() -> u32 {
    9600
}
fn default_iec101_parity() -> Parity {
    Parity::Even
}
fn default_meter_parity() -> Parity {
    Parity::None
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_function() -> u8 {
    4
}
fn default_scale() -> f64 {
    1.0
}
fn default_max_kw() -> f64 {
    22.0
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// `line` and `column` are 1-based; 0 when the position is unknown.
    #[error("{origin}:{line}:{column}: {key}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        column: usize,
        /// Dotted path such as `iec104.k` or `charger[1].ioa_base`.
        key: String,
        message: String,
    },
}

impl Config {
    /// The commented default configuration compiled into the binary.
    pub const DEFAULT_TOML: &'static str = include_str!("../default_config.toml");

    /// Parses [`Self::DEFAULT_TOML`].
    pub fn embedded_default() -> Config {
        // The embedded text is part of the build and a unit test proves it valid, so a failure
        // here is a build defect, not an operator error.
        match Self::from_toml_str(Self::DEFAULT_TOML, "<embedded>") {
            Ok(config) => config,
            Err(e) => panic!("embedded default configuration is invalid: {e}"),
        }
    }

    /// Parses and validates a configuration; `origin` names the text in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let source = Source::new(origin, text);
        let config: Config = toml::from_str(text).map_err(|e| source.toml_error(&e))?;
        validate::validate(&config, &source)?;
        Ok(config)
    }

    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml_str(&text, &origin),
            Err(source) => Err(ConfigError::Io {
                path: origin,
                source,
            }),
        }
    }

    /// IOA blocks taken by the site, configured meters and configured chargers, with their
    /// owner ("site", "meter grid", "charger CP001"), in that order. Blocks for unknown
    /// chargers are allocated at run time around these.
    pub fn used_ioa_ranges(&self) -> Vec<(Range<u32>, String)> {
        self.ioa_blocks()
            .into_iter()
            .map(|b| (b.range, b.owner))
            .collect()
    }

    fn ioa_blocks(&self) -> Vec<IoaBlock> {
        let block = |base: u32, len: u32, owner: String, key: String| IoaBlock {
            range: base..base.saturating_add(len),
            owner,
            key,
        };
        let site = block(
            self.site.ioa_base,
            SITE_BLOCK_LEN,
            "site".into(),
            "site.ioa_base".into(),
        );
        let meters = self.meter.iter().enumerate().map(|(i, m)| {
            block(
                m.ioa_base,
                METER_BLOCK_LEN,
                format!("meter {}", m.name),
                format!("meter[{i}].ioa_base"),
            )
        });
        let chargers = self.charger.iter().enumerate().map(|(i, c)| {
            block(
                c.ioa_base,
                CHARGER_BLOCK_LEN,
                format!("charger {}", c.id),
                format!("charger[{i}].ioa_base"),
            )
        });
        std::iter::once(site)
            .chain(meters)
            .chain(chargers)
            .collect()
    }

    /// A few lines for `check-config`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let i = &self.iec104;
        let masters = if i.allowed_masters.is_empty() {
            "any".to_string()
        } else {
            let ips: Vec<String> = i.allowed_masters.iter().map(|ip| ip.to_string()).collect();
            ips.join(", ")
        };
        let o = &self.ocpp;
        let unknown = if o.accept_unknown {
            format!("accepted from IOA {}", o.auto_ioa_base)
        } else {
            "rejected".into()
        };
        let grid = self
            .meter
            .iter()
            .find(|m| m.grid_meter)
            .map_or(String::new(), |m| format!(" (grid meter: {})", m.name));
        let mqtt = if self.mqtt.enabled {
            format!("on, {}, prefix {}", self.mqtt.url, self.mqtt.topic_prefix)
        } else {
            "off".into()
        };
        let kw = |v: f64| {
            if v > 0.0 {
                format!("{v} kW")
            } else {
                "none".into()
            }
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "station {:?}, state in {}",
            self.station.name,
            self.station.state_dir.display()
        );
        let _ = writeln!(
            out,
            "IEC 104: listen {}, common address {}, k={} w={}, up to {} masters from {masters}",
            i.listen, i.common_address, i.k, i.w, i.max_masters
        );
        let _ = writeln!(
            out,
            "OCPP: listen {}, versions {}, {} mode, unknown chargers {unknown}",
            o.listen,
            o.versions.join(", "),
            format!("{:?}", o.mode).to_lowercase()
        );
        let _ = writeln!(
            out,
            "{}, {}{grid}, {}",
            plural(self.charger.len(), "charger"),
            plural(self.meter.len(), "meter"),
            plural(self.iec101.len(), "serial line"),
        );
        let _ = writeln!(
            out,
            "site: IOA {}, limit {}, failsafe limit {}",
            self.site.ioa_base,
            kw(self.site.limit_kw),
            kw(self.site.failsafe_limit_kw)
        );
        let _ = write!(out, "MQTT: {mqtt}");
        out
    }
}

/// An IOA block of the configuration with the key that placed it.
struct IoaBlock {
    range: Range<u32>,
    owner: String,
    key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_validates() {
        let config = Config::embedded_default();
        assert_eq!(config.station.state_dir, PathBuf::from("./ocpp809-state"));
        assert!(config.charger.is_empty() && config.meter.is_empty() && config.iec101.is_empty());
    }

    #[test]
    fn embedded_default_states_the_same_defaults_as_the_code() {
        let mut config = Config::embedded_default();
        config.station.state_dir = Station::default().state_dir;
        assert_eq!(config, Config::default());
    }

    #[test]
    fn an_empty_file_is_the_default_configuration() {
        assert_eq!(
            Config::from_toml_str("", "empty.toml").ok(),
            Some(Config::default())
        );
    }
}
