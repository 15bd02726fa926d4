//! Byte-level tests of the IEC 60870-5-104 link layer as a controlled station: APCI framing
//! (§5), sequence numbers and k/w (§5.1, §5.5), TESTFR and t3 (§5.2), STARTDT/STOPDT (§5.3)
//! and the t1/t2/t3 timeouts (§9.6).
//!
//! Every exchange is driven through `Link` with synthetic instants, so timer tests are exact
//! and take no wall-clock time. Wherever a test feeds frames, it also feeds them split at
//! every octet position, because TCP guarantees nothing about segment boundaries.

use std::time::{Duration, Instant};

use ocpp809::iec104::apci::{self, ApciError, Apdu, UFunction, MAX_ASDU_LEN};
use ocpp809::iec104::link::{
    Awaited, CloseReason, Link, LinkConfig, LinkError, LinkEvent, LinkStats,
};
use proptest::prelude::*;

const STARTDT_ACT: [u8; 6] = [0x68, 0x04, 0x07, 0x00, 0x00, 0x00];
const STARTDT_CON: [u8; 6] = [0x68, 0x04, 0x0B, 0x00, 0x00, 0x00];
const STOPDT_ACT: [u8; 6] = [0x68, 0x04, 0x13, 0x00, 0x00, 0x00];
const STOPDT_CON: [u8; 6] = [0x68, 0x04, 0x23, 0x00, 0x00, 0x00];
const TESTFR_ACT: [u8; 6] = [0x68, 0x04, 0x43, 0x00, 0x00, 0x00];
const TESTFR_CON: [u8; 6] = [0x68, 0x04, 0x83, 0x00, 0x00, 0x00];
/// C_IC_NA_1 station interrogation, activation, CA 1, QOI 20.
const GI_ASDU: [u8; 10] = [0x64, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x14];
/// The GI ASDU as an I-frame with N(S)=0, N(R)=0.
const GI_ACT: [u8; 16] = [
    0x68, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x64, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x14,
];

fn cfg() -> LinkConfig {
    LinkConfig::default()
}

fn i_frame(send_seq: u16, recv_seq: u16, asdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Apdu::I {
        send_seq,
        recv_seq,
        asdu: asdu.to_vec(),
    }
    .encode(&mut out)
    .unwrap();
    out
}

fn s_frame(recv_seq: u16) -> Vec<u8> {
    let mut out = Vec::new();
    Apdu::S { recv_seq }.encode(&mut out).unwrap();
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn tx(link: &mut Link) -> Vec<u8> {
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    out
}

fn events(link: &mut Link) -> Vec<LinkEvent> {
    std::iter::from_fn(|| link.poll_event()).collect()
}

/// Everything observable after feeding `input` in the given chunks at one instant.
fn run(link: &mut Link, now: Instant, chunks: &[&[u8]]) -> (Vec<u8>, Vec<LinkEvent>) {
    for chunk in chunks {
        link.handle_input(now, chunk);
    }
    (tx(link), events(link))
}

/// Feeds `input` whole, then split at every position, each time into a fresh link prepared
/// by `setup`; asserts all splits behave alike and returns the whole-input result and link.
fn check_all_splits(
    setup: impl Fn(Instant) -> Link,
    input: &[u8],
) -> (Vec<u8>, Vec<LinkEvent>, Link) {
    let t0 = Instant::now();
    let mut whole = setup(t0);
    let expected = run(&mut whole, t0, &[input]);
    for cut in 0..=input.len() {
        let mut link = setup(t0);
        let got = run(&mut link, t0, &[&input[..cut], &input[cut..]]);
        assert_eq!(got, expected, "split at {cut}");
        assert_eq!(link.close_reason(), whole.close_reason(), "split at {cut}");
    }
    let mut link = setup(t0);
    let singles: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&mut link, t0, &singles), expected, "octet by octet");
    (expected.0, expected.1, whole)
}

fn fresh(now: Instant) -> Link {
    Link::new(cfg(), now)
}

/// A link after STARTDT, with its output and events drained.
fn started(now: Instant) -> Link {
    started_with(cfg(), now)
}

