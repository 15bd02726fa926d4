//! Configuration layer (CONTRACT §2): parsing, defaults, and that every rejected value is
//! reported with the key and line an operator has to fix.

use std::path::Path;

use ocpp809::config::{
    Config, ConfigError, Iec101Mode, Measurand, OcppMode, Parity, Redundancy, RegisterType, Unit,
    WordOrder,
};
use proptest::prelude::*;

/// The example of CONTRACT §2, verbatim.
const CONTRACT_EXAMPLE: &str = r#"[station]
name = "ocpp809"               # used in MQTT topics
state_dir = "/var/lib/ocpp809" # embedded default: "./ocpp809-state"

[iec104]
listen = "0.0.0.0:2404"
common_address = 1
k = 12
w = 8
t0_s = 30
t1_s = 15
t2_s = 10
t3_s = 20
allowed_masters = []           # IPs; empty = any
max_masters = 10
redundancy = "per_connection"  # every STARTDT-active master gets all data; "single_group": only the latest
gi_with_time = true            # GI answers use the time-tagged types (30/36/37); false: 1/13/15
select_timeout_s = 10          # SBO: select must be followed by execute within this time
large_change_kw = 50.0         # a power-limit change larger than this needs select-before-operate

[ocpp]
listen = "0.0.0.0:9000"        # chargers connect to ws://HOST:9000/ocpp/{chargePointId}
versions = ["ocpp2.0.1", "ocpp1.6"]   # offered subprotocols, preference order
mode = "lenient"               # lenient: sanitize non-conforming payloads; strict: reject them
call_timeout_s = 30
heartbeat_interval_s = 300
accept_unknown = true          # unknown charge point ids get the next free IOA block (persisted)
auto_ioa_base = 10000          # first block for unknown chargers, steps of 100, skipping configured blocks
default_max_kw = 22.0          # for unknown chargers
default_connectors = 2         # for unknown chargers

[mqtt]
enabled = true
url = "mqtt://127.0.0.1:1883"
topic_prefix = "ocpp809"
buffer_messages = 100000       # offline buffer while the broker is unreachable

[site]
ioa_base = 1
limit_kw = 0.0                 # 0 = no site limit
failsafe_limit_kw = 0.0        # applied when no SCADA master has been connected for scada_loss_timeout_s (0 = off)
scada_loss_timeout_s = 0

[[iec101]]                     # zero or more serial lines; each serves the same point image
device = "/dev/ttyS1"
baud = 9600
parity = "even"                # none | even | odd (8 data bits, 1 stop bit)
mode = "unbalanced"            # unbalanced (secondary, polled) | balanced
link_address = 1
link_address_size = 1          # 0 (balanced only), 1, 2
common_address = 1
cot_size = 1
ca_size = 1
ioa_size = 2

[[meter]]                      # zero or more Modbus meters, polled
name = "grid"
tcp = "127.0.0.1:502"          # or: rtu = "/dev/ttyUSB0", baud = 9600, parity = "none"
unit_id = 1
poll_ms = 1000
ioa_base = 900                 # points: see §3 "Meter points"
grid_meter = true              # site power management uses this meter's power as the site load
[[meter.register]]
measurand = "Power.Active.Import"   # Energy.Active.Import.Register | Current.Import | Voltage
function = 4                   # 3 = holding, 4 = input registers
address = 52                   # 0-based register address
type = "f32"                   # u16 | i16 | u32 | i32 | f32 | u64
word_order = "big"             # big: high word first | little
scale = 1.0                    # value = raw × scale, in `unit`
unit = "W"                     # W | kW | Wh | kWh | A | V

[[charger]]
id = "CP001"
ioa_base = 1000
max_kw = 22.0
connectors = 2                 # points exist for connectors 1..connectors from start-up
phases = 3                     # A ↔ kW conversions use 230 V × phases
"#;

fn parse(text: &str) -> Config {
    match Config::from_toml_str(text, "test.toml") {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

/// The line marked `# <- KEY` and that key.
fn marker(text: &str) -> (usize, &str) {
    text.lines()
        .enumerate()
        .find_map(|(i, line)| {
            let key = line.split_once("# <- ")?.1.split_whitespace().next()?;
            Some((i + 1, key))
        })
        .expect("the test text marks the expected line with `# <- KEY`")
}

/// Asserts that `text` is rejected at the line marked `# <- KEY`, naming KEY; returns the
/// message.
#[track_caller]
fn rejects(text: &str) -> String {
    let (line, key) = marker(text);
    match Config::from_toml_str(text, "test.toml") {
        Err(ConfigError::Invalid {
            origin,
            line: at,
            key: named,
            message,
            ..
        }) => {
            assert_eq!(origin, "test.toml");
            assert_eq!((named.as_str(), at), (key, line), "message: {message}");
            message
        }
        other => panic!("expected an error at line {line} naming {key}, got {other:?}"),
    }
}

/// `base` with the first `from` replaced by `to`.
fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "{from:?} is not in the text");
    base.replacen(from, to, 1)
}

#[test]
fn the_embedded_default_parses_and_validates() {
    let config = Config::from_toml_str(Config::DEFAULT_TOML, "<embedded>");
    let config = config.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config, Config::embedded_default());
    assert_eq!(config.station.state_dir, Path::new("./ocpp809-state"));
    assert!(config.iec101.is_empty() && config.meter.is_empty() && config.charger.is_empty());
    assert!(config.mqtt.enabled);
}

