//! OCPP-J message framing, sans-IO: the CALL / CALLRESULT / CALLERROR JSON arrays of the RPC
//! framework (OCPP-J 1.6 §4 "RPC framework", §4.1.3 message types, §4.2 message structures;
//! OCPP 2.0.1 Part 4 §4 "RPC framework", §4.1 message types, §4.2 structures, §4.3 error
//! codes). [`parse`] turns one WebSocket text frame into a [`Frame`] or into the CALLERROR to
//! answer with ([`FrameError`]); [`call`], [`call_result`] and [`call_error`] write frames.
//!
//! # Malformed input
//!
//! The parser never panics. Every refusal names the code to answer with; the wire name
//! depends on the version ([`ErrorCode::wire_name`]: 1.6 "FormationViolation", 2.0.1
//! "FormatViolation"). The MessageId in the answer is the frame's own id when it could be
//! read (element 1 is a string), else `"-1"`.
//!
//! | # | Input                                           | 1.6                  | 2.0.1                     | Reason (spec wording)                                                                                                   |
//! |---|-------------------------------------------------|----------------------|---------------------------|-------------------------------------------------------------------------------------------------------------------------|
//! | 1 | longer than [`MAX_FRAME_BYTES`]                 | `FormationViolation` | `FormatViolation`         | refused before parsing; the id is not looked for                                                                        |
//! | 2 | not JSON                                        | `FormationViolation` | `FormatViolation`         | "syntactically incorrect"                                                                                               |
//! | 3 | JSON, but not an array                          | `FormationViolation` | `FormatViolation`         | "syntactically incorrect"                                                                                               |
//! | 4 | array with fewer than 3 elements                | `FormationViolation` | `FormatViolation`         | no frame type has fewer than 3 elements                                                                                 |
//! | 5 | MessageTypeId not an integer                    | `FormationViolation` | `RpcFrameworkError`       | 2.0.1: "not a valid RPC Request"; 1.6 has no envelope code, "not conform the PDU structure" is the nearest              |
//! | 6 | MessageId not a string                          | `FormationViolation` | `RpcFrameworkError`       | 2.0.1: "for example: MessageId could not be read"                                                                       |
//! | 7 | MessageId longer than 36 characters             | accepted (lenient)   | `RpcFrameworkError`       | both specs cap it at 36; 1.6 chargers in the field exceed it, so 1.6 accepts                                            |
//! | 8 | unknown MessageTypeId (not 2, 3, 4)             | `ProtocolError`      | `MessageTypeNotSupported` | 2.0.1 §4.3; 1.6 §4.1.3 only says to ignore the payload and has no such code, so ProtocolError ([`ErrorCode::wire_name`]) |
//! | 9 | too few elements for the type (CALL < 4, CALLRESULT < 3, CALLERROR < 4) | `ProtocolError` | `ProtocolError` | 1.6: "Payload for Action is incomplete"; 2.0.1: "not conform the PDU structure"                                |
//! | 10| too many elements for the type (CALL > 4, CALLRESULT > 3, CALLERROR > 5) | `FormationViolation` | `ProtocolError` | 1.6: "not conform the PDU structure for Action"; 2.0.1: "not conform the PDU structure"                   |
//! | 11| CALL Action not a string                        | `FormationViolation` | `RpcFrameworkError`       | the RPC envelope is broken, not the payload                                                                             |
//! | 12| CALL / CALLRESULT payload not a JSON object     | `FormationViolation` | `FormatViolation`         | "Payload for Action is syntactically incorrect"                                                                         |
//! | 13| CALLERROR errorCode / errorDescription not a string | `FormationViolation` | `FormatViolation`     | "syntactically incorrect"                                                                                               |
//!
//! Leniencies: a CALLERROR without its ErrorDetails (4 elements) is accepted with details
//! `{}`, and ErrorDetails of any JSON type are kept as they are (the charger's error report is
//! worth more than its shape). A MessageTypeId written as an integral float (`2.0`) is read
//! as that integer. An empty Action is passed on (the dialect answers `NotImplemented`).
//!
//! Whether a CALLRESULT/CALLERROR answers anything we sent is the session's business, not the
//! parser's. [`FrameError::message_type`] tells the session whether a refused frame was a
//! response (which must not be answered with a CALLERROR, see `session`).

