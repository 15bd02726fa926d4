//! APCI codec of IEC 60870-5-104 §5 (definition of the APCI): the `0x68 L CF1 CF2 CF3 CF4`
//! header and its three control-field formats (I, S, U), with the 15-bit send and receive
//! sequence numbers of §5.1.
//!
//! The decoder is streaming and strict. It never guesses where the next frame starts: 104
//! has no resynchronisation mechanism, so any octet that is not a valid header means the TCP
//! stream is broken and the caller closes the connection. Strictness also makes
//! the codec a bijection on the frames it accepts, so `encode(decode(x)) == x` holds and the
//! fuzz target can assert it.

use thiserror::Error;

/// Start octet of every APDU.
pub const START: u8 = 0x68;
/// Longest APDU on the wire: start octet + length octet + 253.
pub const MAX_APDU_LEN: usize = 255;
/// Longest ASDU an I-frame can carry: the length octet counts 4 control octets too.
pub const MAX_ASDU_LEN: usize = 249;
/// Sequence numbers N(S)/N(R) count modulo this (15 bits).
pub const SEQ_MODULUS: u16 = 0x8000;

/// Largest value of the length octet (§5).
const MAX_LENGTH_OCTET: u8 = 253;
/// The length octet of S- and U-frames: the control field alone.
const CONTROL_LEN: u8 = 4;

/// Functions of an unnumbered (U-format) frame. Exactly one may be set per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UFunction {
    StartDtAct,
    StartDtCon,
    StopDtAct,
    StopDtCon,
    TestFrAct,
    TestFrCon,
}

impl UFunction {
    /// The full first control octet, format bits included.
    pub const fn control_octet(self) -> u8 {
        match self {
            UFunction::StartDtAct => 0x07,
            UFunction::StartDtCon => 0x0B,
            UFunction::StopDtAct => 0x13,
            UFunction::StopDtCon => 0x23,
            UFunction::TestFrAct => 0x43,
            UFunction::TestFrCon => 0x83,
        }
    }

    fn from_control_octet(cf1: u8) -> Option<UFunction> {
        Some(match cf1 {
            0x07 => UFunction::StartDtAct,
            0x0B => UFunction::StartDtCon,
            0x13 => UFunction::StopDtAct,
            0x23 => UFunction::StopDtCon,
            0x43 => UFunction::TestFrAct,
            0x83 => UFunction::TestFrCon,
            _ => return None,
        })
    }

    /// Name as written in the standard, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            UFunction::StartDtAct => "STARTDT act",
            UFunction::StartDtCon => "STARTDT con",
            UFunction::StopDtAct => "STOPDT act",
            UFunction::StopDtCon => "STOPDT con",
            UFunction::TestFrAct => "TESTFR act",
            UFunction::TestFrCon => "TESTFR con",
        }
    }
}

impl std::fmt::Display for UFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One application protocol data unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apdu {
    /// Numbered information transfer; `send_seq`/`recv_seq` are N(S)/N(R), 0..=32767.
    I {
        send_seq: u16,
        recv_seq: u16,
        asdu: Vec<u8>,
    },
    /// Numbered supervisory frame: acknowledges everything below N(R).
    S { recv_seq: u16 },
    /// Unnumbered control function.
    U(UFunction),
}

/// Why octets are not a valid APDU (decode) or an APDU cannot be put on the wire (encode).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApciError {
    #[error("start octet is {0:#04x}, expected 0x68")]
    WrongStart(u8),
    #[error("APDU length octet {0} is below 4 (the control field alone needs 4)")]
    LengthTooShort(u8),
    #[error("APDU length octet {0} exceeds the maximum of 253")]
    LengthTooLong(u8),
    #[error("I-frame carries no ASDU")]
    IFrameWithoutAsdu,
    #[error("I-frame ASDU of {0} octets exceeds the maximum of 249")]
    AsduTooLong(usize),
    #[error("{format}-frame has length octet {length}, expected 4 (no ASDU allowed)")]
    UnexpectedAsdu { format: char, length: u8 },
    #[error("S-frame control octets 1-2 are {cf1:#04x} {cf2:#04x}, expected 0x01 0x00")]
    MalformedSFrame { cf1: u8, cf2: u8 },
    #[error("U-frame control octets 2-4 are {cf2:#04x} {cf3:#04x} {cf4:#04x}, expected zero")]
    MalformedUFrame { cf2: u8, cf3: u8, cf4: u8 },
    #[error("U-frame control octet {0:#04x} does not set exactly one function bit")]
    UnknownUFunction(u8),
    #[error("control octet 3 is {0:#04x}: its lowest bit is reserved and must be 0")]
    ReservedBitSet(u8),
    #[error("sequence number {0} does not fit in 15 bits")]
    SeqOutOfRange(u16),
}

