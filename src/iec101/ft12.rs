//! FT1.2 frame codec of IEC 60870-5-101: the frame formats of IEC 60870-5-1 §6.2.4.2 (format
//! class FT1.2: fixed length, variable length, single character) and the control field of
//! IEC 60870-5-2 §5.1 (PRM, FCB/ACD, FCV/DFC, DIR, function code).
//!
//! ```text
//! fixed:    0x10 C [A] CS 0x16
//! variable: 0x68 L L 0x68 C [A] ASDU CS 0x16     L = octets of C + A + ASDU (≤ 255)
//! single:   0xE5                                  (ACK / NACK-no-data replacement)
//! ```
//!
//! A is the link address, 0, 1 or 2 octets, little endian. CS is the sum of C, A and the ASDU
//! octets modulo 256.
//!
//! Unlike 104 over TCP, a serial line carries noise, so the [`Decoder`] resynchronises
//! (IEC 60870-5-1 §6.2.4.2.1, rules R1–R4 in spirit): it skips octets until a start character,
//! and a frame that fails any check (second start character, repeated length, checksum, end
//! character) is dropped by discarding only its first octet, so a genuine frame hidden behind a
//! corrupted header is still found. Every kind of failure is counted in [`DecoderStats`]. The
//! decoder holds at most one maximal frame ([`MAX_FRAME_LEN`] octets) and never panics.

use thiserror::Error;

/// Start character of a fixed-length frame.
pub const START_FIXED: u8 = 0x10;
/// Start character (sent twice) of a variable-length frame.
pub const START_VARIABLE: u8 = 0x68;
/// The single control character that may replace an ACK or a NACK-no-data.
pub const SINGLE_ACK: u8 = 0xE5;
/// End character of fixed and variable frames.
pub const END: u8 = 0x16;
/// Largest value of the length octet L.
pub const MAX_LENGTH_OCTET: usize = 255;
/// Longest frame on the wire: 4 header octets + L + checksum + end.
pub const MAX_FRAME_LEN: usize = 4 + MAX_LENGTH_OCTET + 2;

/// Function codes of frames sent by a primary station (PRM = 1), IEC 60870-5-2 Table 1 / 3.
pub mod primary {
    /// Reset of remote link (SEND/CONFIRM).
    pub const RESET_REMOTE_LINK: u8 = 0;
    /// Reset of user process (SEND/CONFIRM).
    pub const RESET_USER_PROCESS: u8 = 1;
    /// Test function for link (balanced only, SEND/CONFIRM).
    pub const TEST_LINK: u8 = 2;
    /// User data, confirmed (SEND/CONFIRM).
    pub const USER_DATA_CONFIRMED: u8 = 3;
    /// User data, no reply (SEND/NO REPLY).
    pub const USER_DATA_UNCONFIRMED: u8 = 4;
    /// Reset of frame count bit (unbalanced, SEND/CONFIRM).
    pub const RESET_FCB: u8 = 7;
    /// Request status of link (REQUEST/RESPOND).
    pub const REQUEST_LINK_STATUS: u8 = 9;
    /// Request user data class 1 (unbalanced, REQUEST/RESPOND).
    pub const REQUEST_CLASS_1: u8 = 10;
    /// Request user data class 2 (unbalanced, REQUEST/RESPOND).
    pub const REQUEST_CLASS_2: u8 = 11;
}

/// Function codes of frames sent by a secondary station (PRM = 0), IEC 60870-5-2 Table 2 / 4.
pub mod secondary {
    /// Positive acknowledgement.
    pub const ACK: u8 = 0;
    /// Message not accepted, link busy.
    pub const NACK: u8 = 1;
    /// User data (answer to a class 1 or class 2 request).
    pub const USER_DATA: u8 = 8;
    /// Requested data not available.
    pub const NACK_NO_DATA: u8 = 9;
    /// Status of link or access demand.
    pub const LINK_STATUS: u8 = 11;
    /// Link service not functioning.
    pub const NOT_FUNCTIONING: u8 = 14;
    /// Link service not implemented.
    pub const NOT_IMPLEMENTED: u8 = 15;
}

