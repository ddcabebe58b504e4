//! The store on both backends: migrations, readiness, constraints, batched appends.

use fixline::customers::repo::{insert_customer, NewCustomer};
use fixline::customers::Tier;
use fixline::store::Db;
use fixline::work_orders::events::{Actor, Command};
use fixline::work_orders::model::{Channel, Priority};
use fixline::work_orders::repo::{self, AppendError, NewWorkOrder};
use fixline::work_orders::sla::SlaPolicy;

use crate::helpers::*;

async fn open(backend: Backend, dir: &TempDir) -> Db {
    Db::open(&database_url(backend, dir).await).await.expect("open")
}

fn new_wo(customer: fixline::ids::CustomerId) -> NewWorkOrder {
    NewWorkOrder {
        customer_id: customer,
        asset_id: None,
        site_id: None,
        title: "Spindle bearing noise".into(),
        description: String::new(),
        channel: Channel::TelemetryAlert,
        priority: Priority::P2,
        tier: Tier::Key,
        fault_codes: vec!["SP-101".into()],
    }
}

#[tokio::test]
async fn migrations_apply_once_and_readiness_reports_them() {
    for backend in backends() {
        let dir = TempDir::new();
        let url = database_url(backend, &dir).await;
        let db = Db::connect(&url).await.unwrap();
        assert!(db.ready().await.is_err() || !db.ready().await.unwrap(), "{backend:?}: not ready before migrating");
        db.migrate().await.unwrap();
        db.migrate().await.unwrap();
        assert!(db.ready().await.unwrap());
        db.close().await;
        let again = Db::open(&url).await.unwrap();
        assert!(again.ready().await.unwrap());
        again.close().await;
    }
}

#[tokio::test]
async fn a_batch_commits_all_or_nothing() {
    for backend in backends() {
        let dir = TempDir::new();
        let db = open(backend, &dir).await;
        let sla = SlaPolicy::default();
        let c = insert_customer(&db, NewCustomer { name: "A".into(), tier: Tier::Key, contact_email: None, contact_phone: None, locale: "en".into() })
            .await
            .unwrap();
        let a = repo::create(&db, new_wo(c.id), &Actor::SYSTEM, &sla).await.unwrap();
        let b = repo::create(&db, new_wo(c.id), &Actor::SYSTEM, &sla).await.unwrap();
        let items: Vec<_> = (0..50).map(|i| (if i % 2 == 0 { a.id } else { b.id }, Command::AddNote { text: format!("n{i}") })).collect();
        assert_eq!(repo::append_batch(&db, items, &Actor::SYSTEM, &sla).await.unwrap(), 50);
        assert_eq!(repo::get(&db, a.id).await.unwrap().unwrap().version, 26);
        // One illegal command in a batch: nothing of the batch is written.
        let bad = vec![
            (a.id, Command::AddNote { text: "kept?".into() }),
            (b.id, Command::Transition { to: fixline::work_orders::model::Status::Closed, reason: None }),
        ];
        assert!(matches!(repo::append_batch(&db, bad, &Actor::SYSTEM, &sla).await, Err(AppendError::Decide(_))));
        assert_eq!(repo::get(&db, a.id).await.unwrap().unwrap().version, 26, "{backend:?}");
        assert_eq!(repo::all_events(&db, a.id).await.unwrap().len(), 26);
        assert_eq!(fixline::work_orders::replay(&repo::all_events(&db, b.id).await.unwrap()).unwrap(), repo::get(&db, b.id).await.unwrap().unwrap());
        db.close().await;
    }
}

#[tokio::test]
async fn foreign_keys_and_checks_are_enforced_by_the_database() {
    for backend in backends() {
        let dir = TempDir::new();
        let db = open(backend, &dir).await;
        let r = sqlx::query("INSERT INTO sites (id, customer_id, name, address, latitude, longitude, timezone, created_at) VALUES ($1, $2, 'x', 'y', 0, 0, 'UTC', 0)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(uuid::Uuid::now_v7().to_string())
            .execute(&db.pool)
            .await
            .unwrap_err();
        assert!(fixline::store::is_foreign_key_violation(&r), "{backend:?}: {r}");
        let r = sqlx::query("INSERT INTO customers (id, name, tier, locale, created_at) VALUES ($1, 'x', 'gold', 'en', 0)")
            .bind(uuid::Uuid::now_v7().to_string())
            .execute(&db.pool)
            .await;
        assert!(r.is_err(), "{backend:?}: tier check");
        db.close().await;
    }
}
