//! Observability: Prometheus metrics (`/metrics`, text exposition format 0.0.4) and a
//! read-only HTML status page (`/`) on the `[http]` listener.
//!
//! [`metrics`] is the registry the drivers update (shared as `Arc<Metrics>`; the sans-IO
//! cores never see it — their own counters are read at scrape time); [`status`] renders the
//! page from the process image; [`server`] is the small HTTP/1.1 server (hyper) for both.

pub mod metrics;
pub mod security;
pub mod server;
pub mod status;

pub use metrics::{Gauge, GaugeGuard, Message, Metrics, UpstreamCounter};
pub use security::SecurityEvent;
pub use server::{serve, Observer};
pub use status::Directory;
