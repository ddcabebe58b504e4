//! The service KPIs over the API on SQLite and PostgreSQL: the cohort of a period,
//! grouping by region, product line and expert, and the validation of the period.

use fixline::auth::Role;
use fixline::work_orders::events::{Actor, ActorRef, Command, Event};
use serde_json::{json, Value};

use crate::helpers::*;

fn share(v: &Value) -> (u64, u64) {
    (v["total"].as_u64().unwrap(), v["count"].as_u64().unwrap())
}

#[tokio::test]
async fn kpis_count_the_work_orders_of_a_period_overall_and_per_group() {
    for backend in backends() {
        let app = spawn_with(backend, |c| c.sla_timers.interval_secs = 0).await;
        let st = &app.running.as_ref().unwrap().state;
        let admin = app.admin_token.clone();
        let customer = app.customer("key").await;
        let site = app
            .post(&format!("/api/v1/customers/{customer}/sites"), &admin,
                json!({ "name": "Wuxi plant", "address": "1 Lake Rd", "latitude": 31.49, "longitude": 120.31, "region": "east-china" }))
            .await
            .ok()["id"]
            .clone();
        let lines = app.get("/api/v1/product-lines", &admin).await.ok();
        let spn = lines["items"].as_array().unwrap().iter().find(|l| l["code"] == "SPN-CNC").unwrap()["id"].clone();
        let asset = app
            .post("/api/v1/assets", &admin, json!({ "customer_id": customer, "site_id": site, "product_line_id": spn, "model": "VMC-850", "serial_number": "KPI-1" }))
            .await
            .ok()["id"]
            .clone();
        // A: at the site, answered, resolved remotely by an expert, rated 4.
        let a = app.post("/api/v1/work-orders", &admin, json!({ "customer_id": customer, "asset_id": asset, "title": "Spindle noise" })).await.ok()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let expert = app.user(Role::Expert, None).await;
        for to in ["triaged", "in_remote_session"] {
            app.transition(&a, to, &admin).await.ok();
        }
        let who = ActorRef::User(expert.user_id.parse().unwrap());
        let joined = Event::SessionJoined { part: "expert".into(), who: who.to_string() };
        fixline::work_orders::repo::append(app.db(), a.parse().unwrap(), Command::RecordSession(joined), &Actor { who, role: Some(Role::Expert) }, &st.config.sla)
            .await
            .unwrap();
        app.transition(&a, "resolved_remote", &expert.token).await.ok();
        let sent = fixline::work_orders::surveys::send_due(app.db(), &st.key, &st.config.sla, &st.config.surveys, &app.base).await.unwrap();
        let token = fixline::work_orders::surveys::token(&st.key, &sent[0]);
        app.req(reqwest::Method::POST, &format!("/api/v1/surveys/{token}"), None, Some(json!({ "rating": 4 }))).await.ok();
        // B: no asset, no site, still new.
        app.work_order(&customer, "P2").await;

        let k = app.get("/api/v1/kpis", &admin).await.ok();
        let o = &k["overall"];
        assert_eq!(o["work_orders"], 2, "{backend:?}: {k}");
        assert_eq!(o["first_response"]["responded"], 1);
        assert_eq!(share(&o["remote_resolution"]), (1, 1));
        assert_eq!(o["remote_resolution"]["rate"], 1.0);
        assert_eq!(share(&o["first_time_fix"]), (0, 0));
        assert!(o["first_time_fix"]["rate"].is_null(), "no visit: no rate");
        assert_eq!(share(&o["sla_resolution"]), (2, 2), "{backend:?}: resolved in time, and open within its deadline");
        assert_eq!((o["satisfaction"]["answers"].as_u64(), o["satisfaction"]["mean_rating"].as_f64()), (Some(1), Some(4.0)));
        assert!(k["groups"].as_array().unwrap().is_empty());

        let k = app.get("/api/v1/kpis?group_by=region", &admin).await.ok();
        let groups: Vec<(&str, u64)> = k["groups"].as_array().unwrap().iter().map(|g| (g["key"].as_str().unwrap(), g["figures"]["work_orders"].as_u64().unwrap())).collect();
        assert_eq!(groups, [("east-china", 1), ("unknown", 1)], "{backend:?}");
        let k = app.get("/api/v1/kpis?group_by=product_line", &admin).await.ok();
        assert_eq!(k["groups"][0]["key"], "SPN-CNC", "{backend:?}: {k}");
        let k = app.get("/api/v1/kpis?group_by=expert", &admin).await.ok();
        assert_eq!(k["groups"][0]["key"], expert.user_id.as_str(), "{backend:?}: {k}");
        assert_eq!(k["groups"][0]["label"], "Test", "the expert's display name");
        assert_eq!(k["groups"][0]["figures"]["satisfaction"]["answers"], 1);

        // A period before everything is empty; today's date includes today.
        let k = app.get("/api/v1/kpis?from=2001-01-01&to=2001-01-31", &admin).await.ok();
        assert_eq!(k["overall"]["work_orders"], 0);
        assert!(k["overall"]["first_response"]["median_minutes"].is_null());
        let today = &fixline::rfc3339(fixline::now_millis())[..10];
        let k = app.get(&format!("/api/v1/kpis?from={today}&to={today}"), &admin).await.ok();
        assert_eq!(k["overall"]["work_orders"], 2, "{backend:?}: {k}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_bad_kpi_period_or_grouping_is_refused_with_the_reason() {
    let app = spawn_with(Backend::Sqlite, |c| c.sla_timers.interval_secs = 0).await;
    let t = app.admin_token.clone();
    for (q, status, says) in [
        ("from=2026-02-01&to=2026-01-01", 422, "before"),
        ("from=2020-01-01&to=2026-01-01", 422, "366"),
        ("from=last-week", 422, "from"),
        ("to=2026-02-30", 422, "to"),
        ("group_by=team", 422, "group_by"),
        ("sort=rate", 400, "sort"),
    ] {
        let r = app.get(&format!("/api/v1/kpis?{q}"), &t).await;
        r.problem(status);
        assert!(r.body["detail"].as_str().unwrap().contains(says), "{q}: {}", r.body);
    }
    let dispatcher = app.user(Role::Dispatcher, None).await;
    app.get("/api/v1/kpis", &dispatcher.token).await.ok();
    let technician = app.user(Role::Technician, None).await;
    app.get("/api/v1/kpis", &technician.token).await.problem(403);
    app.stop().await;
}
