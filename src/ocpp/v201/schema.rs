//! Strict-mode structure of the OCPP 2.0.1 charging station → CSMS requests, after the official
//! OCPP 2.0.1 JSON schemas (Part 3; draft-06, `additionalProperties: false` everywhere, an
//! optional `customData` in every object — allowed by the checker).

use crate::ocpp::sanitize::schema::{opt, req, Ty};

pub const CONNECTOR_STATUS: &[&str] = &[
    "Available",
    "Occupied",
    "Reserved",
    "Unavailable",
    "Faulted",
];

pub const EVENT_TYPES: &[&str] = &["Ended", "Started", "Updated"];

pub const CHARGING_STATES: &[&str] = &[
    "Charging",
    "EVConnected",
    "SuspendedEV",
    "SuspendedEVSE",
    "Idle",
];

pub const STOPPED_REASONS: &[&str] = &[
    "DeAuthorized",
    "EmergencyStop",
    "EnergyLimitReached",
    "EVDisconnected",
    "GroundFault",
    "ImmediateReset",
    "Local",
    "LocalOutOfCredit",
    "MasterPass",
    "Other",
    "OvercurrentFault",
    "PowerLoss",
    "PowerQuality",
    "Reboot",
    "Remote",
    "SOCLimitReached",
    "StoppedByEV",
    "TimeLimitReached",
    "Timeout",
];

const TRIGGER_REASONS: &[&str] = &[
    "Authorized",
    "CablePluggedIn",
    "ChargingRateChanged",
    "ChargingStateChanged",
    "Deauthorized",
    "EnergyLimitReached",
    "EVCommunicationLost",
    "EVConnectTimeout",
    "MeterValueClock",
    "MeterValuePeriodic",
    "TimeLimitReached",
    "Trigger",
    "UnlockCommand",
    "StopAuthorized",
    "EVDeparted",
    "EVDetected",
    "RemoteStop",
    "RemoteStart",
    "AbnormalCondition",
    "SignedDataReceived",
    "ResetCommand",
];

pub const MEASURANDS: &[&str] = &[
    "Current.Export",
    "Current.Import",
    "Current.Offered",
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Active.Net",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Energy.Reactive.Net",
    "Energy.Apparent.Net",
    "Energy.Apparent.Import",
    "Energy.Apparent.Export",
    "Frequency",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Factor",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "SoC",
    "Voltage",
];

const CONTEXTS: &[&str] = &[
    "Interruption.Begin",
    "Interruption.End",
    "Other",
    "Sample.Clock",
    "Sample.Periodic",
    "Transaction.Begin",
    "Transaction.End",
    "Trigger",
];

const PHASES: &[&str] = &[
    "L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1",
];

const LOCATIONS: &[&str] = &["Body", "Cable", "EV", "Inlet", "Outlet"];

const ID_TOKEN_TYPES: &[&str] = &[
    "Central",
    "eMAID",
    "ISO14443",
    "ISO15693",
    "KeyCode",
    "Local",
    "MacAddress",
    "NoAuthorization",
];

const SIGNED_METER_VALUE: Ty = Ty::Obj(&[
    req("signedMeterData", Ty::Str(2500)),
    req("signingMethod", Ty::Str(50)),
    req("encodingMethod", Ty::Str(50)),
    req("publicKey", Ty::Str(2500)),
]);

const UNIT_OF_MEASURE: Ty = Ty::Obj(&[opt("unit", Ty::Str(20)), opt("multiplier", Ty::Int)]);

const SAMPLED_VALUE: Ty = Ty::Obj(&[
    req("value", Ty::Num),
    opt("context", Ty::Enum(CONTEXTS)),
    opt("measurand", Ty::Enum(MEASURANDS)),
    opt("phase", Ty::Enum(PHASES)),
    opt("location", Ty::Enum(LOCATIONS)),
    opt("signedMeterValue", SIGNED_METER_VALUE),
    opt("unitOfMeasure", UNIT_OF_MEASURE),
]);

const METER_VALUE: Ty = Ty::Obj(&[
    req("sampledValue", Ty::Arr(&SAMPLED_VALUE, 1, 0)),
    req("timestamp", Ty::DateTime),
]);

