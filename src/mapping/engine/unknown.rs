//! Chargers that are not in the configuration (CONTRACT §2 `ocpp.accept_unknown`, §7):
//! at their first accepted BootNotification they get the next free block of 100 IOAs from
//! `auto_ioa_base`, skipping every IOA the configuration uses; the block is persisted, and its
//! points are announced to SCADA spontaneously.

use std::ops::Range;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{point, ChargerSettings, ChargerState, Engine, Output, Persist};
use crate::mapping::layout::{charger, charger_points, site, ChargerBlock};
use crate::station::{PointSpec, PointValue};

/// Highest IOA of a 3-octet address.
const MAX_IOA: u32 = 16_777_215;

/// How unknown chargers are taken in.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownPolicy {
    pub auto_ioa_base: u32,
    pub max_kw: f64,
    pub connectors: u8,
    /// IOA ranges the configuration uses (site, meters, configured chargers).
    pub used: Vec<Range<u32>>,
}

impl Engine {
    fn block_is_free(&self, base: u32, used: &[Range<u32>]) -> bool {
        let end = base + charger::BLOCK_SIZE;
        let overlaps = |r: &Range<u32>| base < r.end && r.start < end;
        !used.iter().any(overlaps)
            && !self.chargers.iter().any(|c| {
                let b = c.settings.block.ioa_base;
                overlaps(&(b..b + charger::BLOCK_SIZE))
            })
    }

    fn add_charger(&mut self, id: &str, ioa_base: u32, online: bool) -> Option<usize> {
        let policy = self.config.unknown.as_ref()?;
        let settings = ChargerSettings {
            block: ChargerBlock {
                id: id.to_string(),
                ioa_base,
                connectors: policy.connectors,
            },
            max_kw: policy.max_kw,
            phases: 3,
        };
        let mut state = ChargerState::new(settings);
        state.online = online;
        self.chargers.push(state);
        let index = self.chargers.len() - 1;
        self.by_id.insert(id.to_string(), index);
        Some(index)
    }

    /// The points of charger `index` for the station.
    fn new_points(&self, index: usize, announce: bool) -> Output {
        let specs: Vec<PointSpec> = charger_points(&self.chargers[index].settings.block)
            .iter()
            .map(|p| p.spec())
            .collect();
        Output::NewPoints { specs, announce }
    }

    /// A charger without a block booted: give it the next free block.
    pub(super) fn adopt(&mut self, now: DateTime<Utc>, id: &str) -> Vec<Output> {
        let Some(policy) = self.config.unknown.clone() else {
            return Vec::new();
        };
        let mut base = policy.auto_ioa_base;
        while !self.block_is_free(base, &policy.used) {
            base = match base.checked_add(charger::BLOCK_SIZE) {
                Some(next) if next + charger::BLOCK_SIZE - 1 <= MAX_IOA => next,
                _ => {
                    warn!(
                        charger = id,
                        "no free IOA block left for an unknown charger"
                    );
                    return Vec::new();
                }
            };
        }
        let Some(index) = self.add_charger(id, base, true) else {
            return Vec::new();
        };
        info!(
            charger = id,
            ioa_base = base,
            "unknown charger got an IOA block"
        );
        let mut out = vec![
            self.new_points(index, true),
            Output::Persist(Persist::IoaBlock {
                charger: id.to_string(),
                ioa_base: base,
            }),
            point(now, base + charger::ONLINE, PointValue::Single(true)),
        ];
        let count = self.chargers.iter().filter(|c| c.online).count();
        out.push(point(
            now,
            self.config.site_ioa_base + site::CHARGERS_ONLINE,
            PointValue::Float(count as f32),
        ));
        out.extend(self.reallocate(now, None));
        out
    }

    /// Blocks assigned in earlier runs: the chargers exist (offline) from start-up.
    pub(super) fn restore_blocks(
        &mut self,
        now: DateTime<Utc>,
        blocks: &std::collections::BTreeMap<String, u32>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        for (id, base) in blocks {
            if self.by_id.contains_key(id) {
                continue;
            }
            let used = self
                .config
                .unknown
                .as_ref()
                .map(|p| p.used.clone())
                .unwrap_or_default();
            if !self.block_is_free(*base, &used) {
                warn!(charger = %id, ioa_base = base, "persisted IOA block now overlaps the configuration; dropped");
                continue;
            }
            if let Some(index) = self.add_charger(id, *base, false) {
                out.push(self.new_points(index, false));
                out.push(point(
                    now,
                    base + charger::ONLINE,
                    PointValue::Single(false),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::connected_engine;
    use super::*;
    use crate::mapping::charger::ChargerEvent;
    use crate::mapping::engine::{Input, RestoredState};

    fn booted(id: &str) -> Input {
        Input::Charger(ChargerEvent::Booted {
            charger: id.into(),
            vendor: "v".into(),
            model: "m".into(),
            serial: None,
            firmware: None,
        })
    }

    fn block_of(outputs: &[Output]) -> Option<u32> {
        outputs.iter().find_map(|o| match o {
            Output::Persist(Persist::IoaBlock { ioa_base, .. }) => Some(*ioa_base),
            _ => None,
        })
    }

    #[test]
    fn an_unknown_charger_gets_the_next_free_block_at_boot() {
        let (mut engine, now) = connected_engine();
        let out = engine.handle(now, booted("NEW1"));
        // 1000 belongs to CP001: the next block is 1100.
        assert_eq!(block_of(&out), Some(1100));
        assert!(out.iter().any(|o| matches!(o, Output::NewPoints { specs, announce: true }
            if specs.iter().any(|s| s.ioa == 1100) && specs.iter().all(|s| (1100..1200).contains(&s.ioa)))));
        assert!(out.contains(&point(now, 1100, PointValue::Single(true))));
        let second = engine.handle(now, booted("NEW2"));
        assert_eq!(block_of(&second), Some(1200));
        assert!(
            engine
                .handle(now, booted("NEW1"))
                .iter()
                .all(|o| matches!(o, Output::Telemetry(_))),
            "a known charger keeps its block"
        );
    }

    #[test]
    fn persisted_blocks_come_back_offline_and_are_not_reassigned() {
        let (mut engine, now) = connected_engine();
        let state = RestoredState {
            ioa_blocks: [("OLD".to_string(), 1100)].into(),
            ..RestoredState::default()
        };
        let out = engine.restore(now, &state);
        assert!(out.iter().any(|o| matches!(
            o,
            Output::NewPoints {
                announce: false,
                ..
            }
        )));
        assert!(out.contains(&point(now, 1100, PointValue::Single(false))));
        assert_eq!(block_of(&engine.handle(now, booted("NEW"))), Some(1200));
    }
}
