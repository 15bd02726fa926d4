//! What the MQTT mirror still has to deliver, without I/O (the sans-IO core of the mirror).
//!
//! Two kinds of messages:
//! - retained state snapshots (status, site, charger state, meters): only the newest per topic
//!   matters. They are kept in a map (bounded by the number of distinct topics) and published
//!   when they change and again after every (re)connection;
//! - a stream of non-retained messages (meter samples, events, commands) in a bounded FIFO of
//!   `capacity` entries. A message stays in the FIFO until the broker acknowledged it (PUBACK);
//!   when the FIFO is full the oldest one is dropped and counted.
//!
//! The driver hands messages to the MQTT client only while connected and at most `window` at a
//! time. The client reports, in order, one `sent(packet_id)` per handed message when it goes on
//! the wire, then `acked(packet_id)` when the broker acknowledges it. A lost connection puts
//! every handed but unacknowledged message back in line: after the reconnection they are sent
//! again, in their original order and before newer ones. This is "at least once": a message
//! whose PUBACK was lost with the connection reaches subscribers twice.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::topics::Publication;

#[derive(Debug)]
struct Entry {
    seq: u64,
    publication: Publication,
}

/// What a handed message was.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tag {
    /// A FIFO entry with this sequence number.
    Buffered(u64),
    /// A retained snapshot of this topic.
    State(String),
}

/// Outcome of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// A retained snapshot replaced the previous one of its topic.
    State,
    /// Appended to the FIFO.
    Queued,
    /// Appended to the full FIFO, whose oldest message was dropped.
    QueuedDroppingOldest,
}

#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    window: usize,
    fifo: VecDeque<Entry>,
    next_seq: u64,
    /// Index in `fifo` of the first entry not handed over on this connection.
    unsent: usize,
    retained: BTreeMap<String, Vec<u8>>,
    /// Retained topics to publish, in order, each once.
    dirty: VecDeque<String>,
    dirty_set: HashSet<String>,
    /// Handed to the client, not yet on the wire (no packet id yet), oldest first.
    handed: VecDeque<Tag>,
    /// On the wire, waiting for PUBACK.
    awaiting: HashMap<u16, Tag>,
    connected: bool,
    dropped: u64,
}

