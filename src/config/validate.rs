//! Semantic checks of a parsed configuration: ranges from IEC 60870-5-104 §9.6 and the
//! IEC 60870-5-101 field sizes, the IOA layout of CONTRACT §3, Modbus meters (§7) and the names
//! that become MQTT topic levels (§5). The first failed check becomes the error.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

use super::layout;
use super::locate::Source;
use super::{
    Charger, Config, ConfigError, Iec101, Iec101Mode, Iec104, Measurand, Meter, MeterRegister,
    Mqtt, Ocpp, RegisterType, Site, Station, Upstream, CHARGER_BLOCK_LEN, MAX_IOA, OCPP_VERSIONS,
};

/// Longest accepted duration outside the IEC timers: far beyond any sensible setting, and
/// small enough that deadline arithmetic (`Instant + Duration`) cannot overflow.
const MAX_SECONDS: u64 = 7 * 24 * 3600;
/// At most 8 connectors fit the offsets 10n+0..10n+5 below offset 90 of a charger block.
const MAX_CONNECTORS: u8 = 8;
/// Upper bound of `ocpp.max_connections` (and of the per-address cap).
const MAX_OCPP_CONNECTIONS: usize = 100_000;

/// A failed check: the keys it concerns (reported at the first one the file sets) and why.
pub(super) struct Bad {
    keys: Vec<String>,
    message: String,
}

pub(super) type Check = Result<(), Bad>;

pub(super) fn bad(key: impl Into<String>, message: impl Into<String>) -> Bad {
    Bad {
        keys: vec![key.into()],
        message: message.into(),
    }
}

pub(super) fn ensure(ok: bool, key: impl Into<String>, message: impl Into<String>) -> Check {
    if ok {
        Ok(())
    } else {
        Err(bad(key, message))
    }
}

/// Like [`ensure`] for a rule relating two keys: reported at `first` if the file sets it,
/// else at `second` if the file sets that.
pub(super) fn ensure_either(
    ok: bool,
    first: impl Into<String>,
    second: impl Into<String>,
    message: String,
) -> Check {
    if ok {
        Ok(())
    } else {
        Err(Bad {
            keys: vec![first.into(), second.into()],
            message,
        })
    }
}

fn within<T: PartialOrd + Display>(value: T, range: RangeInclusive<T>, key: &str) -> Check {
    let message = format!("{value} is outside {}..={}", range.start(), range.end());
    ensure(range.contains(&value), key, message)
}

fn one_of<T: PartialEq + Display>(value: T, allowed: &[T], key: &str) -> Check {
    let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
    let message = format!("{value} is not one of {}", list.join(", "));
    ensure(allowed.contains(&value), key, message)
}

fn kw_at_least_zero(value: f64, key: &str) -> Check {
    let message = format!("{value} must be a finite number ≥ 0");
    ensure(value.is_finite() && value >= 0.0, key, message)
}

fn kw_above_zero(value: f64, key: &str) -> Check {
    let message = format!("{value} must be a finite number > 0");
    ensure(value.is_finite() && value > 0.0, key, message)
}

/// `value` becomes one level of an MQTT topic (CONTRACT §5).
fn topic_level(value: &str, key: &str) -> Check {
    ensure(!value.is_empty(), key, "must not be empty")?;
    let wrong = value
        .chars()
        .find(|&c| matches!(c, '/' | '+' | '#') || c.is_control());
    match wrong {
        Some(c) => Err(bad(
            key,
            format!("{value:?} is used as an MQTT topic level and must not contain {c:?}"),
        )),
        None => Ok(()),
    }
}

/// Splits `host[:port]`, `[v6][:port]`; the port, when present, must be 1..=65535.
fn host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = match text.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']').ok_or("IPv6 host lacks its ']'")?;
            match rest {
                "" => (host, None),
                _ => (host, Some(rest.strip_prefix(':').ok_or("junk after ']'")?)),
            }
        }
        None => match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    match port.map(|p| p.parse::<u16>()) {
        None => Ok((host, None)),
        Some(Ok(p)) if p != 0 => Ok((host, Some(p))),
        Some(_) => Err(format!(
            "port {:?} is not 1..=65535",
            port.unwrap_or_default()
        )),
    }
}

fn mqtt_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("mqtts://"))
        .ok_or("must start with mqtt:// or mqtts://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host_port(host).map(drop)
}

fn listen(addr: SocketAddr, key: &str) -> Check {
    ensure(
        addr.port() != 0,
        key,
        "port 0 is not a fixed port to listen on",
    )
}

