"""Report of bench/compare.sh: reads the JSON results in $WORK (and the facts the script
exports), prints Markdown, and with --write FILE rewrites the section between the
compare-bench markers (appended when absent). Standard library only."""

import json
import os
import statistics
import sys
from pathlib import Path

BEGIN = "<!-- compare-bench:begin (written by bench/compare.sh; edits inside are overwritten) -->"
END = "<!-- compare-bench:end -->"

env = os.environ
work = Path(env["WORK"])
rounds = int(env["ROUNDS"])


def load(name):
    path = work / name
    text = path.read_text().strip() if path.exists() else ""
    if not text:
        return {}
    return json.loads(text.splitlines()[-1])


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    if digits == 0:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


# ------------------------------------------------------------------------------ IEC 104
iec = {}
for kind in ("float", "single"):
    for server in ("ocpp809", "lib60870"):
        runs = []
        for r in range(1, rounds + 1):
            base = f"iec-{kind}-{server}-{r}"
            sink = load(f"{base}.sink.json")
            srv = load(f"{base}.server.json")
            cpu = load(f"{base}.cpu.json")
            if server == "ocpp809":
                lost = srv.get("events_dropped")
                near_full = None
            else:
                enq, queued = srv.get("enqueued_at_close", -1), srv.get("queued_at_close", -1)
                lost = (
                    max(0, enq - queued - sink.get("asdus_total", 0))
                    if enq >= 0 and queued >= 0
                    else None
                )
                near_full = srv.get("enqueued_near_full")
            runs.append(
                {
                    "asdus": sink.get("asdus_per_s"),
                    "objects": sink.get("objects_per_s"),
                    "cpu": cpu.get("server_cpu_pct"),
                    "lost": lost,
                    "near_full": near_full,
                }
            )
        iec[(kind, server)] = {
            "asdus": mean([x["asdus"] for x in runs]),
            "objects": mean([x["objects"] for x in runs]),
            "cpu": mean([x["cpu"] for x in runs]),
            "lost": sum(x["lost"] for x in runs) if all(x["lost"] is not None for x in runs) else None,
            "near_full": (
                sum(x["near_full"] for x in runs)
                if all(x["near_full"] is not None for x in runs)
                else None
            ),
            "runs": [x["asdus"] for x in runs],
        }

# --------------------------------------------------------------------------------- OCPP
ocpp = {}
for target in ("ocpp809", "echo", "python", "echo128k"):
    runs = [load(f"ocpp-{target}-{r}.json") for r in range(1, rounds + 1)]
    errors = {}
    for run in runs:
        for key, value in run.get("errors", {}).items():
            errors[key] = errors.get(key, 0) + value
    ocpp[target] = {
        "rate": mean([x.get("calls_per_s") for x in runs]),
        "p50": mean([x.get("p50_ms") for x in runs]),
        "p99": mean([x.get("p99_ms") for x in runs]),
        "cpu_us": mean([x.get("server_cpu_us_per_call") for x in runs]),
        "sessions": min((x.get("sessions_established", 0) for x in runs), default=0),
        "errors": ", ".join(f"{k} {v}" for k, v in errors.items() if v) or "0",
        "runs": [x.get("calls_per_s") for x in runs],
    }

# ------------------------------------------------------------------------------- report
def runs_text(values):
    return " / ".join(fmt(v) for v in values)


def verdict(value, goal):
    if value is None:
        return "n/a"
    return "met" if value >= goal else "**NOT met**"


idle0, total0 = map(int, env["STAT_BEFORE"].split())
idle1, total1 = map(int, env["STAT_AFTER"].split())
busy = 100 * (1 - (idle1 - idle0) / max(1, total1 - total0))
elapsed = float(env["T_END"]) - float(env["T_BEGIN"])

f_ours, f_ref = iec[("float", "ocpp809")], iec[("float", "lib60870")]
s_ours, s_ref = iec[("single", "ocpp809")], iec[("single", "lib60870")]
o, e, p = ocpp["ocpp809"], ocpp["echo"], ocpp["python"]
r_float = ratio(f_ours["asdus"], f_ref["asdus"])
r_float_obj = ratio(f_ours["objects"], f_ref["objects"])
r_single = ratio(s_ours["asdus"], s_ref["asdus"])
r_echo = ratio(o["rate"], e["rate"])
r_echo_cpu = ratio(e["cpu_us"], o["cpu_us"])
r_py = ratio(o["rate"], p["rate"])

