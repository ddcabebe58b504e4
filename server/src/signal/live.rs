//! Live diagnosis: the customer's video, sampled by the frame tap (default once a
//! second), runs through the image model; each verdict streams to the session's other
//! participants as `live_diagnosis`. A snapshot an expert asks for is also stored as
//! evidence (PNG of the frame) with its verdict on the work order.

use std::sync::Arc;
use std::time::Duration;

use super::hub::HubCmd;
use super::protocol::ServerMsg;
use crate::diagnosis::image::Gray;
use crate::diagnosis::manifest::Task;
use crate::http::AppState;
use crate::ids::WorkOrderId;
use crate::media::frames;
use crate::media::room::{MediaRoom, Published};
use crate::session::PeerId;
use crate::work_orders::evidence::{self, EvidenceKind};
use crate::work_orders::events::Actor;

pub fn spawn(app: AppState, room: Arc<MediaRoom>, track: Arc<Published>, customer: PeerId, work_order: WorkOrderId) {
    let Some(model) = app.diagnosis.for_task(Task::SurfaceDefectImage) else { return };
    let every = Duration::from_millis(app.config.diagnosis.live_sample_interval_ms);
    let mut tap = frames::tap(track, every);
    room.add_snapshot_flag(tap.snapshot_flag());
    let stream = format!("live-{work_order}");
    tokio::spawn(async move {
        while let Some(f) = tap.frames.recv().await {
            let snapshot = f.snapshot;
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
            let msg = ServerMsg::LiveDiagnosis { work_order_id: work_order, verdict, snapshot_evidence_id };
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
