//! The MQTT mirror (CONTRACT §5, §7 "MQTT"): publishes the engine's telemetry — retained state
//! snapshots, meter samples, charger events and SCADA command outcomes — to a broker with QoS 1,
//! keeps a bounded offline buffer while the broker is unreachable and announces the station's
//! `status` (`online`, and `offline` as last will and on shutdown).
//!
//! [`topics`] maps reports to topics and payloads, [`outbox`] is the sans-IO delivery state
//! (ordering, acknowledgements, offline buffer), [`crate::spool`] the offline buffer's on-disk part
//! (`{state_dir}/mqtt-spool/`), [`settings`] turns `[mqtt]` into connection
//! options (TLS with rustls), and [`client`] is the tokio task driving `rumqttc`.

pub mod client;
pub mod outbox;
pub mod settings;
pub mod topics;

pub use client::{run, MqttStats};
pub use settings::{MqttError, MqttSettings};
pub use topics::{Publication, Topics};
