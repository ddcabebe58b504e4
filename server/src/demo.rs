//! The demo data set: three customers (one per tier) with sites and assets of the
//! knowledge base's product lines, and staff accounts of every role. Seeded once, into a
//! database that has no customers yet; passwords are random and shown once.

use crate::auth::repo::{self as users, NewUser};
use crate::auth::{password, Role};
use crate::customers::repo::{self, NewAsset, NewCustomer, NewSite};
use crate::customers::Tier;
use crate::http::AppState;

/// Seeds the demo data into an empty database; returns the accounts it created.
pub async fn seed(state: &AppState) -> anyhow::Result<Vec<(String, Role, String)>> {
    let db = &state.db;
    if !repo::list_customers(db, None, None, repo::CustomerSort::CreatedAt { desc: false }, None, 1).await?.is_empty() {
        return Ok(Vec::new());
    }
    // Product lines and fault codes come from the knowledge base (synced at start-up).
    let lines = repo::list_product_lines(db).await?;
    let customers = [
        ("Huadong Precision Machining Co.", Tier::Strategic, "zh-CN", "Suzhou plant", "88 Xinghu St, Suzhou Industrial Park, Jiangsu", 31.2990, 120.7280, "Asia/Shanghai", "east-china"),
        ("Rheinwerk Fertigung GmbH", Tier::Key, "en", "Werk Köln", "Industriestr. 12, 50735 Köln", 50.9787, 6.9614, "Europe/Berlin", "de-west"),
        ("Riverside Builders Ltd", Tier::Standard, "en", "Yard", "4 Wharf Rd, Leeds LS1 4BT", 53.7940, -1.5470, "Europe/London", "uk-north"),
    ];
    let mut first_customer = None;
    for (i, (name, tier, locale, site_name, address, lat, lon, tz, region)) in customers.into_iter().enumerate() {
        let c = repo::insert_customer(
            db,
            NewCustomer { name: name.into(), tier, contact_email: Some(format!("service@customer{}.example", i + 1)), contact_phone: None, locale: locale.into() },
        )
        .await?;
        let site = repo::insert_site(
            db,
            NewSite { customer_id: c.id, name: site_name.into(), address: address.into(), latitude: lat, longitude: lon, timezone: tz.into(), region: Some(region.into()) },
        )
        .await?;
        for (j, pl) in lines.iter().enumerate() {
            if (i + j) % 2 == 0 {
                repo::insert_asset(
                    db,
                    NewAsset {
                        customer_id: c.id,
                        site_id: Some(site.id),
                        product_line_id: pl.id,
                        model: format!("{}-{}", pl.code, 2024 + j),
                        serial_number: format!("SN-{}-{:04}", pl.code, 100 * (i + 1) + j),
                        purchase_date: Some("2024-03-15".into()),
                        warranty_until: Some(if i == 2 { "2025-03-15" } else { "2027-03-15" }.into()),
                    },
                )
                .await?;
            }
        }
        first_customer.get_or_insert(c.id);
    }
    let accounts = [
        ("expert.li", "Li Wei", Role::Expert, "zh-CN"),
        ("expert.mueller", "Anna Müller", Role::Expert, "en"),
        ("dispatch.chen", "Chen Jing", Role::Dispatcher, "zh-CN"),
        ("tech.wang", "Wang Lei", Role::Technician, "zh-CN"),
        ("tech.smith", "Sam Smith", Role::Technician, "en"),
        ("customer.huadong", "Zhao Min (Huadong)", Role::Customer, "zh-CN"),
    ];
    let mut out = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for (username, display, role, locale) in accounts {
        let pw = password::generate(16);
        let hash = password::hash(&pw).map_err(anyhow::Error::msg)?;
        let customer_id = (role == Role::Customer).then_some(first_customer).flatten();
        let u = users::insert_user(db, NewUser { username, display_name: display, role, customer_id, locale, password_hash: hash }).await?;
        ids.insert(username, u.id);
        out.push((username.to_owned(), role, pw));
    }
    seed_dispatch(state, &ids).await?;
    Ok(out)
}

/// Warehouses per demo region with stock of every catalogue part, and technician
/// profiles for the demo technicians (Wang Lei in Shanghai, Sam Smith in Leeds).
async fn seed_dispatch(state: &AppState, users: &std::collections::HashMap<&str, crate::ids::UserId>) -> anyhow::Result<()> {
    use crate::dispatch::matching::{GeoPoint, Level, Skill};
    use crate::dispatch::schedule::WorkingHours;
    use crate::dispatch::{parts, technicians};
    let db = &state.db;
    let depots = [
        ("WH-SHA", "Shanghai Waigaoqiao depot", "east-china", 31.3520, 121.5890),
        ("WH-CGN", "Lager Köln-Niehl", "de-west", 50.9870, 6.9660),
        ("WH-LDS", "Leeds service stores", "uk-north", 53.7760, -1.5350),
    ];
    let catalogue = parts::list_parts(db, None).await?;
    for (i, (code, name, region, lat, lon)) in depots.into_iter().enumerate() {
        let w = parts::NewWarehouse { code: code.into(), name: name.into(), region: region.into(), location: GeoPoint { latitude: lat, longitude: lon } };
        parts::create_warehouse(db, w).await?;
        for (j, p) in catalogue.iter().enumerate() {
            // Varied, deterministic quantities; a few items start below their reorder
            // level so the safety-stock view has something to show.
            let on_hand = ((i * 7 + j * 3) % 9) as i64;
            parts::set_stock(db, code, &p.sku, on_hand, 2).await?;
        }
    }
    let all_lines = ["DRL-18V", "AGR-125", "SPN-CNC", "MTR-IND", "ROLL-MILL"];
    let profiles = [
        ("tech.wang", "east-china", 31.2304, 121.4737, "Asia/Shanghai", Level::Specialist),
        ("tech.smith", "uk-north", 53.8008, -1.5491, "Europe/London", Level::Technician),
    ];
    for (username, region, lat, lon, tz, level) in profiles {
        let Some(&id) = users.get(username) else { continue };
        let p = technicians::ProfileUpdate {
            region: region.into(),
            home: GeoPoint { latitude: lat, longitude: lon },
            skills: all_lines.iter().map(|l| Skill { product_line: (*l).into(), level }).collect(),
            hours: WorkingHours { timezone: tz.into(), days: vec![1, 2, 3, 4, 5], start_minute: 8 * 60, end_minute: 18 * 60 },
            max_jobs: 4,
            active: true,
        };
        technicians::upsert(db, id, &p).await?;
    }
    Ok(())
}
