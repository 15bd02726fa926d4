//! Configuration layer (CONTRACT §2): the TOML file an operator edits, read into typed
//! settings. Every key has a default, unknown keys are rejected, and the values are checked
//! against IEC 60870-5-104 §9.6 (k, w, t0–t3), the IEC 60870-5-101 field sizes, the point
//! layout of CONTRACT §3 and the Modbus rules of §7. Every error names file, line, column and
//! the dotted key (`charger[1].ioa_base`), because `check-config` prints it for an operator.

mod blocks;
mod layout;
mod locate;
mod sections;
mod tls;
mod upstream;
mod validate;

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;

pub use blocks::*;
use locate::Source;
pub use sections::*;
pub use upstream::*;

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
    /// `[station]`
    pub station: Station,
    /// `[iec104]`
    pub iec104: Iec104,
    /// `[ocpp]`
    pub ocpp: Ocpp,
    /// `[mqtt]`
    pub mqtt: Mqtt,
    /// `[http]`
    pub http: Http,
    /// `[site]`
    pub site: Site,
    /// `[upstream]`
    pub upstream: Upstream,
    /// `[[iec101]]` serial lines; none by default.
    pub iec101: Vec<Iec101>,
    /// `[[meter]]` Modbus meters; none by default.
    pub meter: Vec<Meter>,
    /// `[[charger]]` chargers known in advance; none by default.
    pub charger: Vec<Charger>,
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file as given.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a value is missing, unknown, mistyped or out of range.
    #[error("{origin}:{line}:{column}: {key}: {message}")]
    Invalid {
        /// File name, or `<embedded>`.
        origin: String,
        /// 1-based line of the key; 0 when unknown.
        line: usize,
        /// 1-based column (in characters); 0 when unknown.
        column: usize,
        /// Dotted path such as `iec104.k` or `charger[1].ioa_base`; `(file)` when none applies.
        key: String,
        /// What is wrong, for an operator.
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

    /// Whether the file holds secrets: charger passwords, the MQTT password, or credentials
    /// in the MQTT URL.
    pub fn has_secrets(&self) -> bool {
        self.charger.iter().any(|c| c.password.is_some())
            || self.mqtt.password.is_some()
            || !self.upstream.password.expose().is_empty()
            || self.charger.iter().any(|c| c.upstream_password.is_some())
            || self
                .mqtt
                .url
                .split_once("://")
                .is_some_and(|(_, rest)| rest.split('/').next().unwrap_or_default().contains('@'))
    }

    /// A warning when the file at `path` holds secrets and every local user may read it
    /// (issue 9: "warn if world-readable with secrets"). `None` when it is fine or the
    /// permissions cannot be read.
    pub fn exposure_warning(&self, path: &Path) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o004 != 0 && self.has_secrets()).then(|| {
            format!(
                "{} holds passwords and is readable by every user (mode {:o}); restrict it, e.g. chmod 640 and group ocpp809",
                path.display(),
                mode & 0o777
            )
        })
    }

    /// A warning naming the chargers whose password stands in the file in plain text, with
    /// how to store a hash instead; `None` when there is none.
    pub fn plaintext_password_warning(&self) -> Option<String> {
        let keys: Vec<String> = self
            .charger
            .iter()
            .enumerate()
            .filter(|(_, c)| c.password.is_some())
            .map(|(i, c)| format!("charger[{i}].password ({})", c.id))
            .collect();
        (!keys.is_empty()).then(|| {
            format!(
                "{}: plaintext charger password in the configuration; store a hash: ocpp809 charger set-password ID or password_hash",
                keys.join(", ")
            )
        })
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
            format!(
                "on, {}, prefix {}",
                redact_url(&self.mqtt.url),
                self.mqtt.topic_prefix
            )
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
        let _ = writeln!(out, "{}", self.tls_summary());
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
        let _ = writeln!(out, "MQTT: {mqtt}");
        let http = if self.http.enabled {
            format!("metrics and status page on http://{}/", self.http.listen)
        } else {
            "off".into()
        };
        let _ = write!(out, "HTTP: {http}");
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
    use std::path::PathBuf;

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
