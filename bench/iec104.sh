#!/usr/bin/env bash
# IEC 60870-5-104 throughput benchmark of the controlled station (see BENCHMARKS.md).
#
# Runs the load source (examples/iec104_source.rs: the real server, N points changed
# round-robin with backpressure) against
#   - c104 2.2.1 (lib60870-C) counting every I-frame in a Python on_receive_raw callback,
#   - c104 without any Python callback, counting received octets from `ss -ti` (single
#     points only: fixed 23-octet frames),
#   - a minimal Rust master (examples/iec104_sink.rs), the ceiling of the station itself,
# for single points (events, one object per ASDU) and short floats (measurements, packed),
# then the criterion benchmark `benches/asdu.rs`. Prints a Markdown report and writes it
# into BENCHMARKS.md between the iec104-bench markers.
#
# Loopback only, ports picked free at run time. About 75 s once everything is built.
#
# Environment: WARMUP (s, default 2), MEASURE (s, default 6), POINTS (default 1000),
# K / W (default 12 / 8), SKIP_CRITERION=1, NO_WRITE=1 (do not touch BENCHMARKS.md),
# BENCHMARKS_MD (default <repo>/BENCHMARKS.md), PYTHON (to create the venv).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WARMUP="${WARMUP:-2}"
MEASURE="${MEASURE:-6}"
POINTS="${POINTS:-1000}"
K="${K:-12}"
W="${W:-8}"
VENV="$ROOT/bench/.venv"
PYTHON="${PYTHON:-python3}"
BENCHMARKS_MD="${BENCHMARKS_MD:-$ROOT/BENCHMARKS.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SOURCE_BIN="$TARGET_DIR/release/examples/iec104_source"
SINK_BIN="$TARGET_DIR/release/examples/iec104_sink"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/iec104-bench.XXXXXX")"
# Shared helpers: cleanup of $PIDS and $WORK, say, free_port, wait_port, cpu_ticks/$HZ.
. "$ROOT/bench/lib.sh"

# ------------------------------------------------------------------------------- build
say "building release examples"
cargo build --release --quiet --example iec104_source --example iec104_sink

# -------------------------------------------------------------------------------- venv
if ! "$VENV/bin/python" -c 'import c104' >/dev/null 2>&1; then
    say "creating $VENV with c104==2.2.1"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q 'c104==2.2.1'
fi
PY="$VENV/bin/python"

# ------------------------------------------------------------------------------- cases
# run_case KIND MASTER: one source and one master, results in $WORK/KIND-MASTER.*.json
run_case() {
    local kind="$1" master="$2" port src_pid rc=0
    local base="$WORK/$kind-$master"
    port="$(free_port)"
    say "$kind points → $master (127.0.0.1:$port, ${WARMUP}s warm-up + ${MEASURE}s)"
    # --seconds is only a safety net: the source is stopped with SIGINT below.
    "$SOURCE_BIN" --listen "127.0.0.1:$port" --points "$POINTS" --kind "$kind" \
        --k "$K" --w "$W" --seconds "$((WARMUP + MEASURE + 30))" \
        >"$base.source.json" 2>"$base.source.log" &
    src_pid=$!
    PIDS+=("$src_pid")
    local limit=$((WARMUP + MEASURE + 20))
    case "$master" in
        c104)
            timeout "$limit" "$PY" bench/iec104_c104_master.py --connect "127.0.0.1:$port" \
                --k "$K" --w "$W" --warmup "$WARMUP" --seconds "$MEASURE" \
                >"$base.master.json" 2>"$base.master.log" || rc=$?
            ;;
        c104-wire)
            timeout "$limit" "$PY" bench/iec104_c104_master.py --connect "127.0.0.1:$port" \
                --k "$K" --w "$W" --warmup "$WARMUP" --seconds "$MEASURE" \
                --count wire --frame-len 23 \
                >"$base.master.json" 2>"$base.master.log" || rc=$?
            ;;
        rust)
            timeout "$limit" "$SINK_BIN" --connect "127.0.0.1:$port" --w "$W" \
                --warmup "$WARMUP" --seconds "$MEASURE" \
                >"$base.master.json" 2>"$base.master.log" || rc=$?
            ;;
    esac
    kill -INT "$src_pid" 2>/dev/null || true
    wait "$src_pid" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
        echo "master $master exited with $rc:" >&2
        cat "$base.master.log" >&2 || true
    fi
    cat "$base.master.json" >&2 || true
}

run_case single c104
if command -v ss >/dev/null 2>&1; then
    run_case single c104-wire
else
    echo "ss (iproute2) not found: skipping the c104 wire-count case" >&2
fi
run_case single rust
run_case float c104
run_case float rust

# --------------------------------------------------------------------------- criterion
CRITERION_CMD="cargo bench --bench asdu -- --warm-up-time 1 --measurement-time 3"
if [ "${SKIP_CRITERION:-0}" != 1 ]; then
    say "$CRITERION_CMD"
    $CRITERION_CMD >"$WORK/criterion.txt" 2>"$WORK/criterion.log" || {
        cat "$WORK/criterion.log" >&2
        exit 1
    }
fi

# ------------------------------------------------------------------------------ report
export WARMUP MEASURE POINTS K W CRITERION_CMD
export COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no -- src benches Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    COMMIT="$COMMIT, with uncommitted changes under src/, benches/ or Cargo.*"
fi
export NPROC="$(nproc)"
export CPU_MODEL="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
export KERNEL="$(uname -sr)"
export RUSTC="$(rustc --version)"
export C104_VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("c104"))')"
export PY_VERSION="$("$PY" -c 'import platform; print(platform.python_version())')"

say "report"
if [ "${NO_WRITE:-0}" = 1 ]; then
    "$PY" bench/iec104_report.py "$WORK"
else
    "$PY" bench/iec104_report.py "$WORK" --write "$BENCHMARKS_MD"
fi
