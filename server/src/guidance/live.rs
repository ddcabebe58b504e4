//! Guidance inside a live session: the step cards of the procedure the expert pushed and
//! the expert's annotations on the customer's video. Pure state (no I/O, no clocks):
//! the signaling hub owns one [`RoomGuidance`] per running session, feeds it commands
//! and sends what comes out to the participants and the work order's event log.
//!
//! Step cards: one step at a time. The customer answers `done` (the next card follows
//! automatically; after the last step the procedure is finished), `failed` or
//! `cannot` (the card stays; the expert decides). The expert may go `next`, `back`,
//! `skip` or `goto` a step, or push another procedure (the running one ends as
//! `switched`). Every card shown and every answer is returned so it can be recorded.
//!
//! Annotations: shapes in normalized video coordinates (0..1 of the frame's width and
//! height), tied to the frame they were drawn on (`frame_ts`, media time in ms) and
//! optionally to a frozen frame. They are validated here (kinds, point counts, text and
//! colour formats) and kept per room so a participant who joins late sees them; the
//! laser pointer is relayed and never kept.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::procedures::{Procedure, Step};

/// The customer's answer to a step card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAnswer {
    Done,
    Failed,
    Cannot,
}

/// What the expert does with the running procedure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "index")]
pub enum StepControl {
    Next,
    Back,
    Skip,
    /// 1-based step number.
    Goto(usize),
}

/// One step card as the participants see it (both languages; the page picks one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub procedure_id: String,
    pub version: u32,
    pub title_en: String,
    pub title_zh: String,
    /// 1-based.
    pub index: usize,
    pub total: usize,
    pub step: Step,
}

/// What a guidance command produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Show this card (and record `step_shown` with `via`).
    Show { card: Card, via: &'static str },
    /// Record the customer's answer (and tell the experts).
    Answered { procedure_id: String, version: u32, index: usize, answer: StepAnswer, note: Option<String> },
    /// The procedure ended (`completed`, `switched`, `session_ended`).
    Finished { procedure_id: String, version: u32, outcome: &'static str, steps_done: usize, total: usize },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuidanceError {
    #[error("no procedure is running in this session")]
    NoProcedure,
    #[error("that answer is for step {got}, but step {current} is shown")]
    StaleAnswer { got: usize, current: usize },
    #[error("that answer is for another procedure")]
    OtherProcedure,
    #[error("there is no step {0}")]
    NoSuchStep(usize),
    #[error("{0}")]
    BadShape(String),
    #[error("too many annotations in this session (at most {0}); clear some first")]
    TooManyShapes(usize),
    #[error("no annotation `{0}`")]
    NoSuchShape(String),
}

struct Run {
    procedure: Arc<Procedure>,
    /// 0-based index of the card shown.
    index: usize,
    answers: Vec<Option<StepAnswer>>,
}

impl Run {
    fn card(&self) -> Card {
        let p = &self.procedure;
        Card {
            procedure_id: p.id.clone(),
            version: p.version,
            title_en: p.title_en.clone(),
            title_zh: p.title_zh.clone(),
            index: self.index + 1,
            total: p.steps.len(),
            step: p.steps[self.index].clone(),
        }
    }

    fn finished(&self, outcome: &'static str) -> Output {
        Output::Finished {
            procedure_id: self.procedure.id.clone(),
            version: self.procedure.version,
            outcome,
            steps_done: self.answers.iter().filter(|a| **a == Some(StepAnswer::Done)).count(),
            total: self.procedure.steps.len(),
        }
    }
}

/// Most annotations kept per session.
pub const MAX_SHAPES: usize = 100;
/// Most points in one shape (freehand strokes are simplified by the page beforehand).
pub const MAX_POINTS: usize = 512;

/// An annotation shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    /// Chosen by the drawing client (unique per session), e.g. `a1`.
    pub id: String,
    /// arrow (2 points: tail, head), circle (2: centre, a point on the rim), rect (2:
    /// corners), freehand (2..=512), text (1: anchor point, with `text`), laser (1).
    pub kind: String,
    /// Normalized [x, y] in 0..=1.
    pub points: Vec<[f32; 2]>,
    #[serde(default)]
    pub text: Option<String>,
    /// `#rrggbb`.
    #[serde(default)]
    pub color: Option<String>,
    /// Media time of the frame it was drawn on, in ms (the expert's video element).
    #[serde(default)]
    pub frame_ts: Option<f64>,
    /// Drawn on a frozen frame (not the live video): not anchored to the moving scene.
    #[serde(default)]
    pub frozen: bool,
    /// When the expert's page sent it (its clock, ms): lets the receiving page measure
    /// the delivery latency on a shared clock in tests.
    #[serde(default)]
    pub sent_at: Option<f64>,
}

