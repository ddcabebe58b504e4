//! WHIP ingest (RFC 9725) and WHEP playback for a running session, for fixed cameras,
//! smart glasses and observers that speak plain HTTP: POST an SDP offer
//! (`application/sdp`) with a bearer token, get `201 Created` with the answer (all
//! server candidates included: no trickle needed) and a `Location` to DELETE when done.
//! Trickle and ICE restart over PATCH are not offered (405); a client restarts by
//! creating a new resource.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use tokio::sync::oneshot;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use super::hub::HubCmd;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{self, ApiPath};
use crate::http::AppState;
use crate::ids::WorkOrderId;
use crate::media::room::MediaRoom;
use crate::media::{self, MediaError};
use crate::session::PeerId;

/// Largest SDP accepted.
pub const MAX_SDP_BYTES: usize = 32 * 1024;
/// Most WHIP/WHEP resources at once (each holds a peer connection).
pub const MAX_RESOURCES: usize = 256;

pub struct Resource {
    pub pc: Arc<dyn PeerConnection>,
    pub room: Arc<MediaRoom>,
    pub peer: PeerId,
    pub owner: Principal,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/work-orders/{id}/whip", post(whip))
        .route("/work-orders/{id}/whep", post(whep))
        .route("/media/{resource}", delete(remove).patch(patch))
}

fn sdp_offer(headers: &HeaderMap, body: &Bytes) -> Result<RTCSessionDescription, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/sdp") {
        return Err(ApiError::UnsupportedMediaType("send the offer as application/sdp".into()));
    }
    if body.len() > MAX_SDP_BYTES {
        return Err(ApiError::PayloadTooLarge(format!("an SDP offer is at most {MAX_SDP_BYTES} bytes")));
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("the SDP is not UTF-8".into()))?;
    RTCSessionDescription::offer(text.to_owned()).map_err(|e| ApiError::BadRequest(format!("not a valid SDP offer: {e}")))
}

async fn live_room(state: &AppState, p: &Principal, raw: &str) -> Result<(WorkOrderId, Arc<MediaRoom>), ApiError> {
    let id: WorkOrderId = extract::id(raw, "work order")?;
    let w = crate::work_orders::repo::get(&state.db, id).await?.ok_or_else(|| ApiError::not_found("work order"))?;
    if !p.may_see_work_order(w.id, w.customer_id) {
        return Err(ApiError::not_found("work order"));
    }
    let (tx, rx) = oneshot::channel();
    state.signal.hub.send(HubCmd::MediaRoomOf { work_order: id, reply: tx }).await.map_err(|_| ApiError::Unavailable("the session service stopped".into()))?;
    let room = rx
        .await
        .map_err(|_| ApiError::Unavailable("the session service stopped".into()))?
        .map_err(|(_, m)| ApiError::Conflict(m))?;
    Ok((id, room))
}

fn media_err(e: MediaError) -> ApiError {
    match e {
        MediaError::BadSdp(m) => ApiError::BadRequest(m),
        other => ApiError::Internal(other.to_string()),
    }
}

fn created(state: &AppState, id: uuid::Uuid, answer: RTCSessionDescription) -> Response {
    let location = format!("/api/v1/media/{id}");
    let mut r = (StatusCode::CREATED, state.signal.media.announce(&answer.sdp)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{id}\"")) {
        h.insert(header::ETAG, v);
    }
    r
}