P, WU, MS, K, W = env["POINTS"], env["WARMUP"], env["MEASURE"], env["K"], env["W"]
CH, OS = env["CHARGERS"], env["OCPP_SECONDS"]

lines = []
add = lines.append
add("## Side by side — latest run of `bench/compare.sh`")
add("")
add(f"- Date: {env['DATE_UTC']}; commit `{env['COMMIT']}`")
add(
    f"- Machine: {env['NPROC']} CPUs (`nproc`), {env['CPU_MODEL']}, {env['MEM_GB']} GB RAM, "
    f"{env['KERNEL']}; {env['RUSTC']}; gcc {env['GCC']}; {env['PY_FACTS']}"
)
add(
    f"- Machine load: load average {env['LOAD_BEFORE']} before, {env['LOAD_AFTER']} after; "
    f"all CPUs {busy:.0f} % busy over the {elapsed:.0f} s run (benchmark processes included); "
    f"busiest processes over one second before: {env['TOP_BEFORE']}; after: {env['TOP_AFTER']}"
)
add(
    f"- Everything on loopback, servers and clients share the {env['NPROC']} CPUs; every server "
    f"fresh per case; cases alternate ocpp809 / reference, {rounds} round(s); figures are the "
    "mean over rounds (single runs in the last column)."
)
add("")
add("Command (from the repository root; builds what it needs, picks free ports):")
add("")
add("```sh")
add(env["CMDLINE"])
add("```")
add("")
add("which runs, per case (PORT picked free, binaries from `cargo build --release`):")
add("")
add("```sh")
add(f"iec104_source --listen 127.0.0.1:PORT --points {P} --kind float|single --k {K} --w {W}")
add(
    f"lib60870_server --port PORT --points {P} --kind float|single --k {K} --w {W}"
    "   # gcc -O2 against lib60870-C; queue 2000, high water 1000"
)
add(f"iec104_sink --connect 127.0.0.1:PORT --w {W} --warmup {WU} --seconds {MS}")
add(
    f"ocpp809 run --config TMP.toml   # {CH} [[charger]] LG0.., accept_unknown = false, "
    "[mqtt] enabled = false, temporary state_dir"
)
add("ws_echo --listen 127.0.0.1:PORT --read-buffer 4096 --write-buffer 4096   # and without the buffer flags")
add("tests/.venv/bin/python bench/python_csms.py --port PORT")
add(f"ocpp_loadgen --url ws://127.0.0.1:PORT/ocpp --chargers {CH} --rate 0 --seconds {OS} --version 1.6")
add("```")
add("")
add("### Summary")
add("")
add("| comparison | ocpp809 | reference | ratio | goal |")
add("|---|---:|---:|---:|---|")
add(
    f"| IEC 104 short floats (M_ME_TF_1), {P} points, ASDUs/s to one master: ocpp809 vs lib60870-C "
    f"| {fmt(f_ours['asdus'])} | {fmt(f_ref['asdus'])} | {fmt(r_float, 2)}× "
    f"| ≥ 1.0×: {verdict(r_float, 1.0)} |"
)
add(
    f"| same, information objects/s | {fmt(f_ours['objects'])} | {fmt(f_ref['objects'])} "
    f"| {fmt(r_float_obj, 2)}× | — |"
)
add(
    f"| IEC 104 single points (M_SP_TB_1 events, 1 object/ASDU), ASDUs/s: ocpp809 vs lib60870-C "
    f"| {fmt(s_ours['asdus'])} | {fmt(s_ref['asdus'])} | {fmt(r_single, 2)}× | — |"
)
add(
    f"| OCPP 1.6 MeterValues/s, {CH} chargers: ocpp809 vs raw tokio-tungstenite echo (ceiling) "
    f"| {fmt(o['rate'])} | {fmt(e['rate'])} | {fmt(r_echo, 2)}× | ≥ 0.5×: {verdict(r_echo, 0.5)} |"
)
add(
    f"| same, server CPU µs per MeterValues (echo ÷ ocpp809: share of the ceiling per CPU) "
    f"| {fmt(o['cpu_us'], 1)} | {fmt(e['cpu_us'], 1)} | {fmt(r_echo_cpu, 2)}× | — |"
)
add(
    f"| OCPP 1.6 MeterValues/s, {CH} chargers: ocpp809 vs Python `ocpp` CSMS (reference) "
    f"| {fmt(o['rate'])} | {fmt(p['rate'])} | {fmt(r_py, 1)}× | — |"
)
add("")
add(
    f"### IEC 104: the same master (`examples/iec104_sink.rs`, S-frame every w = {W}), k = {K}, "
    f"{P} points, {WU} s warm-up then {MS} s counted"
)
add("")
add(
    "| load | server | ASDUs/s | objects/s | objects/ASDU | server CPU % | lost | ASDUs/s per run |"
)
add("|---|---|---:|---:|---:|---:|---:|---|")
for kind, label in (
    ("float", "short floats M_ME_TF_1, packed"),
    ("single", "single points M_SP_TB_1, 1/ASDU"),
):
    for server, slabel in (
        ("ocpp809", "ocpp809 (`examples/iec104_source.rs`)"),
        ("lib60870", "lib60870-C (`bench/lib60870_server.c`)"),
    ):
        x = iec[(kind, server)]
        per = ratio(x["objects"], x["asdus"])
        lost = fmt(x["lost"]) if x["lost"] is not None else "n/a"
        if server == "lib60870" and x["near_full"]:
            lost += f" (+{x['near_full']} enqueued near full)"
        add(
            f"| {label} | {slabel} | {fmt(x['asdus'])} | {fmt(x['objects'])} | {fmt(per, 1)} "
            f"| {fmt(x['cpu'])} | {lost} | {runs_text(x['runs'])} |"
        )
