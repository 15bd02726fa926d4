//! Fuzz target for the IEC 60870-5-101 FT1.2 codec (IEC 60870-5-1 §6.2.4.2) and the
//! unbalanced and balanced link state machines (IEC 60870-5-2 §5): arbitrary octets must never
//! panic, every decoded frame must re-encode to exactly the octets it came from, and the links
//! must behave the same however the serial driver splits the stream.

#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ocpp809::config::Iec101Mode;
use ocpp809::iec101::ft12::{AddressSize, Decoder, Frame, MAX_FRAME_LEN};
use ocpp809::iec101::link::{Link, LinkConfig, LinkEvent, LinkUser};

/// A station with a little class 1 and class 2 data that takes whatever it receives.
#[derive(Default)]
struct Dummy {
    class1: VecDeque<Vec<u8>>,
    class2: VecDeque<Vec<u8>>,
    received: Vec<Vec<u8>>,
}

impl LinkUser for Dummy {
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
        // An answer per command, bounded so the fuzzer cannot grow memory.
        if self.class1.len() < 4 {
            self.class1.push_back(asdu.to_vec());
        }
    }
    fn can_accept(&self) -> bool {
        self.received.len() % 7 != 6
    }
}

fuzz_target!(|data: &[u8]| {
    // Codec: with each address size, every decoded frame re-encodes to the octets it came
    // from (the decoder reports frames in order; noise and broken frames are simply skipped).
    for size in [AddressSize::Zero, AddressSize::One, AddressSize::Two] {
        let mut decoder = Decoder::new(size);
        decoder.feed(data, |result| {
            if let Ok(frame) = result {
                let mut out = Vec::new();
                frame.encode(size, &mut out).expect("a decoded frame re-encodes");
                assert!(out.len() <= MAX_FRAME_LEN);
                let mut again = Decoder::new(size);
                let mut back = Vec::new();
                again.feed(&out, |r| back.push(r));
                assert_eq!(back, vec![Ok::<Frame, _>(frame)]);
            }
        });
        assert!(decoder.buffered() <= MAX_FRAME_LEN);
    }

    let split = match data.first() {
        Some(&b) => usize::from(b) % data.len(),
        None => 0,
    };
    for mode in [Iec101Mode::Unbalanced, Iec101Mode::Balanced] {
        let t0 = Instant::now();
        let whole = drive(mode, t0, &[data]);
        let parts = drive(mode, t0, &[&data[..split], &data[split..]]);
        assert_eq!(whole, parts);
    }
});

/// Feeds the chunks to a fresh link, runs its timers, and returns everything observable.
fn drive(mode: Iec101Mode, t0: Instant, chunks: &[&[u8]]) -> (Vec<u8>, Vec<LinkEvent>, usize) {
    let config = LinkConfig {
        mode,
        ..LinkConfig::default()
    };
    let mut link = Link::new(config, t0).expect("valid config");
    let mut user = Dummy::default();
    user.class1.push_back(vec![0x46, 0x01, 0x04, 0x01, 0x00, 0x00, 0x00]);
    user.class2.push_back(vec![0x0D, 0x01, 0x01, 0x01, 0x00, 0x10, 0, 0, 0, 0, 0]);
    let mut out = Vec::new();
    link.poll(t0, &mut user);
    for chunk in chunks {
        link.handle_input(t0, chunk, &mut user);
        link.poll_transmit(&mut out);
    }
    let mut now = t0;
    for _ in 0..10 {
        match link.next_timeout() {
            Some(deadline) => now = deadline.max(now),
            None => break,
        }
        link.poll(now, &mut user);
    }
    link.poll(now + Duration::from_secs(3600), &mut user);
    link.poll_transmit(&mut out);
    let events = std::iter::from_fn(|| link.poll_event()).collect();
    (out, events, user.received.len())
}