use serde_json::{Map, Value};

use super::{CallError, ErrorCode, Version};

/// The largest text frame [`parse`] accepts (the WebSocket server enforces the same limit).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Both specs: "Unique message ID, maximum length of 36 characters, to allow for UUIDs".
pub const MAX_MESSAGE_ID_CHARS: usize = 36;

/// 2.0.1 Part 4 §4.2.3: errorDescription is at most 255 characters; 1.6 sets no limit, the
/// same cap is applied to both.
pub const MAX_ERROR_DESCRIPTION_CHARS: usize = 255;

/// OCPP-J MessageTypeId of a CALL.
pub const CALL: u64 = 2;
/// OCPP-J MessageTypeId of a CALLRESULT.
pub const CALLRESULT: u64 = 3;
/// OCPP-J MessageTypeId of a CALLERROR.
pub const CALLERROR: u64 = 4;

/// The id to answer with when the frame's own MessageId could not be read.
pub const UNKNOWN_ID: &str = "-1";

/// One well-formed OCPP-J message.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `[2, "<id>", "<Action>", {<payload>}]`
    Call {
        id: String,
        action: String,
        payload: Value,
    },
    /// `[3, "<id>", {<payload>}]`
    CallResult { id: String, payload: Value },
    /// `[4, "<id>", "<errorCode>", "<errorDescription>", {<errorDetails>}]`
    CallError {
        id: String,
        code: String,
        description: String,
        details: Value,
    },
}

impl Frame {
    /// The MessageId.
    pub fn id(&self) -> &str {
        match self {
            Frame::Call { id, .. } | Frame::CallResult { id, .. } | Frame::CallError { id, .. } => {
                id
            }
        }
    }

    /// The frame as text (the inverse of [`parse`]).
    pub fn encode(&self) -> String {
        match self {
            Frame::Call {
                id,
                action,
                payload,
            } => call(id, action, payload),
            Frame::CallResult { id, payload } => call_result(id, payload),
            Frame::CallError {
                id,
                code,
                description,
                details,
            } => format!(
                "[4,{},{},{},{}]",
                json_string(id),
                json_string(code),
                json_string(description),
                details
            ),
        }
    }
}

/// A frame [`parse`] refused, and what to answer.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameError {
    /// The frame's MessageId if it could be read, else `"-1"`.
    pub id: String,
    /// The MessageTypeId if it could be read (any integer, also unknown ones).
    pub message_type: Option<u64>,
    /// The CALLERROR to answer with.
    pub error: CallError,
}

impl FrameError {
    /// Whether the refused frame claimed to be a CALLRESULT or CALLERROR (answering those
    /// with a CALLERROR is not done: a CALLERROR answers a CALL).
    pub fn is_response(&self) -> bool {
        matches!(self.message_type, Some(CALLRESULT | CALLERROR))
    }

    /// The refusal as the CALLERROR text to send.
    pub fn to_call_error(&self, version: Version) -> String {
        call_error(&self.id, &self.error, version)
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message {}: {:?}: {}",
            self.id, self.error.code, self.error.description
        )
    }
}

impl std::error::Error for FrameError {}