impl Shape {
    pub fn validate(&self) -> Result<(), GuidanceError> {
        let bad = |m: String| Err(GuidanceError::BadShape(m));
        if self.id.is_empty() || self.id.len() > 64 || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return bad("id: 1-64 letters, digits, '-' or '_'".into());
        }
        let n = self.points.len();
        let ok = match self.kind.as_str() {
            "arrow" | "circle" | "rect" => n == 2,
            "freehand" => (2..=MAX_POINTS).contains(&n),
            "text" | "laser" => n == 1,
            other => return bad(format!("kind `{other}` is not one of arrow, circle, rect, freehand, text, laser")),
        };
        if !ok {
            return bad(format!("a {} takes {} points, not {n}", self.kind, match self.kind.as_str() { "freehand" => "2-512", "text" | "laser" => "1", _ => "2" }));
        }
        if self.points.iter().flatten().any(|v| !v.is_finite() || !(0.0..=1.0).contains(v)) {
            return bad("points are normalized: every coordinate in 0..=1".into());
        }
        match (&self.kind[..], &self.text) {
            ("text", None) => return bad("a text annotation needs `text`".into()),
            (_, Some(t)) if t.chars().count() > 200 || t.trim().is_empty() => return bad("text: 1-200 characters".into()),
            _ => {}
        }
        if let Some(c) = &self.color {
            if !(c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|h| h.is_ascii_hexdigit())) {
                return bad("color is #rrggbb".into());
            }
        }
        if self.frame_ts.is_some_and(|t| !t.is_finite() || t < 0.0) || self.sent_at.is_some_and(|t| !t.is_finite()) {
            return bad("frame_ts and sent_at are finite milliseconds".into());
        }
        Ok(())
    }
}

/// The guidance state of one session.
#[derive(Default)]
pub struct RoomGuidance {
    run: Option<Run>,
    shapes: Vec<Shape>,
}

impl RoomGuidance {
    /// The card shown now, if a procedure runs.
    pub fn current(&self) -> Option<Card> {
        self.run.as_ref().map(Run::card)
    }

    /// The kept annotations, oldest first.
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    /// The expert pushes a procedure: the running one (if any) ends as `switched`, the
    /// first card of the new one is shown.
    pub fn push(&mut self, procedure: Arc<Procedure>) -> Result<Vec<Output>, GuidanceError> {
        if procedure.steps.is_empty() {
            return Err(GuidanceError::NoSuchStep(1));
        }
        let mut out = Vec::new();
        if let Some(old) = self.run.take() {
            out.push(old.finished("switched"));
        }
        let run = Run { answers: vec![None; procedure.steps.len()], procedure, index: 0 };
        out.push(Output::Show { card: run.card(), via: "push" });
        self.run = Some(run);
        Ok(out)
    }

    /// The customer answers the card `index` (1-based) of `procedure_id`.
    pub fn answer(&mut self, procedure_id: &str, index: usize, answer: StepAnswer, note: Option<String>) -> Result<Vec<Output>, GuidanceError> {
        let run = self.run.as_mut().ok_or(GuidanceError::NoProcedure)?;
        if run.procedure.id != procedure_id {
            return Err(GuidanceError::OtherProcedure);
        }
        if index != run.index + 1 {
            return Err(GuidanceError::StaleAnswer { got: index, current: run.index + 1 });
        }
        run.answers[run.index] = Some(answer);
        let mut out = vec![Output::Answered { procedure_id: procedure_id.into(), version: run.procedure.version, index, answer, note }];
        if answer == StepAnswer::Done {
            if run.index + 1 < run.procedure.steps.len() {
                run.index += 1;
                out.push(Output::Show { card: run.card(), via: "auto" });
            } else {
                let done = self.run.take().expect("checked above");
                out.push(done.finished("completed"));
            }
        }
        Ok(out)
    }

