#!/usr/bin/env python3
"""Turns the results of bench/iec104.sh into Markdown and (with --write FILE) puts it into
BENCHMARKS.md between the iec104-bench markers, replacing the previous run.

Usage: iec104_report.py RESULTS_DIR [--write BENCHMARKS.md]
Machine facts and parameters come from the environment that bench/iec104.sh exports.
"""

import argparse
import datetime
import json
import os
import re
import sys
from pathlib import Path

BEGIN = "<!-- iec104-bench:begin (written by bench/iec104.sh; edits inside are overwritten) -->"
END = "<!-- iec104-bench:end -->"
TARGET = 50_000

CASES = [
    ("single", "c104", "c104 2.2.1, Python `on_receive_raw` counting every frame"),
    ("single", "c104-wire", "c104 2.2.1, no Python callback (socket octets ÷ 23)"),
    ("single", "rust", "Rust sink (`examples/iec104_sink.rs`)"),
    ("float", "c104", "c104 2.2.1, Python `on_receive_raw` counting every frame"),
    ("float", "rust", "Rust sink (`examples/iec104_sink.rs`)"),
]
KIND_LABEL = {
    "single": "single points (M_SP_TB_1 events, 1 object/ASDU)",
    "float": "short floats (M_ME_TF_1 measurements, packed)",
}


def load(path: Path):
    try:
        lines = [l for l in path.read_text().splitlines() if l.strip().startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def fmt(n) -> str:
    return "–" if n is None else f"{n:,.0f}".replace(",", "\u202f")


def criterion_rows(text: str):
    """[name, time, throughput] (the point estimates) from criterion's text output."""
    rows, name = [], None
    for line in text.splitlines():
        # The name stands alone on its line, or before `time:` when it is short.
        head, _, rest = line.partition("time:")
        if line and not line[0].isspace() and not line.startswith(("Found", "Benchmarking")):
            name = head.strip()
        m = re.match(r"\s*\[(\S+ \S+) (\S+ \S+) (\S+ \S+)\]", rest)
        if rest and m and name:
            rows.append([name, m.group(2), None])
            continue
        m = re.match(r"^\s+thrpt:\s+\[(\S+ \S+) (\S+ \S+) (\S+ \S+)\]", line)
        if m and rows and rows[-1][2] is None:
            rows[-1][2] = m.group(2)
    return rows


def report(results: Path) -> tuple[str, str]:
    env = os.environ.get
    warmup, measure = env("WARMUP", "?"), env("MEASURE", "?")
    points, k, w = env("POINTS", "1000"), env("K", "12"), env("W", "8")
    out = []
    out.append("## IEC 104 spontaneous throughput — latest run of `bench/iec104.sh`\n")
    out.append(f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
               f"commit `{env('COMMIT', 'unknown')}`")
    out.append(f"- Machine: {env('NPROC', '?')} CPUs (`nproc`), {env('CPU_MODEL', '?')}, "
               f"{env('KERNEL', '?')}; {env('RUSTC', '?')}; c104 {env('C104_VERSION', '?')} "
               f"on Python {env('PY_VERSION', '?')}")
    out.append(f"- Load: {points} points changed round-robin by `examples/iec104_source.rs` "
               f"(the real `iec104::server::serve`), k={k}, w={w}, loopback; "
               f"{warmup} s warm-up, then {measure} s measured at the master")
    out.append("")
    out.append("Command (from the repository root, everything included):\n")
    out.append("```sh\nbench/iec104.sh\n```\n")
    out.append("which runs, per case (PORT picked free):\n")
    out.append("```sh\n"
               f"target/release/examples/iec104_source --listen 127.0.0.1:PORT --points {points} "
               f"--kind single|float --k {k} --w {w}\n"
               f"bench/.venv/bin/python bench/iec104_c104_master.py --connect 127.0.0.1:PORT "
               f"--warmup {warmup} --seconds {measure} [--count wire --frame-len 23]\n"
               f"target/release/examples/iec104_sink --connect 127.0.0.1:PORT --w {w} "
               f"--warmup {warmup} --seconds {measure}\n"
               f"{env('CRITERION_CMD', 'cargo bench --bench asdu')}\n"
               "```\n")
    out.append("| load | master | ASDUs/s | objects/s | objects/ASDU | events dropped |")
    out.append("|---|---|---:|---:|---:|---:|")
    c104_single = None
    for kind, master, label in CASES:
        m = load(results / f"{kind}-{master}.master.json")
        s = load(results / f"{kind}-{master}.source.json")
        if m is None and s is None:
            continue
        asdus = m.get("asdus_per_s") if m else None
        objects = m.get("objects_per_s") if m else None
        per = f"{objects / asdus:.1f}" if asdus and objects else "–"
        dropped = s.get("events_dropped") if s else None
        if (kind, master) == ("single", "c104"):
            c104_single = asdus
        out.append(f"| {KIND_LABEL[kind]} | {label} | {fmt(asdus)} | {fmt(objects)} | {per} "
                   f"| {fmt(dropped)} |")
    out.append("")
    if c104_single is not None:
        verdict = "met" if c104_single >= TARGET else "**not met**"
        out.append(f"Target ≥ {fmt(TARGET)} ASDUs/s delivered to a c104 master (single points, "
                   f"counted in Python): {verdict} ({fmt(c104_single)} ASDUs/s).\n")

    crit = results / "criterion.txt"
    if crit.exists():
        rows = criterion_rows(crit.read_text())
        if rows:
            out.append("Criterion, `benches/asdu.rs` (point estimate of the time per iteration; one "
                       "element = one ASDU):\n")
            out.append("| benchmark | time | throughput |")
            out.append("|---|---:|---:|")
            for name, time, thrpt in rows:
                out.append(f"| {name} | {time} | {thrpt or '–'} |")
            out.append("")
    section = "\n".join(out).rstrip() + "\n"
    return section, f"{BEGIN}\n{section}{END}"


def write(md: Path, block: str) -> None:
    text = md.read_text() if md.exists() else "# Benchmarks\n"
    start, end = text.find("<!-- iec104-bench:begin"), text.find(END)
    if start != -1 and end != -1 and end > start:
        text = text[:start] + block + text[end + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    md.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--write", type=Path, help="BENCHMARKS.md to update")
    args = ap.parse_args()
    section, block = report(args.results)
    print(section)
    if args.write:
        write(args.write, block)
        print(f"updated {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
