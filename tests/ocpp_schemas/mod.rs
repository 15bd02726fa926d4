//! Validation against the official OCPP JSON schemas, shared by the integration tests that
//! check what ocpp809 sends. The schemas come from `$OCPP_SCHEMAS_DIR` (the `ocpp` directory
//! of the Python `ocpp` 2.1.0 package: `v16/schemas/*.json`, `v201/schemas/*.json`, set by
//! tests/run.sh); without it the checks print a notice once and pass.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ocpp809::ocpp::Version;
use serde_json::Value;

/// The official schema directory, or `None` (with a notice, once) when not configured.
fn schemas_dir() -> Option<PathBuf> {
    static NOTICE: OnceLock<()> = OnceLock::new();
    match std::env::var_os("OCPP_SCHEMAS_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            NOTICE.get_or_init(|| {
                // Straight to stderr: the test harness captures println!.
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTICE: OCPP_SCHEMAS_DIR is not set; validation against the official OCPP \
                     JSON schemas is skipped (point it at the `ocpp` directory of the Python \
                     package ocpp==2.1.0)"
                );
            });
            None
        }
    }
}

type Validators = HashMap<String, jsonschema::Validator>;

fn validators() -> &'static Mutex<Validators> {
    static CACHE: OnceLock<Mutex<Validators>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// File of a message schema: 1.6 `SetChargingProfile.json` / `…Response.json`, 2.0.1
/// `SetChargingProfileRequest.json` / `…Response.json`.
fn schema_file(version: Version, action: &str, response: bool) -> String {
    match (version, response) {
        (Version::V16, false) => format!("v16/schemas/{action}.json"),
        (Version::V16, true) => format!("v16/schemas/{action}Response.json"),
        (Version::V201, false) => format!("v201/schemas/{action}Request.json"),
        (Version::V201, true) => format!("v201/schemas/{action}Response.json"),
    }
}

/// Schema errors of `payload` (empty = valid); `None` when schemas are not configured.
pub fn schema_errors(
    version: Version,
    action: &str,
    response: bool,
    payload: &Value,
) -> Option<Vec<String>> {
    let dir = schemas_dir()?;
    let file = schema_file(version, action, response);
    let mut cache = validators().lock().unwrap_or_else(|p| p.into_inner());
    if !cache.contains_key(&file) {
        let path = dir.join(&file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read schema {}: {e}", path.display()));
        let mut schema: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("schema {} is not JSON: {e}", path.display()));
        strip_multiple_of(&mut schema);
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("schema {}: {e}", path.display()));
        cache.insert(file.clone(), validator);
    }
    let validator = cache.get(&file)?;
    let mut errors: Vec<String> = validator
        .iter_errors(payload)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    if version == Version::V16 {
        decimal_steps(payload, "", &mut errors);
    }
    Some(errors)
}

/// The 1.6 schemas give charging limits `multipleOf: 0.1`. The validator checks that in binary
/// floating point, where 21.4 / 0.1 is not whole (the Python `ocpp` package works around the
/// same problem with decimals), so the keyword is taken out and checked on the number's text.
fn strip_multiple_of(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.remove("multipleOf");
            map.values_mut().for_each(strip_multiple_of);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_multiple_of),
        _ => {}
    }
}

/// 1.6 `limit` and `minChargingRate`: at most one decimal.
fn decimal_steps(v: &Value, path: &str, errors: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let here = format!("{path}/{k}");
                if let (true, Value::Number(n)) = (k == "limit" || k == "minChargingRate", x) {
                    let text = n.to_string();
                    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
                    if decimals > 1 || text.contains(['e', 'E']) {
                        errors.push(format!("{text} is not a multiple of 0.1 at {here}"));
                    }
                }
                decimal_steps(x, &here, errors);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                decimal_steps(x, &format!("{path}/{i}"), errors);
            }
        }
        _ => {}
    }
}

pub fn assert_schema_valid(version: Version, action: &str, response: bool, payload: &Value) {
    if let Some(errors) = schema_errors(version, action, response, payload) {
        assert!(
            errors.is_empty(),
            "{version:?} {action}{} is not schema-valid: {errors:?}\n{payload:#}",
            if response { "Response" } else { "" }
        );
    }
}
