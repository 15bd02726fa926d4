#!/usr/bin/env bash
# OCPP ingest benchmark of the CSMS side (see BENCHMARKS.md, "OCPP ingest").
#
# Runs examples/ocpp_loadgen.rs against
#   - ocpp809 itself (release build, temporary configuration: loopback ports picked free,
#     [mqtt] enabled = false, temporary state_dir, accept_unknown = true), and
#   - examples/ws_echo.rs, a bare tokio-tungstenite server answering every CALL with
#     [3,id,{}] after a serde_json parse: the ceiling,
# for
#   (a) 100 chargers, one outstanding CALL each, as fast as possible (ingest rate),
#       OCPP 1.6 and 2.0.1;
#   (b) 10,000 chargers at 0.1 MeterValues/s each: server RSS (VmRSS) before and after the
#       sessions are up → KB per session;
#   (c) 1,000 chargers at 1 MeterValues/s with legacy "14.4kW" string values: latency.
# Each target process is fresh per case. Load generator and server share the machine's cores.
# Prints a Markdown report and writes it into BENCHMARKS.md between the ocpp-bench markers.
#
# Environment: MEASURE (s per case, default 10), NO_WRITE=1 (do not touch BENCHMARKS.md),
# BENCHMARKS_MD (default <repo>/BENCHMARKS.md), SKIP_BUILD=1.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MEASURE="${MEASURE:-10}"
BENCHMARKS_MD="${BENCHMARKS_MD:-$ROOT/BENCHMARKS.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DAEMON_BIN="$TARGET_DIR/release/ocpp809"
LOADGEN_BIN="$TARGET_DIR/release/examples/ocpp_loadgen"
ECHO_BIN="$TARGET_DIR/release/examples/ws_echo"

# 10,000 sessions need 10,000+ descriptors in the server and in the load generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    echo "warning: ulimit -n is $(ulimit -n); the 10,000-session case needs > 10,100" >&2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ocpp-bench.XXXXXX")"
# Readiness waits are 5 s here.
WAIT_PORT_TRIES=100
# Shared helpers: cleanup of $PIDS and $WORK, say, free_port, wait_port, cpu_ticks/$HZ.
. "$ROOT/bench/lib.sh"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# ------------------------------------------------------------------------------- build
if [ -z "${SKIP_BUILD:-}" ]; then
    say "building release daemon and examples"
    cargo build --release --quiet --bin ocpp809 --examples
fi

# ------------------------------------------------------------------------------ targets
# start_target TARGET NAME: starts ocpp809 or ws_echo; sets TARGET_PID and URL.
start_target() {
    local target="$1" name="$2" port
    port="$(free_port)"
    case "$target" in
    ocpp809)
        local iec_port dir="$WORK/$name"
        iec_port="$(free_port)"
        mkdir -p "$dir/state"
        cat >"$dir/ocpp809.toml" <<EOF
[station]
state_dir = "$dir/state"

[iec104]
listen = "127.0.0.1:$iec_port"

$(ocpp_load_table "$port" true)

[mqtt]
enabled = false
EOF
        "$DAEMON_BIN" run --config "$dir/ocpp809.toml" >"$dir/daemon.log" 2>&1 &
        ;;
    echo)
        "$ECHO_BIN" --listen "127.0.0.1:$port" >"$WORK/$name.echo.log" 2>&1 &
        ;;
    echo4k)
        "$ECHO_BIN" --listen "127.0.0.1:$port" --read-buffer 4096 --write-buffer 4096 \
            >"$WORK/$name.echo.log" 2>&1 &
        ;;
    esac
    TARGET_PID=$!
    PIDS+=("$TARGET_PID")
    wait_port "$port"
    URL="ws://127.0.0.1:$port/ocpp"
}

stop_target() {
    kill "$TARGET_PID" 2>/dev/null || true
    wait "$TARGET_PID" 2>/dev/null || true
}

