//! Signaling messages, version 1. JSON text frames; every message has `type`; a client
//! message may carry an `id` that the server echoes in its `ack` or `error`. SDP follows
//! JSEP (RFC 9429); candidates trickle (RFC 8838) in the W3C `RTCIceCandidateInit` shape.
//! See docs/signaling.md for an example exchange.

use serde::{Deserialize, Serialize};

use crate::guidance::live::{Card, Shape, StepAnswer};
use crate::ids::WorkOrderId;
use crate::session::{Outcome, Part, PeerId};

pub const PROTOCOL_VERSION: u32 = 1;

/// Which of a participant's two peer connections a candidate or description is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    /// The participant sends media (they offer).
    Publish,
    /// The participant receives media (the server offers).
    Subscribe,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// A client message: `{"v": 1, "id": "r1", "type": "...", ...}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ClientEnvelope {
    #[serde(default = "one")]
    pub v: u32,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(flatten)]
    pub msg: ClientMsg,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// First message: an access token (from login or an invite link).
    Auth { token: String },
    /// Customer: wait for an expert on this work order.
    Queue { work_order_id: WorkOrderId },
    /// Expert: receive queue updates.
    Online,
    /// Expert: take a waiting work order.
    Accept { work_order_id: WorkOrderId },
    /// Join a running session (a second expert, an observer, or a reconnect).
    Join { work_order_id: WorkOrderId },
    /// Offer of the publishing connection (also for an ICE restart).
    Publish { sdp: String },
    /// Ask for (or refresh) the receiving connection: the server answers with an offer.
    Subscribe,
    /// Answer to the server's subscribe offer.
    SubscribeAnswer { sdp: String },
    Candidate { leg: Leg, candidate: Candidate },
    Chat { text: String },
    /// Camera/device controls relayed to the customer (checked against capabilities there).
    Control { action: String, #[serde(default)] value: Option<serde_json::Value> },
    Leave,
    /// Expert: diagnose and keep the customer's next video frame (stored as evidence).
    Snapshot,
    /// Expert: end the session with an outcome.
    End { outcome: Outcome },
    Ping,
    /// Expert: show a repair procedure's step cards to the customer (current version
    /// unless `version` is given).
    PushProcedure { procedure_id: String, #[serde(default)] version: Option<u32> },
    /// Customer: answer the step card shown (`index` is 1-based).
    StepAnswer { procedure_id: String, index: usize, answer: StepAnswer, #[serde(default)] note: Option<String> },
    /// Expert: `next`, `back`, `skip`, or `goto` with `index` (1-based).
    StepControl { action: String, #[serde(default)] index: Option<usize> },
    /// Expert: draw (or replace, same id) an annotation on the customer's video.
    Annotate { shape: Shape },
    /// Expert: undo one annotation.
    AnnotationRemove { shape_id: String },
    /// Expert: remove every annotation.
    AnnotationClear,
    /// Expert in a session: ask another expert (by user id) to join it.
    InviteExpert { user_id: crate::ids::UserId },
    /// Expert: which experts are connected (for inviting one).
    ListExperts,
}

/// A server message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Hello { v: u32, peer: PeerId },
    Ack { id: Option<String> },
    Error { id: Option<String>, code: String, message: String },
    QueuePosition { work_order_id: WorkOrderId, position: usize, eta_seconds: u64 },
    Queue { items: Vec<QueueItem> },
    SessionStarted { work_order_id: WorkOrderId, participants: Vec<ParticipantView> },
    ParticipantJoined { work_order_id: WorkOrderId, participant: ParticipantView },
    ParticipantLeft { work_order_id: WorkOrderId, peer: PeerId },
    PublishAnswer { sdp: String },
    SubscribeOffer { sdp: String, tracks: usize },
    /// The set of tracks the others publish changed (now `tracks`): send `subscribe`
    /// again to receive them.
    TracksChanged { tracks: usize },
    Candidate { leg: Leg, candidate: Candidate },
    Chat { from: PeerId, text: String },
    Control { from: PeerId, action: String, value: Option<serde_json::Value> },
    Ended { work_order_id: WorkOrderId, outcome: Outcome },
    /// A diagnosis of a frame of the customer's video (sampled, or a snapshot, which is
    /// also stored as evidence on the work order).
    LiveDiagnosis {
        work_order_id: WorkOrderId,
        verdict: crate::diagnosis::ModelVerdict,
        snapshot_evidence_id: Option<crate::ids::EvidenceId>,
        /// Milliseconds from the frame's arrival at the server to this message.
        #[serde(default)]
        latency_ms: f64,
    },
    Pong,
    /// The step card to show now (to everyone in the session).
    StepCard { work_order_id: WorkOrderId, card: Card },
    /// The customer's answer to a step card (to the experts).
    StepAnswered { work_order_id: WorkOrderId, procedure_id: String, index: usize, answer: StepAnswer, note: Option<String> },
    /// The procedure ended: `completed`, `switched` or `session_ended`.
    ProcedureFinished { work_order_id: WorkOrderId, procedure_id: String, outcome: String, steps_done: usize, total: usize },
    /// An annotation to draw (or redraw: same id) on the customer's video.
    Annotation { from: PeerId, shape: Shape },
    AnnotationRemoved { from: PeerId, shape_id: String },
    AnnotationsCleared { from: PeerId },
    /// Another expert asks you to join their session (send `join`).
    Invitation { work_order_id: WorkOrderId, from_name: String, title: String },
    /// The connected experts: `busy` when in a session.
    Experts { items: Vec<ExpertView> },
    /// An anchored annotation followed the object it was drawn on (the server tracks the
    /// region in the customer's video): redraw it at `points` (the shape's points as
    /// drawn, mapped onto the frame with RTP timestamp `rtp_timestamp`); `tracking:
    /// "lost"` means the object is gone (fade it) until the expert redraws it.
    AnnotationMoved { shape_id: String, points: Vec<[f32; 2]>, tracking: crate::guidance::tracking::TrackState, rtp_timestamp: u32 },
    /// After `auth`: the STUN/TURN servers to configure, with this participant's own
    /// short-lived TURN credentials.
    IceServers { ice_servers: Vec<crate::media::turn::IceServer> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    pub work_order_id: WorkOrderId,
    pub position: usize,
    pub priority: String,
    pub tier: String,
    pub waiting_seconds: i64,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpertView {
    pub user_id: crate::ids::UserId,
    pub name: String,
    pub busy: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticipantView {
    pub peer: PeerId,
    pub part: Part,
    pub name: String,
}

/// Stable error codes on the socket.
pub mod codes {
    pub const MALFORMED: &str = "malformed";
    pub const UNSUPPORTED_VERSION: &str = "unsupported_version";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FOUND: &str = "not_found";
    pub const CONFLICT: &str = "conflict";
    pub const TOO_LARGE: &str = "too_large";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const MEDIA: &str = "media";
    pub const INTERNAL: &str = "internal";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_parse_and_unknown_fields_or_types_are_refused() {
        let e: ClientEnvelope = serde_json::from_str(r#"{"v":1,"id":"x","type":"auth","token":"t"}"#).unwrap();
        assert_eq!(e.msg, ClientMsg::Auth { token: "t".into() });
        let e: ClientEnvelope = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!((e.v, e.msg), (1, ClientMsg::Ping));
        assert!(serde_json::from_str::<ClientEnvelope>(r#"{"type":"auth","token":"t","extra":1}"#).is_err());
        assert!(serde_json::from_str::<ClientEnvelope>(r#"{"type":"teleport"}"#).is_err());
        assert!(serde_json::from_str::<ClientEnvelope>(r#"{"type":"end","outcome":"shrug"}"#).is_err());
    }
}
