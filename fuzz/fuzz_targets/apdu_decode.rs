//! Fuzz target for the IEC 60870-5-104 APCI codec (§5) and the link state machine
//! (§5.1–5.3, §9.6 timeouts): arbitrary octets must never panic, every decoded APDU must
//! re-encode to exactly the octets it came from, and the link must behave the same however
//! TCP splits the stream.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ocpp809::iec104::apci;
use ocpp809::iec104::link::{Link, LinkConfig, LinkEvent};

fuzz_target!(|data: &[u8]| {
    // Codec: decode frame after frame; the first error or incomplete tail ends the stream.
    let mut rest = data;
    while let Ok(Some((apdu, used))) = apci::decode(rest) {
        assert!(used > 0 && used <= rest.len());
        let mut out = Vec::new();
        apdu.encode(&mut out).expect("a decoded APDU re-encodes");
        assert_eq!(out, rest[..used], "roundtrip of {apdu:?}");
        rest = &rest[used..];
    }

    // Link: the same stream in two chunks must give what it gives whole (the split point is
    // taken from the data so the fuzzer can steer it).
    let split = match data.first() {
        Some(&b) => usize::from(b) % data.len(),
        None => 0,
    };
    let t0 = Instant::now();
    let whole = drive(t0, &[data]);
    let split = drive(t0, &[&data[..split], &data[split..]]);
    assert_eq!(whole, split);
});

/// Feeds the chunks to a fresh link with data transfer started, exercises sends and timers,
/// and returns everything observable.
fn drive(t0: Instant, chunks: &[&[u8]]) -> (Vec<u8>, Vec<LinkEvent>, bool) {
    let mut link = Link::new(LinkConfig::default(), t0);
    // Starting first lets I-frames in the input reach the sequence checks.
    link.handle_input(t0, &[0x68, 0x04, 0x07, 0x00, 0x00, 0x00]);
    // An outstanding I-frame gives N(R) in the input something to acknowledge.
    let _ = link.send_asdu(t0, vec![0x01, 0x01, 0x03, 0x00, 0x01, 0x00]);
    let mut out = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        link.handle_input(t0, chunk);
        link.poll_transmit(&mut out);
        events.extend(std::iter::from_fn(|| link.poll_event()));
    }
    let _ = link.send_asdu(t0, vec![0x01, 0x01, 0x03, 0x00, 0x02, 0x00]);
    let later = t0 + Duration::from_secs(3600);
    if let Some(deadline) = link.poll_timeout() {
        link.handle_timeout(deadline.min(later));
    }
    link.handle_timeout(later);
    link.poll_transmit(&mut out);
    events.extend(std::iter::from_fn(|| link.poll_event()));
    let _ = link.take_unacknowledged();
    (out, events, link.is_closed())
}
