//! The IEC 60870-5-104 point layout of CONTRACT §3: a block of 100 IOAs per charger, the
//! site block and a block per Modbus meter, and the point list (`ocpp809 points`) that
//! SCADA engineers import into their engineering tool.

use std::fmt::Write as _;

use crate::asdu::TypeId;
use crate::config::Config;
use crate::station::{MonitorKind, PointSpec};

/// Offsets inside a charger's block.
pub mod charger {
    pub const ONLINE: u32 = 0;
    pub const POWER: u32 = 1;
    pub const ENERGY: u32 = 2;
    pub const LIMIT: u32 = 3;
    pub const FAULTED: u32 = 4;
    pub const ALARM: u32 = 5;
    /// Connector n (1-based) occupies offsets 10n .. 10n+5.
    pub const CONNECTOR_STRIDE: u32 = 10;
    pub const CONNECTOR_AVAILABLE: u32 = 0;
    pub const CONNECTOR_OCCUPIED: u32 = 1;
    pub const CONNECTOR_FAULTED: u32 = 2;
    pub const CONNECTOR_POWER: u32 = 3;
    pub const CONNECTOR_ENERGY: u32 = 4;
    pub const CONNECTOR_CURRENT: u32 = 5;
    pub const POWER_SETPOINT: u32 = 90;
    pub const CURRENT_SETPOINT: u32 = 91;
    pub const AVAILABILITY: u32 = 92;
    pub const RESET: u32 = 93;
    pub const CLEAR_LIMIT: u32 = 94;
    pub const BLOCK_SIZE: u32 = 100;
    pub const MAX_CONNECTORS: u8 = 8;

    pub fn connector(n: u8, offset: u32) -> u32 {
        CONNECTOR_STRIDE * u32::from(n) + offset
    }
}

/// Offsets inside the site block.
pub mod site {
    pub const POWER: u32 = 0;
    pub const ENERGY: u32 = 1;
    pub const LIMIT: u32 = 2;
    pub const FAILSAFE: u32 = 3;
    pub const CHARGERS_ONLINE: u32 = 4;
    pub const LIMIT_SETPOINT: u32 = 10;
}

/// Offsets inside a meter block.
pub mod meter {
    pub const POWER: u32 = 0;
    pub const ENERGY: u32 = 1;
    pub const CURRENT: u32 = 2;
    pub const VOLTAGE: u32 = 3;
    pub const COMMUNICATING: u32 = 4;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Monitor,
    Command,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Monitor => "monitor",
            Direction::Command => "command",
        }
    }
}

/// One row of the point list.
#[derive(Clone, Debug, PartialEq)]
pub struct PointDef {
    pub ioa: u32,
    /// As listed in CONTRACT §3: the time-tagged monitoring type used for spontaneous data,
    /// or the untagged command type.
    pub type_id: TypeId,
    pub name: String,
    pub unit: &'static str,
    pub charger: Option<String>,
    pub connector: Option<u8>,
    pub direction: Direction,
    /// A read of this point asks the charger first (C_RD_NA_1 on the limit in force).
    pub read_through: bool,
}

impl PointDef {
    fn monitor(ioa: u32, type_id: TypeId, name: String, unit: &'static str) -> PointDef {
        PointDef {
            ioa,
            type_id,
            name,
            unit,
            charger: None,
            connector: None,
            direction: Direction::Monitor,
            read_through: false,
        }
    }

    fn command(ioa: u32, type_id: TypeId, name: String, unit: &'static str) -> PointDef {
        PointDef {
            direction: Direction::Command,
            ..PointDef::monitor(ioa, type_id, name, unit)
        }
    }

    /// The station's description of this point.
    pub fn spec(&self) -> PointSpec {
        match self.direction {
            Direction::Command => PointSpec::command(self.ioa, self.type_id),
            Direction::Monitor => {
                let kind = match self.type_id.without_time() {
                    TypeId::M_SP_NA_1 => MonitorKind::Single,
                    TypeId::M_IT_NA_1 => MonitorKind::Counter,
                    _ => MonitorKind::Float,
                };
                PointSpec {
                    read_through: self.read_through,
                    ..PointSpec::monitor(self.ioa, kind)
                }
            }
        }
    }
}