/// Answers an offer; the answer carries every server candidate (no trickle).
async fn answer_with_candidates(
    pc: &Arc<dyn PeerConnection>,
    offer: RTCSessionDescription,
    gathered: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<RTCSessionDescription, ApiError> {
    pc.set_remote_description(offer).await.map_err(|e| ApiError::BadRequest(format!("the offer was refused: {e}")))?;
    let answer = pc.create_answer(None).await.map_err(|e| media_err(MediaError::rtc(e)))?;
    pc.set_local_description(answer).await.map_err(|e| media_err(MediaError::rtc(e)))?;
    media::gathered_local_description(pc, gathered).await.map_err(media_err)
}

/// Forgets a resource when its connection fails or closes, or its session ends.
fn watch_resource(state: &AppState, id: uuid::Uuid, mut pc_state: tokio::sync::watch::Receiver<webrtc::peer_connection::RTCPeerConnectionState>) {
    use webrtc::peer_connection::RTCPeerConnectionState::{Closed, Failed};
    let Some(room) = state.signal.http_media.lock().unwrap_or_else(|p| p.into_inner()).get(&id).map(|r| r.room.clone()) else { return };
    let state = state.clone();
    tokio::spawn(async move {
        let mut ended = room.ended();
        tokio::select! {
            _ = pc_state.wait_for(|s| matches!(s, Closed | Failed)) => {}
            _ = ended.wait_for(|e| *e) => {}
        }
        let res = state.signal.http_media.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        if let Some(res) = res {
            res.room.unpublish(res.peer);
            let _ = res.pc.close().await;
        }
    });
}

fn register(state: &AppState, res: Resource) -> Result<uuid::Uuid, ApiError> {
    let mut map = state.signal.http_media.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= MAX_RESOURCES {
        drop(map);
        let pc = res.pc.clone();
        tokio::spawn(async move {
            let _ = pc.close().await;
        });
        return Err(ApiError::Unavailable("too many WHIP/WHEP connections".into()));
    }
    let id = uuid::Uuid::now_v7();
    map.insert(id, res);
    Ok(id)
}

/// WHIP: a device publishes into the session.
async fn whip(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let offer = sdp_offer(&headers, &body)?;
    let (_, room) = live_room(&state, &p, &id).await?;
    let peer = state.signal.next_peer();
    let (pc, mut ev) = media::new_peer(&state.signal.media, false).await.map_err(media_err)?;
    MediaRoom::prepare_publisher(&pc).await.map_err(media_err)?;
    let r = room.clone();
    let mut tracks = std::mem::replace(&mut ev.tracks, tokio::sync::mpsc::unbounded_channel().1);
    tokio::spawn(async move {
        while let Some(t) = tracks.recv().await {
            r.publish(peer, t).await;
        }
    });
    let answer = answer_with_candidates(&pc, offer, &mut ev.gathered).await?;
    let id = register(&state, Resource { pc, room, peer, owner: p })?;
    watch_resource(&state, id, ev.state.clone());
    tracing::info!(resource = %id, "WHIP ingest started");
    Ok(created(&state, id, answer))
}

/// WHEP: an observer plays what the session's participants publish.
async fn whep(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let offer = sdp_offer(&headers, &body)?;
    let (_, room) = live_room(&state, &p, &id).await?;
    let peer = state.signal.next_peer();
    let (pc, mut ev) = media::new_peer(&state.signal.media, true).await.map_err(media_err)?;
    let n = room.subscribe(peer, &pc, ev.state.clone()).await.map_err(media_err)?;
    if n == 0 {
        let _ = pc.close().await;
        return Err(ApiError::Conflict("nothing is being published in this session yet".into()));
    }
    let answer = answer_with_candidates(&pc, offer, &mut ev.gathered).await?;
    let id = register(&state, Resource { pc, room, peer, owner: p })?;
    watch_resource(&state, id, ev.state.clone());
    Ok(created(&state, id, answer))
}

/// Ends a WHIP or WHEP resource (only its owner or an admin).
async fn remove(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::BadRequest("not a resource id".into()))?;
    let res = {
        let mut map = state.signal.http_media.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&id) {
            Some(r) if r.owner.session_id == p.session_id || p.role == crate::auth::Role::Admin => map.remove(&id),
            Some(_) => return Err(ApiError::Forbidden("this media resource belongs to someone else".into())),
            None => None,
        }
    };
    let res = res.ok_or_else(|| ApiError::not_found("media resource"))?;
    res.room.unpublish(res.peer);
    let _ = res.pc.close().await;
    Ok(StatusCode::OK)
}

/// Trickle ICE and ICE restarts over PATCH are not supported (RFC 9725 §4.3.1 lets a
/// server refuse them): the answer already carries every server candidate.
async fn patch() -> ApiError {
    ApiError::MethodNotAllowed("this server sends all candidates in its answer; create a new resource to restart".into())
}
