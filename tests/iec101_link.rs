//! Byte-level tests of the IEC 60870-5-101 link layer as a controlled station: FT1.2 framing
//! (IEC 60870-5-1 §6.2.4.2) and the unbalanced and balanced transmission procedures
//! (IEC 60870-5-2 §5, IEC 60870-5-101 §6).
//!
//! Every exchange is driven through `Link` with synthetic instants. Control octets and
//! checksums are worked out in the comments; where a test feeds a sequence of frames, it also
//! feeds it split at every octet position, because a serial driver may read any chunk size.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ocpp809::config::Iec101Mode;
use ocpp809::iec101::ft12::{
    max_asdu_len, AddressSize, Control, Decoder, Frame, FrameError, MAX_FRAME_LEN,
};
use ocpp809::iec101::link::{Link, LinkConfig, LinkEvent, LinkUser};
use proptest::prelude::*;

/// Request link status, address 1: C = 0x49, CS = 0x49 + 0x01 = 0x4A.
const REQ_STATUS: [u8; 5] = [0x10, 0x49, 0x01, 0x4A, 0x16];
/// Reset of remote link, address 1: C = 0x40, CS = 0x41.
const RESET: [u8; 5] = [0x10, 0x40, 0x01, 0x41, 0x16];
/// Request class 1, FCB = 1: C = 0x40 | 0x20 | 0x10 | 10 = 0x7A, CS = 0x7B.
const CLASS1_FCB1: [u8; 5] = [0x10, 0x7A, 0x01, 0x7B, 0x16];
/// Request class 1, FCB = 0: C = 0x5A, CS = 0x5B.
const CLASS1_FCB0: [u8; 5] = [0x10, 0x5A, 0x01, 0x5B, 0x16];
/// Request class 2, FCB = 1: C = 0x40 | 0x20 | 0x10 | 11 = 0x7B, CS = 0x7C.
const CLASS2_FCB1: [u8; 5] = [0x10, 0x7B, 0x01, 0x7C, 0x16];
/// Request class 2, FCB = 0: C = 0x5B, CS = 0x5C.
const CLASS2_FCB0: [u8; 5] = [0x10, 0x5B, 0x01, 0x5C, 0x16];
/// Link status, no ACD: C = 0x0B, CS = 0x0C.
const STATUS: [u8; 5] = [0x10, 0x0B, 0x01, 0x0C, 0x16];
/// NACK no data with ACD: C = 0x20 | 9 = 0x29, CS = 0x2A.
const NO_DATA_ACD: [u8; 5] = [0x10, 0x29, 0x01, 0x2A, 0x16];
/// NACK no data: C = 0x09, CS = 0x0A.
const NO_DATA: [u8; 5] = [0x10, 0x09, 0x01, 0x0A, 0x16];
/// ACK with ACD: C = 0x20, CS = 0x21.
const ACK_ACD: [u8; 5] = [0x10, 0x20, 0x01, 0x21, 0x16];
/// NACK with DFC: C = 0x10 | 1 = 0x11, CS = 0x12.
const NACK_DFC: [u8; 5] = [0x10, 0x11, 0x01, 0x12, 0x16];
/// Link service not implemented: C = 0x0F, CS = 0x10.
const NOT_IMPLEMENTED: [u8; 5] = [0x10, 0x0F, 0x01, 0x10, 0x16];

/// C_IC_NA_1 act (COT 1, CA 1, IOA 2 octets): 64 01 06 01 00 00 14.
const GI: [u8; 7] = [0x64, 0x01, 0x06, 0x01, 0x00, 0x00, 0x14];
/// GI as user data confirmed, FCB = 1, address 1: L = 9, C = 0x73,
/// CS = 0x73 + 0x01 + 0x64 + 0x01 + 0x06 + 0x01 + 0x14 = 0xF4.
const GI_CONFIRMED: [u8; 15] = [
    0x68, 0x09, 0x09, 0x68, 0x73, 0x01, 0x64, 0x01, 0x06, 0x01, 0x00, 0x00, 0x14, 0xF4, 0x16,
];

