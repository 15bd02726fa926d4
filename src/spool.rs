//! A durable FIFO of records on disk: append-only segment files in one directory, read back in
//! order, deleted segment by segment once every record in them is done. Two users: the MQTT
//! offline buffer (`{state_dir}/mqtt-spool/`, written only while the broker is unreachable or
//! too slow; a record is a publication) and the OCPP relay's outage queue
//! (`{state_dir}/upstream/{id}/queue/`, one record per segment; a record is a charger message
//! waiting for the upstream CSMS). Log lines and errors name the directory, so an operator
//! knows which one they are about.
//!
//! Plain `std::fs`, no tokio: the spool runs inside its owner's task. Each append is one small
//! `write` of one record to the page cache (no fsync), so it does not block for long; the
//! periodic fsync (at most about once a second, see [`Spool::sync_handle`]) is done by the
//! caller off the async worker (`spawn_blocking`), and a segment is fsynced once when it is
//! full and when the spool is closed.
//!
//! Segment `{first_seq:020}.seg` holds records in increasing sequence order:
//! `len: u32 LE | crc32(body): u32 LE | body`, body = `seq: u64 LE | flags: u8 | label_len:
//! u16 LE | label | payload`. At [`Spool::open`] every segment is checked record by record; at
//! the first record whose length, CRC, sequence or label is wrong (a torn write after a crash,
//! a corrupt sector) the file is truncated there with a warning, so garbage is never published.
//! Records are never rewritten: a segment is only appended to (by this process, after it
//! created it) and removed as a whole.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

/// One record: a label (the MQTT topic; the relay's record kind), the payload, and a flag
/// (MQTT retain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub label: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// Size at which a segment is closed and a new one started.
pub const SEGMENT_BYTES: u64 = 1024 * 1024;
/// Record header: length and CRC.
const HEADER: usize = 8;
/// Body bytes before the label: seq, flags, label length.
const BODY_FIXED: usize = 8 + 1 + 2;
/// Largest body accepted when reading (the mirror never publishes more than 256 KiB).
const MAX_BODY: usize = 1024 * 1024;
const EXTENSION: &str = "seg";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("spool: label of {0} bytes is too long for a record")]
    LabelTooLong(usize),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One record, encoded.
fn encode(seq: u64, entry: &Record) -> Result<Vec<u8>, SpoolError> {
    let label = entry.label.as_bytes();
    let label_len =
        u16::try_from(label.len()).map_err(|_| SpoolError::LabelTooLong(label.len()))?;
    let body_len = BODY_FIXED + label.len() + entry.payload.len();
    let mut record = Vec::with_capacity(HEADER + body_len);
    record.extend_from_slice(&(body_len as u32).to_le_bytes());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&seq.to_le_bytes());
    record.push(u8::from(entry.retain));
    record.extend_from_slice(&label_len.to_le_bytes());
    record.extend_from_slice(label);
    record.extend_from_slice(&entry.payload);
    let crc = crc32(&record[HEADER..]);
    record[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(record)
}

/// Why a record could not be read.
#[derive(Debug)]
enum Bad {
    Io(io::Error),
    /// Partial header or body: a torn write.
    Torn,
    Length(u32),
    Crc,
    Label,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Io(e) => write!(f, "read error: {e}"),
            Bad::Torn => f.write_str("incomplete record (torn write)"),
            Bad::Length(n) => write!(f, "implausible record length {n}"),
            Bad::Crc => f.write_str("CRC mismatch"),
            Bad::Label => f.write_str("malformed label"),
        }
    }
}

/// Fills `buf`; `Ok(false)` at a clean end of file (nothing read), `Torn` if only part was there.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> Result<bool, Bad> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(Bad::Torn),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Bad::Io(e)),
        }
    }
    Ok(true)
}