/// The control field C of IEC 60870-5-2 §5.1, decoded.
///
/// Bits 5 and 4 mean FCB/FCV in a primary frame (PRM = 1) and ACD/DFC in a secondary frame
/// (PRM = 0); the accessors name both readings. DIR (bit 7) is used in balanced mode only and
/// is reserved (0) in unbalanced mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Control {
    /// Physical transmission direction (balanced): 1 = from station A (the controlling station).
    pub dir: bool,
    /// Primary message: 1 = from the initiating (primary) station.
    pub prm: bool,
    /// FCB (primary) or ACD (secondary).
    pub fcb_or_acd: bool,
    /// FCV (primary) or DFC (secondary).
    pub fcv_or_dfc: bool,
    /// Function code, 0..=15.
    pub function: u8,
}

impl Control {
    /// A primary frame's control field with DIR = 0.
    pub const fn primary(function: u8, fcb: bool, fcv: bool) -> Control {
        Control {
            dir: false,
            prm: true,
            fcb_or_acd: fcb,
            fcv_or_dfc: fcv,
            function: function & 0x0F,
        }
    }

    /// A secondary frame's control field with DIR = 0.
    pub const fn secondary(function: u8, acd: bool, dfc: bool) -> Control {
        Control {
            dir: false,
            prm: false,
            fcb_or_acd: acd,
            fcv_or_dfc: dfc,
            function: function & 0x0F,
        }
    }

    /// The same control field with DIR set to `dir`.
    pub const fn with_dir(mut self, dir: bool) -> Control {
        self.dir = dir;
        self
    }

    /// Decodes the control octet; every octet is a valid control field.
    pub const fn from_octet(c: u8) -> Control {
        Control {
            dir: c & 0x80 != 0,
            prm: c & 0x40 != 0,
            fcb_or_acd: c & 0x20 != 0,
            fcv_or_dfc: c & 0x10 != 0,
            function: c & 0x0F,
        }
    }

    /// The control octet (the function code is masked to 4 bits).
    pub const fn octet(self) -> u8 {
        (self.dir as u8) << 7
            | (self.prm as u8) << 6
            | (self.fcb_or_acd as u8) << 5
            | (self.fcv_or_dfc as u8) << 4
            | (self.function & 0x0F)
    }

    /// Frame count bit (meaningful when `prm`).
    pub const fn fcb(self) -> bool {
        self.fcb_or_acd
    }

    /// Frame count bit valid (meaningful when `prm`).
    pub const fn fcv(self) -> bool {
        self.fcv_or_dfc
    }

    /// Access demand: class 1 data waiting (meaningful when `!prm`).
    pub const fn acd(self) -> bool {
        self.fcb_or_acd
    }

    /// Data flow control: the secondary cannot take more user data (meaningful when `!prm`).
    pub const fn dfc(self) -> bool {
        self.fcv_or_dfc
    }
}

/// Octets of the link address field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressSize {
    /// No address field (balanced point-to-point only).
    Zero,
    One,
    Two,
}

impl AddressSize {
    /// Number of octets.
    pub const fn octets(self) -> usize {
        match self {
            AddressSize::Zero => 0,
            AddressSize::One => 1,
            AddressSize::Two => 2,
        }
    }

    /// The broadcast address for this size (0xFF or 0xFFFF); `None` without an address field.
    pub const fn broadcast(self) -> Option<u16> {
        match self {
            AddressSize::Zero => None,
            AddressSize::One => Some(0xFF),
            AddressSize::Two => Some(0xFFFF),
        }
    }

    /// Whether `address` fits the field.
    pub const fn fits(self, address: u16) -> bool {
        match self {
            AddressSize::Zero => address == 0,
            AddressSize::One => address <= 0xFF,
            AddressSize::Two => true,
        }
    }
}

impl TryFrom<u8> for AddressSize {
    type Error = EncodeError;

    fn try_from(octets: u8) -> Result<AddressSize, EncodeError> {
        match octets {
            0 => Ok(AddressSize::Zero),
            1 => Ok(AddressSize::One),
            2 => Ok(AddressSize::Two),
            n => Err(EncodeError::AddressSize(n)),
        }
    }
}

