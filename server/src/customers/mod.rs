//! Customers with their service tier, sites (address and coordinates), assets (the tools
//! and machines under service) and product lines with their fault codes.
//!
//! Owns the reference data a work order points to; it knows nothing about work orders.

pub mod knowledge;
pub mod repo;

use serde::{Deserialize, Serialize};

use crate::ids::{AssetId, CustomerId, ProductLineId, SiteId};
use crate::string_enum;
use crate::UnixMillis;

string_enum!(/// Service tier; drives SLA targets.
    Tier { Strategic => "strategic", Key => "key", Standard => "standard" });

string_enum!(/// How serious a fault code is.
    Severity { Info => "info", Warning => "warning", Critical => "critical" });

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub tier: Tier,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub locale: String,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Site {
    pub id: SiteId,
    pub customer_id: CustomerId,
    pub name: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    /// Service region (matches technicians' and warehouses' regions); dispatch uses the
    /// nearest warehouse's region when it is not set.
    pub region: Option<String>,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Asset {
    pub id: AssetId,
    pub customer_id: CustomerId,
    pub site_id: Option<SiteId>,
    pub product_line_id: ProductLineId,
    pub model: String,
    pub serial_number: String,
    pub purchase_date: Option<String>,
    pub warranty_until: Option<String>,
    /// Derived: whether the warranty covers today.
    pub under_warranty: bool,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProductLine {
    pub id: ProductLineId,
    pub code: String,
    pub name_en: String,
    pub name_zh: String,
    pub category: String,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultCode {
    pub code: String,
    /// The fault id in the knowledge base (e.g. `bearing.inner_race`).
    pub fault_id: String,
    pub description_en: String,
    pub description_zh: String,
    pub severity: Severity,
}

/// Checks a `YYYY-MM-DD` calendar date.
pub fn parse_date(s: &str) -> Result<time::Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).map_err(|_| format!("`{s}` is not a date of the form YYYY-MM-DD"))
}
