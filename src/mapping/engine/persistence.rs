//! What the engine asks to be made durable (CONTRACT §1, §7 "Persistence") and how it comes
//! back after a restart: limits in force and energy counters. The engine stays pure: it
//! emits [`Persist`] outputs and takes a [`RestoredState`]; the runtime owns the store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{point, Engine, Output};
use crate::asdu::Quality;
use crate::mapping::layout::{charger, site};
use crate::station::{PointUpdate, PointValue};

/// A change to keep across restarts.
#[derive(Clone, Debug, PartialEq)]
pub enum Persist {
    SiteLimit(Option<f64>),
    ChargerLimit {
        charger: String,
        kw: Option<f64>,
    },
    /// The block given to a charger not in the configuration.
    IoaBlock {
        charger: String,
        ioa_base: u32,
    },
    /// An energy counter, keyed `"{charger}/{offset}"` (offset within its IOA block).
    Counter {
        key: String,
        wh: u64,
    },
}

/// What the store had at start-up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RestoredState {
    pub site_limit_kw: Option<f64>,
    pub charger_limits: BTreeMap<String, f64>,
    pub counters: BTreeMap<String, u64>,
    /// Blocks of chargers not in the configuration.
    pub ioa_blocks: BTreeMap<String, u32>,
}

pub(super) fn counter_key(charger: &str, offset: u32) -> String {
    format!("{charger}/{offset}")
}

impl Engine {
    /// Takes the persisted state back: the site limit is in force again; chargers' limits
    /// are re-applied when they reconnect; counters are served with NT until refreshed.
    pub fn restore(&mut self, now: DateTime<Utc>, state: &RestoredState) -> Vec<Output> {
        let mut out = self.restore_blocks(now, &state.ioa_blocks);
        if let Some(kw) = state.site_limit_kw.filter(|kw| *kw > 0.0) {
            self.site_limit_kw = Some(kw);
            out.push(point(
                now,
                self.config.site_ioa_base + site::LIMIT,
                PointValue::Float(kw as f32),
            ));
        }
        let stale = Quality {
            not_topical: true,
            ..Quality::GOOD
        };
        for index in 0..self.chargers.len() {
            let charger = &mut self.chargers[index];
            let id = charger.settings.block.id.clone();
            let base = charger.settings.block.ioa_base;
            if let Some(kw) = state.charger_limits.get(&id) {
                charger.own_limit_kw = Some(*kw);
                charger.limit_kw = Some(*kw);
                out.push(Output::Point(PointUpdate {
                    ioa: base + charger::LIMIT,
                    value: Some(PointValue::Float(*kw as f32)),
                    quality: stale,
                    time: now,
                }));
            }
            for (offset, wh) in charger.restore_counters(&id, &state.counters) {
                out.push(Output::Point(PointUpdate {
                    ioa: base + offset,
                    value: Some(PointValue::Counter(wh)),
                    quality: stale,
                    time: now,
                }));
            }
            out.extend(self.update_site_totals(now, index));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{connected_engine, points_of};
    use super::*;
    use crate::asdu::TypeId;
    use crate::mapping::engine::Input;
    use crate::station::{CommandAction, CommandRequest};

    #[test]
    fn a_site_limit_is_persisted() {
        let (mut engine, now) = connected_engine();
        let out = engine.handle(
            now,
            Input::Scada(CommandRequest {
                id: 1,
                session: 1,
                ioa: 11,
                type_id: TypeId::C_SE_NC_1,
                action: CommandAction::SetpointFloat(100.0),
                selected: true,
            }),
        );
        assert!(out.contains(&Output::Persist(Persist::SiteLimit(Some(100.0)))));
    }

    #[test]
    fn restored_counters_and_limits_are_served_not_topical() {
        let (mut engine, now) = connected_engine();
        let state = RestoredState {
            site_limit_kw: Some(50.0),
            charger_limits: [("CP001".to_string(), 11.0)].into(),
            counters: [(counter_key("CP001", 14), 12_345)].into(),
            ioa_blocks: Default::default(),
        };
        let out = engine.handle(now, Input::Start);
        assert!(!out.is_empty());
        let restored = points_of(&engine.restore(now, &state));
        let stale = Quality {
            not_topical: true,
            ..Quality::GOOD
        };
        assert_eq!(restored[&3], (Some(PointValue::Float(50.0)), Quality::GOOD));
        assert_eq!(restored[&1003], (Some(PointValue::Float(11.0)), stale));
        assert_eq!(restored[&1014], (Some(PointValue::Counter(12_345)), stale));
        assert_eq!(engine.site_limit_kw(), Some(50.0));
    }
}