/// Reads one record: `(seq, entry, record bytes)`, `None` at the end of the file.
fn decode(reader: &mut impl Read) -> Result<Option<(u64, Record, u64)>, Bad> {
    let mut header = [0u8; HEADER];
    if !fill(reader, &mut header)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let body_len = len as usize;
    if !(BODY_FIXED..=MAX_BODY).contains(&body_len) {
        return Err(Bad::Length(len));
    }
    let mut body = vec![0u8; body_len];
    if !fill(reader, &mut body)? {
        return Err(Bad::Torn);
    }
    if crc32(&body) != crc {
        return Err(Bad::Crc);
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&body[..8]);
    let seq = u64::from_le_bytes(seq);
    let retain = body[8] & 1 != 0;
    let label_len = usize::from(u16::from_le_bytes([body[9], body[10]]));
    let rest = &body[BODY_FIXED..];
    if label_len > rest.len() {
        return Err(Bad::Label);
    }
    let label = std::str::from_utf8(&rest[..label_len])
        .map_err(|_| Bad::Label)?
        .to_owned();
    let payload = rest[label_len..].to_vec();
    Ok(Some((
        seq,
        Record {
            label,
            payload,
            retain,
        },
        (HEADER + body_len) as u64,
    )))
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    last_seq: u64,
    path: PathBuf,
    records: usize,
    /// Records handed out by [`Spool::read_next`] (always the first `read` of the file).
    read: usize,
    /// Offset of the first unread record.
    read_offset: u64,
    /// Records done (acknowledged or dropped).
    done: usize,
    bytes: u64,
}

/// What [`Spool::open`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub segments: usize,
    pub records: usize,
    /// Segments cut at a bad record.
    pub truncated: usize,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    segment_bytes: u64,
    /// In sequence order; the last one is the one appended to while `writer` is open.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    /// Open on the segment with this first seq.
    reader: Option<(u64, BufReader<File>)>,
    /// Records not done.
    pending: usize,
    unread: usize,
    /// Appended since the last sync.
    dirty: bool,
    /// Records that could not be read back (counted as dropped by the outbox).
    lost: u64,
    next_seq: u64,
}

impl Spool {
    /// Opens (creating) the spool directory and checks every segment, truncating a torn or
    /// corrupt tail. Records found are pending, to be read in order.
    pub fn open(dir: &Path) -> Result<(Spool, Recovered), SpoolError> {
        Self::open_with(dir, SEGMENT_BYTES)
    }

