//! After the fix: the satisfaction survey sent on resolution (link, one answer, a
//! complaint reopens), the follow-up task, and proactive service from telemetry.

use fixline::auth::tokens::Claims;
use fixline::work_orders::surveys;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_resolved_work_order_gets_one_survey_and_a_complaint_reopens_it() {
    for backend in backends() {
        // Follow-ups due at once; the background loop off (the test drives it).
        let app = spawn_with(backend, |c| {
            c.surveys.follow_up_hours = 0;
            c.sla_timers.interval_secs = 0;
        })
        .await;
        let st = &app.running.as_ref().unwrap().state;
        let admin = app.admin_token.clone();
        let customer = app.customer("standard").await;
        let wo = app.work_order(&customer, "P3").await["id"].as_str().unwrap().to_owned();
        for to in ["triaged", "in_remote_session", "resolved_remote"] {
            app.transition(&wo, to, &admin).await.ok();
        }
        let send = || surveys::send_due(app.db(), &st.key, &st.config.sla, &st.config.surveys, "http://127.0.0.1:1");
        let sent = send().await.unwrap();
        assert_eq!(sent.len(), 1, "{backend:?}");
        assert!(send().await.unwrap().is_empty(), "{backend:?}: one survey per resolution");
        let token = surveys::token(&st.key, &sent[0]);
        // The link is in the event log (for the desk or a CRM webhook to send).
        let ev = app.get(&format!("/api/v1/work-orders/{wo}/events"), &admin).await.ok();
        let sent_ev = ev["items"].as_array().unwrap().iter().find(|e| e["kind"] == "survey_sent").expect("survey_sent");
        assert!(sent_ev["payload"]["url"].as_str().unwrap().ends_with(&format!("/survey#token={token}")));

        // The public page data, without a login.
        let v = app.req(reqwest::Method::GET, &format!("/api/v1/surveys/{token}"), None, None).await.ok();
        assert_eq!(v["answered"], false);
        assert_eq!(v["title"], "Drill stops under load");
        // Out-of-range rating, then a complaint.
        let r = app.req(reqwest::Method::POST, &format!("/api/v1/surveys/{token}"), None, Some(json!({ "rating": 9 }))).await;
        assert_eq!(r.status.as_u16(), 422);
        let r = app
            .req(reqwest::Method::POST, &format!("/api/v1/surveys/{token}"), None, Some(json!({ "rating": 1, "comment": "Still stops after 5 minutes", "complaint": true })))
            .await
            .ok();
        assert_eq!(r["reopened"], true, "{backend:?}");
        assert_eq!(app.get(&format!("/api/v1/work-orders/{wo}"), &admin).await.ok()["status"], "triaged");
        // Answered once only.
        let r = app.req(reqwest::Method::POST, &format!("/api/v1/surveys/{token}"), None, Some(json!({ "rating": 5 }))).await;
        assert_eq!(r.problem(409), "conflict");

        // The complaint is first on the follow-up list; marking it done records it.
        let f = app.get("/api/v1/follow-ups", &admin).await.ok();
        assert_eq!(f["items"][0]["work_order_id"], wo.as_str(), "{backend:?}: {f}");
        assert_eq!(f["items"][0]["complaint"], true);
        let id = f["items"][0]["id"].as_str().unwrap();
        app.post(&format!("/api/v1/follow-ups/{id}/done"), &admin, json!({ "note": "Sent a technician" })).await.ok();
        let f = app.get("/api/v1/follow-ups", &admin).await.ok();
        assert!(f["items"].as_array().unwrap().iter().all(|x| x["id"] != id));

        // Resolved again: a second survey.
        app.transition(&wo, "in_remote_session", &admin).await.ok();
        app.transition(&wo, "resolved_remote", &admin).await.ok();
        assert_eq!(send().await.unwrap().len(), 1, "{backend:?}");
        let kinds: Vec<String> = app.get(&format!("/api/v1/work-orders/{wo}/events?limit=100"), &admin).await.ok()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kinds.iter().filter(|k| *k == "survey_sent").count(), 2);
        assert!(kinds.contains(&"survey_answered".to_owned()) && kinds.contains(&"follow_up_done".to_owned()));
        app.stop().await;
    }
}

#[tokio::test]
async fn survey_links_are_refused_when_forged_expired_or_of_another_kind() {
    let app = spawn_with(Backend::Sqlite, |c| c.sla_timers.interval_secs = 0).await;
    let st = &app.running.as_ref().unwrap().state;
    let (_, token) = crate::role_matrix::survey(&app).await;
    let appr = &app;
    let get = |t: String| async move { appr.req(reqwest::Method::GET, &format!("/api/v1/surveys/{t}"), None, None).await };
    // Tampered signature.
    let mut forged = token.clone();
    forged.push('A');
    assert_eq!(get(forged).await.problem(404), "not-found");
    // Signed by the server but expired.
    let wo: fixline::ids::WorkOrderId = uuid::Uuid::now_v7().to_string().parse().unwrap();
    let expired = st.key.sign(&Claims::Survey { sid: "x".into(), wo, exp: 1 });
    assert_eq!(get(expired).await.problem(410), "gone");
    // An invite token is not a survey token.
    let invite = st.key.sign(&Claims::Invite { iid: fixline::ids::InviteId::new(), wo, exp: i64::MAX / 2 });
    assert_eq!(get(invite).await.problem(404), "not-found");
    // A survey token is not an access token.
    let r = app.req(reqwest::Method::GET, "/api/v1/me", Some(&token), None).await;
    assert_eq!(r.problem(401), "unauthorized");
    app.stop().await;
}
