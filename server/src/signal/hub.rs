//! The hub task: owns the session state machine (`session::Hub`), the connected peers'
//! outboxes and the media rooms, and executes the machine's effects: messages to
//! sockets and work-order changes. One task, fed by a channel: no shared session state.
//! Work-order events are committed before the participants are told.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::protocol::{codes, ParticipantView, QueueItem, ServerMsg};
use crate::auth::{Principal, Role};
use crate::guidance::anchoring::{AnchorCmd, AnchorLedger, AnchoringConfig, Moved};
use crate::guidance::live::{GuidanceError, Output, RoomGuidance, Shape, StepAnswer, StepControl};
use crate::ids::WorkOrderId;
use crate::media::room::MediaRoom;
use crate::session::{Effect, Hub, Outcome, Part, PeerId, Waiting};
use crate::store::Db;
use crate::work_orders::events::{Actor, Command, Event};
use crate::work_orders::model::{Status, WorkOrder};
use crate::work_orders::repo;
use crate::work_orders::sla::SlaPolicy;

/// A socket-level error: stable code and message.
pub type Refusal = (&'static str, String);

pub enum HubCmd {
    Register { peer: PeerId, principal: Principal, name: String, outbox: mpsc::Sender<ServerMsg> },
    Queue { peer: PeerId, work_order: Box<WorkOrder>, product_line: Option<String>, reply: oneshot::Sender<Result<(), Refusal>> },
    /// An expert takes calls; `skills` are their product lines (None: every line).
    Online { peer: PeerId, skills: Option<Vec<String>> },
    Accept { peer: PeerId, work_order: WorkOrderId, reply: oneshot::Sender<Result<Arc<MediaRoom>, Refusal>> },
    Join { peer: PeerId, work_order: WorkOrderId, part: Part, reply: oneshot::Sender<Result<Arc<MediaRoom>, Refusal>> },
    Relay { peer: PeerId, msg: ServerMsg, customers_only: bool },
    End { peer: PeerId, outcome: Outcome, reply: oneshot::Sender<Result<(), Refusal>> },
    Left { peer: PeerId },
    /// The media room of a running session (WHIP ingest, WHEP playback).
    MediaRoomOf { work_order: WorkOrderId, reply: oneshot::Sender<Result<Arc<MediaRoom>, Refusal>> },
    /// The media room of the session a peer was put into by someone else (a queued
    /// customer whose call was accepted).
    RoomOf { peer: PeerId, reply: oneshot::Sender<Result<(WorkOrderId, Arc<MediaRoom>), Refusal>> },
    /// An expert in a session asks another (connected) expert to join it.
    InviteExpert { peer: PeerId, user: crate::ids::UserId, reply: oneshot::Sender<Result<(), Refusal>> },
    /// The connected experts.
    Experts { reply: oneshot::Sender<Result<Vec<super::protocol::ExpertView>, Refusal>> },
    /// Step cards and annotations (roles were checked by the connection).
    Guidance { peer: PeerId, cmd: GuidanceCmd, reply: oneshot::Sender<Result<(), Refusal>> },
    /// New positions of anchored annotations, from the session's anchoring task.
    Anchored { work_order: WorkOrderId, moved: Vec<Moved> },
}

pub enum GuidanceCmd {
    Push(Arc<crate::guidance::procedures::Procedure>),
    Answer { procedure_id: String, index: usize, answer: StepAnswer, note: Option<String> },
    Control(StepControl),
    Annotate(Shape),
    Remove(String),
    Clear,
}

struct PeerInfo {
    principal: Principal,
    name: String,
    outbox: mpsc::Sender<ServerMsg>,
    online_expert: bool,
    /// The product lines an online expert takes (None: every line).
    skills: Option<Vec<String>>,
}

/// The anchored annotations of one session: the ledger and the anchoring task, started
/// with the first anchored shape.
#[derive(Default)]
struct SessionAnchors {
    ledger: AnchorLedger,
    task: Option<mpsc::UnboundedSender<AnchorCmd>>,
}

pub struct HubTask {
    hub: Hub,
    peers: HashMap<PeerId, PeerInfo>,
    rooms: HashMap<WorkOrderId, Arc<MediaRoom>>,
    titles: HashMap<WorkOrderId, (String, String, String)>,
    /// Product-line code of queued and running work orders (for experts' skills).
    lines: HashMap<WorkOrderId, String>,
    /// Step cards and annotations per running session.
    guidance: HashMap<WorkOrderId, RoomGuidance>,
    anchors: HashMap<WorkOrderId, SessionAnchors>,
    anchoring: AnchoringConfig,
    /// For the anchoring tasks (weak: the hub stops when every other sender is gone).
    me: mpsc::WeakSender<HubCmd>,
    db: Db,
    sla: SlaPolicy,
    /// Expected minutes per remote session, for the customer's wait estimate.
    avg_session_secs: u64,
}

/// Starts the hub; it stops when every sender is dropped.
pub fn spawn(db: Db, sla: SlaPolicy, grace: Duration, max_participants: usize, avg_session_secs: u64, anchoring: AnchoringConfig) -> mpsc::Sender<HubCmd> {
    let (tx, mut rx) = mpsc::channel::<HubCmd>(1024);
    let mut task = HubTask {
        hub: Hub::new(grace.as_millis() as i64, max_participants),
        peers: HashMap::new(),
        rooms: HashMap::new(),
        titles: HashMap::new(),
        lines: HashMap::new(),
        guidance: HashMap::new(),
        anchors: HashMap::new(),
        anchoring,
        me: tx.downgrade(),
        db,
        sla,
        avg_session_secs,
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => task.handle(cmd).await,
                    None => break,
                },
                _ = tick.tick() => {
                    let effects = task.hub.tick(crate::now_millis());
                    task.run(effects, None).await;
                }
            }
        }
    });
    tx
}