/// What a charger's block needs to know about the charger.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargerBlock {
    pub id: String,
    pub ioa_base: u32,
    pub connectors: u8,
}

pub fn site_points(base: u32) -> Vec<PointDef> {
    use TypeId::*;
    vec![
        PointDef::monitor(
            base + site::POWER,
            M_ME_TF_1,
            "site total active power".into(),
            "kW",
        ),
        PointDef::monitor(
            base + site::ENERGY,
            M_IT_TB_1,
            "site total active import energy".into(),
            "Wh",
        ),
        PointDef::monitor(
            base + site::LIMIT,
            M_ME_TF_1,
            "site limit in force".into(),
            "kW",
        ),
        PointDef::monitor(
            base + site::FAILSAFE,
            M_SP_TB_1,
            "failsafe limit active".into(),
            "",
        ),
        PointDef::monitor(
            base + site::CHARGERS_ONLINE,
            M_ME_TF_1,
            "chargers online".into(),
            "count",
        ),
        PointDef::command(
            base + site::LIMIT_SETPOINT,
            C_SE_NC_1,
            "site power limit setpoint".into(),
            "kW",
        ),
    ]
}

pub fn charger_points(block: &ChargerBlock) -> Vec<PointDef> {
    use charger::*;
    use TypeId::*;
    let base = block.ioa_base;
    let id = &block.id;
    let mut points = vec![
        PointDef::monitor(base + ONLINE, M_SP_TB_1, format!("{id} online"), ""),
        PointDef::monitor(
            base + POWER,
            M_ME_TF_1,
            format!("{id} total active power import"),
            "kW",
        ),
        PointDef::monitor(
            base + ENERGY,
            M_IT_TB_1,
            format!("{id} total active import energy"),
            "Wh",
        ),
        PointDef {
            read_through: true,
            ..PointDef::monitor(
                base + LIMIT,
                M_ME_TF_1,
                format!("{id} power limit in force"),
                "kW",
            )
        },
        PointDef::monitor(
            base + FAULTED,
            M_SP_TB_1,
            format!("{id} any connector faulted"),
            "",
        ),
        PointDef::monitor(base + ALARM, M_SP_TB_1, format!("{id} alarm active"), ""),
    ];
    for n in 1..=block.connectors.min(MAX_CONNECTORS) {
        let at = |offset| base + connector(n, offset);
        let mut add = |offset, type_id, what: &str, unit| {
            let mut point = PointDef::monitor(
                at(offset),
                type_id,
                format!("{id} connector {n} {what}"),
                unit,
            );
            point.connector = Some(n);
            points.push(point);
        };
        add(CONNECTOR_AVAILABLE, M_SP_TB_1, "available", "");
        add(CONNECTOR_OCCUPIED, M_SP_TB_1, "occupied", "");
        add(CONNECTOR_FAULTED, M_SP_TB_1, "faulted", "");
        add(CONNECTOR_POWER, M_ME_TF_1, "active power", "kW");
        add(CONNECTOR_ENERGY, M_IT_TB_1, "active import energy", "Wh");
        add(CONNECTOR_CURRENT, M_ME_TF_1, "current (highest phase)", "A");
    }
    points.extend([
        PointDef::command(
            base + POWER_SETPOINT,
            C_SE_NC_1,
            format!("{id} power limit setpoint"),
            "kW",
        ),
        PointDef::command(
            base + CURRENT_SETPOINT,
            C_SE_NB_1,
            format!("{id} current limit setpoint"),
            "A",
        ),
        PointDef::command(
            base + AVAILABILITY,
            C_SC_NA_1,
            format!("{id} availability (ON = operative)"),
            "",
        ),
        PointDef::command(base + RESET, C_SC_NA_1, format!("{id} soft reset (ON)"), ""),
        PointDef::command(
            base + CLEAR_LIMIT,
            C_SC_NA_1,
            format!("{id} clear limit (ON)"),
            "",
        ),
    ]);
    for point in &mut points {
        point.charger = Some(id.clone());
    }
    points
}

