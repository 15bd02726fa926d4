//! The OCPP central system (CSMS) side: chargers dial in over WebSocket (OCPP-J, OCPP 1.6
//! §4 "JSON over WebSocket" / OCPP 2.0.1 Part 4) and are translated into the mapping
//! engine's version-neutral [`ChargerEvent`](crate::mapping::charger::ChargerEvent)s.
//!
//! Layers: [`framing`] (OCPP-J CALL/CALLRESULT/CALLERROR, sans-IO), [`calls`] (one
//! outstanding CSMS→charger CALL per charger with a bounded queue and timeouts, sans-IO),
//! [`sanitize`] (lenient coercion of non-conforming payloads, counted), one [`Dialect`] per
//! OCPP version (`v16`, `v201`), and [`session`] (one charger connection, sans-IO), driven
//! by the WebSocket server task.

pub mod calls;
pub mod credentials;
pub mod framing;
pub mod rate;
pub mod relay;
pub mod sanitize;
pub mod security;
pub mod server;
pub mod session;
pub mod throttle;
pub mod v16;
pub mod v201;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::mapping::charger::{ChargerCommand, ChargerEvent, ChargerId, CommandResult};

/// The OCPP version a connection negotiated (WebSocket subprotocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V16,
    V201,
}

impl Version {
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
        }
    }

    pub fn from_subprotocol(name: &str) -> Option<Version> {
        match name {
            "ocpp1.6" => Some(Version::V16),
            "ocpp2.0.1" => Some(Version::V201),
            _ => None,
        }
    }
}

/// How non-conforming input is treated (`ocpp.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Coerce what can be understood unambiguously, count it, answer normally.
    Lenient,
    /// Answer non-conforming payloads with the CALLERROR the version prescribes.
    Strict,
}

/// CALLERROR codes of OCPP-J (1.6 §4.2.3, 2.0.1 Part 4 §4.3). The wire name depends on the
/// version where the two differ (FormationViolation vs FormatViolation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    NotImplemented,
    NotSupported,
    InternalError,
    ProtocolError,
    SecurityError,
    /// 1.6 "FormationViolation", 2.0.1 "FormatViolation".
    FormatViolation,
    PropertyConstraintViolation,
    /// Spelled "OccurenceConstraintViolation" on the wire in both versions.
    OccurrenceConstraintViolation,
    TypeConstraintViolation,
    GenericError,
    /// 2.0.1 only (1.6 uses ProtocolError / GenericError).
    MessageTypeNotSupported,
    /// 2.0.1 only.
    RpcFrameworkError,
}

impl ErrorCode {
    pub fn wire_name(self, version: Version) -> &'static str {
        match (self, version) {
            (ErrorCode::NotImplemented, _) => "NotImplemented",
            (ErrorCode::NotSupported, _) => "NotSupported",
            (ErrorCode::InternalError, _) => "InternalError",
            (ErrorCode::ProtocolError, _) => "ProtocolError",
            (ErrorCode::SecurityError, _) => "SecurityError",
            (ErrorCode::FormatViolation, Version::V16) => "FormationViolation",
            (ErrorCode::FormatViolation, Version::V201) => "FormatViolation",
            (ErrorCode::PropertyConstraintViolation, _) => "PropertyConstraintViolation",
            (ErrorCode::OccurrenceConstraintViolation, _) => "OccurenceConstraintViolation",
            (ErrorCode::TypeConstraintViolation, _) => "TypeConstraintViolation",
            (ErrorCode::GenericError, _) => "GenericError",
            (ErrorCode::MessageTypeNotSupported, Version::V201) => "MessageTypeNotSupported",
            (ErrorCode::MessageTypeNotSupported, Version::V16) => "ProtocolError",
            (ErrorCode::RpcFrameworkError, Version::V201) => "RpcFrameworkError",
            (ErrorCode::RpcFrameworkError, Version::V16) => "GenericError",
        }
    }
}

/// A CALLERROR to answer with.
#[derive(Clone, Debug, PartialEq)]
pub struct CallError {
    pub code: ErrorCode,
    pub description: String,
}

impl CallError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> CallError {
        CallError {
            code,
            description: description.into(),
        }
    }
}

/// Everything a dialect needs while handling one charger→CSMS CALL.
pub struct CallContext<'a> {
    pub charger: &'a ChargerId,
    pub now: DateTime<Utc>,
    pub mode: Mode,
    pub heartbeat_interval_s: u32,
    /// Events produced by this CALL, in order.
    pub events: &'a mut Vec<ChargerEvent>,
    /// Allocates 1.6 transaction ids (the CSMS assigns them in StartTransaction.conf).
    pub next_transaction_id: &'a mut dyn FnMut() -> i32,
}

/// One OCPP version's message set.
pub trait Dialect: Send {
    fn version(&self) -> Version;

    /// Handles a charger→CSMS CALL: the CALLRESULT payload, or the CALLERROR to send.
    /// Unknown actions → `NotImplemented`. Must never panic on any payload.
    fn handle_call(
        &mut self,
        ctx: &mut CallContext<'_>,
        action: &str,
        payload: &Value,
    ) -> Result<Value, CallError>;

    /// The CSMS→charger CALL for a command: action name and payload (schema-valid).
    fn encode_command(&self, command: &ChargerCommand) -> (&'static str, Value);

    /// Interprets the charger's CALLRESULT payload for `command`.
    fn decode_result(&self, command: &ChargerCommand, payload: &Value) -> CommandResult;
}