#[derive(Default)]
struct User {
    class1: VecDeque<Vec<u8>>,
    class2: VecDeque<Vec<u8>>,
    received: Vec<Vec<u8>>,
    full: bool,
    /// Queue this class 1 answer for every received ASDU (e.g. an actcon).
    answer: Option<Vec<u8>>,
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
        if let Some(a) = &self.answer {
            self.class1.push_back(a.clone());
        }
    }
    fn can_accept(&self) -> bool {
        !self.full
    }
}

fn unbalanced() -> LinkConfig {
    LinkConfig::default()
}

fn balanced() -> LinkConfig {
    LinkConfig {
        mode: Iec101Mode::Balanced,
        ..LinkConfig::default()
    }
}

fn new_link(config: LinkConfig, now: Instant) -> Link {
    Link::new(config, now).expect("valid config")
}

fn send(link: &mut Link, user: &mut User, now: Instant, input: &[u8]) -> Vec<u8> {
    link.handle_input(now, input, user);
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    out
}

fn poll(link: &mut Link, user: &mut User, now: Instant) -> Vec<u8> {
    link.poll(now, user);
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    out
}

fn events(link: &mut Link) -> Vec<LinkEvent> {
    std::iter::from_fn(|| link.poll_event()).collect()
}

fn variable(control: u8, address: u16, asdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Frame::Variable {
        control: Control::from_octet(control),
        address,
        asdu: asdu.to_vec(),
    }
    .encode(AddressSize::One, &mut out)
    .expect("encodable");
    out
}

#[test]
fn reset_then_class2_poll_without_data_gets_single_char_or_nack() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    assert_eq!(send(&mut link, &mut user, now, &REQ_STATUS), STATUS);
    assert_eq!(send(&mut link, &mut user, now, &RESET), [0xE5]);
    assert_eq!(send(&mut link, &mut user, now, &CLASS2_FCB1), [0xE5]);
    assert_eq!(
        events(&mut link),
        [
            LinkEvent::Polled,
            LinkEvent::Polled,
            LinkEvent::MasterActive,
            LinkEvent::Polled
        ]
    );

    let mut link = new_link(
        LinkConfig {
            single_char_ack: false,
            ..unbalanced()
        },
        now,
    );
    // ACK: C = 0x00, CS = 0x01.
    assert_eq!(
        send(&mut link, &mut user, now, &RESET),
        [0x10, 0x00, 0x01, 0x01, 0x16]
    );
    assert_eq!(send(&mut link, &mut user, now, &CLASS2_FCB1), NO_DATA);
}

#[test]
fn class2_poll_with_class1_waiting_sets_acd_then_class1_drains() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    user.class1.push_back(vec![0x01, 0x02]);
    user.class1.push_back(vec![0x03]);
    send(&mut link, &mut user, now, &RESET);
    // No class 2 data, class 1 waiting: NACK no data with ACD (no single char: it has no ACD).
    assert_eq!(send(&mut link, &mut user, now, &CLASS2_FCB1), NO_DATA_ACD);
    // Class 1, one more waiting: user data with ACD, C = 0x28.
    // L = 4, CS = 0x28 + 0x01 + 0x01 + 0x02 = 0x2C.
    assert_eq!(
        send(&mut link, &mut user, now, &CLASS1_FCB0),
        [0x68, 0x04, 0x04, 0x68, 0x28, 0x01, 0x01, 0x02, 0x2C, 0x16]
    );
    // Last class 1: C = 0x08, L = 3, CS = 0x08 + 0x01 + 0x03 = 0x0C.
    assert_eq!(
        send(&mut link, &mut user, now, &CLASS1_FCB1),
        [0x68, 0x03, 0x03, 0x68, 0x08, 0x01, 0x03, 0x0C, 0x16]
    );
    // Nothing left.
    assert_eq!(send(&mut link, &mut user, now, &CLASS1_FCB0), [0xE5]);
}