    /// The expert moves through the procedure.
    pub fn control(&mut self, c: StepControl) -> Result<Vec<Output>, GuidanceError> {
        let run = self.run.as_mut().ok_or(GuidanceError::NoProcedure)?;
        let total = run.procedure.steps.len();
        let (target, via) = match c {
            StepControl::Next => (run.index + 1, "next"),
            StepControl::Skip => (run.index + 1, "skip"),
            StepControl::Back => (run.index.saturating_sub(1), "back"),
            StepControl::Goto(n) if (1..=total).contains(&n) => (n - 1, "goto"),
            StepControl::Goto(n) => return Err(GuidanceError::NoSuchStep(n)),
        };
        if target >= total {
            // Past the last step: the procedure ends.
            let done = self.run.take().expect("checked above");
            return Ok(vec![done.finished("completed")]);
        }
        run.index = target;
        Ok(vec![Output::Show { card: run.card(), via }])
    }

    /// The session ended with a procedure still running.
    pub fn end(&mut self) -> Option<Output> {
        self.run.take().map(|r| r.finished("session_ended"))
    }

    /// Adds or replaces (same id) an annotation; the laser pointer is not kept.
    pub fn annotate(&mut self, shape: &Shape) -> Result<(), GuidanceError> {
        shape.validate()?;
        if shape.kind == "laser" {
            return Ok(());
        }
        if let Some(s) = self.shapes.iter_mut().find(|s| s.id == shape.id) {
            *s = shape.clone();
            return Ok(());
        }
        if self.shapes.len() >= MAX_SHAPES {
            return Err(GuidanceError::TooManyShapes(MAX_SHAPES));
        }
        self.shapes.push(shape.clone());
        Ok(())
    }