#[test]
fn the_contract_example_parses_with_every_block() {
    let config = parse(CONTRACT_EXAMPLE);
    assert_eq!(config.station.name, "ocpp809");
    assert_eq!(config.station.state_dir, Path::new("/var/lib/ocpp809"));
    assert_eq!(config.iec104.listen.to_string(), "0.0.0.0:2404");
    assert_eq!((config.iec104.k, config.iec104.w), (12, 8));
    assert_eq!(config.iec104.redundancy, Redundancy::PerConnection);
    assert_eq!(config.ocpp.versions, ["ocpp2.0.1", "ocpp1.6"]);
    assert_eq!(config.ocpp.mode, OcppMode::Lenient);
    assert_eq!(config.iec101.len(), 1);
    let line = &config.iec101[0];
    assert_eq!(line.device, "/dev/ttyS1");
    assert_eq!(
        (line.parity, line.mode),
        (Parity::Even, Iec101Mode::Unbalanced)
    );
    assert_eq!((line.cot_size, line.ca_size, line.ioa_size), (1, 1, 2));
    let meter = &config.meter[0];
    assert_eq!(meter.tcp.as_deref(), Some("127.0.0.1:502"));
    assert!(meter.grid_meter && meter.rtu.is_none());
    let register = &meter.register[0];
    assert_eq!(register.measurand, Measurand::PowerActiveImport);
    assert_eq!((register.function, register.address), (4, 52));
    assert_eq!(
        (register.r#type, register.word_order),
        (RegisterType::F32, WordOrder::Big)
    );
    assert_eq!((register.scale, register.unit), (1.0, Unit::W));
    let charger = &config.charger[0];
    assert_eq!((charger.id.as_str(), charger.ioa_base), ("CP001", 1000));
    assert_eq!(
        (charger.max_kw, charger.connectors, charger.phases),
        (22.0, 2, 3)
    );
}

#[test]
fn the_contract_example_states_the_defaults_of_an_empty_file() {
    let mut example = parse(CONTRACT_EXAMPLE);
    example.iec101.clear();
    example.meter.clear();
    example.charger.clear();
    assert_eq!(example, parse(""));
}

#[test]
fn block_keys_left_out_take_their_documented_defaults() {
    let config = parse(
        r#"
[[iec101]]
device = "/dev/ttyS2"
[[meter]]
name = "m"
rtu = "/dev/ttyUSB0"
ioa_base = 900
[[meter.register]]
measurand = "Voltage"
address = 0
type = "u16"
unit = "V"
[[charger]]
id = "CP9"
ioa_base = 2000
"#,
    );
    let line = &config.iec101[0];
    assert_eq!(
        (line.baud, line.parity, line.mode),
        (9600, Parity::Even, Iec101Mode::Unbalanced)
    );
    assert_eq!(
        (
            line.link_address,
            line.link_address_size,
            line.common_address
        ),
        (1, 1, 1)
    );
    assert_eq!((line.cot_size, line.ca_size, line.ioa_size), (1, 1, 2));
    let meter = &config.meter[0];
    assert_eq!(
        (meter.baud, meter.parity, meter.unit_id),
        (9600, Parity::None, 1)
    );
    assert_eq!((meter.poll_ms, meter.grid_meter), (1000, false));
    let register = &meter.register[0];
    assert_eq!(
        (register.function, register.word_order, register.scale),
        (4, WordOrder::Big, 1.0)
    );
    let charger = &config.charger[0];
    assert_eq!(
        (charger.max_kw, charger.connectors, charger.phases),
        (22.0, 2, 3)
    );
}

#[test]
fn integers_are_accepted_for_kilowatts_and_dotted_keys_work() {
    let config = parse("site.limit_kw = 100\niec104.large_change_kw = 5\n");
    assert_eq!(
        (config.site.limit_kw, config.iec104.large_change_kw),
        (100.0, 5.0)
    );
}

#[test]
fn an_error_displays_as_file_line_column_key_message() {
    let e = Config::from_toml_str("[iec104]\n  k = 0\n", "/etc/ocpp809/ocpp809.toml");
    let e = e.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        e,
        "/etc/ocpp809/ocpp809.toml:2:3: iec104.k: 0 is outside 1..=32767"
    );
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("ocpp809-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("ocpp809.toml");
    std::fs::write(&path, "[station]\nname = \"north\"\n").unwrap_or_else(|e| panic!("{e}"));
    let loaded = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.station.name, "north");
    std::fs::write(&path, "[station]\nname = \"a/b\"\n").unwrap_or_else(|e| panic!("{e}"));
    let message = Config::load(&path)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.starts_with(&format!("{}:2:1: station.name: ", path.display())),
        "{message}"
    );
    let missing = dir.join("absent.toml");
    match Config::load(&missing) {
        Err(e @ ConfigError::Io { .. }) => assert!(e.to_string().contains("absent.toml")),
        other => panic!("expected an IO error, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn summary_names_the_essentials() {
    let summary = parse(CONTRACT_EXAMPLE).summary();
    for part in [
        "\"ocpp809\"",
        "0.0.0.0:2404",
        "common address 1",
        "0.0.0.0:9000",
        "ocpp2.0.1, ocpp1.6",
        "1 charger,",
        "1 meter",
        "1 serial line",
        "MQTT: on",
    ] {
        assert!(summary.contains(part), "{part:?} missing from:\n{summary}");
    }
    assert!(parse("mqtt.enabled = false")
        .summary()
        .contains("MQTT: off"));
}

#[test]
fn used_ioa_ranges_lists_site_meters_and_chargers() {
    let ranges = parse(CONTRACT_EXAMPLE).used_ioa_ranges();
    assert_eq!(
        ranges,
        [
            (1..12, "site".to_string()),
            (900..905, "meter grid".to_string()),
            (1000..1100, "charger CP001".to_string()),
        ]
    );
}

#[test]
fn the_reference_documents_every_key_and_its_example_parses() {
    let reference = include_str!("../docs/configuration.md");
    let keys = Config::DEFAULT_TOML.lines().filter_map(|line| {
        let line = line.trim_start_matches(['#', ' ']);
        let (key, _) = line.split_once(" = ")?;
        key.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            .then_some(key)
    });
    for key in keys {
        assert!(
            reference.contains(&format!("| `{key}` |")),
            "{key} is not documented"
        );
    }
    let example = reference
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next());
    let config = parse(example.unwrap_or_default());
    assert_eq!(
        (
            config.iec101.len(),
            config.meter.len(),
            config.charger.len()
        ),
        (1, 1, 1)
    );
}

