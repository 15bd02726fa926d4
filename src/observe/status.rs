//! The read-only status page: station, links, MQTT, and per charger its summary and its
//! IEC 104 points with value and quality, as SCADA sees them in the process image.
//!
//! The page is built in two steps so the station lock is held only to copy values: the
//! [`Directory`] (which point belongs to whom, names and units) is read first, then the
//! values of those IOAs are copied under the lock, then the HTML is written outside it.
//! Everything that comes from outside — charge point ids are chosen by whoever connects —
//! goes through [`escape`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::asdu::Quality;
use crate::mapping::layout::{charger, ChargerBlock, Direction, PointDef, PointList};
use crate::station::{PointValue, Station};

/// Which points exist and whose they are: the configured ones, and the blocks given to
/// chargers not in the configuration (restored at start-up and assigned while running).
#[derive(Debug)]
pub struct Directory {
    points: Mutex<PointList>,
    /// Connectors of chargers not in the configuration (`ocpp.default_connectors`).
    default_connectors: u8,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Directory {
    pub fn new(points: PointList, default_connectors: u8) -> Directory {
        Directory {
            points: Mutex::new(points),
            default_connectors,
        }
    }

    /// A charger not in the configuration got the block at `ioa_base`.
    pub fn add_charger(&self, id: &str, ioa_base: u32) {
        let id = id.to_string();
        lock(&self.points).add_assigned_blocks([(&id, &ioa_base)], self.default_connectors);
    }

    pub fn points(&self) -> Vec<PointDef> {
        lock(&self.points).points.clone()
    }
}

/// A point's state, copied out of the process image.
#[derive(Clone, Debug, PartialEq)]
pub struct PointState {
    pub value: Option<PointValue>,
    pub quality: Quality,
}

/// Copies the state of `points` out of the station (call it under the station lock).
pub fn read_points(station: &Station, points: &[PointDef]) -> HashMap<u32, PointState> {
    let image = station.image();
    points
        .iter()
        .filter(|p| p.direction == Direction::Monitor)
        .filter_map(|p| {
            let entry = image.get(p.ioa)?;
            Some((
                p.ioa,
                PointState {
                    value: entry.value,
                    quality: entry.quality,
                },
            ))
        })
        .collect()
}

/// The page header: everything but the points.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    pub station: String,
    pub version: &'static str,
    pub uptime: Duration,
    pub iec104_masters: i64,
    pub iec101_lines_active: i64,
    pub iec101_lines: usize,
    pub chargers_connected: i64,
    pub events_queued: usize,
    /// `None`: MQTT disabled; else (connected, buffered).
    pub mqtt: Option<(bool, u64)>,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn format_value(value: Option<&PointValue>) -> String {
    match value {
        None => "—".into(),
        Some(PointValue::Single(on)) => if *on { "on" } else { "off" }.into(),
        Some(PointValue::Float(v)) => format!("{v:.3}"),
        Some(PointValue::Normalized(v)) => format!("{v:.4}"),
        Some(PointValue::Counter(v)) => v.to_string(),
        Some(PointValue::Scaled(v)) => v.to_string(),
        Some(other) => format!("{other:?}"),
    }
}

fn format_quality(quality: &Quality) -> String {
    let flags = [
        (quality.invalid, "IV"),
        (quality.not_topical, "NT"),
        (quality.substituted, "SB"),
        (quality.blocked, "BL"),
        (quality.overflow, "OV"),
    ];
    let set: Vec<&str> = flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
    if set.is_empty() {
        "good".into()
    } else {
        set.join(" ")
    }
}

fn format_uptime(uptime: Duration) -> String {
    let s = uptime.as_secs();
    format!(
        "{}d {:02}:{:02}:{:02}",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

/// Reads a monitored point: its value if it has a valid one.
fn valid(states: &HashMap<u32, PointState>, ioa: u32) -> Option<&PointValue> {
    states
        .get(&ioa)
        .filter(|s| !s.quality.invalid)
        .and_then(|s| s.value.as_ref())
}

fn single(states: &HashMap<u32, PointState>, ioa: u32) -> Option<bool> {
    match valid(states, ioa) {
        Some(PointValue::Single(on)) => Some(*on),
        _ => None,
    }
}

fn cell(states: &HashMap<u32, PointState>, ioa: u32) -> String {
    valid(states, ioa).map_or_else(|| "—".into(), |v| format_value(Some(v)))
}

fn connector_status(states: &HashMap<u32, PointState>, base: u32, n: u8) -> &'static str {
    let at = |offset| single(states, base + charger::connector(n, offset));
    match (
        at(charger::CONNECTOR_FAULTED),
        at(charger::CONNECTOR_OCCUPIED),
        at(charger::CONNECTOR_AVAILABLE),
    ) {
        (Some(true), _, _) => "faulted",
        (_, Some(true), _) => "occupied",
        (_, _, Some(true)) => "available",
        (None, None, None) => "unknown",
        _ => "unavailable",
    }
}

fn points_table(out: &mut String, points: &[&PointDef], states: &HashMap<u32, PointState>) {
    out.push_str(
        "<table><tr><th>IOA</th><th>type</th><th>name</th><th>value</th><th>unit</th><th>quality</th></tr>\n",
    );
    for p in points {
        let (value, quality) = match p.direction {
            Direction::Command => ("command".to_string(), String::new()),
            Direction::Monitor => match states.get(&p.ioa) {
                Some(s) => (format_value(s.value.as_ref()), format_quality(&s.quality)),
                None => ("—".into(), "not in image".into()),
            },
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.ioa,
            escape(p.type_id.name()),
            escape(&p.name),
            escape(&value),
            escape(p.unit),
            escape(&quality),
        );
    }
    out.push_str("</table>\n");
}

/// The whole page.
pub fn render(
    overview: &Overview,
    points: &[PointDef],
    states: &HashMap<u32, PointState>,
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let station = escape(&overview.station);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <title>ocpp809 {station}</title>\
         <style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse;margin-bottom:1em}}\
         td,th{{border:1px solid #999;padding:2px 6px;text-align:left}}.off{{color:#a00}}.on{{color:#070}}</style>\
         </head><body>\n<h1>ocpp809 — {station}</h1>\n"
    );
    let mqtt = match overview.mqtt {
        None => "disabled".to_string(),
        Some((true, buffered)) => format!("connected, {buffered} buffered"),
        Some((false, buffered)) => format!("disconnected, {buffered} buffered"),
    };
    let _ = writeln!(
        out,
        "<table>\
         <tr><th>version</th><td>{}</td></tr>\
         <tr><th>uptime</th><td>{}</td></tr>\
         <tr><th>IEC 104 masters</th><td id=\"iec104-masters\">{}</td></tr>\
         <tr><th>IEC 101 lines active</th><td>{} of {}</td></tr>\
         <tr><th>chargers connected</th><td id=\"chargers-connected\">{}</td></tr>\
         <tr><th>events queued</th><td>{}</td></tr>\
         <tr><th>MQTT</th><td>{}</td></tr></table>",
        escape(overview.version),
        format_uptime(overview.uptime),
        overview.iec104_masters,
        overview.iec101_lines_active,
        overview.iec101_lines,
        overview.chargers_connected,
        overview.events_queued,
        escape(&mqtt),
    );

    // Chargers in order of their blocks.
    let mut blocks: Vec<ChargerBlock> = Vec::new();
    for p in points {
        let Some(id) = &p.charger else { continue };
        match blocks.iter_mut().find(|b| &b.id == id) {
            Some(block) => {
                block.ioa_base = block.ioa_base.min(p.ioa);
                block.connectors = block.connectors.max(p.connector.unwrap_or(0));
            }
            None => blocks.push(ChargerBlock {
                id: id.clone(),
                ioa_base: p.ioa,
                connectors: p.connector.unwrap_or(0),
            }),
        }
    }
    // The lowest IOA of a block is its online point (offset 0): the block's base.
    let _ = writeln!(out, "<h2>Chargers ({})</h2>", blocks.len());
    out.push_str(
        "<table><tr><th>id</th><th>IOA base</th><th>online</th><th>limit in force, kW</th>\
         <th>power, kW</th><th>energy, Wh</th><th>connectors</th></tr>\n",
    );
    for block in &blocks {
        let base = block.ioa_base;
        let online = match single(states, base + charger::ONLINE) {
            Some(true) => "<span class=\"on\">online</span>",
            Some(false) => "<span class=\"off\">offline</span>",
            None => "unknown",
        };
        let connectors: Vec<String> = (1..=block.connectors)
            .map(|n| format!("{n}: {}", connector_status(states, base, n)))
            .collect();
        let id = escape(&block.id);
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#charger-{base}\">{id}</a></td><td>{base}</td><td>{online}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            cell(states, base + charger::LIMIT),
            cell(states, base + charger::POWER),
            cell(states, base + charger::ENERGY),
            escape(&connectors.join(", ")),
        );
    }
    out.push_str("</table>\n");
    for block in &blocks {
        let mine: Vec<&PointDef> = points
            .iter()
            .filter(|p| p.charger.as_deref() == Some(block.id.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "<h3 id=\"charger-{}\">Charger {}</h3>",
            block.ioa_base,
            escape(&block.id)
        );
        points_table(&mut out, &mine, states);
    }
    let others: Vec<&PointDef> = points.iter().filter(|p| p.charger.is_none()).collect();
    out.push_str("<h2>Site and meter points</h2>\n");
    points_table(&mut out, &others, states);
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::layout::{charger_points, site_points};

    fn page_for(id: &str) -> String {
        let mut points = site_points(1);
        points.extend(charger_points(&ChargerBlock {
            id: id.into(),
            ioa_base: 1000,
            connectors: 2,
        }));
        let mut states = HashMap::new();
        states.insert(
            1000,
            PointState {
                value: Some(PointValue::Single(true)),
                quality: Quality::GOOD,
            },
        );
        states.insert(
            1001,
            PointState {
                value: Some(PointValue::Float(14.4)),
                quality: Quality::GOOD,
            },
        );
        states.insert(
            1002,
            PointState {
                value: None,
                quality: Quality {
                    invalid: true,
                    ..Quality::GOOD
                },
            },
        );
        render(&Overview::default(), &points, &states)
    }

    #[test]
    fn escape_covers_the_html_specials() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_hostile_charge_point_id_is_escaped_everywhere() {
        let page = page_for("<script>alert(1)</script>");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn the_page_lists_a_charger_its_state_and_points() {
        let page = page_for("CP001");
        assert!(page.contains("<a href=\"#charger-1000\">CP001</a>"));
        assert!(page.contains("online</span>"));
        assert!(page.contains("<td>1001</td><td>M_ME_TF_1</td><td>CP001 total active power import</td><td>14.400</td>"));
        // Never written points show IV.
        assert!(page.contains("<td>1002</td><td>M_IT_TB_1</td><td>CP001 total active import energy</td><td>—</td><td>Wh</td><td>IV</td>"));
        assert!(page.contains("1: unknown, 2: unknown"));
    }
}