fn started_with(config: LinkConfig, now: Instant) -> Link {
    let mut link = Link::new(config, now);
    link.handle_input(now, &STARTDT_ACT);
    assert_eq!(tx(&mut link), STARTDT_CON);
    assert_eq!(events(&mut link), [LinkEvent::DataTransferStarted]);
    link
}

fn closed_with(link: &Link) -> CloseReason {
    link.close_reason().cloned().expect("link should be closed")
}

#[test]
fn startdt_act_is_confirmed_and_starts_transfer() {
    let (out, ev, link) = check_all_splits(fresh, &STARTDT_ACT);
    assert_eq!(out, STARTDT_CON);
    assert_eq!(ev, [LinkEvent::DataTransferStarted]);
    assert!(link.is_active());
    assert!(link.can_send_asdu());
}

#[test]
fn link_starts_stopped() {
    let now = Instant::now();
    let mut link = fresh(now);
    assert!(!link.is_active());
    assert!(!link.can_send_asdu());
    assert_eq!(
        link.send_asdu(now, GI_ASDU.to_vec()),
        Err(LinkError::NotActive)
    );
    assert_eq!(tx(&mut link), Vec::<u8>::new());
}

#[test]
fn repeated_startdt_is_confirmed_without_a_second_event() {
    let (out, ev, link) = check_all_splits(started, &STARTDT_ACT);
    assert_eq!(out, STARTDT_CON);
    assert!(ev.is_empty());
    assert!(link.is_active());
}

#[test]
fn testfr_act_is_confirmed_in_any_state() {
    let (out, ev, _) = check_all_splits(fresh, &TESTFR_ACT);
    assert_eq!((out, ev), (TESTFR_CON.to_vec(), vec![]));
    let (out, ev, _) = check_all_splits(started, &TESTFR_ACT);
    assert_eq!((out, ev), (TESTFR_CON.to_vec(), vec![]));
}

#[test]
fn unsolicited_confirmations_are_ignored() {
    let input = cat(&[&STARTDT_CON, &STOPDT_CON, &TESTFR_CON]);
    let (out, ev, link) = check_all_splits(started, &input);
    assert_eq!((out, ev), (vec![], vec![]));
    assert!(link.is_active());
    assert_eq!(link.stats().received.u, 4);
}

#[test]
fn stopdt_without_pending_frames_is_confirmed_at_once() {
    let (out, ev, link) = check_all_splits(started, &STOPDT_ACT);
    assert_eq!(out, STOPDT_CON);
    assert_eq!(ev, [LinkEvent::DataTransferStopped]);
    assert!(!link.is_active());

    // Repeated STOPDT while stopped: confirmed again, no event.
    let (out, ev, _) = check_all_splits(fresh, &STOPDT_ACT);
    assert_eq!((out, ev), (STOPDT_CON.to_vec(), vec![]));
}

#[test]
fn stopdt_waits_for_pending_acknowledgements() {
    let t0 = Instant::now();
    let mut link = started(t0);
    link.send_asdu(t0, vec![1]).unwrap();
    link.send_asdu(t0, vec![2]).unwrap();
    assert_eq!(
        tx(&mut link),
        cat(&[&i_frame(0, 0, &[1]), &i_frame(1, 0, &[2])])
    );

    link.handle_input(t0, &STOPDT_ACT);
    assert_eq!(
        tx(&mut link),
        Vec::<u8>::new(),
        "no con while frames are unacknowledged"
    );
    assert_eq!(events(&mut link), []);
    assert!(!link.is_active());
    assert!(!link.can_send_asdu());
    assert_eq!(link.send_asdu(t0, vec![3]), Err(LinkError::NotActive));

    link.handle_input(t0, &s_frame(1));
    assert_eq!(
        tx(&mut link),
        Vec::<u8>::new(),
        "one frame still unacknowledged"
    );
    link.handle_input(t0, &s_frame(2));
    assert_eq!(tx(&mut link), STOPDT_CON);
    assert_eq!(events(&mut link), [LinkEvent::DataTransferStopped]);
    assert_eq!(link.unacknowledged(), 0);

    // Acks are still accepted while stopped; STARTDT resumes with the same sequence numbers.
    link.handle_input(t0, &s_frame(2));
    link.handle_input(t0, &STARTDT_ACT);
    assert_eq!(tx(&mut link), STARTDT_CON);
    assert_eq!(events(&mut link), [LinkEvent::DataTransferStarted]);
    link.send_asdu(t0, vec![3]).unwrap();
    assert_eq!(tx(&mut link), i_frame(2, 0, &[3]));
}