// ---- errors from the TOML layer ----

#[test]
fn an_unknown_key_is_named_at_its_line() {
    let message = rejects("[iec104]\nk = 12\nkk = 3  # <- iec104.kk\n");
    assert!(message.contains("unknown field `kk`"), "{message}");
    rejects("verbose = true  # <- verbose\n");
    rejects(&edit(
        CONTRACT_EXAMPLE,
        "phases = 3",
        "phase = 3  # <- charger[0].phase",
    ));
    rejects(&edit(
        CONTRACT_EXAMPLE,
        "scale = 1.0",
        "scaling = 1.0  # <- meter[0].register[0].scaling",
    ));
}

#[test]
fn a_value_of_the_wrong_type_is_named_at_its_line() {
    let message = rejects("\n[iec104]\nk = \"12\"  # <- iec104.k\n");
    assert!(message.contains("invalid type"), "{message}");
    rejects("[iec104]\nk = 70000  # <- iec104.k\n");
    rejects("[ocpp]\nlisten = \"localhost\"  # <- ocpp.listen\n");
    rejects("[iec104]\nallowed_masters = [\"10.0.0.300\"]  # <- iec104.allowed_masters[0]\n");
    rejects("[iec104]\nredundancy = \"hot_standby\"  # <- iec104.redundancy\n");
    rejects(&edit(
        CONTRACT_EXAMPLE,
        "unit = \"W\"",
        "unit = \"MW\"  # <- meter[0].register[0].unit",
    ));
    rejects(&edit(
        CONTRACT_EXAMPLE,
        "\nconnectors = 2",
        "\nconnectors = -1  # <- charger[0].connectors",
    ));
}

#[test]
fn a_missing_required_key_is_named_at_its_table() {
    let text = edit(
        CONTRACT_EXAMPLE,
        "[[charger]]\nid = \"CP001\"\n",
        "[[charger]]  # <- charger[0].id\n",
    );
    let message = rejects(&text);
    assert!(message.contains("missing field `id`"), "{message}");
}

#[test]
fn a_syntax_error_is_placed_under_its_table() {
    rejects("[site]\nlimit_kw = 1.0\n\n[iec104]\nk = [1, }  # <- iec104.k\nw = 2\n");
    rejects("[[charger]]\n[[charger]]\nid = 'a' 'b'  # <- charger[1].id\n");
}

// ---- [station], [iec104] ----

#[test]
fn station_name_must_be_a_usable_topic_level() {
    rejects("[station]\nname = \"\"  # <- station.name\n");
    rejects("[station]\nname = \"a/b\"  # <- station.name\n");
    rejects("[station]\nname = \"a+\"  # <- station.name\n");
    rejects("[station]\nname = \"#\"  # <- station.name\n");
}

#[test]
fn k_and_w_are_1_to_32767_with_w_below_k() {
    rejects("[iec104]\nk = 0  # <- iec104.k\n");
    rejects("[iec104]\nk = 32768  # <- iec104.k\n");
    rejects("[iec104]\nw = 0  # <- iec104.w\n");
    rejects("[iec104]\nk = 8\nw = 8  # <- iec104.w\n");
    // Only k is set: the rule is reported there.
    rejects("[iec104]\nk = 6  # <- iec104.k\n");
}

#[test]
fn timers_are_at_least_1_second_and_t1_exceeds_t2() {
    for key in ["t0_s", "t1_s", "t2_s", "t3_s"] {
        rejects(&format!("[iec104]\n{key} = 0  # <- iec104.{key}\n"));
    }
    rejects("[iec104]\nt0_s = 256  # <- iec104.t0_s\n");
    rejects("[iec104]\nt3_s = 172801  # <- iec104.t3_s\n");
    rejects("[iec104]\nt2_s = 15  # <- iec104.t2_s\n");
    rejects("[iec104]\nt1_s = 10  # <- iec104.t1_s\n");
}

#[test]
fn iec104_common_address_is_1_to_65534() {
    rejects("[iec104]\ncommon_address = 0  # <- iec104.common_address\n");
    rejects("[iec104]\ncommon_address = 65535  # <- iec104.common_address\n");
    parse("[iec104]\ncommon_address = 65534\n");
}

