//! The metrics registry and its Prometheus text rendering (exposition format 0.0.4).
//!
//! The registry is a handful of atomics in one struct, shared as `Arc<Metrics>` by the
//! drivers that update it (no global state, so tests run daemons side by side). What other
//! parts already count — the station's queue and drop counters, the MQTT mirror's
//! [`MqttStats`] — is read when `/metrics` is scraped instead of being copied here.
//!
//! The renderer is hand-written: the format is a few lines per family, every label set is
//! known up front (fixed enums, meter names from the configuration), and a client library
//! would bring a registry, a derive macro and its own encoder for that.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::security::SecurityEvent;
use crate::mapping::charger::CoercionKind;
use crate::mqtt::MqttStats;
use crate::station::StationStats;

/// Content type of the exposition format rendered by [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A message or poll counted in `ocpp809_messages_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// OCPP-J text frame received from a charger.
    OcppIn,
    /// OCPP-J text frame sent to a charger.
    OcppOut,
    /// IEC 104 ASDU (I-frame payload) received from a master.
    Iec104In,
    /// IEC 104 ASDU handed to the link for sending.
    Iec104Out,
    /// IEC 101 ASDU received in a user-data frame.
    Iec101In,
    /// IEC 101 ASDU answered to a class 1/2 request.
    Iec101Out,
    /// Modbus meter poll that read every register.
    ModbusOk,
    /// Modbus meter poll that failed.
    ModbusFailed,
}

impl Message {
    const ALL: [Message; 8] = [
        Message::OcppIn,
        Message::OcppOut,
        Message::Iec104In,
        Message::Iec104Out,
        Message::Iec101In,
        Message::Iec101Out,
        Message::ModbusOk,
        Message::ModbusFailed,
    ];

    /// `(protocol, direction)` labels.
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Message::OcppIn => ("ocpp", "in"),
            Message::OcppOut => ("ocpp", "out"),
            Message::Iec104In => ("iec104", "in"),
            Message::Iec104Out => ("iec104", "out"),
            Message::Iec101In => ("iec101", "in"),
            Message::Iec101Out => ("iec101", "out"),
            Message::ModbusOk => ("modbus", "ok"),
            Message::ModbusFailed => ("modbus", "failed"),
        }
    }
}

/// A connection gauge, held through a [`GaugeGuard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gauge {
    /// IEC 104 master connections.
    Iec104Masters,
    /// IEC 101 lines whose master is active.
    Iec101LinesActive,
    /// Chargers with an OCPP WebSocket session.
    ChargersConnected,
    /// Chargers whose upstream CSMS connection is up (OCPP relay).
    UpstreamsConnected,
}

/// A counter of the OCPP relay's durable upstream queue, `ocpp809_upstream_messages_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamCounter {
    /// Transaction messages stored while the upstream was unreachable.
    Queued,
    /// Queued messages delivered (answered by the upstream).
    Replayed,
    /// Queued messages dropped (queue full or not storable).
    Dropped,
}

impl UpstreamCounter {
    const ALL: [UpstreamCounter; 3] = [
        UpstreamCounter::Queued,
        UpstreamCounter::Replayed,
        UpstreamCounter::Dropped,
    ];

    fn label(self) -> &'static str {
        match self {
            UpstreamCounter::Queued => "queued",
            UpstreamCounter::Replayed => "replayed",
            UpstreamCounter::Dropped => "dropped",
        }
    }
}

const COERCION_KINDS: [CoercionKind; 9] = [
    CoercionKind::NumberAsString,
    CoercionKind::UnitSuffix,
    CoercionKind::UnitSuffixOverridesField,
    CoercionKind::DecimalComma,
    CoercionKind::EnumCase,
    CoercionKind::TimestampWithoutZone,
    CoercionKind::LegacyFieldName,
    CoercionKind::UnparseableValue,
    CoercionKind::BinaryFrame,
];

