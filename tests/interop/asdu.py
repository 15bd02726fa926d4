"""Minimal IEC 60870-5-104 APDU / ASDU codec for the interop tests.

Independent of the daemon's Rust codec on purpose: the tests decode what the
station puts on the wire with this second implementation (IEC 60870-5-101 §7,
IEC 60870-5-104 §5). 104 defaults only: COT 2 octets, CA 2 octets, IOA 3 octets.
"""

from __future__ import annotations

import datetime as _dt
import struct
from dataclasses import dataclass, field
from typing import Any, Optional

START = 0x68

# U-format functions (first control octet)
STARTDT_ACT = 0x07
STARTDT_CON = 0x0B
STOPDT_ACT = 0x13
STOPDT_CON = 0x23
TESTFR_ACT = 0x43
TESTFR_CON = 0x83

# Type identifications
M_SP_NA_1 = 1
M_ME_NC_1 = 13
M_IT_NA_1 = 15
M_SP_TB_1 = 30
M_ME_TF_1 = 36
M_IT_TB_1 = 37
C_SC_NA_1 = 45
C_SE_NB_1 = 49
C_SE_NC_1 = 50
M_EI_NA_1 = 70
C_IC_NA_1 = 100
C_CI_NA_1 = 101
C_RD_NA_1 = 102
C_CS_NA_1 = 103

# Causes of transmission
COT_PERIODIC = 1
COT_BACKGROUND = 2
COT_SPONTANEOUS = 3
COT_INITIALISED = 4
COT_REQUEST = 5
COT_ACTIVATION = 6
COT_ACTCON = 7
COT_DEACTIVATION = 8
COT_DEACTCON = 9
COT_ACTTERM = 10
COT_INROGEN = 20
COT_REQCOGEN = 37
COT_UNKNOWN_TYPE = 44
COT_UNKNOWN_COT = 45
COT_UNKNOWN_CA = 46
COT_UNKNOWN_IOA = 47

# Size of one information element set (without IOA) per type id.
ELEMENT_SIZE = {
    1: 1, 3: 1, 5: 2, 7: 5, 9: 3, 11: 3, 13: 5, 15: 5,
    30: 8, 31: 8, 32: 9, 33: 12, 34: 10, 35: 10, 36: 12, 37: 12,
    45: 1, 46: 1, 47: 1, 48: 3, 49: 3, 50: 5, 51: 4,
    58: 8, 59: 8, 60: 8, 61: 10, 62: 10, 63: 12, 64: 11,
    70: 1, 100: 1, 101: 1, 102: 0, 103: 7, 105: 1, 107: 9,
}

# Quality bits (SIQ / QDS)
Q_OV = 0x01
Q_BL = 0x10
Q_SB = 0x20
Q_NT = 0x40
Q_IV = 0x80


class ProtocolError(Exception):
    pass


# --------------------------------------------------------------------------
# CP56Time2a
# --------------------------------------------------------------------------

@dataclass
class CP56:
    ms: int
    minute: int
    hour: int
    day: int
    month: int
    year: int
    invalid: bool
    summer: bool

    def to_datetime(self) -> _dt.datetime:
        return _dt.datetime(2000 + self.year, self.month, self.day, self.hour,
                            self.minute, self.ms // 1000, (self.ms % 1000) * 1000,
                            tzinfo=_dt.timezone.utc)


def decode_cp56(b: bytes) -> CP56:
    if len(b) != 7:
        raise ProtocolError(f"CP56Time2a needs 7 octets, got {len(b)}")
    ms = b[0] | (b[1] << 8)
    return CP56(ms=ms, minute=b[2] & 0x3F, hour=b[3] & 0x1F, day=b[4] & 0x1F,
                month=b[5] & 0x0F, year=b[6] & 0x7F, invalid=bool(b[2] & 0x80),
                summer=bool(b[3] & 0x80))


def encode_cp56(t: Optional[_dt.datetime] = None) -> bytes:
    t = t or _dt.datetime.now(_dt.timezone.utc)
    t = t.astimezone(_dt.timezone.utc)
    ms = t.second * 1000 + t.microsecond // 1000
    dow = t.isoweekday()  # 1 = Monday .. 7 = Sunday
    return bytes([ms & 0xFF, ms >> 8, t.minute, t.hour, t.day | (dow << 5),
                  t.month, t.year % 100])


# --------------------------------------------------------------------------
# APDU
# --------------------------------------------------------------------------