#[test]
fn class2_data_carries_acd_when_class1_is_pending() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    user.class2.push_back(vec![0x0D, 0x01]);
    user.class1.push_back(vec![0x46]);
    send(&mut link, &mut user, now, &RESET);
    assert_eq!(
        send(&mut link, &mut user, now, &CLASS2_FCB1),
        variable(0x28, 1, &[0x0D, 0x01])
    );
}

#[test]
fn repeated_fcb_repeats_the_answer_without_taking_new_data() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    user.class2.extend([vec![0xA1], vec![0xA2]]);
    send(&mut link, &mut user, now, &RESET);
    let first = send(&mut link, &mut user, now, &CLASS2_FCB1);
    assert_eq!(first, variable(0x08, 1, &[0xA1]));
    // The master lost our answer and repeats FCB = 1.
    assert_eq!(send(&mut link, &mut user, now, &CLASS2_FCB1), first);
    assert_eq!(user.class2.len(), 1);
    assert_eq!(link.stats().repeated_answers, 1);
    // Toggled FCB: new data.
    assert_eq!(
        send(&mut link, &mut user, now, &CLASS2_FCB0),
        variable(0x08, 1, &[0xA2])
    );
    // A reset clears the expectation: FCB = 1 is new again (nothing left: E5).
    send(&mut link, &mut user, now, &RESET);
    assert_eq!(send(&mut link, &mut user, now, &CLASS2_FCB1), [0xE5]);
    assert_eq!(link.stats().repeated_answers, 1);
}

#[test]
fn lenient_before_reset_and_with_a_master_starting_at_fcb_0() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    user.class2.extend([vec![0xA1], vec![0xA2], vec![0xA3]]);
    // No reset yet: the poll is served anyway.
    assert_eq!(
        send(&mut link, &mut user, now, &CLASS2_FCB0),
        variable(0x08, 1, &[0xA1])
    );
    // After the reset the standard expects FCB = 1; FCB = 0 is taken as new, not ignored.
    send(&mut link, &mut user, now, &RESET);
    assert_eq!(
        send(&mut link, &mut user, now, &CLASS2_FCB0),
        variable(0x08, 1, &[0xA2])
    );
    // From then on the FCB rule holds: FCB = 0 again is a repetition.
    assert_eq!(
        send(&mut link, &mut user, now, &CLASS2_FCB0),
        variable(0x08, 1, &[0xA2])
    );
    assert_eq!(
        send(&mut link, &mut user, now, &CLASS2_FCB1),
        variable(0x08, 1, &[0xA3])
    );
}

#[test]
fn two_octet_addresses_and_their_broadcast() {
    let now = Instant::now();
    let config = LinkConfig {
        address: 0x0102,
        address_size: AddressSize::Two,
        ..unbalanced()
    };
    let mut link = new_link(config, now);
    let mut user = User::default();
    // Request link status to 0x0102: CS = 0x49 + 0x02 + 0x01 = 0x4C; answer C = 0x0B,
    // CS = 0x0B + 0x02 + 0x01 = 0x0E.
    assert_eq!(
        send(
            &mut link,
            &mut user,
            now,
            &[0x10, 0x49, 0x02, 0x01, 0x4C, 0x16]
        ),
        [0x10, 0x0B, 0x02, 0x01, 0x0E, 0x16]
    );
    // SEND/NO REPLY to 0xFFFF: L = 1 + 2 + 1 = 4, CS = 0x44 + 0xFF + 0xFF + 0x67 = 0xA9.
    let broadcast = [0x68, 0x04, 0x04, 0x68, 0x44, 0xFF, 0xFF, 0x67, 0xA9, 0x16];
    assert!(send(&mut link, &mut user, now, &broadcast).is_empty());
    assert_eq!(user.received, vec![vec![0x67]]);
}

