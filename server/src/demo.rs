//! The demo data set: product lines with fault codes, three customers (one per tier)
//! with sites and assets, and staff accounts of every role. Seeded once, into a
//! database that has no customers yet; passwords are random and shown once.

use crate::auth::repo::{self as users, NewUser};
use crate::auth::{password, Role};
use crate::customers::repo::{self, NewAsset, NewCustomer, NewProductLine, NewSite};
use crate::customers::{FaultCode, Severity, Tier};
use crate::http::AppState;

struct Line {
    code: &'static str,
    en: &'static str,
    zh: &'static str,
    category: &'static str,
    faults: &'static [(&'static str, &'static str, &'static str, &'static str, Severity)],
}

const LINES: &[Line] = &[
    Line {
        code: "DRL-18V",
        en: "18 V cordless drill/driver",
        zh: "18V 无绳电钻/起子机",
        category: "power_tool",
        faults: &[
            ("E01", "motor.carbon_brush_wear", "Carbon brushes worn: sparking, loss of power", "碳刷磨损：打火、动力下降", Severity::Warning),
            ("E02", "motor.overheat_cutout", "Thermal cut-out tripped: motor overheated", "过热保护跳闸：电机过热", Severity::Warning),
            ("E03", "battery.pack_fault", "Battery pack fault: cell imbalance or damaged cell", "电池包故障：电芯不平衡或损坏", Severity::Critical),
        ],
    },
    Line {
        code: "AGR-125",
        en: "125 mm angle grinder",
        zh: "125mm 角磨机",
        category: "power_tool",
        faults: &[
            ("E01", "motor.carbon_brush_wear", "Carbon brushes worn", "碳刷磨损", Severity::Warning),
            ("E05", "gearbox.bearing_wear", "Gearbox bearing noise or play", "齿轮箱轴承异响或松旷", Severity::Warning),
        ],
    },
    Line {
        code: "SPN-CNC",
        en: "CNC machining-centre spindle",
        zh: "加工中心主轴",
        category: "machining",
        faults: &[
            ("SP-101", "bearing.inner_race", "Spindle bearing inner-race defect (vibration at BPFI)", "主轴轴承内圈缺陷（BPFI 处振动）", Severity::Critical),
            ("SP-102", "bearing.outer_race", "Spindle bearing outer-race defect (vibration at BPFO)", "主轴轴承外圈缺陷（BPFO 处振动）", Severity::Critical),
            ("SP-103", "bearing.ball", "Spindle bearing rolling-element defect (vibration at 2xBSF)", "主轴轴承滚动体缺陷（2 倍 BSF 处振动）", Severity::Critical),
            ("SP-200", "spindle.overtemperature", "Spindle over temperature", "主轴温度过高", Severity::Warning),
        ],
    },
    Line {
        code: "MTR-IND",
        en: "Induction motor drive",
        zh: "感应电机驱动",
        category: "machining",
        faults: &[
            ("M-11", "bearing.inner_race", "Motor bearing inner-race defect", "电机轴承内圈缺陷", Severity::Critical),
            ("M-12", "bearing.outer_race", "Motor bearing outer-race defect", "电机轴承外圈缺陷", Severity::Critical),
            ("M-13", "bearing.ball", "Motor bearing ball defect", "电机轴承滚珠缺陷", Severity::Critical),
        ],
    },
];

/// Seeds the demo data into an empty database; returns the accounts it created.
pub async fn seed(state: &AppState) -> anyhow::Result<Vec<(String, Role, String)>> {
    let db = &state.db;
    if !repo::list_customers(db, None, None, None, 1).await?.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = Vec::new();
    for l in LINES {
        let pl = repo::insert_product_line(
            db,
            NewProductLine { code: l.code.into(), name_en: l.en.into(), name_zh: l.zh.into(), category: l.category.into() },
        )
        .await?;
        for (code, fault_id, en, zh, severity) in l.faults {
            let fc = FaultCode {
                code: (*code).into(),
                fault_id: (*fault_id).into(),
                description_en: (*en).into(),
                description_zh: (*zh).into(),
                severity: *severity,
            };
            repo::upsert_fault_code(db, pl.id, &fc).await?;
        }
        lines.push(pl);
    }
    let customers = [
        ("Huadong Precision Machining Co.", Tier::Strategic, "zh-CN", "Suzhou plant", "88 Xinghu St, Suzhou Industrial Park, Jiangsu", 31.2990, 120.7280, "Asia/Shanghai"),
        ("Rheinwerk Fertigung GmbH", Tier::Key, "en", "Werk Köln", "Industriestr. 12, 50735 Köln", 50.9787, 6.9614, "Europe/Berlin"),
        ("Riverside Builders Ltd", Tier::Standard, "en", "Yard", "4 Wharf Rd, Leeds LS1 4BT", 53.7940, -1.5470, "Europe/London"),
    ];
    let mut first_customer = None;
    for (i, (name, tier, locale, site_name, address, lat, lon, tz)) in customers.into_iter().enumerate() {
        let c = repo::insert_customer(
            db,
            NewCustomer { name: name.into(), tier, contact_email: Some(format!("service@customer{}.example", i + 1)), contact_phone: None, locale: locale.into() },
        )
        .await?;
        let site = repo::insert_site(
            db,
            NewSite { customer_id: c.id, name: site_name.into(), address: address.into(), latitude: lat, longitude: lon, timezone: tz.into() },
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
    for (username, display, role, locale) in accounts {
        let pw = password::generate(16);
        let hash = password::hash(&pw).map_err(anyhow::Error::msg)?;
        let customer_id = (role == Role::Customer).then_some(first_customer).flatten();
        users::insert_user(db, NewUser { username, display_name: display, role, customer_id, locale, password_hash: hash }).await?;
        out.push((username.to_owned(), role, pw));
    }
    Ok(out)
}
