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
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct SlaTarget {
    pub first_response_minutes: u32,
    pub resolution_minutes: u32,
}

const fn t(first_response_minutes: u32, resolution_minutes: u32) -> SlaTarget {
    SlaTarget { first_response_minutes, resolution_minutes }
}

/// The targets of one service tier, per priority.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct TierTargets {
    pub p1: SlaTarget,
    pub p2: SlaTarget,
    pub p3: SlaTarget,
    pub p4: SlaTarget,
}

/// What a config file may say: any subset of cells and fields. Missing ones keep the
/// built-in defaults of their tier, so `[sla.key.p2] resolution_minutes = 600` alone is
/// a valid override.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyPatch {
    strategic: Option<TierPatch>,
    key: Option<TierPatch>,
    standard: Option<TierPatch>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TierPatch {
    #[serde(alias = "P1")]
    p1: Option<TargetPatch>,
    #[serde(alias = "P2")]
    p2: Option<TargetPatch>,
    #[serde(alias = "P3")]
    p3: Option<TargetPatch>,
    #[serde(alias = "P4")]
    p4: Option<TargetPatch>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TargetPatch {
    first_response_minutes: Option<u32>,
    resolution_minutes: Option<u32>,
}

impl TierTargets {
    fn patched(mut self, p: Option<TierPatch>) -> Self {
        let p = p.unwrap_or_default();
        for (cell, patch) in [(&mut self.p1, p.p1), (&mut self.p2, p.p2), (&mut self.p3, p.p3), (&mut self.p4, p.p4)] {
            let patch = patch.unwrap_or_default();
            cell.first_response_minutes = patch.first_response_minutes.unwrap_or(cell.first_response_minutes);
            cell.resolution_minutes = patch.resolution_minutes.unwrap_or(cell.resolution_minutes);
        }
        self
    }
}

impl<'de> Deserialize<'de> for SlaPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let patch = PolicyPatch::deserialize(d)?;
        let base = SlaPolicy::default();
        Ok(SlaPolicy {
            strategic: base.strategic.patched(patch.strategic),
            key: base.key.patched(patch.key),
            standard: base.standard.patched(patch.standard),
        })
    }
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
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
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
    fn a_partial_override_keeps_the_other_defaults() {
        let p: SlaPolicy = toml::from_str("[key.p2]\nresolution_minutes = 600\n").unwrap();
        assert_eq!(p.key.p2.resolution_minutes, 600);
        assert_eq!(p.key.p2.first_response_minutes, SlaPolicy::default().key.p2.first_response_minutes);
        assert_eq!(p.strategic, SlaPolicy::default().strategic);
        assert!(toml::from_str::<SlaPolicy>("[key.p5]\nresolution_minutes = 1\n").is_err());
    }

    #[test]
    fn urgent_standard_faults_follow_the_field_norm() {
        let p = SlaPolicy::default();
        let t = p.target(Tier::Standard, Priority::P1);
        assert!(t.first_response_minutes <= 120 && t.resolution_minutes <= 24 * 60);
    }
}