pub(super) fn validate(config: &Config, source: &Source) -> Result<(), ConfigError> {
    check(config, source).map_err(|bad| source.invalid(&bad.keys, bad.message))
}

fn check(c: &Config, source: &Source) -> Check {
    station(&c.station)?;
    iec104(&c.iec104)?;
    ocpp(&c.ocpp, &c.iec104)?;
    mqtt(&c.mqtt)?;
    http(c)?;
    site(&c.site)?;
    upstream(&c.upstream)?;
    super::tls::check(c)?;
    for (i, charger) in c.charger.iter().enumerate() {
        self::charger(&format!("charger[{i}]"), charger)?;
        if let Some(j) = c.charger[..i].iter().position(|o| o.id == charger.id) {
            let message = format!(
                "charger id {:?} is already used by charger[{j}]",
                charger.id
            );
            return Err(bad(format!("charger[{i}].id"), message));
        }
    }
    for (i, meter) in c.meter.iter().enumerate() {
        self::meter(&format!("meter[{i}]"), meter, source)?;
        if let Some(j) = c.meter[..i].iter().position(|o| o.name == meter.name) {
            let message = format!("meter name {:?} is already used by meter[{j}]", meter.name);
            return Err(bad(format!("meter[{i}].name"), message));
        }
        if let Some(j) = c.meter[..i]
            .iter()
            .position(|o| o.grid_meter && meter.grid_meter)
        {
            let message = format!("meter[{j}] is already the grid meter; at most one may be");
            return Err(bad(format!("meter[{i}].grid_meter"), message));
        }
    }
    for (i, line) in c.iec101.iter().enumerate() {
        iec101(&format!("iec101[{i}]"), line)?;
    }
    layout::serial_devices(c)?;
    layout::ioa_layout(c, source)
}

fn http(c: &Config) -> Check {
    let h = &c.http;
    listen(h.listen, "http.listen")?;
    let clashes = |other: SocketAddr| {
        h.listen.port() == other.port()
            && (h.listen.ip() == other.ip()
                || h.listen.ip().is_unspecified()
                || other.ip().is_unspecified())
    };
    for (other, key) in [
        (c.iec104.listen, "iec104.listen"),
        (c.ocpp.listen, "ocpp.listen"),
    ] {
        let message = format!("{} collides with {key} ({other})", h.listen);
        ensure(!h.enabled || !clashes(other), "http.listen", message)?;
    }
    Ok(())
}

fn station(s: &Station) -> Check {
    topic_level(&s.name, "station.name")?;
    ensure(
        !s.state_dir.as_os_str().is_empty(),
        "station.state_dir",
        "must not be empty",
    )
}

fn iec104(i: &Iec104) -> Check {
    listen(i.listen, "iec104.listen")?;
    let message = format!(
        "{} is outside 1..=65534 (65535 is the broadcast address)",
        i.common_address
    );
    ensure(
        (1..=65534).contains(&i.common_address),
        "iec104.common_address",
        message,
    )?;
    within(i.k, 1..=32767, "iec104.k")?;
    within(i.w, 1..=32767, "iec104.w")?;
    let message = format!("w ({}) must be less than k ({})", i.w, i.k);
    ensure_either(i.w < i.k, "iec104.w", "iec104.k", message)?;
    within(i.t0_s, 1..=255, "iec104.t0_s")?;
    within(i.t1_s, 1..=255, "iec104.t1_s")?;
    within(i.t2_s, 1..=255, "iec104.t2_s")?;
    within(i.t3_s, 1..=48 * 3600, "iec104.t3_s")?;
    let message = format!("t2_s ({}) must be less than t1_s ({})", i.t2_s, i.t1_s);
    ensure_either(i.t2_s < i.t1_s, "iec104.t2_s", "iec104.t1_s", message)?;
    ensure(
        i.max_masters >= 1,
        "iec104.max_masters",
        "must be at least 1",
    )?;
    within(
        i.select_timeout_s,
        1..=MAX_SECONDS,
        "iec104.select_timeout_s",
    )?;
    kw_at_least_zero(i.power_deadband_kw, "iec104.power_deadband_kw")?;
    kw_at_least_zero(i.current_deadband_a, "iec104.current_deadband_a")?;
    kw_at_least_zero(i.large_change_kw, "iec104.large_change_kw")
}

