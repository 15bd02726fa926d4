#!/usr/bin/env bash
# Side-by-side benchmark: ocpp809 against reference implementations, one run, same machine,
# ratios (see BENCHMARKS.md, "Side by side").
#
#   IEC 104 spontaneous ASDU throughput to one master (the same Rust master,
#   examples/iec104_sink.rs, for both servers), POINTS points, k/w equal:
#     - ocpp809: examples/iec104_source.rs (the real iec104::server::serve + Station),
#     - lib60870-C 2.x (from the c104 2.2.1 sdist, built by tests/interop/iec101/build.sh):
#       bench/lib60870_server.c, a CS104_Slave enqueuing as fast as its queue drains;
#     for short floats (M_ME_TF_1, packed; the goal) and single points (M_SP_TB_1, events).
#     Goal: ocpp809 / lib60870 >= 1.0 (floats, ASDUs/s).
#   OCPP 1.6 ingest: examples/ocpp_loadgen.rs, CHARGERS chargers, MeterValues as fast as
#   answered (one outstanding CALL per charger), against
#     - ocpp809 (release daemon, CHARGERS [[charger]] blocks, accept_unknown = false),
#     - examples/ws_echo.rs (tokio-tungstenite + serde_json, [3,id,{}]; 4 KiB buffers like
#       ocpp809): the ceiling. Goal: ocpp809 / echo >= 0.5,
#     - bench/python_csms.py (the Python `ocpp` package on `websockets`): a reference.
#
# Every server is fresh per case and bound to 127.0.0.1 on a port picked free at run time;
# everything started is stopped on exit. Cases alternate ocpp809 / reference, ROUNDS times;
# figures are the mean over rounds. Prints a Markdown report and rewrites the section
# between the compare-bench markers of BENCHMARKS.md. About 3 minutes once built.
#
# Environment: ROUNDS (default 2), WARMUP / MEASURE (IEC 104, s, default 2 / 6), POINTS
# (1000), K / W (12 / 8), CHARGERS (100), OCPP_SECONDS (10), SKIP_BUILD=1, NO_WRITE=1,
# BENCHMARKS_MD (default <repo>/BENCHMARKS.md), CARGO_TARGET_DIR (honoured).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The command as run, with the settings given in the environment (for the report).
CMDLINE=""
for var in ROUNDS WARMUP MEASURE POINTS K W CHARGERS OCPP_SECONDS SKIP_BUILD CARGO_TARGET_DIR; do
    if [ -n "${!var:-}" ]; then
        CMDLINE+="$var=${!var} "
    fi
done
CMDLINE+="bench/compare.sh"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-2}"
MEASURE="${MEASURE:-6}"
POINTS="${POINTS:-1000}"
K="${K:-12}"
W="${W:-8}"
CHARGERS="${CHARGERS:-100}"
OCPP_SECONDS="${OCPP_SECONDS:-10}"
BENCHMARKS_MD="${BENCHMARKS_MD:-$ROOT/BENCHMARKS.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PY_VENV="$ROOT/tests/.venv/bin/python"
DAEMON_BIN="$TARGET_DIR/release/ocpp809"
SOURCE_BIN="$TARGET_DIR/release/examples/iec104_source"
SINK_BIN="$TARGET_DIR/release/examples/iec104_sink"
LOADGEN_BIN="$TARGET_DIR/release/examples/ocpp_loadgen"
ECHO_BIN="$TARGET_DIR/release/examples/ws_echo"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/compare-bench.XXXXXX")"
# Shared helpers: cleanup of $PIDS and $WORK, say, free_port, wait_port, cpu_ticks/$HZ.
. "$ROOT/bench/lib.sh"

now() { date +%s.%N; }

load_snapshot() { cut -d' ' -f1-3 /proc/loadavg; }

# The busiest processes over one second (other work on the machine skews the figures).
busiest() {
    if command -v top >/dev/null 2>&1; then
        top -b -n 2 -d 1 -w 200 | awk '/^top -/ { n++ }
            n == 2 && /^ *[0-9]+ / && k < 4 { printf "%s%s (nice %s) %s %%", (k++ ? ", " : ""), $12, $4, $9 }'
    else
        ps -eo pcpu=,ni=,comm= --sort=-pcpu | head -n 4 \
            | awk '{ printf "%s%s (nice %s) %s %% (lifetime)", (NR > 1 ? ", " : ""), $3, $2, $1 }'
    fi
}

# ------------------------------------------------------------------------------- build
# The commit being measured: read before the build, so a commit landing during the run
# does not relabel the figures.
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    COMMIT="$COMMIT (dirty: uncommitted changes)"
fi
[ -x "$PY_VENV" ] || { echo "tests/.venv is missing (tests/run.sh creates it)" >&2; exit 1; }
if [ -z "${SKIP_BUILD:-}" ]; then
    say "building release daemon and examples (target dir $TARGET_DIR)"
    cargo build --release --quiet --bin ocpp809 --example iec104_source --example iec104_sink \
        --example ocpp_loadgen --example ws_echo
