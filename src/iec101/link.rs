//! Link transmission procedures of IEC 60870-5-2 §5 as profiled by IEC 60870-5-101 §6, for a
//! controlled (secondary) station:
//!
//! - **Unbalanced** (§5.1 of -2, 101 §6.1): we are a polled secondary. We answer SEND/CONFIRM
//!   (reset of remote link, reset of user process, reset of FCB, user data confirmed),
//!   SEND/NO REPLY (user data, also on the broadcast address) and REQUEST/RESPOND (link
//!   status, class 1 and class 2 data), with ACD announcing class 1 data and DFC announcing
//!   that we cannot take user data.
//! - **Balanced** (§5.2 of -2, 101 §6.2): our secondary half answers the master's primary
//!   frames (reset, test link, user data, link status); our primary half sets the link up
//!   (request link status, then reset of remote link) and sends every ASDU the application
//!   has as user data confirmed, class 1 first, retransmitting on timeout and declaring the
//!   link failed after `retries` repetitions. We send DIR = 0 (we are station B).
//!
//! The frame count bit (§5.1.2 of -2): for FCV = 1 requests, an FCB equal to that of the last
//! accepted request means the master lost our answer, so we repeat the stored answer without
//! taking new data from the application.
//!
//! Sans-IO like [`crate::iec104::link`]: the [`Link`] owns no serial port and reads no
//! clock. The driver feeds octets ([`Link::handle_input`]) and the time ([`Link::poll`]),
//! then drains octets to write ([`Link::poll_transmit`]), events ([`Link::poll_event`]) and
//! the next deadline ([`Link::next_timeout`]). The application is reached through
//! [`LinkUser`], passed into each call.
//!
//! # Decisions not spelled out by the standard
//! - Lenient like lib60870's slave: requests before the first reset of remote link are
//!   served; and an FCV = 1 request whose FCB equals the last one when we hold no stored
//!   answer (e.g. a master that starts with FCB = 0 after the reset, where the standard
//!   expects 1) is taken as new and the expectation re-synchronised, instead of being ignored.
//! - The single character 0xE5 replaces ACK and NACK-no-data only when ACD and DFC are both 0,
//!   since it cannot carry them (as lib60870 does).
//! - Secondary frames from other stations on a multi-drop line and frames for other link
//!   addresses are ignored silently (counted in [`LinkStats`]). In balanced mode we address
//!   our frames with our own link address and accept the master's answers with any address
//!   (point-to-point; lib60870 answers with the master's own address).
//! - Balanced: an ASDU whose transmission failed is kept and sent again once the link is set
//!   up again, so a failure may duplicate it but never lose it. A NACK (master busy) or an ACK
//!   with DFC = 1 holds back further user data for one `ack_timeout`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::debug;

use super::ft12::{
    max_asdu_len, primary, secondary, AddressSize, Control, Decoder, DecoderStats, Frame,
    FrameError,
};
use crate::config::{Iec101, Iec101Mode};

/// What the station application offers the link layer. The driver adapts the station to it.
///
/// An ASDU taken with `next_class1`/`next_class2` is the link's responsibility from then on
/// (repeated on a repeated FCB, or resent after a balanced link failure). An empty ASDU, or
/// one longer than [`max_asdu_len`] for the configured address size, is dropped and counted
/// in [`LinkStats::oversize_asdus`].
pub trait LinkUser {
    /// Class 1 data is waiting (responses, events, interrogation answers): sets ACD.
    fn class1_pending(&self) -> bool;
    /// Takes one encoded class 1 ASDU.
    fn next_class1(&mut self) -> Option<Vec<u8>>;
    /// Takes one encoded class 2 ASDU (cyclic measurements).
    fn next_class2(&mut self) -> Option<Vec<u8>>;
    /// User data from the master (one encoded ASDU).
    fn received(&mut self, asdu: &[u8]);
    /// `false` while the application cannot take more user data: sets DFC.
    fn can_accept(&self) -> bool {
        true
    }
}