impl Outbox {
    /// `capacity`: FIFO entries (at least 1); `window`: messages handed to the client and not
    /// yet acknowledged (at least 1).
    pub fn new(capacity: usize, window: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            window: window.max(1),
            fifo: VecDeque::new(),
            next_seq: 0,
            unsent: 0,
            retained: BTreeMap::new(),
            dirty: VecDeque::new(),
            dirty_set: HashSet::new(),
            handed: VecDeque::new(),
            awaiting: HashMap::new(),
            connected: false,
            dropped: 0,
        }
    }

    /// Takes a message to deliver.
    pub fn push(&mut self, publication: Publication) -> Pushed {
        if publication.retain {
            self.mark_dirty(&publication.topic, false);
            self.retained.insert(publication.topic, publication.payload);
            return Pushed::State;
        }
        let mut outcome = Pushed::Queued;
        if self.fifo.len() >= self.capacity {
            self.fifo.pop_front();
            self.unsent = self.unsent.saturating_sub(1);
            self.dropped += 1;
            outcome = Pushed::QueuedDroppingOldest;
        }
        self.fifo.push_back(Entry {
            seq: self.next_seq,
            publication,
        });
        self.next_seq += 1;
        outcome
    }

    /// The broker accepted the connection (CONNACK). `first` (the `online` status) goes out
    /// first, then every retained snapshot, then the FIFO from its oldest entry.
    pub fn connected(&mut self, first: Publication) {
        self.reset();
        self.connected = true;
        self.dirty.clear();
        self.dirty_set.clear();
        let topics: Vec<String> = self.retained.keys().cloned().collect();
        for topic in topics {
            self.mark_dirty(&topic, false);
        }
        self.mark_dirty(&first.topic, true);
        self.retained.insert(first.topic, first.payload);
    }

    /// The connection is gone: whatever was handed over and not acknowledged will be sent again.
    pub fn disconnected(&mut self) {
        self.reset();
        self.connected = false;
    }

    fn reset(&mut self) {
        self.handed.clear();
        self.awaiting.clear();
        self.unsent = 0;
    }

    fn mark_dirty(&mut self, topic: &str, front: bool) {
        if self.dirty_set.insert(topic.to_owned()) {
            if front {
                self.dirty.push_front(topic.to_owned());
            } else {
                self.dirty.push_back(topic.to_owned());
            }
        } else if front {
            self.dirty.retain(|t| t != topic);
            self.dirty.push_front(topic.to_owned());
        }
    }

    /// The next message to hand to the client, if connected and the window allows. Retained
    /// snapshots go before the FIFO.
    pub fn hand_next(&mut self) -> Option<Publication> {
        if !self.connected || self.in_flight() >= self.window {
            return None;
        }
        while let Some(topic) = self.dirty.pop_front() {
            self.dirty_set.remove(&topic);
            if let Some(payload) = self.retained.get(&topic) {
                let publication = Publication {
                    topic: topic.clone(),
                    payload: payload.clone(),
                    retain: true,
                };
                self.handed.push_back(Tag::State(topic));
                return Some(publication);
            }
        }
        let entry = self.fifo.get(self.unsent)?;
        self.unsent += 1;
        self.handed.push_back(Tag::Buffered(entry.seq));
        Some(entry.publication.clone())
    }

    /// The client could not take the message [`hand_next`](Self::hand_next) returned last: it stays due.
    pub fn unhand_last(&mut self) {
        match self.handed.pop_back() {
            Some(Tag::Buffered(_)) => self.unsent = self.unsent.saturating_sub(1),
            Some(Tag::State(topic)) => self.mark_dirty(&topic, true),
            None => {}
        }
    }

    /// The oldest handed message went on the wire with this packet id. False if nothing was
    /// handed (a report the outbox cannot place).
    pub fn sent(&mut self, packet_id: u16) -> bool {
        match self.handed.pop_front() {
            Some(tag) => {
                self.awaiting.insert(packet_id, tag);
                true
            }
            None => false,
        }
    }

    /// The broker acknowledged a packet id. True if it was a message of ours (a FIFO entry
    /// that was not dropped meanwhile, or a snapshot); the FIFO entry is then done.
    pub fn acked(&mut self, packet_id: u16) -> bool {
        match self.awaiting.remove(&packet_id) {
            Some(Tag::State(_)) => true,
            Some(Tag::Buffered(seq)) => {
                // Sequence numbers increase along the FIFO; acks mostly come in order, so the
                // entry is usually at the front.
                match self.fifo.binary_search_by_key(&seq, |e| e.seq) {
                    Ok(index) => {
                        self.fifo.remove(index);
                        if index < self.unsent {
                            self.unsent -= 1;
                        }
                        true
                    }
                    Err(_) => false,
                }
            }
            None => false,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Handed to the client and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.handed.len() + self.awaiting.len()
    }

    /// Non-retained messages not yet acknowledged (including those in flight).
    pub fn buffered(&self) -> usize {
        self.fifo.len()
    }

    /// Non-retained messages dropped because the FIFO was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Nothing left to send and nothing waiting for an acknowledgement.
    pub fn is_flushed(&self) -> bool {
        self.fifo.is_empty() && self.dirty.is_empty() && self.in_flight() == 0
    }

    /// Distinct retained topics known.
    pub fn retained_topics(&self) -> usize {
        self.retained.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u32) -> Publication {
        Publication {
            topic: "p/s/chargers/CP1/meter".into(),
            payload: n.to_string().into_bytes(),
            retain: false,
        }
    }

    fn state(topic: &str, payload: &str) -> Publication {
        Publication {
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
            retain: true,
        }
    }

    fn online() -> Publication {
        state("p/s/status", "online")
    }

    fn text(p: &Publication) -> String {
        String::from_utf8_lossy(&p.payload).into_owned()
    }

    /// Hands everything the window allows, puts it on the wire with packet ids from `pkid`,
    /// and returns the payloads.
    fn send_all(outbox: &mut Outbox, pkid: &mut u16) -> Vec<(u16, String)> {
        let mut out = Vec::new();
        while let Some(p) = outbox.hand_next() {
            *pkid += 1;
            assert!(outbox.sent(*pkid));
            out.push((*pkid, text(&p)));
        }
        out
    }

    #[test]
    fn nothing_is_handed_over_while_disconnected() {
        let mut outbox = Outbox::new(10, 4);
        outbox.push(msg(1));
        outbox.push(state("p/s/site", "{}"));
        assert_eq!(outbox.hand_next(), None);
        assert_eq!(outbox.buffered(), 1);
    }

    #[test]
    fn after_connack_status_then_snapshots_then_the_fifo_in_order() {
        let mut outbox = Outbox::new(10, 100);
        outbox.push(msg(1));
        outbox.push(state("p/s/site", "site"));
        outbox.push(msg(2));
        outbox.push(state("p/s/meters/grid", "grid"));
        outbox.connected(online());
        let mut pkid = 0;
        let sent: Vec<String> = send_all(&mut outbox, &mut pkid)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(sent, ["online", "grid", "site", "1", "2"]);
    }

    #[test]
    fn only_the_newest_snapshot_of_a_topic_is_sent() {
        let mut outbox = Outbox::new(10, 100);
        outbox.connected(online());
        let mut pkid = 0;
        send_all(&mut outbox, &mut pkid);
        outbox.push(state("p/s/site", "a"));
        outbox.push(state("p/s/site", "b"));
        let sent = send_all(&mut outbox, &mut pkid);
        assert_eq!(sent, [(2, "b".to_string())]);
        assert_eq!(outbox.retained_topics(), 2);
    }

    #[test]
    fn a_full_fifo_drops_the_oldest_and_counts() {
        let mut outbox = Outbox::new(3, 100);
        for n in 1..=3 {
            assert_eq!(outbox.push(msg(n)), Pushed::Queued);
        }
        assert_eq!(outbox.push(msg(4)), Pushed::QueuedDroppingOldest);
        assert_eq!(outbox.push(msg(5)), Pushed::QueuedDroppingOldest);
        assert_eq!(outbox.dropped(), 2);
        assert_eq!(outbox.buffered(), 3);
        outbox.connected(online());
        let mut pkid = 0;
        let sent: Vec<String> = send_all(&mut outbox, &mut pkid)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(sent, ["online", "3", "4", "5"]);
    }

    #[test]
    fn snapshots_never_take_fifo_room() {
        let mut outbox = Outbox::new(1, 100);
        outbox.push(msg(1));
        for n in 0..50 {
            outbox.push(state(&format!("p/s/chargers/CP{n}/state"), "{}"));
        }
        assert_eq!(outbox.dropped(), 0);
        assert_eq!(outbox.buffered(), 1);
    }

    #[test]
    fn the_window_limits_what_is_handed_over_until_acks_come() {
        let mut outbox = Outbox::new(100, 2);
        outbox.connected(online());
        for n in 1..=5 {
            outbox.push(msg(n));
        }
        let mut pkid = 0;
        assert_eq!(
            send_all(&mut outbox, &mut pkid),
            [(1, "online".to_string()), (2, "1".to_string())]
        );
        assert!(outbox.acked(1));
        assert_eq!(send_all(&mut outbox, &mut pkid), [(3, "2".to_string())]);
        assert!(outbox.acked(2));
        assert!(outbox.acked(3));
        assert_eq!(outbox.buffered(), 3);
    }

    #[test]
    fn acked_messages_leave_the_fifo_even_out_of_order() {
        let mut outbox = Outbox::new(100, 100);
        outbox.connected(online());
        for n in 1..=3 {
            outbox.push(msg(n));
        }
        let mut pkid = 0;
        send_all(&mut outbox, &mut pkid);
        assert!(outbox.acked(3)); // "2"
        assert!(outbox.acked(1)); // online
        assert_eq!(outbox.buffered(), 2);
        assert!(outbox.acked(2));
        assert!(outbox.acked(4));
        assert!(outbox.is_flushed());
        assert!(!outbox.acked(4), "a second ack is not ours");
    }

    #[test]
    fn unacknowledged_messages_are_resent_in_order_after_a_reconnection() {
        let mut outbox = Outbox::new(100, 100);
        outbox.connected(online());
        for n in 1..=4 {
            outbox.push(msg(n));
        }
        let mut pkid = 0;
        send_all(&mut outbox, &mut pkid); // online, 1, 2, 3, 4 as 1..=5
        assert!(outbox.acked(1));
        assert!(outbox.acked(2)); // "1" done
        outbox.disconnected();
        outbox.push(msg(5));
        assert_eq!(outbox.hand_next(), None);
        outbox.connected(online());
        let sent: Vec<String> = send_all(&mut outbox, &mut pkid)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(sent, ["online", "2", "3", "4", "5"]);
    }

    #[test]
    fn an_ack_from_the_previous_connection_is_ignored() {
        let mut outbox = Outbox::new(100, 100);
        outbox.connected(online());
        outbox.push(msg(1));
        let mut pkid = 0;
        send_all(&mut outbox, &mut pkid);
        outbox.disconnected();
        assert!(!outbox.acked(2));
        assert_eq!(outbox.buffered(), 1);
    }

    #[test]
    fn dropping_a_message_in_flight_keeps_the_rest_in_order() {
        let mut outbox = Outbox::new(2, 100);
        outbox.connected(online());
        outbox.push(msg(1));
        outbox.push(msg(2));
        let mut pkid = 0;
        send_all(&mut outbox, &mut pkid); // online=1, "1"=2, "2"=3
        outbox.push(msg(3)); // drops "1", which is in flight
        assert!(!outbox.acked(2), "the dropped message's ack is not counted");
        assert_eq!(send_all(&mut outbox, &mut pkid), [(4, "3".to_string())]);
        assert!(outbox.acked(3));
        assert!(outbox.acked(4));
        assert_eq!(outbox.buffered(), 0);
    }

    #[test]
    fn a_message_the_client_refused_is_handed_again() {
        let mut outbox = Outbox::new(10, 10);
        outbox.connected(online());
        outbox.push(msg(1));
        let first = outbox.hand_next().expect("status");
        outbox.unhand_last();
        assert_eq!(outbox.hand_next(), Some(first));
        let one = outbox.hand_next().expect("message");
        outbox.unhand_last();
        assert_eq!(outbox.hand_next(), Some(one));
        assert_eq!(outbox.in_flight(), 2);
    }

    #[test]
    fn a_snapshot_changed_while_in_flight_is_sent_again() {
        let mut outbox = Outbox::new(10, 10);
        outbox.connected(online());
        let mut pkid = 0;
        send_all(&mut outbox, &mut pkid);
        outbox.push(state("p/s/site", "a"));
        send_all(&mut outbox, &mut pkid);
        outbox.push(state("p/s/site", "b"));
        assert_eq!(send_all(&mut outbox, &mut pkid), [(3, "b".to_string())]);
    }
}
