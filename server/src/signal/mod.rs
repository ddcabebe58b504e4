//! Signaling over WebSocket at `/api/v1/signal`: authentication, the queue, sessions,
//! and the JSEP offer/answer and trickle-ICE exchange for each participant's two peer
//! connections (publish and subscribe, see `media::room`).
//!
//! One task per connection reads the client's messages in order and owns that
//! participant's peer connections; the hub task (`hub`) owns the queue and the rooms.
//! Limits: a message is at most `MAX_MESSAGE_BYTES`; a client may send `RATE_PER_SEC`
//! messages a second on average; each bad message is answered with an `error` and counts
//! as a strike, and `MAX_STRIKES` strikes close the socket with a reason (1008). A client
//! must authenticate within `AUTH_TIMEOUT`.

pub mod hub;
mod live;
pub mod protocol;
pub mod whip;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, oneshot, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

use crate::auth::tokens::Claims;
use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::http::AppState;
use crate::ids::WorkOrderId;
use crate::media::room::MediaRoom;
use crate::media::{self, MediaSettings};
use crate::session::{Part, PeerId};
use crate::work_orders::model::Status;
use crate::guidance::live::StepControl;
use hub::{GuidanceCmd, HubCmd, Refusal};
use protocol::{codes, Candidate, ClientEnvelope, ClientMsg, Leg, ServerMsg, PROTOCOL_VERSION};

pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const MAX_CHAT_CHARS: usize = 2_000;
pub const RATE_PER_SEC: f64 = 20.0;
pub const BURST: f64 = 60.0;
pub const MAX_STRIKES: u32 = 10;
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the signaling endpoint shares.
pub struct SignalState {
    pub hub: mpsc::Sender<HubCmd>,
    pub media: MediaSettings,
    next_peer: AtomicU64,
    /// WHIP and WHEP resources by id.
    pub http_media: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, whip::Resource>>,
}

impl SignalState {
    pub fn new(hub: mpsc::Sender<HubCmd>, media: MediaSettings) -> Self {
        SignalState { hub, media, next_peer: AtomicU64::new(1), http_media: Default::default() }
    }

    /// A fresh peer id (WebSocket connections and WHIP/WHEP resources share the space).
    pub fn next_peer(&self) -> PeerId {
        PeerId(self.next_peer.fetch_add(1, Ordering::Relaxed))
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/signal", get(upgrade)).merge(whip::router())
}

async fn upgrade(State(state): State<AppState>, ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>) -> Response {
    let Ok(ws) = ws else {
        return ApiError::BadRequest("connect with a WebSocket (Upgrade: websocket)".into()).into_response();
    };
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let peer = state.signal.next_peer();
            Connection::new(state, peer).run(socket).await
        })
}