#[test]
fn stopdt_acknowledges_received_frames_before_confirming() {
    let input = cat(&[&GI_ACT, &STOPDT_ACT]);
    let (out, ev, _) = check_all_splits(started, &input);
    assert_eq!(out, cat(&[&s_frame(1), &STOPDT_CON]));
    assert_eq!(
        ev,
        [
            LinkEvent::Asdu(GI_ASDU.to_vec()),
            LinkEvent::DataTransferStopped
        ]
    );
}

#[test]
fn startdt_while_stopping_cancels_the_stop() {
    let t0 = Instant::now();
    let mut link = started(t0);
    link.send_asdu(t0, vec![1]).unwrap();
    tx(&mut link);
    link.handle_input(t0, &cat(&[&STOPDT_ACT, &STARTDT_ACT]));
    assert_eq!(tx(&mut link), STARTDT_CON);
    assert_eq!(events(&mut link), []);
    assert!(link.is_active());
    link.handle_input(t0, &s_frame(1));
    assert_eq!(tx(&mut link), Vec::<u8>::new(), "no late STOPDT con");
}

#[test]
fn i_frame_is_delivered() {
    let (out, ev, link) = check_all_splits(started, &GI_ACT);
    assert_eq!(out, Vec::<u8>::new(), "acknowledged later, by w or t2");
    assert_eq!(ev, [LinkEvent::Asdu(GI_ASDU.to_vec())]);
    assert_eq!(
        link.stats(),
        LinkStats {
            received: ocpp809::iec104::link::FrameCounts { i: 1, s: 0, u: 1 },
            sent: ocpp809::iec104::link::FrameCounts { i: 0, s: 0, u: 1 },
        }
    );
}

#[test]
fn outgoing_i_frame_carries_the_acknowledgement() {
    let t0 = Instant::now();
    let mut link = started(t0);
    link.handle_input(t0, &GI_ACT);
    events(&mut link);
    link.send_asdu(t0, vec![0x64, 0x01, 0x07]).unwrap();
    assert_eq!(tx(&mut link), i_frame(0, 1, &[0x64, 0x01, 0x07]));
    // The piggybacked ack stopped t2: nothing more is sent when it would have expired.
    link.handle_input(t0, &s_frame(1));
    link.handle_timeout(t0 + cfg().t2);
    assert_eq!(tx(&mut link), Vec::<u8>::new());
}

#[test]
fn s_frame_after_w_received_i_frames() {
    let frames: Vec<Vec<u8>> = (0..8).map(|n| i_frame(n, 0, &[n as u8])).collect();
    let input = frames.concat();
    let (out, ev, _) = check_all_splits(started, &input);
    assert_eq!(out, s_frame(8));
    assert_eq!(ev.len(), 8);

    // One short of w: no S-frame yet.
    let (out, _, _) = check_all_splits(started, &frames[..7].concat());
    assert_eq!(out, Vec::<u8>::new());
}

#[test]
fn s_frame_when_t2_expires() {
    let t0 = Instant::now();
    let mut link = started(t0);
    link.handle_input(t0, &GI_ACT);
    let t2 = t0 + cfg().t2;
    // A second frame later must not push the deadline back: t2 runs from the first.
    link.handle_input(t0 + Duration::from_secs(5), &i_frame(1, 0, &GI_ASDU));
    assert_eq!(link.poll_timeout(), Some(t2));
    link.handle_timeout(t2 - Duration::from_millis(1));
    assert_eq!(tx(&mut link), Vec::<u8>::new());
    link.handle_timeout(t2);
    assert_eq!(tx(&mut link), s_frame(2));
    link.handle_timeout(t2 + Duration::from_secs(1));
    assert_eq!(tx(&mut link), Vec::<u8>::new(), "acknowledged once");
}

