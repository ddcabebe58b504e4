//! Annotation anchoring in a live session: which annotations are anchored to the
//! customer's moving picture, the tracker ([`super::tracking::Anchor`]) of each, and
//! when a new position is worth telling the participants.
//!
//! Pure state, no I/O, no clocks (time comes in as milliseconds), in two halves:
//!
//! - [`AnchorLedger`], held by the signaling hub per session: numbers every version of
//!   every anchored shape (a shape redrawn with the same id is a new revision), drops
//!   positions computed for a revision that is no longer current, and remembers the
//!   last position of each shape for participants who join late.
//! - [`AnchorSet`], owned by the session's anchoring task (`signal::live`): one tracker
//!   per anchored shape, fed one [`Pyramid`] per tracking frame (built once, shared by
//!   every anchor of the session), producing [`Moved`] updates, rate-limited per shape
//!   by [`Throttle`].
//!
//! Which shapes are anchored: every kept shape drawn on the live video (not `frozen`:
//! a shape drawn on a frozen frame refers to that picture, not to the moving scene;
//! the laser pointer is never kept), at most [`AnchoringConfig::max_anchors`] per
//! session (later shapes stay where they were drawn). The tracked region is the
//! shape's bounding box padded by [`REGION_PAD`] of its size on each side and grown to
//! at least [`REGION_MIN`] of the frame ([`region_for`]): an arrow or a thin line alone
//! has too little texture, the object around it has plenty.
//!
//! Which frame an anchor starts on: the latest tracking frame the task has processed
//! when the shape arrives (at most a second old), else the next one. The expert drew
//! on the picture their browser showed, which lags the server's by the network delay
//! (one way, customer to server to expert, plus the expert's jitter buffer: tens of ms
//! on loopback, 100-300 ms on mobile networks), so a shape drawn while the camera
//! moves starts off by that much motion; drawn on a still picture it starts exact.
//!
//! Updates: the shape's points as drawn are mapped through the anchor's transform
//! (creation frame to current frame) on every tracking frame. A [`Moved`] is produced
//! when the state changes (first fix, lost) or a point moved more than
//! [`Throttle::min_move`] since the last one sent, at most once per tracking period.
//! A lost anchor stays lost (the page fades the shape) until the expert redraws it;
//! its tracker is dropped. A region with too little texture to track is not anchored
//! (nothing is sent; the shape stays where it was drawn).

use std::collections::HashMap;

use super::live::Shape;
use super::tracking::{Anchor, Point, Pyramid, TrackState, TrackerConfig};

/// Padding of the tracked region around a shape's bounding box, per side, as a share of
/// the box's width / height.
pub const REGION_PAD: f32 = 0.3;
/// Smallest side of the tracked region, as a share of the frame's width / height.
pub const REGION_MIN: f32 = 0.08;
/// Smallest movement of a point (normalized units, largest of x and y) worth an update:
/// 0.002 is 1.3 px of a 640 px wide picture, below what a viewer notices.
pub const MIN_MOVE: f32 = 0.002;
/// A frame older than this is not used to start an anchor on (the video stalled).
const STALE_MS: u64 = 1000;

/// Settings of the anchoring of one session.
#[derive(Clone, Debug)]
pub struct AnchoringConfig {
    /// Tracking frames per second while any shape is anchored; 0 turns anchoring off.
    pub fps: u32,
    /// Most anchored shapes per session.
    pub max_anchors: usize,
    pub tracker: TrackerConfig,
    pub throttle: Throttle,
}

impl AnchoringConfig {
    pub fn new(fps: u32, max_anchors: usize) -> Self {
        AnchoringConfig { fps, max_anchors, tracker: TrackerConfig::default(), throttle: Throttle::for_fps(fps) }
    }
}

/// Whether a shape is anchored to the moving picture.
pub fn anchorable(shape: &Shape) -> bool {
    !shape.frozen && shape.kind != "laser" && !shape.points.is_empty()
}