# run_case NAME TARGET CHARGERS RATE VERSION [--legacy]: results in $WORK/NAME.json, with
# the target's VmRSS before the sessions, once they are up, and at the end.
run_case() {
    local name="$1" target="$2" chargers="$3" rate="$4" version="$5" extra="${6:-}"
    local ready="$WORK/$name.ready" lg_pid rss0 rss1 rss2 cpu1 cpu2 rc=0
    start_target "$target" "$name"
    sleep 0.3
    rss0="$(rss_kb "$TARGET_PID")"
    say "$name: $chargers chargers, rate $rate/s, OCPP $version $extra → $target ($URL)"
    # shellcheck disable=SC2086 # $extra is one optional flag
    timeout 60 "$LOADGEN_BIN" --url "$URL" --chargers "$chargers" --rate "$rate" \
        --seconds "$MEASURE" --version "$version" --connect-timeout 15 \
        --ready-file "$ready" --ready-pause 1 $extra \
        >"$WORK/$name.lg.json" 2>"$WORK/$name.lg.log" &
    lg_pid=$!
    PIDS+=("$lg_pid")
    while [ ! -e "$ready" ] && kill -0 "$lg_pid" 2>/dev/null; do
        sleep 0.05
    done
    sleep 0.8
    rss1="$(rss_kb "$TARGET_PID")"
    cpu1="$(cpu_ticks "$TARGET_PID")"
    wait "$lg_pid" || rc=$?
    cpu2="$(cpu_ticks "$TARGET_PID")"
    rss2="$(rss_kb "$TARGET_PID")"
    stop_target
    if [ "$rc" != 0 ]; then
        echo "load generator failed ($rc):" >&2
        cat "$WORK/$name.lg.log" >&2
        return 1
    fi
    jq -c --arg t "$target" --argjson r0 "$rss0" --argjson r1 "$rss1" --argjson r2 "$rss2" \
        --argjson cpu "$((cpu2 - cpu1))" --argjson hz "$HZ" \
        '. + {target: $t, rss_before_kb: $r0, rss_up_kb: $r1, rss_end_kb: $r2,
              server_cpu_s: ($cpu / $hz),
              server_cpu_us_per_call: (if .calls_answered > 0
                  then ($cpu / $hz * 1e6 / .calls_answered * 10 | round) / 10 else null end),
              kb_per_session: (if .sessions_established > 0
                  then (($r1 - $r0) / .sessions_established * 100 | round) / 100 else null end)}' \
        "$WORK/$name.lg.json" >"$WORK/$name.json"
    cat "$WORK/$name.json" >&2
}

CASES=(
    "a16 100 0 1.6"
    "a201 100 0 2.0.1"
    "b 10000 0.1 1.6"
    "c 1000 1 1.6 --legacy"
)
for spec in "${CASES[@]}"; do
    # shellcheck disable=SC2086 # word splitting of the case spec is intended
    set -- $spec
    for target in ocpp809 echo; do
        run_case "$1-$target" "$target" "$2" "$3" "$4" "${5:-}"
    done
    if [ "$1" = a16 ] || [ "$1" = b ]; then
        run_case "$1-echo4k" echo4k "$2" "$3" "$4"
    fi
done

# ------------------------------------------------------------------------------ report
get() { jq -r "$2" "$WORK/$1.json"; }
ratio() {
    # ratio NUM DEN (percent)
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "n/a" }'
}
errors() { jq -r '[.errors | to_entries[] | select(.value > 0) | "\(.key) \(.value)"] | join(", ") | if . == "" then "0" else . end' "$WORK/$1.json"; }

machine_facts

row() {
    # row CASE LABEL
    local o="$1-ocpp809" e="$1-echo"
    printf '| %s | %s / %s | %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s |\n' \
        "$2" \
        "$(get "$o" .sessions_established)" "$(get "$e" .sessions_established)" \
        "$(get "$o" .calls_per_s)" "$(get "$e" .calls_per_s)" \
        "$(ratio "$(get "$o" .calls_per_s)" "$(get "$e" .calls_per_s)")" \
        "$(get "$o" .p50_ms)" "$(get "$e" .p50_ms)" \
        "$(get "$o" .p99_ms)" "$(get "$e" .p99_ms)" \
        "$(get "$o" .server_cpu_us_per_call)" "$(get "$e" .server_cpu_us_per_call)" \
        "$(get "$o" .kb_per_session)" "$(get "$e" .kb_per_session)" \
        "$(errors "$o") / $(errors "$e")"
}

