//! Fusion of image, telemetry and fault-code evidence into one ranked list.
//!
//! Each piece of evidence gives a probability per fault id. Independent evidence for the
//! same fault combines by noisy-OR (`1 - prod(1 - p)`): two sources that each say 0.6
//! make 0.84, and no amount of weak evidence exceeds what strong evidence says alone by
//! much. A verdict the model marked `unknown` is listed but does not count. A reported
//! fault code counts as evidence of its fault with `FAULT_CODE_WEIGHT`: codes are read
//! off the tool by the customer or a gateway and are usually, not always, right.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ModelVerdict;

pub const FAULT_CODE_WEIGHT: f32 = 0.7;
/// Hypotheses below this probability are not listed as evidence for a fault.
pub const MIN_LISTED: f32 = 0.05;

/// One piece of evidence for one fault.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Contribution {
    /// `photo`, `snapshot`, `telemetry` or `fault_code`.
    pub kind: String,
    /// The evidence id, or the fault code.
    pub source: String,
    /// The model that produced it, if any.
    pub model: Option<String>,
    pub probability: f32,
    /// False for an `unknown` verdict: shown, not counted.
    pub counted: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RankedFault {
    pub fault_id: String,
    pub confidence: f32,
    pub evidence: Vec<Contribution>,
}

/// A verdict with where it came from.
pub struct VerdictInput<'a> {
    pub kind: &'a str,
    pub source: String,
    pub verdict: &'a ModelVerdict,
}

/// Ranks fault ids by fused confidence, most likely first; ties by fault id.
pub fn fuse(verdicts: &[VerdictInput<'_>], fault_codes: &[(String, String)]) -> Vec<RankedFault> {
    let mut faults: BTreeMap<String, Vec<Contribution>> = BTreeMap::new();
    for v in verdicts {
        for h in &v.verdict.hypotheses {
            if h.probability < MIN_LISTED {
                continue;
            }
            faults.entry(h.fault_id.clone()).or_default().push(Contribution {
                kind: v.kind.to_owned(),
                source: v.source.clone(),
                model: Some(v.verdict.model.clone()),
                probability: h.probability,
                counted: !v.verdict.unknown,
            });
        }
    }
    for (code, fault_id) in fault_codes {
        faults.entry(fault_id.clone()).or_default().push(Contribution {
            kind: "fault_code".into(),
            source: code.clone(),
            model: None,
            probability: FAULT_CODE_WEIGHT,
            counted: true,
        });
    }
    let mut ranked: Vec<RankedFault> = faults
        .into_iter()
        .map(|(fault_id, evidence)| {
            let miss: f32 = evidence.iter().filter(|c| c.counted).map(|c| 1.0 - c.probability.clamp(0.0, 1.0)).product();
            let counted = evidence.iter().any(|c| c.counted);
            RankedFault { fault_id, confidence: if counted { 1.0 - miss } else { 0.0 }, evidence }
        })
        .collect();
    ranked.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.fault_id.cmp(&b.fault_id)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::Hypothesis;

    fn verdict(p: &[(&str, f32)], unknown: bool) -> ModelVerdict {
        ModelVerdict {
            model: "m".into(),
            model_version: "1".into(),
            hypotheses: p.iter().map(|(f, p)| Hypothesis { fault_id: (*f).into(), label: (*f).into(), probability: *p }).collect(),
            unknown,
            unknown_reason: None,
        }
    }

    #[test]
    fn agreeing_evidence_raises_confidence_and_unknown_verdicts_do_not_count() {
        let a = verdict(&[("bearing.inner_race", 0.6), ("bearing.ball", 0.4)], false);
        let b = verdict(&[("bearing.inner_race", 0.6)], false);
        let c = verdict(&[("surface.scratches", 0.99)], true);
        let inputs = [
            VerdictInput { kind: "telemetry", source: "e1".into(), verdict: &a },
            VerdictInput { kind: "telemetry", source: "e2".into(), verdict: &b },
            VerdictInput { kind: "photo", source: "e3".into(), verdict: &c },
        ];
        let r = fuse(&inputs, &[("SP-103".into(), "bearing.ball".into())]);
        assert_eq!(r[0].fault_id, "bearing.inner_race");
        assert!((r[0].confidence - 0.84).abs() < 1e-6);
        assert_eq!(r[1].fault_id, "bearing.ball");
        assert!((r[1].confidence - (1.0 - 0.6 * 0.3)).abs() < 1e-6);
        let scratches = r.iter().find(|f| f.fault_id == "surface.scratches").unwrap();
        assert_eq!(scratches.confidence, 0.0);
        assert!(!scratches.evidence[0].counted);
    }
}