fn ocpp(o: &Ocpp, iec104: &Iec104) -> Check {
    listen(o.listen, "ocpp.listen")?;
    let (a, b) = (o.listen, iec104.listen);
    let clash = a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified());
    let message = format!("{a} collides with iec104.listen ({b})");
    ensure(!clash, "ocpp.listen", message)?;
    ensure(
        !o.versions.is_empty(),
        "ocpp.versions",
        "must offer at least one version",
    )?;
    for (i, version) in o.versions.iter().enumerate() {
        let message = format!(
            "{version:?} is not one of {}",
            OCPP_VERSIONS.map(|v| format!("{v:?}")).join(", ")
        );
        ensure(
            OCPP_VERSIONS.contains(&version.as_str()),
            "ocpp.versions",
            message,
        )?;
        let message = format!("{version:?} is listed twice");
        ensure(!o.versions[..i].contains(version), "ocpp.versions", message)?;
    }
    within(o.call_timeout_s, 1..=MAX_SECONDS, "ocpp.call_timeout_s")?;
    within(
        o.heartbeat_interval_s,
        1..=MAX_SECONDS,
        "ocpp.heartbeat_interval_s",
    )?;
    within(
        o.auto_ioa_base,
        1..=MAX_IOA + 1 - CHARGER_BLOCK_LEN,
        "ocpp.auto_ioa_base",
    )?;
    kw_above_zero(o.default_max_kw, "ocpp.default_max_kw")?;
    within(
        o.default_connectors,
        1..=MAX_CONNECTORS,
        "ocpp.default_connectors",
    )?;
    within(
        o.max_connections,
        1..=MAX_OCPP_CONNECTIONS,
        "ocpp.max_connections",
    )?;
    within(
        o.max_connections_per_ip,
        0..=MAX_OCPP_CONNECTIONS,
        "ocpp.max_connections_per_ip",
    )?;
    ensure(
        o.max_messages_per_s.is_finite() && (0.0..=100_000.0).contains(&o.max_messages_per_s),
        "ocpp.max_messages_per_s",
        format!(
            "{} is not within 0..=100000 (0 = no limit)",
            o.max_messages_per_s
        ),
    )
}

fn mqtt(m: &Mqtt) -> Check {
    mqtt_url(&m.url).map_err(|e| bad("mqtt.url", format!("{:?} {e}", m.url)))?;
    let prefix = &m.topic_prefix;
    ensure(!prefix.is_empty(), "mqtt.topic_prefix", "must not be empty")?;
    let message = format!("{prefix:?} must not contain the wildcards '+' or '#'");
    ensure(!prefix.contains(['+', '#']), "mqtt.topic_prefix", message)?;
    let message = format!("{prefix:?}: topics starting with '$' are reserved for the broker");
    ensure(!prefix.starts_with('$'), "mqtt.topic_prefix", message)?;
    let message = "must not contain control characters";
    ensure(
        !prefix.contains(char::is_control),
        "mqtt.topic_prefix",
        message,
    )?;
    ensure(
        m.buffer_messages >= 1,
        "mqtt.buffer_messages",
        "must be at least 1",
    )?;
    let tls = m.url.starts_with("mqtts://");
    for (set, key) in [
        (m.ca_file.is_some(), "mqtt.ca_file"),
        (m.client_cert.is_some(), "mqtt.client_cert"),
        (m.client_key.is_some(), "mqtt.client_key"),
    ] {
        ensure(!set || tls, key, "applies to mqtts:// URLs only")?;
    }
    ensure_either(
        m.client_cert.is_some() == m.client_key.is_some(),
        "mqtt.client_cert",
        "mqtt.client_key",
        "client_cert and client_key go together".into(),
    )?;
    ensure(
        m.password.is_none() || m.username.is_some(),
        "mqtt.password",
        "needs mqtt.username",
    )?;
    ensure(
        m.username.as_deref() != Some(""),
        "mqtt.username",
        "must not be empty",
    )
}

/// `ws://` or `wss://` with a host (the charge point id is appended at run time).
fn upstream_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or("must start with ws:// or wss://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    host_port(authority).map(|_| ())
}

