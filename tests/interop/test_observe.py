"""Observability end to end (docs/observability.md): the daemon's `/metrics` (Prometheus text
format 0.0.4) and read-only status page, fetched with urllib while a c104 master and `ocpp`
package chargers drive it."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import urllib.error
import urllib.request
from email.message import Message

import ocpp.v16.call as c16

import asdu as A
from conftest import CHARGERS
from daemon import free_port
from ocpp_client import V16, boot, charger, run_async
from test_site import site_charger

CP1 = CHARGERS[0]["id"]
CP1_BASE = CHARGERS[0]["ioa_base"]

# One sample line: name, optional {label="value",...}, a float (or NaN/+Inf/-Inf).
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{' + _LABEL + r'(,' + _LABEL + r')*\})? '
    r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
_HELP = re.compile(r'^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$')
_TYPE = re.compile(r'^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$')


def observed_daemon(make_daemon, **kw):
    port = free_port()
    d = make_daemon(extra={"http": {"enabled": True, "listen": f"127.0.0.1:{port}"}}, **kw)
    d.http = f"http://127.0.0.1:{port}"
    d.wait_ocpp_listening()
    return d


def fetch(url: str, method: str = "GET") -> tuple[int, Message, str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def metrics(d) -> dict[str, float]:
    """Fetches /metrics, checks every line, returns {series: value}."""
    status, headers, text = fetch(d.http + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    assert text.endswith("\n")
    series: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert _HELP.match(line), line
        elif line.startswith("# TYPE "):
            m = _TYPE.match(line)
            assert m, line
            typed.add(m.group(1))
        else:
            assert _SAMPLE.match(line), f"not exposition format: {line!r}"
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            assert name in typed, f"sample before its # TYPE: {line!r}"
            key, value = line.rsplit(" ", 1)
            series[key] = float(value)
    for name in typed:
        if name.endswith("_total"):
            assert f"# TYPE {name} counter" in text
    return series


def wait_metric(d, key: str, pred, timeout: float = 8.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(d)
        if key in m and pred(m[key]):
            return m
        assert time.monotonic() < deadline, f"{key} = {m.get(key)} after {timeout}s"
        time.sleep(0.1)


def test_metrics_are_valid_exposition_and_count_masters(make_daemon, make_master):
    d = observed_daemon(make_daemon)
    m = metrics(d)
    assert m["ocpp809_iec104_masters"] == 0
    assert m["ocpp809_chargers_connected"] == 0
    assert m['ocpp809_mqtt_connected'] == 0
    assert any(k.startswith('ocpp809_build_info{version="') for k in m)
    for required in ["ocpp809_iec101_lines_active", "ocpp809_events_queued",
                     "ocpp809_events_dropped_total", "ocpp809_mqtt_queue_depth",
                     "ocpp809_mqtt_dropped_total",
                     'ocpp809_commands_total{outcome="positive"}',
                     'ocpp809_commands_total{outcome="negative"}',
                     'ocpp809_sanitizer_coercions_total{kind="decimal_comma"}',
                     'ocpp809_messages_total{protocol="iec104",direction="in"}',
                     'ocpp809_messages_total{protocol="ocpp",direction="out"}']:
        assert required in m, required
    master = make_master(d.port)
    m = wait_metric(d, "ocpp809_iec104_masters", lambda v: v == 1)
    master.gi()
    m = metrics(d)
    assert m['ocpp809_messages_total{protocol="iec104",direction="in"}'] >= 1
    assert m['ocpp809_messages_total{protocol="iec104",direction="out"}'] >= 1
    master.stop()
    wait_metric(d, "ocpp809_iec104_masters", lambda v: v == 0)


@run_async
async def test_a_charger_with_a_decimal_comma_shows_in_metrics_and_on_the_page(make_daemon):
    d = observed_daemon(make_daemon)
    async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
        await boot(cp)
        sample = {"timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
                  "sampled_value": [{"value": "14,4", "measurand": "Power.Active.Import",
                                     "unit": "kW"}]}
        await cp.req(c16.MeterValues(connector_id=1, meter_value=[sample]))
        m = await asyncio.to_thread(
            wait_metric, d, 'ocpp809_sanitizer_coercions_total{kind="decimal_comma"}',
            lambda v: v >= 1)
        assert m["ocpp809_chargers_connected"] == 1
        assert m['ocpp809_messages_total{protocol="ocpp",direction="in"}'] >= 2
        assert m['ocpp809_messages_total{protocol="ocpp",direction="out"}'] >= 2

        status, headers, page = await asyncio.to_thread(fetch, d.http + "/")
        assert status == 200 and headers["Content-Type"].startswith("text/html"), headers
        assert f'<a href="#charger-{CP1_BASE}">{CP1}</a>' in page
        row = re.search(rf'<a href="#charger-{CP1_BASE}">{CP1}</a>.*?</tr>', page)
        assert row and "online</span>" in row.group(0), row
        # Its power point: IOA base + 1 with the coerced value.
        assert re.search(rf"<td>{CP1_BASE + 1}</td><td>M_ME_TF_1</td><td>[^<]*</td>"
                         r"<td>14\.400</td>", page), page
    await asyncio.to_thread(wait_metric, d, "ocpp809_chargers_connected", lambda v: v == 0)


@run_async
async def test_a_hostile_charge_point_id_is_escaped_on_the_page(make_daemon):
    d = observed_daemon(make_daemon)
    # '/' cannot be part of an id (it ends the path segment); the rest of HTML can.
    hostile = '<script>alert("x")&'
    async with charger(d.ocpp_url("%3Cscript%3Ealert(%22x%22)%26"), hostile, V16) as cp:
        await boot(cp)
        await asyncio.to_thread(wait_metric, d, "ocpp809_chargers_connected",
                                lambda v: v == 1)
        _, _, page = await asyncio.to_thread(fetch, d.http + "/")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&amp;" in page
    # It got a block of its own (ocpp.auto_ioa_base) and is listed with it.
    assert '<a href="#charger-10000">&lt;script&gt;' in page, page


@run_async
async def test_scada_setpoints_count_positive_and_negative_outcomes(make_daemon, make_master):
    d = observed_daemon(make_daemon)
    master = make_master(d.port)
    # CP001 offline: the setpoint is confirmed negatively.
    res = await asyncio.to_thread(master.command, A.C_SE_NC_1, CP1_BASE + 90, 11.0)
    assert res.confirmations and res.confirmations[-1].negative, res.describe()
    await asyncio.to_thread(wait_metric, d, 'ocpp809_commands_total{outcome="negative"}',
                            lambda v: v == 1)
    async with site_charger(d.ocpp_url(CP1), CP1, V16):
        res = await asyncio.to_thread(master.command, A.C_SE_NC_1, CP1_BASE + 90, 11.0)
        assert res.confirmations and not res.confirmations[-1].negative, res.describe()
        m = await asyncio.to_thread(wait_metric, d,
                                    'ocpp809_commands_total{outcome="positive"}',
                                    lambda v: v == 1)
        assert m['ocpp809_commands_total{outcome="negative"}'] == 1


def test_only_get_and_head_on_known_paths(make_daemon):
    d = observed_daemon(make_daemon)
    status, _, body = fetch(d.http + "/health")
    assert (status, body) == (200, "ok\n")
    assert fetch(d.http + "/nope")[0] == 404
    status, headers, _ = fetch(d.http + "/metrics", method="POST")
    assert status == 405 and headers.get("Allow") == "GET, HEAD"
    status, _, body = fetch(d.http + "/", method="HEAD")
    assert status == 200 and body == ""


def test_a_taken_http_port_is_a_startup_error(make_daemon):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        d = make_daemon(extra={"http": {"enabled": True, "listen": f"127.0.0.1:{port}"}},
                        start=False)
        try:
            d.start(timeout=10)
        except AssertionError as e:
            assert "cannot listen for HTTP" in str(e), e
            assert d.proc.returncode != 0
            d.proc = None       # expected to have failed: not a shutdown problem
        else:
            raise AssertionError("the daemon started although the HTTP port was taken")


def test_an_active_iec101_line_is_counted(make_daemon, serial_pair, make_iec101_master):
    port = free_port()
    line = {"device": serial_pair.b, "baud": 9600, "parity": "even", "mode": "unbalanced",
            "link_address": 1, "link_address_size": 1, "common_address": 1,
            "cot_size": 1, "ca_size": 1, "ioa_size": 2}
    d = make_daemon(extra={"iec101": [line],
                           "http": {"enabled": True, "listen": f"127.0.0.1:{port}"}})
    d.http = f"http://127.0.0.1:{port}"
    m = make_iec101_master(serial_pair.a, mode="unbalanced", link_address=1,
                           link_address_size=1)
    m.wait_link("available", 20)
    wait_metric(d, "ocpp809_iec101_lines_active", lambda v: v == 1)
    wait_metric(d, 'ocpp809_messages_total{protocol="iec101",direction="out"}',
                lambda v: v >= 1)
    _, _, page = fetch(d.http + "/")
    assert "<td>1 of 1</td>" in page