    pub fn open_with(dir: &Path, segment_bytes: u64) -> Result<(Spool, Recovered), SpoolError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            if let Some(first) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            {
                names.push((first, path));
            }
        }
        names.sort();
        let mut spool = Spool {
            dir: dir.to_owned(),
            segment_bytes: segment_bytes.max(1),
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            pending: 0,
            unread: 0,
            dirty: false,
            lost: 0,
            next_seq: 0,
        };
        let mut recovered = Recovered::default();
        for (first, path) in names {
            let (segment, cut) = spool.scan(first, &path)?;
            if cut {
                recovered.truncated += 1;
            }
            match segment {
                Some(segment) => {
                    recovered.segments += 1;
                    recovered.records += segment.records;
                    spool.pending += segment.records;
                    spool.unread += segment.records;
                    spool.next_seq = segment.last_seq + 1;
                    spool.segments.push_back(segment);
                }
                None => {
                    fs::remove_file(&path).map_err(io_error(&path))?;
                }
            }
        }
        Ok((spool, recovered))
    }

    /// Checks one segment; truncates it at the first bad record. `None` if nothing valid.
    fn scan(&self, first: u64, path: &Path) -> Result<(Option<Segment>, bool), SpoolError> {
        let file = File::open(path).map_err(io_error(path))?;
        let mut reader = BufReader::new(file);
        let mut offset = 0u64;
        let mut records = 0usize;
        let mut last_seq = None::<u64>;
        let mut bad = None;
        loop {
            match decode(&mut reader) {
                Ok(None) => break,
                Ok(Some((seq, _, len))) => {
                    let in_order = match last_seq {
                        None => seq >= first && seq >= self.next_seq,
                        Some(last) => seq > last,
                    };
                    if !in_order {
                        bad = Some(format!("sequence {seq} out of order"));
                        break;
                    }
                    last_seq = Some(seq);
                    records += 1;
                    offset += len;
                }
                Err(error) => {
                    bad = Some(error.to_string());
                    break;
                }
            }
        }
        drop(reader);
        let cut = bad.is_some();
        if let Some(reason) = bad {
            warn!(
                segment = %path.display(),
                offset,
                records,
                %reason,
                "spool segment damaged (e.g. by a crash); truncated after the last good record"
            );
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_error(path))?;
            file.set_len(offset).map_err(io_error(path))?;
            file.sync_all().map_err(io_error(path))?;
        }
        Ok((
            last_seq.map(|last_seq| Segment {
                first_seq: first,
                last_seq,
                path: path.to_owned(),
                records,
                read: 0,
                read_offset: 0,
                done: 0,
                bytes: offset,
            }),
            cut,
        ))
    }

    /// Appends a record. `seq` must be above every seq in the spool. `already_read`: the caller
    /// keeps the message in memory (it is handed out from there); only allowed when every
    /// earlier record was read.
    pub fn append(
        &mut self,
        seq: u64,
        entry: &Record,
        already_read: bool,
    ) -> Result<(), SpoolError> {
        let record = encode(seq, entry)?;
        let roll = match self.segments.back() {
            Some(last) => self.writer.is_none() || last.bytes >= self.segment_bytes,
            None => true,
        };
        if roll {
            self.roll(seq)?;
        }
        let (Some(writer), Some(segment)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Ok(()); // roll() always opens both
        };
        if let Err(source) = writer.write_all(&record) {
            // A partial record must not stay in front of later ones: cut it off and continue
            // in a new segment.
            let _ = writer.set_len(segment.bytes);
            self.writer = None;
            return Err(SpoolError::Io {
                path: segment.path.clone(),
                source,
            });
        }
        segment.records += 1;
        segment.bytes += record.len() as u64;
        segment.last_seq = seq;
        if already_read && segment.read + 1 == segment.records && self.unread == 0 {
            segment.read += 1;
            segment.read_offset = segment.bytes;
        } else {
            self.unread += 1;
        }
        self.pending += 1;
        self.dirty = true;
        self.next_seq = self.next_seq.max(seq + 1);
        Ok(())
    }

    /// Closes the current segment (fsynced) and starts `{seq}.seg`.
    fn roll(&mut self, seq: u64) -> Result<(), SpoolError> {
        self.close_writer();
        let path = self.dir.join(format!("{seq:020}.{EXTENSION}"));
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error(&path))?;
        // Make the new directory entry durable (once per segment).
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        debug!(segment = %path.display(), "spool segment started");
        self.segments.push_back(Segment {
            first_seq: seq,
            last_seq: seq,
            path,
            records: 0,
            read: 0,
            read_offset: 0,
            done: 0,
            bytes: 0,
        });
        self.writer = Some(file);
        Ok(())
    }

    fn close_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(error) = writer.sync_data() {
                warn!(%error, "spool: fsync failed");
            }
            self.dirty = false;
        }
    }

    /// The next record not yet read, in order. A record that cannot be read back (the file
    /// changed under us) loses the rest of its segment, with a warning; they count in
    /// [`lost`](Self::lost).
    pub fn read_next(&mut self) -> Option<(u64, Record)> {
        loop {
            let index = self.segments.iter().position(|s| s.read < s.records)?;
            let first = self.segments[index].first_seq;
            if self.reader.as_ref().map(|(f, _)| *f) != Some(first) {
                self.reader = None;
                let segment = &self.segments[index];
                match File::open(&segment.path).and_then(|mut f| {
                    f.seek(SeekFrom::Start(segment.read_offset))?;
                    Ok(f)
                }) {
                    Ok(file) => self.reader = Some((first, BufReader::new(file))),
                    Err(error) => {
                        self.lose_rest(index, &error.to_string());
                        continue;
                    }
                }
            }
            let result = match self.reader.as_mut() {
                Some((_, reader)) => decode(reader),
                None => continue,
            };
            match result {
                Ok(Some((seq, entry, len))) => {
                    let segment = &mut self.segments[index];
                    segment.read += 1;
                    segment.read_offset += len;
                    self.unread -= 1;
                    return Some((seq, entry));
                }
                Ok(None) => self.lose_rest(index, "unexpected end of segment"),
                Err(error) => self.lose_rest(index, &error.to_string()),
            }
        }
    }

    fn lose_rest(&mut self, index: usize, reason: &str) {
        self.reader = None;
        let Some(segment) = self.segments.get_mut(index) else {
            return;
        };
        let lost = segment.records - segment.read;
        warn!(
            segment = %segment.path.display(),
            lost,
            %reason,
            "spool record unreadable; the rest of the segment is skipped"
        );
        segment.read = segment.records;
        segment.done += lost;
        self.unread -= lost;
        self.pending -= lost;
        self.lost += lost as u64;
        self.collect(index);
    }

    /// A record handed out by [`read_next`](Self::read_next) (or appended `already_read`) is
    /// done: acknowledged or dropped. Its segment is deleted once all of its records are done.
    pub fn done(&mut self, seq: u64) {
        let index = self
            .segments
            .partition_point(|s| s.last_seq < seq)
            .min(self.segments.len());
        let Some(segment) = self.segments.get_mut(index) else {
            return;
        };
        if seq < segment.first_seq || segment.done >= segment.read {
            return;
        }
        segment.done += 1;
        self.pending -= 1;
        self.collect(index);
    }

    /// Deletes segment `index` if every record of it is done.
    fn collect(&mut self, index: usize) {
        let Some(segment) = self.segments.get(index) else {
            return;
        };
        if segment.done < segment.records {
            return;
        }
        if index + 1 == self.segments.len() && self.writer.is_some() {
            self.writer = None; // nothing in it matters any more; no fsync needed
            self.dirty = false;
        }
        if self.reader.as_ref().map(|(f, _)| *f) == Some(segment.first_seq) {
            self.reader = None;
        }
        if let Err(error) = fs::remove_file(&segment.path) {
            warn!(segment = %segment.path.display(), %error, "spool: cannot delete a finished segment");
        } else {
            debug!(segment = %segment.path.display(), "spool segment delivered; deleted");
        }
        self.segments.remove(index);
    }

    /// A handle to fsync if something was appended since the last call (at most about once a
    /// second, off the async worker: `spawn_blocking(move || file.sync_data())`).
    pub fn sync_handle(&mut self) -> Option<File> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        self.writer.as_ref().and_then(|w| w.try_clone().ok())
    }

    /// Fsyncs and closes the current segment (shutdown).
    pub fn close(&mut self) {
        self.close_writer();
        self.reader = None;
    }

    /// Records not done (read or not).
    pub fn len(&self) -> usize {
        self.pending
    }

    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Records not yet read.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// Bytes of the segment files.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Above every seq ever stored in this directory.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory, removed when dropped.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(name: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "ocpp809-spool-{name}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn msg(n: u64) -> Record {
        Record {
            label: "p/s/chargers/CP1/meter".into(),
            payload: format!("{{\"value\":{n}}}").into_bytes(),
            retain: false,
        }
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    fn read_all(spool: &mut Spool) -> Vec<u64> {
        std::iter::from_fn(|| spool.read_next())
            .map(|(seq, p)| {
                assert_eq!(p, msg(seq));
                seq
            })
            .collect()
    }

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_come_back_in_order() {
        let dir = TempDir::new("order");
        let (mut spool, recovered) = Spool::open(&dir.0).expect("open");
        assert_eq!(recovered, Recovered::default());
        for n in 0..100 {
            spool.append(n, &msg(n), false).expect("append");
        }
        assert_eq!((spool.len(), spool.unread()), (100, 100));
        assert_eq!(read_all(&mut spool), (0..100).collect::<Vec<_>>());
        assert_eq!((spool.len(), spool.unread()), (100, 0));
        let retained = Record {
            label: "t".into(),
            payload: vec![0, 255, 10],
            retain: true,
        };
        spool.append(100, &retained, false).expect("append");
        assert_eq!(spool.read_next(), Some((100, retained)));
    }

    #[test]
    fn segments_roll_over_and_are_deleted_once_every_record_is_done() {
        let dir = TempDir::new("roll");
        let (mut spool, _) = Spool::open_with(&dir.0, 300).expect("open");
        for n in 0..30 {
            spool.append(n, &msg(n), false).expect("append");
        }
        let segments = spool.segments();
        assert!(segments >= 3, "{segments} segments");
        assert_eq!(files(&dir.0).len(), segments);
        let read = read_all(&mut spool);
        assert_eq!(read, (0..30).collect::<Vec<_>>());
        // Acks out of order within the first segment: it goes only when all of it is done.
        spool.done(1);
        assert_eq!(spool.segments(), segments);
        spool.done(0);
        let first_len = 300 / (HEADER + BODY_FIXED + msg(0).label.len() + msg(0).payload.len()) + 1;
        for n in 2..first_len as u64 {
            spool.done(n);
        }
        assert_eq!(spool.segments(), segments - 1);
        for n in first_len as u64..30 {
            spool.done(n);
        }
        assert!(spool.is_empty());
        assert_eq!(spool.segments(), 0);
        assert!(files(&dir.0).is_empty());
        assert_eq!(spool.bytes(), 0);
        // Appending again starts a new segment.
        spool.append(30, &msg(30), false).expect("append");
        assert_eq!(read_all(&mut spool), [30]);
    }

    #[test]
    fn a_record_is_done_only_once_and_unknown_seqs_are_ignored() {
        let dir = TempDir::new("done");
        let (mut spool, _) = Spool::open(&dir.0).expect("open");
        for n in 0..3 {
            spool.append(n, &msg(n), false).expect("append");
        }
        spool.done(0); // not read yet: ignored
        assert_eq!(spool.len(), 3);
        read_all(&mut spool);
        spool.done(99);
        assert_eq!(spool.len(), 3);
        spool.done(0);
        assert_eq!(spool.len(), 2);
    }

    #[test]
    fn already_read_records_are_not_read_again() {
        let dir = TempDir::new("already");
        let (mut spool, _) = Spool::open(&dir.0).expect("open");
        spool.append(0, &msg(0), true).expect("append");
        spool.append(1, &msg(1), true).expect("append");
        spool.append(2, &msg(2), false).expect("append");
        assert_eq!(read_all(&mut spool), [2]);
        // After a restart everything not done is read again.
        drop(spool);
        let (mut spool, recovered) = Spool::open(&dir.0).expect("reopen");
        assert_eq!(recovered.records, 3);
        assert_eq!(read_all(&mut spool), [0, 1, 2]);
    }

    #[test]
    fn reopening_resumes_in_order_with_what_was_not_done() {
        let dir = TempDir::new("reopen");
        let (mut spool, _) = Spool::open_with(&dir.0, 400).expect("open");
        for n in 0..40 {
            spool.append(n, &msg(n), false).expect("append");
        }
        let read = read_all(&mut spool);
        // Everything up to 20 acknowledged: the first segments are gone.
        for n in read.into_iter().take(20) {
            spool.done(n);
        }
        drop(spool); // no close(): like a crash
        let (mut spool, recovered) = Spool::open_with(&dir.0, 400).expect("reopen");
        assert_eq!(recovered.truncated, 0);
        // Records of a partly done segment come again (at least once), never a gap.
        let again = read_all(&mut spool);
        assert_eq!(again.last(), Some(&39));
        assert!(again[0] <= 20, "{again:?}");
        assert!(again.windows(2).all(|w| w[1] == w[0] + 1), "{again:?}");
        assert_eq!(spool.next_seq(), 40);
        spool.append(40, &msg(40), false).expect("append");
        assert_eq!(read_all(&mut spool), [40]);
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_truncated_and_never_read() {
        for damage in ["torn", "crc", "length"] {
            let dir = TempDir::new(damage);
            let (mut spool, _) = Spool::open(&dir.0).expect("open");
            for n in 0..10 {
                spool.append(n, &msg(n), false).expect("append");
            }
            spool.close();
            let bytes_before = spool.bytes();
            drop(spool);
            let path = files(&dir.0).pop().expect("a segment");
            let mut data = fs::read(&path).expect("segment");
            let record = data.len() / 10;
            match damage {
                // A crash in the middle of the 10th record's write.
                "torn" => data.truncate(data.len() - record / 2),
                // A flipped bit in the payload of the 10th record.
                "crc" => {
                    let last = data.len() - 2;
                    data[last] ^= 0x40;
                }
                // A garbage length after the 9th record.
                _ => data[9 * record..9 * record + 4].copy_from_slice(&u32::MAX.to_le_bytes()),
            }
            fs::write(&path, &data).expect("damage");
            let (mut spool, recovered) = Spool::open(&dir.0).expect("reopen");
            assert_eq!(recovered.truncated, 1, "{damage}");
            assert_eq!(recovered.records, 9, "{damage}");
            assert_eq!(
                fs::metadata(&path).expect("segment").len(),
                bytes_before - record as u64,
                "{damage}: truncated after the last good record"
            );
            assert_eq!(read_all(&mut spool), (0..9).collect::<Vec<_>>(), "{damage}");
            // New records follow the good ones.
            spool.append(9, &msg(9), false).expect("append");
            assert_eq!(read_all(&mut spool), [9], "{damage}");
        }
    }

    #[test]
    fn a_segment_with_no_valid_record_is_removed() {
        let dir = TempDir::new("garbage");
        fs::create_dir_all(&dir.0).expect("dir");
        fs::write(dir.0.join(format!("{:020}.seg", 5)), b"\x01\x02\x03").expect("garbage");
        fs::write(dir.0.join("unrelated.txt"), b"keep").expect("other file");
        let (mut spool, recovered) = Spool::open(&dir.0).expect("open");
        assert_eq!(recovered.truncated, 1);
        assert_eq!(spool.len(), 0);
        assert_eq!(spool.read_next(), None);
        assert_eq!(files(&dir.0), [dir.0.join("unrelated.txt")]);
    }
}
