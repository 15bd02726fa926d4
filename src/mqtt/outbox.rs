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
//! With a [`Spool`] the stream has two homes. While the broker is connected and keeps up, it
//! lives in memory only (at most [`MEM_MESSAGES`] messages / [`MEM_BYTES`] bytes), so the
//! normal path never writes to disk. As soon as the broker is unreachable (a connection
//! attempt failed or the connection broke), or the memory part overflows because the broker
//! does not acknowledge fast enough, the outbox switches to *spooling*: the messages in memory
//! are appended to the spool, every new message is appended too, and memory only keeps the
//! messages read back from the spool for sending (at most the in-flight window). The whole
//! stream is then on disk, in order, so a shutdown or crash loses nothing that was written. The
//! outbox returns to memory-only once every spooled message is acknowledged (the spool then
//! holds no segment). `capacity` bounds the stream in both states; at shutdown,
//! [`persist`](Outbox::persist) moves what is still in memory to the spool.
//!
//! The driver hands messages to the MQTT client only while connected and at most `window` at a
//! time. The client reports, in order, one `sent(packet_id)` per handed message when it goes on
//! the wire, then `acked(packet_id)` when the broker acknowledges it. A lost connection puts
//! every handed but unacknowledged message back in line: after the reconnection they are sent
//! again, in their original order and before newer ones. This is "at least once": a message
//! whose PUBACK was lost with the connection reaches subscribers twice.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use tracing::warn;

use super::topics::Publication;
use crate::spool::{Record, Spool};

/// Stream messages kept in memory (connected, broker keeping up) before spooling to disk.
pub const MEM_MESSAGES: usize = 2048;
/// Bytes (topic + payload) kept in memory before spooling to disk.
pub const MEM_BYTES: usize = 1024 * 1024;