/// Streaming decode of the APDU at the start of `buf`.
///
/// `Ok(None)`: `buf` is a valid but incomplete prefix; call again with more octets.
/// `Ok(Some((apdu, consumed)))`: one APDU from `buf[..consumed]`.
/// `Err(_)`: the stream is broken; the caller closes the connection.
///
/// Header errors are reported as soon as the header octets are present, so garbage is
/// rejected without waiting for a length that would never arrive.
pub fn decode(buf: &[u8]) -> Result<Option<(Apdu, usize)>, ApciError> {
    let Some(&start) = buf.first() else {
        return Ok(None);
    };
    if start != START {
        return Err(ApciError::WrongStart(start));
    }
    let Some(&length) = buf.get(1) else {
        return Ok(None);
    };
    if length < CONTROL_LEN {
        return Err(ApciError::LengthTooShort(length));
    }
    if length > MAX_LENGTH_OCTET {
        return Err(ApciError::LengthTooLong(length));
    }
    let total = 2 + usize::from(length);
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let [cf1, cf2, cf3, cf4] = [frame[2], frame[3], frame[4], frame[5]];

    let apdu = if cf1 & 0x01 == 0 {
        // Both sequence numbers share the layout; checking the N(R) padding bit here keeps
        // the codec bijective (the N(S) padding bit is the format bit itself).
        if cf3 & 0x01 != 0 {
            return Err(ApciError::ReservedBitSet(cf3));
        }
        if length == CONTROL_LEN {
            return Err(ApciError::IFrameWithoutAsdu);
        }
        Apdu::I {
            send_seq: seq_from_octets(cf1, cf2),
            recv_seq: seq_from_octets(cf3, cf4),
            asdu: frame[6..].to_vec(),
        }
    } else if cf1 & 0x03 == 0x01 {
        if cf1 != 0x01 || cf2 != 0 {
            return Err(ApciError::MalformedSFrame { cf1, cf2 });
        }
        if cf3 & 0x01 != 0 {
            return Err(ApciError::ReservedBitSet(cf3));
        }
        if length != CONTROL_LEN {
            return Err(ApciError::UnexpectedAsdu {
                format: 'S',
                length,
            });
        }
        Apdu::S {
            recv_seq: seq_from_octets(cf3, cf4),
        }
    } else {
        let function =
            UFunction::from_control_octet(cf1).ok_or(ApciError::UnknownUFunction(cf1))?;
        if (cf2, cf3, cf4) != (0, 0, 0) {
            return Err(ApciError::MalformedUFrame { cf2, cf3, cf4 });
        }
        if length != CONTROL_LEN {
            return Err(ApciError::UnexpectedAsdu {
                format: 'U',
                length,
            });
        }
        Apdu::U(function)
    };
    Ok(Some((apdu, total)))
}

impl Apdu {
    /// Appends the wire form to `out`. On error nothing is appended, so a caller's buffer
    /// never holds half a frame.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ApciError> {
        match self {
            Apdu::I {
                send_seq,
                recv_seq,
                asdu,
            } => encode_i_frame(*send_seq, *recv_seq, asdu, out)?,
            Apdu::S { recv_seq } => {
                let [cf3, cf4] = seq_to_octets(*recv_seq)?;
                out.extend_from_slice(&[START, CONTROL_LEN, 0x01, 0x00, cf3, cf4]);
            }
            Apdu::U(function) => {
                out.extend_from_slice(&[START, CONTROL_LEN, function.control_octet(), 0, 0, 0]);
            }
        }
        Ok(())
    }

    /// Octets [`Apdu::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Apdu::I { asdu, .. } => 6 + asdu.len(),
            Apdu::S { .. } | Apdu::U(_) => 6,
        }
    }
}

