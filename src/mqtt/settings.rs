//! `[mqtt]` and `[station]` turned into what the mirror task needs: broker address, login, TLS
//! configuration (rustls with the `ring` provider; system roots or a CA file, optional client
//! certificate), topic names and timing.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use super::client::MqttStats;
use super::topics::Topics;
use crate::config::{redact_url, Mqtt, Secret, Station};

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("mqtt.url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(transparent)]
    Tls(#[from] crate::tls::client::ClientTlsError),
}

/// Everything the mirror task needs. Build it with [`MqttSettings::from_config`].
#[derive(Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    /// `None`: plain TCP (`mqtt://`).
    pub tls: Option<Arc<ClientConfig>>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `ocpp809-{station}` with characters other than `[A-Za-z0-9_-]` replaced by `_`.
    pub client_id: String,
    pub topics: Topics,
    /// Size of the offline FIFO (meter samples, events, commands).
    pub buffer_messages: usize,
    /// The offline buffer's disk part lives in `{state_dir}/mqtt-spool/`.
    pub state_dir: PathBuf,
    /// First pause after a failed connection attempt; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub keep_alive: Duration,
    /// Counters for the metrics endpoint; clone the `Arc` before handing the settings over.
    pub stats: Arc<MqttStats>,
}

impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("client_id", &self.client_id)
            .field("topics", &self.topics)
            .field("buffer_messages", &self.buffer_messages)
            .finish_non_exhaustive()
    }
}

/// The parts of an `mqtt://` / `mqtts://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Parses `mqtt[s]://[user[:password]@]host[:port][/...]`; the default ports are 1883 and 8883.
pub fn parse_url(url: &str) -> Result<BrokerUrl, MqttError> {
    let fail = |reason: &str| MqttError::Url {
        url: redact_url(url),
        reason: reason.into(),
    };
    let (tls, rest) = match (url.strip_prefix("mqtt://"), url.strip_prefix("mqtts://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return Err(fail("must start with mqtt:// or mqtts://")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (login, host_port) = match authority.rsplit_once('@') {
        Some((login, host)) => (Some(login), host),
        None => (None, authority),
    };
    let (username, password) = match login {
        Some(login) => match login.split_once(':') {
            Some((user, password)) => (Some(user.to_owned()), Some(password.to_owned())),
            None => (Some(login.to_owned()), None),
        },
        None => (None, None),
    };
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6
                .split_once(']')
                .ok_or_else(|| fail("IPv6 host lacks ']'"))?;
            match rest {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        rest.strip_prefix(':')
                            .ok_or_else(|| fail("junk after ']'"))?,
                    ),
                ),
            }
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err(fail("has no host"));
    }
    let port = match port {
        None => {
            if tls {
                8883
            } else {
                1883
            }
        }
        Some(text) => match text.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(fail("port is not 1..=65535")),
        },
    };
    Ok(BrokerUrl {
        tls,
        host: host.to_owned(),
        port,
        username: username.filter(|u| !u.is_empty()),
        password,
    })
}

/// `ocpp809-{station}`, restricted to characters every broker accepts in a client id.
pub fn client_id(station: &str) -> String {
    let name: String = station
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ocpp809-{name}")
}

impl MqttSettings {
    /// Reads the TLS files named in `mqtt`, so a missing or bad file shows at start-up.
    pub fn from_config(mqtt: &Mqtt, station: &Station) -> Result<Self, MqttError> {
        let url = parse_url(&mqtt.url)?;
        let tls = if url.tls {
            Some(Arc::new(crate::tls::client::client_config(
                "mqtt",
                mqtt.ca_file.as_deref(),
                mqtt.client_cert.as_deref(),
                mqtt.client_key.as_deref(),
            )?))
        } else {
            None
        };
        Ok(Self {
            host: url.host,
            port: url.port,
            tls,
            username: mqtt.username.clone().or(url.username),
            password: mqtt.password.clone().or(url.password.map(Secret)),
            client_id: client_id(&station.name),
            topics: Topics::new(&mqtt.topic_prefix, &station.name),
            buffer_messages: mqtt.buffer_messages.max(1),
            state_dir: station.state_dir.clone(),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            keep_alive: Duration::from_secs(30),
            stats: Arc::new(MqttStats::default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_and_login() {
        let u = parse_url("mqtt://127.0.0.1:1883").expect("valid");
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 1883));
        let u = parse_url("mqtts://user:pw@broker.example/").expect("valid");
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (true, "broker.example", 8883)
        );
        assert_eq!(u.username.as_deref(), Some("user"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        let u = parse_url("mqtt://[::1]").expect("valid");
        assert_eq!((u.host.as_str(), u.port), ("::1", 1883));
        assert!(parse_url("tcp://x").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
        assert!(parse_url("mqtt://h:0").is_err());
    }

    #[test]
    fn a_url_error_does_not_show_the_password() {
        let e = parse_url("mqtt://u:topsecret@h:99999").expect_err("bad port");
        let text = e.to_string();
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("u:***@h:99999"), "{text}");
    }

    #[test]
    fn client_ids_are_derived_from_the_station_name() {
        assert_eq!(client_id("plant-1"), "ocpp809-plant-1");
        assert_eq!(client_id("Zähler 2"), "ocpp809-Z_hler_2");
    }

    #[test]
    fn settings_never_print_the_password() {
        let mqtt = Mqtt {
            url: "mqtt://u:from-url@h".into(),
            ..Mqtt::default()
        };
        let s = MqttSettings::from_config(&mqtt, &Station::default()).expect("valid");
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("from-url"));
        let text = format!("{s:?}");
        assert!(!text.contains("from-url"), "{text}");
    }

    #[test]
    fn configured_login_wins_over_the_url() {
        let mqtt = Mqtt {
            url: "mqtt://u:p@h".into(),
            username: Some("v".into()),
            password: Some(Secret("q".into())),
            ..Mqtt::default()
        };
        let s = MqttSettings::from_config(&mqtt, &Station::default()).expect("valid");
        assert_eq!(s.username.as_deref(), Some("v"));
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("q"));
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let mqtt = Mqtt {
            url: "mqtts://h".into(),
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Mqtt::default()
        };
        let e = MqttSettings::from_config(&mqtt, &Station::default()).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
