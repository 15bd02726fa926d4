//! Link-layer state machine of an IEC 60870-5-104 controlled station (the TCP server side):
//! sequence numbers and the k/w windows (§5.1, §5.5), test procedures with t3 (§5.2),
//! STARTDT/STOPDT (§5.3) and the t1/t2/t3 timeouts (§9.6).
//!
//! (Clause numbers as in IEC 60870-5-104:2006: §5.1 protection against loss and duplication
//! of messages, §5.2 test procedures, §5.3 transmission control using start/stop.)
//!
//! The design is sans-IO, like quinn-proto: the [`Link`] owns no socket and reads no clock.
//! The caller feeds received octets ([`Link::handle_input`]) and the current time, then drains
//! octets to write ([`Link::poll_transmit`]), events ([`Link::poll_event`]) and the next
//! deadline ([`Link::poll_timeout`]). That keeps every timer and window rule testable with
//! synthetic instants and byte vectors, without a network or sleeps.
//!
//! # Decisions not spelled out by the standard
//! - An I-frame while data transfer is stopped (before STARTDT act or after STOPDT act) closes
//!   the link, as lib60870 does: the master is out of step with us and anything we answered
//!   would be guesswork.
//! - The master's k window is not enforced. If it sends more than k unacknowledged I-frames,
//!   our acknowledgements (sent after w ≤ k frames or t2) are merely still in flight; closing
//!   would punish it for our latency.
//! - Confirmations nobody asked for (STARTDT con, STOPDT con, a late TESTFR con) are logged and
//!   ignored: they carry no state we could get wrong.
//! - Once closed, the link takes no further input and queues nothing. Octets queued before
//!   the closing cause are kept for one last [`Link::poll_transmit`], including those queued by
//!   earlier frames of the same input chunk. That makes the output independent of how TCP
//!   split the stream, and lets the master see e.g. the TESTFR con it was owed before the
//!   connection drops.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::debug;

use super::apci::{self, ApciError, Apdu, UFunction, MAX_APDU_LEN, MAX_ASDU_LEN, SEQ_MODULUS};

/// Longest timeout [`Link::new`] accepts (about 136 years): far beyond the standard's 255 s,
/// yet small enough that adding it to any `Instant` cannot overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(u32::MAX as u64);

/// Protocol parameters of §9.6. `Default` gives the standard's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Most I-frames we send before we stop and wait for an acknowledgement.
    pub k: u16,
    /// Received I-frames after which we acknowledge at the latest.
    pub w: u16,
    /// Time-out for acknowledgement of a sent I-frame or TESTFR act.
    pub t1: Duration,
    /// Time-out after which received I-frames are acknowledged though we have nothing to send.
    pub t2: Duration,
    /// Idle time after which we probe the connection with TESTFR act.
    pub t3: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            k: 12,
            w: 8,
            t1: Duration::from_secs(15),
            t2: Duration::from_secs(10),
            t3: Duration::from_secs(20),
        }
    }
}

/// A [`LinkConfig`] that breaks a rule of §5.5 / §9.6.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LinkConfigError {
    #[error("k = {0} must be 1..=32767")]
    K(u16),
    #[error("w = {w} must be 1..=k (k = {k})")]
    W { w: u16, k: u16 },
    #[error("t1, t2 and t3 must be non-zero")]
    ZeroTimeout,
    #[error("t2 ({t2:?}) must be shorter than t1 ({t1:?}), or the master times out before we acknowledge")]
    T2NotBelowT1 { t1: Duration, t2: Duration },
}

impl LinkConfig {
    /// Checks the rules of §5.5 and §9.6 so a configuration loader can reject bad values.
    /// [`Link::new`] does not require this: it clamps instead of failing.
    ///
    /// Strictly, our w must stay below the master's k, not ours; but the interoperability list
    /// fixes one k and one w per system, so w ≤ k is the check a single configuration allows.
    pub fn validate(&self) -> Result<(), LinkConfigError> {
        if self.k == 0 || self.k >= SEQ_MODULUS {
            return Err(LinkConfigError::K(self.k));
        }
        if self.w == 0 || self.w > self.k {
            return Err(LinkConfigError::W {
                w: self.w,
                k: self.k,
            });
        }
        if self.t1.is_zero() || self.t2.is_zero() || self.t3.is_zero() {
            return Err(LinkConfigError::ZeroTimeout);
        }
        if self.t2 >= self.t1 {
            return Err(LinkConfigError::T2NotBelowT1 {
                t1: self.t1,
                t2: self.t2,
            });
        }
        Ok(())
    }
}