/// Longest timeout [`Link::new`] accepts, so that adding it to an `Instant` cannot overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(u32::MAX as u64);

/// Parameters of one 101 line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Unbalanced (polled secondary) or balanced.
    pub mode: Iec101Mode,
    /// Our link address.
    pub address: u16,
    /// Octets of the link address field (0 in balanced mode only).
    pub address_size: AddressSize,
    /// Answer ACK and NACK-no-data with the single character 0xE5 where possible.
    pub single_char_ack: bool,
    /// Balanced: time to wait for the master's answer to one of our primary frames.
    pub ack_timeout: Duration,
    /// Balanced: repetitions of an unanswered frame before the link is declared failed.
    pub retries: u8,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            mode: Iec101Mode::Unbalanced,
            address: 1,
            address_size: AddressSize::One,
            single_char_ack: true,
            ack_timeout: Duration::from_secs(1),
            retries: 3,
        }
    }
}

/// A [`LinkConfig`] the link cannot work with.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum LinkConfigError {
    #[error("link address size {0} is not 0, 1 or 2 octets")]
    AddressSize(u8),
    #[error("a link address of 0 octets is allowed in balanced mode only")]
    NoAddressUnbalanced,
    #[error("link address {address} does not fit in {octets} octet(s)")]
    AddressTooLarge { address: u16, octets: usize },
    #[error("link address {0} is the broadcast address")]
    Broadcast(u16),
    #[error("ack_timeout must be non-zero")]
    ZeroTimeout,
}

impl LinkConfig {
    /// The link parameters of a `[[iec101]]` block, with the default timing.
    pub fn from_block(block: &Iec101) -> Result<LinkConfig, LinkConfigError> {
        let address_size = AddressSize::try_from(block.link_address_size)
            .map_err(|_| LinkConfigError::AddressSize(block.link_address_size))?;
        let config = LinkConfig {
            mode: block.mode,
            // Without an address field the configured address has no meaning.
            address: if address_size == AddressSize::Zero {
                0
            } else {
                block.link_address
            },
            address_size,
            ..LinkConfig::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that the address fits its field and is not the broadcast address.
    pub fn validate(&self) -> Result<(), LinkConfigError> {
        if self.address_size == AddressSize::Zero && self.mode == Iec101Mode::Unbalanced {
            return Err(LinkConfigError::NoAddressUnbalanced);
        }
        if !self.address_size.fits(self.address) {
            return Err(LinkConfigError::AddressTooLarge {
                address: self.address,
                octets: self.address_size.octets(),
            });
        }
        if self.address_size.broadcast() == Some(self.address) {
            return Err(LinkConfigError::Broadcast(self.address));
        }
        if self.ack_timeout.is_zero() {
            return Err(LinkConfigError::ZeroTimeout);
        }
        Ok(())
    }
}

/// Something the driver must know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The master reset our link (reset of remote link), or, in balanced mode, our own link
    /// set-up towards the master completed.
    MasterActive,
    /// A valid request addressed to us (or broadcast) arrived: the master is present.
    Polled,
    /// Balanced: the master did not answer `retries` repetitions; the link set-up restarts.
    LinkFailed,
}

/// Counters since creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// What the frame decoder saw.
    pub decoder: DecoderStats,
    /// Frames addressed to another station.
    pub for_other_stations: u64,
    /// Frames that are valid FT1.2 but make no sense here (e.g. a secondary frame on an
    /// unbalanced line, user data without an ASDU, an unexpected answer).
    pub ignored: u64,
    /// Answers repeated because the master repeated the FCB.
    pub repeated_answers: u64,
    /// User data refused (NACK with DFC, or dropped when unconfirmed) because the
    /// application could not take it.
    pub refused_user_data: u64,
    /// ASDUs from the application too long for a frame, dropped.
    pub oversize_asdus: u64,
    /// Balanced: repetitions of our unanswered primary frames.
    pub retransmissions: u64,
    /// Balanced: link failures.
    pub link_failures: u64,
}

