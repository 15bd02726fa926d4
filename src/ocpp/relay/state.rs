//! What a charger's relay keeps across restarts (issue 10: "queued durably", "keep the map
//! persisted"): the queued transaction messages ([`Queued`]) and the small state beside them
//! ([`RelayState`]), and the [`Journal`] seam through which the sans-IO relay core stores
//! them (on disk: `journal::DiskJournal`; in tests: memory).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most transaction id pairs remembered (open transactions of one charger).
const TX_MAP_MAX: usize = 1_000;

/// One transaction message waiting for the upstream (also the on-disk record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    #[serde(skip)]
    pub seq: u64,
    /// The charger's MessageId, kept for the upstream.
    pub id: String,
    pub action: String,
    /// As forwarded (sanitized or original), before transaction id mapping.
    pub payload: Value,
    /// 1.6 StartTransaction: the transaction id the charger got from ocpp809.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_tx: Option<i32>,
}

/// What survives a restart besides the queue.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RelayState {
    /// 1.6: our transaction id → the upstream's.
    #[serde(default)]
    pub tx_map: BTreeMap<i32, i32>,
    /// 1.6: the upstream's transaction id the charger uses → the session's own id.
    #[serde(default)]
    pub tx_alias: BTreeMap<i32, i32>,
    /// idTag → authorization status as the upstream last answered.
    #[serde(default)]
    pub auth: BTreeMap<String, String>,
    /// The charger's last BootNotification (as forwarded), told to every new upstream
    /// connection that has not seen one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<Value>,
}

/// Where the queue and state are kept. `append` must be durable when it returns.
pub trait Journal: Send {
    /// Stores a record; returns the sequence number it got (increasing).
    fn append(&mut self, record: &Queued) -> Result<u64, String>;
    /// The record was delivered (or dropped); it must not come back after a restart.
    fn done(&mut self, seq: u64);
    fn save_state(&mut self, state: &RelayState);
}

/// A journal that keeps nothing (tests, and chargers without upstream).
#[derive(Debug, Default)]
pub struct NoJournal {
    next_seq: u64,
}

impl Journal for NoJournal {
    fn append(&mut self, _: &Queued) -> Result<u64, String> {
        self.next_seq += 1;
        Ok(self.next_seq - 1)
    }
    fn done(&mut self, _: u64) {}
    fn save_state(&mut self, _: &RelayState) {}
}

/// Inserts into a bounded transaction id map, forgetting the lowest id when full.
pub fn insert_bounded(map: &mut BTreeMap<i32, i32>, key: i32, value: i32) {
    if map.len() >= TX_MAP_MAX && !map.contains_key(&key) {
        if let Some(first) = map.keys().next().copied() {
            map.remove(&first);
        }
    }
    map.insert(key, value);
}
