"""Fixtures for the ocpp809 IEC 104 interop tests.

``OCPP809_BIN`` names the daemon binary (tests/run.sh sets it). Each test gets
fresh daemons on free 127.0.0.1 ports with their own state dir; teardown sends
SIGTERM and requires exit status 0 within 5 s (CONTRACT §1). The daemon log is
attached to the report of a failing test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import pytest

from daemon import Daemon
from iec101_master import Iec101Master
from master import Master
from ptypair import SerialPair

REPO = Path(__file__).resolve().parents[2]

# The configuration most tests use (CONTRACT §3 example layout).
CHARGERS = [
    {"id": "CP001", "ioa_base": 1000, "max_kw": 22.0, "connectors": 2},
    {"id": "CP002", "ioa_base": 1100, "max_kw": 22.0, "connectors": 1},
]
SITE = {"ioa_base": 1}
CA = 1


def _binary() -> str:
    b = os.environ.get("OCPP809_BIN") or str(REPO / "target" / "debug" / "ocpp809")
    return b


@pytest.fixture(scope="session")
def ocpp809_bin() -> str:
    b = _binary()
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail(f"daemon binary {b} not found: build it (cargo build --bin ocpp809) "
                    "or set OCPP809_BIN", pytrace=False)
    return b


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for d in getattr(item, "_ocpp809_daemons", []):
            rep.sections.append((f"daemon log {d.name} ({d.log_path})", d.log_tail(400)))
        for m in getattr(item, "_iec101_masters", []):
            rep.sections.append((f"iec101 master {m.name} ({m.device})",
                                 m.transcript(200) + "\n" + m.stderr_text()[-4000:]))


@pytest.fixture
def make_daemon(request, tmp_path, ocpp809_bin) -> Callable[..., Daemon]:
    """Factory: make_daemon(iec104={...}, site={...}, chargers=[...], ocpp={...}, extra={...},
    start=True). ``ocpp`` keys are merged into the ``[ocpp]`` table (listen is always set)."""
    daemons: list[Daemon] = []
    request.node._ocpp809_daemons = daemons

    def make(*, iec104=None, site=None, chargers=None, extra=None, start=True,
             name=None, ocpp=None) -> Daemon:
        name = name or f"ocpp809-{len(daemons)}"
        d = Daemon(ocpp809_bin, tmp_path / name, iec104=iec104,
                   site=SITE if site is None else site,
                   chargers=CHARGERS if chargers is None else chargers,
                   extra=extra, name=name, ocpp=ocpp)
        daemons.append(d)
        if start:
            d.start()
        return d

    yield make

    problems = []
    for d in daemons:
        try:
            d.stop(timeout=5.0)
        except AssertionError as e:
            problems.append(f"{d.name}: {e}")
            continue
        finally:
            d.kill()
        bad = [c for c in d.exit_codes if c != 0]
        if bad:
            problems.append(f"{d.name}: exit status {bad} on SIGTERM (CONTRACT §1 wants 0)\n"
                            + d.log_tail(100))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def daemon(make_daemon) -> Daemon:
    """The standard station: site base 1, CP001 (1000, 2 connectors), CP002 (1100, 1)."""
    return make_daemon()


@pytest.fixture
def make_master() -> Callable[..., Master]:
    masters: list[Master] = []

    def make(port: int, *, start: bool = True, **kw) -> Master:
        kw.setdefault("name", f"master{len(masters)}")
        m = Master(port, **kw)
        masters.append(m)
        if start:
            m.start()
        return m

    yield make
    for m in masters:
        m.stop()


@pytest.fixture
def master(daemon, make_master) -> Master:
    """One c104 master connected (STARTDT done) to the standard station."""
    return make_master(daemon.port)


# ---------------------------------------------------------------- IEC 101 (serial)

@pytest.fixture
def make_serial_pair(tmp_path) -> Callable[..., SerialPair]:
    """Factory: make_serial_pair(name="tty0") -> a started socat PTY pair (``.a``, ``.b``)
    with its links in the test's tmp dir; stopped at test end."""
    pairs: list[SerialPair] = []

    def make(name: Optional[str] = None) -> SerialPair:
        p = SerialPair(tmp_path / "serial", name or f"tty{len(pairs)}")
        pairs.append(p)
        return p.start()

    yield make
    for p in pairs:
        p.stop()


@pytest.fixture
def serial_pair(make_serial_pair) -> SerialPair:
    """One PTY pair: the daemon opens ``.b``, the IEC 101 master ``.a``."""
    return make_serial_pair()


@pytest.fixture
def make_iec101_master(request, tmp_path) -> Callable[..., Iec101Master]:
    """Factory: make_iec101_master(device, mode="unbalanced", link_address=1, ...,
    start=True) -> an iec101-master process (lib60870-C) on ``device``; stopped at test
    end. Unbalanced masters poll from the start."""
    masters: list[Iec101Master] = []
    request.node._iec101_masters = masters

    def make(device: str, *, start: bool = True, **kw) -> Iec101Master:
        kw.setdefault("name", f"iec101-{len(masters)}")
        kw.setdefault("workdir", tmp_path / "iec101")
        m = Iec101Master(device, **kw)
        masters.append(m)
        if start:
            m.start()
        return m

    yield make
    for m in masters:
        m.stop()