@dataclass
class Apdu:
    kind: str  # "I", "S" or "U"
    raw: bytes
    ns: int = 0
    nr: int = 0
    ufunc: int = 0
    asdu: bytes = b""

    def __repr__(self) -> str:
        if self.kind == "I":
            return f"<I ns={self.ns} nr={self.nr} asdu={self.asdu.hex()}>"
        if self.kind == "S":
            return f"<S nr={self.nr}>"
        return f"<U 0x{self.ufunc:02x}>"


def parse_apdu(frame: bytes) -> Apdu:
    """Parse one complete APDU (start octet included)."""
    if len(frame) < 6 or frame[0] != START:
        raise ProtocolError(f"not an APDU: {frame.hex()}")
    if frame[1] != len(frame) - 2:
        raise ProtocolError(f"APDU length {frame[1]} != {len(frame) - 2}: {frame.hex()}")
    c1, c2, c3, c4 = frame[2:6]
    if c1 & 0x01 == 0:
        return Apdu("I", frame, ns=(c1 >> 1) | (c2 << 7), nr=(c3 >> 1) | (c4 << 7),
                    asdu=bytes(frame[6:]))
    if c1 & 0x03 == 0x01:
        return Apdu("S", frame, nr=(c3 >> 1) | (c4 << 7))
    return Apdu("U", frame, ufunc=c1)


def split_apdus(buf: bytearray) -> list[bytes]:
    """Take every complete APDU from the front of ``buf`` (modified in place)."""
    out = []
    while len(buf) >= 2:
        if buf[0] != START:
            raise ProtocolError(f"bad start octet 0x{buf[0]:02x}")
        n = buf[1] + 2
        if len(buf) < n:
            break
        out.append(bytes(buf[:n]))
        del buf[:n]
    return out


def u_frame(func: int) -> bytes:
    return bytes([START, 4, func, 0, 0, 0])


def s_frame(nr: int) -> bytes:
    nr &= 0x7FFF
    return bytes([START, 4, 0x01, 0x00, (nr << 1) & 0xFE, nr >> 7])


def i_frame(ns: int, nr: int, asdu: bytes) -> bytes:
    ns &= 0x7FFF
    nr &= 0x7FFF
    if len(asdu) > 249:
        raise ValueError("ASDU too long")
    return bytes([START, len(asdu) + 4, (ns << 1) & 0xFE, ns >> 7,
                  (nr << 1) & 0xFE, nr >> 7]) + asdu


# --------------------------------------------------------------------------
# ASDU
# --------------------------------------------------------------------------

@dataclass
class InfoObject:
    ioa: int
    raw: bytes
    value: Any = None
    quality: Optional[int] = None  # SIQ/QDS byte (or BCR flag byte for counters)
    time: Optional[CP56] = None
    qualifier: Optional[int] = None  # SCO / QOS / QOI / QCC
    select: Optional[bool] = None    # S/E bit of commands

    @property
    def iv(self) -> bool:
        return bool(self.quality is not None and self.quality & Q_IV)

    @property
    def nt(self) -> bool:
        return bool(self.quality is not None and self.quality & Q_NT)


@dataclass
class Asdu:
    type_id: int
    sq: bool
    cot: int
    negative: bool
    test: bool
    oa: int
    ca: int
    objects: list[InfoObject] = field(default_factory=list)
    raw: bytes = b""

    def __repr__(self) -> str:
        pn = " P/N" if self.negative else ""
        objs = ", ".join(f"{o.ioa}={o.value!r}/q{o.quality}" for o in self.objects[:6])
        more = " ..." if len(self.objects) > 6 else ""
        return f"<ASDU t={self.type_id} cot={self.cot}{pn} ca={self.ca} [{objs}{more}]>"

    @property
    def ioas(self) -> list[int]:
        return [o.ioa for o in self.objects]