fi
for bin in "$DAEMON_BIN" "$SOURCE_BIN" "$SINK_BIN" "$LOADGEN_BIN" "$ECHO_BIN"; do
    [ -x "$bin" ] || { echo "missing $bin (unset SKIP_BUILD)" >&2; exit 1; }
done

say "lib60870-C (tests/interop/iec101/build.sh) and bench/lib60870_server.c"
LIB_MASTER="$(tests/interop/iec101/build.sh)"
LIB_OUT="$(dirname "$LIB_MASTER")"
# The same layout and hash as build.sh: src-HASH/lib60870-C, build-HASH/src/liblib60870.a.
SRC_HASH="$(sha256sum "$LIB_OUT/sdist/c104-2.2.1.tar.gz" | cut -c1-16)"
LIBSRC="$LIB_OUT/src-$SRC_HASH/lib60870-C"
LIB_A="$LIB_OUT/build-$SRC_HASH/src/liblib60870.a"
[ -f "$LIB_A" ] || LIB_A="$(find "$LIB_OUT/build-$SRC_HASH" -name liblib60870.a | head -n1)"
[ -f "$LIB_A" ] || { echo "liblib60870.a not found under $LIB_OUT" >&2; exit 1; }
LIB_SERVER_BIN="$WORK/lib60870_server"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror \
    -I"$LIBSRC/src/inc/api" -I"$LIBSRC/src/hal/inc" -I"$LIBSRC/src/common/inc" -I"$LIBSRC/config" \
    -o "$LIB_SERVER_BIN" bench/lib60870_server.c "$LIB_A" -lpthread

# ------------------------------------------------------------------------- machine load
LOAD_BEFORE="$(load_snapshot)"
TOP_BEFORE="$(busiest)"
STAT_BEFORE="$(awk '/^cpu / { idle = $5 + $6; total = 0; for (i = 2; i <= 9; i++) total += $i; print idle, total }' /proc/stat)"
T_BEGIN="$(now)"

# ---------------------------------------------------------------------------- IEC 104
# iec_case NAME SERVER KIND: one server, the Rust sink; results in $WORK/NAME.{server,sink}.json
iec_case() {
    local name="$1" server="$2" kind="$3" port pid sink_pid rc=0 c1 c2 t1 t2
    port="$(free_port)"
    say "IEC 104 $kind: $server → iec104_sink (127.0.0.1:$port, ${WARMUP}s warm-up + ${MEASURE}s)"
    case "$server" in
    ocpp809)
        # --seconds is only a safety net: the source is stopped with SIGTERM below (background
        # jobs of a non-interactive shell ignore SIGINT).
        "$SOURCE_BIN" --listen "127.0.0.1:$port" --points "$POINTS" --kind "$kind" \
            --k "$K" --w "$W" --seconds "$((WARMUP + MEASURE + 60))" \
            >"$WORK/$name.server.json" 2>"$WORK/$name.server.log" &
        ;;
    lib60870)
        "$LIB_SERVER_BIN" --port "$port" --points "$POINTS" --kind "$kind" \
            --k "$K" --w "$W" --seconds "$((WARMUP + MEASURE + 60))" \
            >"$WORK/$name.server.json" 2>"$WORK/$name.server.log" &
        ;;
    esac
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" "$pid"
    c1="$(cpu_ticks "$pid")"
    t1="$(now)"
    # In the background + wait, so that Ctrl-C / SIGTERM reaches the trap at once.
    timeout "$((WARMUP + MEASURE + 30))" "$SINK_BIN" --connect "127.0.0.1:$port" --w "$W" \
        --warmup "$WARMUP" --seconds "$MEASURE" \
        >"$WORK/$name.sink.json" 2>"$WORK/$name.sink.log" &
    sink_pid=$!
    PIDS+=("$sink_pid")
    wait "$sink_pid" || rc=$?
    c2="$(cpu_ticks "$pid")"
    t2="$(now)"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
        echo "iec104_sink exited with $rc:" >&2
        cat "$WORK/$name.sink.log" "$WORK/$name.server.log" >&2 || true
        return 1
    fi
    awk -v c="$((c2 - c1))" -v hz="$HZ" -v t1="$t1" -v t2="$t2" \
        'BEGIN { printf "{\"server_cpu_pct\": %.0f}\n", 100 * c / hz / (t2 - t1) }' \
        >"$WORK/$name.cpu.json"
    cat "$WORK/$name.sink.json" "$WORK/$name.server.json" >&2
}

for round in $(seq 1 "$ROUNDS"); do
    for kind in float single; do
        iec_case "iec-$kind-ocpp809-$round" ocpp809 "$kind"
        iec_case "iec-$kind-lib60870-$round" lib60870 "$kind"
    done
done