/// The `kind` label of a sanitizer coercion.
pub fn coercion_label(kind: CoercionKind) -> &'static str {
    match kind {
        CoercionKind::NumberAsString => "number_as_string",
        CoercionKind::UnitSuffix => "unit_suffix",
        CoercionKind::UnitSuffixOverridesField => "unit_suffix_overrides_field",
        CoercionKind::DecimalComma => "decimal_comma",
        CoercionKind::EnumCase => "enum_case",
        CoercionKind::TimestampWithoutZone => "timestamp_without_zone",
        CoercionKind::LegacyFieldName => "legacy_field_name",
        CoercionKind::UnparseableValue => "unparseable_value",
        CoercionKind::BinaryFrame => "binary_frame",
    }
}

fn coercion_index(kind: CoercionKind) -> usize {
    COERCION_KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()
}

/// Counters and gauges of one daemon.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    iec104_masters: AtomicI64,
    iec101_lines_active: AtomicI64,
    chargers_connected: AtomicI64,
    upstreams_connected: AtomicI64,
    upstream: [AtomicU64; UpstreamCounter::ALL.len()],
    messages: [AtomicU64; Message::ALL.len()],
    coercions: [AtomicU64; COERCION_KINDS.len()],
    commands_positive: AtomicU64,
    commands_negative: AtomicU64,
    /// Reports the application dropped because the MQTT mirror's queue was full.
    telemetry_dropped: AtomicU64,
    /// Per configured meter (in configuration order): name and failed polls.
    meter_failures: Vec<(String, AtomicU64)>,
    mqtt: Option<Arc<MqttStats>>,
    security_events: [AtomicU64; SecurityEvent::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Vec::new(), None)
    }
}

/// What the station knows, read under its lock at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct StationSample {
    pub queued: usize,
    pub stats: StationStats,
}

impl Metrics {
    /// `meters`: the configured meter names in order (their index is the `MeterIndex`);
    /// `mqtt`: the mirror's counters when MQTT is enabled.
    pub fn new(meters: Vec<String>, mqtt: Option<Arc<MqttStats>>) -> Metrics {
        Metrics {
            started: Instant::now(),
            iec104_masters: AtomicI64::new(0),
            iec101_lines_active: AtomicI64::new(0),
            chargers_connected: AtomicI64::new(0),
            upstreams_connected: AtomicI64::new(0),
            upstream: Default::default(),
            messages: Default::default(),
            coercions: Default::default(),
            commands_positive: AtomicU64::new(0),
            commands_negative: AtomicU64::new(0),
            telemetry_dropped: AtomicU64::new(0),
            meter_failures: meters
                .into_iter()
                .map(|name| (name, AtomicU64::new(0)))
                .collect(),
            mqtt,
            security_events: Default::default(),
        }
    }