#[test]
fn masters_select_timeout_and_large_change() {
    rejects("[iec104]\nmax_masters = 0  # <- iec104.max_masters\n");
    rejects("[iec104]\nselect_timeout_s = 0  # <- iec104.select_timeout_s\n");
    rejects("[iec104]\nlarge_change_kw = -1.0  # <- iec104.large_change_kw\n");
    rejects("[iec104]\nlarge_change_kw = nan  # <- iec104.large_change_kw\n");
    parse("[iec104]\nlarge_change_kw = 0.0\nallowed_masters = [\"10.0.0.1\", \"::1\"]\n");
}

#[test]
fn listen_ports_are_fixed_and_distinct() {
    rejects("[iec104]\nlisten = \"0.0.0.0:0\"  # <- iec104.listen\n");
    rejects("[ocpp]\nlisten = \"[::]:0\"  # <- ocpp.listen\n");
    rejects("[ocpp]\nlisten = \"127.0.0.1:2404\"  # <- ocpp.listen\n");
    parse("[iec104]\nlisten = \"10.0.0.1:2404\"\n[ocpp]\nlisten = \"10.0.0.2:2404\"\n");
}

#[test]
fn the_http_listener_defaults_to_loopback_and_must_not_collide() {
    let config = parse("");
    assert!(config.http.enabled);
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:9809");
    rejects("[http]\nport = 9809  # <- http.port\n");
    rejects("[http]\nlisten = \"127.0.0.1:0\"  # <- http.listen\n");
    rejects("[http]\nlisten = \"0.0.0.0:2404\"  # <- http.listen\n");
    rejects("[http]\nlisten = \"127.0.0.1:9000\"  # <- http.listen\n");
    // A disabled listener may name any port.
    parse("[http]\nenabled = false\nlisten = \"127.0.0.1:9000\"\n");
    parse("[http]\nlisten = \"[::1]:8080\"\n");
}

// ---- [ocpp], [mqtt], [site] ----

#[test]
fn versions_are_a_nonempty_subset_without_duplicates() {
    rejects("[ocpp]\nversions = []  # <- ocpp.versions\n");
    rejects("[ocpp]\nversions = [\"ocpp1.5\"]  # <- ocpp.versions\n");
    rejects("[ocpp]\nversions = [\"ocpp1.6\", \"ocpp1.6\"]  # <- ocpp.versions\n");
    parse("[ocpp]\nversions = [\"ocpp2.1\", \"ocpp1.6\", \"ocpp2.0.1\"]\n");
}

#[test]
fn ocpp_timers_and_unknown_charger_defaults() {
    rejects("[ocpp]\ncall_timeout_s = 0  # <- ocpp.call_timeout_s\n");
    rejects("[ocpp]\nheartbeat_interval_s = 0  # <- ocpp.heartbeat_interval_s\n");
    rejects("[ocpp]\nauto_ioa_base = 0  # <- ocpp.auto_ioa_base\n");
    rejects("[ocpp]\nauto_ioa_base = 16777200  # <- ocpp.auto_ioa_base\n");
    rejects("[ocpp]\ndefault_max_kw = 0.0  # <- ocpp.default_max_kw\n");
    rejects("[ocpp]\ndefault_connectors = 9  # <- ocpp.default_connectors\n");
}

#[test]
fn ocpp_input_limits() {
    rejects("[ocpp]\nmax_connections = 0  # <- ocpp.max_connections\n");
    rejects("[ocpp]\nmax_connections_per_ip = 100001  # <- ocpp.max_connections_per_ip\n");
    rejects("[ocpp]\nmax_messages_per_s = -1.0  # <- ocpp.max_messages_per_s\n");
    rejects("[ocpp]\nmax_messages_per_s = nan  # <- ocpp.max_messages_per_s\n");
    parse("[ocpp]\nmax_connections_per_ip = 0\nmax_messages_per_s = 0.0\n");
    parse("[ocpp]\nmax_connections = 1\nmax_messages_per_s = 0.5\n");
}

#[test]
fn mqtt_url_prefix_and_buffer() {
    rejects("[mqtt]\nurl = \"tcp://127.0.0.1:1883\"  # <- mqtt.url\n");
    rejects("[mqtt]\nurl = \"mqtt://:1883\"  # <- mqtt.url\n");
    rejects("[mqtt]\nurl = \"mqtts://broker:0\"  # <- mqtt.url\n");
    rejects("[mqtt]\ntopic_prefix = \"\"  # <- mqtt.topic_prefix\n");
    rejects("[mqtt]\ntopic_prefix = \"a/+\"  # <- mqtt.topic_prefix\n");
    rejects("[mqtt]\ntopic_prefix = \"a/#\"  # <- mqtt.topic_prefix\n");
    rejects("[mqtt]\nbuffer_messages = 0  # <- mqtt.buffer_messages\n");
    parse("[mqtt]\nurl = \"mqtts://user:secret@broker.example\"\ntopic_prefix = \"plant/ev\"\n");
}