# ------------------------------------------------------------------------------- OCPP
# start_ocpp TARGET NAME: sets TARGET_PID and URL
start_ocpp() {
    local target="$1" name="$2" port
    port="$(free_port)"
    case "$target" in
    ocpp809)
        local iec_port dir="$WORK/$name"
        iec_port="$(free_port)"
        mkdir -p "$dir/state"
        {
            cat <<EOF
[station]
state_dir = "$dir/state"

[iec104]
listen = "127.0.0.1:$iec_port"

$(ocpp_load_table "$port" false)

[mqtt]
enabled = false
EOF
            for i in $(seq 0 $((CHARGERS - 1))); do
                printf '\n[[charger]]\nid = "LG%d"\nioa_base = %d\nconnectors = 1\n' "$i" $((1000 + 100 * i))
            done
        } >"$dir/ocpp809.toml"
        "$DAEMON_BIN" run --config "$dir/ocpp809.toml" >"$dir/daemon.log" 2>&1 &
        ;;
    echo)
        # the ceiling: same tungstenite buffer sizes as ocpp809 (src/ocpp/server.rs)
        "$ECHO_BIN" --listen "127.0.0.1:$port" --read-buffer 4096 --write-buffer 4096 \
            >"$WORK/$name.log" 2>&1 &
        ;;
    echo128k)
        # informative: tungstenite's default 128 KiB buffers (the "echo" of bench/ocpp.sh)
        "$ECHO_BIN" --listen "127.0.0.1:$port" >"$WORK/$name.log" 2>&1 &
        ;;
    python)
        "$PY_VENV" bench/python_csms.py --port "$port" >"$WORK/$name.py.json" 2>"$WORK/$name.log" &
        ;;
    esac
    TARGET_PID=$!
    PIDS+=("$TARGET_PID")
    wait_port "$port" "$TARGET_PID"
    URL="ws://127.0.0.1:$port/ocpp"
}

ocpp_case() {
    local name="$1" target="$2" ready="$WORK/$1.ready" lg_pid c1 c2 rc=0
    start_ocpp "$target" "$name"
    say "OCPP 1.6: $CHARGERS chargers, max rate, ${OCPP_SECONDS}s → $target ($URL)"
    timeout 90 "$LOADGEN_BIN" --url "$URL" --chargers "$CHARGERS" --rate 0 \
        --seconds "$OCPP_SECONDS" --version 1.6 --connect-timeout 15 \
        --ready-file "$ready" --ready-pause 0.5 \
        >"$WORK/$name.lg.json" 2>"$WORK/$name.lg.log" &
    lg_pid=$!
    PIDS+=("$lg_pid")
    while [ ! -e "$ready" ] && kill -0 "$lg_pid" 2>/dev/null; do
        sleep 0.05
    done
    c1="$(cpu_ticks "$TARGET_PID")"
    wait "$lg_pid" || rc=$?
    c2="$(cpu_ticks "$TARGET_PID")"
    kill -TERM "$TARGET_PID" 2>/dev/null || true
    wait "$TARGET_PID" 2>/dev/null || true
    if [ "$rc" != 0 ]; then
        echo "load generator failed ($rc):" >&2
        cat "$WORK/$name.lg.log" >&2
        return 1
    fi
    jq -c --arg t "$target" --argjson cpu "$((c2 - c1))" --argjson hz "$HZ" \
        '. + {target: $t, server_cpu_s: ($cpu / $hz),
              server_cpu_us_per_call: (if .calls_answered > 0
                  then ($cpu / $hz * 1e6 / .calls_answered * 10 | round) / 10 else null end)}' \
        "$WORK/$name.lg.json" >"$WORK/$name.json"
    cat "$WORK/$name.json" >&2
}

for round in $(seq 1 "$ROUNDS"); do
    ocpp_case "ocpp-ocpp809-$round" ocpp809
    ocpp_case "ocpp-echo-$round" echo
    ocpp_case "ocpp-python-$round" python
    ocpp_case "ocpp-echo128k-$round" echo128k
done

T_END="$(now)"
STAT_AFTER="$(awk '/^cpu / { idle = $5 + $6; total = 0; for (i = 2; i <= 9; i++) total += $i; print idle, total }' /proc/stat)"
LOAD_AFTER="$(load_snapshot)"
TOP_AFTER="$(busiest)"

# ------------------------------------------------------------------------------ report
export WORK ROUNDS WARMUP MEASURE POINTS K W CHARGERS OCPP_SECONDS COMMIT
export LOAD_BEFORE LOAD_AFTER TOP_BEFORE TOP_AFTER STAT_BEFORE STAT_AFTER T_BEGIN T_END
export DATE_UTC="$(date -u +'%Y-%m-%d %H:%M UTC')"
export NPROC="$(nproc)"
export CPU_MODEL="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
export MEM_GB="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
export KERNEL="$(uname -sr)"
export RUSTC="$(rustc --version)"
export GCC="$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)"
export PY_FACTS="$("$PY_VENV" -c 'import importlib.metadata as m, platform
print("Python %s, ocpp %s, websockets %s" % (platform.python_version(), m.version("ocpp"), m.version("websockets")))')"
export CMDLINE

say "report"
if [ -n "${NO_WRITE:-}" ]; then
    python3 bench/compare_report.py
else
    python3 bench/compare_report.py --write "$BENCHMARKS_MD"
fi
