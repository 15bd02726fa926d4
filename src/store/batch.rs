//! Coalescing of pending [`Change`]s between two flushes of the state store.
//!
//! Role: the task that owns the [`Store`](super::Store) pushes every change it is told about
//! into a [`Batch`] and, at least once a second, hands [`Batch::take`] to
//! [`Store::apply`](super::Store::apply) as one durable transaction. That meets CONTRACT §7
//! "Persistence" ("a change of counters, IOA blocks, limits or transaction ids is durable
//! within 1 s") without an fsync per meter value. Only the last value per key matters, so a
//! later change replaces an earlier one in place: last write wins, order of first appearance
//! is kept.

use std::collections::HashMap;

use super::Change;

/// What a [`Change`] overwrites; two changes with the same key coalesce.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    IoaBlock(String),
    Counter(String),
    ChargerLimit(String),
    SiteLimit,
    NextTransactionId,
}

impl Key {
    fn of(change: &Change) -> Key {
        match change {
            Change::IoaBlock { charger, .. } => Key::IoaBlock(charger.clone()),
            Change::Counter { key, .. } => Key::Counter(key.clone()),
            Change::ChargerLimit { charger, .. } => Key::ChargerLimit(charger.clone()),
            Change::SiteLimit { .. } => Key::SiteLimit,
            Change::NextTransactionId(_) => Key::NextTransactionId,
        }
    }
}

/// Changes not yet written, at most one per key (last write per key wins, order of first
/// appearance kept).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    changes: Vec<Change>,
    index: HashMap<Key, usize>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds `c`, replacing a pending change of the same key in its original position.
    pub fn push(&mut self, c: Change) {
        let key = Key::of(&c);
        match self.index.get(&key) {
            Some(&i) => self.changes[i] = c,
            None => {
                self.index.insert(key, self.changes.len());
                self.changes.push(c);
            }
        }
    }

    /// Removes and returns the pending changes, leaving the batch empty.
    pub fn take(&mut self) -> Vec<Change> {
        self.index.clear();
        std::mem::take(&mut self.changes)
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Number of pending (already coalesced) changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(key: &str, wh: u64) -> Change {
        Change::Counter {
            key: key.to_string(),
            wh,
        }
    }

    #[test]
    fn last_write_wins_first_position_kept() {
        let mut b = Batch::new();
        assert!(b.is_empty());
        b.push(counter("CP1/1/energy", 1));
        b.push(Change::NextTransactionId(5));
        b.push(counter("CP2/1/energy", 7));
        b.push(counter("CP1/1/energy", 2));
        b.push(Change::NextTransactionId(6));
        assert_eq!(b.len(), 3);
        assert_eq!(
            b.take(),
            vec![
                counter("CP1/1/energy", 2),
                Change::NextTransactionId(6),
                counter("CP2/1/energy", 7)
            ]
        );
        assert!(b.is_empty());
        assert_eq!(b.len(), 0);
        // The index is reset too: a key seen before the take starts a new position.
        b.push(counter("CP2/1/energy", 8));
        b.push(counter("CP1/1/energy", 3));
        assert_eq!(
            b.take(),
            vec![counter("CP2/1/energy", 8), counter("CP1/1/energy", 3)]
        );
    }

    #[test]
    fn same_charger_different_kinds_do_not_coalesce() {
        let mut b = Batch::new();
        b.push(Change::IoaBlock {
            charger: "CP1".into(),
            ioa_base: 1000,
        });
        b.push(Change::ChargerLimit {
            charger: "CP1".into(),
            kw: Some(11.0),
        });
        b.push(counter("CP1", 1));
        b.push(Change::SiteLimit { kw: Some(50.0) });
        b.push(Change::ChargerLimit {
            charger: "CP1".into(),
            kw: None,
        });
        b.push(Change::SiteLimit { kw: None });
        assert_eq!(b.len(), 4);
        let v = b.take();
        assert_eq!(
            v[1],
            Change::ChargerLimit {
                charger: "CP1".into(),
                kw: None
            }
        );
        assert_eq!(v[3], Change::SiteLimit { kw: None });
    }
}
