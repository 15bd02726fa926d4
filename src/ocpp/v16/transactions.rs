//! OCPP 1.6 meter values and transactions (§4.7 MeterValues, §4.8 StartTransaction,
//! §4.10 StopTransaction; §7.17 MeterValue, §7.45 SampledValue).
//!
//! Sampled values are text in 1.6 and are read with the sanitizer: `"14.4kW"` is 14400 W in
//! lenient mode; what cannot be understood is an Invalid sample, never 0. OCPP 1.5-era shapes
//! are understood in lenient mode: `values` for `meterValue`, `value` for `sampledValue`, a
//! bare value instead of a sampled value object, and `transactionData` as a list of
//! `{"values": [meter values]}`.

use rust_ocpp::v1_6::messages::meter_values::MeterValuesResponse;
use rust_ocpp::v1_6::messages::start_transaction::StartTransactionResponse;
use rust_ocpp::v1_6::messages::stop_transaction::StopTransactionResponse;
use serde_json::Value;

use super::common::to_payload;
use super::core::accepted_id_tag_info;
use super::schema::STOP_REASONS;
use super::V16Dialect;
use crate::mapping::charger::{
    ChargerEvent, CoercionKind, ConnectorId, Measurand, MeterSample, SampleContext, SampleValue,
};
use crate::ocpp::sanitize::reader::join;
use crate::ocpp::sanitize::sample::{read_sampled_value, SampleFields};
use crate::ocpp::sanitize::{find_field, normalise_sample, Coercion, Sanitizer};
use crate::ocpp::{CallContext, CallError};

/// Where a meter value came from.
#[derive(Clone, Debug)]
pub struct MeterOrigin {
    pub connector: ConnectorId,
    pub transaction_id: Option<String>,
    pub replayed: bool,
}

impl MeterOrigin {
    /// The sample of one meter value read from here; `None` when no value was readable.
    pub fn sample(
        &self,
        timestamp: Option<chrono::DateTime<chrono::Utc>>,
        context: Option<SampleContext>,
        values: Vec<crate::mapping::charger::SampledValue>,
    ) -> Option<MeterSample> {
        if values.is_empty() {
            return None;
        }
        Some(MeterSample {
            connector: self.connector,
            timestamp,
            context: context.unwrap_or(SampleContext::Periodic),
            transaction_id: self.transaction_id.clone(),
            replayed: self.replayed,
            values,
        })
    }
}

/// Reads one 1.6 MeterValue (or its 1.5-era form) into a sample. `None` when it holds no
/// readable sampled value (all signed, or dropped).
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
    let container = s.require(
        obj,
        path,
        "sampledValue",
        &["value", "values", "sampledValues"],
    )?;
    let items: Vec<&Value> = match container {
        Value::Array(items) => items.iter().collect(),
        other => s.list(other, &sv_path).or_else(|e| {
            // 1.5-era: a bare value.
            if s.lenient() && (other.is_string() || other.is_number()) {
                s.coerce(
                    &sv_path,
                    Coercion::new(CoercionKind::LegacyFieldName, "bare value as sampled value"),
                )?;
                Ok(vec![other])
            } else {
                Err(e)
            }
        })?,
    };

    let mut values = Vec::new();
    let mut context = None;
    for (i, item) in items.into_iter().enumerate() {
        let item_path = format!("{sv_path}[{i}]");
        let fields = match item {
            Value::Object(o) => {
                if let Some((format, _)) = find_field(o, "format", &[]) {
                    if format.as_str() == Some("SignedData") {
                        tracing::debug!(path = %item_path, "signed sampled value skipped");
                        continue;
                    }
                }
                let mut f = SampleFields {
                    text_expected: true,
                    ..Default::default()
                };
                f.value = s.get(o, &item_path, "value", &[])?;
                f.measurand = s.get(o, &item_path, "measurand", &[])?;
                f.phase = s.get(o, &item_path, "phase", &[])?;
                f.context = s.get(o, &item_path, "context", &[])?;
                f.unit = s.get(o, &item_path, "unit", &[])?;
                f
            }
            scalar if s.lenient() && (scalar.is_string() || scalar.is_number()) => {
                if container.is_array() {
                    s.coerce(
                        &item_path,
                        Coercion::new(CoercionKind::LegacyFieldName, "bare value as sampled value"),
                    )?;
                }
                SampleFields {
                    value: Some(scalar),
                    text_expected: true,
                    ..Default::default()
                }
            }
            _ => {
                s.object(item, &item_path)?;
                continue;
            }
        };
        if let Some((value, ctx)) = read_sampled_value(s, &item_path, fields)? {
            context = context.or(ctx);
            values.push(value);
        }
    }
    Ok(origin.sample(timestamp, context, values))
}

/// An energy register reading in Wh (meterStart / meterStop). Lenient: what cannot be read is
/// left out (the engine then has no start/stop reading), never taken as 0.
pub fn energy_wh(
    s: &mut Sanitizer,
    v: Option<&Value>,
    path: &str,
) -> Result<Option<f64>, CallError> {
    let Some(v) = v else { return Ok(None) };
    let n = normalise_sample(&Measurand::EnergyActiveImportRegister, v, None, 0, false);
    for c in n.coercions {
        s.coerce(path, c)?;
    }
    Ok(match n.value {
        SampleValue::Valid(x) => Some(x),
        SampleValue::Invalid { .. } => None,
    })
}