/// The region tracked for a shape (normalized min and max corners): its bounding box
/// (a circle's is centre +- radius) padded by [`REGION_PAD`] per side, grown around its
/// centre to at least [`REGION_MIN`], clamped to the frame.
pub fn region_for(kind: &str, points: &[[f32; 2]]) -> [Point; 2] {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY);
    let mut include = |x: f32, y: f32| {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    };
    match (kind, points) {
        ("circle", [c, rim]) => {
            let r = (rim[0] - c[0]).hypot(rim[1] - c[1]);
            include(c[0] - r, c[1] - r);
            include(c[0] + r, c[1] + r);
        }
        _ => points.iter().for_each(|p| include(p[0], p[1])),
    }
    if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
        return [Point::new(0.5 - REGION_MIN / 2.0, 0.5 - REGION_MIN / 2.0), Point::new(0.5 + REGION_MIN / 2.0, 0.5 + REGION_MIN / 2.0)];
    }
    let span = |lo: f32, hi: f32| {
        let pad = (hi - lo) * REGION_PAD;
        let (mut lo, mut hi) = (lo - pad, hi + pad);
        if hi - lo < REGION_MIN {
            let c = (lo + hi) / 2.0;
            lo = c - REGION_MIN / 2.0;
            hi = c + REGION_MIN / 2.0;
        }
        (lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0))
    };
    let ((x0, x1), (y0, y1)) = (span(x0, x1), span(y0, y1));
    [Point::new(x0, y0), Point::new(x1, y1)]
}

/// What was last sent for a shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    pub points: Vec<[f32; 2]>,
    pub state: TrackState,
    pub at_ms: u64,
}

/// Per-shape rate limit of position updates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throttle {
    /// Smallest movement of any point (normalized, largest of x and y) worth an update.
    pub min_move: f32,
    /// Smallest time between two updates of one shape that only moved (a state change
    /// is always sent).
    pub min_interval_ms: u64,
}

impl Throttle {
    /// [`MIN_MOVE`], and three quarters of the tracking period (frames arrive with
    /// jitter; a full period would drop every other one).
    pub fn for_fps(fps: u32) -> Throttle {
        Throttle { min_move: MIN_MOVE, min_interval_ms: if fps == 0 { 0 } else { 750 / u64::from(fps) } }
    }

    /// Whether `points` in `state` at `now_ms` is worth sending after `last`.
    pub fn due(&self, last: &Sent, points: &[[f32; 2]], state: TrackState, now_ms: u64) -> bool {
        if state != last.state {
            return true;
        }
        if state == TrackState::Lost {
            return false;
        }
        let moved = points.len() != last.points.len()
            || points.iter().zip(&last.points).any(|(a, b)| (a[0] - b[0]).abs().max((a[1] - b[1]).abs()) > self.min_move);
        moved && now_ms.saturating_sub(last.at_ms) >= self.min_interval_ms
    }
}

/// A command from the hub to a session's anchoring task.
#[derive(Clone, Debug, PartialEq)]
pub enum AnchorCmd {
    /// Anchor (or re-anchor, same id) a shape; `rev` is its revision in the ledger.
    Put { shape: Shape, rev: u64 },
    Remove(String),
    Clear,
}

/// A shape's new position (or its loss), computed on the customer's frame with RTP
/// timestamp `rtp_timestamp`.
#[derive(Clone, Debug, PartialEq)]
pub struct Moved {
    pub shape_id: String,
    pub rev: u64,
    pub points: Vec<[f32; 2]>,
    pub state: TrackState,
    pub rtp_timestamp: u32,
}

/// The hub's record of a session's anchored shapes: current revisions and last
/// positions.
#[derive(Debug, Default)]
pub struct AnchorLedger {
    next_rev: u64,
    /// Shape id -> (current revision, last position accepted).
    shapes: HashMap<String, (u64, Option<Moved>)>,
}

impl AnchorLedger {
    /// A shape was drawn or redrawn (already validated and kept): what to tell the
    /// anchoring task, if anything.
    pub fn put(&mut self, shape: &Shape) -> Option<AnchorCmd> {
        if shape.kind == "laser" {
            return None;
        }
        if !anchorable(shape) {
            // A frozen redraw of an anchored shape ends its anchoring.
            return self.shapes.remove(&shape.id).map(|_| AnchorCmd::Remove(shape.id.clone()));
        }
        self.next_rev += 1;
        self.shapes.insert(shape.id.clone(), (self.next_rev, None));
        Some(AnchorCmd::Put { shape: shape.clone(), rev: self.next_rev })
    }

    pub fn remove(&mut self, id: &str) -> Option<AnchorCmd> {
        self.shapes.remove(id).map(|_| AnchorCmd::Remove(id.to_owned()))
    }

    pub fn clear(&mut self) -> Option<AnchorCmd> {
        let had = !self.shapes.is_empty();
        self.shapes.clear();
        had.then_some(AnchorCmd::Clear)
    }

    /// A position from the anchoring task: kept and returned when it is for the current
    /// revision of a shape still there (None: stale, drop it).
    pub fn accept(&mut self, m: Moved) -> Option<Moved> {
        let (rev, last) = self.shapes.get_mut(&m.shape_id)?;
        if *rev != m.rev {
            return None;
        }
        *last = Some(m.clone());
        Some(m)
    }