#[test]
fn t3_sends_testfr_and_t1_closes_without_con() {
    let t0 = Instant::now();
    let mut link = fresh(t0);
    let t3 = t0 + cfg().t3;
    assert_eq!(link.poll_timeout(), Some(t3));
    link.handle_timeout(t3);
    assert_eq!(tx(&mut link), TESTFR_ACT);
    assert_eq!(link.poll_timeout(), Some(t3 + cfg().t1));
    link.handle_timeout(t3 + cfg().t1 - Duration::from_millis(1));
    assert!(!link.is_closed());
    assert_eq!(
        tx(&mut link),
        Vec::<u8>::new(),
        "no second TESTFR while one is outstanding"
    );
    link.handle_timeout(t3 + cfg().t1);
    assert_eq!(
        closed_with(&link),
        CloseReason::T1Expired(Awaited::TestFrCon)
    );
    assert_eq!(
        events(&mut link),
        [LinkEvent::Closed(CloseReason::T1Expired(
            Awaited::TestFrCon
        ))]
    );
    assert_eq!(link.poll_timeout(), None);
}

#[test]
fn testfr_con_clears_t1_and_any_frame_restarts_t3() {
    let t0 = Instant::now();
    let mut link = started(t0);
    let t3 = t0 + cfg().t3;
    link.handle_timeout(t3);
    assert_eq!(tx(&mut link), TESTFR_ACT);
    let t_con = t3 + Duration::from_secs(2);
    link.handle_input(t_con, &TESTFR_CON);
    assert_eq!(link.poll_timeout(), Some(t_con + cfg().t3));
    link.handle_timeout(t3 + cfg().t1);
    assert!(!link.is_closed());

    // Received traffic keeps the connection from being probed.
    let later = t_con + Duration::from_secs(15);
    link.handle_input(later, &s_frame(0));
    link.handle_timeout(t_con + cfg().t3);
    assert_eq!(tx(&mut link), Vec::<u8>::new());
    assert_eq!(link.poll_timeout(), Some(later + cfg().t3));
}

#[test]
fn t1_closes_on_unacknowledged_i_frame() {
    let t0 = Instant::now();
    let mut link = started(t0);
    let t_send = t0 + Duration::from_secs(1);
    link.send_asdu(t_send, vec![1]).unwrap();
    link.send_asdu(t_send + Duration::from_secs(3), vec![2])
        .unwrap();
    assert_eq!(link.poll_timeout(), Some(t_send + cfg().t1));
    // Acknowledging the first moves t1 to the second.
    link.handle_input(t_send + Duration::from_secs(4), &s_frame(1));
    let deadline = t_send + Duration::from_secs(3) + cfg().t1;
    assert_eq!(link.poll_timeout(), Some(deadline));
    link.handle_timeout(deadline);
    assert_eq!(
        closed_with(&link),
        CloseReason::T1Expired(Awaited::IFrameAck { send_seq: 1 })
    );
    assert_eq!(
        link.take_unacknowledged(),
        vec![vec![2]],
        "what to re-queue elsewhere"
    );
}

#[test]
fn ack_of_unsent_frame_closes() {
    let setup = |now| {
        let mut link = started(now);
        link.send_asdu(now, vec![1]).unwrap();
        tx(&mut link);
        link
    };
    // N(R)=2 while only N(S)=0 was sent.
    let (out, ev, link) = check_all_splits(setup, &s_frame(2));
    let reason = CloseReason::AckOfUnsentFrame {
        recv_seq: 2,
        next_send: 1,
        oldest_unacked: 0,
    };
    assert_eq!((out, ev), (vec![], vec![LinkEvent::Closed(reason.clone())]));
    assert_eq!(closed_with(&link), reason);

    // The same through an I-frame's N(R), and behind the window (N(R) 32767 ≡ -1).
    let (_, ev, _) = check_all_splits(setup, &i_frame(0, 0x7FFF, &[9]));
    assert_eq!(
        ev,
        [LinkEvent::Closed(CloseReason::AckOfUnsentFrame {
            recv_seq: 0x7FFF,
            next_send: 1,
            oldest_unacked: 0,
        })]
    );
}

#[test]
fn i_frame_before_startdt_closes() {
    let (out, ev, link) = check_all_splits(fresh, &GI_ACT);
    assert_eq!(out, Vec::<u8>::new());
    assert_eq!(ev, [LinkEvent::Closed(CloseReason::IFrameBeforeStartDt)]);
    assert!(link.is_closed());
}

