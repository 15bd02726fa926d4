#!/usr/bin/env python3
"""Derives the fuzz seed corpora (fuzz/seeds/<target>/) from the test vectors.

Python 3 standard library only; run from anywhere:

    python3 fuzz/seeds.py            # rewrites fuzz/seeds/*/ (deterministic)

Sources (see docs/fuzzing.md):
  asdu_decode   byte arrays in tests/asdu_vectors.rs (incl. `cat(&[...])` with the CP56Time2a
                constants), the ASDUs inside the IEC 104 / IEC 101 frames below
  apdu_decode   byte arrays in tests/iec104_link.rs, every ASDU vector wrapped in an I-frame,
                S/U frames and a few multi-frame streams
  ft12_decode   byte arrays in tests/iec101_link.rs and src/iec101/ft12.rs, ASDU vectors
                wrapped in FT1.2 variable frames (address size 1 and 2) and fixed frames
  ocpp_frame    JSON frames (raw strings) in tests/ocpp_framing.rs and the raw frames sent
                by tests/interop/test_ocpp.py
  ocpp_sanitize the lenient value texts of tests/ocpp_dialects.rs and src/ocpp/sanitize/
                (value, or value NUL unit, as the target splits them), timestamps
  config_parse  src/default_config.toml, the ```toml blocks of docs/*.md, the TOML raw
                strings of tests/config.rs
  relay_frames  relay scripts (charger/upstream frames, upstream up/down, time, limits) of a
                live session, an outage with replay and a 2.0.1 transaction, plus every
                ocpp_frame seed sent from both sides
Each seed is one file named by the SHA-1 of its content (like libFuzzer's corpus files).
"""

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds"
MAX_SEEDS = 400          # per target, to stay commit-sized
MAX_SEED_LEN = 16 * 1024  # octets

HEX_ARRAY = re.compile(r"\[\s*((?:0x[0-9A-Fa-f]{1,2}\s*,\s*)*0x[0-9A-Fa-f]{1,2})\s*,?\s*\]")
HEX_BYTE = re.compile(r"0x([0-9A-Fa-f]{1,2})")


def read(rel):
    p = ROOT / rel
    return p.read_text(encoding="utf-8") if p.exists() else ""


def hex_arrays(text):
    """Every `[0x.., 0x.., ...]` literal, in order of appearance."""
    return [bytes(int(b, 16) for b in HEX_BYTE.findall(m.group(1))) for m in HEX_ARRAY.finditer(text)]


def byte_consts(text):
    """`const NAME: [u8; N] = [...]` → {NAME: bytes}."""
    out = {}
    for m in re.finditer(r"const\s+([A-Z0-9_]+)\s*:\s*\[u8;\s*\d+\]\s*=\s*(\[[^\]]*\])", text):
        arrs = hex_arrays(m.group(2))
        if arrs:
            out[m.group(1)] = arrs[0]
    return out


def cat_calls(text, consts):
    """`cat(&[&[0x..], &T1_OCTETS, ...])` → the concatenated octets."""
    out = []
    for m in re.finditer(r"cat\(\s*&\[", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"[": 1, "]": -1}.get(text[i], 0)
            i += 1
        body = text[m.end():i - 1]
        parts = re.findall(r"\[[^\[\]]*\]|[A-Z][A-Z0-9_]+", body)
        seq = b""
        for p in parts:
            if p.startswith("["):
                arrs = hex_arrays(p)
                if not arrs:
                    seq = None
                    break
                seq += arrs[0]
            elif p in consts:
                seq += consts[p]
            else:
                seq = None
                break
        if seq:
            out.append(seq)
    return out


def rust_vectors(rel):
    text = read(rel)
    consts = byte_consts(text)
    return hex_arrays(text) + cat_calls(text, consts)


def rust_raw_strings(text):
    """Contents of r#"..."# and r"..." literals."""
    out = [m.group(1) for m in re.finditer(r'r#"(.*?)"#', text, re.S)]
    out += [m.group(1) for m in re.finditer(r'(?<![#\w])r"(.*?)"', text, re.S)]
    return out