def _decode_element(type_id: int, e: bytes, obj: InfoObject) -> None:
    if type_id in (1, 30):
        obj.value = e[0] & 0x01
        obj.quality = e[0] & 0xF0
    elif type_id in (3, 31):
        obj.value = e[0] & 0x03
        obj.quality = e[0] & 0xF0
    elif type_id in (13, 36):
        obj.value = struct.unpack("<f", e[0:4])[0]
        obj.quality = e[4]
    elif type_id in (11, 35):
        obj.value = struct.unpack("<h", e[0:2])[0]
        obj.quality = e[2]
    elif type_id in (9, 34):
        obj.value = struct.unpack("<h", e[0:2])[0] / 32768.0
        obj.quality = e[2]
    elif type_id in (15, 37):
        obj.value = struct.unpack("<i", e[0:4])[0]
        obj.quality = e[4]  # bits0-4 SQ, bit5 CY, bit6 CA, bit7 IV
    elif type_id in (45, 46, 47, 58, 59, 60):
        obj.value = e[0] & 0x03 if type_id in (46, 47, 59, 60) else e[0] & 0x01
        obj.qualifier = e[0]
        obj.select = bool(e[0] & 0x80)
    elif type_id in (48, 61):
        obj.value = struct.unpack("<h", e[0:2])[0] / 32768.0
        obj.qualifier = e[2]
        obj.select = bool(e[2] & 0x80)
    elif type_id in (49, 62):
        obj.value = struct.unpack("<h", e[0:2])[0]
        obj.qualifier = e[2]
        obj.select = bool(e[2] & 0x80)
    elif type_id in (50, 63):
        obj.value = struct.unpack("<f", e[0:4])[0]
        obj.qualifier = e[4]
        obj.select = bool(e[4] & 0x80)
    elif type_id in (70, 100, 101, 105):
        obj.value = e[0]
        obj.qualifier = e[0]
    elif type_id == 103:
        obj.time = decode_cp56(e)
    # time tags of the time-tagged monitor / command types
    if type_id in (30, 31, 32, 33, 34, 35, 36, 37, 58, 59, 60, 61, 62, 63, 64):
        obj.time = decode_cp56(e[-7:])


def parse_asdu(b: bytes) -> Asdu:
    if len(b) < 6:
        raise ProtocolError(f"ASDU too short: {b.hex()}")
    type_id, vsq, cot1, oa = b[0], b[1], b[2], b[3]
    ca = b[4] | (b[5] << 8)
    sq = bool(vsq & 0x80)
    n = vsq & 0x7F
    a = Asdu(type_id=type_id, sq=sq, cot=cot1 & 0x3F, negative=bool(cot1 & 0x40),
             test=bool(cot1 & 0x80), oa=oa, ca=ca, raw=bytes(b))
    size = ELEMENT_SIZE.get(type_id)
    if size is None:
        return a  # unknown to this helper: header only
    pos = 6
    ioa = 0
    for i in range(n):
        if not sq or i == 0:
            if pos + 3 > len(b):
                raise ProtocolError(f"truncated IOA in {b.hex()}")
            ioa = b[pos] | (b[pos + 1] << 8) | (b[pos + 2] << 16)
            pos += 3
        else:
            ioa += 1
        if pos + size > len(b):
            raise ProtocolError(f"truncated element in {b.hex()}")
        e = b[pos:pos + size]
        pos += size
        obj = InfoObject(ioa=ioa, raw=bytes(e))
        _decode_element(type_id, e, obj)
        a.objects.append(obj)
    if pos != len(b):
        raise ProtocolError(f"{len(b) - pos} trailing octets in ASDU {b.hex()}")
    return a


def build_asdu(type_id: int, cot: int, ca: int, ioa: int, element: bytes,
               oa: int = 0, negative: bool = False, test: bool = False) -> bytes:
    cot1 = (cot & 0x3F) | (0x40 if negative else 0) | (0x80 if test else 0)
    return bytes([type_id, 1, cot1, oa, ca & 0xFF, ca >> 8,
                  ioa & 0xFF, (ioa >> 8) & 0xFF, ioa >> 16]) + element


# Element builders for commands
def sco(on: bool, select: bool = False, qu: int = 0) -> bytes:
    return bytes([(1 if on else 0) | ((qu & 0x1F) << 2) | (0x80 if select else 0)])


def qos(select: bool = False, ql: int = 0) -> int:
    return (ql & 0x7F) | (0x80 if select else 0)


def setpoint_float(value: float, select: bool = False) -> bytes:
    return struct.pack("<fB", value, qos(select))


def setpoint_scaled(value: int, select: bool = False) -> bytes:
    return struct.pack("<hB", value, qos(select))


def gi_asdu(ca: int = 1, qoi: int = 20, cot: int = COT_ACTIVATION) -> bytes:
    return build_asdu(C_IC_NA_1, cot, ca, 0, bytes([qoi]))


def ci_asdu(ca: int = 1, qcc: int = 5, cot: int = COT_ACTIVATION) -> bytes:
    return build_asdu(C_CI_NA_1, cot, ca, 0, bytes([qcc]))


def clock_sync_asdu(ca: int = 1, t: Optional[_dt.datetime] = None) -> bytes:
    return build_asdu(C_CS_NA_1, COT_ACTIVATION, ca, 0, encode_cp56(t))


def parse_apdu_asdu(frame: bytes) -> Optional[Asdu]:
    """ASDU of an I-frame APDU, else None."""
    ap = parse_apdu(frame)
    return parse_asdu(ap.asdu) if ap.kind == "I" else None