/// Parses one WebSocket text frame. See the module doc for what is refused and how.
pub fn parse(text: &str, version: Version) -> Result<Frame, FrameError> {
    let v16 = version == Version::V16;
    let fail = |id: &str, message_type: Option<u64>, code: ErrorCode, description: String| {
        Err(FrameError {
            id: id.to_owned(),
            message_type,
            error: CallError::new(code, description),
        })
    };

    // Row 1.
    if text.len() > MAX_FRAME_BYTES {
        return fail(
            UNKNOWN_ID,
            None,
            ErrorCode::FormatViolation,
            format!(
                "frame of {} bytes exceeds the limit of {MAX_FRAME_BYTES}",
                text.len()
            ),
        );
    }
    // Row 2 (serde_json limits nesting depth, so deep input cannot exhaust the stack).
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return fail(
            UNKNOWN_ID,
            None,
            ErrorCode::FormatViolation,
            "message is not valid JSON".to_owned(),
        );
    };
    // Row 3.
    let Value::Array(mut items) = value else {
        return fail(
            UNKNOWN_ID,
            None,
            ErrorCode::FormatViolation,
            "message is not a JSON array".to_owned(),
        );
    };

    let message_type = items.first().and_then(integer);
    let readable_id = match items.get(1) {
        Some(Value::String(id)) => Some(id.clone()),
        _ => None,
    };
    let answer_id = readable_id.as_deref().unwrap_or(UNKNOWN_ID);
    let envelope = if v16 {
        ErrorCode::FormatViolation
    } else {
        ErrorCode::RpcFrameworkError
    };

    // Row 4.
    if items.len() < 3 {
        return fail(
            answer_id,
            message_type,
            ErrorCode::FormatViolation,
            format!(
                "message has {} elements, an RPC frame has at least 3",
                items.len()
            ),
        );
    }
    // Row 5.
    let Some(message_type) = message_type else {
        return fail(
            answer_id,
            None,
            envelope,
            "MessageTypeId is not an integer".to_owned(),
        );
    };
    // Row 6.
    let Some(id) = readable_id else {
        return fail(
            UNKNOWN_ID,
            Some(message_type),
            envelope,
            "MessageId is not a string".to_owned(),
        );
    };
    // Row 7.
    if !v16 && id.chars().count() > MAX_MESSAGE_ID_CHARS {
        return fail(
            &id,
            Some(message_type),
            ErrorCode::RpcFrameworkError,
            format!("MessageId is longer than {MAX_MESSAGE_ID_CHARS} characters"),
        );
    }

    // Rows 8–10: element count per type.
    let (name, min, max) = match message_type {
        CALL => ("CALL", 4, 4),
        CALLRESULT => ("CALLRESULT", 3, 3),
        CALLERROR => ("CALLERROR", 4, 5),
        other => {
            return fail(
                &id,
                Some(other),
                ErrorCode::MessageTypeNotSupported,
                format!("MessageTypeId {other} is not supported"),
            )
        }
    };
    if items.len() < min || items.len() > max {
        let code = if items.len() > max && v16 {
            ErrorCode::FormatViolation
        } else {
            ErrorCode::ProtocolError
        };
        let expected = if min == max {
            min.to_string()
        } else {
            format!("{min} or {max}")
        };
        return fail(
            &id,
            Some(message_type),
            code,
            format!("{name} has {expected} elements, got {}", items.len()),
        );
    }

    let not_object = |id: &str| {
        fail(
            id,
            Some(message_type),
            ErrorCode::FormatViolation,
            "payload is not a JSON object".to_owned(),
        )
    };
    // Element count checked above: indexes 2 (and 3 for CALL) exist.
    let mut rest = items.drain(2..);
    match message_type {
        CALL => {
            let (Some(action), Some(payload)) = (rest.next(), rest.next()) else {
                return not_object(&id);
            };
            // Row 11.
            let Value::String(action) = action else {
                return fail(
                    &id,
                    Some(message_type),
                    envelope,
                    "Action is not a string".to_owned(),
                );
            };
            // Row 12.
            if !payload.is_object() {
                return not_object(&id);
            }
            Ok(Frame::Call {
                id,
                action,
                payload,
            })
        }
        CALLRESULT => match rest.next() {
            Some(payload) if payload.is_object() => Ok(Frame::CallResult { id, payload }),
            _ => not_object(&id),
        },
        _ => {
            // CALLERROR, row 13.
            let code = rest.next();
            let description = rest.next();
            let details = rest.next().unwrap_or_else(|| Value::Object(Map::new()));
            let Some(Value::String(code)) = code else {
                return fail(
                    &id,
                    Some(message_type),
                    ErrorCode::FormatViolation,
                    "errorCode is not a string".to_owned(),
                );
            };
            let Some(Value::String(description)) = description else {
                return fail(
                    &id,
                    Some(message_type),
                    ErrorCode::FormatViolation,
                    "errorDescription is not a string".to_owned(),
                );
            };
            Ok(Frame::CallError {
                id,
                code,
                description,
                details,
            })
        }
    }
}

