//! The durable side of a charger's relay, under `{state_dir}/upstream/{charger}/`:
//!
//! - `queue/`: the transaction messages waiting for the upstream, in the CRC-checked
//!   append-only spool shared with the MQTT buffer ([`crate::spool`]), one record per segment
//!   file so that a delivered message is deleted at once and never replayed twice after a
//!   restart. Each append is fsynced before it returns: the charger gets its local
//!   CALLRESULT only after its message is on disk.
//! - `state.json`: the 1.6 transaction id maps and the offline authorization cache (small,
//!   bounded), replaced atomically (write, fsync, rename).
//!
//! The charger id becomes a directory name hex-encoded where it holds anything but
//! `[A-Za-z0-9_-]`, so no id can escape the directory or collide with another.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::state::{Journal, Queued, RelayState};
use crate::net::run_blocking;
use crate::spool::{Record, Spool, SpoolError};

/// Marks a queue record (the spool record's label).
const RECORD_LABEL: &str = "ocpp";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("upstream queue {}: {source}", path.display())]
    Spool { path: PathBuf, source: SpoolError },
}

/// A charger's queue and state on disk.
#[derive(Debug)]
pub struct DiskJournal {
    spool: Spool,
    state_path: PathBuf,
}

/// What was on disk for a charger.
#[derive(Debug, Default)]
pub struct Recovered {
    pub queue: Vec<Queued>,
    pub state: RelayState,
    /// Records that could not be read back (damaged).
    pub unreadable: usize,
}

/// The directory of one charger.
pub fn charger_dir(state_dir: &Path, charger: &str) -> PathBuf {
    let plain = !charger.is_empty()
        && charger
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if plain {
        charger.to_owned()
    } else {
        let hex: String = charger.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x-{hex}")
    };
    state_dir.join("upstream").join(name)
}

impl DiskJournal {
    /// Opens (creating) the charger's directory and reads back the queue and the state.
    pub fn open(dir: &Path) -> Result<(DiskJournal, Recovered), JournalError> {
        let queue_dir = dir.join("queue");
        // One record per segment: delivered records are deleted one by one.
        let (mut spool, _) =
            Spool::open_with(&queue_dir, 1).map_err(|source| JournalError::Spool {
                path: queue_dir.clone(),
                source,
            })?;
        let mut recovered = Recovered::default();
        while let Some((seq, entry)) = spool.read_next() {
            match serde_json::from_slice::<Queued>(&entry.payload) {
                Ok(mut record) if entry.label == RECORD_LABEL => {
                    record.seq = seq;
                    recovered.queue.push(record);
                }
                _ => {
                    recovered.unreadable += 1;
                    spool.done(seq);
                }
            }
        }
        let state_path = dir.join("state.json");
        recovered.state = match fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                warn!(path = %state_path.display(), %error, "upstream relay state unreadable; starting empty");
                RelayState::default()
            }),
            Err(_) => RelayState::default(),
        };
        Ok((DiskJournal { spool, state_path }, recovered))
    }

    /// The next free sequence number.
    pub fn next_seq(&self) -> u64 {
        self.spool.next_seq()
    }

    pub fn close(&mut self) {
        self.spool.close();
    }
}

impl Journal for DiskJournal {
    fn append(&mut self, record: &Queued) -> Result<u64, String> {
        let payload = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let seq = self.spool.next_seq();
        let entry = Record {
            label: RECORD_LABEL.to_owned(),
            payload,
            retain: false,
        };
        let spool = &mut self.spool;
        run_blocking(|| {
            spool.append(seq, &entry, true).map_err(|e| e.to_string())?;
            if let Some(file) = spool.sync_handle() {
                file.sync_data().map_err(|e| format!("fsync: {e}"))?;
            }
            Ok(seq)
        })
    }

    fn done(&mut self, seq: u64) {
        self.spool.done(seq);
    }

    fn save_state(&mut self, state: &RelayState) {
        if let Err(error) = run_blocking(|| write_atomically(&self.state_path, state)) {
            warn!(path = %self.state_path.display(), %error, "upstream relay state not saved");
        }
    }
}

fn write_atomically(path: &Path, state: &RelayState) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(state)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_data()?;
    drop(file);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ocpp809-journal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn record(id: &str) -> Queued {
        Queued {
            seq: 0,
            id: id.into(),
            action: "MeterValues".into(),
            payload: json!({"connectorId": 1, "transactionId": 3}),
            local_tx: None,
        }
    }

    #[test]
    fn records_and_state_survive_reopening_and_done_ones_do_not_come_back() {
        let dir = temp("reopen");
        {
            let (mut j, r) = DiskJournal::open(&dir).unwrap_or_else(|e| panic!("{e}"));
            assert!(r.queue.is_empty());
            for (seq, id) in ["a", "b", "c"].iter().enumerate() {
                assert_eq!(j.append(&record(id)), Ok(seq as u64));
            }
            j.done(0);
            let mut state = RelayState::default();
            state.tx_map.insert(5, 1005);
            state.auth.insert("TAG".into(), "Blocked".into());
            j.save_state(&state);
        }
        let (j, r) = DiskJournal::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = r.queue.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(r.queue.iter().map(|q| q.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(r.state.tx_map.get(&5), Some(&1005));
        assert_eq!(r.state.auth.get("TAG").map(String::as_str), Some("Blocked"));
        assert_eq!(j.next_seq(), 3);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn odd_charger_ids_get_safe_directory_names() {
        let base = Path::new("/s");
        assert_eq!(charger_dir(base, "CP001"), Path::new("/s/upstream/CP001"));
        assert_eq!(
            charger_dir(base, "../x"),
            Path::new("/s/upstream/x-2e2e2f78")
        );
    }
}
