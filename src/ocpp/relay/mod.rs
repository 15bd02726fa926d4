//! OCPP local controller (issue 10, docs/upstream.md): every charger connection gets its own
//! WebSocket to an upstream CSMS with the same charge point id and subprotocol; messages are
//! relayed both ways with their MessageIds (OCPP-J 1.6 §4.1.1 / 2.0.1 Part 4 §4.1.1: ids are
//! only unique per sender and connection, so relaying them unchanged keeps each side's
//! request/response matching intact), while ocpp809 still decodes everything for SCADA and
//! keeps power authority.
//!
//! - [`conform`]: the sanitized (schema-conformant) payload forwarded upstream.
//! - [`authority`]: the hook every upstream→charger CALL passes through (power authority),
//!   applying the pure rules of [`clip`].
//! - [`core`]: the sans-IO relay of one charger (live relay, outage queue and replay, 1.6
//!   transaction id mapping, offline authorization).
//! - [`messages`]: what the relay reads from a message (action, transaction id, idTag).
//! - [`offline`]: the idTag cache and the offline authorization policy.
//! - [`state`]: what survives a restart, and the journal seam of the core.
//! - [`journal`]: the durable per-charger queue and state (disk).
//! - [`link`]: the tokio side: the upstream WebSocket client and the per-charger driver.
//! - [`settings`]: `[upstream]` and the per-charger overrides as run-time settings.
//! - [`tls`]: `wss://` (rustls; CA file or system roots; client certificate for mTLS).

pub mod authority;
pub mod clip;
pub mod conform;
pub mod core;
pub mod journal;
pub mod link;
pub mod messages;
pub mod offline;
pub mod settings;
pub mod state;
pub mod tls;