/// Longest ASDU a variable frame can carry with this address size: 255 − C − A.
pub const fn max_asdu_len(address_size: AddressSize) -> usize {
    MAX_LENGTH_OCTET - 1 - address_size.octets()
}

/// One FT1.2 frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Frame {
    /// `0x10 C A CS 0x16`.
    Fixed { control: Control, address: u16 },
    /// `0x68 L L 0x68 C A ASDU CS 0x16`.
    Variable {
        control: Control,
        address: u16,
        asdu: Vec<u8>,
    },
    /// `0xE5`.
    SingleAck,
}

/// Why a frame could not be encoded.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    #[error("link address size {0} is not 0, 1 or 2 octets")]
    AddressSize(u8),
    #[error("link address {address} does not fit in {octets} octet(s)")]
    AddressTooLarge { address: u16, octets: usize },
    #[error("ASDU of {len} octets exceeds the maximum of {max} for this address size")]
    AsduTooLong { len: usize, max: usize },
}

/// Why received octets were dropped. The decoder has already resynchronised.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    #[error("variable frame: second start character is {0:#04x}, expected 0x68")]
    BadSecondStart(u8),
    #[error("variable frame: length {first} differs from repeated length {second}")]
    LengthMismatch { first: u8, second: u8 },
    #[error("variable frame: length {length} is below {min} (control field + link address)")]
    LengthTooSmall { length: u8, min: u8 },
    #[error("checksum {received:#04x} received, {computed:#04x} computed")]
    BadChecksum { received: u8, computed: u8 },
    #[error("end character {0:#04x}, expected 0x16")]
    BadEnd(u8),
}

fn checksum(octets: &[u8]) -> u8 {
    octets.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

fn push_address(out: &mut Vec<u8>, address: u16, size: AddressSize) -> Result<(), EncodeError> {
    if !size.fits(address) {
        return Err(EncodeError::AddressTooLarge {
            address,
            octets: size.octets(),
        });
    }
    out.extend_from_slice(&address.to_le_bytes()[..size.octets()]);
    Ok(())
}

impl Frame {
    /// Appends the frame's octets to `out`. Nothing is appended on error.
    pub fn encode(&self, address_size: AddressSize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Frame::SingleAck => out.push(SINGLE_ACK),
            Frame::Fixed { control, address } => {
                let start = out.len();
                out.push(START_FIXED);
                out.push(control.octet());
                if let Err(e) = push_address(out, *address, address_size) {
                    out.truncate(start);
                    return Err(e);
                }
                let cs = checksum(&out[start + 1..]);
                out.extend_from_slice(&[cs, END]);
            }
            Frame::Variable {
                control,
                address,
                asdu,
            } => {
                let max = max_asdu_len(address_size);
                if asdu.len() > max {
                    return Err(EncodeError::AsduTooLong {
                        len: asdu.len(),
                        max,
                    });
                }
                // Cannot truncate: max_asdu_len keeps L within 255.
                let l = (1 + address_size.octets() + asdu.len()) as u8;
                let start = out.len();
                out.extend_from_slice(&[START_VARIABLE, l, l, START_VARIABLE, control.octet()]);
                if let Err(e) = push_address(out, *address, address_size) {
                    out.truncate(start);
                    return Err(e);
                }
                out.extend_from_slice(asdu);
                let cs = checksum(&out[start + 4..]);
                out.extend_from_slice(&[cs, END]);
            }
        }
        Ok(())
    }

    /// Octets [`Frame::encode`] writes.
    pub fn encoded_len(&self, address_size: AddressSize) -> usize {
        match self {
            Frame::SingleAck => 1,
            Frame::Fixed { .. } => 4 + address_size.octets(),
            Frame::Variable { asdu, .. } => 7 + address_size.octets() + asdu.len(),
        }
    }

    /// The control field (`None` for the single character).
    pub fn control(&self) -> Option<Control> {
        match self {
            Frame::Fixed { control, .. } | Frame::Variable { control, .. } => Some(*control),
            Frame::SingleAck => None,
        }
    }

    /// The link address (`None` for the single character).
    pub fn address(&self) -> Option<u16> {
        match self {
            Frame::Fixed { address, .. } | Frame::Variable { address, .. } => Some(*address),
            Frame::SingleAck => None,
        }
    }
}