fn upstream(u: &Upstream) -> Check {
    upstream_url(&u.url).map_err(|e| bad("upstream.url", format!("{:?} {e}", u.url)))?;
    within(u.queue_messages, 1..=1_000_000, "upstream.queue_messages")?;
    within(u.answer_timeout_s, 1..=300, "upstream.answer_timeout_s")?;
    for (i, tag) in u.local_list.iter().enumerate() {
        // 2.0.1 IdTokenType.idToken is at most 36 characters (1.6 IdToken: 20).
        let message = format!("{tag:?} must be 1 to 36 printable ASCII characters");
        ensure(
            (1..=36).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_graphic()),
            "upstream.local_list",
            message,
        )?;
        let message = format!("{tag:?} is listed twice");
        ensure(
            !u.local_list[..i].contains(tag),
            "upstream.local_list",
            message,
        )?;
    }
    let cert = Upstream::path(&u.client_cert).is_some();
    let key = Upstream::path(&u.client_key).is_some();
    ensure_either(
        cert == key,
        "upstream.client_cert",
        "upstream.client_key",
        "client_cert and client_key go together".to_owned(),
    )?;
    let tls = u.url.starts_with("wss://");
    for (set, key) in [
        (Upstream::path(&u.ca_file).is_some(), "upstream.ca_file"),
        (cert, "upstream.client_cert"),
        (key, "upstream.client_key"),
    ] {
        ensure(!set || tls, key, "applies to wss:// URLs only")?;
    }
    Ok(())
}

fn site(s: &Site) -> Check {
    kw_at_least_zero(s.limit_kw, "site.limit_kw")?;
    kw_at_least_zero(s.failsafe_limit_kw, "site.failsafe_limit_kw")?;
    within(
        s.scada_loss_timeout_s,
        0..=MAX_SECONDS,
        "site.scada_loss_timeout_s",
    )
}

fn charger(at: &str, c: &Charger) -> Check {
    topic_level(&c.id, &format!("{at}.id"))?;
    kw_above_zero(c.max_kw, &format!("{at}.max_kw"))?;
    within(
        c.connectors,
        1..=MAX_CONNECTORS,
        &format!("{at}.connectors"),
    )?;
    one_of(c.phases, &[1, 3], &format!("{at}.phases"))?;
    if let Some(url) = &c.upstream_url {
        upstream_url(url).map_err(|e| bad(format!("{at}.upstream_url"), format!("{url:?} {e}")))?;
    }
    if let Some(password) = &c.password {
        let printable = password.chars().all(|ch| ch.is_ascii_graphic());
        if !(16..=40).contains(&password.len()) || !printable {
            return Err(bad(
                format!("{at}.password"),
                "a password has 16 to 40 printable ASCII characters",
            ));
        }
    }
    if let Some(phc) = &c.password_hash {
        crate::password::check_phc(phc).map_err(|why| bad(format!("{at}.password_hash"), why))?;
    }
    Ok(())
}

fn meter(at: &str, m: &Meter, source: &Source) -> Check {
    topic_level(&m.name, &format!("{at}.name"))?;
    match (&m.tcp, &m.rtu) {
        (Some(_), Some(_)) => return Err(bad(format!("{at}.rtu"), "set tcp or rtu, not both")),
        (None, None) => {
            let message = "set tcp = \"host:port\" or rtu = \"/dev/…\"";
            return Err(bad(format!("{at}.tcp"), message));
        }
        (Some(tcp), None) => {
            let key = format!("{at}.tcp");
            match host_port(tcp) {
                Ok((_, Some(_))) => {}
                Ok((_, None)) => return Err(bad(key, format!("{tcp:?} lacks \":port\""))),
                Err(e) => return Err(bad(key, format!("{tcp:?} {e}"))),
            }
            for serial_only in ["baud", "parity"] {
                let key = format!("{at}.{serial_only}");
                let message = "applies to rtu meters only";
                ensure(source.key_offset(&key).is_none(), key, message)?;
            }
        }
        (None, Some(rtu)) => {
            ensure(
                !rtu.is_empty(),
                format!("{at}.rtu"),
                "must name a serial device",
            )?;
            ensure(m.baud > 0, format!("{at}.baud"), "must be above 0")?;
            // 0 is the RTU broadcast address (no reply) and 248..=255 are reserved.
            within(m.unit_id, 1..=247, &format!("{at}.unit_id"))?;
        }
    }
    within(
        m.poll_ms,
        100..=MAX_SECONDS * 1000,
        &format!("{at}.poll_ms"),
    )?;
    ensure(
        !m.register.is_empty(),
        format!("{at}.register"),
        "a meter needs at least one [[meter.register]]",
    )?;
    for (j, register) in m.register.iter().enumerate() {
        let at = format!("{at}.register[{j}]");
        meter_register(&at, register)?;
        if m.register[..j]
            .iter()
            .any(|r| r.measurand == register.measurand)
        {
            let message = format!(
                "{} is already read by another register",
                register.measurand.as_str()
            );
            return Err(bad(format!("{at}.measurand"), message));
        }
    }
    let has_power = m
        .register
        .iter()
        .any(|r| r.measurand == Measurand::PowerActiveImport);
    ensure(
        !m.grid_meter || has_power,
        format!("{at}.grid_meter"),
        "a grid meter needs a Power.Active.Import register",
    )
}

