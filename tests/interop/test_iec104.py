"""IEC 60870-5-104 interoperability of the ocpp809 controlled station.

Peers: c104 2.2.1 (lib60870-C) as the SCADA master, plus a hand-driven raw
APCI link for misbehaving masters. Every assertion is on what the station
put on the wire, decoded by tests/interop/asdu.py.

Station behaviour under test: CONTRACT.md §1–§3 and §7, plus the team's
decisions: GI answers every monitor point except integrated totals (those come
by counter interrogation); commands are not in GI; the online points start
at 0 with good quality and every other monitor point starts IV.
"""

from __future__ import annotations

import datetime as dt
import random
import time

import c104
import pytest

import asdu as A
from conftest import CA, CHARGERS, SITE
from points import SITE_LIMIT_CMD, SITE_LIMIT_IN_FORCE, ci_expected, gi_expected, layout
from rawlink import Closed, RawLink

STD = layout(SITE["ioa_base"], CHARGERS)
SITE_CMD_IOA = SITE["ioa_base"] + SITE_LIMIT_CMD          # 11, C_SE_NC_1
SITE_LIMIT_IOA = SITE["ioa_base"] + SITE_LIMIT_IN_FORCE   # 3, M_ME_TF_1
LARGE_CHANGE_KW = 50.0                                    # CONTRACT §2 default

# A GI answer of this layout is far longer than k = 12 I-frames whatever the
# packing: 20 chargers × 8 connectors ≈ 900 monitor objects.
MANY_CHARGERS = [{"id": f"W{i:02d}", "ioa_base": 2000 + 100 * i, "max_kw": 22.0,
                  "connectors": 8} for i in range(20)]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def assert_interrogation(res, type_id: int, data_cot: int, expected: dict[int, int],
                         ca: int = CA) -> dict[int, A.InfoObject]:
    """ACTCON (positive) → data with ``data_cot`` → ACTTERM, data == expected (ioa → type)."""
    assert res.actcon is not None, f"no activation confirmation; got {res.frames}"
    assert not res.actcon.negative, f"interrogation refused: {res.actcon}"
    assert res.actterm is not None, f"no activation termination; got {res.frames[-5:]}"
    assert res.actcon.ca == ca and res.actterm.ca == ca
    i_con = res.frames.index(res.actcon)
    i_term = res.frames.index(res.actterm)
    for a in res.data:
        i = res.frames.index(a)
        assert i_con < i < i_term, f"{a} outside ACTCON..ACTTERM"
        assert a.cot == data_cot and not a.negative, a
        assert a.ca == ca, a
    objs = res.objects
    got = {ioa: t for ioa, (t, _) in objs.items()}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"missing IOAs {missing}; unexpected IOAs {extra}"
    wrong = {ioa: (got[ioa], t) for ioa, t in expected.items() if got[ioa] != t}
    assert not wrong, f"wrong type ids (got, expected): {wrong}"
    return {ioa: o for ioa, (_, o) in objs.items()}


def assert_gi(master, pts=STD, with_time: bool = True) -> dict[int, A.InfoObject]:
    res = master.gi()
    return assert_interrogation(res, A.C_IC_NA_1, A.COT_INROGEN, gi_expected(pts, with_time))


def assert_station_healthy(daemon, master, pts=STD) -> None:
    """Daemon process alive, the c104 master still OPEN and its GI fully answered."""
    assert daemon.alive(), "ocpp809 died\n" + daemon.log_tail()
    assert master.is_open, f"c104 master lost its connection (state {master.conn.state})"
    assert_gi(master, pts)


def assert_recent_utc(t: A.CP56) -> None:
    assert t is not None, "missing CP56Time2a"
    assert not t.invalid and not t.summer, f"time tag IV/SU set: {t}"
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((t.to_datetime() - now).total_seconds()) < 60, f"time tag {t} far from {now}"


def site_setpoint(master, value: float, select: bool):
    return master.command(A.C_SE_NC_1, SITE_CMD_IOA, value, select=select)


