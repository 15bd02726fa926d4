//! The TLS settings (`[ocpp.tls]`, `[iec104.tls]`, the OCPP security profiles) turned into
//! server file sets, and their checks: profile 2 or 3 anywhere needs the wss:// endpoint,
//! profile 3 a client CA; a service without its plain port needs its TLS port; every
//! listening address is distinct; enabled TLS files must load (so `check-config` finds an
//! unreadable key before a start does).

use std::net::SocketAddr;

use super::validate::{bad, ensure, ensure_either, Check};
use super::{Config, Iec104Tls, OcppTls};
use crate::tls::{AllowedClients, ClientAuth, ServerTlsFiles};

/// Highest OCPP security profile.
const MAX_PROFILE: u8 = 3;

impl OcppTls {
    /// The files of the wss:// endpoint: a client certificate is optional (profile-2
    /// chargers have none) and verified against `client_ca` when one is configured.
    pub fn server_files(&self) -> ServerTlsFiles {
        ServerTlsFiles {
            section: "ocpp.tls",
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_auth: if self.client_ca.as_os_str().is_empty() {
                ClientAuth::None
            } else {
                ClientAuth::Optional(self.client_ca.clone())
            },
            allowed_clients: None,
        }
    }
}

impl Iec104Tls {
    /// The files of the IEC 104 TLS port: mutual authentication is mandatory
    /// (IEC 62351-3), then the master's certificate is looked up in `allowed_masters`.
    pub fn server_files(&self) -> ServerTlsFiles {
        ServerTlsFiles {
            section: "iec104.tls",
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_auth: ClientAuth::Required(self.ca.clone()),
            allowed_clients: Some(AllowedClients {
                key: "iec104.tls.allowed_masters",
                files: self.allowed_masters.clone(),
            }),
        }
    }
}

impl Config {
    /// The TLS line of `check-config`'s summary.
    pub(super) fn tls_summary(&self) -> String {
        let (o, i) = (&self.ocpp, &self.iec104);
        let ocpp = match o.tls.enabled {
            true => format!(
                "wss:// on {}{}, ws:// {}, minimum profile {}",
                o.tls.listen,
                if o.tls.client_ca.as_os_str().is_empty() {
                    String::new()
                } else {
                    format!(" (client certificates from {})", o.tls.client_ca.display())
                },
                if o.plain { "on" } else { "off" },
                o.security_profile
            ),
            false => format!("off, minimum profile {}", o.security_profile),
        };
        let iec104 = match i.tls.enabled {
            true => format!(
                "on {} (masters from {}{}), plain {}",
                i.tls.listen,
                i.tls.ca.display(),
                match i.tls.allowed_masters.len() {
                    0 => String::new(),
                    n => format!(", {n} allowed certificates"),
                },
                if i.plain { "on" } else { "off" }
            ),
            false => "off".into(),
        };
        format!("TLS: OCPP {ocpp}; IEC 104 {iec104}")
    }
}

pub(super) fn check(c: &Config) -> Check {
    profiles(c)?;
    let o = &c.ocpp;
    ensure_either(
        o.plain || o.tls.enabled,
        "ocpp.plain",
        "ocpp.tls.enabled",
        "plain = false needs ocpp.tls.enabled = true, or chargers could not connect at all".into(),
    )?;
    let i = &c.iec104;
    ensure_either(
        i.plain || i.tls.enabled,
        "iec104.plain",
        "iec104.tls.enabled",
        "plain = false needs iec104.tls.enabled = true, or masters could not connect at all".into(),
    )?;
    distinct_listeners(c)?;
    if o.tls.enabled {
        loads(&o.tls.server_files())?;
    }
    if i.tls.enabled {
        loads(&i.tls.server_files())?;
    }
    Ok(())
}

fn profiles(c: &Config) -> Check {
    let mut set = vec![("ocpp.security_profile".to_string(), c.ocpp.security_profile)];
    for (i, charger) in c.charger.iter().enumerate() {
        if let Some(profile) = charger.security_profile {
            set.push((format!("charger[{i}].security_profile"), profile));
        }
    }
    for (key, profile) in set {
        let message = format!("{profile} is not an OCPP security profile (0..={MAX_PROFILE})");
        ensure(profile <= MAX_PROFILE, key.clone(), message)?;
        let message =
            format!("security profile {profile} uses wss:// and needs ocpp.tls.enabled = true");
        ensure_either(
            profile < 2 || c.ocpp.tls.enabled,
            key.clone(),
            "ocpp.tls.enabled",
            message,
        )?;
        let message =
            "security profile 3 verifies client certificates and needs ocpp.tls.client_ca"
                .to_string();
        ensure_either(
            profile < 3 || !c.ocpp.tls.client_ca.as_os_str().is_empty(),
            key,
            "ocpp.tls.client_ca",
            message,
        )?;
    }
    Ok(())
}

