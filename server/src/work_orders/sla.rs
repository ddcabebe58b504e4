//! SLA policy: first-response and resolution deadlines from priority x customer tier.
//!
//! Pure: no I/O, times passed in. Deadlines are calendar time (24/7) measured from the
//! work order's creation; working hours and time zones of onsite technicians belong to
//! dispatch. A priority change recomputes both deadlines from the original creation time,
//! so escalating a P3 to P1 makes it due sooner, never later than the P1 policy allows.

use serde::{Deserialize, Serialize};

use super::model::{Priority, Tier};
use crate::UnixMillis;

/// Target minutes for one (tier, priority) cell.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SlaTarget {
    pub first_response_minutes: u32,
    pub resolution_minutes: u32,
}

const fn t(first_response_minutes: u32, resolution_minutes: u32) -> SlaTarget {
    SlaTarget { first_response_minutes, resolution_minutes }
}

/// The targets of one service tier, per priority.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TierTargets {
    #[serde(alias = "P1")]
    pub p1: SlaTarget,
    #[serde(alias = "P2")]
    pub p2: SlaTarget,
    #[serde(alias = "P3")]
    pub p3: SlaTarget,
    #[serde(alias = "P4")]
    pub p4: SlaTarget,
}

impl TierTargets {
    fn get(&self, p: Priority) -> SlaTarget {
        match p {
            Priority::P1 => self.p1,
            Priority::P2 => self.p2,
            Priority::P3 => self.p3,
            Priority::P4 => self.p4,
        }
    }
}

/// The configurable policy (`[sla.<tier>.<priority>]` in the config file).
///
/// Defaults follow the field's norms: urgent faults answered within 2 hours and resolved
/// within 24 for standard customers, strategic customers faster.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SlaPolicy {
    pub strategic: TierTargets,
    pub key: TierTargets,
    pub standard: TierTargets,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        Self {
            strategic: TierTargets { p1: t(30, 8 * 60), p2: t(60, 24 * 60), p3: t(4 * 60, 48 * 60), p4: t(8 * 60, 5 * 24 * 60) },
            key: TierTargets { p1: t(60, 12 * 60), p2: t(2 * 60, 24 * 60), p3: t(8 * 60, 72 * 60), p4: t(24 * 60, 7 * 24 * 60) },
            standard: TierTargets { p1: t(2 * 60, 24 * 60), p2: t(4 * 60, 48 * 60), p3: t(24 * 60, 5 * 24 * 60), p4: t(48 * 60, 10 * 24 * 60) },
        }
    }
}

/// Deadlines computed for one work order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    pub first_response_due: UnixMillis,
    pub resolution_due: UnixMillis,
}

impl SlaPolicy {
    pub fn target(&self, tier: Tier, priority: Priority) -> SlaTarget {
        match tier {
            Tier::Strategic => self.strategic.get(priority),
            Tier::Key => self.key.get(priority),
            Tier::Standard => self.standard.get(priority),
        }
    }

    pub fn deadlines(&self, tier: Tier, priority: Priority, created_at: UnixMillis) -> Deadlines {
        let target = self.target(tier, priority);
        Deadlines {
            first_response_due: created_at + i64::from(target.first_response_minutes) * 60_000,
            resolution_due: created_at + i64::from(target.resolution_minutes) * 60_000,
        }
    }

    /// Checks every cell; the error carries the key path below `sla.`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (tier_name, tier) in [("strategic", &self.strategic), ("key", &self.key), ("standard", &self.standard)] {
            for &p in Priority::ALL {
                let cell = tier.get(p);
                let key = format!("{tier_name}.{}", p.as_str().to_ascii_lowercase());
                if cell.first_response_minutes == 0 || cell.resolution_minutes == 0 {
                    return Err((key, "minutes must be positive".into()));
                }
                if cell.first_response_minutes > cell.resolution_minutes {
                    return Err((key, "first response cannot be due after resolution".into()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategic_customers_are_answered_sooner_than_standard() {
        let p = SlaPolicy::default();
        for &pr in Priority::ALL {
            assert!(p.target(Tier::Strategic, pr).first_response_minutes <= p.target(Tier::Standard, pr).first_response_minutes);
        }
    }

    #[test]
    fn deadlines_add_minutes_to_creation() {
        let p = SlaPolicy::default();
        let d = p.deadlines(Tier::Standard, Priority::P1, 1_000);
        assert_eq!(d.first_response_due, 1_000 + 120 * 60_000);
        assert_eq!(d.resolution_due, 1_000 + 24 * 3_600_000);
    }

    #[test]
    fn urgent_standard_faults_follow_the_field_norm() {
        let p = SlaPolicy::default();
        let t = p.target(Tier::Standard, Priority::P1);
        assert!(t.first_response_minutes <= 120 && t.resolution_minutes <= 24 * 60);
    }
}
