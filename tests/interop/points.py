"""The IEC 104 point layout the tests expect (CONTRACT §3), computed independently."""

from __future__ import annotations

from dataclasses import dataclass

import asdu as A

SITE_MONITOR = {0: A.M_ME_TF_1, 1: A.M_IT_TB_1, 2: A.M_ME_TF_1, 3: A.M_SP_TB_1, 4: A.M_ME_TF_1}
SITE_COMMANDS = {10: A.C_SE_NC_1}
SITE_LIMIT_CMD = 10    # offset of the site power-limit setpoint
SITE_LIMIT_IN_FORCE = 2

CHARGER_MONITOR = {0: A.M_SP_TB_1, 1: A.M_ME_TF_1, 2: A.M_IT_TB_1, 3: A.M_ME_TF_1,
                   4: A.M_SP_TB_1, 5: A.M_SP_TB_1}
CONNECTOR_MONITOR = {0: A.M_SP_TB_1, 1: A.M_SP_TB_1, 2: A.M_SP_TB_1, 3: A.M_ME_TF_1,
                     4: A.M_IT_TB_1, 5: A.M_ME_TF_1}
CHARGER_COMMANDS = {90: A.C_SE_NC_1, 91: A.C_SE_NB_1, 92: A.C_SC_NA_1, 93: A.C_SC_NA_1,
                    94: A.C_SC_NA_1}

# Non-time-tagged equivalents used in GI / CI answers when gi_with_time = false.
WITHOUT_TIME = {A.M_SP_TB_1: A.M_SP_NA_1, A.M_ME_TF_1: A.M_ME_NC_1, A.M_IT_TB_1: A.M_IT_NA_1}


@dataclass(frozen=True)
class Point:
    ioa: int
    type_id: int
    name: str
    charger: str = ""
    offset: int = 0

    @property
    def is_counter(self) -> bool:
        return self.type_id == A.M_IT_TB_1

    @property
    def is_command(self) -> bool:
        return self.type_id >= 45

    @property
    def is_online_point(self) -> bool:
        return bool(self.charger) and self.offset == 0


def layout(site_base: int, chargers: list[dict]) -> dict[int, Point]:
    pts: dict[int, Point] = {}

    def add(p: Point) -> None:
        assert p.ioa not in pts, f"test layout overlaps at IOA {p.ioa}"
        pts[p.ioa] = p

    for off, t in {**SITE_MONITOR, **SITE_COMMANDS}.items():
        add(Point(site_base + off, t, f"site+{off}", "", off))
    for ch in chargers:
        base = ch["ioa_base"]
        for off, t in {**CHARGER_MONITOR, **CHARGER_COMMANDS}.items():
            add(Point(base + off, t, f"{ch['id']}+{off}", ch["id"], off))
        for n in range(1, ch.get("connectors", 2) + 1):
            for sub, t in CONNECTOR_MONITOR.items():
                off = 10 * n + sub
                add(Point(base + off, t, f"{ch['id']}.c{n}+{sub}", ch["id"], off))
    return pts


def gi_expected(pts: dict[int, Point], with_time: bool = True) -> dict[int, int]:
    """ioa -> type id of every point a general interrogation must answer."""
    out = {}
    for p in pts.values():
        if p.is_command or p.is_counter:
            continue
        out[p.ioa] = p.type_id if with_time else WITHOUT_TIME[p.type_id]
    return out


def ci_expected(pts: dict[int, Point], with_time: bool = True) -> dict[int, int]:
    """ioa -> type id of every integrated total (counter interrogation)."""
    return {p.ioa: (A.M_IT_TB_1 if with_time else A.M_IT_NA_1)
            for p in pts.values() if p.is_counter}