    /// One more security event (see [`super::security::report`], which also logs it).
    pub fn security_event(&self, event: SecurityEvent) {
        self.security_events[event.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn security_events(&self, event: SecurityEvent) -> u64 {
        self.security_events[event.index()].load(Ordering::Relaxed)
    }

    pub fn count(&self, message: Message) {
        if let Some(i) = Message::ALL.iter().position(|m| *m == message) {
            self.messages[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn messages(&self, message: Message) -> u64 {
        Message::ALL
            .iter()
            .position(|m| *m == message)
            .map_or(0, |i| self.messages[i].load(Ordering::Relaxed))
    }

    pub fn coercion(&self, kind: CoercionKind) {
        self.coercions[coercion_index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn coercions(&self, kind: CoercionKind) -> u64 {
        self.coercions[coercion_index(kind)].load(Ordering::Relaxed)
    }

    /// A SCADA command confirmed positively (`true`) or negatively.
    pub fn command(&self, positive: bool) {
        let counter = if positive {
            &self.commands_positive
        } else {
            &self.commands_negative
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to an upstream queue counter.
    pub fn upstream(&self, counter: UpstreamCounter, n: u64) {
        if let Some(i) = UpstreamCounter::ALL.iter().position(|c| *c == counter) {
            self.upstream[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn upstream_count(&self, counter: UpstreamCounter) -> u64 {
        UpstreamCounter::ALL
            .iter()
            .position(|c| *c == counter)
            .map_or(0, |i| self.upstream[i].load(Ordering::Relaxed))
    }

    /// One more telemetry report dropped; returns the total so far.
    pub fn telemetry_dropped(&self) -> u64 {
        self.telemetry_dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A meter poll result; `meter` is the index in the configuration.
    pub fn meter_poll(&self, meter: usize, ok: bool) {
        if ok {
            self.count(Message::ModbusOk);
            return;
        }
        self.count(Message::ModbusFailed);
        if let Some((_, failures)) = self.meter_failures.get(meter) {
            failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn gauge_cell(&self, gauge: Gauge) -> &AtomicI64 {
        match gauge {
            Gauge::Iec104Masters => &self.iec104_masters,
            Gauge::Iec101LinesActive => &self.iec101_lines_active,
            Gauge::ChargersConnected => &self.chargers_connected,
            Gauge::UpstreamsConnected => &self.upstreams_connected,
        }
    }

    pub fn gauge(&self, gauge: Gauge) -> i64 {
        self.gauge_cell(gauge).load(Ordering::Relaxed)
    }

    /// A guard that adds 1 to `gauge` while it is on; it starts `on` and turns off when
    /// dropped, so every exit path of a connection task gives its count back.
    pub fn hold(self: &Arc<Self>, gauge: Gauge, on: bool) -> GaugeGuard {
        let mut guard = GaugeGuard {
            metrics: self.clone(),
            gauge,
            on: false,
        };
        guard.set(on);
        guard
    }

    pub fn mqtt(&self) -> Option<&MqttStats> {
        self.mqtt.as_deref()
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The whole exposition, families in a fixed order.
    pub fn render(&self, station: StationSample) -> String {
        let mut out = Families::default();
        let version = env!("CARGO_PKG_VERSION");
        out.family(
            "ocpp809_build_info",
            "gauge",
            "Always 1; the version label names the running build.",
        );
        out.sample("ocpp809_build_info", &[("version", version)], 1);
        out.family(
            "ocpp809_uptime_seconds",
            "gauge",
            "Seconds since the daemon started.",
        );
        out.sample("ocpp809_uptime_seconds", &[], self.uptime().as_secs());
        let gauges = [
            (
                "ocpp809_iec104_masters",
                "IEC 104 master connections.",
                Gauge::Iec104Masters,
            ),
            (
                "ocpp809_iec101_lines_active",
                "IEC 101 lines with an active master.",
                Gauge::Iec101LinesActive,
            ),
            (
                "ocpp809_chargers_connected",
                "Chargers with an OCPP WebSocket session.",
                Gauge::ChargersConnected,
            ),
            (
                "ocpp809_upstreams_connected",
                "Chargers whose upstream CSMS connection (OCPP relay) is up.",
                Gauge::UpstreamsConnected,
            ),
        ];
        for (name, help, gauge) in gauges {
            out.family(name, "gauge", help);
            out.sample(name, &[], self.gauge(gauge).max(0));
        }
        let name = "ocpp809_messages_total";
        out.family(
            name,
            "counter",
            "Messages per protocol and direction: OCPP-J frames, IEC 104/101 ASDUs, Modbus polls (ok/failed), MQTT messages acknowledged by the broker.",
        );
        for message in Message::ALL {
            let (protocol, direction) = message.labels();
            out.sample(
                name,
                &[("protocol", protocol), ("direction", direction)],
                self.messages(message),
            );
        }
        let mqtt = self.mqtt();
        out.sample(
            name,
            &[("protocol", "mqtt"), ("direction", "out")],
            mqtt.map_or(0, MqttStats::published),
        );
        let name = "ocpp809_sanitizer_coercions_total";
        out.family(
            name,
            "counter",
            "Non-conforming OCPP input accepted by coercing it, by kind.",
        );
        for kind in COERCION_KINDS {
            out.sample(
                name,
                &[("kind", coercion_label(kind))],
                self.coercions(kind),
            );
        }
        out.family(
            "ocpp809_events_queued",
            "gauge",
            "Spontaneous objects waiting for IEC 104/101 transmission (all masters and the standby buffer).",
        );
        out.sample("ocpp809_events_queued", &[], station.queued);
        out.family(
            "ocpp809_events_dropped_total",
            "counter",
            "Spontaneous objects dropped because a bounded event queue was full.",
        );
        out.sample(
            "ocpp809_events_dropped_total",
            &[],
            station.stats.events_dropped,
        );
        out.family(
            "ocpp809_malformed_asdus_total",
            "counter",
            "ASDUs from masters that could not be decoded.",
        );
        out.sample(
            "ocpp809_malformed_asdus_total",
            &[],
            station.stats.malformed_asdus,
        );
        let name = "ocpp809_commands_total";
        out.family(
            name,
            "counter",
            "SCADA commands carried out by the application, by confirmation (positive/negative).",
        );
        out.sample(
            name,
            &[("outcome", "positive")],
            self.commands_positive.load(Ordering::Relaxed),
        );
        out.sample(
            name,
            &[("outcome", "negative")],
            self.commands_negative.load(Ordering::Relaxed),
        );
        out.family(
            "ocpp809_mqtt_connected",
            "gauge",
            "1 while the MQTT broker connection is up.",
        );
        out.sample(
            "ocpp809_mqtt_connected",
            &[],
            u64::from(mqtt.is_some_and(MqttStats::connected)),
        );
        out.family(
            "ocpp809_mqtt_queue_depth",
            "gauge",
            "MQTT messages buffered or in flight, not yet acknowledged by the broker.",
        );
        out.sample(
            "ocpp809_mqtt_queue_depth",
            &[],
            mqtt.map_or(0, MqttStats::buffered),
        );
        out.family(
            "ocpp809_mqtt_dropped_total",
            "counter",
            "MQTT messages dropped: offline buffer full, oversized, or the mirror's input queue full.",
        );
        out.sample(
            "ocpp809_mqtt_dropped_total",
            &[],
            mqtt.map_or(0, MqttStats::dropped) + self.telemetry_dropped.load(Ordering::Relaxed),
        );
        let name = "ocpp809_upstream_messages_total";
        out.family(
            name,
            "counter",
            "OCPP relay transaction messages queued for, replayed to, or dropped before the upstream CSMS.",
        );
        for counter in UpstreamCounter::ALL {
            out.sample(
                name,
                &[("event", counter.label())],
                self.upstream_count(counter),
            );
        }
        let name = "ocpp809_meter_poll_failures_total";
        out.family(name, "counter", "Failed Modbus polls per configured meter.");
        for (meter, failures) in &self.meter_failures {
            out.sample(name, &[("meter", meter)], failures.load(Ordering::Relaxed));
        }
        let name = "ocpp809_security_events_total";
        out.family(
            name,
            "counter",
            "Security events (log target ocpp809::security): refused authentications, downgrades, rejected certificates, by event.",
        );
        for event in SecurityEvent::ALL {
            out.sample(
                name,
                &[("event", event.as_str())],
                self.security_events(event),
            );
        }
        out.text
    }
}

/// Adds 1 to a gauge while on; see [`Metrics::hold`].
#[derive(Debug)]
pub struct GaugeGuard {
    metrics: Arc<Metrics>,
    gauge: Gauge,
    on: bool,
}

impl GaugeGuard {
    /// Whether this holder counts in the gauge now.
    pub fn is_on(&self) -> bool {
        self.on
    }

    pub fn set(&mut self, on: bool) {
        if on != self.on {
            let delta = if on { 1 } else { -1 };
            self.metrics
                .gauge_cell(self.gauge)
                .fetch_add(delta, Ordering::Relaxed);
            self.on = on;
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.set(false);
    }
}

#[derive(Default)]
struct Families {
    text: String,
}

impl Families {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// HELP text: backslash and line feed are escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// Label values: backslash, double quote and line feed are escaped.
pub fn escape_label(text: &str) -> String {
    text.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_line(line: &str) -> bool {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            return rest.split_once(' ').is_some();
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            return matches!(
                rest.split_once(' '),
                Some((_, "counter" | "gauge" | "untyped"))
            );
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            return false;
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let labels_ok = name_end == series.len()
            || (series.ends_with('}') && series[name_end..].contains("=\""));
        name_ok && labels_ok && value.parse::<f64>().is_ok()
    }

    #[test]
    fn every_line_of_the_exposition_is_valid() {
        let metrics = Metrics::new(vec!["grid".into()], None);
        let text = metrics.render(StationSample::default());
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            assert!(valid_line(line), "invalid line: {line:?}");
        }
    }

    #[test]
    fn each_family_has_help_and_type_before_its_samples() {
        let text = Metrics::default().render(StationSample::default());
        let lines: Vec<&str> = text.lines().collect();
        let i = lines
            .iter()
            .position(|l| l.starts_with("ocpp809_commands_total"))
            .expect("commands sample");
        assert_eq!(lines[i - 1], "# TYPE ocpp809_commands_total counter");
        assert!(lines[i - 2].starts_with("# HELP ocpp809_commands_total "));
        assert!(text.contains("# TYPE ocpp809_iec104_masters gauge\nocpp809_iec104_masters 0\n"));
    }

    #[test]
    fn counters_carry_their_labels() {
        let metrics = Metrics::new(vec!["grid".into()], None);
        metrics.count(Message::OcppIn);
        metrics.count(Message::OcppIn);
        metrics.coercion(CoercionKind::DecimalComma);
        metrics.command(true);
        metrics.command(false);
        metrics.command(false);
        metrics.meter_poll(0, false);
        let text = metrics.render(StationSample {
            queued: 7,
            stats: StationStats {
                events_dropped: 3,
                ..StationStats::default()
            },
        });
        for expected in [
            "ocpp809_messages_total{protocol=\"ocpp\",direction=\"in\"} 2\n",
            "ocpp809_messages_total{protocol=\"modbus\",direction=\"failed\"} 1\n",
            "ocpp809_messages_total{protocol=\"mqtt\",direction=\"out\"} 0\n",
            "ocpp809_sanitizer_coercions_total{kind=\"decimal_comma\"} 1\n",
            "ocpp809_commands_total{outcome=\"positive\"} 1\n",
            "ocpp809_commands_total{outcome=\"negative\"} 2\n",
            "ocpp809_meter_poll_failures_total{meter=\"grid\"} 1\n",
            "ocpp809_events_queued 7\n",
            "ocpp809_events_dropped_total 3\n",
            "ocpp809_build_info{version=\"",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn gauge_guards_give_their_count_back_when_dropped() {
        let metrics = Arc::new(Metrics::default());
        let a = metrics.hold(Gauge::Iec104Masters, true);
        let mut b = metrics.hold(Gauge::Iec104Masters, false);
        assert_eq!(metrics.gauge(Gauge::Iec104Masters), 1);
        b.set(true);
        b.set(true);
        assert_eq!(metrics.gauge(Gauge::Iec104Masters), 2);
        drop(a);
        drop(b);
        assert_eq!(metrics.gauge(Gauge::Iec104Masters), 0);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let metrics = Metrics::new(vec!["evil\"}\n".into()], None);
        let text = metrics.render(StationSample::default());
        assert!(text.contains("{meter=\"evil\\\"}\\n\"} 0\n"));
    }
}