#[test]
fn repeated_user_data_is_delivered_once() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    send(&mut link, &mut user, now, &RESET);
    assert_eq!(send(&mut link, &mut user, now, &GI_CONFIRMED), [0xE5]);
    assert_eq!(send(&mut link, &mut user, now, &GI_CONFIRMED), [0xE5]);
    assert_eq!(user.received, vec![GI.to_vec()]);
}

#[test]
fn user_data_with_a_class1_answer_is_acked_with_acd() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User {
        answer: Some(vec![0x64, 0x01, 0x07]),
        ..User::default()
    };
    send(&mut link, &mut user, now, &RESET);
    assert_eq!(send(&mut link, &mut user, now, &GI_CONFIRMED), ACK_ACD);
    assert_eq!(user.received, vec![GI.to_vec()]);
}

#[test]
fn full_application_gets_nack_with_dfc_and_loses_unconfirmed_data() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User {
        full: true,
        ..User::default()
    };
    send(&mut link, &mut user, now, &RESET);
    assert_eq!(send(&mut link, &mut user, now, &GI_CONFIRMED), NACK_DFC);
    // Link status also shows DFC: C = 0x1B, CS = 0x1C.
    assert_eq!(
        send(&mut link, &mut user, now, &REQ_STATUS),
        [0x10, 0x1B, 0x01, 0x1C, 0x16]
    );
    // Unconfirmed user data (C = 0x44) is dropped silently.
    assert!(send(&mut link, &mut user, now, &variable(0x44, 1, &GI)).is_empty());
    assert!(user.received.is_empty());
    assert_eq!(link.stats().refused_user_data, 2);
}

#[test]
fn broadcast_user_data_is_accepted_without_reply() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    // Clock sync broadcast-ish ASDU to 0xFF, SEND/NO REPLY.
    assert!(send(&mut link, &mut user, now, &variable(0x44, 0xFF, &GI)).is_empty());
    assert_eq!(user.received, vec![GI.to_vec()]);
    // Confirmed user data and requests on the broadcast address are not answered.
    assert!(send(&mut link, &mut user, now, &variable(0x73, 0xFF, &GI)).is_empty());
    assert!(send(&mut link, &mut user, now, &[0x10, 0x49, 0xFF, 0x48, 0x16]).is_empty());
    assert_eq!(user.received.len(), 1);
}

#[test]
fn unbalanced_refuses_balanced_only_functions() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    // Test link (function 2), FCV = 1, FCB = 1: C = 0x72, CS = 0x73.
    assert_eq!(
        send(&mut link, &mut user, now, &[0x10, 0x72, 0x01, 0x73, 0x16]),
        NOT_IMPLEMENTED
    );
}

#[test]
fn noise_and_corrupt_frames_between_requests_are_survived() {
    let now = Instant::now();
    let mut link = new_link(unbalanced(), now);
    let mut user = User::default();
    let mut input = vec![0x00, 0xFF, 0x16];
    input.extend_from_slice(&[0x10, 0x49, 0x01, 0x4B, 0x16]); // bad checksum
    input.extend_from_slice(&REQ_STATUS);
    input.extend_from_slice(&[0x68, 0x05, 0x06, 0x68]); // L ≠ L
    input.extend_from_slice(&RESET);
    assert_eq!(
        send(&mut link, &mut user, now, &input),
        [&STATUS[..], &[0xE5]].concat()
    );
    assert!(link.stats().decoder.errors() >= 2);
}

#[test]
fn a_conversation_split_at_every_octet_gives_the_same_answers() {
    let mut input = Vec::new();
    for frame in [
        &REQ_STATUS[..],
        &RESET,
        &CLASS1_FCB0,
        &GI_CONFIRMED,
        &CLASS2_FCB0,
    ] {
        input.extend_from_slice(frame);
    }
    let run = |chunks: &[&[u8]]| {
        let now = Instant::now();
        let mut link = new_link(unbalanced(), now);
        let mut user = User {
            answer: Some(vec![0x64, 0x01, 0x07]),
            ..User::default()
        };
        user.class1.push_back(vec![0x46, 0x01]);
        user.class2.push_back(vec![0x0D]);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(send(&mut link, &mut user, now, c));
        }
        (out, events(&mut link), user.received)
    };
    let whole = run(&[&input]);
    assert!(!whole.0.is_empty());
    assert_eq!(whole.2, vec![GI.to_vec()]);
    for split in 0..=input.len() {
        assert_eq!(
            run(&[&input[..split], &input[split..]]),
            whole,
            "split at {split}"
        );
    }
}