const EVSE: Ty = Ty::Obj(&[req("id", Ty::Int), opt("connectorId", Ty::Int)]);

const ADDITIONAL_INFO: Ty = Ty::Obj(&[
    req("additionalIdToken", Ty::Str(36)),
    req("type", Ty::Str(50)),
]);

const ID_TOKEN: Ty = Ty::Obj(&[
    opt("additionalInfo", Ty::Arr(&ADDITIONAL_INFO, 1, 0)),
    req("idToken", Ty::Str(36)),
    req("type", Ty::Enum(ID_TOKEN_TYPES)),
]);

const COMPONENT: Ty = Ty::Obj(&[
    opt("evse", EVSE),
    req("name", Ty::Str(50)),
    opt("instance", Ty::Str(50)),
]);

const VARIABLE: Ty = Ty::Obj(&[req("name", Ty::Str(50)), opt("instance", Ty::Str(50))]);

pub const BOOT_NOTIFICATION: Ty = Ty::Obj(&[
    req(
        "chargingStation",
        Ty::Obj(&[
            opt("serialNumber", Ty::Str(25)),
            req("model", Ty::Str(20)),
            opt(
                "modem",
                Ty::Obj(&[opt("iccid", Ty::Str(20)), opt("imsi", Ty::Str(20))]),
            ),
            req("vendorName", Ty::Str(50)),
            opt("firmwareVersion", Ty::Str(50)),
        ]),
    ),
    req(
        "reason",
        Ty::Enum(&[
            "ApplicationReset",
            "FirmwareUpdate",
            "LocalReset",
            "PowerUp",
            "RemoteReset",
            "ScheduledReset",
            "Triggered",
            "Unknown",
            "Watchdog",
        ]),
    ),
]);

pub const HEARTBEAT: Ty = Ty::Obj(&[]);

pub const STATUS_NOTIFICATION: Ty = Ty::Obj(&[
    req("timestamp", Ty::DateTime),
    req("connectorStatus", Ty::Enum(CONNECTOR_STATUS)),
    req("evseId", Ty::Int),
    req("connectorId", Ty::Int),
]);

pub const METER_VALUES: Ty = Ty::Obj(&[
    req("evseId", Ty::Int),
    req("meterValue", Ty::Arr(&METER_VALUE, 1, 0)),
]);

pub const TRANSACTION_EVENT: Ty = Ty::Obj(&[
    req("eventType", Ty::Enum(EVENT_TYPES)),
    opt("meterValue", Ty::Arr(&METER_VALUE, 1, 0)),
    req("timestamp", Ty::DateTime),
    req("triggerReason", Ty::Enum(TRIGGER_REASONS)),
    req("seqNo", Ty::Int),
    opt("offline", Ty::Bool),
    opt("numberOfPhasesUsed", Ty::Int),
    opt("cableMaxCurrent", Ty::Int),
    opt("reservationId", Ty::Int),
    req(
        "transactionInfo",
        Ty::Obj(&[
            req("transactionId", Ty::Str(36)),
            opt("chargingState", Ty::Enum(CHARGING_STATES)),
            opt("timeSpentCharging", Ty::Int),
            opt("stoppedReason", Ty::Enum(STOPPED_REASONS)),
            opt("remoteStartId", Ty::Int),
        ]),
    ),
    opt("evse", EVSE),
    opt("idToken", ID_TOKEN),
]);

pub const AUTHORIZE: Ty = Ty::Obj(&[
    req("idToken", ID_TOKEN),
    opt("certificate", Ty::Str(5500)),
    opt(
        "iso15118CertificateHashData",
        Ty::Arr(
            &Ty::Obj(&[
                req("hashAlgorithm", Ty::Enum(&["SHA256", "SHA384", "SHA512"])),
                req("issuerNameHash", Ty::Str(128)),
                req("issuerKeyHash", Ty::Str(128)),
                req("serialNumber", Ty::Str(40)),
                req("responderURL", Ty::Str(512)),
            ]),
            1,
            4,
        ),
    ),
]);

