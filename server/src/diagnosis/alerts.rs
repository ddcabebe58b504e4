//! Telemetry alerts: a gateway streams vibration recordings of an asset, one upload at a
//! time; the monitor keeps the last few verdicts per asset and raises an alert when a
//! fault (not `normal`) averages at least the threshold over the whole window. One
//! noisy recording does not open a work order; a persistent fault does.
//!
//! Pure and bounded: at most `MAX_ASSETS` assets are tracked (the least recently seen is
//! forgotten), and each keeps `window` verdicts. The caller serialises uploads of one
//! asset (see `lock`), so two concurrent uploads cannot both open a work order.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::ModelVerdict;
use crate::ids::AssetId;

pub const MAX_ASSETS: usize = 10_000;

/// An alert: the fault and its mean probability over the window.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Alert {
    pub fault_id: String,
    pub mean_probability: f32,
    pub uploads: usize,
}

struct AssetState {
    recent: VecDeque<ModelVerdict>,
    last_seen: u64,
    lock: Arc<tokio::sync::Mutex<()>>,
}

pub struct AlertMonitor {
    window: usize,
    threshold: f32,
    normal_ids: Vec<String>,
    inner: Mutex<(HashMap<AssetId, AssetState>, u64)>,
}

impl AlertMonitor {
    /// `normal_ids` are fault ids that mean "healthy" (e.g. `bearing.normal`).
    pub fn new(window: usize, threshold: f32, normal_ids: Vec<String>) -> Self {
        AlertMonitor { window: window.max(1), threshold, normal_ids, inner: Mutex::new((HashMap::new(), 0)) }
    }

    /// The per-asset lock the caller holds while it observes and acts on an upload.
    pub fn lock(&self, asset: AssetId) -> Arc<tokio::sync::Mutex<()>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, clock) = &mut *g;
        *clock += 1;
        let now = *clock;
        if !map.contains_key(&asset) && map.len() >= MAX_ASSETS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        let st = map.entry(asset).or_insert_with(|| AssetState { recent: VecDeque::new(), last_seen: now, lock: Arc::default() });
        st.last_seen = now;
        st.lock.clone()
    }

    /// Records a verdict and says whether the asset is now in alert.
    pub fn observe(&self, asset: AssetId, verdict: &ModelVerdict) -> Option<Alert> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let st = g.0.get_mut(&asset)?;
        st.recent.push_back(verdict.clone());
        while st.recent.len() > self.window {
            st.recent.pop_front();
        }
        if st.recent.len() < self.window {
            return None;
        }
        // Mean probability per fault over the window; unknown verdicts count as zero.
        let mut sums: HashMap<&str, f32> = HashMap::new();
        for v in &st.recent {
            if v.unknown {
                continue;
            }
            for h in &v.hypotheses {
                *sums.entry(h.fault_id.as_str()).or_default() += h.probability;
            }
        }
        let n = st.recent.len() as f32;
        sums.into_iter()
            .filter(|(f, _)| !self.normal_ids.iter().any(|n| n == f))
            .map(|(f, s)| (f, s / n))
            .filter(|(_, p)| *p >= self.threshold)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(f, p)| Alert { fault_id: f.to_owned(), mean_probability: p, uploads: st.recent.len() })
    }

    /// Forgets an asset's history (after its alert has opened a work order).
    pub fn reset(&self, asset: AssetId) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(st) = g.0.get_mut(&asset) {
            st.recent.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::Hypothesis;

    fn v(fault: &str, p: f32) -> ModelVerdict {
        ModelVerdict {
            model: "m".into(),
            model_version: "1".into(),
            hypotheses: vec![
                Hypothesis { fault_id: fault.into(), label: fault.into(), probability: p },
                Hypothesis { fault_id: "bearing.normal".into(), label: "normal".into(), probability: 1.0 - p },
            ],
            unknown: false,
            unknown_reason: None,
        }
    }

    #[test]
    fn one_bad_recording_does_not_alert_a_persistent_fault_does() {
        let m = AlertMonitor::new(3, 0.8, vec!["bearing.normal".into()]);
        let a = AssetId::new();
        let _l = m.lock(a);
        assert_eq!(m.observe(a, &v("bearing.outer_race", 0.99)), None);
        assert_eq!(m.observe(a, &v("bearing.normal", 0.99)), None);
        assert_eq!(m.observe(a, &v("bearing.outer_race", 0.95)), None, "mean 0.65 is below 0.8");
        assert_eq!(m.observe(a, &v("bearing.outer_race", 0.95)), None);
        let alert = m.observe(a, &v("bearing.outer_race", 0.9)).expect("alert");
        assert_eq!(alert.fault_id, "bearing.outer_race");
        assert!((alert.mean_probability - (0.95 + 0.95 + 0.9) / 3.0).abs() < 1e-6);
        // Healthy machines never alert, however sure the model is.
        let b = AssetId::new();
        let _l = m.lock(b);
        for _ in 0..5 {
            assert_eq!(m.observe(b, &v("bearing.normal", 1.0)), None);
        }
    }
}