def assert_refused(res) -> None:
    conf = res.confirmations
    assert conf, f"no activation confirmation: {res.describe()}"
    assert all(a.negative for a in conf), f"expected P/N confirmation: {res.describe()}"
    assert not res.terminations, f"refused command must not be terminated: {res.describe()}"


def assert_executed(res, select: bool) -> None:
    conf = res.confirmations
    assert conf and not any(a.negative for a in conf), f"refused: {res.describe()}"
    if select:
        sel = [a for a in conf if a.objects[0].select]
        exe = [a for a in conf if not a.objects[0].select]
        assert len(sel) == 1, f"expected one select confirmation: {res.describe()}"
        assert len(exe) == 1, f"expected one execute confirmation: {res.describe()}"
        assert res.responses.index(sel[0]) < res.responses.index(exe[0])
    else:
        assert len(conf) == 1 and not conf[0].objects[0].select, res.describe()
    terms = res.terminations
    assert len(terms) == 1, f"expected one activation termination: {res.describe()}"
    assert res.responses.index(terms[0]) > res.responses.index(conf[-1])
    assert not terms[0].negative


def expect_site_limit(master, value: float, since: int, timeout: float = 5.0) -> None:
    """A spontaneous M_ME_TF_1 for the site limit in force with ``value`` and good quality."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        a = master.spontaneous_asdu(SITE_LIMIT_IOA, since, deadline - time.monotonic())
        if a is None:
            break
        o = next(o for o in a.objects if o.ioa == SITE_LIMIT_IOA)
        seen.append((a.type_id, o.value, o.quality))
        if abs(o.value - value) < 1e-3:
            assert a.type_id == A.M_ME_TF_1, f"spontaneous type {a.type_id}, expected 36"
            assert a.cot == A.COT_SPONTANEOUS and a.ca == CA
            assert o.quality == 0, f"site limit {value} sent with quality 0x{o.quality:02x}"
            assert_recent_utc(o.time)
            return
        # a different value first (e.g. an intermediate one): look further
        since = master.index_after(a)
    raise AssertionError(f"no spontaneous site limit {value} on IOA {SITE_LIMIT_IOA}; "
                         f"saw {seen}")



def no_spontaneous(master, ioa: int, since: int, wait: float = 1.0) -> None:
    a = master.spontaneous_asdu(ioa, since, wait)
    assert a is None, f"unexpected spontaneous data for IOA {ioa}: {a}"


# ---------------------------------------------------------------------------
# general and counter interrogation
# ---------------------------------------------------------------------------

def test_gi_answers_every_monitor_point_except_counters_with_time_tags(master):
    objs = assert_gi(master)
    # spot checks of the layout (CONTRACT §3)
    assert {1, 2, 3, 4, 5} - objs.keys() == {2}            # site energy is a counter
    assert 1090 not in objs and 11 not in objs             # commands never in GI
    for ioa, o in objs.items():
        assert o.time is not None, f"IOA {ioa} without time tag"
        if not o.iv:
            assert_recent_utc(o.time)


def test_gi_without_time_uses_untagged_types(make_daemon, make_master):
    d = make_daemon(iec104={"gi_with_time": False})
    m = make_master(d.port)
    objs = assert_gi(m, with_time=False)
    assert all(o.time is None for o in objs.values())
    res = m.ci()
    assert_interrogation(res, A.C_CI_NA_1, A.COT_REQCOGEN, ci_expected(STD, with_time=False))


# Site points whose value the station knows from the start: limit in force (0 = none
# configured), failsafe active (off), chargers online (0).
SITE_KNOWN_AT_START = {3: 0.0, 4: 0, 5: 0.0}


def test_gi_initial_quality_online_good_zero_everything_else_invalid(master):
    objs = assert_gi(master)
    online = {p.ioa for p in STD.values() if p.is_online_point}
    assert online == {1000, 1100}
    for ioa in online:
        o = objs[ioa]
        assert o.value == 0 and o.quality == 0, \
            f"online point {ioa}: value {o.value} quality 0x{o.quality:02x}, expected 0 / good"
    for ioa, value in SITE_KNOWN_AT_START.items():
        o = objs[ioa]
        assert o.value == value and o.quality == 0, \
            f"site point {ioa}: value {o.value} quality 0x{o.quality:02x}, expected {value} / good"
    known = online | set(SITE_KNOWN_AT_START)
    not_iv = sorted(ioa for ioa, o in objs.items() if ioa not in known and not o.iv)
    assert not not_iv, f"points without a value yet must carry IV: {not_iv}"


def test_counter_interrogation_answers_every_integrated_total(master):
    res = master.ci()
    objs = assert_interrogation(res, A.C_CI_NA_1, A.COT_REQCOGEN, ci_expected(STD))
    assert set(objs) == {2, 1002, 1014, 1024, 1102, 1114}
    for o in objs.values():
        assert_recent_utc(o.time)


def test_c104_init_all_master_is_served_on_the_broadcast_address(daemon, make_master):
    """c104 with Init.ALL sends GI, CI and clock sync to CA 65535 (broadcast) after STARTDT."""
    m = make_master(daemon.port, init=c104.Init.ALL, start=False)
    m.start_nowait()

    def gi_done() -> bool:
        return any(a.type_id == A.C_IC_NA_1 and a.cot in (A.COT_ACTTERM, A.COT_UNKNOWN_CA)
                   for a in m.asdus())

    assert m.wait_until(gi_done, 15), f"broadcast GI not answered; c104 state " \
        f"{m.conn.state}; sent {[A.parse_apdu(b) for _, b in m.sent]}; received {m.asdus()}"
    gi_sent = [A.parse_asdu(A.parse_apdu(b).asdu) for _, b in m.sent if b[2] & 1 == 0]
    assert any(a.type_id == A.C_IC_NA_1 and a.ca == 0xFFFF for a in gi_sent), \
        f"c104 did not use the broadcast CA as expected: {gi_sent}"
    assert not [a for a in m.asdus() if a.cot == A.COT_UNKNOWN_CA], \
        "the broadcast CA 65535 was refused as unknown"
    got = {o.ioa for a in m.asdus() if a.cot == A.COT_INROGEN for o in a.objects}
    assert got == set(gi_expected(STD))
    assert all(a.ca == CA for a in m.asdus() if a.cot == A.COT_INROGEN), \
        "answers to a broadcast must carry the station's own CA"


# ---------------------------------------------------------------------------
# site power limit (C_SE_NC_1 at site offset 10) and select-before-operate
# ---------------------------------------------------------------------------

def test_site_first_setpoint_by_direct_execute_is_refused(master):
    before = assert_gi(master)[SITE_LIMIT_IOA]
    m0 = master.mark()
    res = site_setpoint(master, 100.0, select=False)
    assert_refused(res)
    assert res.confirmations[0].objects[0].ioa == SITE_CMD_IOA
    no_spontaneous(master, SITE_LIMIT_IOA, m0)
    after = assert_gi(master)[SITE_LIMIT_IOA]
    assert (after.value, after.quality) == (before.value, before.quality), \
        f"refused setpoint changed the site limit in force: {before} -> {after}"


def test_site_setpoint_by_select_and_execute_sets_limit_in_force(master):
    m0 = master.mark()
    res = site_setpoint(master, 100.0, select=True)
    assert_executed(res, select=True)
    assert res.confirmations[-1].objects[0].value == pytest.approx(100.0)
    expect_site_limit(master, 100.0, m0)
    o = assert_gi(master)[SITE_LIMIT_IOA]
    assert o.value == pytest.approx(100.0) and o.quality == 0


def test_site_setpoint_small_change_direct_ok_large_change_needs_select(master):
    m = master.mark()
    assert_executed(site_setpoint(master, 100.0, select=True), select=True)
    expect_site_limit(master, 100.0, m)

    m = master.mark()
    assert_executed(site_setpoint(master, 140.0, select=False), select=False)   # Δ 40
    expect_site_limit(master, 140.0, m)

    m = master.mark()
    assert_executed(site_setpoint(master, 140.0 + LARGE_CHANGE_KW, select=False),
                    select=False)                                               # Δ 50: not large
    expect_site_limit(master, 190.0, m)

    m = master.mark()
    assert_refused(site_setpoint(master, 250.0, select=False))                 # Δ 60: large
    no_spontaneous(master, SITE_LIMIT_IOA, m)
    assert assert_gi(master)[SITE_LIMIT_IOA].value == pytest.approx(190.0)

    m = master.mark()
    assert_executed(site_setpoint(master, 250.0, select=True), select=True)    # same, with SBO
    expect_site_limit(master, 250.0, m)


@pytest.mark.parametrize("lift", [0.0, -5.0])
def test_site_setpoint_zero_or_less_lifts_the_limit(master, lift):
    m = master.mark()
    assert_executed(site_setpoint(master, 100.0, select=True), select=True)
    expect_site_limit(master, 100.0, m)
    m = master.mark()
    assert_executed(site_setpoint(master, lift, select=True), select=True)
    expect_site_limit(master, 0.0, m)
    o = assert_gi(master)[SITE_LIMIT_IOA]
    assert o.value == 0.0 and not o.iv


# ---------------------------------------------------------------------------
# charger commands, error causes, clock sync
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("ioa,type_id,value", [
    (1090, A.C_SE_NC_1, 11.0),     # power limit (small change: only "offline" can refuse it)
    (1091, A.C_SE_NB_1, 16),       # current limit
    (1092, A.C_SC_NA_1, True),     # availability
    (1093, A.C_SC_NA_1, True),     # reset
    (1094, A.C_SC_NA_1, True),     # clear limit
    (1190, A.C_SE_NC_1, 11.0),     # CP002
], ids=["1090-power", "1091-current", "1092-availability", "1093-reset", "1094-clear",
        "1190-cp002-power"])
def test_charger_command_while_offline_is_refused(master, ioa, type_id, value):
    res = master.command(type_id, ioa, value)
    assert_refused(res)
    conf = res.confirmations[0]
    assert conf.type_id == type_id and conf.cot == A.COT_ACTCON and conf.ca == CA
    assert conf.objects[0].ioa == ioa


def test_unknown_ioa_is_answered_with_cot_47(master):
    res = master.command(A.C_SC_NA_1, 5000, True)
    errs = res.with_cot(A.COT_UNKNOWN_IOA)
    assert len(errs) == 1, f"expected one COT 47: {res.describe()}"
    a = errs[0]
    assert a.negative and a.type_id == A.C_SC_NA_1 and a.ca == CA and a.ioas == [5000]
    assert not res.terminations
    assert not any(not r.negative for r in res.responses), res.describe()


@pytest.mark.parametrize("what", ["command", "interrogation"])
def test_unknown_common_address_is_answered_with_cot_46(master, what):
    if what == "command":
        res = master.command(A.C_SC_NA_1, 1092, True, ca=2)
        errs = res.with_cot(A.COT_UNKNOWN_CA)
        assert not res.terminations
    else:
        res = master.gi(ca=2, timeout=5)
        errs = [a for a in res.frames if a.cot == A.COT_UNKNOWN_CA]
        assert not res.data, "GI to an unknown CA must not be answered with data"
    assert len(errs) == 1, f"expected one COT 46, got {getattr(res, 'responses', None) or res.frames}"
    assert errs[0].negative and errs[0].ca == 2


def test_command_with_wrong_cause_is_answered_with_cot_45(master):
    res = master.command(A.C_SC_NA_1, 1092, True, cause=A.COT_SPONTANEOUS)
    errs = res.with_cot(A.COT_UNKNOWN_COT)
    assert len(errs) == 1, f"expected one COT 45: {res.describe()}"
    assert errs[0].negative and errs[0].ca == CA and errs[0].ioas == [1092]
    assert not res.terminations


def test_unsupported_type_is_answered_with_cot_44(master):
    """C_BO_NA_1 (51) is not a type this station implements (CONTRACT §3: COT 44)."""
    res = master.command(51, 1092, c104.Byte32(1))
    errs = res.with_cot(A.COT_UNKNOWN_TYPE)
    assert len(errs) == 1, f"expected one COT 44: {res.describe()}"
    assert errs[0].negative and errs[0].type_id == 51


def test_clock_sync_is_confirmed_positively(daemon, master):
    a = master.clock_sync()
    assert a is not None, "no answer to C_CS_NA_1"
    assert a.type_id == A.C_CS_NA_1 and a.cot == A.COT_ACTCON and not a.negative, a
    assert a.ca == CA
    assert_station_healthy(daemon, master)


# ---------------------------------------------------------------------------
# several masters, access control, restart
# ---------------------------------------------------------------------------

def test_two_masters_both_get_gi_and_spontaneous_changes(daemon, make_master):
    m1 = make_master(daemon.port, name="scada-a")
    m2 = make_master(daemon.port, name="scada-b")
    assert_gi(m1)
    assert_gi(m2)
    s1, s2 = m1.mark(), m2.mark()
    assert_executed(site_setpoint(m1, 100.0, select=True), select=True)
    expect_site_limit(m1, 100.0, s1)
    expect_site_limit(m2, 100.0, s2)


def test_max_masters_refuses_a_third_connection(make_daemon, make_master):
    d = make_daemon(iec104={"max_masters": 2})
    m = make_master(d.port)
    with RawLink(d.port) as second:
        second.startdt()
        third_refused = _connection_refused(d.port)
        assert third_refused, "a third master was accepted with max_masters = 2"
        second.send_u(A.TESTFR_ACT)
        second.expect(lambda a: a.kind == "U" and a.ufunc == A.TESTFR_CON, 5)
    assert_gi(m)
    # the slot of the closed second connection is free again
    deadline = time.monotonic() + 5
    while True:
        try:
            with RawLink(d.port) as again:
                again.startdt(timeout=2)
            break
        except (AssertionError, Closed, OSError):
            if time.monotonic() > deadline:
                raise AssertionError("a freed master slot could not be used again")
            time.sleep(0.3)


def _connection_refused(port: int, timeout: float = 2.0) -> bool:
    """True when a new connection is refused or closed without confirming STARTDT."""
    try:
        link = RawLink(port)
    except OSError:
        return True  # refused at TCP level
    with link:
        try:
            link.send_u(A.STARTDT_ACT)
        except OSError:
            return True
        closed = link.wait_closed(timeout)
        confirmed = any(ap.kind == "U" and ap.ufunc == A.STARTDT_CON for _, ap in link.received)
        return closed and not confirmed


def test_allowed_masters_closes_connections_from_other_addresses(make_daemon):
    d = make_daemon(iec104={"allowed_masters": ["10.1.2.3"]})
    assert _connection_refused(d.port), "127.0.0.1 was served although not in allowed_masters"
    assert d.alive()


def test_master_reconnects_after_daemon_restart(daemon, master):
    assert_gi(master)
    sm = master.state_mark()
    daemon.restart()
    master.wait_reconnected(sm, timeout=20)
    assert_gi(master)


def test_site_limit_in_force_survives_restart(daemon, master):
    """CONTRACT §1/§7: limits in force are persisted (durable within 1 s)."""
    m = master.mark()
    assert_executed(site_setpoint(master, 100.0, select=True), select=True)
    expect_site_limit(master, 100.0, m)
    time.sleep(1.5)
    sm = master.state_mark()
    daemon.restart()
    master.wait_reconnected(sm, timeout=20)
    o = assert_gi(master)[SITE_LIMIT_IOA]
    assert o.value == pytest.approx(100.0), f"site limit after restart: {o.value}"
    assert not o.iv


# ---------------------------------------------------------------------------
# misbehaving masters (raw sockets) while a well-behaved c104 master is connected
# ---------------------------------------------------------------------------

def _random_bytes(link: RawLink) -> None:
    rnd = random.Random(809)
    try:
        link.send_raw(bytes(rnd.getrandbits(8) for _ in range(4096)))
    except OSError:
        pass  # the station may close as soon as it sees garbage
    link.wait_closed(2)


def _truncated_apdu_then_close(link: RawLink) -> None:
    link.startdt()
    frame = A.i_frame(0, 0, A.gi_asdu(CA))
    link.send_raw(frame[: len(frame) // 2])
    time.sleep(0.3)


def _wrong_start_byte(link: RawLink) -> None:
    link.send_raw(bytes([0x69, 4, A.STARTDT_ACT, 0, 0, 0]))
    link.wait_closed(2)
    assert not any(ap.kind == "U" and ap.ufunc == A.STARTDT_CON for _, ap in link.received), \
        "STARTDT with a wrong start octet was confirmed"


@pytest.mark.parametrize("misbehave", [_random_bytes, _truncated_apdu_then_close,
                                       _wrong_start_byte],
                         ids=["random-bytes", "truncated-apdu", "wrong-start-byte"])
def test_garbage_from_one_connection_does_not_disturb_the_station(daemon, master, misbehave):
    assert_gi(master)
    with RawLink(daemon.port) as bad:
        misbehave(bad)
    time.sleep(0.3)
    assert_station_healthy(daemon, master)
    with RawLink(daemon.port) as fresh:   # still accepting new masters
        fresh.startdt()


def test_i_frame_before_startdt_closes_the_connection(daemon, master):
    with RawLink(daemon.port) as link:
        link.send_asdu(A.gi_asdu(CA))
        assert link.wait_closed(5), "station kept a connection that sent an I-frame before STARTDT"
        assert not [ap for _, ap in link.received if ap.kind == "I"], \
            "station answered an I-frame received before STARTDT"
    assert_station_healthy(daemon, master)


def test_ack_of_an_unsent_frame_closes_the_connection(daemon, master):
    with RawLink(daemon.port) as link:
        link.startdt()
        link.collect(0.5)                       # whatever the station sends unasked
        link.send_s(nr=(link.nr + 10) % 32768)  # acknowledges frames never sent
        assert link.wait_closed(5), "station accepted an S-frame acknowledging unsent frames"
    assert_station_healthy(daemon, master)


def test_unacknowledging_master_gets_k_frames_then_is_closed_after_t1(make_daemon, make_master):
    k, t1 = 12, 2
    pts = layout(SITE["ioa_base"], MANY_CHARGERS)
    d = make_daemon(chargers=MANY_CHARGERS, iec104={"k": k, "w": 8, "t1_s": t1, "t2_s": 1})
    m = make_master(d.port, w=1, t2_s=1)   # acknowledge at once: t1 is only 2 s here
    with RawLink(d.port, auto_ack=False) as link:
        link.startdt()
        link.send_asdu(A.gi_asdu(CA))
        i_frames: list[float] = []
        t_end = time.monotonic() + t1 + 10
        try:
            while time.monotonic() < t_end:
                ap = link.recv(t_end - time.monotonic())
                if ap is not None and ap.kind == "I":
                    i_frames.append(time.monotonic())
        except Closed:
            pass
        assert link.closed, f"station did not close an unacknowledging connection within " \
                            f"{t1 + 10}s (t1 = {t1}s)"
        assert len(i_frames) == k, f"station sent {len(i_frames)} unacknowledged I-frames, k = {k}"
        waited = link.closed_at - i_frames[0]
        assert t1 - 0.5 <= waited <= t1 + 3, \
            f"closed {waited:.2f}s after the first unacknowledged I-frame, t1 = {t1}s"
    assert_station_healthy(d, m, pts)