REPORT="$WORK/report.md"
{
    echo "## OCPP ingest — latest run of \`bench/ocpp.sh\`"
    echo
    echo "- Date: $(date -u +'%Y-%m-%d %H:%M UTC'), commit $COMMIT"
    echo "- Machine: $CPU, $CORES cores, ${MEM_GB} GB RAM, Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2)"
    echo "- Loopback; load generator and server share the $CORES cores (both Tokio multi-thread, one worker per core)."
    echo "- Server ocpp809: release build, \`[mqtt] enabled = false\`, temporary \`state_dir\`, unknown chargers accepted (each gets an IOA block), default log level (info)."
    echo "- Ceiling: \`examples/ws_echo.rs\` (tokio-tungstenite, serde_json parse, \`[3,id,{}]\`)."
    echo "- Each case: fresh server, sessions opened 200 at a time, BootNotification, then ${MEASURE} s of MeterValues (one outstanding CALL per charger); latency = CALL sent → CALLRESULT read."
    echo "- KB/session = (server VmRSS with the sessions up − VmRSS before) / sessions; meaningful in (b)."
    echo
    echo "Commands (ports picked free):"
    echo
    echo '```'
    echo "ocpp_loadgen --url ws://127.0.0.1:PORT/ocpp --chargers 100   --rate 0   --seconds $MEASURE --version 1.6     # (a)"
    echo "ocpp_loadgen --url ws://127.0.0.1:PORT/ocpp --chargers 100   --rate 0   --seconds $MEASURE --version 2.0.1   # (a)"
    echo "ocpp_loadgen --url ws://127.0.0.1:PORT/ocpp --chargers 10000 --rate 0.1 --seconds $MEASURE --version 1.6     # (b)"
    echo "ocpp_loadgen --url ws://127.0.0.1:PORT/ocpp --chargers 1000  --rate 1   --seconds $MEASURE --version 1.6 --legacy  # (c)"
    echo '```'
    echo
    echo "Figures are ocpp809 / echo."
    echo
    echo "| case | sessions | MeterValues/s ocpp809 | echo | ratio | p50 ms | p99 ms | server CPU µs/call | KB/session | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    row a16 "(a) 100 chargers, max rate, 1.6"
    row a201 "(a) 100 chargers, max rate, 2.0.1"
    row b "(b) 10,000 chargers, 0.1/s each, 1.6"
    row c "(c) 1,000 chargers, 1/s each, 1.6 legacy \"14.4kW\""
    echo
    echo "Ratio = ocpp809 / echo MeterValues per second. Server CPU µs/call = (utime + stime of the server during the MeterValues phase) / calls answered: what one MeterValues costs the server, independent of the load generator's share of the cores."
    echo
    echo "ws_echo with tungstenite \`read_buffer_size\` / \`write_buffer_size\` 4096 instead of the default 128 KiB (tungstenite zeroes the whole read buffer before every read, and those pages stay resident): (a) 1.6 $(get a16-echo4k .calls_per_s) MeterValues/s at $(get a16-echo4k .server_cpu_us_per_call) server CPU µs/call, p50/p99 $(get a16-echo4k .p50_ms) / $(get a16-echo4k .p99_ms) ms; (b) $(get b-echo4k .sessions_established) sessions at $(get b-echo4k .kb_per_session) KB/session, p99 $(get b-echo4k .p99_ms) ms. The load generator itself always uses 4096."
    echo
    echo "Server VmRSS (kB) before / sessions up / end: (b) ocpp809 $(get b-ocpp809 .rss_before_kb) / $(get b-ocpp809 .rss_up_kb) / $(get b-ocpp809 .rss_end_kb), echo $(get b-echo .rss_before_kb) / $(get b-echo .rss_up_kb) / $(get b-echo .rss_end_kb); session set-up (connect + BootNotification) for 10,000: ocpp809 $(get b-ocpp809 .connect_s) s, echo $(get b-echo .connect_s) s."
    echo
    echo "Targets (issue): 10,000 concurrent sessions, ≥ 50,000 MeterValues/s, < 20 KB per idle session."
} >"$REPORT"

cat "$REPORT"

write_report_block ocpp-bench "$REPORT"
