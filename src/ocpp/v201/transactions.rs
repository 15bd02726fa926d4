//! OCPP 2.0.1 meter values and transactions: MeterValues (J01), TransactionEvent (E01–E15;
//! MeterValueType / SampledValueType / UnitOfMeasureType, Part 2 §2).
//!
//! Values are numbers in 2.0.1; lenient mode still reads text (`"14.4kW"`, counted), and a
//! 1.6-style `unit` beside the value. `offline: true` marks replayed data (counters, not current
//! power). The EVSE of a transaction is remembered from its first TransactionEvent, as later ones
//! need not repeat it; a transaction whose EVSE is unknown (started before this connection)
//! is reported on connector 0 with its transaction id.
//!
//! `transactionInfo.chargingState` is deliberately not turned into Status events: the
//! StatusNotification is the connector's status (a Faulted connector stays Faulted while the
//! transaction is SuspendedEVSE), and an open transaction already counts as occupied.

use rust_ocpp::v2_0_1::messages::meter_values::MeterValuesResponse;
use rust_ocpp::v2_0_1::messages::transaction_event::TransactionEventResponse;
use serde_json::Value;

use super::core::accepted_id_token_info;
use super::schema::{EVENT_TYPES, STOPPED_REASONS};
use super::V201Dialect;
use crate::mapping::charger::{
    ChargerEvent, CoercionKind, ConnectorId, Measurand, MeterSample, SampleValue,
};
use crate::ocpp::sanitize::reader::{error, join};
use crate::ocpp::sanitize::sample::{read_sampled_value, SampleFields};
use crate::ocpp::sanitize::{clip, Coercion, Sanitizer};
use crate::ocpp::v16::common::to_payload;
use crate::ocpp::v16::transactions::MeterOrigin;
use crate::ocpp::{CallContext, CallError, ErrorCode};

/// Reads one MeterValueType into a sample (`None` when no sampled value could be attributed).
pub fn read_meter_value(
    s: &mut Sanitizer,
    path: &str,
    v: &Value,
    origin: &MeterOrigin,
) -> Result<Option<MeterSample>, CallError> {
    let obj = s.object(v, path)?;
    let timestamp = s.get(obj, path, "timestamp", &[])?;
    let timestamp = s.timestamp(timestamp, &join(path, "timestamp"))?;
    let sv_path = join(path, "sampledValue");
    let list = s.require(obj, path, "sampledValue", &[])?;
    let mut values = Vec::new();
    let mut context = None;
    for (i, item) in s.list(list, &sv_path)?.into_iter().enumerate() {
        let item_path = format!("{sv_path}[{i}]");
        let o = s.object(item, &item_path)?;
        let mut f = SampleFields {
            value: s.get(o, &item_path, "value", &[])?,
            measurand: s.get(o, &item_path, "measurand", &[])?,
            phase: s.get(o, &item_path, "phase", &[])?,
            context: s.get(o, &item_path, "context", &[])?,
            ..Default::default()
        };
        match s.get(o, &item_path, "unitOfMeasure", &[])? {
            Some(u) => {
                let unit_path = join(&item_path, "unitOfMeasure");
                let u = s.object(u, &unit_path)?;
                f.unit = s.get(u, &unit_path, "unit", &[])?;
                f.multiplier = s.get(u, &unit_path, "multiplier", &[])?;
            }
            None if s.lenient() => {
                // 1.6 style: the unit beside the value.
                if let Some(unit) = o.get("unit") {
                    s.coerce(
                        &item_path,
                        Coercion::new(
                            CoercionKind::LegacyFieldName,
                            "OCPP 1.6 \"unit\" taken as unitOfMeasure.unit",
                        ),
                    )?;
                    f.unit = Some(unit);
                }
            }
            None => {}
        }
        if let Some((value, ctx)) = read_sampled_value(s, &item_path, f)? {
            context = context.or(ctx);
            values.push(value);
        }
    }
    Ok(origin.sample(timestamp, context, values))
}

/// Reads the meterValue list of a message into samples.
fn read_meter_values(
    s: &mut Sanitizer,
    list: &Value,
    origin: &MeterOrigin,
) -> Result<Vec<MeterSample>, CallError> {
    let mut samples = Vec::new();
    for (i, mv) in s.list(list, "meterValue")?.into_iter().enumerate() {
        if let Some(sample) = read_meter_value(s, &format!("meterValue[{i}]"), mv, origin)? {
            samples.push(sample);
        }
    }
    Ok(samples)
}

/// The total energy register readings of some samples, in order.
fn registers(samples: &[MeterSample]) -> impl Iterator<Item = f64> + '_ {
    samples.iter().flat_map(|sample| {
        sample
            .values
            .iter()
            .filter_map(|v| match (&v.measurand, &v.phase, &v.value) {
                (Measurand::EnergyActiveImportRegister, None, SampleValue::Valid(x)) => Some(*x),
                _ => None,
            })
    })
}

