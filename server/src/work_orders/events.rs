//! The append-only event log: event types, the pure `decide` (command -> event) and
//! `apply` (state + event -> state) functions, and `replay`.
//!
//! The `work_orders` table is a projection of these events, written in the same
//! transaction; `replay` of the stored events must equal the stored projection.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::lifecycle;
use super::model::{Channel, Priority, Status, Tier, WorkOrder};
use super::sla::SlaPolicy;
use crate::auth::Role;
use crate::ids::{AssetId, CustomerId, EvidenceId, InviteId, SiteId, UserId, WorkOrderId};
use crate::UnixMillis;

/// Who caused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorRef {
    User(UserId),
    Invite(InviteId),
    System,
}

impl fmt::Display for ActorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorRef::User(id) => write!(f, "user:{id}"),
            ActorRef::Invite(id) => write!(f, "invite:{id}"),
            ActorRef::System => f.write_str("system"),
        }
    }
}

impl FromStr for ActorRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "system" {
            return Ok(ActorRef::System);
        }
        if let Some(id) = s.strip_prefix("user:") {
            return id.parse().map(ActorRef::User).map_err(|e| e.to_string());
        }
        if let Some(id) = s.strip_prefix("invite:") {
            return id.parse().map(ActorRef::Invite).map_err(|e| e.to_string());
        }
        Err(format!("unknown actor `{s}`"))
    }
}

/// The actor of a command: who and in which role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    pub who: ActorRef,
    pub role: Option<Role>,
}

impl Actor {
    pub const SYSTEM: Actor = Actor { who: ActorRef::System, role: None };

    fn is_staff(&self) -> bool {
        matches!(self.role, Some(r) if r != Role::Customer)
    }
}

/// Evidence summary carried by the `evidence_attached` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub evidence_id: EvidenceId,
    /// photo, telemetry or snapshot (not `kind`: that is the event's tag).
    pub evidence_kind: String,
    pub content_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub filename: Option<String>,
}

/// One event. Serialized with its `kind` tag as the stored payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    Created {
        customer_id: CustomerId,
        asset_id: Option<AssetId>,
        site_id: Option<SiteId>,
        title: String,
        description: String,
        channel: Channel,
        priority: Priority,
        tier: Tier,
        fault_codes: Vec<String>,
        first_response_due: UnixMillis,
        resolution_due: UnixMillis,
    },
    StatusChanged {
        from: Status,
        to: Status,
        reason: Option<String>,
        /// True when this is the first response by staff (stops the first-response clock).
        first_response: bool,
    },
    PriorityChanged {
        from: Priority,
        to: Priority,
        first_response_due: UnixMillis,
        resolution_due: UnixMillis,
    },
    NoteAdded {
        text: String,
    },
    EvidenceAttached(EvidenceRef),
    InviteCreated {
        invite_id: InviteId,
        expires_at: UnixMillis,
    },
    InviteRedeemed {
        invite_id: InviteId,
    },
    /// Someone joined the live session (`part`: customer, expert, observer).
    SessionJoined { part: String, who: String },
    /// Someone's connection left the live session.
    SessionLeft { part: String, who: String, connected_ms: i64 },
    /// The live session ended with an outcome; the timeline in numbers.
    SessionEnded { outcome: String, duration_ms: i64, participants: u32, reconnects: u32 },
    /// A model's verdict on a piece of evidence (photo, snapshot, telemetry).
    DiagnosisAdded {
        evidence_id: Option<EvidenceId>,
        source: String,
        verdict: crate::diagnosis::ModelVerdict,
    },
    /// The case goes onsite: why, when the customer can receive a technician, and the
    /// parts the expert (or the diagnosis) says the visit needs.
    EscalationRecorded {
        reason: String,
        availability: Option<String>,
        suggested_parts: Vec<PartQty>,
    },
    /// Stock held for this work order; `shortages` could not be reserved anywhere.
    PartsReserved { lines: Vec<PartLine>, shortages: Vec<PartQty> },
    /// Reservations given back (cancelled, re-escalated without them).
    PartsReleased { lines: Vec<PartLine> },
    /// Parts used on site (taken out of stock).
    PartsConsumed { lines: Vec<PartLine> },
    /// A technician was offered the job (by a dispatcher or automatically).
    TechnicianOffered { assignment_id: String, technician_id: String, score: Option<f64>, auto: bool },
    /// The technician accepted or declined, or the dispatcher withdrew the offer.
    AssignmentAnswered { assignment_id: String, technician_id: String, answer: String, reason: Option<String> },
    /// Onsite visit progress: `en_route`, `on_site`.
    VisitProgress { assignment_id: String, stage: String },
    /// The technician's report at the end of a visit.
    VisitReport {
        assignment_id: String,
        outcome: String,
        checklist: Vec<ChecklistItem>,
        parts_used: Vec<PartQty>,
        signed_by: Option<String>,
        notes: Option<String>,
    },
    /// An SLA clock (`first_response` or `resolution`) is close to its deadline.
    SlaWarning { clock: String, due: UnixMillis },
    /// An SLA clock passed its deadline unmet.
    SlaBreached { clock: String, due: UnixMillis },
    /// The expert pushed a repair procedure in the live session.
    ProcedureStarted { procedure_id: String, version: u32 },
    /// A step card was shown (`via`: push, auto, next, back, skip, goto).
    StepShown { procedure_id: String, version: u32, index: usize, via: String },
    /// The customer's answer to a step card: done, failed, cannot.
    StepAnswered { procedure_id: String, version: u32, index: usize, answer: String, note: Option<String> },
    /// The procedure ended: completed, switched, session_ended.
    ProcedureFinished { procedure_id: String, version: u32, outcome: String, steps_done: usize, total: usize },
    /// A satisfaction survey link was issued after a resolution.
    SurveySent { survey_id: String, url: String, expires_at: UnixMillis, follow_up_due: UnixMillis },
    /// The customer answered the survey.
    SurveyAnswered { survey_id: String, rating: i64, comment: Option<String>, complaint: bool },
    /// Staff followed up with the customer.
    FollowUpDone { survey_id: String, note: String },
}