/// A client-facing error: stable code and message.
struct Fail(&'static str, String);

impl From<Refusal> for Fail {
    fn from((code, msg): Refusal) -> Self {
        Fail(code, msg)
    }
}

impl From<media::MediaError> for Fail {
    fn from(e: media::MediaError) -> Self {
        Fail(codes::MEDIA, e.to_string())
    }
}

/// One of the participant's peer connections.
struct PeerLeg {
    pc: Arc<dyn PeerConnection>,
}

enum Internal {
    DataChannel(Arc<dyn DataChannel>),
    /// A typed message that arrived on the participant's data channel.
    DataChannelMessage(String),
}

struct Connection {
    state: AppState,
    peer: PeerId,
    principal: Option<Principal>,
    outbox: mpsc::Sender<ServerMsg>,
    outbox_rx: Option<mpsc::Receiver<ServerMsg>>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: Option<mpsc::UnboundedReceiver<Internal>>,
    room: Option<(WorkOrderId, Arc<MediaRoom>)>,
    publish: Option<PeerLeg>,
    subscribe: Option<PeerLeg>,
    dc: Option<Arc<dyn DataChannel>>,
    strikes: u32,
    tokens: f64,
    last_refill: Instant,
    subscribed_tracks: Option<usize>,
    /// Candidates that arrived before their leg had a remote description (a client
    /// may start trickling before its offer or answer is processed).
    early_candidates: Vec<(Leg, RTCIceCandidateInit)>,
}

/// Most early candidates kept per connection.
const MAX_EARLY_CANDIDATES: usize = 64;

impl Connection {
    fn new(state: AppState, peer: PeerId) -> Self {
        let (outbox, outbox_rx) = mpsc::channel(256);
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        Connection {
            state,
            peer,
            principal: None,
            outbox,
            outbox_rx: Some(outbox_rx),
            internal_tx,
            internal_rx: Some(internal_rx),
            room: None,
            publish: None,
            subscribe: None,
            dc: None,
            strikes: 0,
            tokens: BURST,
            last_refill: Instant::now(),
            subscribed_tracks: None,
            early_candidates: Vec::new(),
        }
    }

    /// Applies the early candidates of `leg` once its remote description is set.
    async fn flush_candidates(&mut self, leg: Leg) {
        let target = match leg {
            Leg::Publish => self.publish.as_ref().map(|l| l.pc.clone()),
            Leg::Subscribe => self.subscribe.as_ref().map(|l| l.pc.clone()),
        };
        let Some(pc) = target else { return };
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early_candidates).into_iter().partition(|(l, _)| *l == leg);
        self.early_candidates = rest;
        for (_, c) in mine {
            let _ = pc.add_ice_candidate(c).await;
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let mut outbox_rx = self.outbox_rx.take().expect("taken once");
        let mut internal_rx = self.internal_rx.take().expect("taken once");
        let _ = send_json(&mut socket, &ServerMsg::Hello { v: PROTOCOL_VERSION, peer: self.peer }).await;
        let auth_deadline = tokio::time::sleep(AUTH_TIMEOUT);
        tokio::pin!(auth_deadline);
        let mut tracks_rx: Option<watch::Receiver<u64>> = None;
        let close_reason = loop {
            let tracks_changed = async {
                match tracks_rx.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                incoming = socket.recv() => {
                    let Some(Ok(msg)) = incoming else { break None };
                    let text = match msg {
                        Message::Text(t) => t.to_string(),
                        Message::Binary(_) => {
                            if let Some(r) = self.strike(&mut socket, None, codes::MALFORMED, "send JSON text frames").await { break Some(r) }
                            continue;
                        }
                        Message::Close(_) => break None,
                        _ => continue,
                    };
                    if !self.take_token() {
                        if let Some(r) = self.strike(&mut socket, None, codes::RATE_LIMITED, "too many messages; slow down").await { break Some(r) }
                        continue;
                    }
                    let env: ClientEnvelope = match serde_json::from_str(&text) {
                        Ok(e) => e,
                        Err(e) => {
                            let m = format!("not a valid message: {e}");
                            if let Some(r) = self.strike(&mut socket, None, codes::MALFORMED, &m).await { break Some(r) }
                            continue;
                        }
                    };
                    if env.v != PROTOCOL_VERSION {
                        let m = format!("protocol version {} is not supported; use {PROTOCOL_VERSION}", env.v);
                        if let Some(r) = self.strike(&mut socket, env.id.clone(), codes::UNSUPPORTED_VERSION, &m).await { break Some(r) }
                        continue;
                    }
                    let id = env.id.clone();
                    match self.handle(env.msg, &mut tracks_rx).await {
                        Ok(Some(reply)) => { let _ = send_json(&mut socket, &reply).await; }
                        Ok(None) => { let _ = send_json(&mut socket, &ServerMsg::Ack { id }).await; }
                        Err(Fail(code, message)) => {
                            if let Some(r) = self.strike(&mut socket, id, code, &message).await { break Some(r) }
                        }
                    }
                }
                Some(out) = outbox_rx.recv() => {
                    // Chat, annotations and step cards go over the data channel when the
                    // participant has one open (the socket is the fallback).
                    let dc_kind = matches!(
                        out,
                        ServerMsg::Chat { .. }
                            | ServerMsg::Annotation { .. }
                            | ServerMsg::AnnotationMoved { .. }
                            | ServerMsg::AnnotationRemoved { .. }
                            | ServerMsg::AnnotationsCleared { .. }
                            | ServerMsg::StepCard { .. }
                    );
                    if let (true, Some(dc)) = (dc_kind, &self.dc) {
                        if let Ok(text) = serde_json::to_string(&out) {
                            if dc.send_text(&text).await.is_ok() {
                                continue;
                            }
                        }
                    }
                    if send_json(&mut socket, &out).await.is_err() { break None }
                    if matches!(out, ServerMsg::SessionStarted { .. }) && self.room.is_none() {
                        let peer = self.peer;
                        if let Ok((wo, room)) = self.ask(|reply| HubCmd::RoomOf { peer, reply }).await {
                            tracks_rx = Some(room.track_changes());
                            self.room = Some((wo, room));
                        }
                    }
                    if matches!(out, ServerMsg::Ended { .. }) {
                        self.close_media().await;
                        tracks_rx = None;
                    }
                }
                Some(ev) = internal_rx.recv() => match ev {
                    Internal::DataChannel(dc) => { self.dc = Some(dc); }
                    Internal::DataChannelMessage(text) => {
                        // Same limits and handling as the socket; replies go on the socket.
                        if !self.take_token() {
                            if let Some(r) = self.strike(&mut socket, None, codes::RATE_LIMITED, "too many messages; slow down").await { break Some(r) }
                            continue;
                        }
                        let env: ClientEnvelope = match serde_json::from_str(&text) {
                            Ok(e) => e,
                            Err(e) => {
                                let m = format!("not a valid data-channel message: {e}");
                                if let Some(r) = self.strike(&mut socket, None, codes::MALFORMED, &m).await { break Some(r) }
                                continue;
                            }
                        };
                        let allowed = matches!(
                            env.msg,
                            ClientMsg::Chat { .. } | ClientMsg::Annotate { .. } | ClientMsg::AnnotationRemove { .. } | ClientMsg::AnnotationClear | ClientMsg::StepAnswer { .. } | ClientMsg::StepControl { .. }
                        );
                        if !allowed {
                            if let Some(r) = self.strike(&mut socket, env.id.clone(), codes::MALFORMED, "only chat, annotations and step messages travel on the data channel").await { break Some(r) }
                            continue;
                        }
                        let id = env.id.clone();
                        match self.handle(env.msg, &mut tracks_rx).await {
                            Ok(_) => {}
                            Err(Fail(code, message)) => {
                                if let Some(r) = self.strike(&mut socket, id, code, &message).await { break Some(r) }
                            }
                        }
                    }
                },
                changed = tracks_changed => {
                    if !changed { tracks_rx = None; continue }
                    if let Some((_, room)) = &self.room {
                        let others = room.tracks().iter().filter(|t| t.owner != self.peer).count();
                        if self.subscribed_tracks.unwrap_or(0) != others {
                            self.subscribed_tracks = Some(others);
                            let _ = send_json(&mut socket, &ServerMsg::TracksChanged { tracks: others }).await;
                        }
                    }
                }
                _ = &mut auth_deadline, if self.principal.is_none() => {
                    break Some("authenticate within 10 seconds".to_owned());
                }
            }
        };
        if let Some(reason) = close_reason {
            let _ = socket.send(Message::Close(Some(CloseFrame { code: 1008, reason: reason.into() }))).await;
        }
        let _ = self.state.signal.hub.send(HubCmd::Left { peer: self.peer }).await;
        self.close_media().await;
    }

    fn take_token(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last_refill).as_secs_f64() * RATE_PER_SEC).min(BURST);
        self.last_refill = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Answers with an error; returns a close reason once the client has too many strikes.
    async fn strike(&mut self, socket: &mut WebSocket, id: Option<String>, code: &str, message: &str) -> Option<String> {
        self.strikes += 1;
        let _ = send_json(socket, &ServerMsg::Error { id, code: code.to_owned(), message: message.to_owned() }).await;
        (self.strikes >= MAX_STRIKES).then(|| format!("too many bad messages ({code})"))
    }

    async fn close_media(&mut self) {
        for leg in [self.publish.take(), self.subscribe.take()].into_iter().flatten() {
            let _ = leg.pc.close().await;
        }
        self.dc = None;
        if self.room.take().is_some() {
            self.subscribed_tracks = None;
        }
    }

    fn principal(&self) -> Result<&Principal, Fail> {
        self.principal.as_ref().ok_or(Fail(codes::UNAUTHORIZED, "send `auth` first".into()))
    }

    fn require(&self, roles: &[Role], what: &str) -> Result<&Principal, Fail> {
        let p = self.principal()?;
        if roles.contains(&p.role) {
            Ok(p)
        } else {
            Err(Fail(codes::FORBIDDEN, format!("the {} role may not {what}", p.role)))
        }
    }

    fn room(&self) -> Result<Arc<MediaRoom>, Fail> {
        self.room.as_ref().map(|(_, r)| r.clone()).ok_or(Fail(codes::CONFLICT, "join a session first".into()))
    }

    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<Result<T, Refusal>>) -> HubCmd) -> Result<T, Fail> {
        let (tx, rx) = oneshot::channel();
        self.state.signal.hub.send(cmd(tx)).await.map_err(|_| Fail(codes::INTERNAL, "the session service stopped".into()))?;
        rx.await.map_err(|_| Fail(codes::INTERNAL, "the session service stopped".into()))?.map_err(Fail::from)
    }

    async fn handle(&mut self, msg: ClientMsg, tracks_rx: &mut Option<watch::Receiver<u64>>) -> Result<Option<ServerMsg>, Fail> {
        match msg {
            ClientMsg::Auth { token } => {
                if self.principal.is_some() {
                    return Err(Fail(codes::CONFLICT, "already authenticated".into()));
                }
                let p = self.authenticate(&token).await?;
                let name = match p.user_id {
                    Some(u) => crate::auth::repo::user_by_id(&self.state.db, u).await.ok().flatten().map(|u| u.display_name).unwrap_or_default(),
                    None => "Customer".to_owned(),
                };
                let cmd = HubCmd::Register { peer: self.peer, principal: p.clone(), name, outbox: self.outbox.clone() };
                self.state.signal.hub.send(cmd).await.map_err(|_| Fail(codes::INTERNAL, "the session service stopped".into()))?;
                self.principal = Some(p);
                let m = &self.state.signal.media;
                let ice_servers = media::turn::ice_servers(&m.stun_urls, &m.turn_urls, &m.turn_secret, m.turn_ttl_secs, &format!("peer-{}", self.peer.0), crate::now_millis() / 1000);
                let _ = self.outbox.try_send(ServerMsg::IceServers { ice_servers });
                Ok(None)
            }
            ClientMsg::Queue { work_order_id } => {
                let p = self.require(&[Role::Customer], "wait in the queue")?.clone();
                let w = crate::work_orders::repo::get(&self.state.db, work_order_id)
                    .await
                    .map_err(|e| Fail(codes::INTERNAL, e.to_string()))?
                    .filter(|w| p.may_see_work_order(w.id, w.customer_id))
                    .ok_or(Fail(codes::NOT_FOUND, "work order not found".into()))?;
                if !matches!(w.status, Status::New | Status::Triaged) {
                    return Err(Fail(codes::CONFLICT, format!("the work order is {} and cannot wait for a remote session", w.status)));
                }
                let product_line = match w.asset_id {
                    Some(a) => match crate::customers::repo::asset(&self.state.db, a).await.map_err(|e| Fail(codes::INTERNAL, e.to_string()))? {
                        Some(asset) => crate::customers::repo::product_line(&self.state.db, asset.product_line_id)
                            .await
                            .map_err(|e| Fail(codes::INTERNAL, e.to_string()))?
                            .map(|l| l.code),
                        None => None,
                    },
                    None => None,
                };
                let peer = self.peer;
                self.ask(|reply| HubCmd::Queue { peer, work_order: Box::new(w), product_line, reply }).await?;
                Ok(None)
            }
            ClientMsg::Online => {
                let p = self.require(&[Role::Expert, Role::Admin], "take calls")?;
                // Admins take every line; experts those configured (none: every line).
                let skills = match (p.role, p.user_id) {
                    (Role::Expert, Some(u)) => crate::auth::skills::of(&self.state.db, u).await.map_err(|e| Fail(codes::INTERNAL, e.to_string()))?,
                    _ => None,
                };
                self.state.signal.hub.send(HubCmd::Online { peer: self.peer, skills }).await.map_err(|_| Fail(codes::INTERNAL, "stopped".into()))?;
                Ok(None)
            }
            ClientMsg::Accept { work_order_id } => {
                self.require(&[Role::Expert, Role::Admin], "accept calls")?;
                if self.room.is_some() {
                    return Err(Fail(codes::CONFLICT, "leave your current session first".into()));
                }
                let peer = self.peer;
                let room = self.ask(|reply| HubCmd::Accept { peer, work_order: work_order_id, reply }).await?;
                *tracks_rx = Some(room.track_changes());
                self.room = Some((work_order_id, room));
                Ok(None)
            }
            ClientMsg::Join { work_order_id } => {
                let p = self.principal()?.clone();
                if p.role == Role::Customer {
                    let w = crate::work_orders::repo::get(&self.state.db, work_order_id).await.map_err(|e| Fail(codes::INTERNAL, e.to_string()))?;
                    if !w.is_some_and(|w| p.may_see_work_order(w.id, w.customer_id)) {
                        return Err(Fail(codes::NOT_FOUND, "work order not found".into()));
                    }
                }
                if self.room.is_some() {
                    return Err(Fail(codes::CONFLICT, "leave your current session first".into()));
                }
                let (peer, part) = (self.peer, hub::part_for(p.role));
                let room = self.ask(|reply| HubCmd::Join { peer, work_order: work_order_id, part, reply }).await?;
                *tracks_rx = Some(room.track_changes());
                self.room = Some((work_order_id, room));
                Ok(None)
            }
            ClientMsg::Publish { sdp } => self.publish(sdp).await.map(Some),
            ClientMsg::Subscribe => self.subscribe().await.map(Some),
            ClientMsg::SubscribeAnswer { sdp } => {
                let leg = self.subscribe.as_ref().ok_or(Fail(codes::CONFLICT, "send `subscribe` first".into()))?;
                let answer = RTCSessionDescription::answer(sdp).map_err(|e| Fail(codes::MALFORMED, format!("bad SDP answer: {e}")))?;
                leg.pc.set_remote_description(answer).await.map_err(|e| Fail(codes::MALFORMED, format!("the answer was refused: {e}")))?;
                self.flush_candidates(Leg::Subscribe).await;
                Ok(None)
            }
            ClientMsg::Candidate { leg, candidate } => {
                self.principal()?;
                if candidate.candidate.len() > 1024 {
                    return Err(Fail(codes::TOO_LARGE, "a candidate is at most 1024 bytes".into()));
                }
                let init = RTCIceCandidateInit {
                    candidate: candidate.candidate,
                    sdp_mid: candidate.sdp_mid,
                    sdp_mline_index: candidate.sdp_mline_index,
                    username_fragment: candidate.username_fragment,
                    ..Default::default()
                };
                let target = match leg {
                    Leg::Publish => self.publish.as_ref(),
                    Leg::Subscribe => self.subscribe.as_ref(),
                };
                let ready = match target {
                    Some(l) => l.pc.remote_description().await.is_some(),
                    None => false,
                };
                if !ready {
                    if self.early_candidates.len() >= MAX_EARLY_CANDIDATES {
                        return Err(Fail(codes::TOO_LARGE, "too many candidates before the offer".into()));
                    }
                    self.early_candidates.push((leg, init));
                    return Ok(None);
                }
                let pc = target.expect("ready implies the leg exists").pc.clone();
                pc.add_ice_candidate(init).await.map_err(|e| Fail(codes::MALFORMED, format!("bad candidate: {e}")))?;
                Ok(None)
            }
            ClientMsg::Chat { text } => {
                self.principal()?;
                self.room()?;
                if text.chars().count() > MAX_CHAT_CHARS {
                    return Err(Fail(codes::TOO_LARGE, format!("chat messages are at most {MAX_CHAT_CHARS} characters")));
                }
                self.relay(ServerMsg::Chat { from: self.peer, text }, false).await?;
                Ok(None)
            }
            ClientMsg::Control { action, value } => {
                self.require(&[Role::Expert, Role::Admin], "control the customer's camera")?;
                self.room()?;
                const ACTIONS: [&str; 5] = ["mute", "unmute", "switch_camera", "torch", "zoom"];
                if !ACTIONS.contains(&action.as_str()) {
                    return Err(Fail(codes::MALFORMED, format!("unknown control `{action}`; use one of {}", ACTIONS.join(", "))));
                }
                self.relay(ServerMsg::Control { from: self.peer, action, value }, true).await?;
                Ok(None)
            }
            ClientMsg::Leave => {
                self.principal()?;
                self.state.signal.hub.send(HubCmd::Left { peer: self.peer }).await.map_err(|_| Fail(codes::INTERNAL, "stopped".into()))?;
                // Stay registered for the queue and other sessions.
                let p = self.principal.clone().expect("checked");
                let cmd = HubCmd::Register { peer: self.peer, principal: p, name: String::new(), outbox: self.outbox.clone() };
                let _ = self.state.signal.hub.send(cmd).await;
                self.close_media().await;
                *tracks_rx = None;
                Ok(None)
            }
            ClientMsg::End { outcome } => {
                self.require(&[Role::Expert, Role::Admin], "end a session")?;
                let peer = self.peer;
                self.ask(|reply| HubCmd::End { peer, outcome, reply }).await?;
                Ok(None)
            }
            ClientMsg::Snapshot => {
                self.require(&[Role::Expert, Role::Admin], "take snapshots")?;
                if !self.room()?.request_snapshot() {
                    return Err(Fail(codes::CONFLICT, "no customer video is being diagnosed in this session".into()));
                }
                Ok(None)
            }
            ClientMsg::Ping => Ok(Some(ServerMsg::Pong)),
            ClientMsg::PushProcedure { procedure_id, version } => {
                self.require(&[Role::Expert, Role::Admin], "push repair procedures")?;
                self.room()?;
                if procedure_id.len() > 128 {
                    return Err(Fail(codes::TOO_LARGE, "procedure ids are at most 128 characters".into()));
                }
                let stored = crate::guidance::store::get(&self.state.db, &procedure_id, version)
                    .await
                    .map_err(|e| Fail(codes::INTERNAL, e.to_string()))?
                    .ok_or(Fail(codes::NOT_FOUND, format!("no procedure `{procedure_id}`")))?;
                self.guidance(GuidanceCmd::Push(Arc::new(stored.procedure))).await
            }
            ClientMsg::StepAnswer { procedure_id, index, answer, note } => {
                self.require(&[Role::Customer], "answer step cards")?;
                self.room()?;
                if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
                    return Err(Fail(codes::TOO_LARGE, "a note is at most 500 characters".into()));
                }
                self.guidance(GuidanceCmd::Answer { procedure_id, index, answer, note }).await
            }
            ClientMsg::StepControl { action, index } => {
                self.require(&[Role::Expert, Role::Admin], "move through a procedure")?;
                self.room()?;
                let c = match (action.as_str(), index) {
                    ("next", _) => StepControl::Next,
                    ("back", _) => StepControl::Back,
                    ("skip", _) => StepControl::Skip,
                    ("goto", Some(i)) => StepControl::Goto(i),
                    _ => return Err(Fail(codes::MALFORMED, "action is next, back, skip, or goto with an index".into())),
                };
                self.guidance(GuidanceCmd::Control(c)).await
            }
            ClientMsg::Annotate { shape } => {
                self.require(&[Role::Expert, Role::Admin], "annotate the video")?;
                self.room()?;
                self.guidance(GuidanceCmd::Annotate(shape)).await
            }
            ClientMsg::AnnotationRemove { shape_id } => {
                self.require(&[Role::Expert, Role::Admin], "annotate the video")?;
                self.room()?;
                self.guidance(GuidanceCmd::Remove(shape_id)).await
            }
            ClientMsg::InviteExpert { user_id } => {
                self.require(&[Role::Expert, Role::Admin], "invite experts")?;
                self.room()?;
                let peer = self.peer;
                self.ask(|reply| HubCmd::InviteExpert { peer, user: user_id, reply }).await?;
                Ok(None)
            }
            ClientMsg::ListExperts => {
                self.require(&[Role::Expert, Role::Admin], "list experts")?;
                let items = self.ask(|reply| HubCmd::Experts { reply }).await?;
                Ok(Some(ServerMsg::Experts { items }))
            }
            ClientMsg::AnnotationClear => {
                self.require(&[Role::Expert, Role::Admin], "annotate the video")?;
                self.room()?;
                self.guidance(GuidanceCmd::Clear).await
            }
        }
    }

    async fn guidance(&self, cmd: GuidanceCmd) -> Result<Option<ServerMsg>, Fail> {
        let peer = self.peer;
        self.ask(|reply| HubCmd::Guidance { peer, cmd, reply }).await?;
        Ok(None)
    }

    async fn relay(&self, msg: ServerMsg, customers_only: bool) -> Result<(), Fail> {
        self.state
            .signal
            .hub
            .send(HubCmd::Relay { peer: self.peer, msg, customers_only })
            .await
            .map_err(|_| Fail(codes::INTERNAL, "the session service stopped".into()))
    }

    async fn authenticate(&self, token: &str) -> Result<Principal, Fail> {
        let now = crate::now_millis();
        let claims = self.state.key.verify(token.trim(), now / 1000).map_err(|e| Fail(codes::UNAUTHORIZED, e.to_string()))?;
        let Claims::Access { sid, uid, iid, role, cid, wo, .. } = claims else {
            return Err(Fail(codes::UNAUTHORIZED, "redeem the invite link first; send the access token".into()));
        };
        let live = crate::auth::repo::session_is_live(&self.state.db, sid, now).await.map_err(|e| Fail(codes::INTERNAL, e.to_string()))?;
        if !live {
            return Err(Fail(codes::UNAUTHORIZED, "the session has ended; log in again".into()));
        }
        Ok(Principal { user_id: uid, invite_id: iid, role, session_id: sid, customer_id: cid, work_order_scope: wo })
    }

    /// The client's offer for its publishing connection; a repeated offer renegotiates
    /// (an ICE restart after a network change keeps the same connection and room).
    async fn publish(&mut self, sdp: String) -> Result<ServerMsg, Fail> {
        let room = self.room()?;
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| Fail(codes::MALFORMED, format!("bad SDP offer: {e}")))?;
        if self.publish.is_none() {
            let (pc, mut ev) = media::new_peer(&self.state.signal.media, false).await?;
            MediaRoom::prepare_publisher(&pc).await?;
            let (peer, outbox, internal) = (self.peer, self.outbox.clone(), self.internal_tx.clone());
            let hub = self.state.signal.hub.clone();
            let mut cands = std::mem::replace(&mut ev.candidates, mpsc::unbounded_channel().1);
            let out = outbox.clone();
            let media = self.state.signal.media.clone();
            tokio::spawn(async move {
                while let Some(c) = cands.recv().await {
                    let candidate = Candidate { candidate: media.announce(&c.candidate), sdp_mid: c.sdp_mid, sdp_mline_index: c.sdp_mline_index, username_fragment: c.username_fragment };
                    if out.send(ServerMsg::Candidate { leg: Leg::Publish, candidate }).await.is_err() {
                        break;
                    }
                }
            });
            let mut tracks = std::mem::replace(&mut ev.tracks, mpsc::unbounded_channel().1);
            let r = room.clone();
            let diagnose = self.principal.as_ref().is_some_and(|p| p.role == Role::Customer);
            let (app, work_order) = (self.state.clone(), self.room.as_ref().map(|(w, _)| *w));
            tokio::spawn(async move {
                while let Some(t) = tracks.recv().await {
                    let Some(published) = r.publish(peer, t).await else { continue };
                    if let (true, Some(wo), rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video) = (diagnose, work_order, published.kind) {
                        live::spawn(app.clone(), r.clone(), published, peer, wo);
                    }
                }
            });
            let mut dcs = std::mem::replace(&mut ev.data_channels, mpsc::unbounded_channel().1);
            tokio::spawn(async move {
                while let Some(dc) = dcs.recv().await {
                    let _ = internal.send(Internal::DataChannel(dc.clone()));
                    let hub = hub.clone();
                    let internal = internal.clone();
                    tokio::spawn(async move {
                        while let Some(ev) = dc.poll().await {
                            match ev {
                                DataChannelEvent::OnMessage(m) if m.is_string && m.data.len() <= MAX_MESSAGE_BYTES => {
                                    let text = String::from_utf8_lossy(&m.data).into_owned();
                                    // A JSON message (`{"type": "annotate", ...}`) is handled like
                                    // one from the socket; plain text is chat.
                                    if text.starts_with('{') {
                                        let _ = internal.send(Internal::DataChannelMessage(text));
                                    } else {
                                        let text = text.chars().take(MAX_CHAT_CHARS).collect();
                                        let _ = hub.send(HubCmd::Relay { peer, msg: ServerMsg::Chat { from: peer, text }, customers_only: false }).await;
                                    }
                                }
                                DataChannelEvent::OnClose => break,
                                _ => {}
                            }
                        }
                    });
                }
            });
            self.publish = Some(PeerLeg { pc });
        }
        let pc = self.publish.as_ref().expect("just set").pc.clone();
        pc.set_remote_description(offer).await.map_err(|e| Fail(codes::MALFORMED, format!("the offer was refused: {e}")))?;
        let answer = pc.create_answer(None).await.map_err(media::MediaError::rtc)?;
        pc.set_local_description(answer.clone()).await.map_err(media::MediaError::rtc)?;
        self.flush_candidates(Leg::Publish).await;
        Ok(ServerMsg::PublishAnswer { sdp: self.state.signal.media.announce(&answer.sdp) })
    }

    /// A fresh receiving connection with every track the others publish; the server's
    /// offer carries all its candidates (no trickle on this leg).
    async fn subscribe(&mut self) -> Result<ServerMsg, Fail> {
        let room = self.room()?;
        if let Some(old) = self.subscribe.take() {
            let _ = old.pc.close().await;
        }
        let (pc, mut ev) = media::new_peer(&self.state.signal.media, true).await?;
        let tracks = room.subscribe(self.peer, &pc, ev.state.clone()).await?;
        let offer = pc.create_offer(None).await.map_err(media::MediaError::rtc)?;
        pc.set_local_description(offer).await.map_err(media::MediaError::rtc)?;
        let offer = media::gathered_local_description(&pc, &mut ev.gathered).await?;
        self.subscribe = Some(PeerLeg { pc });
        self.subscribed_tracks = Some(tracks);
        Ok(ServerMsg::SubscribeOffer { sdp: self.state.signal.media.announce(&offer.sdp), tracks })
    }
}

async fn send_json(socket: &mut WebSocket, msg: &ServerMsg) -> Result<(), axum::Error> {
    let text = serde_json::to_string(msg).expect("server messages serialize");
    socket.send(Message::Text(text.into())).await
}

/// Which part a principal plays.
pub fn part_of(role: Role) -> Part {
    hub::part_for(role)
}