// ---- balanced ----

/// Link status from the master (DIR = 1): C = 0x80 | 11 = 0x8B, CS = 0x8C.
const M_STATUS: [u8; 5] = [0x10, 0x8B, 0x01, 0x8C, 0x16];
/// ACK from the master: C = 0x80, CS = 0x81.
const M_ACK: [u8; 5] = [0x10, 0x80, 0x01, 0x81, 0x16];

/// Runs the set-up to the point where the link is up.
fn set_up(link: &mut Link, user: &mut User, now: Instant) -> Vec<u8> {
    assert_eq!(poll(link, user, now), REQ_STATUS);
    assert_eq!(send(link, user, now, &M_STATUS), RESET);
    send(link, user, now, &[0xE5])
}

#[test]
fn balanced_set_up_then_user_data_with_toggling_fcb() {
    let now = Instant::now();
    let mut link = new_link(balanced(), now);
    let mut user = User::default();
    user.class2.push_back(vec![0x0D]);
    user.class1.push_back(vec![0x46]);
    // Class 1 first, FCB = 1: C = 0x73.
    assert_eq!(
        set_up(&mut link, &mut user, now),
        variable(0x73, 1, &[0x46])
    );
    assert!(link.is_up());
    assert_eq!(events(&mut link), [LinkEvent::MasterActive]);
    // Then class 2 with FCB = 0: C = 0x53.
    assert_eq!(
        send(&mut link, &mut user, now, &M_ACK),
        variable(0x53, 1, &[0x0D])
    );
    assert!(send(&mut link, &mut user, now, &[0xE5]).is_empty());
    assert_eq!(link.next_timeout(), None);
    // New data later: poll sends it with FCB = 1.
    user.class2.push_back(vec![0x0E]);
    assert_eq!(poll(&mut link, &mut user, now), variable(0x73, 1, &[0x0E]));
}

#[test]
fn balanced_retransmits_then_fails_and_sets_up_again() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut link = new_link(balanced(), t0);
    let mut user = User::default();
    user.class1.push_back(vec![0x46]);
    let first = set_up(&mut link, &mut user, t0);
    assert_eq!(first, variable(0x73, 1, &[0x46]));
    events(&mut link);
    // Nothing before the timeout.
    assert_eq!(link.next_timeout(), Some(t0 + s));
    assert!(poll(&mut link, &mut user, t0 + s / 2).is_empty());
    // Three repetitions with the same FCB.
    for i in 1..=3 {
        assert_eq!(
            poll(&mut link, &mut user, t0 + s * i),
            first,
            "repetition {i}"
        );
    }
    assert_eq!(link.stats().retransmissions, 3);
    // Then failure and a new set-up.
    assert_eq!(poll(&mut link, &mut user, t0 + s * 4), REQ_STATUS);
    assert_eq!(events(&mut link), [LinkEvent::LinkFailed]);
    assert!(!link.is_up());
    // Link status requests repeat until the master answers.
    assert_eq!(poll(&mut link, &mut user, t0 + s * 5), REQ_STATUS);
    assert_eq!(send(&mut link, &mut user, t0 + s * 5, &M_STATUS), RESET);
    // The unconfirmed ASDU goes out again, FCB = 1 after the reset.
    assert_eq!(send(&mut link, &mut user, t0 + s * 5, &M_ACK), first);
    assert_eq!(events(&mut link), [LinkEvent::MasterActive]);
}