/// What t1 was waiting for when it expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaited {
    /// Acknowledgement of the oldest unacknowledged I-frame we sent.
    IFrameAck { send_seq: u16 },
    /// TESTFR con for the TESTFR act sent on t3.
    TestFrCon,
}

impl std::fmt::Display for Awaited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Awaited::IFrameAck { send_seq } => {
                write!(f, "acknowledgement of I-frame N(S)={send_seq}")
            }
            Awaited::TestFrCon => f.write_str("TESTFR con"),
        }
    }
}

/// Why the link closed. The caller drops the TCP connection.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CloseReason {
    #[error("t1 expired waiting for {0}")]
    T1Expired(Awaited),
    #[error(
        "peer acknowledged N(R)={recv_seq}, outside the sent window {oldest_unacked}..={next_send}"
    )]
    AckOfUnsentFrame {
        recv_seq: u16,
        next_send: u16,
        oldest_unacked: u16,
    },
    #[error("I-frame with N(S)={got}, expected {expected} (frame lost or duplicated)")]
    UnexpectedSendSeq { expected: u16, got: u16 },
    #[error(
        "I-frame received while data transfer is stopped (no STARTDT act, or after STOPDT act)"
    )]
    IFrameBeforeStartDt,
    #[error("malformed APDU: {0}")]
    Malformed(ApciError),
}

/// Something the station above the link must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// STARTDT confirmed: the station may send spontaneous data (and typically resends what
    /// it took from a lost connection).
    DataTransferStarted,
    /// STOPDT confirmed: every I-frame we sent has been acknowledged.
    DataTransferStopped,
    /// An ASDU from the master, in order and exactly once.
    Asdu(Vec<u8>),
    /// Emitted exactly once; nothing follows it.
    Closed(CloseReason),
}

/// Why [`Link::send_asdu`] refused an ASDU. Nothing was queued.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    #[error("link is closed")]
    Closed,
    #[error("ASDU is empty")]
    Empty,
    #[error("ASDU of {0} octets exceeds the maximum of 249")]
    TooLong(usize),
    #[error("data transfer is not active (no STARTDT, or STOPDT requested)")]
    NotActive,
    #[error("k unacknowledged I-frames are outstanding")]
    WindowFull,
}

/// Frames of each format, counted as they are decoded or queued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    pub i: u64,
    pub s: u64,
    pub u: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub received: FrameCounts,
    pub sent: FrameCounts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transfer {
    Stopped,
    Started,
    /// STOPDT act received; the con waits until every sent I-frame is acknowledged (Ed.2 §5.3).
    Stopping,
}

#[derive(Debug)]
struct SentFrame {
    send_seq: u16,
    sent_at: Instant,
    /// Emptied by [`Link::take_unacknowledged`]; an ASDU is never empty otherwise.
    asdu: Vec<u8>,
}

/// One 104 connection, seen from the controlled station.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    transfer: Transfer,
    closed: Option<CloseReason>,

    /// V(S): N(S) of the next I-frame we send.
    next_send: u16,
    /// Sent, not yet acknowledged, oldest first; the front's N(S) is V(A).
    unacked: VecDeque<SentFrame>,

    /// V(R): N(S) we expect in the next I-frame from the master.
    next_recv: u16,
    /// Received I-frames we have not acknowledged yet (w rule).
    recv_unacked: u16,
    /// t2 runs from the first unacknowledged received I-frame.
    t2_deadline: Option<Instant>,

    /// Restarted by every received frame.
    t3_deadline: Instant,
    /// t1 for our TESTFR act; t3 is suspended while it runs.
    test_deadline: Option<Instant>,

    /// Octets of an incomplete frame. Frames are parsed as soon as they are complete, so this
    /// never holds more than one APDU ([`MAX_APDU_LEN`]).
    rx: Vec<u8>,
    tx: Vec<u8>,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
}

fn seq_add(seq: u16, n: u16) -> u16 {
    seq.wrapping_add(n) % SEQ_MODULUS
}

/// Steps from `from` forward to `to`, modulo 32768.
fn seq_distance(from: u16, to: u16) -> u16 {
    to.wrapping_sub(from) % SEQ_MODULUS
}

