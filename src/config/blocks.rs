//! The repeated blocks of the configuration file (`[[iec101]]`, `[[meter]]` with
//! `[[meter.register]]`, `[[charger]]`) as typed settings. Keys without a default are required;
//! the others default as listed in CONTRACT §2 and §7.

use serde::Deserialize;

/// `[[iec101]]`: one serial line serving the same point image as IEC 104.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iec101 {
    /// Serial device, e.g. `/dev/ttyS1`. Required.
    pub device: String,
    /// Bits per second, above 0.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Parity; always 8 data bits and 1 stop bit.
    #[serde(default = "default_iec101_parity")]
    pub parity: Parity,
    /// Link transmission procedure.
    #[serde(default)]
    pub mode: Iec101Mode,
    /// Link address of this station; fits `link_address_size`.
    #[serde(default = "one")]
    pub link_address: u16,
    /// Octets of the link address: 0 (balanced only), 1 or 2.
    #[serde(default = "one")]
    pub link_address_size: u8,
    /// Common address of ASDU on this line; fits `ca_size`.
    #[serde(default = "one")]
    pub common_address: u16,
    /// Octets of the cause of transmission: 1 or 2.
    #[serde(default = "one")]
    pub cot_size: u8,
    /// Octets of the common address: 1 or 2.
    #[serde(default = "one")]
    pub ca_size: u8,
    /// Octets of the information object address: 1, 2 or 3.
    #[serde(default = "two")]
    pub ioa_size: u8,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity (IEC 60870-5-101 FT1.2 uses even).
    Even,
    /// Odd parity.
    Odd,
}

/// IEC 60870-5-101 link transmission procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Iec101Mode {
    /// Secondary station, polled by the master.
    #[default]
    Unbalanced,
    /// Either side may initiate transmissions.
    Balanced,
}

/// `[[meter]]`: a Modbus meter, reached over TCP (`tcp`) or a serial line (`rtu`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meter {
    /// Unique name, an MQTT topic level. Required.
    pub name: String,
    /// `host:port` of a Modbus TCP meter; exactly one of `tcp` and `rtu` is set.
    #[serde(default)]
    pub tcp: Option<String>,
    /// Serial device of a Modbus RTU meter.
    #[serde(default)]
    pub rtu: Option<String>,
    /// RTU bits per second.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// RTU parity.
    #[serde(default = "default_meter_parity")]
    pub parity: Parity,
    /// Modbus unit id (slave address); 1..=247 on RTU.
    #[serde(default = "one")]
    pub unit_id: u8,
    /// Poll interval, at least 100 ms.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// First IOA of the meter block (offsets 0..=4). Required.
    pub ioa_base: u32,
    /// Site power management takes this meter's power as the site load.
    #[serde(default)]
    pub grid_meter: bool,
    /// Where each measurand is read; at least one, one per measurand.
    #[serde(default)]
    pub register: Vec<MeterRegister>,
}

/// `[[meter.register]]`: where one measurand is read. `measurand`, `address`, `type` and
/// `unit` are required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterRegister {
    /// What the register holds.
    pub measurand: Measurand,
    /// Modbus function: 3 = holding registers, 4 = input registers.
    #[serde(default = "default_function")]
    pub function: u8,
    /// 0-based address of the first register.
    pub address: u16,
    /// Data type (TOML key `type`).
    pub r#type: RegisterType,
    /// Order of the 16-bit words of 32/64-bit values.
    #[serde(default)]
    pub word_order: WordOrder,
    /// value = raw × scale, in `unit`; finite and not 0.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Unit of the scaled value; must suit the measurand.
    pub unit: Unit,
}

/// The measurands a meter register can feed (OCPP names, CONTRACT §3 meter points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Measurand {
    /// Active power import (W or kW).
    #[serde(rename = "Power.Active.Import")]
    PowerActiveImport,
    /// Active energy import counter (Wh or kWh).
    #[serde(rename = "Energy.Active.Import.Register")]
    EnergyActiveImportRegister,
    /// Current (A).
    #[serde(rename = "Current.Import")]
    CurrentImport,
    /// Voltage (V).
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

/// Register data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterType {
    /// Unsigned 16 bit, one register.
    U16,
    /// Signed 16 bit, one register.
    I16,
    /// Unsigned 32 bit, two registers.
    U32,
    /// Signed 32 bit, two registers.
    I32,
    /// IEEE 754 single, two registers.
    F32,
    /// Unsigned 64 bit, four registers; energy counters only.
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
    /// Low word first.
    Little,
}

/// Unit of a register value after scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Unit {
    /// Watt.
    W,
    /// Kilowatt (TOML `"kW"`).
    #[serde(rename = "kW")]
    KW,
    /// Watt-hour.
    Wh,
    /// Kilowatt-hour (TOML `"kWh"`).
    #[serde(rename = "kWh")]
    KWh,
    /// Ampere.
    A,
    /// Volt.
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
    /// Charge point id (last path segment of its WebSocket URL), unique, an MQTT topic level.
    /// Required.
    pub id: String,
    /// First IOA of the charger block (offsets 0..=99). Required.
    pub ioa_base: u32,
    /// Maximum power in kW, above 0; limits above it are clamped.
    #[serde(default = "default_max_kw")]
    pub max_kw: f64,
    /// Points exist for connectors (EVSEs) 1..=connectors, at most 8.
    #[serde(default = "two")]
    pub connectors: u8,
    /// 1 or 3; A ↔ kW conversions use 230 V × phases.
    #[serde(default = "three")]
    pub phases: u8,
    /// OCPP security profile 1: when set, the charger must send HTTP Basic auth with its id
    /// as user name and this password (16–40 printable ASCII characters, as the OCPP
    /// security whitepaper asks of BasicAuthPassword / AuthorizationKey).
    #[serde(default)]
    pub password: Option<String>,
    /// OCPP security profile 1 without the password in this file: its argon2id PHC string
    /// (`ocpp809 charger hash-password`). Takes precedence over `password`; an entry of the
    /// password file (`ocpp809 charger set-password`) takes precedence over both.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Overrides `ocpp.mode` for this charger (e.g. strict for a certified charger, lenient
    /// for a legacy one).
    #[serde(default)]
    pub mode: Option<super::OcppMode>,
    /// OCPP security profile 0..=3 of this charger; overrides `ocpp.security_profile`.
    #[serde(default)]
    pub security_profile: Option<u8>,
    /// `false`: this charger is not relayed to the upstream CSMS (`[upstream]`).
    #[serde(default = "yes")]
    pub upstream: bool,
    /// Upstream URL of this charger instead of `upstream.url`.
    #[serde(default)]
    pub upstream_url: Option<String>,
    /// Upstream Basic-auth password of this charger instead of `upstream.password`.
    #[serde(default)]
    pub upstream_password: Option<super::Secret>,
}

fn yes() -> bool {
    true
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