/// What the decoder saw, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Valid fixed-length frames.
    pub fixed: u64,
    /// Valid variable-length frames.
    pub variable: u64,
    /// Single characters 0xE5.
    pub single_acks: u64,
    /// Octets skipped while looking for a start character (line noise).
    pub noise_octets: u64,
    /// Variable headers whose fourth octet was not 0x68.
    pub bad_second_start: u64,
    /// Variable headers with L ≠ repeated L.
    pub length_mismatch: u64,
    /// Variable headers with L below control field + address.
    pub length_too_small: u64,
    /// Frames with a wrong checksum.
    pub bad_checksum: u64,
    /// Frames with a wrong end character.
    pub bad_end: u64,
}

impl DecoderStats {
    /// Frames dropped for any reason (noise octets not included).
    pub fn errors(&self) -> u64 {
        self.bad_second_start
            + self.length_mismatch
            + self.length_too_small
            + self.bad_checksum
            + self.bad_end
    }
}

/// Streaming, resynchronising FT1.2 decoder (sans-IO).
///
/// Feed octets with [`Decoder::push`] (which takes at most the free buffer space) and drain
/// with [`Decoder::next_frame`], or let [`Decoder::feed`] do both.
#[derive(Clone, Debug)]
pub struct Decoder {
    address_size: AddressSize,
    buf: [u8; MAX_FRAME_LEN],
    len: usize,
    stats: DecoderStats,
}