fn meter_register(at: &str, r: &MeterRegister) -> Check {
    one_of(r.function, &[3, 4], &format!("{at}.function"))?;
    let last = u32::from(r.address) + u32::from(r.r#type.words()) - 1;
    let message = format!(
        "{} at {} would read past register 65535",
        r.r#type.as_str(),
        r.address
    );
    ensure(last <= 65535, format!("{at}.address"), message)?;
    let message = "u64 is for Energy.Active.Import.Register only";
    let energy = r.measurand == Measurand::EnergyActiveImportRegister;
    ensure(
        r.r#type != RegisterType::U64 || energy,
        format!("{at}.type"),
        message,
    )?;
    let message = format!("{} must be a finite number other than 0", r.scale);
    ensure(
        r.scale.is_finite() && r.scale != 0.0,
        format!("{at}.scale"),
        message,
    )?;
    let message = format!(
        "{} is not a unit of {}",
        r.unit.as_str(),
        r.measurand.as_str()
    );
    ensure(r.measurand.accepts(r.unit), format!("{at}.unit"), message)
}

fn iec101(at: &str, l: &Iec101) -> Check {
    ensure(
        !l.device.is_empty(),
        format!("{at}.device"),
        "must name a serial device",
    )?;
    ensure(l.baud > 0, format!("{at}.baud"), "must be above 0")?;
    one_of(l.cot_size, &[1, 2], &format!("{at}.cot_size"))?;
    one_of(l.ca_size, &[1, 2], &format!("{at}.ca_size"))?;
    one_of(l.ioa_size, &[1, 2, 3], &format!("{at}.ioa_size"))?;
    one_of(
        l.link_address_size,
        &[0, 1, 2],
        &format!("{at}.link_address_size"),
    )?;
    let message = "0 (no link address) is allowed with mode = \"balanced\" only".to_string();
    let ok = l.link_address_size != 0 || l.mode == Iec101Mode::Balanced;
    ensure_either(
        ok,
        format!("{at}.link_address_size"),
        format!("{at}.mode"),
        message,
    )?;
    // The all-ones value of each size is the broadcast address (common address:
    // IEC 60870-5-101 §7.2.4; link address: IEC 60870-5-2).
    let ca_max = if l.ca_size == 1 { 254 } else { 65534 };
    let message = format!(
        "{} does not fit ca_size = {} (1..={ca_max}; {} is broadcast)",
        l.common_address,
        l.ca_size,
        ca_max + 1
    );
    let ok = (1..=ca_max).contains(&l.common_address);
    ensure_either(
        ok,
        format!("{at}.common_address"),
        format!("{at}.ca_size"),
        message,
    )?;
    let link_max = match l.link_address_size {
        0 => return Ok(()),
        1 => 254,
        _ => 65534,
    };
    let message = format!(
        "{} does not fit link_address_size = {} (0..={link_max}; {} is broadcast)",
        l.link_address,
        l.link_address_size,
        link_max + 1
    );
    let ok = l.link_address <= link_max;
    ensure_either(
        ok,
        format!("{at}.link_address"),
        format!("{at}.link_address_size"),
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_forms() {
        assert_eq!(host_port("10.0.0.5:502"), Ok(("10.0.0.5", Some(502))));
        assert_eq!(host_port("[::1]:502"), Ok(("::1", Some(502))));
        assert_eq!(host_port("meter.local"), Ok(("meter.local", None)));
        assert!(host_port(":502").is_err());
        assert!(host_port("host:0").is_err());
        assert!(host_port("host:99999").is_err());
    }

    #[test]
    fn mqtt_urls() {
        assert!(mqtt_url("mqtt://127.0.0.1:1883").is_ok());
        assert!(mqtt_url("mqtts://user:pw@broker.example:8883/").is_ok());
        assert!(mqtt_url("mqtt://[::1]").is_ok());
        assert!(mqtt_url("tcp://127.0.0.1:1883").is_err());
        assert!(mqtt_url("mqtt://:1883").is_err());
        assert!(mqtt_url("mqtt://").is_err());
    }
}