#[test]
fn mqtt_tls_files_and_login() {
    rejects("[mqtt]\nca_file = \"/etc/ca.pem\"  # <- mqtt.ca_file\n");
    rejects("[mqtt]\nurl = \"mqtts://h\"\nclient_cert = \"/c.pem\"  # <- mqtt.client_cert\n");
    rejects("[mqtt]\nurl = \"mqtts://h\"\nclient_key = \"/k.pem\"  # <- mqtt.client_key\n");
    rejects("[mqtt]\npassword = \"p\"  # <- mqtt.password\n");
    rejects("[mqtt]\nusername = \"\"  # <- mqtt.username\n");
    let config = parse(
        "[mqtt]\nurl = \"mqtts://h\"\nca_file = \"/ca.pem\"\nclient_cert = \"/c.pem\"\n\
         client_key = \"/k.pem\"\nusername = \"u\"\npassword = \"topsecret\"\n",
    );
    assert_eq!(
        config.mqtt.password.as_ref().map(|p| p.expose()),
        Some("topsecret")
    );
    assert!(!format!("{config:?}").contains("topsecret"));
}

#[test]
fn the_summary_does_not_show_an_mqtt_password() {
    let config = parse("[mqtt]\nurl = \"mqtt://u:topsecret@broker:1883\"\n");
    let summary = config.summary();
    assert!(!summary.contains("topsecret"), "{summary}");
    assert!(summary.contains("mqtt://u:***@broker:1883"), "{summary}");
}

#[test]
fn site_limits_are_not_negative() {
    rejects("[site]\nlimit_kw = -0.5  # <- site.limit_kw\n");
    rejects("[site]\nfailsafe_limit_kw = -1  # <- site.failsafe_limit_kw\n");
    rejects("[site]\nlimit_kw = inf  # <- site.limit_kw\n");
}

// ---- IOA layout ----

const TWO_CHARGERS: &str = r#"
[[charger]]
id = "CP001"
ioa_base = 1000

[[charger]]
id = "CP002"
ioa_base = 1100
"#;

#[test]
fn a_charger_overlapping_the_site_block_is_reported_at_the_later_key() {
    let text = edit(
        TWO_CHARGERS,
        "ioa_base = 1100",
        "ioa_base = 5  # <- charger[1].ioa_base",
    );
    let message = rejects(&text);
    assert!(
        message.contains("charger CP002") && message.contains("site"),
        "{message}"
    );
    // The site block written after the charger is the second one.
    let text = format!("{TWO_CHARGERS}\n[site]\nioa_base = 1050  # <- site.ioa_base\n");
    let message = rejects(&text);
    assert!(
        message.contains("charger[0].ioa_base at line 4"),
        "{message}"
    );
}

#[test]
fn chargers_and_meters_must_not_overlap() {
    rejects(&edit(
        TWO_CHARGERS,
        "ioa_base = 1100",
        "ioa_base = 1099  # <- charger[1].ioa_base",
    ));
    parse(&edit(TWO_CHARGERS, "ioa_base = 1100", "ioa_base = 12"));
    let text = edit(CONTRACT_EXAMPLE, "ioa_base = 900 ", "ioa_base = 1095");
    let text = edit(
        &text,
        "ioa_base = 1000\n",
        "ioa_base = 1090  # <- charger[0].ioa_base\n",
    );
    rejects(&text);
}

#[test]
fn iois_fit_three_octets_and_zero_is_reserved() {
    rejects(&edit(
        TWO_CHARGERS,
        "ioa_base = 1100",
        "ioa_base = 16777200  # <- charger[1].ioa_base",
    ));
    parse(&edit(
        TWO_CHARGERS,
        "ioa_base = 1100",
        "ioa_base = 16777116",
    ));
    rejects(&edit(
        TWO_CHARGERS,
        "ioa_base = 1000",
        "ioa_base = 0  # <- charger[0].ioa_base",
    ));
    rejects("[site]\nioa_base = 0  # <- site.ioa_base\n");
}

#[test]
fn every_ioa_must_fit_the_ioa_size_of_each_serial_line() {
    let line = "[[iec101]]\ndevice = \"/dev/ttyS1\"\nioa_size = 1  # <- iec101[0].ioa_size\n";
    let message = rejects(&format!(
        "[ocpp]\naccept_unknown = false\n{line}{TWO_CHARGERS}"
    ));
    assert!(message.contains("charger CP001"), "{message}");
    // Blocks for unknown chargers must fit as well.
    rejects(&format!("[ocpp]\nauto_ioa_base = 200\n{line}"));
    parse(&format!(
        "[ocpp]\nauto_ioa_base = 100\n[site]\nioa_base = 50\n{line}"
    ));
    let line = line.replace("ioa_size = 1", "ioa_size = 2");
    let text = format!("{line}{TWO_CHARGERS}");
    rejects(&edit(
        &text,
        "ioa_base = 1100",
        "ioa_base = 65500  # <- iec101[0].ioa_size",
    ));
}

// ---- [[charger]] ----

#[test]
fn charger_ids_are_unique_topic_levels() {
    rejects(&edit(
        TWO_CHARGERS,
        "id = \"CP002\"",
        "id = \"CP001\"  # <- charger[1].id",
    ));
    rejects(&edit(
        TWO_CHARGERS,
        "id = \"CP002\"",
        "id = \"\"  # <- charger[1].id",
    ));
    rejects(&edit(
        TWO_CHARGERS,
        "id = \"CP002\"",
        "id = \"site/CP2\"  # <- charger[1].id",
    ));
    rejects(&edit(
        TWO_CHARGERS,
        "id = \"CP002\"",
        "id = \"CP+\"  # <- charger[1].id",
    ));
}