#[test]
fn i_frame_after_stopdt_closes() {
    let input = cat(&[&STOPDT_ACT, &GI_ACT]);
    let (out, ev, _) = check_all_splits(started, &input);
    assert_eq!(
        out, STOPDT_CON,
        "the con queued before the bad frame still goes out"
    );
    assert_eq!(
        ev,
        [
            LinkEvent::DataTransferStopped,
            LinkEvent::Closed(CloseReason::IFrameBeforeStartDt)
        ]
    );
}

#[test]
fn unexpected_send_sequence_closes() {
    let input = cat(&[&GI_ACT, &i_frame(2, 0, &GI_ASDU)]);
    let (_, ev, _) = check_all_splits(started, &input);
    assert_eq!(
        ev,
        [
            LinkEvent::Asdu(GI_ASDU.to_vec()),
            LinkEvent::Closed(CloseReason::UnexpectedSendSeq {
                expected: 1,
                got: 2
            })
        ]
    );
    // A duplicate is just as wrong.
    let (_, ev, _) = check_all_splits(started, &cat(&[&GI_ACT, &GI_ACT]));
    assert_eq!(
        ev[1],
        LinkEvent::Closed(CloseReason::UnexpectedSendSeq {
            expected: 1,
            got: 0
        })
    );
}

#[test]
fn wrong_start_octet_closes() {
    let input = [0x10, 0x49, 0x01, 0x4A, 0x16];
    let (out, ev, _) = check_all_splits(fresh, &input);
    assert_eq!(out, Vec::<u8>::new());
    assert_eq!(
        ev,
        [LinkEvent::Closed(CloseReason::Malformed(
            ApciError::WrongStart(0x10)
        ))]
    );
}

#[test]
fn length_below_four_closes() {
    let input = [0x68, 0x03, 0x07, 0x00, 0x00];
    let (_, ev, _) = check_all_splits(fresh, &input);
    assert_eq!(
        ev,
        [LinkEvent::Closed(CloseReason::Malformed(
            ApciError::LengthTooShort(3)
        ))]
    );
}

#[test]
fn oversized_length_closes() {
    let input = [0x68, 0xFF];
    let (_, ev, _) = check_all_splits(fresh, &input);
    assert_eq!(
        ev,
        [LinkEvent::Closed(CloseReason::Malformed(
            ApciError::LengthTooLong(255)
        ))]
    );
}

#[test]
fn confirmations_queued_before_a_malformed_frame_are_flushed_once() {
    let input = cat(&[&TESTFR_ACT, &[0x68, 0x04, 0x01, 0x02, 0x00, 0x00]]);
    let (out, ev, mut link) = check_all_splits(started, &input);
    assert_eq!(out, TESTFR_CON);
    assert_eq!(
        ev,
        [LinkEvent::Closed(CloseReason::Malformed(
            ApciError::MalformedSFrame { cf1: 1, cf2: 2 }
        ))]
    );
    // Closed: input, timers and sends do nothing, and no second Closed event.
    let later = Instant::now() + Duration::from_secs(3600);
    link.handle_input(later, &TESTFR_ACT);
    link.handle_timeout(later);
    assert_eq!(link.send_asdu(later, vec![1]), Err(LinkError::Closed));
    assert_eq!(tx(&mut link), Vec::<u8>::new());
    assert_eq!(events(&mut link), []);
    assert!(!link.is_active());
    assert!(!link.can_send_asdu());
}

#[test]
fn mixed_stream_reassembles_at_every_split() {
    let input = cat(&[
        &TESTFR_ACT,
        &GI_ACT,
        &i_frame(1, 0, &[0xAB; MAX_ASDU_LEN]),
        &s_frame(0),
        &TESTFR_ACT,
    ]);
    let (out, ev, _) = check_all_splits(started, &input);
    assert_eq!(out, cat(&[&TESTFR_CON, &TESTFR_CON]));
    assert_eq!(
        ev,
        [
            LinkEvent::Asdu(GI_ASDU.to_vec()),
            LinkEvent::Asdu(vec![0xAB; MAX_ASDU_LEN])
        ]
    );
}