/// J01: one Meter event per meterValue element on the EVSE.
pub fn meter_values(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
    out: &mut Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let evse = s.require(obj, "", "evseId", &["connectorId"])?;
    let evse = s.connector(evse, "evseId")?;
    let origin = MeterOrigin {
        connector: evse,
        transaction_id: None,
        replayed: false,
    };
    let list = s.require(obj, "", "meterValue", &[])?;
    for sample in read_meter_values(s, list, &origin)? {
        out.push(ChargerEvent::Meter {
            charger: ctx.charger.clone(),
            sample,
        });
    }
    to_payload(&MeterValuesResponse {})
}

impl V201Dialect {
    /// E01–E15: transaction start, update and end, with their meter values.
    pub(crate) fn transaction_event(
        &mut self,
        s: &mut Sanitizer,
        ctx: &mut CallContext<'_>,
        payload: &Value,
        out: &mut Vec<ChargerEvent>,
    ) -> Result<Value, CallError> {
        let obj = s.root(payload)?;
        let event_type = s.require(obj, "", "eventType", &[])?;
        let event_type = s.enumeration(event_type, "eventType", EVENT_TYPES)?;
        let timestamp = s.get(obj, "", "timestamp", &[])?;
        let timestamp = s.timestamp(timestamp, "timestamp")?;
        let offline = match s.get(obj, "", "offline", &[])? {
            Some(v) => {
                let read = s.boolean(v, "offline");
                s.soft(read, "offline")?.unwrap_or(false)
            }
            None => false,
        };

        let info = s.require(obj, "", "transactionInfo", &[])?;
        let info = s.object(info, "transactionInfo")?;
        let id = s.require(info, "transactionInfo", "transactionId", &[])?;
        let transaction_id = match id {
            Value::String(t) if !t.trim().is_empty() => clip(t, 36),
            Value::Number(n) if s.lenient() => {
                s.coerce(
                    "transactionInfo.transactionId",
                    Coercion::new(
                        CoercionKind::NumberAsString,
                        format!("transaction id {n} as a number where text is defined"),
                    ),
                )?;
                n.to_string()
            }
            Value::String(_) => {
                return Err(error(
                    ErrorCode::PropertyConstraintViolation,
                    "transactionInfo.transactionId",
                    "empty transaction id",
                ))
            }
            _ => {
                return Err(error(
                    ErrorCode::TypeConstraintViolation,
                    "transactionInfo.transactionId",
                    "expected text",
                ))
            }
        };
        let reason = s.get(info, "transactionInfo", "stoppedReason", &[])?;
        let reason =
            s.soft_enumeration(reason, "transactionInfo.stoppedReason", STOPPED_REASONS)?;

        let evse: Option<ConnectorId> = match s.get(obj, "", "evse", &[])? {
            None => None,
            Some(evse) => {
                let e = s.object(evse, "evse")?;
                let id = s.require(e, "evse", "id", &[])?;
                Some(s.connector(id, "evse.id")?)
            }
        };
        let id_token = match s.get(obj, "", "idToken", &[])? {
            None => None,
            Some(token) => {
                let t = s.object(token, "idToken")?;
                let value = s.get(t, "idToken", "idToken", &[])?;
                Some(s.info_text(value, "idToken.idToken")?.unwrap_or_default())
            }
        };

        let connector = evse.or_else(|| self.transactions.get(&transaction_id));
        if let Some(c) = evse {
            self.transactions.insert(&transaction_id, c);
        }
        let origin = MeterOrigin {
            connector: connector.unwrap_or(0),
            transaction_id: Some(transaction_id.clone()),
            replayed: offline,
        };
        let samples = match s.get(obj, "", "meterValue", &[])? {
            Some(list) => read_meter_values(s, list, &origin)?,
            None => Vec::new(),
        };
        let meter = |sample: MeterSample| ChargerEvent::Meter {
            charger: ctx.charger.clone(),
            sample,
        };

        match event_type {
            "Started" => {
                let meter_start_wh = registers(&samples).next();
                out.push(ChargerEvent::TransactionStarted {
                    charger: ctx.charger.clone(),
                    connector: connector.unwrap_or(0),
                    transaction_id,
                    id_tag: id_token.clone().filter(|t| !t.is_empty()),
                    meter_start_wh,
                    timestamp,
                });
                out.extend(samples.into_iter().map(meter));
            }
            "Updated" => {
                out.extend(samples.into_iter().map(meter));
                out.push(ChargerEvent::TransactionUpdated {
                    charger: ctx.charger.clone(),
                    connector: connector.unwrap_or(0),
                    transaction_id,
                    timestamp,
                });
            }
            _ => {
                let meter_stop_wh = registers(&samples).last();
                self.transactions.remove(&transaction_id);
                out.extend(samples.into_iter().map(meter));
                out.push(ChargerEvent::TransactionEnded {
                    charger: ctx.charger.clone(),
                    connector,
                    transaction_id,
                    meter_stop_wh,
                    reason: reason.map(str::to_string),
                    timestamp,
                });
            }
        }
        to_payload(&TransactionEventResponse {
            total_cost: None,
            charging_priority: None,
            id_token_info: id_token.map(|_| accepted_id_token_info()),
            updated_personal_message: None,
        })
    }
}