    /// The last position of every shape that has one (for a participant who joins).
    pub fn positions(&self) -> impl Iterator<Item = &Moved> {
        self.shapes.values().filter_map(|(_, m)| m.as_ref())
    }
}

enum Phase {
    /// Waiting for a frame to start on.
    Pending,
    Tracking(Box<Anchor>),
    /// Lost for good (until redrawn).
    Lost,
    /// Too little texture to track: left where it was drawn.
    Refused,
}

struct Entry {
    id: String,
    rev: u64,
    kind: String,
    /// The points as drawn (creation-frame normalized coordinates).
    original: Vec<[f32; 2]>,
    phase: Phase,
    /// None until the anchor starts.
    sent: Option<Sent>,
}

/// Counts of what happened to shapes put into an [`AnchorSet`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetStats {
    /// Shapes refused because the session has `max_anchors` already.
    pub over_limit: u64,
    /// Regions with too little texture to track.
    pub refused: u64,
}

/// The anchors of one session (owned by its anchoring task).
pub struct AnchorSet {
    cfg: AnchoringConfig,
    entries: Vec<Entry>,
    /// The last frame processed, and when: new anchors start on it.
    last: Option<(Pyramid, u64)>,
    pub stats: SetStats,
}

impl AnchorSet {
    pub fn new(cfg: AnchoringConfig) -> Self {
        AnchorSet { cfg, entries: Vec::new(), last: None, stats: SetStats::default() }
    }

    pub fn config(&self) -> &AnchoringConfig {
        &self.cfg
    }

    /// Shapes anchored (pending, tracking or lost).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether tracking frames are needed (a shape waits to start or is tracked).
    pub fn wants_frames(&self) -> bool {
        self.cfg.fps > 0 && self.entries.iter().any(|e| matches!(e.phase, Phase::Pending | Phase::Tracking(_)))
    }

    pub fn apply(&mut self, cmd: AnchorCmd) {
        match cmd {
            AnchorCmd::Put { shape, rev } => {
                if !anchorable(&shape) {
                    self.entries.retain(|e| e.id != shape.id);
                } else {
                    let entry = Entry { id: shape.id.clone(), rev, kind: shape.kind.clone(), original: shape.points.clone(), phase: Phase::Pending, sent: None };
                    if let Some(e) = self.entries.iter_mut().find(|e| e.id == shape.id) {
                        *e = entry;
                    } else if self.entries.len() < self.cfg.max_anchors {
                        self.entries.push(entry);
                    } else {
                        self.stats.over_limit += 1;
                    }
                }
            }
            AnchorCmd::Remove(id) => self.entries.retain(|e| e.id != id),
            AnchorCmd::Clear => self.entries.clear(),
        }
        self.forget_when_idle();
    }

    /// Tracks every anchor to the frame of `pyr` (RTP timestamp `rtp_timestamp`,
    /// processed at `now_ms`); returns the updates worth sending.
    pub fn track(&mut self, pyr: Pyramid, rtp_timestamp: u32, now_ms: u64) -> Vec<Moved> {
        let base = match &self.last {
            Some((p, at)) if now_ms.saturating_sub(*at) <= STALE_MS => Some(p.clone()),
            _ => None,
        };
        let mut out = Vec::new();
        for e in &mut self.entries {
            let (points, state) = match &mut e.phase {
                Phase::Pending => {
                    let region = region_for(&e.kind, &e.original);
                    // Start on the frame before this one when there is a recent one (closer to
                    // what the expert saw), then follow to this one.
                    let started = match &base {
                        Some(b) => Anchor::new_with(b, region, self.cfg.tracker.clone()).map(|mut a| {
                            a.update_with(&pyr);
                            a
                        }),
                        None => Anchor::new_with(&pyr, region, self.cfg.tracker.clone()),
                    };
                    match started {
                        Some(a) => {
                            let state = a.state();
                            let points = map_points(&a, &e.original);
                            e.phase = if state == TrackState::Lost { Phase::Lost } else { Phase::Tracking(Box::new(a)) };
                            (points, state)
                        }
                        None => {
                            e.phase = Phase::Refused;
                            self.stats.refused += 1;
                            continue;
                        }
                    }
                }
                Phase::Tracking(a) => {
                    let update = a.update_with(&pyr);
                    let points = map_points(a, &e.original);
                    if update.state == TrackState::Lost {
                        e.phase = Phase::Lost;
                    }
                    (points, update.state)
                }
                Phase::Lost | Phase::Refused => continue,
            };
            // The first fix is always sent: it tells the pages the shape is anchored.
            let due = match &e.sent {
                None => true,
                Some(last) => self.cfg.throttle.due(last, &points, state, now_ms),
            };
            if due {
                e.sent = Some(Sent { points: points.clone(), state, at_ms: now_ms });
                out.push(Moved { shape_id: e.id.clone(), rev: e.rev, points, state, rtp_timestamp });
            }
        }
        self.last = Some((pyr, now_ms));
        self.forget_when_idle();
        out
    }