#[test]
fn balanced_accepts_answers_carrying_the_masters_own_address() {
    let now = Instant::now();
    let mut link = new_link(balanced(), now);
    let mut user = User::default();
    user.class2.push_back(vec![0x0D]);
    assert_eq!(poll(&mut link, &mut user, now), REQ_STATUS);
    // Link status from a master with link address 7: C = 0x8B, CS = 0x8B + 0x07 = 0x92.
    assert_eq!(
        send(&mut link, &mut user, now, &[0x10, 0x8B, 0x07, 0x92, 0x16]),
        RESET
    );
    // ACK (no single char) from address 7: C = 0x80, CS = 0x87.
    assert_eq!(
        send(&mut link, &mut user, now, &[0x10, 0x80, 0x07, 0x87, 0x16]),
        variable(0x73, 1, &[0x0D])
    );
    // Primary frames for another address are still ignored: request link status to 7.
    assert!(send(&mut link, &mut user, now, &[0x10, 0xC9, 0x07, 0xD0, 0x16]).is_empty());
}

#[test]
fn balanced_nack_holds_back_and_resends_with_the_next_fcb() {
    let t0 = Instant::now();
    let mut link = new_link(balanced(), t0);
    let mut user = User::default();
    user.class1.push_back(vec![0x46]);
    set_up(&mut link, &mut user, t0);
    // NACK with DFC from the master: C = 0x80 | 0x10 | 1 = 0x91, CS = 0x92.
    assert!(send(&mut link, &mut user, t0, &[0x10, 0x91, 0x01, 0x92, 0x16]).is_empty());
    let later = t0 + Duration::from_secs(1);
    assert_eq!(link.next_timeout(), Some(later));
    assert_eq!(
        poll(&mut link, &mut user, later),
        variable(0x53, 1, &[0x46])
    );
}

#[test]
fn balanced_secondary_answers_test_link_and_refuses_class_requests() {
    let now = Instant::now();
    let mut link = new_link(balanced(), now);
    let mut user = User::default();
    // Master reset (DIR = 1): C = 0xC0, CS = 0xC1.
    assert_eq!(
        send(&mut link, &mut user, now, &[0x10, 0xC0, 0x01, 0xC1, 0x16]),
        [0xE5]
    );
    // Test link, FCB = 1, FCV = 1: C = 0xF2, CS = 0xF3.
    assert_eq!(
        send(&mut link, &mut user, now, &[0x10, 0xF2, 0x01, 0xF3, 0x16]),
        [0xE5]
    );
    // Request class 2 (C = 0xDB, CS = 0xDC) is not a balanced service.
    assert_eq!(
        send(&mut link, &mut user, now, &[0x10, 0xDB, 0x01, 0xDC, 0x16]),
        NOT_IMPLEMENTED
    );
    // That exchange used FCB = 0, so user data confirmed comes with FCB = 1: C = 0xF3.
    let gi = variable(0xF3, 1, &GI);
    assert_eq!(send(&mut link, &mut user, now, &gi), [0xE5]);
    assert_eq!(user.received, vec![GI.to_vec()]);
    assert!(events(&mut link).contains(&LinkEvent::MasterActive));
}

#[test]
fn balanced_without_link_address() {
    let now = Instant::now();
    let config = LinkConfig {
        address: 0,
        address_size: AddressSize::Zero,
        ..balanced()
    };
    let mut link = new_link(config, now);
    let mut user = User::default();
    user.class2.push_back(vec![0x0D]);
    assert_eq!(poll(&mut link, &mut user, now), [0x10, 0x49, 0x49, 0x16]);
    assert_eq!(
        send(&mut link, &mut user, now, &[0x10, 0x8B, 0x8B, 0x16]),
        [0x10, 0x40, 0x40, 0x16]
    );
    // L = 2, C = 0x73, CS = 0x73 + 0x0D = 0x80.
    assert_eq!(
        send(&mut link, &mut user, now, &[0xE5]),
        [0x68, 0x02, 0x02, 0x68, 0x73, 0x0D, 0x80, 0x16]
    );
}

// ---- properties ----