def rust_strings(text):
    """Contents of ordinary "..." literals (escapes \\" \\\\ \\n \\t \\0 handled)."""
    out = []
    for m in re.finditer(r'(?<![r#\w])"((?:[^"\\\n]|\\.)*)"', text):
        s = m.group(1)
        s = re.sub(r"\\(.)", lambda e: {"n": "\n", "t": "\t", "0": "\0", "r": "\r"}.get(e.group(1), e.group(1)), s)
        out.append(s)
    return out


def test_section(text):
    i = text.find("#[cfg(test)]")
    return text[i:] if i >= 0 else ""


# ------------------------------------------------------------------------------------ framing

def i_frame(ns, nr, asdu):
    return bytes([0x68, 4 + len(asdu), (ns << 1) & 0xFF, (ns >> 7) & 0xFF, (nr << 1) & 0xFF, (nr >> 7) & 0xFF]) + asdu


def s_frame(nr):
    return bytes([0x68, 4, 0x01, 0x00, (nr << 1) & 0xFF, (nr >> 7) & 0xFF])


U_FRAMES = [bytes([0x68, 4, c, 0, 0, 0]) for c in (0x07, 0x0B, 0x13, 0x23, 0x43, 0x83)]


def ft12_variable(control, address, address_size, asdu):
    user = bytes([control]) + address.to_bytes(address_size, "little") + asdu
    return bytes([0x68, len(user), len(user), 0x68]) + user + bytes([sum(user) & 0xFF, 0x16])


def ft12_fixed(control, address, address_size):
    user = bytes([control]) + address.to_bytes(address_size, "little")
    return bytes([0x10]) + user + bytes([sum(user) & 0xFF, 0x16])


# ------------------------------------------------------------------------------------ targets

def asdu_seeds():
    out = [v for v in rust_vectors("tests/asdu_vectors.rs") if len(v) >= 3]
    for rel in ("tests/iec104_link.rs", "benches/asdu.rs"):
        for v in rust_vectors(rel):
            if len(v) > 6 and v[0] == 0x68 and v[1] == len(v) - 2 and not v[2] & 1:
                out.append(v[6:])          # the ASDU of an I-frame
            elif len(v) >= 6 and v[0] != 0x68:
                out.append(v)
    for v in rust_vectors("tests/iec101_link.rs") + rust_vectors("src/iec101/ft12.rs"):
        if len(v) > 8 and v[0] == 0x68 and v[3] == 0x68 and v[-1] == 0x16:
            out.append(v[5:-2])            # one-octet link address
    return out


def apdu_seeds(asdus):
    out = [v for v in rust_vectors("tests/iec104_link.rs") if v and v[0] == 0x68]
    out += U_FRAMES + [s_frame(n) for n in (0, 1, 7, 0x7FFF)]
    for n, a in enumerate(asdus):
        if len(a) <= 249:
            out.append(i_frame(n % 5, n % 3, a))
    # Streams: STARTDT, a few I-frames, an S-frame, TESTFR — as TCP delivers them.
    small = [a for a in asdus if 6 <= len(a) <= 40][:12]
    out.append(U_FRAMES[0] + b"".join(i_frame(i, 1, a) for i, a in enumerate(small[:4])) + s_frame(4) + U_FRAMES[4])
    out.append(b"".join(i_frame(i, 0, a) for i, a in enumerate(small)) + U_FRAMES[2])
    out.append(U_FRAMES[4] + bytes([0x68, 0x04, 0x01, 0x02, 0x00, 0x00]))
    return out


def ft12_seeds(asdus):
    out = rust_vectors("tests/iec101_link.rs") + rust_vectors("src/iec101/ft12.rs")
    out = [v for v in out if v and v[0] in (0x10, 0x68, 0xE5)]
    out.append(b"\xE5")
    for c in (0x40, 0x49, 0x5A, 0x5B, 0x7A, 0x7B, 0x0B, 0x09, 0x29, 0x20, 0x00, 0x01, 0x11, 0x0F, 0xC0, 0xC9):
        out += [ft12_fixed(c, 1, 1), ft12_fixed(c, 0x0102, 2), ft12_fixed(c, 0, 0)]
    for n, a in enumerate(a for a in asdus if len(a) <= 240):
        ctl = (0x73, 0x53, 0x08, 0x28, 0xD3, 0xF3)[n % 6]
        out.append(ft12_variable(ctl, 1, 1, a))
        if n % 3 == 0:
            out.append(ft12_variable(ctl, 0x0102, 2, a))
    # Noise then a frame; a stream of several frames and single characters.
    frames = [v for v in out if v[0] == 0x68][:6]
    if frames:
        out.append(b"\x00\xFF\x16\x68" + frames[0])
        out.append(ft12_fixed(0x49, 1, 1) + b"\xE5" + b"".join(frames) + ft12_fixed(0x7A, 1, 1))
    return out


