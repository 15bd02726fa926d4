"""Soak, short variant (BENCHMARKS.md "Soak"; the long run is ``bench/soak.sh``).

Runs ``examples/soak.rs`` — built by ``cargo test --all-targets`` next to the daemon, i.e.
``Path(OCPP809_BIN).parent / "examples" / "soak"`` — against the daemon under test and a
mosquitto broker: 20,000 transactions over 100 chargers (half OCPP 1.6 with legacy string
values ``"12.3kW"`` / ``"1234,5"``, half OCPP 2.0.1 TransactionEvents), one meter value each
(plus the registers of 2.0.1 Started/Ended),
an IEC 104 master sending power setpoints every 2 s and a counter interrogation at the end,
an MQTT subscriber, RSS sampling of the daemon. The tool's JSON must show every transaction
run, zero lost energy (SCADA counter = MQTT meter = MQTT state = last register each charger
sent), every setpoint confirmed, no session error, the daemon alive, RSS growth bounded.

About 60–90 s with debug builds on the 2-core CI machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from broker import Broker
from conftest import REPO

CHARGERS = 100
TRANSACTIONS = 20_000
METER_VALUES = 1
# Seconds between meter values per charger: ~400 transactions/s in all (~1,000 meter samples/s), which the debug
# daemon and its MQTT mirror sustain (unpaced, the MQTT mirror sheds meter messages by design
# once its bounded queues fill — see BENCHMARKS.md "Soak").
INTERVAL = 0.25
RSS_BOUND_KB = 32_768

SOAK_CHARGERS = [{"id": f"SOAK{k}", "ioa_base": 1000 + 100 * k, "connectors": 1}
                 for k in range(CHARGERS)]


def soak_binary(daemon_binary: str) -> Path:
    path = Path(daemon_binary).resolve().parent / "examples" / "soak"
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `cargo build --example soak` "
                    "(cargo test --all-targets does)", pytrace=False)
    return path


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "mosquitto").start()
    yield b
    b.stop()


@pytest.mark.timeout(300)
def test_soak_short_variant(make_daemon, broker, ocpp809_bin, tmp_path):
    tool = soak_binary(ocpp809_bin)
    d = make_daemon(chargers=SOAK_CHARGERS, site={"ioa_base": 1}, start=False,
                    # Every simulated charger dials from 127.0.0.1, as fast as it can.
                    ocpp={"accept_unknown": False, "max_connections_per_ip": 0,
                          "max_messages_per_s": 0},
                    extra={"mqtt": {"enabled": True, "url": broker.url,
                                    "topic_prefix": "ocpp809"}})
    d.env["RUST_LOG"] = "warn"  # debug logging of 140,000 calls would dominate the run
    d.start()
    d.wait_ocpp_listening()
    cmd = [str(tool), "--url", f"ws://127.0.0.1:{d.ocpp_port}/ocpp",
           "--iec104", f"127.0.0.1:{d.port}", "--mqtt", f"127.0.0.1:{broker.port}",
           "--mqtt-prefix", "ocpp809/interop", "--pid", str(d.proc.pid),
           "--chargers", str(CHARGERS), "--transactions", str(TRANSACTIONS),
           "--meter-values", str(METER_VALUES), "--interval", str(INTERVAL),
           "--share-16", "0.5", "--setpoint-every", "2", "--rss-every", "2",
           "--rss-warmup", "10", "--rss-growth-max-kb", str(RSS_BOUND_KB),
           "--drain-timeout", "60"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    (tmp_path / "soak.log").write_text(proc.stderr)
    assert proc.stdout.strip(), f"soak printed nothing (exit {proc.returncode}):\n{proc.stderr}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = json.dumps(result, indent=1)
    assert result["ok"], f"soak failed: {result['failures']}\n{summary}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, summary
    assert result["transactions"] == TRANSACTIONS, summary
    assert result["sessions_established"] == CHARGERS, summary
    energy = result["energy"]
    assert energy["chargers_checked"] == CHARGERS, summary
    assert (energy["sum_reported_wh"] == energy["sum_scada_ci_wh"]
            == energy["sum_mqtt_meter_wh"] == energy["sum_mqtt_state_wh"]), summary
    assert energy["mismatch_scada_ci"] == energy["mismatch_mqtt_meter"] == 0, summary
    assert energy["mismatch_mqtt_state"] == 0, summary
    sp = result["setpoints"]
    assert sp["sent"] > 0 and sp["confirmed"] == sp["sent"], summary
    assert sum(result["errors"].values()) == 0, summary
    daemon = result["daemon"]
    assert daemon["alive"] and d.alive(), summary
    growth = daemon["rss_kb"]["growth_after_warmup"]
    assert growth is not None and growth <= RSS_BOUND_KB, summary
    print(f"soak short variant: {result['transactions']} transactions in {result['load_s']} s, "
          f"{result['transactions_per_s']} /s, RSS {daemon['rss_kb']}")