fn arb_frame(size: AddressSize) -> impl Strategy<Value = Frame> {
    let max_addr: u16 = match size {
        AddressSize::Zero => 0,
        AddressSize::One => 0xFF,
        AddressSize::Two => 0xFFFF,
    };
    let max = max_asdu_len(size);
    prop_oneof![
        Just(Frame::SingleAck),
        (any::<u8>(), 0..=max_addr).prop_map(|(c, address)| Frame::Fixed {
            control: Control::from_octet(c),
            address
        }),
        (
            any::<u8>(),
            0..=max_addr,
            proptest::collection::vec(any::<u8>(), 0..=max)
        )
            .prop_map(|(c, address, asdu)| Frame::Variable {
                control: Control::from_octet(c),
                address,
                asdu
            }),
    ]
}

fn arb_size() -> impl Strategy<Value = AddressSize> {
    prop_oneof![
        Just(AddressSize::Zero),
        Just(AddressSize::One),
        Just(AddressSize::Two)
    ]
}

fn decode_all(size: AddressSize, chunks: &[&[u8]]) -> Vec<Result<Frame, FrameError>> {
    let mut d = Decoder::new(size);
    let mut got = Vec::new();
    for c in chunks {
        d.feed(c, |r| got.push(r));
        assert!(d.buffered() <= MAX_FRAME_LEN);
    }
    got
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(
        (size, frames) in arb_size().prop_flat_map(|s| (Just(s), proptest::collection::vec(arb_frame(s), 1..5))),
        split in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        for f in &frames {
            f.encode(size, &mut bytes).expect("encodable");
        }
        let at = split.index(bytes.len() + 1);
        let got = decode_all(size, &[&bytes[..at], &bytes[at..]]);
        let want: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn decoder_never_panics_and_is_split_independent(
        size in arb_size(),
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        split in any::<prop::sample::Index>(),
    ) {
        let at = split.index(bytes.len() + 1);
        let whole = decode_all(size, &[&bytes]);
        prop_assert_eq!(decode_all(size, &[&bytes[..at], &bytes[at..]]), whole);
    }

    #[test]
    fn unbalanced_link_never_panics_and_is_split_independent(
        bytes in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(0x10u8), Just(0x68), Just(0x16), Just(0x01)],
            0..400,
        ),
        split in any::<prop::sample::Index>(),
    ) {
        let at = split.index(bytes.len() + 1);
        let run = |chunks: &[&[u8]]| {
            let now = Instant::now();
            let mut link = new_link(unbalanced(), now);
            let mut user = User::default();
            user.class1.push_back(vec![0x46]);
            user.class2.push_back(vec![0x0D]);
            let mut out = Vec::new();
            for c in chunks {
                out.extend(send(&mut link, &mut user, now, c));
            }
            (out, events(&mut link), user.received)
        };
        prop_assert_eq!(run(&[&bytes[..at], &bytes[at..]]), run(&[&bytes]));
    }

    #[test]
    fn balanced_link_never_panics_and_is_split_independent(
        bytes in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(0x10u8), Just(0x68), Just(0x16), Just(0xE5), Just(0x01)],
            0..400,
        ),
        split in any::<prop::sample::Index>(),
        ticks in 0u32..8,
    ) {
        let at = split.index(bytes.len() + 1);
        let run = |chunks: &[&[u8]]| {
            let t0 = Instant::now();
            let mut link = new_link(balanced(), t0);
            let mut user = User::default();
            user.class1.push_back(vec![0x46]);
            user.class2.push_back(vec![0x0D]);
            let mut out = poll(&mut link, &mut user, t0);
            for c in chunks {
                out.extend(send(&mut link, &mut user, t0, c));
            }
            for i in 1..=ticks {
                out.extend(poll(&mut link, &mut user, t0 + Duration::from_millis(700) * i));
            }
            (out, events(&mut link), user.received, link.next_timeout().map(|t| t - t0))
        };
        prop_assert_eq!(run(&[&bytes[..at], &bytes[at..]]), run(&[&bytes]));
    }
}