fn distinct_listeners(c: &Config) -> Check {
    let candidates: [(bool, SocketAddr, &str); 5] = [
        (c.iec104.plain, c.iec104.listen, "iec104.listen"),
        (
            c.iec104.tls.enabled,
            c.iec104.tls.listen,
            "iec104.tls.listen",
        ),
        (c.ocpp.plain, c.ocpp.listen, "ocpp.listen"),
        (c.ocpp.tls.enabled, c.ocpp.tls.listen, "ocpp.tls.listen"),
        (c.http.enabled, c.http.listen, "http.listen"),
    ];
    let used: Vec<(SocketAddr, &str)> = candidates
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, address, key)| (address, key))
        .collect();
    for (i, (a, key)) in used.iter().enumerate() {
        ensure(
            a.port() != 0,
            *key,
            "port 0 is not a fixed port to listen on",
        )?;
        for (b, other) in &used[..i] {
            let clash = a.port() == b.port()
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified());
            if clash {
                return Err(bad(*key, format!("{a} collides with {other} ({b})")));
            }
        }
    }
    Ok(())
}

fn loads(files: &ServerTlsFiles) -> Check {
    files
        .load()
        .map(drop)
        .map_err(|error| bad(error.key().to_owned(), error.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn data(name: &str) -> String {
        format!("{}/tests/data/tls/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// The dotted key and message of the error `text` gives, or `None` if it is valid.
    fn error(text: &str) -> Option<(String, String)> {
        match Config::from_toml_str(text, "t.toml") {
            Ok(_) => None,
            Err(ConfigError::Invalid { key, message, .. }) => Some((key, message)),
            Err(other) => Some((String::new(), other.to_string())),
        }
    }

    fn ocpp_tls(client_ca: &str) -> String {
        format!(
            "[ocpp.tls]\nenabled = true\ncert = {:?}\nkey = {:?}\nclient_ca = {client_ca:?}\n",
            data("server.crt"),
            data("server.key")
        )
    }

    const CHARGER: &str = "[[charger]]\nid = \"CP001\"\nioa_base = 1000\n";

    #[test]
    fn profiles_are_0_to_3() {
        let e = error("[ocpp]\nsecurity_profile = 4\n");
        assert_eq!(e.map(|e| e.0), Some("ocpp.security_profile".into()));
        let e = error(&format!("{CHARGER}security_profile = 7\n"));
        assert_eq!(e.map(|e| e.0), Some("charger[0].security_profile".into()));
    }

    #[test]
    fn profile_2_needs_tls_and_profile_3_a_client_ca() {
        let e = error(&format!("{CHARGER}security_profile = 2\n"));
        let (key, message) = e.unwrap_or_default();
        assert_eq!(key, "charger[0].security_profile");
        assert!(message.contains("ocpp.tls.enabled"), "{message}");
        let with_tls = format!("{}{CHARGER}security_profile = 2\n", ocpp_tls(""));
        assert_eq!(error(&with_tls), None);
        let three = format!("[ocpp]\nsecurity_profile = 3\n{}", ocpp_tls(""));
        let (key, message) = error(&three).unwrap_or_default();
        assert_eq!(key, "ocpp.security_profile");
        assert!(message.contains("client_ca"), "{message}");
        let three = format!(
            "[ocpp]\nsecurity_profile = 3\n{}",
            ocpp_tls(&data("ca.crt"))
        );
        assert_eq!(error(&three), None);
    }

    #[test]
    fn a_service_without_plain_needs_tls() {
        let e = error("[ocpp]\nplain = false\n");
        assert_eq!(e.map(|e| e.0), Some("ocpp.plain".into()));
        let e = error("[iec104]\nplain = false\n");
        assert_eq!(e.map(|e| e.0), Some("iec104.plain".into()));
        let tls_only = format!("[ocpp]\nplain = false\n{}", ocpp_tls(""));
        assert_eq!(error(&tls_only), None);
    }

    #[test]
    fn tls_files_must_load_and_are_named() {
        let text = "[iec104.tls]\nenabled = true\ncert = \"/nonexistent/iec104.crt\"\n";
        let (key, message) = error(text).unwrap_or_default();
        assert_eq!(key, "iec104.tls.cert");
        assert!(message.contains("/nonexistent/iec104.crt"), "{message}");
        let text = format!(
            "[iec104.tls]\nenabled = true\ncert = {:?}\nkey = {:?}\nca = {:?}\nallowed_masters = [{:?}]\n",
            data("server.crt"),
            data("server.key"),
            data("ca.crt"),
            "/nonexistent/master.crt"
        );
        let (key, message) = error(&text).unwrap_or_default();
        assert_eq!(key, "iec104.tls.allowed_masters");
        assert!(message.contains("/nonexistent/master.crt"), "{message}");
        let text = format!(
            "[ocpp.tls]\nenabled = true\ncert = {:?}\nkey = {:?}\n",
            data("server.crt"),
            data("other.key")
        );
        assert_eq!(error(&text).map(|e| e.0), Some("ocpp.tls.key".into()));
    }

    #[test]
    fn tls_listeners_must_not_collide() {
        let text = format!("{}listen = \"0.0.0.0:9000\"\n", ocpp_tls(""));
        let (key, message) = error(&text).unwrap_or_default();
        assert_eq!(key, "ocpp.tls.listen");
        assert!(message.contains("ocpp.listen"), "{message}");
        // A port left free by plain = false may be reused.
        let text = format!(
            "[ocpp]\nplain = false\n{}listen = \"0.0.0.0:9000\"\n",
            ocpp_tls("")
        );
        assert_eq!(error(&text), None);
    }
}