def ocpp_frame_seeds():
    out = []
    for s in rust_raw_strings(read("tests/ocpp_framing.rs")) + rust_strings(read("tests/ocpp_framing.rs")):
        if s.lstrip()[:1] in ("[", "{"):
            out.append(s)
    py = read("tests/interop/test_ocpp.py")
    for m in re.finditer(r"""'(\[(?:[^'\\\n]|\\.)*)'""", py):
        out.append(m.group(1).encode().decode("unicode_escape", errors="ignore") if "\\" in m.group(1) else m.group(1))
    out += [
        "", " ", "null", "true", "42", '"text"', "{}", "[]", "[2]",
        '[2,"1","Heartbeat",{}]', '[3,"1",{"currentTime":"2024-01-01T12:00:00Z"}]',
        '[4,"1","NotImplemented","",{}]', '[4,"1","GenericError","x",{"a":1}]',
        '[2,"a","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2024-01-01T12:00:00Z",'
        '"sampledValue":[{"value":"14.4kW","measurand":"Power.Active.Import","unit":"W"}]}]}]',
        '[2,"' + "x" * 37 + '","Heartbeat",{}]', '[2,"a","Heartbeat",{}]\u0000', "[2,\"\ud7ff\",\"H\",{}]",
        "[" * 64 + "]" * 64, '[2,"a","Heartbeat",{},"extra"]', '[5,"a","Heartbeat",{}]',
        '[6,"a","SEND",{}]', '[2,"a","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]',
        '[2,"a","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]',
    ]
    return [s.encode("utf-8", errors="surrogatepass") for s in out]


SANITIZE_EXTRA = [
    "14.4kW", "14,4", "14,4 kW", "14400 W", "14.4 kW", " 7.2 ", "1.5e3", "0.0144MW", "12.5 kWh",
    "14.4.4kW", "garbage", "n/a", "", "NaN", "inf", "-inf", "1e309", "-0", "16 A", "230V", "230 V",
    "1 000", "1.000,5", "1,000.5", "+5", "-5.5kW", "5.5 kw", "5.5KW", "5.5 Wh", "0x10", "1_000",
    "2024-01-01T12:00:00Z", "2024-01-01T12:00:00", "2024-01-01 12:00:00", "2024-01-01 12:00",
    "2024-01-01T14:00:00+02", "2024-01-01T14:00:00+0200", "2024-01-01T12:00:00.123456789Z",
    "2024-13-01T12:00:00Z", "2024-01-01", "2024-12-31T23:59:60Z", "1704110400", "yesterday",
]


def sanitize_seeds():
    values = list(SANITIZE_EXTRA)
    pairs = []
    dialects = read("tests/ocpp_dialects.rs")
    for m in re.finditer(r'json!\("((?:[^"\\]|\\.)*)"\)\s*,\s*Some\("([^"]*)"\)', dialects):
        pairs.append((m.group(1), m.group(2)))
    values += [m.group(1) for m in re.finditer(r'json!\("((?:[^"\\]|\\.)*)"\)', dialects)]
    for rel in ("src/ocpp/sanitize/number.rs", "src/ocpp/sanitize/time.rs"):
        values += [s for s in rust_strings(test_section(read(rel))) if len(s) <= 48]
    units = ["W", "kW", "Wh", "kWh", "A", "V", "MW", "", "Celsius", "Percent"]
    out = [v.encode() for v in values]
    out += [f"{v}\0{u}".encode() for v, u in pairs]
    out += [f"{v}\0{units[i % len(units)]}".encode() for i, v in enumerate(values[:60])]
    return out