pub fn meter_points(name: &str, base: u32) -> Vec<PointDef> {
    use TypeId::*;
    vec![
        PointDef::monitor(
            base + meter::POWER,
            M_ME_TF_1,
            format!("meter {name} active power"),
            "kW",
        ),
        PointDef::monitor(
            base + meter::ENERGY,
            M_IT_TB_1,
            format!("meter {name} active import energy"),
            "Wh",
        ),
        PointDef::monitor(
            base + meter::CURRENT,
            M_ME_TF_1,
            format!("meter {name} current"),
            "A",
        ),
        PointDef::monitor(
            base + meter::VOLTAGE,
            M_ME_TF_1,
            format!("meter {name} voltage"),
            "V",
        ),
        PointDef::monitor(
            base + meter::COMMUNICATING,
            M_SP_TB_1,
            format!("meter {name} communicating"),
            "",
        ),
    ]
}

/// Every point the configuration produces, in IOA order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PointList {
    pub points: Vec<PointDef>,
}

impl PointList {
    pub fn from_config(config: &Config) -> PointList {
        let mut points = site_points(config.site.ioa_base);
        for charger in &config.charger {
            points.extend(charger_points(&ChargerBlock {
                id: charger.id.clone(),
                ioa_base: charger.ioa_base,
                connectors: charger.connectors,
            }));
        }
        for meter in &config.meter {
            points.extend(meter_points(&meter.name, meter.ioa_base));
        }
        points.sort_by_key(|p| p.ioa);
        PointList { points }
    }

    /// Adds the blocks assigned to chargers not in the configuration (persisted state).
    pub fn add_assigned_blocks<'a>(
        &mut self,
        blocks: impl IntoIterator<Item = (&'a String, &'a u32)>,
        connectors: u8,
    ) {
        for (id, base) in blocks {
            if self.points.iter().any(|p| p.charger.as_ref() == Some(id)) {
                continue;
            }
            self.points.extend(charger_points(&ChargerBlock {
                id: id.clone(),
                ioa_base: *base,
                connectors,
            }));
        }
        self.points.sort_by_key(|p| p.ioa);
    }

    pub fn specs(&self) -> impl Iterator<Item = PointSpec> + '_ {
        self.points.iter().map(PointDef::spec)
    }

    /// CSV per CONTRACT §1: `ioa,type_id,type,name,unit,charger,connector,direction`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("ioa,type_id,type,name,unit,charger,connector,direction\n");
        for p in &self.points {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{}",
                p.ioa,
                p.type_id as u8,
                p.type_id.name(),
                csv_field(&p.name),
                csv_field(p.unit),
                csv_field(p.charger.as_deref().unwrap_or("")),
                p.connector.map(|c| c.to_string()).unwrap_or_default(),
                p.direction.as_str()
            );
        }
        out
    }

    /// A Markdown table with the same columns.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "| ioa | type_id | type | name | unit | charger | connector | direction |\n|---|---|---|---|---|---|---|---|\n",
        );
        for p in &self.points {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                p.ioa,
                p.type_id as u8,
                p.type_id.name(),
                p.name.replace('|', "\\|"),
                p.unit,
                p.charger.as_deref().unwrap_or("").replace('|', "\\|"),
                p.connector.map(|c| c.to_string()).unwrap_or_default(),
                p.direction.as_str()
            );
        }
        out
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_connector_charger_has_the_contract_offsets() {
        let points = charger_points(&ChargerBlock {
            id: "CP001".into(),
            ioa_base: 1000,
            connectors: 2,
        });
        let ioas: Vec<u32> = points.iter().map(|p| p.ioa).collect();
        assert_eq!(
            ioas,
            vec![
                1000, 1001, 1002, 1003, 1004, 1005, 1010, 1011, 1012, 1013, 1014, 1015, 1020, 1021,
                1022, 1023, 1024, 1025, 1090, 1091, 1092, 1093, 1094
            ]
        );
        let setpoint = points.iter().find(|p| p.ioa == 1091).unwrap();
        assert_eq!(setpoint.type_id, TypeId::C_SE_NB_1);
        assert_eq!(setpoint.direction, Direction::Command);
        let energy = points.iter().find(|p| p.ioa == 1024).unwrap();
        assert_eq!(energy.type_id, TypeId::M_IT_TB_1);
        assert_eq!(energy.connector, Some(2));
    }

    #[test]
    fn csv_quotes_names_with_commas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("x\"y,"), "\"x\"\"y,\"");
    }
}