/// Appends an I-frame without building an [`Apdu`], so a sender can keep ownership of the
/// ASDU (the link retains it until acknowledged). Same checks as [`Apdu::encode`].
pub fn encode_i_frame(
    send_seq: u16,
    recv_seq: u16,
    asdu: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ApciError> {
    if asdu.is_empty() {
        return Err(ApciError::IFrameWithoutAsdu);
    }
    if asdu.len() > MAX_ASDU_LEN {
        return Err(ApciError::AsduTooLong(asdu.len()));
    }
    let [cf1, cf2] = seq_to_octets(send_seq)?;
    let [cf3, cf4] = seq_to_octets(recv_seq)?;
    out.reserve(6 + asdu.len());
    // Cannot truncate: asdu.len() <= 249 was checked above.
    out.extend_from_slice(&[START, (4 + asdu.len()) as u8, cf1, cf2, cf3, cf4]);
    out.extend_from_slice(asdu);
    Ok(())
}

/// N(S)/N(R) occupy bits 1..=15 of a little-endian pair; bit 0 is format/padding.
fn seq_from_octets(lo: u8, hi: u8) -> u16 {
    u16::from_le_bytes([lo, hi]) >> 1
}

fn seq_to_octets(seq: u16) -> Result<[u8; 2], ApciError> {
    if seq >= SEQ_MODULUS {
        return Err(ApciError::SeqOutOfRange(seq));
    }
    Ok((seq << 1).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(apdu: &Apdu) -> Vec<u8> {
        let mut out = Vec::new();
        apdu.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn u_frames_match_the_standard_octets() {
        let cases = [
            (UFunction::StartDtAct, 0x07),
            (UFunction::StartDtCon, 0x0B),
            (UFunction::StopDtAct, 0x13),
            (UFunction::StopDtCon, 0x23),
            (UFunction::TestFrAct, 0x43),
            (UFunction::TestFrCon, 0x83),
        ];
        for (function, cf1) in cases {
            let wire = [0x68, 0x04, cf1, 0, 0, 0];
            assert_eq!(enc(&Apdu::U(function)), wire);
            assert_eq!(decode(&wire), Ok(Some((Apdu::U(function), 6))));
        }
    }

    #[test]
    fn i_frame_general_interrogation() {
        let wire = [
            0x68, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x64, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00,
            0x00, 0x14,
        ];
        let apdu = Apdu::I {
            send_seq: 0,
            recv_seq: 0,
            asdu: wire[6..].to_vec(),
        };
        assert_eq!(decode(&wire), Ok(Some((apdu.clone(), 16))));
        assert_eq!(enc(&apdu), wire);
        assert_eq!(apdu.encoded_len(), 16);
    }

    #[test]
    fn sequence_numbers_use_all_15_bits() {
        let apdu = Apdu::I {
            send_seq: 0x7FFF,
            recv_seq: 0x1234,
            asdu: vec![1],
        };
        let wire = enc(&apdu);
        assert_eq!(&wire[..6], &[0x68, 0x05, 0xFE, 0xFF, 0x68, 0x24]);
        assert_eq!(decode(&wire), Ok(Some((apdu, 7))));

        let s = Apdu::S { recv_seq: 300 };
        assert_eq!(enc(&s), [0x68, 0x04, 0x01, 0x00, 0x58, 0x02]);
        assert_eq!(decode(&enc(&s)), Ok(Some((s, 6))));
    }

    #[test]
    fn incomplete_prefixes_ask_for_more() {
        let wire = enc(&Apdu::I {
            send_seq: 5,
            recv_seq: 7,
            asdu: vec![0xAA; 20],
        });
        for cut in 0..wire.len() {
            assert_eq!(decode(&wire[..cut]), Ok(None), "cut at {cut}");
        }
        let mut two = wire.clone();
        two.extend_from_slice(&wire);
        assert_eq!(decode(&two).unwrap().unwrap().1, wire.len());
    }

    #[test]
    fn header_errors_are_reported_without_waiting() {
        assert_eq!(decode(&[0x10]), Err(ApciError::WrongStart(0x10)));
        assert_eq!(decode(&[0x68, 0x03]), Err(ApciError::LengthTooShort(3)));
        assert_eq!(decode(&[0x68, 0x00]), Err(ApciError::LengthTooShort(0)));
        assert_eq!(decode(&[0x68, 0xFE]), Err(ApciError::LengthTooLong(254)));
        assert_eq!(decode(&[0x68, 0xFD]), Ok(None));
    }

    #[test]
    fn malformed_control_fields_are_rejected() {
        let bad: [(&[u8], ApciError); 9] = [
            (&[0x68, 4, 0, 0, 0, 0], ApciError::IFrameWithoutAsdu),
            (&[0x68, 5, 0, 0, 1, 0, 9], ApciError::ReservedBitSet(1)),
            (
                &[0x68, 4, 0x05, 0, 0, 0],
                ApciError::MalformedSFrame { cf1: 5, cf2: 0 },
            ),
            (
                &[0x68, 4, 0x01, 2, 0, 0],
                ApciError::MalformedSFrame { cf1: 1, cf2: 2 },
            ),
            (&[0x68, 4, 0x01, 0, 3, 0], ApciError::ReservedBitSet(3)),
            (
                &[0x68, 5, 0x01, 0, 0, 0, 9],
                ApciError::UnexpectedAsdu {
                    format: 'S',
                    length: 5,
                },
            ),
            (&[0x68, 4, 0x03, 0, 0, 0], ApciError::UnknownUFunction(0x03)),
            (&[0x68, 4, 0x0F, 0, 0, 0], ApciError::UnknownUFunction(0x0F)),
            (
                &[0x68, 4, 0x43, 0, 0, 1],
                ApciError::MalformedUFrame {
                    cf2: 0,
                    cf3: 0,
                    cf4: 1,
                },
            ),
        ];
        for (wire, err) in bad {
            assert_eq!(decode(wire), Err(err), "{wire:02x?}");
        }
        assert_eq!(
            decode(&[0x68, 5, 0x07, 0, 0, 0, 0]),
            Err(ApciError::UnexpectedAsdu {
                format: 'U',
                length: 5
            })
        );
    }

    #[test]
    fn encode_rejects_what_the_wire_cannot_carry() {
        let mut out = vec![0xEE];
        let too_long = Apdu::I {
            send_seq: 0,
            recv_seq: 0,
            asdu: vec![0; MAX_ASDU_LEN + 1],
        };
        assert_eq!(too_long.encode(&mut out), Err(ApciError::AsduTooLong(250)));
        let empty = Apdu::I {
            send_seq: 0,
            recv_seq: 0,
            asdu: vec![],
        };
        assert_eq!(empty.encode(&mut out), Err(ApciError::IFrameWithoutAsdu));
        let seq = Apdu::S { recv_seq: 0x8000 };
        assert_eq!(seq.encode(&mut out), Err(ApciError::SeqOutOfRange(0x8000)));
        assert_eq!(out, [0xEE], "a failed encode appends nothing");

        let longest = Apdu::I {
            send_seq: 1,
            recv_seq: 2,
            asdu: vec![0x55; MAX_ASDU_LEN],
        };
        let wire = enc(&longest);
        assert_eq!(wire.len(), MAX_APDU_LEN);
        assert_eq!(wire[1], 253);
        assert_eq!(decode(&wire), Ok(Some((longest, MAX_APDU_LEN))));
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            ApciError::WrongStart(0x10).to_string(),
            "start octet is 0x10, expected 0x68"
        );
        assert_eq!(UFunction::TestFrCon.to_string(), "TESTFR con");
    }
}