#[test]
fn k_window_blocks_and_reopens() {
    let t0 = Instant::now();
    let config = LinkConfig {
        k: 3,
        w: 2,
        ..cfg()
    };
    let mut link = started_with(config, t0);
    for n in 0..3 {
        assert!(link.can_send_asdu());
        link.send_asdu(t0, vec![n]).unwrap();
    }
    assert!(!link.can_send_asdu());
    assert_eq!(link.unacknowledged(), 3);
    assert_eq!(link.send_asdu(t0, vec![3]), Err(LinkError::WindowFull));
    link.handle_input(t0, &s_frame(1));
    assert!(link.can_send_asdu());
    assert_eq!(link.unacknowledged(), 2);
    link.send_asdu(t0, vec![3]).unwrap();
    assert!(!link.can_send_asdu());
    // N(R) in an I-frame acknowledges too.
    link.handle_input(t0, &i_frame(0, 4, &[7]));
    assert_eq!(link.unacknowledged(), 0);
    assert!(link.can_send_asdu());
}

#[test]
fn send_asdu_rejects_bad_sizes() {
    let t0 = Instant::now();
    let mut link = started(t0);
    assert_eq!(link.send_asdu(t0, vec![]), Err(LinkError::Empty));
    assert_eq!(
        link.send_asdu(t0, vec![0; MAX_ASDU_LEN + 1]),
        Err(LinkError::TooLong(250))
    );
    assert_eq!(link.unacknowledged(), 0);
    assert_eq!(tx(&mut link), Vec::<u8>::new());
    link.send_asdu(t0, vec![0; MAX_ASDU_LEN]).unwrap();
    assert_eq!(tx(&mut link).len(), apci::MAX_APDU_LEN);
}

#[test]
fn take_unacknowledged_hands_over_payloads_once() {
    let t0 = Instant::now();
    let mut link = started(t0);
    for n in 1..=4 {
        link.send_asdu(t0, vec![n]).unwrap();
    }
    link.handle_input(t0, &s_frame(1));
    assert_eq!(link.take_unacknowledged(), [vec![2], vec![3], vec![4]]);
    assert_eq!(link.take_unacknowledged(), Vec::<Vec<u8>>::new());
    // The window itself is unchanged: acks still validate and drain it.
    assert_eq!(link.unacknowledged(), 3);
    link.handle_input(t0, &s_frame(4));
    assert!(!link.is_closed());
    assert_eq!(link.unacknowledged(), 0);
}

#[test]
fn sequence_numbers_wrap_modulo_32768() {
    let t0 = Instant::now();
    let config = LinkConfig {
        k: 12,
        w: 8,
        ..cfg()
    };
    let mut link = started_with(config, t0);
    let total: u32 = 32768 + 100;
    let mut received = 0u32;
    let mut out = Vec::new();
    for n in 0..total {
        let seq = (n % 32768) as u16;
        // Our side: send, and get it acknowledged by the master's next frame.
        link.send_asdu(t0, vec![n as u8]).unwrap();
        // Master side: an I-frame with its own N(S), acknowledging ours.
        link.handle_input(t0, &i_frame(seq, ((n + 1) % 32768) as u16, &[n as u8, 1]));
        assert_eq!(link.unacknowledged(), 0, "frame {n}");
        out.clear();
        link.poll_transmit(&mut out);
        // Our I-frame went out with N(S) = n and N(R) = n (all earlier master frames).
        assert_eq!(out[..6], i_frame(seq, seq, &[n as u8])[..6], "frame {n}");
        while let Some(ev) = link.poll_event() {
            assert!(matches!(ev, LinkEvent::Asdu(_)), "{ev:?}");
            received += 1;
        }
    }
    assert!(!link.is_closed(), "{:?}", link.close_reason());
    assert_eq!(received, total);
    assert_eq!(link.stats().sent.i, u64::from(total));
    assert_eq!(link.stats().received.i, u64::from(total));

    // Master acknowledges with S-frames across the boundary too: 32868 mod 32768 = 100.
    for n in 0..12u16 {
        link.send_asdu(t0, vec![1]).unwrap();
        assert_eq!(link.unacknowledged(), usize::from(n) + 1);
    }
    link.handle_input(t0, &s_frame(112));
    assert_eq!(link.unacknowledged(), 0);
    assert!(!link.is_closed());
}