#[test]
fn charger_connectors_phases_and_power() {
    let text = |line: &str| {
        format!(
            "[[charger]]\nid = \"CP1\"\nioa_base = 1000\n{line}  # <- {}\n",
            line.split(' ')
                .next()
                .map(|k| format!("charger[0].{k}"))
                .unwrap_or_default()
        )
    };
    rejects(&text("connectors = 0"));
    rejects(&text("connectors = 9"));
    rejects(&text("phases = 2"));
    rejects(&text("max_kw = 0.0"));
    rejects(&text("max_kw = -22"));
    parse("[[charger]]\nid = \"CP1\"\nioa_base = 1000\nconnectors = 8\nphases = 1\n");
}

// ---- [[meter]] ----

const RTU_METERS: &str = r#"
[[meter]]
name = "grid"
rtu = "/dev/ttyUSB0"
ioa_base = 900
grid_meter = true
[[meter.register]]
measurand = "Power.Active.Import"
address = 0
type = "f32"
unit = "kW"
[[meter.register]]
measurand = "Energy.Active.Import.Register"
address = 2
type = "u64"
unit = "kWh"

[[meter]]
name = "pv"
rtu = "/dev/ttyUSB0"
unit_id = 2
ioa_base = 905
[[meter.register]]
measurand = "Current.Import"
address = 10
type = "i16"
scale = 0.1
unit = "A"
"#;

#[test]
fn meters_share_an_rtu_bus_with_distinct_unit_ids() {
    let config = parse(RTU_METERS);
    assert_eq!(config.meter[1].register[0].scale, 0.1);
    rejects(&edit(
        RTU_METERS,
        "unit_id = 2",
        "unit_id = 1  # <- meter[1].unit_id",
    ));
    let text = edit(
        RTU_METERS,
        "unit_id = 2",
        "unit_id = 2\nbaud = 19200  # <- meter[1].baud",
    );
    rejects(&text);
    rejects(&edit(
        RTU_METERS,
        "unit_id = 2",
        "unit_id = 248  # <- meter[1].unit_id",
    ));
}

#[test]
fn a_meter_has_exactly_one_of_tcp_and_rtu() {
    let text = edit(
        RTU_METERS,
        "rtu = \"/dev/ttyUSB0\"",
        "tcp = \"10.0.0.9:502\"\nrtu = \"/dev/ttyUSB0\"  # <- meter[0].rtu",
    );
    rejects(&text);
    let text = edit(
        RTU_METERS,
        "name = \"grid\"\nrtu = \"/dev/ttyUSB0\"",
        "name = \"grid\"",
    );
    let text = edit(
        &text,
        "[[meter]]\nname = \"grid\"",
        "[[meter]]  # <- meter[0].tcp\nname = \"grid\"",
    );
    rejects(&text);
    rejects(&edit(
        CONTRACT_EXAMPLE,
        "tcp = \"127.0.0.1:502\"",
        "tcp = \"127.0.0.1\"  # <- meter[0].tcp",
    ));
    let text = edit(
        CONTRACT_EXAMPLE,
        "unit_id = 1",
        "unit_id = 1\nbaud = 19200  # <- meter[0].baud",
    );
    rejects(&text);
}

#[test]
fn meter_names_are_unique_topic_levels_and_one_grid_meter_at_most() {
    rejects(&edit(
        RTU_METERS,
        "name = \"pv\"",
        "name = \"grid\"  # <- meter[1].name",
    ));
    rejects(&edit(
        RTU_METERS,
        "name = \"pv\"",
        "name = \"pv/1\"  # <- meter[1].name",
    ));
    let text = edit(
        RTU_METERS,
        "unit_id = 2",
        "unit_id = 2\ngrid_meter = true  # <- meter[1].grid_meter",
    );
    rejects(&text);
}

#[test]
fn meter_poll_interval_is_at_least_100_ms() {
    rejects(&edit(
        RTU_METERS,
        "unit_id = 2",
        "unit_id = 2\npoll_ms = 99  # <- meter[1].poll_ms",
    ));
    parse(&edit(
        RTU_METERS,
        "unit_id = 2",
        "unit_id = 2\npoll_ms = 100",
    ));
}

#[test]
fn meter_registers_are_checked() {
    let second = "address = 10";
    let at = |key: &str, line: &str| {
        edit(
            RTU_METERS,
            second,
            &format!("{second}\n{line}  # <- meter[1].register[0].{key}"),
        )
    };
    rejects(&at("function", "function = 6"));
    rejects(&edit(
        RTU_METERS,
        "scale = 0.1",
        "scale = 0.0  # <- meter[1].register[0].scale",
    ));
    rejects(&edit(
        RTU_METERS,
        "scale = 0.1",
        "scale = nan  # <- meter[1].register[0].scale",
    ));
    rejects(&edit(
        RTU_METERS,
        "unit = \"A\"",
        "unit = \"V\"  # <- meter[1].register[0].unit",
    ));
    rejects(&edit(
        RTU_METERS,
        "unit = \"kW\"",
        "unit = \"kWh\"  # <- meter[0].register[0].unit",
    ));
    rejects(&edit(
        RTU_METERS,
        "type = \"i16\"",
        "type = \"u64\"  # <- meter[1].register[0].type",
    ));
    rejects(&edit(
        RTU_METERS,
        "address = 2",
        "address = 65533  # <- meter[0].register[1].address",
    ));
    let text = edit(
        RTU_METERS,
        "measurand = \"Energy.Active.Import.Register\"\naddress = 2\ntype = \"u64\"\nunit = \"kWh\"",
        "measurand = \"Power.Active.Import\"  # <- meter[0].register[1].measurand\naddress = 2\ntype = \"f32\"\nunit = \"W\"",
    );
    rejects(&text);
    let text = edit(
        RTU_METERS,
        "grid_meter = true",
        "grid_meter = true  # <- meter[0].grid_meter",
    );
    let text = edit(
        &text,
        "measurand = \"Power.Active.Import\"",
        "measurand = \"Voltage\"",
    );
    rejects(&edit(&text, "unit = \"kW\"", "unit = \"V\""));
}