add("")
add(
    "Server CPU % = utime + stime of the server process over the master's run (warm-up "
    "included) ÷ wall time; 100 % = one CPU. Lost: ocpp809 = events dropped by the station "
    "(measurements are coalesced per point by design; the producer stays below half the point "
    "count, so every update is sent); lib60870 = ASDUs enqueued − still queued at disconnect − "
    "received by the master (its queue overwrites the oldest entries when full; the producer "
    "only enqueues below half the queue, so this must be 0)."
)
add("")
add(
    f"### OCPP 1.6 ingest: the same load generator (`examples/ocpp_loadgen.rs`), {CH} chargers, "
    f"one outstanding CALL each, {OS} s counted"
)
add("")
add(
    "| server | sessions | MeterValues/s | p50 ms | p99 ms | server CPU µs/call | errors | MeterValues/s per run |"
)
add("|---|---:|---:|---:|---:|---:|---|---|")
for target, label in (
    ("ocpp809", f"ocpp809 (release daemon, {CH} `[[charger]]`s, MQTT off)"),
    ("echo", "`examples/ws_echo.rs` (tokio-tungstenite, 4 KiB buffers) — ceiling"),
    ("python", "`bench/python_csms.py` (Python `ocpp` on `websockets`)"),
    ("echo128k", "informative: `ws_echo` with tungstenite's default 128 KiB buffers (as in `bench/ocpp.sh`)"),
):
    x = ocpp[target]
    add(
        f"| {label} | {x['sessions']} | {fmt(x['rate'])} | {fmt(x['p50'], 2)} | {fmt(x['p99'], 2)} "
        f"| {fmt(x['cpu_us'], 1)} | {x['errors']} | {runs_text(x['runs'])} |"
    )
add("")
add(
    "Goals (issue): IEC 104 ≥ 1.0× lib60870-C; OCPP ingest ≥ 0.5× the echo ceiling. "
    f"IEC 104: {verdict(r_float, 1.0)} ({fmt(r_float, 2)}×). "
    f"OCPP: {verdict(r_echo, 0.5)} ({fmt(r_echo, 2)}×)."
)

report = "\n".join(lines) + "\n"
print(report)

if len(sys.argv) == 3 and sys.argv[1] == "--write":
    path = Path(sys.argv[2])
    text = path.read_text()
    block = BEGIN + "\n" + report.rstrip("\n") + "\n" + END
    i, j = text.find(BEGIN.split(" (")[0]), text.find(END)
    if i >= 0 and j > i:
        text = text[:i] + block + text[j + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote {path}", file=sys.stderr)
elif len(sys.argv) != 1:
    sys.exit("usage: compare_report.py [--write BENCHMARKS.md]")