    /// Undo: removes one annotation.
    pub fn remove(&mut self, id: &str) -> Result<(), GuidanceError> {
        let before = self.shapes.len();
        self.shapes.retain(|s| s.id != id);
        if self.shapes.len() == before {
            return Err(GuidanceError::NoSuchShape(id.into()));
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.shapes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guidance::procedures::{SkillLevel, Step};

    fn step(n: usize) -> Step {
        Step {
            instruction_en: format!("Step {n}"),
            instruction_zh: format!("第{n}步"),
            image: None,
            tools: vec![],
            parts: vec![],
            safety: None,
            expected_minutes: 1,
            skill_level: SkillLevel::Customer,
            check_en: "ok".into(),
            check_zh: "好".into(),
        }
    }

    fn procedure(id: &str, steps: usize) -> Arc<Procedure> {
        Arc::new(Procedure {
            id: id.into(),
            version: 3,
            fault_ids: vec!["motor.carbon_brush_wear".into()],
            product_lines: vec!["DRL-18V".into()],
            title_en: "T".into(),
            title_zh: "标题".into(),
            summary_en: "S".into(),
            summary_zh: "摘要".into(),
            symptoms_en: "x".into(),
            symptoms_zh: "症状".into(),
            remote_ok: true,
            skill_level: SkillLevel::Customer,
            steps: (1..=steps).map(step).collect(),
        })
    }

    fn shown(o: &[Output]) -> Vec<(usize, &'static str)> {
        o.iter().filter_map(|o| if let Output::Show { card, via } = o { Some((card.index, *via)) } else { None }).collect()
    }

    #[test]
    fn done_advances_failed_stays_and_the_last_done_completes() {
        let mut g = RoomGuidance::default();
        assert_eq!(shown(&g.push(procedure("proc.a", 3)).unwrap()), [(1, "push")]);
        assert_eq!(shown(&g.answer("proc.a", 1, StepAnswer::Done, None).unwrap()), [(2, "auto")]);
        let o = g.answer("proc.a", 2, StepAnswer::Failed, Some("brush stuck".into())).unwrap();
        assert!(matches!(&o[..], [Output::Answered { index: 2, answer: StepAnswer::Failed, .. }]));
        assert_eq!(g.current().unwrap().index, 2);
        // An answer to a card no longer shown is refused.
        assert_eq!(g.answer("proc.a", 1, StepAnswer::Done, None), Err(GuidanceError::StaleAnswer { got: 1, current: 2 }));
        g.answer("proc.a", 2, StepAnswer::Done, None).unwrap();
        let o = g.answer("proc.a", 3, StepAnswer::Done, None).unwrap();
        assert!(matches!(o.last(), Some(Output::Finished { outcome: "completed", steps_done: 3, total: 3, .. })), "{o:?}");
        assert!(g.current().is_none());
        assert_eq!(g.answer("proc.a", 3, StepAnswer::Done, None), Err(GuidanceError::NoProcedure));
    }

    #[test]
    fn the_expert_skips_goes_back_jumps_and_switches() {
        let mut g = RoomGuidance::default();
        g.push(procedure("proc.a", 4)).unwrap();
        assert_eq!(shown(&g.control(StepControl::Skip).unwrap()), [(2, "skip")]);
        assert_eq!(shown(&g.control(StepControl::Back).unwrap()), [(1, "back")]);
        assert_eq!(shown(&g.control(StepControl::Back).unwrap()), [(1, "back")], "back from the first stays");
        assert_eq!(shown(&g.control(StepControl::Goto(4)).unwrap()), [(4, "goto")]);
        assert_eq!(g.control(StepControl::Goto(9)), Err(GuidanceError::NoSuchStep(9)));
        let o = g.push(procedure("proc.b", 2)).unwrap();
        assert!(matches!(&o[0], Output::Finished { procedure_id, outcome: "switched", .. } if procedure_id == "proc.a"));
        assert_eq!(shown(&o), [(1, "push")]);
        assert_eq!(g.answer("proc.a", 1, StepAnswer::Done, None), Err(GuidanceError::OtherProcedure));
        assert!(matches!(g.control(StepControl::Next).unwrap()[..], [Output::Show { .. }]));
        assert!(matches!(g.control(StepControl::Next).unwrap()[..], [Output::Finished { outcome: "completed", .. }]));
        assert!(g.end().is_none());
    }

    fn shape(kind: &str, points: Vec<[f32; 2]>) -> Shape {
        Shape { id: "a1".into(), kind: kind.into(), points, text: None, color: Some("#ff3b30".into()), frame_ts: Some(1234.0), frozen: false, sent_at: None }
    }

    #[test]
    fn shapes_are_validated_kept_replaced_removed_and_cleared() {
        let mut g = RoomGuidance::default();
        g.annotate(&shape("arrow", vec![[0.1, 0.1], [0.5, 0.5]])).unwrap();
        g.annotate(&shape("arrow", vec![[0.2, 0.1], [0.5, 0.5]])).unwrap();
        assert_eq!(g.shapes().len(), 1, "same id replaces");
        let mut laser = shape("laser", vec![[0.3, 0.3]]);
        laser.id = "l".into();
        g.annotate(&laser).unwrap();
        assert_eq!(g.shapes().len(), 1, "the laser pointer is not kept");
        for bad in [
            shape("arrow", vec![[0.1, 0.1]]),
            shape("arrow", vec![[0.1, 0.1], [1.5, 0.5]]),
            shape("arrow", vec![[f32::NAN, 0.1], [0.5, 0.5]]),
            shape("hexagon", vec![[0.1, 0.1], [0.5, 0.5]]),
            shape("text", vec![[0.1, 0.1]]),
            Shape { color: Some("red".into()), ..shape("arrow", vec![[0.1, 0.1], [0.5, 0.5]]) },
            Shape { id: "<script>".into(), ..shape("arrow", vec![[0.1, 0.1], [0.5, 0.5]]) },
            shape("freehand", vec![[0.5, 0.5]; MAX_POINTS + 1]),
        ] {
            assert!(matches!(g.annotate(&bad), Err(GuidanceError::BadShape(_))), "{bad:?}");
        }
        for i in 1..MAX_SHAPES {
            g.annotate(&Shape { id: format!("s{i}"), ..shape("circle", vec![[0.5, 0.5], [0.6, 0.5]]) }).unwrap();
        }
        assert_eq!(g.annotate(&Shape { id: "one_more".into(), ..shape("rect", vec![[0.1, 0.1], [0.2, 0.2]]) }), Err(GuidanceError::TooManyShapes(MAX_SHAPES)));
        g.remove("a1").unwrap();
        assert_eq!(g.remove("a1"), Err(GuidanceError::NoSuchShape("a1".into())));
        g.clear();
        assert!(g.shapes().is_empty());
    }
}