/// A quantity of one part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartQty {
    pub sku: String,
    pub quantity: i64,
}

/// A reservation line: which warehouse holds how many of a part for the work order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartLine {
    pub reservation_id: String,
    pub warehouse: String,
    pub sku: String,
    pub quantity: i64,
}

/// One checklist entry of a visit report (a procedure step and whether it was done).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub item: String,
    pub done: bool,
    pub note: Option<String>,
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Created { .. } => "created",
            Event::StatusChanged { .. } => "status_changed",
            Event::PriorityChanged { .. } => "priority_changed",
            Event::NoteAdded { .. } => "note_added",
            Event::EvidenceAttached(_) => "evidence_attached",
            Event::InviteCreated { .. } => "invite_created",
            Event::InviteRedeemed { .. } => "invite_redeemed",
            Event::DiagnosisAdded { .. } => "diagnosis_added",
            Event::SessionJoined { .. } => "session_joined",
            Event::SessionLeft { .. } => "session_left",
            Event::SessionEnded { .. } => "session_ended",
            Event::EscalationRecorded { .. } => "escalation_recorded",
            Event::PartsReserved { .. } => "parts_reserved",
            Event::PartsReleased { .. } => "parts_released",
            Event::PartsConsumed { .. } => "parts_consumed",
            Event::TechnicianOffered { .. } => "technician_offered",
            Event::AssignmentAnswered { .. } => "assignment_answered",
            Event::VisitProgress { .. } => "visit_progress",
            Event::VisitReport { .. } => "visit_report",
            Event::SlaWarning { .. } => "sla_warning",
            Event::SlaBreached { .. } => "sla_breached",
            Event::ProcedureStarted { .. } => "procedure_started",
            Event::StepShown { .. } => "step_shown",
            Event::StepAnswered { .. } => "step_answered",
            Event::ProcedureFinished { .. } => "procedure_finished",
            Event::SurveySent { .. } => "survey_sent",
            Event::SurveyAnswered { .. } => "survey_answered",
            Event::FollowUpDone { .. } => "follow_up_done",
        }
    }
}

/// A stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    pub work_order_id: WorkOrderId,
    pub seq: i64,
    pub actor: Actor,
    pub occurred_at: UnixMillis,
    pub event: Event,
}