#[test]
fn a_serial_device_serves_one_protocol() {
    let line = "[[iec101]]\ndevice = \"/dev/ttyUSB0\"\n";
    let text = edit(
        &format!("{line}{RTU_METERS}"),
        "rtu = \"/dev/ttyUSB0\"",
        "rtu = \"/dev/ttyUSB0\"  # <- meter[0].rtu",
    );
    rejects(&text);
    let text = format!("{line}[[iec101]]\ndevice = \"/dev/ttyUSB0\"  # <- iec101[1].device\n");
    rejects(&text);
}

// ---- [[iec101]] ----

#[test]
fn iec101_field_sizes() {
    let line = |setting: &str| {
        let key = setting.split(' ').next().unwrap_or_default();
        format!("[[iec101]]\ndevice = \"/dev/ttyS1\"\n{setting}  # <- iec101[0].{key}\n")
    };
    rejects(&line("cot_size = 3"));
    rejects(&line("ca_size = 0"));
    rejects(&line("ioa_size = 4"));
    rejects(&line("link_address_size = 3"));
    rejects(&line("link_address_size = 0"));
    rejects(&line("baud = 0"));
    parse("[[iec101]]\ndevice = \"/dev/ttyS1\"\nmode = \"balanced\"\nlink_address_size = 0\n");
}

#[test]
fn iec101_addresses_fit_their_sizes() {
    let base = "[[iec101]]\ndevice = \"/dev/ttyS1\"\n";
    rejects(&format!(
        "{base}common_address = 255  # <- iec101[0].common_address\n"
    ));
    rejects(&format!(
        "{base}common_address = 0  # <- iec101[0].common_address\n"
    ));
    rejects(&format!(
        "{base}ca_size = 1\ncommon_address = 300  # <- iec101[0].common_address\n"
    ));
    parse(&format!("{base}ca_size = 2\ncommon_address = 300\n"));
    rejects(&format!(
        "{base}link_address = 255  # <- iec101[0].link_address\n"
    ));
    parse(&format!(
        "{base}link_address_size = 2\nlink_address = 300\n"
    ));
    rejects(&format!(
        "{base}link_address_size = 2\nlink_address = 65535  # <- iec101[0].link_address\n"
    ));
}

// ---- robustness ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_is_answered_without_panicking(text in "\\PC*") {
        let _ = Config::from_toml_str(&text, "fuzz.toml");
    }

    #[test]
    fn edits_of_the_contract_example_are_answered_without_panicking(
        at in 0..CONTRACT_EXAMPLE.len(),
        cut in 0usize..20,
        insert in "[\\[\\]=\".,#a-z0-9 \\n-]{0,12}",
    ) {
        let mut text = CONTRACT_EXAMPLE.to_string();
        let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let mut end = (at + cut).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        text.replace_range(at..end, &insert);
        if let Err(ConfigError::Invalid { line, key, .. }) = Config::from_toml_str(&text, "x.toml") {
            prop_assert!(line <= text.lines().count() + 1);
            prop_assert!(!key.is_empty());
        }
    }
}

#[test]
fn a_charger_password_has_16_to_40_printable_characters() {
    let charger = |password: &str| {
        format!("[[charger]]\nid = \"CP001\"\nioa_base = 1000\npassword = \"{password}\"  # <- charger[0].password\n")
    };
    rejects(&charger("short"));
    rejects(&charger(&"x".repeat(41)));
    rejects(&charger("sixteen chars ok"));
    let config = parse(&charger("0123456789abcdef"));
    assert_eq!(
        config.charger[0].password.as_deref(),
        Some("0123456789abcdef")
    );
}

#[test]
fn a_charger_password_hash_is_an_argon2id_phc_string_of_sane_cost() {
    let charger = |phc: &str| {
        format!("[[charger]]\nid = \"CP001\"\nioa_base = 1000\npassword_hash = \"{phc}\"  # <- charger[0].password_hash\n")
    };
    let tail = "$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    rejects(&charger("0123456789abcdef"));
    rejects(&charger(&format!("$argon2id$v=19$m=1024,t=1,p=1{tail}")));
    rejects(&charger(&format!("$argon2i$v=19$m=19456,t=2,p=1{tail}")));
    rejects(&charger(&format!("$argon2id$v=19$m=4194304,t=2,p=1{tail}")));
    let phc = ocpp809::password::hash("0123456789abcdef").expect("hash");
    let config = parse(&charger(&phc));
    assert_eq!(
        config.charger[0].password_hash.as_deref(),
        Some(phc.as_str())
    );
    assert_eq!(config.plaintext_password_warning(), None);
    assert!(!config.has_secrets(), "a hash is not a password");
}

