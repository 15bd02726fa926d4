//! Strict-mode structure of the OCPP 1.6 charge point → central system requests, after the
//! official OCPP 1.6 JSON schemas (draft-04, `additionalProperties: false` everywhere).

use crate::ocpp::sanitize::schema::{opt, req, Field, Ty};

pub const CHARGE_POINT_ERROR_CODES: &[&str] = &[
    "ConnectorLockFailure",
    "EVCommunicationError",
    "GroundFailure",
    "HighTemperature",
    "InternalError",
    "LocalListConflict",
    "NoError",
    "OtherError",
    "OverCurrentFailure",
    "PowerMeterFailure",
    "PowerSwitchFailure",
    "ReaderFailure",
    "ResetFailure",
    "UnderVoltage",
    "OverVoltage",
    "WeakSignal",
];

pub const CHARGE_POINT_STATUS: &[&str] = &[
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
];

pub const STOP_REASONS: &[&str] = &[
    "EmergencyStop",
    "EVDisconnected",
    "HardReset",
    "Local",
    "Other",
    "PowerLoss",
    "Reboot",
    "Remote",
    "SoftReset",
    "UnlockCommand",
    "DeAuthorized",
];

pub const MEASURANDS: &[&str] = &[
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "Power.Factor",
    "Current.Import",
    "Current.Export",
    "Current.Offered",
    "Voltage",
    "Frequency",
    "Temperature",
    "SoC",
    "RPM",
];

const CONTEXTS: &[&str] = &[
    "Interruption.Begin",
    "Interruption.End",
    "Sample.Clock",
    "Sample.Periodic",
    "Transaction.Begin",
    "Transaction.End",
    "Trigger",
    "Other",
];

const PHASES: &[&str] = &[
    "L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1",
];

const LOCATIONS: &[&str] = &["Cable", "EV", "Inlet", "Outlet", "Body"];

/// MeterValues allows "Hertz"; StopTransaction's transactionData does not.
const UNITS_METER_VALUES: &[&str] = &[
    "Wh",
    "kWh",
    "varh",
    "kvarh",
    "W",
    "kW",
    "VA",
    "kVA",
    "var",
    "kvar",
    "A",
    "V",
    "K",
    "Celcius",
    "Celsius",
    "Fahrenheit",
    "Percent",
    "Hertz",
];
const UNITS_TRANSACTION_DATA: &[&str] = &[
    "Wh",
    "kWh",
    "varh",
    "kvarh",
    "W",
    "kW",
    "VA",
    "kVA",
    "var",
    "kvar",
    "A",
    "V",
    "K",
    "Celcius",
    "Celsius",
    "Fahrenheit",
    "Percent",
];

const fn sampled_value(units: &'static [&'static str]) -> [Field; 7] {
    [
        req("value", Ty::Str(usize::MAX)),
        opt("context", Ty::Enum(CONTEXTS)),
        opt("format", Ty::Enum(&["Raw", "SignedData"])),
        opt("measurand", Ty::Enum(MEASURANDS)),
        opt("phase", Ty::Enum(PHASES)),
        opt("location", Ty::Enum(LOCATIONS)),
        opt("unit", Ty::Enum(units)),
    ]
}

const SAMPLED_VALUE_MV: Ty = Ty::Obj(&sampled_value(UNITS_METER_VALUES));
const SAMPLED_VALUE_TD: Ty = Ty::Obj(&sampled_value(UNITS_TRANSACTION_DATA));

const METER_VALUE_MV: Ty = Ty::Obj(&[
    req("timestamp", Ty::DateTime),
    req("sampledValue", Ty::Arr(&SAMPLED_VALUE_MV, 1, 0)),
]);
const METER_VALUE_TD: Ty = Ty::Obj(&[
    req("timestamp", Ty::DateTime),
    req("sampledValue", Ty::Arr(&SAMPLED_VALUE_TD, 0, 0)),
]);

pub const BOOT_NOTIFICATION: Ty = Ty::Obj(&[
    req("chargePointVendor", Ty::Str(20)),
    req("chargePointModel", Ty::Str(20)),
    opt("chargePointSerialNumber", Ty::Str(25)),
    opt("chargeBoxSerialNumber", Ty::Str(25)),
    opt("firmwareVersion", Ty::Str(50)),
    opt("iccid", Ty::Str(20)),
    opt("imsi", Ty::Str(20)),
    opt("meterType", Ty::Str(25)),
    opt("meterSerialNumber", Ty::Str(25)),
]);

pub const HEARTBEAT: Ty = Ty::Obj(&[]);

pub const STATUS_NOTIFICATION: Ty = Ty::Obj(&[
    req("connectorId", Ty::Int),
    req("errorCode", Ty::Enum(CHARGE_POINT_ERROR_CODES)),
    opt("info", Ty::Str(50)),
    req("status", Ty::Enum(CHARGE_POINT_STATUS)),
    opt("timestamp", Ty::DateTime),
    opt("vendorId", Ty::Str(255)),
    opt("vendorErrorCode", Ty::Str(50)),
]);

pub const METER_VALUES: Ty = Ty::Obj(&[
    req("connectorId", Ty::Int),
    opt("transactionId", Ty::Int),
    req("meterValue", Ty::Arr(&METER_VALUE_MV, 1, 0)),
]);

pub const START_TRANSACTION: Ty = Ty::Obj(&[
    req("connectorId", Ty::Int),
    req("idTag", Ty::Str(20)),
    req("meterStart", Ty::Int),
    opt("reservationId", Ty::Int),
    req("timestamp", Ty::DateTime),
]);

pub const STOP_TRANSACTION: Ty = Ty::Obj(&[
    opt("idTag", Ty::Str(20)),
    req("meterStop", Ty::Int),
    req("timestamp", Ty::DateTime),
    req("transactionId", Ty::Int),
    opt("reason", Ty::Enum(STOP_REASONS)),
    opt("transactionData", Ty::Arr(&METER_VALUE_TD, 0, 0)),
]);

pub const AUTHORIZE: Ty = Ty::Obj(&[req("idTag", Ty::Str(20))]);

pub const DATA_TRANSFER: Ty = Ty::Obj(&[
    req("vendorId", Ty::Str(255)),
    opt("messageId", Ty::Str(50)),
    opt("data", Ty::Str(usize::MAX)),
]);

pub const DIAGNOSTICS_STATUS_NOTIFICATION: Ty = Ty::Obj(&[req(
    "status",
    Ty::Enum(&["Idle", "Uploaded", "UploadFailed", "Uploading"]),
)]);

pub const FIRMWARE_STATUS_NOTIFICATION: Ty = Ty::Obj(&[req(
    "status",
    Ty::Enum(&[
        "Downloaded",
        "DownloadFailed",
        "Downloading",
        "Idle",
        "InstallationFailed",
        "Installing",
        "Installed",
    ]),
)]);
