//! Live diagnosis: the customer's video, sampled by the frame tap (default once a
//! second), runs through the image model; each verdict streams to the session's other
//! participants as `live_diagnosis`. A snapshot an expert asks for is also stored as
//! evidence (PNG of the frame) with its verdict on the work order.
//!
//! Annotation anchoring ([`spawn_anchoring`]): one task per session with anchored
//! annotations owns their trackers (`guidance::anchoring::AnchorSet`), switches the
//! room's frame taps to tracking frames while it has any, processes the latest tracking
//! frame on a blocking thread (never the reactor; while one is processed the next
//! waits in the room's watch channel, where a newer one replaces it: the replaced one
//! counts as skipped in `RoomStats::tracking_skipped`) and sends the new positions to
//! the hub, which tells every participant.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::hub::HubCmd;
use super::protocol::ServerMsg;
use crate::diagnosis::image::Gray;
use crate::diagnosis::manifest::Task;
use crate::guidance::anchoring::{AnchorCmd, AnchorSet, AnchoringConfig, Moved};
use crate::guidance::tracking::{Gray as TrackGray, Pyramid};
use crate::http::AppState;
use crate::ids::WorkOrderId;
use crate::media::frames;
use crate::media::room::{MediaRoom, Published};
use crate::session::PeerId;
use crate::work_orders::evidence::{self, EvidenceKind};
use crate::work_orders::events::Actor;

pub fn spawn(app: AppState, room: Arc<MediaRoom>, track: Arc<Published>, customer: PeerId, work_order: WorkOrderId) {
    let model = app.diagnosis.for_task(Task::SurfaceDefectImage);
    let tracking = (app.config.guidance.anchor_fps > 0).then(|| room.tracking_link());
    let Some(model) = model else {
        // No image model: the tap only serves annotation tracking (it decodes nothing
        // until an annotation is anchored).
        if let Some(tracking) = tracking {
            let mut tap = frames::tap(track, None, Some(tracking));
            tokio::spawn(async move { while tap.frames.recv().await.is_some() {} });
        }
        return;
    };
    let every = Duration::from_millis(app.config.diagnosis.live_sample_interval_ms);
    let mut tap = frames::tap(track, Some(every), tracking);
    room.add_snapshot_flag(tap.snapshot_flag());
    let stream = format!("live-{work_order}");
    tokio::spawn(async move {
        while let Some(f) = tap.frames.recv().await {
            let snapshot = f.snapshot;
            let arrived = f.arrived;
            let png = if snapshot { encode_png(&f) } else { None };
            let gray = Gray { width: f.width, height: f.height, pixels: f.pixels };
            let verdict = match crate::diagnosis::diagnose_luma(model.clone(), gray, stream.clone()).await {
                Ok(v) => v,
                // Busy or dropped: a newer frame comes within the second.
                Err(_) => continue,
            };
            let mut snapshot_evidence_id = None;
            if let Some(png) = png {
                match app.blobs.write_bytes(&png).await {
                    Ok(blob) => {
                        let rec = evidence::record(
                            &app.db,
                            work_order,
                            EvidenceKind::Snapshot,
                            "image/png",
                            &blob,
                            Some("snapshot.png".into()),
                            &Actor::SYSTEM,
                            &app.config.sla,
                            Some(verdict.clone()),
                        )
                        .await;
                        match rec {
                            Ok(ev) => snapshot_evidence_id = Some(ev.id),
                            Err(e) => tracing::warn!(error = %e, "snapshot not stored"),
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "snapshot not stored"),
                }
            }
            let latency_ms = arrived.elapsed().as_secs_f64() * 1e3;
            let msg = ServerMsg::LiveDiagnosis { work_order_id: work_order, verdict, snapshot_evidence_id, latency_ms };
            if app.signal.hub.send(HubCmd::Relay { peer: customer, msg, customers_only: false }).await.is_err() {
                break;
            }
        }
    });
}

fn encode_png(f: &frames::LumaFrame) -> Option<Vec<u8>> {
    let img = image::GrayImage::from_raw(f.width as u32, f.height as u32, f.pixels.clone())?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).ok()?;
    Some(out)
}

