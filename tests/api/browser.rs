//! The whole live journey in a real browser: headless Chromium (Debian's) with a fake
//! camera playing a .y4m file, driven by playwright-core (tests/browser/journey.mjs).
//! Needs `scripts/setup.sh --test` (chromium, node_modules); skipped with a note when
//! they are missing, and a failure under FIXLINE_REQUIRE_BROWSER=1 (scripts/test.sh).

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::helpers::*;

/// Writes a y4m (YUV4MPEG2, 4:2:0) of the NEU "patches" image in a 320x240 frame;
/// returns the mean luma of a frame.
pub(crate) fn write_y4m(path: &Path) -> f64 {
    let (w, h) = (320usize, 240usize);
    let img = image::open(dataset_path("images/patches/patches_2.png")).unwrap().to_luma8();
    let img = image::imageops::resize(&img, h as u32, h as u32, image::imageops::FilterType::Triangle);
    let left = (w - h) / 2;
    let mut y = vec![90u8; w * h];
    for row in 0..h {
        for col in 0..h {
            y[row * w + left + col] = img.get_pixel(col as u32, row as u32)[0];
        }
    }
    let mut f = std::fs::File::create(path).unwrap();
    write!(f, "YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n").unwrap();
    for _ in 0..30 {
        f.write_all(b"FRAME\n").unwrap();
        f.write_all(&y).unwrap();
        f.write_all(&vec![128u8; w * h / 2]).unwrap();
    }
    y.iter().map(|v| f64::from(*v)).sum::<f64>() / y.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_and_an_expert_complete_a_call_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let script = repo_path("tests/browser/journey.mjs");
    let ready = Path::new(&chromium).exists() && repo_path("tests/browser/node_modules/playwright-core").exists();
    if !ready {
        assert!(std::env::var("FIXLINE_REQUIRE_BROWSER").is_err(), "FIXLINE_REQUIRE_BROWSER is set but Chromium or playwright-core is missing");
        eprintln!("note: Chromium or playwright-core missing (scripts/setup.sh --test); browser test skipped");
        return;
    }
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.admin_token.clone();
    let customer = app.customer("strategic").await;
    let wo = app.work_order(&customer, "P1").await;
    let wid = wo["id"].as_str().unwrap().to_owned();
    let inv = app.post(&format!("/api/v1/work-orders/{wid}/invites"), &t, json!({})).await.ok();
    let invite_url = inv["url"].as_str().unwrap().to_owned();
    assert!(invite_url.starts_with(&app.base), "{invite_url}");
    let expert = app.user(fixline::auth::Role::Expert, None).await;
    let y4m = app.dir.0.join("camera.y4m");
    let luma = write_y4m(&y4m);
    let args = vec![app.base.clone(), invite_url.clone(), expert.username.clone(), expert.password.clone(), y4m.to_string_lossy().into_owned(), wid.clone(), format!("{luma:.1}")];
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("node").arg(&script).args(&args).env("CHROMIUM", &chromium).output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(json!({ "raw": stdout }));
    assert!(out.status.success() && result["ok"] == true, "browser journey failed: {result}");
    assert_eq!(result["customerLanguage"], "zh-CN");
    assert_eq!(result["customerStartLabel"], "开始视频通话");
    assert_eq!((result["w"].as_u64(), result["h"].as_u64()), (Some(320), Some(240)));
    let w = app.get(&format!("/api/v1/work-orders/{wid}"), &t).await.ok();
    assert_eq!(w["status"], "resolved_remote");
    eprintln!("browser journey: {result}");
    app.stop().await;
}
