//! Carries the engine's [`Persist`] outputs and the OCPP transaction id counter to the
//! state store: changes are coalesced in a [`Batch`] and written in one durable transaction
//! at most a second later (CONTRACT §7), off the async threads, and once more at shutdown.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use tracing::warn;

use crate::mapping::{Persist, RestoredState};
use crate::store::{Batch, Change, Snapshot, Store};

pub struct Persistence {
    store: Arc<Store>,
    batch: Batch,
    transaction_ids: Arc<AtomicI32>,
    saved_transaction_id: i32,
}

impl Persistence {
    pub fn new(store: Store, transaction_ids: Arc<AtomicI32>) -> Persistence {
        let saved_transaction_id = transaction_ids.load(Ordering::Relaxed);
        Persistence {
            store: Arc::new(store),
            batch: Batch::new(),
            transaction_ids,
            saved_transaction_id,
        }
    }

    pub fn record(&mut self, change: Persist) {
        let change = match change {
            Persist::SiteLimit(kw) => Change::SiteLimit {
                kw: kw.filter(|v| v.is_finite()),
            },
            Persist::ChargerLimit { charger, kw } => Change::ChargerLimit {
                charger,
                kw: kw.filter(|v| v.is_finite()),
            },
            Persist::Counter { key, wh } => Change::Counter { key, wh },
            Persist::IoaBlock { charger, ioa_base } => Change::IoaBlock { charger, ioa_base },
        };
        self.batch.push(change);
    }

    /// Writes what accumulated since the last flush.
    pub async fn flush(&mut self) {
        let next_id = self.transaction_ids.load(Ordering::Relaxed);
        if next_id != self.saved_transaction_id {
            self.batch.push(Change::NextTransactionId(next_id));
            self.saved_transaction_id = next_id;
        }
        if self.batch.is_empty() {
            return;
        }
        let changes = self.batch.take();
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || store.apply(&changes)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(%error, "state not saved; retrying with the next changes"),
            Err(error) => warn!(%error, "state writer failed"),
        }
    }
}

/// The engine's part of a snapshot.
pub fn restored_state(snapshot: &Snapshot) -> RestoredState {
    RestoredState {
        site_limit_kw: snapshot.site_limit,
        charger_limits: snapshot.charger_limits.clone(),
        counters: snapshot.counters.clone(),
        ioa_blocks: snapshot.ioa_blocks.clone(),
    }
}