/// What a client or another module asks of an existing work order.
#[derive(Clone, Debug)]
pub enum Command {
    Transition { to: Status, reason: Option<String> },
    ChangePriority { to: Priority },
    AddNote { text: String },
    AttachEvidence(EvidenceRef),
    RecordInvite { invite_id: InviteId, expires_at: UnixMillis },
    RecordInviteRedeemed { invite_id: InviteId },
    RecordDiagnosis { evidence_id: Option<EvidenceId>, source: String, verdict: crate::diagnosis::ModelVerdict },
    /// A live-session timeline entry (one of the `Session*` events).
    RecordSession(Event),
    /// A dispatch record (escalation context, parts, assignment, visit, SLA clock); the
    /// dispatch module decides these and writes them with any status change in the same
    /// transaction.
    RecordDispatch(Event),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecideError {
    #[error("a work order cannot go from `{from}` to `{to}`")]
    IllegalTransition { from: Status, to: Status },
    #[error("a customer may only cancel a work order, not move it to `{0}`")]
    CustomerTransition(Status),
    #[error("the work order is {0} and takes no further changes")]
    Terminal(Status),
    #[error("priority is already {0}")]
    SamePriority(Priority),
    #[error("`{0}` is not a session event")]
    NotASessionEvent(&'static str),
    #[error("`{0}` is not a dispatch event")]
    NotADispatchEvent(&'static str),
}

/// Decides the event a command produces on the current state. Pure.
pub fn decide(state: &WorkOrder, cmd: Command, actor: &Actor, sla: &SlaPolicy) -> Result<Event, DecideError> {
    match cmd {
        Command::Transition { to, reason } => {
            if !lifecycle::is_legal(state.status, to) {
                return Err(DecideError::IllegalTransition { from: state.status, to });
            }
            if actor.role == Some(Role::Customer) && !lifecycle::customer_may_enter(to) {
                return Err(DecideError::CustomerTransition(to));
            }
            let first_response =
                state.first_response_at.is_none() && actor.is_staff() && to != Status::Cancelled;
            Ok(Event::StatusChanged { from: state.status, to, reason, first_response })
        }
        Command::ChangePriority { to } => {
            if lifecycle::is_terminal(state.status) {
                return Err(DecideError::Terminal(state.status));
            }
            if to == state.priority {
                return Err(DecideError::SamePriority(to));
            }
            let d = sla.deadlines(state.tier, to, state.created_at);
            Ok(Event::PriorityChanged {
                from: state.priority,
                to,
                first_response_due: d.first_response_due,
                resolution_due: d.resolution_due,
            })
        }
        Command::AddNote { text } => Ok(Event::NoteAdded { text }),
        Command::AttachEvidence(e) => {
            if lifecycle::is_terminal(state.status) {
                return Err(DecideError::Terminal(state.status));
            }
            Ok(Event::EvidenceAttached(e))
        }
        Command::RecordInvite { invite_id, expires_at } => {
            if lifecycle::is_terminal(state.status) {
                return Err(DecideError::Terminal(state.status));
            }
            Ok(Event::InviteCreated { invite_id, expires_at })
        }
        Command::RecordDiagnosis { evidence_id, source, verdict } => {
            if lifecycle::is_terminal(state.status) {
                return Err(DecideError::Terminal(state.status));
            }
            Ok(Event::DiagnosisAdded { evidence_id, source, verdict })
        }
        Command::RecordSession(e) => match e {
            Event::SessionJoined { .. }
            | Event::SessionLeft { .. }
            | Event::SessionEnded { .. }
            | Event::ProcedureStarted { .. }
            | Event::StepShown { .. }
            | Event::StepAnswered { .. }
            | Event::ProcedureFinished { .. } => Ok(e),
            other => Err(DecideError::NotASessionEvent(other.kind())),
        },
        Command::RecordDispatch(e) => {
            // Releasing parts and the customer's last word still land on a closed one.
            let after_close = matches!(e, Event::PartsReleased { .. } | Event::SurveyAnswered { .. } | Event::FollowUpDone { .. });
            if lifecycle::is_terminal(state.status) && !after_close {
                return Err(DecideError::Terminal(state.status));
            }
            match e {
                Event::EscalationRecorded { .. }
                | Event::PartsReserved { .. }
                | Event::PartsReleased { .. }
                | Event::PartsConsumed { .. }
                | Event::TechnicianOffered { .. }
                | Event::AssignmentAnswered { .. }
                | Event::VisitProgress { .. }
                | Event::VisitReport { .. }
                | Event::SlaWarning { .. }
                | Event::SlaBreached { .. }
                | Event::SurveySent { .. }
                | Event::SurveyAnswered { .. }
                | Event::FollowUpDone { .. } => Ok(e),
                other => Err(DecideError::NotADispatchEvent(other.kind())),
            }
        }
        Command::RecordInviteRedeemed { invite_id } => {
            if lifecycle::is_terminal(state.status) {
                return Err(DecideError::Terminal(state.status));
            }
            Ok(Event::InviteRedeemed { invite_id })
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplayError {
    #[error("the event log is empty")]
    Empty,
    #[error("event {seq} is `{kind}` where `created` was expected first")]
    NotCreatedFirst { seq: i64, kind: &'static str },
    #[error("event {seq} is a second `created`")]
    CreatedTwice { seq: i64 },
    #[error("event sequence has a gap or repeat at {seq}")]
    Sequence { seq: i64 },
}

/// Builds the initial state from the `created` event.
pub fn genesis(id: WorkOrderId, created: &Event, actor: &Actor, at: UnixMillis) -> Option<WorkOrder> {
    let Event::Created {
        customer_id, asset_id, site_id, title, description, channel, priority, tier, fault_codes,
        first_response_due, resolution_due,
    } = created.clone()
    else {
        return None;
    };
    Some(WorkOrder {
        id,
        customer_id,
        asset_id,
        site_id,
        title,
        description,
        channel,
        priority,
        tier,
        status: Status::New,
        fault_codes,
        first_response_due,
        resolution_due,
        first_response_at: None,
        resolved_at: None,
        created_by: match actor.who {
            ActorRef::User(u) => Some(u),
            _ => None,
        },
        created_at: at,
        updated_at: at,
        version: 1,
    })
}

/// Applies one non-genesis event. Pure and total: decisions were made in `decide`.
pub fn apply(mut state: WorkOrder, event: &Event, at: UnixMillis) -> WorkOrder {
    match event {
        Event::Created { .. } => {}
        Event::StatusChanged { to, first_response, .. } => {
            state.status = *to;
            if *first_response {
                state.first_response_at = Some(at);
            }
            if lifecycle::is_resolved(*to) {
                state.resolved_at = Some(at);
            } else if *to == Status::Triaged {
                // Reopened (or sent back to the queue): the case is no longer resolved.
                state.resolved_at = None;
            }
        }
        Event::PriorityChanged { to, first_response_due, resolution_due, .. } => {
            state.priority = *to;
            state.first_response_due = *first_response_due;
            state.resolution_due = *resolution_due;
        }
        Event::NoteAdded { .. }
        | Event::EvidenceAttached(_)
        | Event::InviteCreated { .. }
        | Event::InviteRedeemed { .. }
        | Event::DiagnosisAdded { .. }
        | Event::SessionJoined { .. }
        | Event::SessionLeft { .. }
        | Event::SessionEnded { .. }
        | Event::EscalationRecorded { .. }
        | Event::PartsReserved { .. }
        | Event::PartsReleased { .. }
        | Event::PartsConsumed { .. }
        | Event::TechnicianOffered { .. }
        | Event::AssignmentAnswered { .. }
        | Event::VisitProgress { .. }
        | Event::VisitReport { .. }
        | Event::SlaWarning { .. }
        | Event::SlaBreached { .. }
        | Event::SurveySent { .. }
        | Event::SurveyAnswered { .. }
        | Event::FollowUpDone { .. }
        | Event::ProcedureStarted { .. }
        | Event::StepShown { .. }
        | Event::StepAnswered { .. }
        | Event::ProcedureFinished { .. } => {}
    }
    state.updated_at = at;
    state.version += 1;
    state
}

/// Rebuilds a work order from its whole event log.
pub fn replay(events: &[EventRecord]) -> Result<WorkOrder, ReplayError> {
    let first = events.first().ok_or(ReplayError::Empty)?;
    if first.seq != 1 {
        return Err(ReplayError::Sequence { seq: first.seq });
    }
    let mut state = genesis(first.work_order_id, &first.event, &first.actor, first.occurred_at)
        .ok_or(ReplayError::NotCreatedFirst { seq: first.seq, kind: first.event.kind() })?;
    for rec in &events[1..] {
        if rec.seq != state.version + 1 {
            return Err(ReplayError::Sequence { seq: rec.seq });
        }
        if matches!(rec.event, Event::Created { .. }) {
            return Err(ReplayError::CreatedTwice { seq: rec.seq });
        }
        state = apply(state, &rec.event, rec.occurred_at);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_round_trips_through_its_stored_json() {
        let events = vec![
            Event::NoteAdded { text: "x".into() },
            Event::EvidenceAttached(EvidenceRef {
                evidence_id: EvidenceId::new(),
                evidence_kind: "photo".into(),
                content_type: "image/png".into(),
                sha256: "ab".repeat(32),
                size_bytes: 10,
                filename: None,
            }),
            Event::InviteCreated { invite_id: InviteId::new(), expires_at: 5 },
            Event::StatusChanged { from: Status::New, to: Status::Triaged, reason: None, first_response: true },
        ];
        for e in events {
            let json = serde_json::to_string(&e).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap_or_else(|err| panic!("{json}: {err}"));
            assert_eq!(back, e);
        }
    }
}