impl HubTask {
    async fn handle(&mut self, cmd: HubCmd) {
        let now = crate::now_millis();
        match cmd {
            HubCmd::Register { peer, principal, name, outbox } => {
                self.peers.insert(peer, PeerInfo { principal, name, outbox, online_expert: false, skills: None });
            }
            HubCmd::Queue { peer, work_order, product_line, reply } => {
                let w = *work_order;
                if let Some(l) = product_line {
                    self.lines.insert(w.id, l);
                }
                let waiting = Waiting { work_order: w.id, peer, resolution_due: w.resolution_due, priority: w.priority, tier: w.tier, since: now };
                self.titles.insert(w.id, (w.title.clone(), w.priority.to_string(), w.tier.to_string()));
                match self.hub.enqueue(waiting) {
                    Ok(effects) => {
                        let _ = reply.send(Ok(()));
                        self.run(effects, None).await;
                    }
                    Err(e) => {
                        let _ = reply.send(Err((codes::CONFLICT, e.to_string())));
                    }
                }
            }
            HubCmd::Online { peer, skills } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.online_expert = true;
                    p.skills = skills;
                }
                self.send_queue_snapshot(Some(peer));
            }
            HubCmd::Accept { peer, work_order, reply } => {
                let user = self.peers.get(&peer).and_then(|p| p.principal.user_id);
                let skills = self.peers.get(&peer).and_then(|p| p.skills.clone());
                let line = self.lines.get(&work_order).map(String::as_str);
                if !crate::auth::skills::covers(skills.as_deref(), line) {
                    let _ = reply.send(Err((codes::FORBIDDEN, format!("you do not take calls for {}", line.unwrap_or("this product line")))));
                    return;
                }
                // Move the work order first: only a work order that may enter a remote
                // session gets one.
                if let Err(e) = self.enter_session(work_order, peer).await {
                    let _ = reply.send(Err(e));
                    return;
                }
                match self.hub.accept(work_order, peer, user, now) {
                    Ok(effects) => {
                        let room = self.rooms.entry(work_order).or_insert_with(MediaRoom::new).clone();
                        let _ = reply.send(Ok(room));
                        self.run(effects, Some(peer)).await;
                    }
                    Err(e) => {
                        let _ = reply.send(Err((codes::CONFLICT, e.to_string())));
                    }
                }
            }
            HubCmd::Join { peer, work_order, part, reply } => {
                let user = self.peers.get(&peer).and_then(|p| p.principal.user_id);
                match self.hub.join(work_order, peer, user, part, now) {
                    Ok(effects) => {
                        let room = self.rooms.entry(work_order).or_insert_with(MediaRoom::new).clone();
                        let _ = reply.send(Ok(room));
                        self.run(effects, Some(peer)).await;
                    }
                    Err(e) => {
                        let _ = reply.send(Err((codes::CONFLICT, e.to_string())));
                    }
                }
            }
            HubCmd::Relay { peer, msg, customers_only } => {
                if let Some(room) = self.hub.room_of(peer) {
                    let targets: Vec<PeerId> = room
                        .participants
                        .iter()
                        .filter(|p| p.connected && p.peer != peer && (!customers_only || p.part == Part::Customer))
                        .map(|p| p.peer)
                        .collect();
                    for t in targets {
                        self.send(t, msg.clone());
                    }
                }
            }
            HubCmd::End { peer, outcome, reply } => {
                let Some(wo) = self.hub.room_of(peer).map(|r| r.work_order) else {
                    let _ = reply.send(Err((codes::NOT_FOUND, "you are not in a session".into())));
                    return;
                };
                match self.hub.end(wo, peer, outcome, now) {
                    Ok(effects) => {
                        self.run(effects, Some(peer)).await;
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err((codes::FORBIDDEN, e.to_string())));
                    }
                }
            }
            HubCmd::MediaRoomOf { work_order, reply } => {
                let room = self.hub.room(work_order).and_then(|_| self.rooms.get(&work_order).cloned());
                let _ = reply.send(room.ok_or((codes::NOT_FOUND, "no live session runs for this work order".to_owned())));
            }
            HubCmd::RoomOf { peer, reply } => {
                let found = self.hub.room_of(peer).map(|r| r.work_order).and_then(|wo| self.rooms.get(&wo).map(|m| (wo, m.clone())));
                let _ = reply.send(found.ok_or((codes::NOT_FOUND, "not in a session".to_owned())));
            }
            HubCmd::InviteExpert { peer, user, reply } => {
                let Some(wo) = self.hub.room_of(peer).map(|r| r.work_order) else {
                    let _ = reply.send(Err((codes::CONFLICT, "join a session first".into())));
                    return;
                };
                let from_name = self.peers.get(&peer).map(|p| p.name.clone()).unwrap_or_default();
                let title = self.titles.get(&wo).map(|t| t.0.clone()).unwrap_or_default();
                let targets: Vec<PeerId> = self
                    .peers
                    .iter()
                    .filter(|(p, i)| **p != peer && i.principal.user_id == Some(user) && matches!(i.principal.role, Role::Expert | Role::Admin))
                    .map(|(p, _)| *p)
                    .collect();
                if targets.is_empty() {
                    let _ = reply.send(Err((codes::NOT_FOUND, "that expert is not connected".into())));
                    return;
                }
                for t in targets {
                    self.send(t, ServerMsg::Invitation { work_order_id: wo, from_name: from_name.clone(), title: title.clone() });
                }
                let _ = reply.send(Ok(()));
            }
            HubCmd::Experts { reply } => {
                let mut items: Vec<super::protocol::ExpertView> = self
                    .peers
                    .iter()
                    .filter(|(_, i)| i.principal.role == Role::Expert)
                    .filter_map(|(p, i)| {
                        Some(super::protocol::ExpertView { user_id: i.principal.user_id?, name: i.name.clone(), busy: self.hub.room_of(*p).is_some() })
                    })
                    .collect();
                items.sort_by(|a, b| a.name.cmp(&b.name).then(a.user_id.cmp(&b.user_id)));
                items.dedup_by(|a, b| a.user_id == b.user_id);
                let _ = reply.send(Ok(items));
            }
            HubCmd::Guidance { peer, cmd, reply } => {
                let r = self.guidance_cmd(peer, cmd).await;
                let _ = reply.send(r);
            }
            HubCmd::Anchored { work_order, moved } => {
                for m in moved {
                    let Some(m) = self.anchors.get_mut(&work_order).and_then(|a| a.ledger.accept(m)) else { continue };
                    self.broadcast(work_order, None, moved_msg(m));
                }
            }
            HubCmd::Left { peer } => {
                let effects = self.hub.left(peer, now);
                self.run(effects, Some(peer)).await;
                for room in self.rooms.values() {
                    room.unpublish(peer);
                }
                self.peers.remove(&peer);
                let hub = &self.hub;
                self.titles.retain(|wo, _| hub.position(*wo).is_some() || hub.room(*wo).is_some());
                self.lines.retain(|wo, _| hub.position(*wo).is_some() || hub.room(*wo).is_some());
            }
        }
    }

    /// Applies a guidance command in the sender's session, records what it produced on
    /// the work order (before anyone is told), and tells the participants.
    async fn guidance_cmd(&mut self, peer: PeerId, cmd: GuidanceCmd) -> Result<(), Refusal> {
        let wo = self.hub.room_of(peer).map(|r| r.work_order).ok_or((codes::CONFLICT, "join a session first".to_owned()))?;
        let refuse = |e: GuidanceError| (codes::CONFLICT, e.to_string());
        let g = self.guidance.entry(wo).or_default();
        let outputs = match cmd {
            GuidanceCmd::Push(p) => {
                let (id, version) = (p.id.clone(), p.version);
                let out = g.push(p).map_err(refuse)?;
                let actor = self.actor_of(Some(peer));
                self.append(wo, Command::RecordSession(Event::ProcedureStarted { procedure_id: id, version }), &actor).await?;
                out
            }
            GuidanceCmd::Answer { procedure_id, index, answer, note } => g.answer(&procedure_id, index, answer, note).map_err(refuse)?,
            GuidanceCmd::Control(c) => g.control(c).map_err(refuse)?,
            GuidanceCmd::Annotate(shape) => {
                g.annotate(&shape).map_err(|e| match e {
                    GuidanceError::BadShape(m) => (codes::MALFORMED, m),
                    other => refuse(other),
                })?;
                self.anchor(wo, |l| l.put(&shape));
                self.broadcast(wo, Some(peer), ServerMsg::Annotation { from: peer, shape });
                return Ok(());
            }
            GuidanceCmd::Remove(id) => {
                g.remove(&id).map_err(|e| (codes::NOT_FOUND, e.to_string()))?;
                self.anchor(wo, |l| l.remove(&id));
                self.broadcast(wo, Some(peer), ServerMsg::AnnotationRemoved { from: peer, shape_id: id });
                return Ok(());
            }
            GuidanceCmd::Clear => {
                g.clear();
                self.anchor(wo, AnchorLedger::clear);
                self.broadcast(wo, Some(peer), ServerMsg::AnnotationsCleared { from: peer });
                return Ok(());
            }
        };
        self.guidance_outputs(wo, Some(peer), outputs).await
    }

    async fn guidance_outputs(&mut self, wo: WorkOrderId, by: Option<PeerId>, outputs: Vec<Output>) -> Result<(), Refusal> {
        let actor = self.actor_of(by);
        for o in outputs {
            match o {
                Output::Show { card, via } => {
                    let ev = Event::StepShown { procedure_id: card.procedure_id.clone(), version: card.version, index: card.index, via: via.into() };
                    self.append(wo, Command::RecordSession(ev), &actor).await?;
                    self.broadcast(wo, None, ServerMsg::StepCard { work_order_id: wo, card });
                }
                Output::Answered { procedure_id, version, index, answer, note } => {
                    let a = serde_json::to_value(answer).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                    let ev = Event::StepAnswered { procedure_id: procedure_id.clone(), version, index, answer: a, note: note.clone() };
                    self.append(wo, Command::RecordSession(ev), &actor).await?;
                    self.broadcast(wo, by, ServerMsg::StepAnswered { work_order_id: wo, procedure_id, index, answer, note });
                }
                Output::Finished { procedure_id, version, outcome, steps_done, total } => {
                    let ev = Event::ProcedureFinished { procedure_id: procedure_id.clone(), version, outcome: outcome.into(), steps_done, total };
                    self.append(wo, Command::RecordSession(ev), &actor).await?;
                    self.broadcast(wo, None, ServerMsg::ProcedureFinished { work_order_id: wo, procedure_id, outcome: outcome.into(), steps_done, total });
                }
            }
        }
        Ok(())
    }

    /// Records a change to a session's anchored shapes and tells its anchoring task,
    /// starting the task for the first anchored shape (docs/anchoring.md).
    fn anchor(&mut self, wo: WorkOrderId, change: impl FnOnce(&mut AnchorLedger) -> Option<AnchorCmd>) {
        if self.anchoring.fps == 0 {
            return;
        }
        let a = self.anchors.entry(wo).or_default();
        let Some(cmd) = change(&mut a.ledger) else { return };
        if a.task.as_ref().is_none_or(|t| t.is_closed()) {
            let Some(room) = self.rooms.get(&wo) else { return };
            if !matches!(cmd, AnchorCmd::Put { .. }) {
                return;
            }
            a.task = Some(super::live::spawn_anchoring(room.clone(), self.anchoring.clone(), self.me.clone(), wo));
        }
        if let Some(t) = &a.task {
            let _ = t.send(cmd);
        }
    }

    /// Sends to every connected participant of a session except `except`.
    fn broadcast(&self, wo: WorkOrderId, except: Option<PeerId>, msg: ServerMsg) {
        if let Some(room) = self.hub.room(wo) {
            for p in room.participants.iter().filter(|p| p.connected && Some(p.peer) != except) {
                self.send(p.peer, msg.clone());
            }
        }
    }

    /// What a participant who (re)joins must see: the current card and the annotations.
    fn catch_up(&self, wo: WorkOrderId, peer: PeerId) {
        if let Some(g) = self.guidance.get(&wo) {
            if let Some(card) = g.current() {
                self.send(peer, ServerMsg::StepCard { work_order_id: wo, card });
            }
            for shape in g.shapes() {
                self.send(peer, ServerMsg::Annotation { from: PeerId(0), shape: shape.clone() });
            }
        }
        // Where the anchored ones are now.
        for m in self.anchors.get(&wo).into_iter().flat_map(|a| a.ledger.positions()) {
            self.send(peer, moved_msg(m.clone()));
        }
    }

    fn send(&self, peer: PeerId, msg: ServerMsg) {
        if let Some(p) = self.peers.get(&peer) {
            // A full outbox means a stuck client: it misses this message rather than
            // stalling everyone else.
            let _ = p.outbox.try_send(msg);
        }
    }

    fn actor_of(&self, peer: Option<PeerId>) -> Actor {
        peer.and_then(|p| self.peers.get(&p)).map(|p| p.principal.actor()).unwrap_or(Actor::SYSTEM)
    }

    fn view(&self, peer: PeerId, part: Part) -> ParticipantView {
        ParticipantView { peer, part, name: self.peers.get(&peer).map(|p| p.name.clone()).unwrap_or_default() }
    }

    async fn append(&self, wo: WorkOrderId, cmd: Command, actor: &Actor) -> Result<(), Refusal> {
        repo::append(&self.db, wo, cmd, actor, &self.sla).await.map(|_| ()).map_err(|e| match e {
            repo::AppendError::NotFound => (codes::NOT_FOUND, "work order not found".to_owned()),
            repo::AppendError::Decide(d) => (codes::CONFLICT, d.to_string()),
            repo::AppendError::Store(s) => {
                tracing::error!(error = %s, "session event not stored");
                (codes::INTERNAL, "the session could not be recorded".to_owned())
            }
        })
    }

    /// new -> triaged -> in_remote_session, by the accepting expert.
    async fn enter_session(&self, wo: WorkOrderId, expert: PeerId) -> Result<(), Refusal> {
        let actor = self.actor_of(Some(expert));
        let current = repo::get(&self.db, wo).await.map_err(|e| (codes::INTERNAL, e.to_string()))?.ok_or((codes::NOT_FOUND, "work order not found".to_owned()))?;
        if current.status == Status::New {
            self.append(wo, Command::Transition { to: Status::Triaged, reason: Some("accepted for a remote session".into()) }, &actor).await?;
        }
        self.append(wo, Command::Transition { to: Status::InRemoteSession, reason: None }, &actor).await
    }

    fn send_queue_snapshot(&self, only: Option<PeerId>) {
        let now = crate::now_millis();
        let items: Vec<QueueItem> = self
            .hub
            .queue()
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let (title, priority, tier) = self.titles.get(&w.work_order).cloned().unwrap_or_default();
                QueueItem { work_order_id: w.work_order, position: i + 1, priority, tier, waiting_seconds: (now - w.since) / 1000, title }
            })
            .collect();
        for (peer, info) in &self.peers {
            if info.online_expert && only.is_none_or(|o| o == *peer) {
                // Each expert sees the calls of their product lines (positions stay global).
                let mine = items
                    .iter()
                    .filter(|i| crate::auth::skills::covers(info.skills.as_deref(), self.lines.get(&i.work_order_id).map(String::as_str)))
                    .cloned()
                    .collect();
                self.send(*peer, ServerMsg::Queue { items: mine });
            }
        }
    }

    async fn run(&mut self, effects: Vec<Effect>, by: Option<PeerId>) {
        for e in effects {
            match e {
                Effect::QueueChanged => {
                    let experts = self.peers.values().filter(|p| p.online_expert).count().max(1) as u64;
                    for (i, w) in self.hub.queue().iter().enumerate() {
                        let eta = (i as u64 + 1) * self.avg_session_secs / experts;
                        self.send(w.peer, ServerMsg::QueuePosition { work_order_id: w.work_order, position: i + 1, eta_seconds: eta });
                    }
                    self.send_queue_snapshot(None);
                }
                Effect::RoomOpened { work_order, expert, customer } => {
                    for (peer, part) in [(customer, Part::Customer), (expert, Part::Expert)] {
                        let actor = self.actor_of(Some(peer));
                        let ev = Event::SessionJoined { part: part.to_string(), who: actor.who.to_string() };
                        let _ = self.append(work_order, Command::RecordSession(ev), &actor).await;
                    }
                    let participants = vec![self.view(customer, Part::Customer), self.view(expert, Part::Expert)];
                    for p in [customer, expert] {
                        self.send(p, ServerMsg::SessionStarted { work_order_id: work_order, participants: participants.clone() });
                    }
                }
                Effect::Joined { work_order, peer, part } => {
                    let who = self.actor_of(Some(peer)).who.to_string();
                    let _ = self.append(work_order, Command::RecordSession(Event::SessionJoined { part: part.to_string(), who }), &self.actor_of(Some(peer))).await;
                    let Some(room) = self.hub.room(work_order) else { continue };
                    let others: Vec<(PeerId, Part)> = room.participants.iter().filter(|p| p.connected).map(|p| (p.peer, p.part)).collect();
                    let view = self.view(peer, part);
                    let all: Vec<ParticipantView> = others.iter().map(|(p, part)| self.view(*p, *part)).collect();
                    for (p, _) in &others {
                        if *p == peer {
                            self.send(peer, ServerMsg::SessionStarted { work_order_id: work_order, participants: all.clone() });
                            self.catch_up(work_order, peer);
                        } else {
                            self.send(*p, ServerMsg::ParticipantJoined { work_order_id: work_order, participant: view.clone() });
                        }
                    }
                }
                Effect::Left { work_order, peer, part, connected_ms } => {
                    let actor = self.actor_of(Some(peer));
                    let ev = Event::SessionLeft { part: part.to_string(), who: actor.who.to_string(), connected_ms };
                    let _ = self.append(work_order, Command::RecordSession(ev), &actor).await;
                    if let Some(room) = self.hub.room(work_order) {
                        for p in room.participants.iter().filter(|p| p.connected) {
                            self.send(p.peer, ServerMsg::ParticipantLeft { work_order_id: work_order, peer });
                        }
                    }
                }
                Effect::Ended { work_order, outcome, duration_ms, participants } => {
                    if let Some(Output::Finished { procedure_id, version, outcome, steps_done, total }) = self.guidance.remove(&work_order).and_then(|mut g| g.end()) {
                        // The room is gone from the state machine: tell its last participants.
                        let ev = Event::ProcedureFinished { procedure_id: procedure_id.clone(), version, outcome: outcome.into(), steps_done, total };
                        let _ = self.append(work_order, Command::RecordSession(ev), &self.actor_of(by)).await;
                        for p in participants.iter().filter(|p| p.connected) {
                            let msg = ServerMsg::ProcedureFinished { work_order_id: work_order, procedure_id: procedure_id.clone(), outcome: outcome.into(), steps_done, total };
                            self.send(p.peer, msg);
                        }
                    }
                    let actor = self.actor_of(by);
                    let reconnects = participants.iter().map(|p| p.reconnects).sum();
                    let ev = Event::SessionEnded { outcome: outcome.to_string(), duration_ms, participants: participants.len() as u32, reconnects };
                    let _ = self.append(work_order, Command::RecordSession(ev), &actor).await;
                    let to = match outcome {
                        Outcome::ResolvedRemote => Status::ResolvedRemote,
                        Outcome::NeedsEscalation => Status::Escalated,
                        Outcome::CustomerUnreachable | Outcome::Abandoned => Status::Triaged,
                    };
                    let reason = Some(format!("remote session ended: {outcome}"));
                    if let Err(e) = self.append(work_order, Command::Transition { to, reason }, &actor).await {
                        tracing::warn!(work_order = %work_order, error = %e.1, "session outcome not applied");
                    }
                    for p in participants.iter().filter(|p| p.connected) {
                        self.send(p.peer, ServerMsg::Ended { work_order_id: work_order, outcome });
                    }
                    // Dropping the anchoring task's sender stops it.
                    self.anchors.remove(&work_order);
                    if let Some(room) = self.rooms.remove(&work_order) {
                        room.end();
                    }
                    self.titles.remove(&work_order);
                    self.lines.remove(&work_order);
                }
            }
        }
    }
}

fn moved_msg(m: Moved) -> ServerMsg {
    ServerMsg::AnnotationMoved { shape_id: m.shape_id, points: m.points, tracking: m.state, rtp_timestamp: m.rtp_timestamp }
}

/// Which part a principal plays when joining a running session.
pub fn part_for(role: Role) -> Part {
    match role {
        Role::Customer => Part::Customer,
        Role::Expert => Part::Expert,
        _ => Part::Observer,
    }
}