#[test]
fn a_plaintext_charger_password_is_warned_about_without_showing_it() {
    let config = parse(
        "[[charger]]\nid = \"CP001\"\nioa_base = 1000\n[[charger]]\nid = \"CP002\"\nioa_base = 1100\npassword = \"0123456789abcdef\"\n",
    );
    let warning = config.plaintext_password_warning().unwrap_or_default();
    assert!(
        warning.starts_with("charger[1].password (CP002): plaintext charger password")
            && warning.contains("ocpp809 charger set-password ID or password_hash")
            && !warning.contains("0123456789abcdef"),
        "{warning}"
    );
}

#[test]
fn a_charger_may_override_the_ocpp_mode() {
    let config = parse("[ocpp]\nmode = \"lenient\"\n[[charger]]\nid = \"CP001\"\nioa_base = 1000\nmode = \"strict\"\n");
    assert_eq!(
        config.charger[0].mode,
        Some(ocpp809::config::OcppMode::Strict)
    );
    rejects(
        "[[charger]]\nid = \"CP001\"\nioa_base = 1000\nmode = \"loose\"  # <- charger[0].mode\n",
    );
}

#[test]
fn deadbands_are_not_negative() {
    let config = parse("[iec104]\npower_deadband_kw = 0.5\ncurrent_deadband_a = 0.0\n");
    assert_eq!(
        (
            config.iec104.power_deadband_kw,
            config.iec104.current_deadband_a
        ),
        (0.5, 0.0)
    );
    rejects("[iec104]\npower_deadband_kw = -0.1  # <- iec104.power_deadband_kw\n");
    rejects("[iec104]\ncurrent_deadband_a = -1  # <- iec104.current_deadband_a\n");
}

#[test]
fn a_world_readable_file_with_passwords_is_flagged() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ocpp809-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ocpp809.toml");
    let with_secret =
        "[[charger]]\nid = \"CP001\"\nioa_base = 1000\npassword = \"0123456789abcdef\"\n";
    std::fs::write(&path, with_secret).expect("write");
    let set_mode = |mode| {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    set_mode(0o644);
    let config = Config::load(&path).expect("valid");
    assert!(config.has_secrets());
    let warning = config
        .exposure_warning(&path)
        .expect("world-readable with a password");
    assert!(
        warning.contains("644") && !warning.contains("0123456789abcdef"),
        "{warning}"
    );
    set_mode(0o640);
    assert_eq!(config.exposure_warning(&path), None);
    std::fs::write(&path, "[[charger]]\nid = \"CP001\"\nioa_base = 1000\n").expect("write");
    set_mode(0o644);
    let plain = Config::load(&path).expect("valid");
    assert_eq!(
        plain.exposure_warning(&path),
        None,
        "no secrets, nothing to protect"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn upstream_relay_keys() {
    let config = parse("");
    assert!(!config.upstream.enabled, "the relay is off by default");
    assert_eq!(config.upstream.queue_messages, 10_000);
    rejects("[upstream]\nurl = \"http://csms.example\"  # <- upstream.url\n");
    rejects("[upstream]\nurl = \"wss://:443/ocpp\"  # <- upstream.url\n");
    rejects("[upstream]\nforward = \"raw\"  # <- upstream.forward\n");
    rejects("[upstream]\noffline_authorization = \"maybe\"  # <- upstream.offline_authorization\n");
    rejects("[upstream]\nqueue_messages = 0  # <- upstream.queue_messages\n");
    rejects("[upstream]\nanswer_timeout_s = 0  # <- upstream.answer_timeout_s\n");
    rejects("[upstream]\nlocal_list = [\"\"]  # <- upstream.local_list\n");
    rejects("[upstream]\nlocal_list = [\"A B\"]  # <- upstream.local_list\n");
    rejects("[upstream]\nlocal_list = [\"A\", \"A\"]  # <- upstream.local_list\n");
    assert_eq!(
        parse("[upstream]\nlocal_list = [\"SERVICE-01\"]\n")
            .upstream
            .local_list,
        ["SERVICE-01"]
    );
    rejects("[upstream]\nurl = \"ws://h\"\nca_file = \"/ca.pem\"  # <- upstream.ca_file\n");
    rejects("[upstream]\nclient_cert = \"/c.pem\"  # <- upstream.client_cert\n");
    parse("[upstream]\nurl = \"ws://h\"\nca_file = \"\"\nclient_cert = \"\"\nclient_key = \"\"\n");
    rejects(
        "[[charger]]\nid = \"CP1\"\nioa_base = 1000\nupstream_url = \"ftp://x\"  # <- charger[0].upstream_url\n",
    );
    let config = parse(
        "[upstream]\nenabled = true\nurl = \"wss://csms.example:8443/ocpp\"\npassword = \"upsecret\"\n\
         client_cert = \"/c.pem\"\nclient_key = \"/k.pem\"\nforward = \"original\"\n\
         offline_authorization = \"accept\"\n\
         [[charger]]\nid = \"CP1\"\nioa_base = 1000\nupstream = false\n\
         [[charger]]\nid = \"CP2\"\nioa_base = 1100\nupstream_url = \"ws://other/ocpp\"\n\
         upstream_password = \"cp2secret\"\n",
    );
    assert!(config.upstream.enabled);
    assert!(!config.charger[0].upstream);
    assert_eq!(
        config.charger[1].upstream_url.as_deref(),
        Some("ws://other/ocpp")
    );
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("upsecret") && !shown.contains("cp2secret"),
        "{shown}"
    );
    assert!(config.has_secrets());
}