#[test]
fn ack_window_across_the_wrap_point() {
    let t0 = Instant::now();
    let mut link = started_with(
        LinkConfig {
            k: 12,
            w: 8,
            ..cfg()
        },
        t0,
    );
    // Walk V(S) to 32766 with immediate acks.
    for n in 1..=32766u32 {
        link.send_asdu(t0, vec![0]).unwrap();
        link.handle_input(t0, &s_frame(n as u16));
    }
    tx(&mut link);
    // Four in flight: N(S) 32766, 32767, 0, 1.
    for _ in 0..4 {
        link.send_asdu(t0, vec![0]).unwrap();
    }
    let frames = tx(&mut link);
    assert_eq!(frames[2..4], [0xFC, 0xFF], "N(S)=32766");
    assert_eq!(frames[7 * 3 + 2..7 * 3 + 4], [0x02, 0x00], "N(S)=1");
    link.handle_input(t0, &s_frame(0));
    assert_eq!(link.unacknowledged(), 2);
    // N(R)=3 is beyond V(S)=2 even though numerically small.
    link.handle_input(t0, &s_frame(3));
    assert_eq!(
        closed_with(&link),
        CloseReason::AckOfUnsentFrame {
            recv_seq: 3,
            next_send: 2,
            oldest_unacked: 0
        }
    );
}

#[test]
fn close_reasons_display_for_logs() {
    let reason = CloseReason::UnexpectedSendSeq {
        expected: 4,
        got: 6,
    };
    assert_eq!(
        reason.to_string(),
        "I-frame with N(S)=6, expected 4 (frame lost or duplicated)"
    );
    assert_eq!(
        CloseReason::T1Expired(Awaited::TestFrCon).to_string(),
        "t1 expired waiting for TESTFR con"
    );
    assert_eq!(UFunction::StopDtAct.to_string(), "STOPDT act");
}