/// `[2,"<id>","<Action>",{payload}]`
pub fn call(id: &str, action: &str, payload: &Value) -> String {
    format!(
        "[2,{},{},{}]",
        json_string(id),
        json_string(action),
        payload
    )
}

/// `[3,"<id>",{payload}]`
pub fn call_result(id: &str, payload: &Value) -> String {
    format!("[3,{},{}]", json_string(id), payload)
}

/// `[4,"<id>","<Code>","<description>",{}]`, the code spelled as `version` spells it, the
/// description cut to [`MAX_ERROR_DESCRIPTION_CHARS`].
pub fn call_error(id: &str, error: &CallError, version: Version) -> String {
    let description: String = error
        .description
        .chars()
        .take(MAX_ERROR_DESCRIPTION_CHARS)
        .collect();
    format!(
        "[4,{},{},{},{{}}]",
        json_string(id),
        json_string(error.code.wire_name(version)),
        json_string(&description)
    )
}

/// A JSON string literal (quoted, escaped).
fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// A MessageTypeId: a non-negative integer, also written as an integral float.
fn integer(value: &Value) -> Option<u64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(i) = n.as_u64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Exact for every integer up to 2^53; larger floats are no message type anyway.
    (f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f)).then_some(f as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str, version: Version) -> String {
        match parse(text, version) {
            Ok(frame) => panic!("{text} parsed as {frame:?}"),
            Err(e) => e.to_call_error(version),
        }
    }

    #[test]
    fn call_round_trip() {
        let text = r#"[2,"19223201","BootNotification",{"chargePointVendor":"VendorX"}]"#;
        let frame = parse(text, Version::V16).unwrap();
        assert_eq!(
            frame,
            Frame::Call {
                id: "19223201".into(),
                action: "BootNotification".into(),
                payload: json!({"chargePointVendor": "VendorX"}),
            }
        );
        assert_eq!(frame.encode(), text);
    }

    #[test]
    fn integral_float_message_type() {
        assert!(matches!(
            parse(r#"[2.0,"1","Heartbeat",{}]"#, Version::V201),
            Ok(Frame::Call { .. })
        ));
        assert_eq!(
            err(r#"[2.5,"1","Heartbeat",{}]"#, Version::V201),
            r#"[4,"1","RpcFrameworkError","MessageTypeId is not an integer",{}]"#
        );
    }

    #[test]
    fn description_is_capped() {
        let long = "é".repeat(400);
        let text = call_error(
            "1",
            &CallError::new(ErrorCode::GenericError, long),
            Version::V16,
        );
        let Ok(Frame::CallError { description, .. }) = parse(&text, Version::V16) else {
            panic!("{text}");
        };
        assert_eq!(description.chars().count(), MAX_ERROR_DESCRIPTION_CHARS);
    }

    #[test]
    fn errors_on_responses_are_marked() {
        let e = parse(r#"[3,"7",[]]"#, Version::V16).unwrap_err();
        assert!(e.is_response());
        let e = parse(r#"[2,"7","Heartbeat",[]]"#, Version::V16).unwrap_err();
        assert!(!e.is_response());
    }
}
