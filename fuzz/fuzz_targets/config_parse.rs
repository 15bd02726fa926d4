//! Fuzz target for the configuration layer: whatever text an operator (or a broken editor)
//! produces, `Config::from_toml_str` answers with a config or an error and never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocpp809::config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    // Files are read as UTF-8 (`read_to_string`), so other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(ConfigError::Invalid { line, .. }) = Config::from_toml_str(text, "fuzz.toml") {
        // A reported position must lie inside the text.
        assert!(line <= text.lines().count() + 1);
    }
});