/// Where our balanced primary half stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Sending request link status until the master answers with its link status.
    LinkStatus,
    /// Sending reset of remote link until ACK.
    ResetLink,
    /// Link up, nothing outstanding.
    Ready,
    /// User data confirmed sent, waiting for ACK.
    UserData,
}

#[derive(Debug)]
struct Primary {
    phase: Phase,
    /// Octets of the outstanding request (repeated verbatim, same FCB).
    outstanding: Vec<u8>,
    /// When to send (LinkStatus before the first send), repeat, or give up.
    deadline: Option<Instant>,
    /// Repetitions of `outstanding` so far.
    tries: u8,
    /// FCB of the next new user data frame.
    next_fcb: bool,
    /// The ASDU in flight (or to resend after a failure).
    asdu: Option<Vec<u8>>,
    /// No new user data before this instant (master busy).
    hold_until: Option<Instant>,
    /// Set up at least once since the last failure.
    up: bool,
}

/// One 101 line, seen from the controlled station.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    decoder: Decoder,
    /// FCB of the last accepted FCV = 1 request; after a reset `Some(false)`, so the first
    /// request (FCB = 1) is new.
    last_fcb: Option<bool>,
    /// Octets of our answer to that request.
    last_answer: Option<Vec<u8>>,
    primary: Option<Primary>,
    tx: Vec<u8>,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
}

impl Link {
    /// A link in its initial state. In balanced mode the set-up starts at the first
    /// [`Link::poll`] at or after `now`.
    pub fn new(mut config: LinkConfig, now: Instant) -> Result<Link, LinkConfigError> {
        config.validate()?;
        config.ack_timeout = config.ack_timeout.min(MAX_TIMEOUT);
        let primary = (config.mode == Iec101Mode::Balanced).then(|| Primary {
            phase: Phase::LinkStatus,
            outstanding: Vec::new(),
            deadline: Some(now),
            tries: 0,
            next_fcb: true,
            asdu: None,
            hold_until: None,
            up: false,
        });
        Ok(Link {
            config,
            decoder: Decoder::new(config.address_size),
            last_fcb: None,
            last_answer: None,
            primary,
            tx: Vec::new(),
            events: VecDeque::new(),
            stats: LinkStats::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Counters since creation.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            decoder: *self.decoder.stats(),
            ..self.stats
        }
    }

    /// Balanced: our link towards the master is set up. Unbalanced: always `false`.
    pub fn is_up(&self) -> bool {
        self.primary
            .as_ref()
            .is_some_and(|p| matches!(p.phase, Phase::Ready | Phase::UserData))
    }

    /// Drops a partial frame, e.g. after the line was idle longer than a character time.
    pub fn clear_partial_frame(&mut self) {
        self.decoder.clear();
    }

    /// Feeds octets received from the line, split anywhere.
    pub fn handle_input<U: LinkUser + ?Sized>(
        &mut self,
        now: Instant,
        mut data: &[u8],
        user: &mut U,
    ) {
        loop {
            let n = self.decoder.push(data);
            data = &data[n..];
            while let Some(result) = self.decoder.next_frame() {
                self.on_frame(now, result, user);
            }
            if data.is_empty() {
                return;
            }
        }
    }

    /// Runs the timers due at `now` and, in balanced mode, starts sending the application's
    /// next ASDU if the link is idle. Call it at [`Link::next_timeout`] and whenever the
    /// application has new data.
    pub fn poll<U: LinkUser + ?Sized>(&mut self, now: Instant, user: &mut U) {
        let Some(p) = self.primary.as_mut() else {
            return;
        };
        let due = p.deadline.is_some_and(|d| now >= d);
        match p.phase {
            Phase::LinkStatus if due => self.send_link_status_request(now),
            Phase::ResetLink | Phase::UserData if due => {
                if p.tries < self.config.retries {
                    p.tries += 1;
                    p.deadline = Some(now + self.config.ack_timeout);
                    self.stats.retransmissions += 1;
                    debug!(tries = p.tries, phase = ?p.phase, "101: no answer, repeating");
                    self.tx.extend_from_slice(&p.outstanding);
                } else {
                    self.fail(now);
                }
            }
            Phase::Ready => self.send_next_user_data(now, user),
            _ => {}
        }
    }

    /// Earliest instant at which [`Link::poll`] has timer work; `None` in unbalanced mode.
    pub fn next_timeout(&self) -> Option<Instant> {
        let p = self.primary.as_ref()?;
        match p.phase {
            Phase::Ready => p.hold_until,
            _ => p.deadline,
        }
    }

    /// Appends every queued octet to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.tx);
    }