/// §4.7: one Meter event per meterValue element.
pub fn meter_values(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
    out: &mut Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let connector = s.require(obj, "", "connectorId", &[])?;
    let connector = s.connector(connector, "connectorId")?;
    let transaction_id = match s.get(obj, "", "transactionId", &[])? {
        None => None,
        Some(v) => {
            let read = s.int32(v, "transactionId");
            s.soft(read, "transactionId")?.map(|id| id.to_string())
        }
    };
    let origin = MeterOrigin {
        connector,
        transaction_id,
        replayed: false,
    };
    let list = s.require(obj, "", "meterValue", &["values", "meterValues"])?;
    for (i, mv) in s.list(list, "meterValue")?.into_iter().enumerate() {
        if let Some(sample) = read_meter_value(s, &format!("meterValue[{i}]"), mv, &origin)? {
            out.push(ChargerEvent::Meter {
                charger: ctx.charger.clone(),
                sample,
            });
        }
    }
    to_payload(&MeterValuesResponse {})
}

impl V16Dialect {
    /// §4.8: the CSMS assigns the transaction id; every idTag is accepted.
    pub(crate) fn start_transaction(
        &mut self,
        s: &mut Sanitizer,
        ctx: &mut CallContext<'_>,
        payload: &Value,
        out: &mut Vec<ChargerEvent>,
    ) -> Result<Value, CallError> {
        let obj = s.root(payload)?;
        let connector = s.require(obj, "", "connectorId", &[])?;
        let connector = s.connector(connector, "connectorId")?;
        let id_tag = s.get(obj, "", "idTag", &[])?;
        let id_tag = s.info_text(id_tag, "idTag")?;
        let meter_start = s.get(obj, "", "meterStart", &[])?;
        let meter_start_wh = energy_wh(s, meter_start, "meterStart")?;
        let timestamp = s.get(obj, "", "timestamp", &[])?;
        let timestamp = s.timestamp(timestamp, "timestamp")?;

        let transaction_id = (ctx.next_transaction_id)();
        let id = transaction_id.to_string();
        self.transactions.insert(&id, connector);
        out.push(ChargerEvent::TransactionStarted {
            charger: ctx.charger.clone(),
            connector,
            transaction_id: id,
            id_tag,
            meter_start_wh,
            timestamp,
        });
        to_payload(&StartTransactionResponse {
            id_tag_info: accepted_id_tag_info(),
            transaction_id,
        })
    }

    /// §4.10: transactionData is replayed meter data (updates counters, not current power).
    pub(crate) fn stop_transaction(
        &mut self,
        s: &mut Sanitizer,
        ctx: &mut CallContext<'_>,
        payload: &Value,
        out: &mut Vec<ChargerEvent>,
    ) -> Result<Value, CallError> {
        let obj = s.root(payload)?;
        let transaction_id = s.require(obj, "", "transactionId", &[])?;
        let transaction_id = s.int32(transaction_id, "transactionId")?.to_string();
        let meter_stop = s.get(obj, "", "meterStop", &[])?;
        let meter_stop_wh = energy_wh(s, meter_stop, "meterStop")?;
        let timestamp = s.get(obj, "", "timestamp", &[])?;
        let timestamp = s.timestamp(timestamp, "timestamp")?;
        let reason = s.get(obj, "", "reason", &[])?;
        let reason = s.soft_enumeration(reason, "reason", STOP_REASONS)?;
        let id_tag = s.get(obj, "", "idTag", &[])?;
        let id_tag = s.info_text(id_tag, "idTag")?;

        let connector = self.transactions.remove(&transaction_id);
        if let Some(data) = s.get(obj, "", "transactionData", &[])? {
            let origin = MeterOrigin {
                connector: connector.unwrap_or(0),
                transaction_id: Some(transaction_id.clone()),
                replayed: true,
            };
            for (i, item) in s.list(data, "transactionData")?.into_iter().enumerate() {
                let path = format!("transactionData[{i}]");
                for (j, mv) in self.legacy_wrapped(s, &path, item)?.into_iter().enumerate() {
                    let path = if j == 0 {
                        path.clone()
                    } else {
                        format!("{path}.values[{j}]")
                    };
                    if let Some(sample) = read_meter_value(s, &path, mv, &origin)? {
                        out.push(ChargerEvent::Meter {
                            charger: ctx.charger.clone(),
                            sample,
                        });
                    }
                }
            }
        }
        out.push(ChargerEvent::TransactionEnded {
            charger: ctx.charger.clone(),
            connector,
            transaction_id,
            meter_stop_wh,
            reason: reason.map(str::to_string),
            timestamp,
        });
        to_payload(&StopTransactionResponse {
            id_tag_info: id_tag.map(|_| accepted_id_tag_info()),
        })
    }

    /// 1.5-era transactionData items wrap their meter values: `{"values": [meterValue, …]}`.
    fn legacy_wrapped<'v>(
        &self,
        s: &mut Sanitizer,
        path: &str,
        item: &'v Value,
    ) -> Result<Vec<&'v Value>, CallError> {
        if let Some(obj) = item.as_object() {
            let has_own_timestamp = find_field(obj, "timestamp", &[]).is_some();
            if !has_own_timestamp {
                if let Some((Value::Array(inner), _)) = find_field(obj, "values", &[]) {
                    if inner.iter().all(|mv| {
                        mv.as_object()
                            .is_some_and(|o| find_field(o, "timestamp", &[]).is_some())
                    }) && !inner.is_empty()
                    {
                        s.coerce(
                            path,
                            Coercion::new(
                                CoercionKind::LegacyFieldName,
                                "OCPP 1.5 transactionData {\"values\": [...]}",
                            ),
                        )?;
                        return Ok(inner.iter().collect());
                    }
                }
            }
        }
        Ok(vec![item])
    }
}