/// A tracking frame decoded longer ago than this is not tracked (the video stalled, or
/// it was decoded before anchoring went idle).
const STALE_FRAME: Duration = Duration::from_millis(500);

/// Starts the annotation anchoring of a session (see the module doc). It stops when
/// the returned sender is dropped (the session ended) or the hub is gone, and then
/// switches the room's taps back to keyframes.
pub fn spawn_anchoring(room: Arc<MediaRoom>, cfg: AnchoringConfig, hub: mpsc::WeakSender<HubCmd>, work_order: WorkOrderId) -> mpsc::UnboundedSender<AnchorCmd> {
    let (tx, mut cmds) = mpsc::unbounded_channel::<AnchorCmd>();
    tokio::spawn(async move {
        let (fps, levels) = (cfg.fps, cfg.tracker.pyramid_levels);
        let stats = room.stats.clone();
        // The set is in `job` while a frame is processed; commands meanwhile wait.
        let mut set = Some(AnchorSet::new(cfg.clone()));
        let mut waiting: Vec<AnchorCmd> = Vec::new();
        let mut job: Option<tokio::task::JoinHandle<(AnchorSet, Vec<Moved>, Duration)>> = None;
        let mut frames = room.tracking_frames();
        frames.mark_unchanged();
        let mut last_seq: Option<u64> = None;
        let epoch = Instant::now();
        loop {
            let wants = set.as_ref().is_none_or(AnchorSet::wants_frames);
            room.set_tracking_fps(if wants { fps } else { 0 });
            if !wants {
                last_seq = None;
            }
            tokio::select! {
                cmd = cmds.recv() => {
                    let Some(cmd) = cmd else { break };
                    match set.as_mut() {
                        Some(s) => s.apply(cmd),
                        None => waiting.push(cmd),
                    }
                }
                done = async { job.as_mut().expect("guarded by is_some").await }, if job.is_some() => {
                    job = None;
                    let mut s = match done {
                        Ok((s, moved, spent)) => {
                            let ns = spent.as_nanos() as u64;
                            stats.tracking_processed.fetch_add(1, Ordering::Relaxed);
                            stats.tracking_ns.fetch_add(ns, Ordering::Relaxed);
                            stats.tracking_ns_max.fetch_max(ns, Ordering::Relaxed);
                            if !moved.is_empty() {
                                let Some(hub) = hub.upgrade() else { break };
                                if hub.send(HubCmd::Anchored { work_order, moved }).await.is_err() {
                                    break;
                                }
                            }
                            s
                        }
                        Err(e) => {
                            // A bug in the tracker: this session's shapes stay where they are.
                            tracing::error!(work_order = %work_order, error = %e, "annotation tracking failed");
                            AnchorSet::new(cfg.clone())
                        }
                    };
                    for c in waiting.drain(..) {
                        s.apply(c);
                    }
                    set = Some(s);
                }
                changed = frames.changed(), if job.is_none() && wants => {
                    if changed.is_err() {
                        break;
                    }
                    let Some(frame) = frames.borrow_and_update().clone() else { continue };
                    if let Some(last) = last_seq {
                        stats.tracking_skipped.fetch_add(frame.seq.saturating_sub(last + 1), Ordering::Relaxed);
                    }
                    last_seq = Some(frame.seq);
                    if frame.decoded_at.elapsed() > STALE_FRAME {
                        continue;
                    }
                    let Some(mut s) = set.take() else { continue };
                    let now_ms = epoch.elapsed().as_millis() as u64;
                    job = Some(tokio::task::spawn_blocking(move || {
                        let started = Instant::now();
                        let pyramid = TrackGray::new(frame.width, frame.height, &frame.pixels).and_then(|g| Pyramid::new(&g, levels));
                        let moved = match pyramid {
                            Ok(p) => s.track(p, frame.rtp_timestamp, now_ms),
                            Err(_) => Vec::new(),
                        };
                        (s, moved, started.elapsed())
                    }));
                }
            }
        }
        room.set_tracking_fps(0);
    });
    tx
}