pub const NOTIFY_EVENT: Ty = Ty::Obj(&[
    req("generatedAt", Ty::DateTime),
    opt("tbc", Ty::Bool),
    req("seqNo", Ty::Int),
    req(
        "eventData",
        Ty::Arr(
            &Ty::Obj(&[
                req("eventId", Ty::Int),
                req("timestamp", Ty::DateTime),
                req("trigger", Ty::Enum(&["Alerting", "Delta", "Periodic"])),
                opt("cause", Ty::Int),
                req("actualValue", Ty::Str(2500)),
                opt("techCode", Ty::Str(50)),
                opt("techInfo", Ty::Str(500)),
                opt("cleared", Ty::Bool),
                opt("transactionId", Ty::Str(36)),
                req("component", COMPONENT),
                opt("variableMonitoringId", Ty::Int),
                req(
                    "eventNotificationType",
                    Ty::Enum(&[
                        "HardWiredNotification",
                        "HardWiredMonitor",
                        "PreconfiguredMonitor",
                        "CustomMonitor",
                    ]),
                ),
                req("variable", VARIABLE),
            ]),
            1,
            0,
        ),
    ),
]);

const VARIABLE_ATTRIBUTE: Ty = Ty::Obj(&[
    opt("type", Ty::Enum(&["Actual", "Target", "MinSet", "MaxSet"])),
    opt("value", Ty::Str(2500)),
    opt(
        "mutability",
        Ty::Enum(&["ReadOnly", "WriteOnly", "ReadWrite"]),
    ),
    opt("persistent", Ty::Bool),
    opt("constant", Ty::Bool),
]);

const VARIABLE_CHARACTERISTICS: Ty = Ty::Obj(&[
    opt("unit", Ty::Str(16)),
    req(
        "dataType",
        Ty::Enum(&[
            "string",
            "decimal",
            "integer",
            "dateTime",
            "boolean",
            "OptionList",
            "SequenceList",
            "MemberList",
        ]),
    ),
    opt("minLimit", Ty::Num),
    opt("maxLimit", Ty::Num),
    opt("valuesList", Ty::Str(1000)),
    req("supportsMonitoring", Ty::Bool),
]);

pub const NOTIFY_REPORT: Ty = Ty::Obj(&[
    req("requestId", Ty::Int),
    req("generatedAt", Ty::DateTime),
    opt(
        "reportData",
        Ty::Arr(
            &Ty::Obj(&[
                req("component", COMPONENT),
                req("variable", VARIABLE),
                req("variableAttribute", Ty::Arr(&VARIABLE_ATTRIBUTE, 1, 4)),
                opt("variableCharacteristics", VARIABLE_CHARACTERISTICS),
            ]),
            1,
            0,
        ),
    ),
    opt("tbc", Ty::Bool),
    req("seqNo", Ty::Int),
]);

pub const SECURITY_EVENT_NOTIFICATION: Ty = Ty::Obj(&[
    req("type", Ty::Str(50)),
    req("timestamp", Ty::DateTime),
    opt("techInfo", Ty::Str(255)),
]);

pub const FIRMWARE_STATUS_NOTIFICATION: Ty = Ty::Obj(&[
    req(
        "status",
        Ty::Enum(&[
            "Downloaded",
            "DownloadFailed",
            "Downloading",
            "DownloadScheduled",
            "DownloadPaused",
            "Idle",
            "InstallationFailed",
            "Installing",
            "Installed",
            "InstallRebooting",
            "InstallScheduled",
            "InstallVerificationFailed",
            "InvalidSignature",
            "SignatureVerified",
        ]),
    ),
    opt("requestId", Ty::Int),
]);

pub const LOG_STATUS_NOTIFICATION: Ty = Ty::Obj(&[
    req(
        "status",
        Ty::Enum(&[
            "BadMessage",
            "Idle",
            "NotSupportedOperation",
            "PermissionDenied",
            "Uploaded",
            "UploadFailure",
            "Uploading",
            "AcceptedCanceled",
        ]),
    ),
    opt("requestId", Ty::Int),
]);

pub const DATA_TRANSFER: Ty = Ty::Obj(&[
    opt("messageId", Ty::Str(50)),
    opt("data", Ty::Any),
    req("vendorId", Ty::Str(255)),
]);