    /// No frames needed: let go of the last one (a later anchor must not start on it).
    fn forget_when_idle(&mut self) {
        if !self.wants_frames() {
            self.last = None;
        }
    }
}

fn map_points(a: &Anchor, points: &[[f32; 2]]) -> Vec<[f32; 2]> {
    points
        .iter()
        .map(|p| {
            let q = a.map(Point::new(p[0], p[1]));
            // Keep what goes on the wire finite (a degenerate transform is refused by
            // the tracker; this is belt and braces).
            if q.x.is_finite() && q.y.is_finite() { [q.x, q.y] } else { *p }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guidance::tracking::synthetic::{self, ClipKind};
    use crate::guidance::tracking::Gray;

    fn shape(id: &str, kind: &str, points: Vec<[f32; 2]>) -> Shape {
        Shape { id: id.into(), kind: kind.into(), points, text: None, color: None, frame_ts: None, frozen: false, sent_at: None }
    }

    fn close(a: [Point; 2], b: [[f32; 2]; 2]) -> bool {
        [a[0].x - b[0][0], a[0].y - b[0][1], a[1].x - b[1][0], a[1].y - b[1][1]].iter().all(|d| d.abs() < 1e-5)
    }

    #[test]
    fn the_region_is_the_padded_bounding_box_at_least_eight_percent_and_inside_the_frame() {
        // 0.2 x 0.1 box: 0.06 / 0.03 padding per side.
        let r = region_for("rect", &[[0.5, 0.4], [0.3, 0.5]]);
        assert!(close(r, [[0.24, 0.37], [0.56, 0.53]]), "{r:?}");
        // A text label's single point grows to 8 % around it.
        let r = region_for("text", &[[0.5, 0.5]]);
        assert!(close(r, [[0.46, 0.46], [0.54, 0.54]]), "{r:?}");
        // A circle covers centre +- radius (0.1), padded.
        let r = region_for("circle", &[[0.5, 0.5], [0.6, 0.5]]);
        assert!(close(r, [[0.34, 0.34], [0.66, 0.66]]), "{r:?}");
        // Clamped at the frame's edges.
        let r = region_for("arrow", &[[0.0, 0.9], [0.1, 1.0]]);
        assert!(close(r, [[0.0, 0.87], [0.13, 1.0]]), "{r:?}");
    }

    #[test]
    fn updates_are_sent_on_a_state_change_or_a_visible_move_at_most_once_a_period() {
        let t = Throttle::for_fps(10);
        assert_eq!(t.min_interval_ms, 75);
        let last = Sent { points: vec![[0.5, 0.5]], state: TrackState::Tracking, at_ms: 1000 };
        assert!(!t.due(&last, &[[0.5015, 0.5]], TrackState::Tracking, 2000), "1 px is not worth it");
        assert!(t.due(&last, &[[0.503, 0.5]], TrackState::Tracking, 1100));
        assert!(!t.due(&last, &[[0.503, 0.5]], TrackState::Tracking, 1050), "too soon after the last");
        assert!(t.due(&last, &[[0.5, 0.5]], TrackState::Lost, 1001), "a loss is sent at once");
        let lost = Sent { state: TrackState::Lost, ..last };
        assert!(!t.due(&lost, &[[0.9, 0.9]], TrackState::Lost, 9000), "nothing after the loss");
    }

    #[test]
    fn the_ledger_drops_positions_of_removed_or_redrawn_shapes() {
        let mut l = AnchorLedger::default();
        let a = shape("a", "rect", vec![[0.2, 0.2], [0.3, 0.3]]);
        let Some(AnchorCmd::Put { rev: r1, .. }) = l.put(&a) else { panic!() };
        let Some(AnchorCmd::Put { rev: r2, .. }) = l.put(&a) else { panic!() };
        let moved = |rev| Moved { shape_id: "a".into(), rev, points: vec![[0.3, 0.2], [0.4, 0.3]], state: TrackState::Tracking, rtp_timestamp: 9 };
        assert_eq!(l.accept(moved(r1)), None, "computed for the old drawing");
        assert!(l.accept(moved(r2)).is_some());
        assert_eq!(l.positions().count(), 1);
        assert_eq!(l.put(&shape("laser", "laser", vec![[0.5, 0.5]])), None);
        // Redrawn on a frozen frame: no longer anchored.
        assert_eq!(l.put(&Shape { frozen: true, ..a.clone() }), Some(AnchorCmd::Remove("a".into())));
        assert_eq!(l.accept(moved(r2)), None);
        l.put(&a);
        assert_eq!(l.clear(), Some(AnchorCmd::Clear));
        assert_eq!(l.clear(), None);
    }

    fn pyramid(clip: &synthetic::Clip, t: usize) -> Pyramid {
        let g = Gray { width: clip.width, height: clip.height, pixels: &clip.frames[t] };
        Pyramid::new(&g, TrackerConfig::default().pyramid_levels).unwrap()
    }

    #[test]
    fn anchored_shapes_follow_a_pan_and_a_cut_loses_them_for_good() {
        let (w, h) = (320, 240);
        let clip = synthetic::clip(ClipKind::Cut, w, h);
        let mut set = AnchorSet::new(AnchoringConfig::new(10, 2));
        let rect = vec![[0.35, 0.40], [0.50, 0.55]];
        set.apply(AnchorCmd::Put { shape: shape("r", "rect", rect.clone()), rev: 1 });
        set.apply(AnchorCmd::Put { shape: shape("t", "text", vec![[0.6, 0.3]]), rev: 2 });
        set.apply(AnchorCmd::Put { shape: shape("x", "arrow", vec![[0.1, 0.1], [0.2, 0.2]]), rev: 3 });
        assert_eq!((set.len(), set.stats.over_limit), (2, 1), "at most max_anchors");
        assert!(set.wants_frames());
        let first = set.track(pyramid(&clip, 0), 0, 0);
        assert_eq!(first.len(), 2, "the first fix of each is sent: {first:?}");
        assert_eq!(first[0].points, rect);
        let mut lost_at = None;
        for t in 1..clip.frames.len() {
            for m in set.track(pyramid(&clip, t), t as u32 * 9000, t as u64 * 100) {
                if m.shape_id != "r" {
                    continue;
                }
                if m.state == TrackState::Lost {
                    lost_at.get_or_insert(t);
                    continue;
                }
                assert!(t < synthetic::CUT_AT, "tracking after the cut at frame {t}");
                // The clip pans (1, 0.5) px per frame at 640 px wide: (0.5, 0.25) px here.
                let truth = clip.truth[t].unwrap();
                for (p, q) in rect.iter().zip(&m.points) {
                    let (x, y) = (p[0] as f64 * w as f64 - 0.5, p[1] as f64 * h as f64 - 0.5);
                    let d = truth[6] * x + truth[7] * y + truth[8];
                    let ex = ((truth[0] * x + truth[1] * y + truth[2]) / d + 0.5) / w as f64;
                    let ey = ((truth[3] * x + truth[4] * y + truth[5]) / d + 0.5) / h as f64;
                    assert!((ex - q[0] as f64).abs() < 0.01 && (ey - q[1] as f64).abs() < 0.01, "frame {t}: {q:?} vs ({ex}, {ey})");
                }
            }
        }
        let lost_at = lost_at.expect("the cut is noticed");
        assert!(lost_at < synthetic::CUT_AT + 5, "lost at {lost_at}");
        assert!(!set.wants_frames(), "both lost: no more frames needed");
        // Redrawing starts a new anchor.
        set.apply(AnchorCmd::Put { shape: shape("r", "rect", rect.clone()), rev: 4 });
        assert!(set.wants_frames());
        set.apply(AnchorCmd::Clear);
        assert!(set.is_empty() && !set.wants_frames());
    }

    #[test]
    fn a_region_without_texture_is_not_anchored() {
        let flat = vec![128u8; 320 * 240];
        let pyr = Pyramid::new(&Gray { width: 320, height: 240, pixels: &flat }, 4).unwrap();
        let mut set = AnchorSet::new(AnchoringConfig::new(10, 20));
        set.apply(AnchorCmd::Put { shape: shape("r", "rect", vec![[0.4, 0.4], [0.5, 0.5]]), rev: 1 });
        assert!(set.track(pyr, 0, 0).is_empty());
        assert_eq!(set.stats.refused, 1);
        assert!(!set.wants_frames());
    }
}
