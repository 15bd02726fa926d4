//! What the relay needs to know about a charger→CSMS message: its canonical action name,
//! whether it belongs to a transaction record (queued during an outage: OCPP 1.6 §4.8
//! StartTransaction, §4.10 StopTransaction, §4.7 MeterValues of a transaction; 2.0.1
//! TransactionEvent), the 1.6 transactionId, the idTag, the connector of a
//! StatusNotification. Pure functions over JSON.

use serde_json::Value;

use crate::ocpp::framing::{self, Frame};
use crate::ocpp::Version;

/// The action as the specification spells it, when it is one this version defines and the
/// charger wrote it in another case; otherwise as written.
pub fn canonical_action(version: Version, action: &str) -> String {
    let known = match version {
        Version::V16 => crate::ocpp::v16::ACTIONS,
        Version::V201 => crate::ocpp::v201::ACTIONS,
    };
    known
        .iter()
        .find(|name| name.eq_ignore_ascii_case(action))
        .map_or_else(|| action.to_owned(), |name| (*name).to_owned())
}

/// Whether a charger CALL belongs to a transaction record (queued while offline).
pub fn is_transaction_message(version: Version, action: &str, payload: &Value) -> bool {
    match version {
        Version::V16 => match action {
            "StartTransaction" | "StopTransaction" => true,
            "MeterValues" => payload.get("transactionId").is_some_and(|t| !t.is_null()),
            _ => false,
        },
        Version::V201 => action == "TransactionEvent",
    }
}

/// The connector a StatusNotification is about (1.6 connectorId; 2.0.1 evseId/connectorId).
pub fn connector_key(version: Version, payload: &Value) -> Option<String> {
    match version {
        Version::V16 => Some(payload.get("connectorId")?.to_string()),
        Version::V201 => Some(format!(
            "{}/{}",
            payload.get("evseId")?,
            payload.get("connectorId")?
        )),
    }
}

/// The 1.6 transactionId of a payload (number, or a number written as text).
pub fn transaction_id(payload: &Value) -> Option<i32> {
    match payload.get("transactionId")? {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The idTag (1.6) or idToken.idToken (2.0.1) of a request.
pub fn id_tag(version: Version, request: &Value) -> Option<String> {
    let tag = match version {
        Version::V16 => request.get("idTag")?,
        Version::V201 => request.get("idToken")?.get("idToken")?,
    };
    tag.as_str().map(str::to_owned)
}

/// The payload of a CALLRESULT frame.
pub fn result_payload(text: &str, version: Version) -> Option<Value> {
    match framing::parse(text, version) {
        Ok(Frame::CallResult { payload, .. }) => Some(payload),
        _ => None,
    }
}
