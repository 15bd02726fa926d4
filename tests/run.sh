#!/usr/bin/env bash
# The project's one test command (CI: .ci/run). Fails fast on the first broken stage.
#
#   tests/run.sh [PYTEST_ARGS...]     e.g. tests/run.sh -k site_setpoint -x
#
# Stages: system packages, Python venv, packaging checks, iec101 master (lib60870-C),
# cargo fmt, clippy, cargo test, build, interop tests.
# Environment: PYTHON (default python3.11, else python3), CARGO_TARGET_DIR (honoured).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/tests/.venv"
REQS="$ROOT/tests/interop/requirements.txt"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$ROOT/tests/.work"

section() {
    printf '\n==================== %s ====================\n' "$*"
}

# ---------------------------------------------------------------- system packages
APT_UPDATED=0
# ensure_apt PKG...: install the Debian packages that are missing. Runs apt-get update at
# most once per run. Without root (and without passwordless sudo) or without apt-get it
# only warns; the stage that needs the package then fails with its own message.
ensure_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "WARNING: not root, cannot install missing packages: ${missing[*]}" >&2
            return 0
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "WARNING: no apt-get, cannot install missing packages: ${missing[*]}" >&2
        return 0
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    echo "installing: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

section "system packages"
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
# A Debian python3 needs python3-venv for `-m venv` (ensurepip); pyenv/other builds have it.
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    ensure_apt python3-venv
fi
# socat: pseudo-terminal pairs for the IEC 101 tests; cmake (+ gcc, make) builds lib60870-C.
# mosquitto: the MQTT broker of the mirror tests; openssl: their TLS certificates;
# systemd: systemd-analyze verify of the unit (packaging checks).
ensure_apt socat cmake gcc make mosquitto openssl systemd
echo "ok"

# ---------------------------------------------------------------- python venv
section "python venv (tests/.venv)"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS"
    echo "$WANT" > "$STAMP"
fi
"$VENV/bin/python" -c 'import c104, pytest, pytest_timeout; print("python", __import__("sys").version.split()[0], "pytest", pytest.__version__)'
# The official OCPP JSON schemas ship inside the `ocpp` package (v16/schemas, v201/schemas);
# Rust tests validate what ocpp809 sends against them.
OCPP_SCHEMAS_DIR="$("$VENV/bin/python" -c 'import os, ocpp; print(os.path.dirname(os.path.abspath(ocpp.__file__)))')"
[ -d "$OCPP_SCHEMAS_DIR/v16/schemas" ] && [ -d "$OCPP_SCHEMAS_DIR/v201/schemas" ] \
    || { echo "no OCPP schemas under $OCPP_SCHEMAS_DIR" >&2; exit 1; }
export OCPP_SCHEMAS_DIR
echo "OCPP_SCHEMAS_DIR=$OCPP_SCHEMAS_DIR"
# tests/ocpp_commands.rs runs the `ocpp` package's charger simulator with this interpreter,
# tests/modbus_meter.rs the pymodbus meter simulator (tests/interop/modbus_meter_sim.py).
export OCPP_TEST_PYTHON="$VENV/bin/python"

# ---------------------------------------------------------------- packaging
section "packaging checks"
# Yocto crates include in sync with Cargo.lock, oelint-adv on the layer's recipes,
# systemd-analyze verify on the unit, Debian package metadata (tests/packaging.sh).
VENV="$VENV" "$ROOT/tests/packaging.sh"

# ---------------------------------------------------------------- IEC 101 master peer
section "iec101 master (lib60870-C from the c104 sdist)"
# Downloads the c104 sdist with the venv's pip, builds lib60870-C and
# tests/interop/iec101/master.c under tests/.work/lib60870 (skipped when up to date).
IEC101_MASTER_BIN="$("$ROOT/tests/interop/iec101/build.sh" | tail -n1)"
[ -x "$IEC101_MASTER_BIN" ] || { echo "no iec101 master at $IEC101_MASTER_BIN" >&2; exit 1; }
export IEC101_MASTER_BIN
echo "IEC101_MASTER_BIN=$IEC101_MASTER_BIN"

# ---------------------------------------------------------------- rust
if command -v rustup >/dev/null 2>&1; then
    for comp in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
            rustup component add "$comp"
        fi
    done
fi

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy"
cargo clippy --all-targets -- -D warnings

section "cargo test"
cargo test --all-targets

section "cargo build --bin ocpp809 --example soak"
# The soak example is already built by cargo test --all-targets; test_soak.py runs it.
cargo build --bin ocpp809 --example soak
export OCPP809_BIN="$TARGET_DIR/debug/ocpp809"
[ -x "$OCPP809_BIN" ] || { echo "no binary at $OCPP809_BIN" >&2; exit 1; }

# ---------------------------------------------------------------- interop
section "interop tests (pytest tests/interop)"
mkdir -p "$WORK"
"$VENV/bin/python" -m pytest tests/interop -v -p no:cacheprovider \
    --basetemp="$WORK/pytest" "$@"

section "all stages passed"