proptest! {
    #[test]
    fn arbitrary_chunks_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        start_first in any::<bool>(),
        step_ms in 0u64..40_000,
    ) {
        let t0 = Instant::now();
        let mut link = Link::new(LinkConfig::default(), t0);
        if start_first {
            link.handle_input(t0, &STARTDT_ACT);
        }
        let mut now = t0;
        let mut closed_events = 0;
        for chunk in &chunks {
            link.handle_input(now, chunk);
            let _ = link.send_asdu(now, vec![1, 2, 3]);
            now += Duration::from_millis(step_ms);
            link.handle_timeout(now);
            let mut out = Vec::new();
            link.poll_transmit(&mut out);
            // Whatever we send must itself be a valid APDU stream.
            let mut rest = &out[..];
            while !rest.is_empty() {
                let (_, used) = apci::decode(rest).unwrap().unwrap();
                rest = &rest[used..];
            }
            while let Some(ev) = link.poll_event() {
                if matches!(ev, LinkEvent::Closed(_)) {
                    closed_events += 1;
                }
            }
        }
        prop_assert!(closed_events <= 1);
        prop_assert_eq!(closed_events == 1, link.is_closed());
        let _ = link.take_unacknowledged();
    }

    /// Mostly well-formed traffic, so the state machine is explored past the first octet.
    #[test]
    fn protocol_driven_sessions_keep_invariants(
        ops in proptest::collection::vec(op_strategy(), 0..120),
        chunk in 1usize..40,
    ) {
        let t0 = Instant::now();
        let config = LinkConfig { k: 4, w: 3, ..cfg() };
        let mut link = Link::new(config, t0);
        let mut now = t0;
        let mut master_send = 0u16;
        let mut closed_seen = false;
        for op in ops {
            let before_close = link.is_closed();
            let mut input = Vec::new();
            match op {
                Op::U(function) => Apdu::U(function).encode(&mut input).unwrap(),
                Op::Ack { back } => input = s_frame(ack_seq(&link, back)),
                // Out-of-state or misnumbered I-frames close at once: keep them rare
                // (`wrong_seq`) so that sessions run long.
                Op::I { back, wrong_seq, len } if link.is_active() || wrong_seq => {
                    let seq = (master_send + u16::from(wrong_seq)) % 32768;
                    master_send = (master_send + 1) % 32768;
                    input = i_frame(seq, ack_seq(&link, back), &vec![0x2D; len]);
                }
                Op::I { back, .. } => input = s_frame(ack_seq(&link, back)),
                Op::Garbage(bytes) => input = bytes,
                Op::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    link.handle_timeout(now);
                }
                Op::Send(len) => {
                    let could = link.can_send_asdu();
                    let res = link.send_asdu(now, vec![0x1E; len]);
                    prop_assert_eq!(res.is_ok(), could && (1..=MAX_ASDU_LEN).contains(&len));
                }
            }
            for piece in input.chunks(chunk) {
                link.handle_input(now, piece);
            }
            prop_assert!(link.unacknowledged() <= 4);
            // Every expired timer was handled, so the next deadline lies ahead.
            match link.poll_timeout() {
                Some(deadline) => prop_assert!(deadline > now && !link.is_closed()),
                None => prop_assert!(link.is_closed()),
            }
            let mut out = Vec::new();
            link.poll_transmit(&mut out);
            if before_close {
                prop_assert!(out.is_empty(), "output after close");
            }
            let mut rest = &out[..];
            while !rest.is_empty() {
                let (_, used) = apci::decode(rest).unwrap().unwrap();
                rest = &rest[used..];
            }
            while let Some(ev) = link.poll_event() {
                prop_assert!(!closed_seen, "event after Closed: {:?}", ev);
                closed_seen = matches!(ev, LinkEvent::Closed(_));
            }
            prop_assert_eq!(closed_seen, link.is_closed());
        }
    }

    #[test]
    fn decode_never_panics_and_roundtrips(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(Some((apdu, used))) = apci::decode(&data) {
            let mut out = Vec::new();
            apdu.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..], &data[..used]);
            prop_assert_eq!(apdu.encoded_len(), used);
        }
    }

    #[test]
    fn valid_frames_roundtrip(
        kind in 0u8..3,
        send_seq in 0u16..32768,
        recv_seq in 0u16..32768,
        asdu in proptest::collection::vec(any::<u8>(), 1..=MAX_ASDU_LEN),
        func in 0usize..6,
    ) {
        let functions = [
            UFunction::StartDtAct, UFunction::StartDtCon, UFunction::StopDtAct,
            UFunction::StopDtCon, UFunction::TestFrAct, UFunction::TestFrCon,
        ];
        let apdu = match kind {
            0 => Apdu::I { send_seq, recv_seq, asdu },
            1 => Apdu::S { recv_seq },
            _ => Apdu::U(functions[func]),
        };
        let mut out = Vec::new();
        apdu.encode(&mut out).unwrap();
        prop_assert_eq!(apci::decode(&out), Ok(Some((apdu, out.len()))));
    }
}

#[derive(Clone, Debug)]
enum Op {
    U(UFunction),
    Ack {
        back: u16,
    },
    I {
        back: u16,
        wrong_seq: bool,
        len: usize,
    },
    Garbage(Vec<u8>),
    Advance(u64),
    Send(usize),
}

/// An N(R) acknowledging all but the newest `back` of our unacknowledged I-frames.
fn ack_seq(link: &Link, back: u16) -> u16 {
    let next_send = (link.stats().sent.i % 32768) as u16;
    let window = link.unacknowledged() as u16;
    (next_send + 32768 - window.min(back)) % 32768
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let function = prop_oneof![
        4 => Just(UFunction::StartDtAct),
        1 => Just(UFunction::StopDtAct),
        2 => Just(UFunction::TestFrAct),
        1 => Just(UFunction::TestFrCon),
        1 => Just(UFunction::StartDtCon),
    ];
    prop_oneof![
        30 => function.prop_map(Op::U),
        40 => (0u16..6).prop_map(|back| Op::Ack { back }),
        80 => (0u16..6, proptest::bool::weighted(0.01), 1usize..20)
            .prop_map(|(back, wrong_seq, len)| Op::I { back, wrong_seq, len }),
        1 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(Op::Garbage),
        40 => prop_oneof![4 => 0u64..3_000, 1 => 0u64..25_000].prop_map(Op::Advance),
        80 => (0usize..260).prop_map(Op::Send),
    ]
}