    /// The next event for the driver, oldest first.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    fn on_frame<U: LinkUser + ?Sized>(
        &mut self,
        now: Instant,
        result: Result<Frame, FrameError>,
        user: &mut U,
    ) {
        let frame = match result {
            Ok(frame) => frame,
            Err(e) => {
                debug!("101: frame dropped: {e}");
                return;
            }
        };
        let (control, address, asdu) = match &frame {
            Frame::SingleAck => {
                self.on_answer(now, None, user);
                return;
            }
            Frame::Fixed { control, address } => (*control, *address, None),
            Frame::Variable {
                control,
                address,
                asdu,
            } => (*control, *address, Some(asdu.as_slice())),
        };
        // Balanced answers are taken whatever their address: lib60870's balanced master, for
        // one, answers with its own link address, not ours (its receive path ignores the
        // address in balanced mode altogether).
        let balanced_answer = !control.prm && self.config.mode == Iec101Mode::Balanced;
        let broadcast = self.config.address_size.broadcast() == Some(address);
        if address != self.config.address && !broadcast && !balanced_answer {
            self.stats.for_other_stations += 1;
            return;
        }
        if control.prm {
            self.on_request(control, broadcast, asdu, user);
        } else if broadcast {
            self.stats.ignored += 1;
        } else {
            self.on_answer(now, Some(control), user);
        }
    }

    // ---- secondary half: answers to the master's primary frames ----

    fn on_request<U: LinkUser + ?Sized>(
        &mut self,
        control: Control,
        broadcast: bool,
        asdu: Option<&[u8]>,
        user: &mut U,
    ) {
        let balanced = self.config.mode == Iec101Mode::Balanced;
        let f = control.function;
        if broadcast {
            // Broadcast is SEND/NO REPLY only.
            match (f, asdu) {
                (primary::USER_DATA_UNCONFIRMED, Some(asdu)) if !asdu.is_empty() => {
                    self.events.push_back(LinkEvent::Polled);
                    self.deliver_unconfirmed(asdu, user);
                }
                _ => self.stats.ignored += 1,
            }
            return;
        }
        // User data must come in a variable frame, everything else in a fixed one.
        let user_data = matches!(
            f,
            primary::USER_DATA_CONFIRMED | primary::USER_DATA_UNCONFIRMED
        );
        let asdu = match (user_data, asdu) {
            (true, Some(asdu)) if !asdu.is_empty() => asdu,
            (false, None) => &[],
            _ => {
                self.stats.ignored += 1;
                return;
            }
        };
        self.events.push_back(LinkEvent::Polled);

        let counted = control.fcv()
            && matches!(
                f,
                primary::TEST_LINK
                    | primary::USER_DATA_CONFIRMED
                    | primary::REQUEST_CLASS_1
                    | primary::REQUEST_CLASS_2
            );
        if counted {
            if self.last_fcb == Some(control.fcb()) {
                if let Some(answer) = &self.last_answer {
                    debug!(function = f, "101: FCB repeated, repeating the last answer");
                    self.stats.repeated_answers += 1;
                    self.tx.extend_from_slice(answer);
                    return;
                }
            }
            self.last_fcb = Some(control.fcb());
        }

        let acd = !balanced && user.class1_pending();
        let answer = match f {
            primary::RESET_REMOTE_LINK | primary::RESET_FCB => {
                self.last_fcb = Some(false);
                self.last_answer = None;
                if f == primary::RESET_REMOTE_LINK {
                    self.events.push_back(LinkEvent::MasterActive);
                }
                self.ack(acd, !user.can_accept())
            }
            primary::RESET_USER_PROCESS => self.ack(acd, !user.can_accept()),
            primary::TEST_LINK if balanced => self.ack(false, !user.can_accept()),
            primary::USER_DATA_CONFIRMED => {
                if user.can_accept() {
                    user.received(asdu);
                    let acd = !balanced && user.class1_pending();
                    self.ack(acd, !user.can_accept())
                } else {
                    self.stats.refused_user_data += 1;
                    self.fixed(Control::secondary(secondary::NACK, acd, true))
                }
            }
            primary::USER_DATA_UNCONFIRMED => {
                self.deliver_unconfirmed(asdu, user);
                return;
            }
            primary::REQUEST_LINK_STATUS => self.fixed(Control::secondary(
                secondary::LINK_STATUS,
                acd,
                !user.can_accept(),
            )),
            primary::REQUEST_CLASS_1 | primary::REQUEST_CLASS_2 if !balanced => {
                let data = if f == primary::REQUEST_CLASS_1 {
                    user.next_class1()
                } else {
                    user.next_class2()
                };
                self.user_data_answer(data, user)
            }
            _ => self.fixed(Control::secondary(secondary::NOT_IMPLEMENTED, acd, false)),
        };
        if counted {
            self.last_answer = Some(answer.clone());
        }
        self.tx.extend_from_slice(&answer);
    }

    fn deliver_unconfirmed<U: LinkUser + ?Sized>(&mut self, asdu: &[u8], user: &mut U) {
        if user.can_accept() {
            user.received(asdu);
        } else {
            self.stats.refused_user_data += 1;
        }
    }

    /// Answer to a class 1 or class 2 request: user data, or NACK-no-data.
    fn user_data_answer<U: LinkUser + ?Sized>(
        &mut self,
        data: Option<Vec<u8>>,
        user: &U,
    ) -> Vec<u8> {
        let dfc = !user.can_accept();
        let max = max_asdu_len(self.config.address_size);
        let data = match data {
            Some(asdu) if asdu.len() > max || asdu.is_empty() => {
                debug!(
                    len = asdu.len(),
                    max, "101: ASDU does not fit a frame, dropped"
                );
                self.stats.oversize_asdus += 1;
                None
            }
            other => other,
        };
        let acd = user.class1_pending();
        match data {
            Some(asdu) => self.encode(&Frame::Variable {
                control: Control::secondary(secondary::USER_DATA, acd, dfc),
                address: self.config.address,
                asdu,
            }),
            None if self.config.single_char_ack && !acd && !dfc => vec![super::ft12::SINGLE_ACK],
            None => self.fixed(Control::secondary(secondary::NACK_NO_DATA, acd, dfc)),
        }
    }

    fn ack(&self, acd: bool, dfc: bool) -> Vec<u8> {
        if self.config.single_char_ack && !acd && !dfc {
            vec![super::ft12::SINGLE_ACK]
        } else {
            self.fixed(Control::secondary(secondary::ACK, acd, dfc))
        }
    }

    fn fixed(&self, control: Control) -> Vec<u8> {
        self.encode(&Frame::Fixed {
            control,
            address: self.config.address,
        })
    }

    /// Encodes a frame whose address was validated and whose ASDU was checked; an error
    /// cannot happen and is logged, not propagated.
    fn encode(&self, frame: &Frame) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame.encoded_len(self.config.address_size));
        if let Err(e) = frame.encode(self.config.address_size, &mut out) {
            debug!("101: cannot encode {frame:?}: {e}");
        }
        out
    }

    // ---- primary half (balanced): our requests and the master's answers ----

    fn on_answer<U: LinkUser + ?Sized>(
        &mut self,
        now: Instant,
        control: Option<Control>,
        user: &mut U,
    ) {
        let Some(p) = self.primary.as_mut() else {
            // Unbalanced: another secondary's answer on a multi-drop line.
            self.stats.ignored += 1;
            return;
        };
        // `None` is the single character, an ACK.
        let function = control.map_or(secondary::ACK, |c| c.function);
        let dfc = control.is_some_and(|c| c.dfc());
        match (p.phase, function) {
            (Phase::LinkStatus, secondary::LINK_STATUS) if control.is_some() => {
                self.send_reset_link(now);
            }
            (Phase::ResetLink, secondary::ACK) => {
                debug!("101: link set up");
                p.phase = Phase::Ready;
                p.deadline = None;
                p.next_fcb = true;
                p.up = true;
                p.hold_until = dfc.then(|| now + self.config.ack_timeout);
                self.events.push_back(LinkEvent::MasterActive);
                self.send_next_user_data(now, user);
            }
            (Phase::UserData, secondary::ACK | secondary::NACK) => {
                p.phase = Phase::Ready;
                p.deadline = None;
                p.next_fcb = !p.next_fcb;
                if function == secondary::ACK {
                    p.asdu = None;
                }
                let busy = dfc || function == secondary::NACK;
                p.hold_until = busy.then(|| now + self.config.ack_timeout);
                self.send_next_user_data(now, user);
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn send_link_status_request(&mut self, now: Instant) {
        let bytes = self.fixed(Control::primary(primary::REQUEST_LINK_STATUS, false, false));
        self.start_request(now, Phase::LinkStatus, bytes);
    }

    fn send_reset_link(&mut self, now: Instant) {
        let bytes = self.fixed(Control::primary(primary::RESET_REMOTE_LINK, false, false));
        self.start_request(now, Phase::ResetLink, bytes);
    }

    fn start_request(&mut self, now: Instant, phase: Phase, bytes: Vec<u8>) {
        let timeout = self.config.ack_timeout;
        if let Some(p) = self.primary.as_mut() {
            self.tx.extend_from_slice(&bytes);
            p.phase = phase;
            p.outstanding = bytes;
            p.tries = 0;
            p.deadline = Some(now + timeout);
        }
    }

    fn send_next_user_data<U: LinkUser + ?Sized>(&mut self, now: Instant, user: &mut U) {
        let max = max_asdu_len(self.config.address_size);
        let address = self.config.address;
        let Some(p) = self.primary.as_mut() else {
            return;
        };
        if p.phase != Phase::Ready || p.hold_until.is_some_and(|t| now < t) {
            return;
        }
        p.hold_until = None;
        // Bounded so that an application yielding only unusable ASDUs cannot hang us.
        let mut attempts = 0u8;
        let asdu = loop {
            attempts = attempts.saturating_add(1);
            if attempts > 16 {
                return;
            }
            let next = match p.asdu.take() {
                Some(asdu) => Some(asdu),
                None => user.next_class1().or_else(|| user.next_class2()),
            };
            match next {
                None => return,
                Some(asdu) if asdu.is_empty() || asdu.len() > max => {
                    self.stats.oversize_asdus += 1;
                }
                Some(asdu) => break asdu,
            }
        };
        let fcb = p.next_fcb;
        p.asdu = Some(asdu.clone());
        let bytes = self.encode(&Frame::Variable {
            control: Control::primary(primary::USER_DATA_CONFIRMED, fcb, true),
            address,
            asdu,
        });
        self.start_request(now, Phase::UserData, bytes);
    }

    fn fail(&mut self, now: Instant) {
        let Some(p) = self.primary.as_mut() else {
            return;
        };
        debug!(phase = ?p.phase, "101: no answer after all repetitions, link failed");
        if p.up {
            p.up = false;
            self.stats.link_failures += 1;
            self.events.push_back(LinkEvent::LinkFailed);
        }
        self.send_link_status_request(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An application with scripted class 1 / class 2 queues.
    #[derive(Default)]
    struct User {
        class1: VecDeque<Vec<u8>>,
        class2: VecDeque<Vec<u8>>,
        received: Vec<Vec<u8>>,
        full: bool,
    }

    impl LinkUser for User {
        fn class1_pending(&self) -> bool {
            !self.class1.is_empty()
        }
        fn next_class1(&mut self) -> Option<Vec<u8>> {
            self.class1.pop_front()
        }
        fn next_class2(&mut self) -> Option<Vec<u8>> {
            self.class2.pop_front()
        }
        fn received(&mut self, asdu: &[u8]) {
            self.received.push(asdu.to_vec());
        }
        fn can_accept(&self) -> bool {
            !self.full
        }
    }

    fn exchange(link: &mut Link, user: &mut User, now: Instant, input: &[u8]) -> Vec<u8> {
        link.handle_input(now, input, user);
        let mut out = Vec::new();
        link.poll_transmit(&mut out);
        out
    }

    fn events(link: &mut Link) -> Vec<LinkEvent> {
        std::iter::from_fn(|| link.poll_event()).collect()
    }

    #[test]
    fn config_validation() {
        assert_eq!(LinkConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut LinkConfig)| {
            let mut c = LinkConfig::default();
            f(&mut c);
            c.validate().err()
        };
        assert_eq!(
            bad(|c| c.address_size = AddressSize::Zero),
            Some(LinkConfigError::NoAddressUnbalanced)
        );
        assert_eq!(
            bad(|c| c.address = 300),
            Some(LinkConfigError::AddressTooLarge {
                address: 300,
                octets: 1
            })
        );
        assert_eq!(
            bad(|c| c.address = 255),
            Some(LinkConfigError::Broadcast(255))
        );
        assert_eq!(
            bad(|c| c.ack_timeout = Duration::ZERO),
            Some(LinkConfigError::ZeroTimeout)
        );
        assert!(Link::new(
            LinkConfig {
                address: 256,
                ..LinkConfig::default()
            },
            Instant::now()
        )
        .is_err());
    }

    #[test]
    fn unbalanced_answers_link_status_and_reset() {
        let now = Instant::now();
        let mut link = Link::new(LinkConfig::default(), now).expect("valid");
        let mut user = User::default();
        // Link status 11: C = 0x0B, CS = 0x0B + 0x01 = 0x0C.
        assert_eq!(
            exchange(&mut link, &mut user, now, &[0x10, 0x49, 0x01, 0x4A, 0x16]),
            [0x10, 0x0B, 0x01, 0x0C, 0x16]
        );
        assert_eq!(
            exchange(&mut link, &mut user, now, &[0x10, 0x40, 0x01, 0x41, 0x16]),
            [0xE5]
        );
        assert_eq!(
            events(&mut link),
            [
                LinkEvent::Polled,
                LinkEvent::Polled,
                LinkEvent::MasterActive
            ]
        );
        assert_eq!(link.next_timeout(), None);
    }

    #[test]
    fn frames_for_other_stations_and_secondary_frames_are_ignored() {
        let now = Instant::now();
        let mut link = Link::new(LinkConfig::default(), now).expect("valid");
        let mut user = User::default();
        // Request link status to address 2; a secondary's link status from address 2; E5.
        let input = [
            0x10, 0x49, 0x02, 0x4B, 0x16, 0x10, 0x0B, 0x02, 0x0D, 0x16, 0xE5,
        ];
        assert!(exchange(&mut link, &mut user, now, &input).is_empty());
        assert!(events(&mut link).is_empty());
        let stats = link.stats();
        assert_eq!(stats.for_other_stations, 2);
        assert_eq!(stats.ignored, 1);
    }

    #[test]
    fn balanced_starts_with_link_status_request() {
        let now = Instant::now();
        let config = LinkConfig {
            mode: Iec101Mode::Balanced,
            address_size: AddressSize::Zero,
            address: 0,
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, now).expect("valid");
        let mut user = User::default();
        assert_eq!(link.next_timeout(), Some(now));
        link.poll(now, &mut user);
        let mut out = Vec::new();
        link.poll_transmit(&mut out);
        // C = 0x49 (PRM, DIR 0, function 9), no address: CS = 0x49.
        assert_eq!(out, [0x10, 0x49, 0x49, 0x16]);
        assert_eq!(link.next_timeout(), Some(now + Duration::from_secs(1)));
    }
}