impl Decoder {
    /// A decoder for frames with `address_size` link address octets.
    pub fn new(address_size: AddressSize) -> Decoder {
        Decoder {
            address_size,
            buf: [0; MAX_FRAME_LEN],
            len: 0,
            stats: DecoderStats::default(),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Octets buffered (an incomplete frame).
    pub fn buffered(&self) -> usize {
        self.len
    }

    /// Drops any partial frame (e.g. after a character timeout on the line).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Copies as many octets of `bytes` as fit into the buffer and returns how many. Call
    /// [`Decoder::next_frame`] until it returns `None` before pushing the rest: a full buffer
    /// always yields a frame, an error or skipped noise, so this always makes progress.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let take = bytes.len().min(MAX_FRAME_LEN - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        take
    }

    /// Pushes all of `bytes`, calling `on_frame` for every frame or error found.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_frame: impl FnMut(Result<Frame, FrameError>)) {
        loop {
            let n = self.push(bytes);
            bytes = &bytes[n..];
            while let Some(result) = self.next_frame() {
                on_frame(result);
            }
            if bytes.is_empty() {
                return;
            }
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// The next complete frame, or the error that made the decoder drop one; `None` when more
    /// octets are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        // Skip noise up to the next start character.
        let skip = self.buf[..self.len]
            .iter()
            .position(|&b| matches!(b, START_FIXED | START_VARIABLE | SINGLE_ACK))
            .unwrap_or(self.len);
        if skip > 0 {
            self.stats.noise_octets += skip as u64;
            self.consume(skip);
        }
        let a = self.address_size.octets();
        let buf = &self.buf[..self.len];
        let result = match *buf.first()? {
            SINGLE_ACK => {
                self.stats.single_acks += 1;
                self.consume(1);
                return Some(Ok(Frame::SingleAck));
            }
            START_FIXED => {
                let total = 4 + a;
                if buf.len() < total {
                    return None;
                }
                let body = &buf[1..2 + a];
                check_trailer(body, buf[2 + a], buf[3 + a]).map(|()| {
                    (
                        Frame::Fixed {
                            control: Control::from_octet(body[0]),
                            address: read_address(&body[1..]),
                        },
                        total,
                    )
                })
            }
            _ => {
                // START_VARIABLE
                if buf.len() < 4 {
                    return None;
                }
                let (l1, l2) = (buf[1], buf[2]);
                let min = (1 + a) as u8;
                if buf[3] != START_VARIABLE {
                    Err(FrameError::BadSecondStart(buf[3]))
                } else if l1 != l2 {
                    Err(FrameError::LengthMismatch {
                        first: l1,
                        second: l2,
                    })
                } else if l1 < min {
                    Err(FrameError::LengthTooSmall { length: l1, min })
                } else {
                    let l = usize::from(l1);
                    let total = l + 6;
                    if buf.len() < total {
                        return None;
                    }
                    let body = &buf[4..4 + l];
                    check_trailer(body, buf[4 + l], buf[5 + l]).map(|()| {
                        (
                            Frame::Variable {
                                control: Control::from_octet(body[0]),
                                address: read_address(&body[1..1 + a]),
                                asdu: body[1 + a..].to_vec(),
                            },
                            total,
                        )
                    })
                }
            }
        };
        match result {
            Ok((frame, used)) => {
                match frame {
                    Frame::Fixed { .. } => self.stats.fixed += 1,
                    _ => self.stats.variable += 1,
                }
                self.consume(used);
                Some(Ok(frame))
            }
            Err(e) => {
                match e {
                    FrameError::BadSecondStart(_) => self.stats.bad_second_start += 1,
                    FrameError::LengthMismatch { .. } => self.stats.length_mismatch += 1,
                    FrameError::LengthTooSmall { .. } => self.stats.length_too_small += 1,
                    FrameError::BadChecksum { .. } => self.stats.bad_checksum += 1,
                    FrameError::BadEnd(_) => self.stats.bad_end += 1,
                }
                // Drop only the start character: a real frame may begin inside the bad one.
                self.consume(1);
                Some(Err(e))
            }
        }
    }
}

fn check_trailer(body: &[u8], cs: u8, end: u8) -> Result<(), FrameError> {
    let computed = checksum(body);
    if cs != computed {
        return Err(FrameError::BadChecksum {
            received: cs,
            computed,
        });
    }
    if end != END {
        return Err(FrameError::BadEnd(end));
    }
    Ok(())
}

fn read_address(octets: &[u8]) -> u16 {
    octets
        .iter()
        .rev()
        .fold(0u16, |acc, &b| (acc << 8) | u16::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(frame: &Frame, size: AddressSize) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(size, &mut out).expect("encodable");
        out
    }

    fn decode_all(size: AddressSize, bytes: &[u8]) -> (Vec<Result<Frame, FrameError>>, Decoder) {
        let mut d = Decoder::new(size);
        let mut got = Vec::new();
        d.feed(bytes, |r| got.push(r));
        (got, d)
    }

    fn fixed(c: u8, a: u16) -> Frame {
        Frame::Fixed {
            control: Control::from_octet(c),
            address: a,
        }
    }

    #[test]
    fn request_link_status_to_address_1() {
        // C = 0x49: PRM, function 9. CS = 0x49 + 0x01 = 0x4A.
        let f = Frame::Fixed {
            control: Control::primary(primary::REQUEST_LINK_STATUS, false, false),
            address: 1,
        };
        assert_eq!(enc(&f, AddressSize::One), [0x10, 0x49, 0x01, 0x4A, 0x16]);
        let (got, _) = decode_all(AddressSize::One, &[0x10, 0x49, 0x01, 0x4A, 0x16]);
        assert_eq!(got, vec![Ok(f)]);
    }

    #[test]
    fn control_field_names_both_readings() {
        // 0x7B: PRM, FCB, FCV, function 11 (request class 2); 0x7A is class 1 (function 10).
        let c = Control::from_octet(0x7B);
        assert!(c.prm && c.fcb() && c.fcv() && !c.dir);
        assert_eq!(c.function, primary::REQUEST_CLASS_2);
        assert_eq!(Control::primary(11, true, true).octet(), 0x7B);
        assert_eq!(Control::from_octet(0x7A).function, primary::REQUEST_CLASS_1);
        // 0x28: secondary, ACD, user data.
        let s = Control::from_octet(0x28);
        assert!(!s.prm && s.acd() && !s.dfc());
        assert_eq!(
            Control::secondary(secondary::USER_DATA, true, false).octet(),
            0x28
        );
        assert_eq!(
            Control::secondary(0, false, true).with_dir(true).octet(),
            0x90
        );
        for c in 0..=255u8 {
            assert_eq!(Control::from_octet(c).octet(), c);
        }
    }

    #[test]
    fn address_sizes_are_little_endian() {
        let f = fixed(0x40, 0x0201);
        // CS = 0x40 + 0x01 + 0x02 = 0x43.
        assert_eq!(
            enc(&f, AddressSize::Two),
            [0x10, 0x40, 0x01, 0x02, 0x43, 0x16]
        );
        let f0 = fixed(0x49, 0);
        assert_eq!(enc(&f0, AddressSize::Zero), [0x10, 0x49, 0x49, 0x16]);
        let (got, _) = decode_all(AddressSize::Two, &[0x10, 0x40, 0x01, 0x02, 0x43, 0x16]);
        assert_eq!(got, vec![Ok(f)]);
        let (got, _) = decode_all(AddressSize::Zero, &[0x10, 0x49, 0x49, 0x16]);
        assert_eq!(got, vec![Ok(f0)]);
    }

    #[test]
    fn variable_frame_with_general_interrogation() {
        // C_IC_NA_1 act, COT 1 octet, CA 1, IOA 2: 64 01 06 01 00 00 14.
        // L = 1 (C) + 1 (A) + 7 = 9. C = 0x73 (PRM FCV function 3, FCB 1 → 0x73).
        // CS = 0x73 + 0x01 + 0x64 + 0x01 + 0x06 + 0x01 + 0x00 + 0x00 + 0x14 = 0xF4.
        let bytes = [
            0x68, 0x09, 0x09, 0x68, 0x73, 0x01, 0x64, 0x01, 0x06, 0x01, 0x00, 0x00, 0x14, 0xF4,
            0x16,
        ];
        let f = Frame::Variable {
            control: Control::primary(primary::USER_DATA_CONFIRMED, true, true),
            address: 1,
            asdu: vec![0x64, 0x01, 0x06, 0x01, 0x00, 0x00, 0x14],
        };
        assert_eq!(enc(&f, AddressSize::One), bytes);
        assert_eq!(f.encoded_len(AddressSize::One), bytes.len());
        let (got, d) = decode_all(AddressSize::One, &bytes);
        assert_eq!(got, vec![Ok(f)]);
        assert_eq!(d.stats().variable, 1);
    }

    #[test]
    fn single_character_ack() {
        assert_eq!(enc(&Frame::SingleAck, AddressSize::One), [0xE5]);
        let (got, d) = decode_all(AddressSize::One, &[0xE5, 0xE5]);
        assert_eq!(got, vec![Ok(Frame::SingleAck), Ok(Frame::SingleAck)]);
        assert_eq!(d.stats().single_acks, 2);
    }

    #[test]
    fn every_split_position_reassembles() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&[0x10, 0x49, 0x01, 0x4A, 0x16]);
        stream.push(0xE5);
        let v = Frame::Variable {
            control: Control::secondary(secondary::USER_DATA, true, false),
            address: 1,
            asdu: (0..40).collect(),
        };
        stream.extend(enc(&v, AddressSize::One));
        let (whole, _) = decode_all(AddressSize::One, &stream);
        assert_eq!(whole.len(), 3);
        for split in 0..=stream.len() {
            let mut d = Decoder::new(AddressSize::One);
            let mut got = Vec::new();
            d.feed(&stream[..split], |r| got.push(r));
            d.feed(&stream[split..], |r| got.push(r));
            assert_eq!(got, whole, "split at {split}");
        }
        // And octet by octet.
        let mut d = Decoder::new(AddressSize::One);
        let mut got = Vec::new();
        for b in &stream {
            d.feed(std::slice::from_ref(b), |r| got.push(r));
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn noise_between_frames_is_skipped_and_counted() {
        let mut stream = vec![0x00, 0xFF, 0x42];
        stream.extend_from_slice(&[0x10, 0x49, 0x01, 0x4A, 0x16]);
        stream.extend_from_slice(&[0x33, 0x16]);
        stream.extend_from_slice(&[0x10, 0x40, 0x01, 0x41, 0x16]);
        let (got, d) = decode_all(AddressSize::One, &stream);
        assert_eq!(got, vec![Ok(fixed(0x49, 1)), Ok(fixed(0x40, 1))]);
        assert_eq!(d.stats().noise_octets, 5);
        assert_eq!(d.stats().errors(), 0);
    }

    #[test]
    fn bad_checksum_end_and_lengths_are_dropped_and_resynchronised() {
        let good = [0x10, 0x49, 0x01, 0x4A, 0x16];
        let cases: [(&[u8], FrameError); 5] = [
            (
                &[0x10, 0x49, 0x01, 0x4B, 0x16],
                FrameError::BadChecksum {
                    received: 0x4B,
                    computed: 0x4A,
                },
            ),
            (&[0x10, 0x49, 0x01, 0x4A, 0x17], FrameError::BadEnd(0x17)),
            (
                &[0x68, 0x03, 0x04, 0x68, 0x08, 0x01, 0x00, 0x09, 0x16],
                FrameError::LengthMismatch {
                    first: 3,
                    second: 4,
                },
            ),
            (
                &[0x68, 0x01, 0x01, 0x68, 0x08, 0x08, 0x16],
                FrameError::LengthTooSmall { length: 1, min: 2 },
            ),
            (&[0x68, 0x03, 0x03, 0x00], FrameError::BadSecondStart(0x00)),
        ];
        for (bad, err) in cases {
            let mut stream = bad.to_vec();
            stream.extend_from_slice(&good);
            let (got, d) = decode_all(AddressSize::One, &stream);
            assert_eq!(got.first(), Some(&Err(err)), "{bad:02X?}");
            assert_eq!(got.last(), Some(&Ok(fixed(0x49, 1))), "{bad:02X?}");
            assert!(d.stats().errors() >= 1);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn a_frame_hidden_behind_a_broken_header_is_found() {
        // A variable header claiming 200 octets, then a fixed frame: the header is dropped only
        // once 206 octets are there, but a short line burst must still reach the real frame.
        let mut stream = vec![0x68, 0xC8, 0xC8, 0x68];
        stream.extend_from_slice(&[0x10, 0x49, 0x01, 0x4A, 0x16]);
        stream.extend(std::iter::repeat_n(0u8, 210));
        let (got, _) = decode_all(AddressSize::One, &stream);
        assert!(got.contains(&Ok(fixed(0x49, 1))), "{got:?}");
    }

    #[test]
    fn encode_rejects_what_the_wire_cannot_carry() {
        assert_eq!(max_asdu_len(AddressSize::Zero), 254);
        assert_eq!(max_asdu_len(AddressSize::One), 253);
        assert_eq!(max_asdu_len(AddressSize::Two), 252);
        let too_long = Frame::Variable {
            control: Control::primary(3, true, true),
            address: 1,
            asdu: vec![0; 254],
        };
        let mut out = vec![0xAA];
        assert_eq!(
            too_long.encode(AddressSize::One, &mut out),
            Err(EncodeError::AsduTooLong { len: 254, max: 253 })
        );
        assert_eq!(
            fixed(0x49, 256).encode(AddressSize::One, &mut out),
            Err(EncodeError::AddressTooLarge {
                address: 256,
                octets: 1
            })
        );
        assert_eq!(out, [0xAA]);
        assert_eq!(AddressSize::try_from(3), Err(EncodeError::AddressSize(3)));
        let max = Frame::Variable {
            control: Control::primary(3, true, true),
            address: 1,
            asdu: vec![0; 253],
        };
        let bytes = enc(&max, AddressSize::One);
        assert_eq!(bytes.len(), MAX_FRAME_LEN);
        assert_eq!(decode_all(AddressSize::One, &bytes).0, vec![Ok(max)]);
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            FrameError::BadChecksum {
                received: 0x4B,
                computed: 0x4A
            }
            .to_string(),
            "checksum 0x4b received, 0x4a computed"
        );
        assert_eq!(
            EncodeError::AsduTooLong { len: 300, max: 253 }.to_string(),
            "ASDU of 300 octets exceeds the maximum of 253 for this address size"
        );
    }
}