impl Link {
    /// A new connection in the STOPPED state. `k` is clamped to 1..=32767, `w` to 1..=k and
    /// the timeouts to at most [`MAX_TIMEOUT`], so that a bad configuration can neither break
    /// the sequence arithmetic nor overflow an `Instant`; see [`LinkConfig::validate`] to
    /// reject such a configuration instead.
    pub fn new(mut config: LinkConfig, now: Instant) -> Link {
        config.k = config.k.clamp(1, SEQ_MODULUS - 1);
        config.w = config.w.clamp(1, config.k);
        config.t1 = config.t1.min(MAX_TIMEOUT);
        config.t2 = config.t2.min(MAX_TIMEOUT);
        config.t3 = config.t3.min(MAX_TIMEOUT);
        Link {
            config,
            transfer: Transfer::Stopped,
            closed: None,
            next_send: 0,
            unacked: VecDeque::with_capacity(usize::from(config.k)),
            next_recv: 0,
            recv_unacked: 0,
            t2_deadline: None,
            t3_deadline: now + config.t3,
            test_deadline: None,
            rx: Vec::with_capacity(MAX_APDU_LEN),
            tx: Vec::new(),
            events: VecDeque::new(),
            stats: LinkStats::default(),
        }
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Feeds octets received from TCP, split anywhere.
    pub fn handle_input(&mut self, now: Instant, mut data: &[u8]) {
        while self.closed.is_none() && !(data.is_empty() && self.rx.is_empty()) {
            if self.rx.is_empty() {
                // Fast path: decode straight from the caller's buffer, copy only a tail.
                match apci::decode(data) {
                    Ok(Some((apdu, used))) => {
                        data = &data[used..];
                        self.on_apdu(now, apdu);
                    }
                    Ok(None) => {
                        self.rx.extend_from_slice(data);
                        return;
                    }
                    Err(e) => self.close(CloseReason::Malformed(e)),
                }
            } else {
                // Top up the partial frame. A full rx always holds a complete frame or an
                // error, so taking at most the free space never stalls.
                let take = data.len().min(MAX_APDU_LEN - self.rx.len());
                self.rx.extend_from_slice(&data[..take]);
                data = &data[take..];
                match apci::decode(&self.rx) {
                    Ok(Some((apdu, used))) => {
                        self.rx.drain(..used);
                        self.on_apdu(now, apdu);
                    }
                    Ok(None) => {
                        debug_assert!(data.is_empty());
                        return;
                    }
                    Err(e) => self.close(CloseReason::Malformed(e)),
                }
            }
        }
    }

    /// Runs the timers whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if let Some(oldest) = self.unacked.front() {
            if now >= oldest.sent_at + self.config.t1 {
                let send_seq = oldest.send_seq;
                self.close(CloseReason::T1Expired(Awaited::IFrameAck { send_seq }));
                return;
            }
        }
        if let Some(deadline) = self.test_deadline {
            if now >= deadline {
                self.close(CloseReason::T1Expired(Awaited::TestFrCon));
                return;
            }
        }
        if let Some(deadline) = self.t2_deadline {
            if now >= deadline {
                debug!(unacked = self.recv_unacked, "t2 expired, acknowledging");
                self.send_s();
            }
        }
        if self.test_deadline.is_none() && now >= self.t3_deadline {
            debug!("t3 expired, sending TESTFR act");
            self.send_u(UFunction::TestFrAct);
            self.test_deadline = Some(now + self.config.t1);
        }
    }

    /// Earliest instant at which [`Link::handle_timeout`] has work; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let t1_frame = self.unacked.front().map(|f| f.sent_at + self.config.t1);
        let t3 = self.test_deadline.is_none().then_some(self.t3_deadline);
        [t1_frame, self.test_deadline, self.t2_deadline, t3]
            .into_iter()
            .flatten()
            .min()
    }

    /// Appends every queued octet to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.tx);
    }

    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// STARTDT confirmed and no STOPDT requested since.
    pub fn is_active(&self) -> bool {
        self.closed.is_none() && self.transfer == Transfer::Started
    }

    /// Whether [`Link::send_asdu`] would accept an ASDU now.
    pub fn can_send_asdu(&self) -> bool {
        self.is_active() && self.unacked.len() < usize::from(self.config.k)
    }

    /// Queues `asdu` as the next I-frame. It also acknowledges everything received so far,
    /// which is why an S-frame is only needed when we have nothing to send.
    pub fn send_asdu(&mut self, now: Instant, asdu: Vec<u8>) -> Result<(), LinkError> {
        if self.closed.is_some() {
            return Err(LinkError::Closed);
        }
        if asdu.is_empty() {
            return Err(LinkError::Empty);
        }
        if asdu.len() > MAX_ASDU_LEN {
            return Err(LinkError::TooLong(asdu.len()));
        }
        if !self.is_active() {
            return Err(LinkError::NotActive);
        }
        if !self.can_send_asdu() {
            return Err(LinkError::WindowFull);
        }
        // Cannot fail: length checked above, sequence numbers are kept below 32768.
        let _ = apci::encode_i_frame(self.next_send, self.next_recv, &asdu, &mut self.tx);
        self.stats.sent.i += 1;
        self.unacked.push_back(SentFrame {
            send_seq: self.next_send,
            sent_at: now,
            asdu,
        });
        self.next_send = seq_add(self.next_send, 1);
        self.recv_acknowledged();
        Ok(())
    }

    /// I-frames sent and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }

    /// ASDUs sent but not yet acknowledged, oldest first (a station re-queues events from these
    /// when the connection is lost — IEC 104 Ed.2 redundancy).
    ///
    /// Meant for a closed link. On an open one the window bookkeeping (sequence numbers, t1)
    /// is untouched, so later acknowledgements still validate; only the payloads are handed
    /// over, and a second call returns nothing for the same frames.
    pub fn take_unacknowledged(&mut self) -> Vec<Vec<u8>> {
        self.unacked
            .iter_mut()
            .map(|f| std::mem::take(&mut f.asdu))
            .filter(|asdu| !asdu.is_empty())
            .collect()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    fn on_apdu(&mut self, now: Instant, apdu: Apdu) {
        // Any frame proves the connection alive (§5.2), even one we go on to reject.
        self.t3_deadline = now + self.config.t3;
        match apdu {
            Apdu::I {
                send_seq,
                recv_seq,
                asdu,
            } => {
                self.stats.received.i += 1;
                self.on_i_frame(now, send_seq, recv_seq, asdu);
            }
            Apdu::S { recv_seq } => {
                self.stats.received.s += 1;
                self.on_ack(recv_seq);
            }
            Apdu::U(function) => {
                self.stats.received.u += 1;
                self.on_u_frame(function);
            }
        }
    }

    fn on_i_frame(&mut self, now: Instant, send_seq: u16, recv_seq: u16, asdu: Vec<u8>) {
        if self.transfer != Transfer::Started {
            self.close(CloseReason::IFrameBeforeStartDt);
            return;
        }
        if send_seq != self.next_recv {
            self.close(CloseReason::UnexpectedSendSeq {
                expected: self.next_recv,
                got: send_seq,
            });
            return;
        }
        if !self.on_ack(recv_seq) {
            return;
        }
        self.next_recv = seq_add(self.next_recv, 1);
        self.events.push_back(LinkEvent::Asdu(asdu));
        self.recv_unacked += 1;
        if self.recv_unacked == 1 {
            self.t2_deadline = Some(now + self.config.t2);
        }
        if self.recv_unacked >= self.config.w {
            self.send_s();
        }
    }

    /// Applies N(R) from an I- or S-frame. Returns false if it closed the link.
    fn on_ack(&mut self, recv_seq: u16) -> bool {
        let oldest_unacked = self.unacked.front().map_or(self.next_send, |f| f.send_seq);
        let acked = seq_distance(oldest_unacked, recv_seq);
        // A peer cannot acknowledge what we never sent; with k < 32768 the window is
        // unambiguous modulo 32768.
        if usize::from(acked) > self.unacked.len() {
            self.close(CloseReason::AckOfUnsentFrame {
                recv_seq,
                next_send: self.next_send,
                oldest_unacked,
            });
            return false;
        }
        self.unacked.drain(..usize::from(acked));
        if self.transfer == Transfer::Stopping && self.unacked.is_empty() {
            self.finish_stop();
        }
        true
    }

    fn on_u_frame(&mut self, function: UFunction) {
        match function {
            UFunction::StartDtAct => {
                self.send_u(UFunction::StartDtCon);
                match self.transfer {
                    Transfer::Stopped => {
                        debug!("STARTDT act: data transfer started");
                        self.transfer = Transfer::Started;
                        self.events.push_back(LinkEvent::DataTransferStarted);
                    }
                    // The station never saw DataTransferStopped, so from its view transfer
                    // simply continues; no second Started event.
                    Transfer::Stopping => {
                        debug!("STARTDT act while stopping: pending STOPDT abandoned");
                        self.transfer = Transfer::Started;
                    }
                    Transfer::Started => debug!("STARTDT act while started: confirmed again"),
                }
            }
            UFunction::StopDtAct => match self.transfer {
                Transfer::Stopped => {
                    debug!("STOPDT act while stopped: confirmed again");
                    self.send_u(UFunction::StopDtCon);
                }
                Transfer::Started => {
                    self.transfer = Transfer::Stopping;
                    if self.unacked.is_empty() {
                        self.finish_stop();
                    } else {
                        debug!(
                            unacked = self.unacked.len(),
                            "STOPDT act: waiting for acknowledgements before confirming"
                        );
                    }
                }
                Transfer::Stopping => debug!("STOPDT act repeated while stopping"),
            },
            UFunction::TestFrAct => self.send_u(UFunction::TestFrCon),
            UFunction::TestFrCon => {
                if self.test_deadline.take().is_none() {
                    debug!("unsolicited TESTFR con ignored");
                }
            }
            UFunction::StartDtCon | UFunction::StopDtCon => {
                debug!(
                    function = function.name(),
                    "unsolicited confirmation ignored"
                );
            }
        }
    }

    fn finish_stop(&mut self) {
        // Acknowledge the master's I-frames first so both windows are empty when stopped.
        if self.recv_unacked > 0 {
            self.send_s();
        }
        self.send_u(UFunction::StopDtCon);
        self.transfer = Transfer::Stopped;
        debug!("STOPDT con sent: data transfer stopped");
        self.events.push_back(LinkEvent::DataTransferStopped);
    }

    fn send_s(&mut self) {
        let frame = Apdu::S {
            recv_seq: self.next_recv,
        };
        // Cannot fail: next_recv is kept below 32768.
        let _ = frame.encode(&mut self.tx);
        self.stats.sent.s += 1;
        self.recv_acknowledged();
    }

    fn send_u(&mut self, function: UFunction) {
        let _ = Apdu::U(function).encode(&mut self.tx);
        self.stats.sent.u += 1;
    }

    fn recv_acknowledged(&mut self) {
        self.recv_unacked = 0;
        self.t2_deadline = None;
    }

    fn close(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        debug!(%reason, "link closed");
        self.rx.clear();
        self.events.push_back(LinkEvent::Closed(reason.clone()));
        self.closed = Some(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_arithmetic_wraps_at_32768() {
        assert_eq!(seq_add(0x7FFF, 1), 0);
        assert_eq!(seq_add(0x7FFE, 3), 1);
        assert_eq!(seq_distance(0x7FFE, 1), 3);
        assert_eq!(seq_distance(5, 5), 0);
        assert_eq!(seq_distance(1, 0), 0x7FFF);
    }

    #[test]
    fn config_validation() {
        assert_eq!(LinkConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut LinkConfig)| {
            let mut c = LinkConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.k = 0), LinkConfigError::K(0));
        assert_eq!(bad(|c| c.k = 32768), LinkConfigError::K(32768));
        assert_eq!(bad(|c| c.w = 13), LinkConfigError::W { w: 13, k: 12 });
        assert_eq!(bad(|c| c.w = 0), LinkConfigError::W { w: 0, k: 12 });
        assert_eq!(bad(|c| c.t3 = Duration::ZERO), LinkConfigError::ZeroTimeout);
        assert!(matches!(
            bad(|c| c.t2 = c.t1),
            LinkConfigError::T2NotBelowT1 { .. }
        ));
    }

    #[test]
    fn new_clamps_unusable_windows() {
        let now = Instant::now();
        let link = Link::new(
            LinkConfig {
                k: 0,
                w: 9,
                ..LinkConfig::default()
            },
            now,
        );
        assert_eq!((link.config().k, link.config().w), (1, 1));
        let link = Link::new(
            LinkConfig {
                k: u16::MAX,
                ..LinkConfig::default()
            },
            now,
        );
        assert_eq!(link.config().k, 32767);
    }

    #[test]
    fn huge_timeouts_cannot_overflow_instants() {
        let now = Instant::now();
        let huge = LinkConfig {
            t1: Duration::MAX,
            t2: Duration::MAX,
            t3: Duration::MAX,
            ..LinkConfig::default()
        };
        let mut link = Link::new(huge, now);
        link.handle_input(now, &[0x68, 0x04, 0x07, 0x00, 0x00, 0x00]);
        link.handle_input(now, &[0x68, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01]);
        link.send_asdu(now, vec![1]).unwrap();
        assert_eq!(link.poll_timeout(), Some(now + MAX_TIMEOUT));
        link.handle_timeout(now + MAX_TIMEOUT);
        assert!(link.is_closed());
    }

    #[test]
    fn close_reasons_read_well() {
        assert_eq!(
            CloseReason::T1Expired(Awaited::IFrameAck { send_seq: 3 }).to_string(),
            "t1 expired waiting for acknowledgement of I-frame N(S)=3"
        );
        assert_eq!(
            CloseReason::Malformed(ApciError::LengthTooShort(2)).to_string(),
            "malformed APDU: APDU length octet 2 is below 4 (the control field alone needs 4)"
        );
    }
}