def config_seeds():
    out = [read("src/default_config.toml")]
    for md in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        if md.exists():
            out += re.findall(r"```toml\n(.*?)```", md.read_text(encoding="utf-8"), re.S)
    for rel in ("tests/config.rs", "src/config/mod.rs"):
        for s in rust_raw_strings(read(rel)) + rust_strings(read(rel)):
            if "=" in s or s.lstrip().startswith("["):
                out.append(s)
    out += ["", "[iec104]\nk = 0\n", "[iec104]\nk = 99999999999999999999\n", "a = \"\\uD800\"\n", "[[charger]]\n[[charger]]\n"]
    return [s.encode() for s in out]


def relay_seeds(frames):
    """Scripts for relay_frames: version byte, then lines c/u/U/D/t/l/x (see the target)."""
    j = lambda v: json.dumps(v, separators=(",", ":"))
    boot16 = j([2, "b1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}])
    start16 = j([2, "s1", "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                                               "timestamp": "2026-01-01T00:00:00Z"}])
    meter16 = j([2, "m1", "MeterValues", {"connectorId": 1, "transactionId": 1, "meterValue": [
        {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
            {"value": "14.4kW", "measurand": "Power.Active.Import"}]}]}])
    stop16 = j([2, "e1", "StopTransaction", {"transactionId": 1, "meterStop": 5,
                                             "timestamp": "2026-01-01T00:10:00Z"}])
    profile16 = j([2, "u1", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 7, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {"chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0}]}}}])
    event201 = j([2, "t1", "TransactionEvent", {"eventType": "Started", "timestamp":
        "2026-01-01T00:00:00Z", "triggerReason": "Authorized", "seqNo": 0,
        "transactionInfo": {"transactionId": "T1"}, "idToken": {"idToken": "TAG", "type": "ISO14443"}}])
    clear201 = j([2, "u2", "ClearChargingProfile", {"chargingProfileId": 809}])
    scripts = [
        (0, ["U", "c" + boot16, "u[3,\"b1\",{\"status\":\"Accepted\",\"currentTime\":\"2026-01-01T00:00:00Z\",\"interval\":60}]",
             "c" + start16, "u[3,\"s1\",{\"transactionId\":9001,\"idTagInfo\":{\"status\":\"Accepted\"}}]",
             "l11", "u" + profile16, "c[3,\"u1\",{\"status\":\"Accepted\"}]", "c" + meter16, "t", "t", "t"]),
        (0, ["c" + boot16, "c" + start16, "c" + meter16, "c" + stop16, "U", "u[3,\"ocpp809-r1\",{}]",
             "u[3,\"s1\",{\"transactionId\":42}]", "D", "U", "t", "x"]),
        (1, ["U", "c" + event201, "t", "t", "t", "D", "c" + event201, "U", "u" + clear201, "l7.5"]),
    ]
    out = [bytes([v]) + "\n".join(lines).encode() for v, lines in scripts]
    # Every framing seed once from each side.
    for f in frames[:40]:
        out.append(b"\x00U\nc" + f + b"\nu" + f + b"\nt")
        out.append(b"\x01U\nu" + f + b"\nc" + f + b"\nD\nt")
    return out


def write(target, seeds):
    d = OUT / target
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    seen = set()
    for s in seeds:
        s = s[:MAX_SEED_LEN]
        h = hashlib.sha1(s).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        (d / h).write_bytes(s)
        if len(seen) >= MAX_SEEDS:
            break
    return len(seen)


def main():
    asdus = asdu_seeds()
    counts = {
        "asdu_decode": write("asdu_decode", asdus),
        "apdu_decode": write("apdu_decode", apdu_seeds(asdus)),
        "ft12_decode": write("ft12_decode", ft12_seeds(asdus)),
        "ocpp_frame": write("ocpp_frame", ocpp_frame_seeds()),
        "relay_frames": write("relay_frames", relay_seeds(ocpp_frame_seeds())),
        "ocpp_sanitize": write("ocpp_sanitize", sanitize_seeds()),
        "config_parse": write("config_parse", config_seeds()),
    }
    for t, n in counts.items():
        print(f"{t:14} {n:4} seeds")
    if min(counts.values()) == 0:
        sys.exit("a target got no seeds")


if __name__ == "__main__":
    main()
