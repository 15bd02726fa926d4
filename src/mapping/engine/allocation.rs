//! Sharing a site power budget among online chargers (CONTRACT §7 "Site power
//! management"): every charging connector gets at least its minimum (6 A × phases × 230 V);
//! what is left is shared in proportion to the charging connectors, capped by each charger's
//! own limit and by its demand (a charger drawing less gives headroom back); chargers with
//! nothing charging share what remains so that a car plugging in can start. When the budget
//! cannot give every charging connector its minimum, some chargers are paused (0 W), and
//! which ones rotates.

/// What one charger asks of the budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
    /// Its own ceiling: SCADA limit or `max_kw`.
    pub cap_kw: f64,
    /// Minimum power of one charging connector (6 A × phases × 230 V).
    pub connector_min_kw: f64,
    /// Connectors occupied / in a transaction.
    pub charging: u8,
    /// Measured power, when known: demand is this plus headroom.
    pub power_kw: Option<f64>,
}

/// A charger drawing less than its share is assumed to want this much more.
const DEMAND_HEADROOM_KW: f64 = 1.0;
const DEMAND_HEADROOM_RATIO: f64 = 0.2;

impl Claim {
    fn minimum(&self) -> f64 {
        (f64::from(self.charging) * self.connector_min_kw).min(self.cap_kw)
    }

    /// The most this charger can use: its cap, lowered to its demand when it draws less.
    fn ceiling(&self) -> f64 {
        let demand = self
            .power_kw
            .map(|p| p + (p * DEMAND_HEADROOM_RATIO).max(DEMAND_HEADROOM_KW));
        match demand {
            Some(demand) if self.charging > 0 => self.cap_kw.min(demand.max(self.minimum())),
            _ => self.cap_kw,
        }
    }
}

/// Shares of `budget_kw`, one per claim. `rotation` picks who is served first when not
/// every charging charger can get its minimum (advance it every 15 minutes).
pub fn allocate(budget_kw: f64, claims: &[Claim], rotation: usize) -> Vec<f64> {
    let budget = budget_kw.max(0.0);
    let mut shares = vec![0.0; claims.len()];
    let charging: Vec<usize> = (0..claims.len())
        .filter(|&i| claims[i].charging > 0)
        .collect();
    let minimum: f64 = charging.iter().map(|&i| claims[i].minimum()).sum();
    if minimum > budget {
        // Pause some: serve minimums in rotating order while they fit.
        let mut left = budget;
        for k in 0..charging.len() {
            let i = charging[(k + rotation) % charging.len()];
            let need = claims[i].minimum();
            if need <= left {
                shares[i] = need;
                left -= need;
            }
        }
        return shares;
    }
    for &i in &charging {
        shares[i] = claims[i].minimum();
    }
    let mut left = budget - minimum;
    // Weighted water-filling among charging chargers, then equal among the idle ones.
    left = fill(&mut shares, claims, &charging, left, |c| {
        f64::from(c.charging)
    });
    let idle: Vec<usize> = (0..claims.len())
        .filter(|&i| claims[i].charging == 0)
        .collect();
    fill(&mut shares, claims, &idle, left, |_| 1.0);
    shares
}

/// Distributes `left` among `members` by `weight`, none above its ceiling; returns the rest.
fn fill(
    shares: &mut [f64],
    claims: &[Claim],
    members: &[usize],
    mut left: f64,
    weight: impl Fn(&Claim) -> f64,
) -> f64 {
    let mut open: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&i| shares[i] < claims[i].ceiling())
        .collect();
    while left > 1e-9 && !open.is_empty() {
        let total_weight: f64 = open.iter().map(|&i| weight(&claims[i])).sum();
        if total_weight <= 0.0 {
            break;
        }
        let mut given = 0.0;
        for &i in &open {
            let offer = left * weight(&claims[i]) / total_weight;
            let room = claims[i].ceiling() - shares[i];
            let take = offer.min(room).max(0.0);
            shares[i] += take;
            given += take;
        }
        left -= given;
        open.retain(|&i| shares[i] + 1e-9 < claims[i].ceiling());
        if given <= 1e-9 {
            break;
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN3: f64 = 6.0 * 3.0 * 0.23; // 4.14 kW

    fn claim(cap_kw: f64, charging: u8, power_kw: Option<f64>) -> Claim {
        Claim {
            cap_kw,
            connector_min_kw: MIN3,
            charging,
            power_kw,
        }
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn no_chargers_get_nothing() {
        assert!(allocate(100.0, &[], 0).is_empty());
    }

    #[test]
    fn two_charging_chargers_split_evenly() {
        let shares = allocate(30.0, &[claim(22.0, 1, None), claim(22.0, 1, None)], 0);
        assert!(close(&shares, &[15.0, 15.0]), "{shares:?}");
    }

    #[test]
    fn a_charger_drawing_little_gives_headroom_back() {
        // Second charger draws 5 kW: its ceiling is 6 kW, the first gets the rest.
        let shares = allocate(30.0, &[claim(22.0, 1, None), claim(22.0, 1, Some(5.0))], 0);
        assert!(close(&shares, &[22.0, 6.0]), "{shares:?}");
    }

    #[test]
    fn weights_follow_the_charging_connectors() {
        let shares = allocate(30.0, &[claim(44.0, 2, None), claim(44.0, 1, None)], 0);
        assert!(close(&shares, &[20.0, 10.0]), "{shares:?}");
    }

    #[test]
    fn idle_chargers_share_what_the_charging_ones_cannot_use() {
        let shares = allocate(
            40.0,
            &[
                claim(11.0, 1, None),
                claim(22.0, 0, None),
                claim(22.0, 0, None),
            ],
            0,
        );
        assert!(close(&shares, &[11.0, 14.5, 14.5]), "{shares:?}");
    }

    #[test]
    fn a_budget_below_the_minimums_pauses_some_in_rotation() {
        let claims = [
            claim(22.0, 1, None),
            claim(22.0, 1, None),
            claim(22.0, 1, None),
        ];
        let first = allocate(9.0, &claims, 0);
        assert!(close(&first, &[MIN3, MIN3, 0.0]), "{first:?}");
        let next = allocate(9.0, &claims, 1);
        assert!(close(&next, &[0.0, MIN3, MIN3]), "{next:?}");
    }

    #[test]
    fn no_share_exceeds_its_cap_and_the_budget_is_respected() {
        let claims = [
            claim(3.0, 1, None),
            claim(7.0, 2, None),
            claim(50.0, 0, None),
        ];
        for budget in [0.0, 2.0, 5.0, 12.0, 30.0, 100.0] {
            for rotation in 0..3 {
                let shares = allocate(budget, &claims, rotation);
                let total: f64 = shares.iter().sum();
                assert!(total <= budget + 1e-6, "{budget}: {shares:?}");
                for (share, claim) in shares.iter().zip(&claims) {
                    assert!(*share <= claim.cap_kw + 1e-6, "{budget}: {shares:?}");
                }
            }
        }
    }
}