fn size(publication: &Publication) -> usize {
    publication.topic.len() + publication.payload.len()
}

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
    /// A connection attempt failed or the connection broke, and none succeeded since.
    unreachable: bool,
    dropped: u64,
    /// Topic + payload bytes in `fifo`.
    mem_bytes: usize,
    spool: Option<Spool>,
    /// The stream lives in the spool; `fifo` holds what was read back from it.
    spooling: bool,
    /// The last spool write failed (warned once until one succeeds).
    spool_failing: bool,
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
            unreachable: false,
            dropped: 0,
            mem_bytes: 0,
            spool: None,
            spooling: false,
            spool_failing: false,
        }
    }

    /// An outbox that spools to disk when the broker is unreachable. Messages left in the
    /// spool by an earlier run are delivered first, in order.
    pub fn with_spool(capacity: usize, window: usize, spool: Spool) -> Self {
        let mut outbox = Self::new(capacity, window);
        outbox.next_seq = spool.next_seq();
        outbox.spooling = !spool.is_empty();
        outbox.spool = Some(spool);
        outbox
    }

    fn memory_full(&self) -> bool {
        self.fifo.len() >= MEM_MESSAGES.min(self.capacity) || self.mem_bytes >= MEM_BYTES
    }

    /// Takes a message to deliver.
    pub fn push(&mut self, publication: Publication) -> Pushed {
        if publication.retain {
            self.mark_dirty(&publication.topic, false);
            self.retained.insert(publication.topic, publication.payload);
            return Pushed::State;
        }
        if self.spool.is_some() && !self.spooling && (self.unreachable || self.memory_full()) {
            self.start_spooling();
        }
        let mut outcome = Pushed::Queued;
        if self.buffered() >= self.capacity {
            self.drop_oldest();
            outcome = Pushed::QueuedDroppingOldest;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.spooling {
            if let Some(spool) = self.spool.as_mut() {
                match spool.append(seq, &Record::from(&publication), false) {
                    Ok(()) => self.spool_failing = false,
                    Err(error) => {
                        if !self.spool_failing {
                            warn!(%error, "MQTT spool write failed; message dropped");
                        }
                        self.spool_failing = true;
                        self.dropped += 1;
                    }
                }
            }
            return outcome;
        }
        self.mem_bytes += size(&publication);
        self.fifo.push_back(Entry { seq, publication });
        outcome
    }

    /// Drops the oldest stream message (the buffer is full).
    fn drop_oldest(&mut self) {
        self.dropped += 1;
        if let Some(entry) = self.fifo.pop_front() {
            self.mem_bytes -= size(&entry.publication);
            self.unsent = self.unsent.saturating_sub(1);
            if self.spooling {
                if let Some(spool) = self.spool.as_mut() {
                    spool.done(entry.seq);
                }
            }
        } else if let Some(spool) = self.spool.as_mut() {
            if let Some((seq, _)) = spool.read_next() {
                spool.done(seq);
            }
        }
    }

    /// Moves the stream to the spool: what is in memory is appended (and stays in memory as
    /// already read, so messages in flight keep their place), new messages go to disk.
    fn start_spooling(&mut self) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        for entry in &self.fifo {
            if let Err(error) = spool.append(entry.seq, &Record::from(&entry.publication), true) {
                warn!(%error, "MQTT spool unusable; the offline buffer stays in memory");
                self.spool = None;
                return;
            }
        }
        self.spooling = true;
    }

    /// Shutdown: whatever is only in memory goes to the spool, which is fsynced. It is
    /// delivered after the next start.
    pub fn persist(&mut self) {
        if !self.spooling && !self.fifo.is_empty() {
            self.start_spooling();
        }
        if let Some(spool) = self.spool.as_mut() {
            spool.close();
        }
    }

    /// A handle to fsync (see [`Spool::sync_handle`]).
    pub fn spool_sync_handle(&mut self) -> Option<std::fs::File> {
        self.spool.as_mut().and_then(Spool::sync_handle)
    }

    /// Stream messages in the spool (not yet acknowledged) and the spool's size on disk.
    pub fn spooled(&self) -> (usize, u64) {
        match &self.spool {
            Some(spool) => (spool.len(), spool.bytes()),
            None => (0, 0),
        }
    }

    /// The broker accepted the connection (CONNACK). `first` (the `online` status) goes out
    /// first, then every retained snapshot, then the FIFO from its oldest entry.
    pub fn connected(&mut self, first: Publication) {
        self.reset();
        self.connected = true;
        self.unreachable = false;
        self.dirty.clear();
        self.dirty_set.clear();
        let topics: Vec<String> = self.retained.keys().cloned().collect();
        for topic in topics {
            self.mark_dirty(&topic, false);
        }
        self.mark_dirty(&first.topic, true);
        self.retained.insert(first.topic, first.payload);
    }

    /// The connection is gone, or a connection attempt failed: whatever was handed over and
    /// not acknowledged will be sent again. The stream moves to the spool.
    pub fn disconnected(&mut self) {
        self.reset();
        self.connected = false;
        self.unreachable = true;
        if self.spool.is_some() && !self.spooling && !self.fifo.is_empty() {
            self.start_spooling();
        }
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
        if self.unsent >= self.fifo.len() && self.spooling {
            let (seq, record) = self.spool.as_mut()?.read_next()?;
            let publication = Publication::from(record);
            self.mem_bytes += size(&publication);
            self.fifo.push_back(Entry { seq, publication });
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
                        if let Some(entry) = self.fifo.remove(index) {
                            self.mem_bytes -= size(&entry.publication);
                        }
                        if index < self.unsent {
                            self.unsent -= 1;
                        }
                        if self.spooling {
                            if let Some(spool) = self.spool.as_mut() {
                                spool.done(seq);
                                if spool.is_empty() {
                                    self.spooling = false;
                                }
                            }
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

    /// Non-retained messages not yet acknowledged (including those in flight), in memory and
    /// in the spool.
    pub fn buffered(&self) -> usize {
        match (&self.spool, self.spooling) {
            (Some(spool), true) => spool.len(),
            _ => self.fifo.len(),
        }
    }

    /// Non-retained messages dropped because the buffer was full (or could not be written to
    /// or read back from the spool), since start.
    pub fn dropped(&self) -> u64 {
        self.dropped + self.spool.as_ref().map_or(0, Spool::lost)
    }

    /// Stream messages held in memory and their topic + payload bytes.
    pub fn in_memory(&self) -> (usize, usize) {
        (self.fifo.len(), self.mem_bytes)
    }

    /// Nothing left to send and nothing waiting for an acknowledgement.
    pub fn is_flushed(&self) -> bool {
        self.buffered() == 0 && self.dirty.is_empty() && self.in_flight() == 0
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

    fn spool_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ocpp809-outbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn spooled_outbox(dir: &std::path::Path, capacity: usize, window: usize) -> Outbox {
        let (spool, _) = Spool::open(dir).expect("spool");
        Outbox::with_spool(capacity, window, spool)
    }

    fn values(sent: Vec<(u16, String)>) -> Vec<String> {
        sent.into_iter().map(|(_, p)| p).collect()
    }

    #[test]
    fn a_connected_broker_that_keeps_up_never_touches_the_disk() {
        let dir = spool_dir("memory");
        let mut outbox = spooled_outbox(&dir, 100_000, 10);
        outbox.connected(online());
        let mut pkid = 0;
        for n in 0..1000 {
            outbox.push(msg(n));
            for (id, _) in send_all(&mut outbox, &mut pkid) {
                assert!(outbox.acked(id));
            }
        }
        assert_eq!(outbox.spooled(), (0, 0));
        assert!(outbox.is_flushed());
        let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(files, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unreachable_broker_spools_everything_and_it_is_replayed_in_order() {
        let dir = spool_dir("replay");
        let mut outbox = spooled_outbox(&dir, 100_000, 8);
        outbox.push(msg(0)); // before the first attempt: memory
        assert_eq!(outbox.spooled().0, 0);
        outbox.disconnected(); // attempt failed: memory goes to disk
        for n in 1..5000 {
            outbox.push(msg(n));
        }
        assert_eq!(outbox.spooled().0, 5000);
        assert_eq!(outbox.buffered(), 5000);
        assert!(outbox.in_memory().0 <= 1, "{:?}", outbox.in_memory());
        outbox.connected(online());
        let mut pkid = 0;
        let mut got = Vec::new();
        let mut pushed_during_replay = false;
        loop {
            let sent = send_all(&mut outbox, &mut pkid);
            if sent.is_empty() {
                break;
            }
            assert!(outbox.in_memory().0 <= 8);
            for (id, payload) in sent {
                assert!(outbox.acked(id));
                got.push(payload);
            }
            // New messages during the replay queue behind the backlog.
            if got.len() >= 100 && !pushed_during_replay {
                outbox.push(msg(5000));
                pushed_during_replay = true;
            }
        }
        let expected: Vec<String> = std::iter::once("online".to_string())
            .chain((0..=5000).map(|n| n.to_string()))
            .collect();
        let first_difference = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(
            first_difference,
            None,
            "{:?}",
            first_difference.map(|i| &got[i..(i + 5).min(got.len())])
        );
        assert_eq!(got.len(), expected.len());
        assert_eq!(outbox.spooled(), (0, 0));
        assert!(outbox.is_flushed());
        // Back to memory only.
        outbox.push(msg(1));
        assert_eq!(outbox.spooled().0, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_bound_covers_memory_and_disk_and_drops_the_oldest() {
        let dir = spool_dir("bound");
        let mut outbox = spooled_outbox(&dir, 100, 8);
        for n in 0..50 {
            outbox.push(msg(n));
        }
        outbox.disconnected();
        for n in 50..130 {
            outbox.push(msg(n));
        }
        assert_eq!(outbox.buffered(), 100);
        assert_eq!(outbox.dropped(), 30);
        outbox.connected(online());
        let mut pkid = 0;
        let mut sent = values(send_all(&mut outbox, &mut pkid));
        // Two more while 7 are in flight: the oldest in flight is dropped.
        outbox.push(msg(130));
        outbox.push(msg(131));
        assert_eq!(outbox.dropped(), 32);
        assert_eq!(outbox.buffered(), 100);
        outbox.disconnected();
        outbox.connected(online());
        sent.extend(values(send_all(&mut outbox, &mut pkid)));
        assert_eq!(sent[..3], ["online", "30", "31"]);
        assert_eq!(sent[8..10], ["online", "32"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_slow_broker_overflows_memory_to_the_spool_in_order() {
        let dir = spool_dir("slow");
        let mut outbox = spooled_outbox(&dir, 100_000, 4);
        outbox.connected(online());
        let mut pkid = 0;
        let mut pending = send_all(&mut outbox, &mut pkid);
        let total = MEM_MESSAGES as u32 + 500;
        for n in 0..total {
            outbox.push(msg(n));
        }
        assert!(outbox.spooled().0 > 0);
        assert!(outbox.in_memory().0 <= MEM_MESSAGES);
        let mut got = Vec::new();
        while !pending.is_empty() {
            for (id, payload) in pending {
                assert!(outbox.acked(id));
                got.push(payload);
            }
            pending = send_all(&mut outbox, &mut pkid);
        }
        let expected: Vec<String> = std::iter::once("online".to_string())
            .chain((0..total).map(|n| n.to_string()))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(outbox.spooled(), (0, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_is_unacknowledged_at_shutdown_comes_first_after_a_restart() {
        let dir = spool_dir("restart");
        let mut outbox = spooled_outbox(&dir, 100_000, 4);
        outbox.connected(online());
        let mut pkid = 0;
        send_all(&mut outbox, &mut pkid);
        for n in 0..10 {
            outbox.push(msg(n));
        }
        let sent = send_all(&mut outbox, &mut pkid); // "0", "1", "2" (online in flight)
        assert_eq!(sent.len(), 3);
        assert!(outbox.acked(sent[0].0));
        assert!(outbox.acked(sent[1].0)); // "0" and "1" done
        outbox.disconnected();
        outbox.persist();
        drop(outbox);

        let mut outbox = spooled_outbox(&dir, 100_000, 100);
        assert_eq!(outbox.buffered(), 8);
        outbox.push(msg(10));
        outbox.connected(online());
        let got = values(send_all(&mut outbox, &mut pkid));
        let expected: Vec<String> = std::iter::once("online".to_string())
            .chain((2..=10).map(|n| n.to_string()))
            .collect();
        assert_eq!(got, expected);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
