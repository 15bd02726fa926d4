//! Commands in control direction (IEC 60870-5-101 §7.3.2, types 45–51 and their time-tagged
//! forms 58–64) as the station hands them to the application, and select-before-operate
//! (§7.2.6.4/.7/.8/.26: the S/E bit of SCO, DCO, RCO and QOS).
//!
//! The application answers each [`CommandRequest`] asynchronously with a
//! [`CommandOutcome`]; only then does the station send the activation confirmation, so a
//! confirmation can wait for a charger's answer without blocking the link.

use std::time::{Duration, Instant};

use crate::asdu::{StepCommandState, TypeId, Value};

/// Identifies a pending command across the asynchronous application round trip.
pub type CommandId = u64;

/// What the master asked for, decoded from the command's information element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CommandAction {
    Single(bool),
    /// DCS: 1 = OFF, 2 = ON (0 and 3 are refused by the station as not permitted).
    Double(bool),
    Step(StepCommandState),
    /// Normalised setpoint in −1.0 ..< 1.0.
    SetpointNormalized(f32),
    SetpointScaled(i16),
    SetpointFloat(f32),
    Bitstring(u32),
    /// C_RD_NA_1 of a read-through point: refresh the value, then the station answers.
    Read,
}

impl CommandAction {
    /// Same command, compared bit for bit so that a float setpoint must repeat exactly.
    pub fn same_as(&self, other: &CommandAction) -> bool {
        match (self, other) {
            (CommandAction::SetpointFloat(a), CommandAction::SetpointFloat(b))
            | (CommandAction::SetpointNormalized(a), CommandAction::SetpointNormalized(b)) => {
                a.to_bits() == b.to_bits()
            }
            _ => self == other,
        }
    }
}

/// A decoded command element: what to do and whether it is a select.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommandElement {
    pub action: CommandAction,
    pub select: bool,
}

/// Decodes the element of a process command; `None` for a value that is not a command or
/// a state the standard marks "not permitted".
pub fn command_element(value: &Value) -> Option<CommandElement> {
    let (action, select) = match *value {
        Value::SingleCommand(sco) => (CommandAction::Single(sco.on), sco.select),
        Value::DoubleCommand(dco) => match dco.state {
            1 => (CommandAction::Double(false), dco.select),
            2 => (CommandAction::Double(true), dco.select),
            _ => return None,
        },
        Value::RegulatingStep(rco) => match rco.state {
            StepCommandState::Lower | StepCommandState::Higher => {
                (CommandAction::Step(rco.state), rco.select)
            }
            _ => return None,
        },
        Value::SetpointNormalized { value, qos } => (
            CommandAction::SetpointNormalized(f32::from(value) / 32768.0),
            qos.select,
        ),
        Value::SetpointScaled { value, qos } => (CommandAction::SetpointScaled(value), qos.select),
        Value::SetpointFloat { value, qos } => (CommandAction::SetpointFloat(value), qos.select),
        Value::BitstringCommand { bits } => (CommandAction::Bitstring(bits), false),
        _ => return None,
    };
    Some(CommandElement { action, select })
}

/// Link session that issued a command (a 104 connection or a 101 line).
pub type SessionId = u64;

/// A command handed to the application.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommandRequest {
    pub id: CommandId,
    pub session: SessionId,
    pub ioa: u32,
    /// The type as received (untagged or time-tagged).
    pub type_id: TypeId,
    pub action: CommandAction,
    /// True when this execute follows a matching select within the select timeout.
    pub selected: bool,
}

/// The application's verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandOutcome {
    /// Positive activation confirmation, followed by activation termination.
    Accepted,
    /// Negative activation confirmation (P/N = 1), with a reason for the log and MQTT.
    Rejected(String),
}

/// A select waiting for its execute (kept per session, as CONTRACT §2 requires).
#[derive(Clone, Copy, Debug)]
pub struct Selection {
    pub ioa: u32,
    pub type_id: TypeId,
    pub action: CommandAction,
    pub deadline: Instant,
}

impl Selection {
    pub fn new(
        ioa: u32,
        type_id: TypeId,
        action: CommandAction,
        now: Instant,
        timeout: Duration,
    ) -> Selection {
        Selection {
            ioa,
            type_id,
            action,
            deadline: now + timeout,
        }
    }

    /// Whether an execute repeats this select: same type, IOA and value, in time.
    pub fn matches(&self, ioa: u32, type_id: TypeId, action: &CommandAction, now: Instant) -> bool {
        self.ioa == ioa
            && self.type_id == type_id
            && self.action.same_as(action)
            && now <= self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asdu::{Qos, Sco};

    #[test]
    fn a_setpoint_with_se_set_is_a_select() {
        let element = command_element(&Value::SetpointFloat {
            value: 100.0,
            qos: Qos {
                ql: 0,
                select: true,
            },
        });
        assert_eq!(
            element,
            Some(CommandElement {
                action: CommandAction::SetpointFloat(100.0),
                select: true
            })
        );
    }

    #[test]
    fn single_command_decodes_its_state() {
        let element = command_element(&Value::SingleCommand(Sco {
            on: true,
            qu: 0,
            select: false,
        }));
        assert_eq!(element.map(|e| e.action), Some(CommandAction::Single(true)));
    }

    #[test]
    fn execute_must_repeat_type_ioa_and_value_within_the_timeout() {
        let now = Instant::now();
        let selection = Selection::new(
            11,
            TypeId::C_SE_NC_1,
            CommandAction::SetpointFloat(100.0),
            now,
            Duration::from_secs(10),
        );
        let action = CommandAction::SetpointFloat(100.0);
        assert!(selection.matches(11, TypeId::C_SE_NC_1, &action, now));
        assert!(!selection.matches(12, TypeId::C_SE_NC_1, &action, now));
        assert!(!selection.matches(11, TypeId::C_SE_TC_1, &action, now));
        assert!(!selection.matches(
            11,
            TypeId::C_SE_NC_1,
            &CommandAction::SetpointFloat(100.5),
            now
        ));
        assert!(!selection.matches(
            11,
            TypeId::C_SE_NC_1,
            &action,
            now + Duration::from_secs(11)
        ));
    }
}
